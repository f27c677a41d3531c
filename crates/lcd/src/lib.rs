//! `lcd` as a library: the command line's argument types and every command, so that the `lcd`
//! binary stays a thin wrapper and the fuzz target can use the real types.

mod admin;
pub mod cli;
mod context;
mod control_cmd;
mod events_cmd;
mod exec_cmd;
mod manage;
mod run;
mod session;
mod signals;
mod state;
mod stress;
mod tty;

use libcontainerd::ExecFailure;

use cli::{Cli, Command};
use context::Ctx;

/// docker's exit status when the tool itself fails.
pub const EXIT_LCD_ERROR: i32 = 125;
/// docker's exit status when the command cannot be invoked.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// docker's exit status when the command is not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// The error and its causes on one line. A libcontainerd error's message already says everything
/// its sources say (containerd's text included), so the chain stops there.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        parts.push(cause.to_string());
        if cause.downcast_ref::<libcontainerd::Error>().is_some() {
            break;
        }
    }
    parts.join(": ")
}

/// 127/126 when the container's command could not be run, 125 for every other failure of lcd.
pub fn exit_code_of(e: &anyhow::Error) -> i32 {
    e.chain()
        .find_map(|cause| cause.downcast_ref::<libcontainerd::Error>())
        .and_then(ExecFailure::of)
        .map(|f| match f {
            ExecFailure::NotFound => EXIT_NOT_FOUND,
            ExecFailure::NotExecutable => EXIT_NOT_EXECUTABLE,
        })
        .unwrap_or(EXIT_LCD_ERROR)
}

/// `--format` takes `json` or the command's own default (`table` or `text`): true means JSON.
fn parse_format(format: &str, default: &str) -> anyhow::Result<bool> {
    match format {
        "json" => Ok(true),
        f if f == default => Ok(false),
        other => anyhow::bail!("unknown format {other:?}: use {default} or json"),
    }
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let ctx = Ctx {
        address: cli.address,
        namespace: cli.namespace,
        data_root: cli.data_root,
        exec_root: cli.exec_root,
        containerd: cli.containerd,
    };
    match cli.command {
        Command::Run(args) => run::run(&ctx, args).await,
        Command::Create(args) => run::create(&ctx, args).await,
        Command::Start(args) => run::start(&ctx, args).await,
        Command::Attach(args) => run::attach(&ctx, &args.id, &args.detach_keys).await,
        Command::Exec(args) => exec_cmd::exec(&ctx, args.into()).await,
        Command::Ps(args) => manage::ps(&ctx, args).await,
        Command::Inspect(args) => manage::inspect(&ctx, args).await,
        Command::Kill(args) => manage::kill(&ctx, args).await,
        Command::Stop(args) => manage::stop(&ctx, args).await,
        Command::Rm(args) => manage::rm(&ctx, args).await,
        Command::Logs(args) => manage::logs(&ctx, args).await,
        Command::Events(args) => {
            let json = parse_format(&args.format, "text")?;
            let container = match args.filter.as_deref() {
                None => None,
                Some(f) => Some(
                    f.strip_prefix("container=")
                        .ok_or_else(|| anyhow::anyhow!("unknown filter {f:?}: use container=ID"))?
                        .to_string(),
                ),
            };
            events_cmd::events(&ctx, events_cmd::EventsArgs { json, container }).await
        }
        Command::Pause(args) => control_cmd::pause(&ctx, args.ids).await,
        Command::Unpause(args) => control_cmd::unpause(&ctx, args.ids).await,
        Command::Stats(args) => {
            let json = parse_format(&args.format, "table")?;
            control_cmd::stats(
                &ctx,
                control_cmd::StatsArgs {
                    no_stream: args.no_stream,
                    json,
                    ids: args.ids,
                },
            )
            .await
        }
        Command::Top(args) => control_cmd::top(&ctx, args.id).await,
        Command::Update(args) => {
            control_cmd::update(
                &ctx,
                control_cmd::UpdateArgs {
                    memory: args.memory,
                    memory_swap: args.memory_swap,
                    cpus: args.cpus,
                    cpu_shares: args.cpu_shares,
                    cpuset_cpus: args.cpuset_cpus,
                    pids_limit: args.pids_limit,
                    ids: args.ids,
                },
            )
            .await
        }
        Command::Checkpoint(args) => match args.action {
            cli::CheckpointAction::Create {
                leave_running,
                id,
                dir,
            } => control_cmd::checkpoint_create(&ctx, leave_running, id, dir).await,
        },
        Command::Daemon(args) => admin::daemon(&ctx, args.action).await,
        Command::Version(args) => admin::version(&ctx, args).await,
        Command::Rootfs(args) => admin::rootfs(args.kind),
        Command::Stress(args) => match args.mode {
            Some(cli::StressMode::Density {
                count,
                json,
                rootfs,
            }) => stress::density(&ctx, count, json, &rootfs).await,
            None => {
                stress::stress(
                    &ctx,
                    stress::StressArgs {
                        concurrency: args.concurrency,
                        duration: args.duration,
                        exec: args.exec,
                        json: args.json,
                        rootfs: args.rootfs,
                    },
                )
                .await
            }
        },
    }
}
