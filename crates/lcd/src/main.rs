//! `lcd`: a docker-style command line for containerd, on libcontainerd.

mod admin;
mod cli;
mod context;
mod manage;
mod run;
mod signals;
mod state;

use clap::Parser;
use libcontainerd::ExecFailure;

use cli::{Cli, Command};
use context::Ctx;

/// docker's exit status when the tool itself fails.
pub const EXIT_LCD_ERROR: i32 = 125;
/// docker's exit status when the command cannot be invoked.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// docker's exit status when the command is not found.
pub const EXIT_NOT_FOUND: i32 = 127;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_LCD_ERROR } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    init_logging(cli.debug);
    // One thread is plenty for a CLI and starts fastest; blocking reads (stdin) use tokio's pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lcd: start the async runtime: {e}");
            std::process::exit(EXIT_LCD_ERROR);
        }
    };
    let code = match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lcd: {}", one_line(&e));
            exit_code_of(&e)
        }
    };
    // Exit without dropping the runtime: a blocking read of our stdin may still be pending.
    std::process::exit(code);
}

fn init_logging(debug: bool) {
    let filter = if debug {
        tracing_subscriber::EnvFilter::new("debug")
    } else {
        tracing_subscriber::EnvFilter::try_from_env("LCD_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

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
fn exit_code_of(e: &anyhow::Error) -> i32 {
    e.chain()
        .find_map(|cause| cause.downcast_ref::<libcontainerd::Error>())
        .and_then(ExecFailure::of)
        .map(|f| match f {
            ExecFailure::NotFound => EXIT_NOT_FOUND,
            ExecFailure::NotExecutable => EXIT_NOT_EXECUTABLE,
        })
        .unwrap_or(EXIT_LCD_ERROR)
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
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
        Command::Ps(args) => manage::ps(&ctx, args).await,
        Command::Inspect(args) => manage::inspect(&ctx, args).await,
        Command::Kill(args) => manage::kill(&ctx, args).await,
        Command::Stop(args) => manage::stop(&ctx, args).await,
        Command::Rm(args) => manage::rm(&ctx, args).await,
        Command::Logs(args) => manage::logs(&ctx, args).await,
        Command::Daemon(args) => admin::daemon(&ctx, args.action).await,
        Command::Version(args) => admin::version(&ctx, args).await,
        Command::Rootfs(args) => admin::rootfs(args.kind),
    }
}
