//! One module per command (or per pair that are one another's inverse: pause/unpause), and
//! [`dispatch`], which runs the one the command line names. Each command takes its clap argument
//! struct as it is and returns the exit status lcd ends with; errors go up to the binary, which
//! prints them in one line (see [`crate::exit`]).
//!
//! Commands import support modules (context, state, session, tty, signals, flags, exit) and
//! argument types from [`crate::cli`]; none imports this module. The only imports between commands
//! are `run`'s: it is `create` followed by `start`'s second half; pull and push share the progress
//! lines of `bars`.

mod attach;
mod bars;
mod checkpoint;
mod commit;
mod completion;
mod cp;
mod create;
mod daemon;
mod df;
mod diff;
mod events;
mod exec;
mod export;
mod history;
mod image;
mod images;
mod import;
mod info;
mod inspect;
mod kill;
mod load;
mod login;
mod logs;
mod network;
mod pause;
mod prune;
mod ps;
mod pull;
mod push;
mod rename;
mod restart;
mod rm;
mod rmi;
mod rootfs;
mod run;
mod save;
mod start;
mod stats;
mod stop;
mod stress;
mod tag;
mod top;
mod update;
mod version;
mod volume;
mod wait;

use anyhow::Result;

use crate::cli::{Cli, Command, SystemAction};
use crate::context::Ctx;

// The conversions from flags to what containerd gets, for the fuzz target.
pub use create::build_spec;
pub use update::update_resources;

/// Run the command `cli` names; returns the exit status lcd should end with.
pub async fn dispatch(cli: Cli) -> Result<i32> {
    let ctx = Ctx {
        address: cli.address,
        namespace: cli.namespace,
        data_root: cli.data_root,
        exec_root: cli.exec_root,
        containerd: cli.containerd,
        force_kubernetes: cli.force_kubernetes,
    };
    if reclaims_networks(&cli.command) {
        crate::network::reclaim(&ctx);
    }
    run_command(&ctx, cli.command).await
}

async fn run_command(ctx: &Ctx, command: Command) -> Result<i32> {
    match command {
        Command::Run(args) => run::run(ctx, args).await,
        Command::Create(args) => create::create(ctx, args).await,
        Command::Start(args) => start::start(ctx, args).await,
        Command::Attach(args) => attach::attach(ctx, args).await,
        Command::Exec(args) => exec::exec(ctx, args).await,
        Command::Ps(args) => ps::ps(ctx, args).await,
        Command::Inspect(args) => inspect::inspect(ctx, args).await,
        Command::Kill(args) => kill::kill(ctx, args).await,
        Command::Stop(args) => stop::stop(ctx, args).await,
        Command::Restart(args) => restart::restart(ctx, args).await,
        Command::Rm(args) => rm::rm(ctx, args).await,
        Command::Logs(args) => logs::logs(ctx, args).await,
        Command::Events(args) => events::events(ctx, args).await,
        Command::Pause(args) => pause::pause(ctx, args).await,
        Command::Unpause(args) => pause::unpause(ctx, args).await,
        Command::Stats(args) => stats::stats(ctx, args).await,
        Command::Top(args) => top::top(ctx, args).await,
        Command::Update(args) => update::update(ctx, args).await,
        Command::Checkpoint(args) => checkpoint::checkpoint(ctx, args).await,
        Command::Daemon(args) => daemon::daemon(ctx, args).await,
        Command::Agent => crate::agent::serve(ctx).await,
        Command::Version(args) => version::version(ctx, args).await,
        Command::Rootfs(args) => rootfs::rootfs(args),
        Command::Stress(args) => stress::stress(ctx, args).await,
        Command::Pull(args) => pull::pull(ctx, args).await,
        Command::Push(args) => push::push(ctx, args).await,
        Command::Login(args) => login::login(args).await,
        Command::Logout(args) => login::logout(args),
        Command::Load(args) => load::load(ctx, args).await,
        Command::Import(args) => import::import(ctx, args).await,
        Command::Save(args) => save::save(ctx, args).await,
        Command::Images(args) => images::images(ctx, args).await,
        Command::Tag(args) => tag::tag(ctx, args).await,
        Command::Rmi(args) => rmi::rmi(ctx, args).await,
        Command::Image(args) => image::image(ctx, args).await,
        Command::Commit(args) => commit::commit(ctx, args).await,
        Command::History(args) => history::history(ctx, args).await,
        Command::Network(args) => network::network(ctx, args).await,
        Command::Port(args) => network::port(ctx, args).await,
        Command::NetworkHook(args) => network::hook(ctx, args).await,
        Command::Wait(args) => wait::wait(ctx, args).await,
        Command::Cp(args) => cp::cp(ctx, args).await,
        Command::Diff(args) => diff::diff(ctx, args).await,
        Command::Export(args) => export::export(ctx, args).await,
        Command::Rename(args) => rename::rename(ctx, args).await,
        // `container rm` is `rm`, and so on.
        Command::Container(args) => match args.action.into_command() {
            Ok(command) => Box::pin(run_command(ctx, command)).await,
            Err(prune) => prune::container_prune(ctx, prune).await,
        },
        Command::Info(args) => info::info(ctx, args).await,
        Command::System(args) => match args.action {
            SystemAction::Df(args) => df::df(ctx, args).await,
            SystemAction::Prune(args) => prune::system_prune(ctx, args).await,
            SystemAction::Info(args) => info::info(ctx, args).await,
        },
        Command::Completion(args) => completion::completion(args),
        Command::Man(args) => completion::man(args),
        Command::Volume(args) => volume::volume(ctx, args).await,
    }
}

/// Whether the command first releases the networks of containers that a crash left attached: the
/// commands that attach containers or show networks (the hook itself never: it runs under runc).
fn reclaims_networks(command: &Command) -> bool {
    matches!(
        command,
        Command::Run(_)
            | Command::Create(_)
            | Command::Start(_)
            | Command::Rm(_)
            | Command::Ps(_)
            | Command::Network(_)
            | Command::Port(_)
            | Command::Container(_)
            | Command::System(_)
    )
}
