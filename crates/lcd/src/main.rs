//! `lcd`: a docker-style command line for containerd, on libcontainerd. The binary only parses the
//! command line, sets up logging and the async runtime, and exits with the code the library's
//! command returns; everything else is in the `lcd` library (src/lib.rs).

use std::io::IsTerminal;

use clap::Parser;
use lcd::cli::Cli;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(lcd::exit::usage(&e)),
    };
    init_logging(cli.debug);
    end_quietly_when_stdout_closes();
    // One thread is plenty for a CLI and starts fastest; blocking reads (stdin) use tokio's pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let e = anyhow::Error::new(e).context("start the async runtime");
            std::process::exit(lcd::exit::report(&e));
        }
    };
    let code = match runtime.block_on(lcd::commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => lcd::exit::report(&e),
    };
    // Exit without dropping the runtime: a blocking read of our stdin may still be pending.
    std::process::exit(code);
}

/// A reader that goes away (`lcd images | head -1`) makes Rust's `println!` panic with "failed
/// printing to stdout: Broken pipe". lcd then ends as a C or Go tool does, by the SIGPIPE that Rust
/// ignores, without a panic message. (Copies of a container's output handle EPIPE themselves.)
fn end_quietly_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            // SAFETY: restores the default action of SIGPIPE and raises it in this process; no
            // memory is involved, and the process ends here.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
            std::process::exit(128 + libc::SIGPIPE);
        }
        default(info);
    }));
}

/// Logging is the binary's: a library must not install the process's global subscriber.
fn init_logging(debug: bool) {
    let filter = if debug {
        tracing_subscriber::EnvFilter::new("debug")
    } else {
        tracing_subscriber::EnvFilter::try_from_env("LCD_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    // Closed spans print their duration: `LCD_LOG=debug` shows where a command's time goes.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        // Colours only for a person reading a terminal, never into a file or pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
