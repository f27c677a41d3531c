//! `lcd` as a library: the command line's argument types and every command, so that the `lcd`
//! binary stays a thin wrapper and the fuzz target can use the real types.

pub mod cli;
pub mod commands;
mod context;
mod flags;
mod session;
mod signals;
mod state;
mod tty;

use anyhow::Result;
use libcontainerd::ExecFailure;

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

/// Run `each` for every id; print each failure on stderr and report whether all succeeded, as docker
/// does for multi-container commands.
pub async fn for_each_id<F, Fut>(ids: &[String], mut each: F) -> Result<i32>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut failed = false;
    for id in ids {
        if let Err(e) = each(id.clone()).await {
            eprintln!("lcd: {}", one_line(&e));
            failed = true;
        }
    }
    Ok(if failed { EXIT_LCD_ERROR } else { 0 })
}
