//! `lcd login` and `lcd logout`, as docker's: credentials are checked against the registry, then
//! kept in docker's `config.json` (`$DOCKER_CONFIG`, else `~/.docker`), where pull and push (and
//! docker itself) find them. No containerd is needed.
//!
//! Exit statuses are docker's for these commands: 0, or 1 for every failure (a refused password,
//! an unreachable registry, a credential helper we cannot write to), with one `lcd: ` line.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::{bail, Context as _, Result};
use libcontainerd_images::registry::{self, Credentials, LoginOptions, Logout};

use crate::cli::{LoginArgs, LogoutArgs};

/// docker's status for a failed login or logout.
const FAILED: i32 = 1;

/// `lcd login`.
pub async fn login(args: LoginArgs) -> Result<i32> {
    let outcome = async {
        let credentials = credentials(&args).await?;
        let options = LoginOptions {
            plain_http: args.plain_http,
            docker_config: None,
        };
        registry::login(args.server.as_deref(), &credentials, &options).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    match outcome {
        Ok(()) => {
            println!("Login Succeeded");
            Ok(0)
        }
        Err(e) => {
            crate::exit::print(&e);
            Ok(FAILED)
        }
    }
}

/// `lcd logout`.
pub fn logout(args: LogoutArgs) -> Result<i32> {
    match registry::logout(args.server.as_deref(), None) {
        Ok((key, Logout::Removed)) => println!("Removing login credentials for {key}"),
        Ok((key, Logout::NotLoggedIn)) => println!("Not logged in to {key}"),
        Err(e) => {
            crate::exit::print(&e.into());
            return Ok(FAILED);
        }
    }
    Ok(0)
}

/// The user name and password from the flags, stdin, or prompts on a terminal, as docker takes
/// them.
async fn credentials(args: &LoginArgs) -> Result<Credentials> {
    if args.password.is_some() && args.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    if args.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let interactive = std::io::stdin().is_terminal();
    let username = match &args.username {
        Some(username) => username.trim().to_string(),
        None if args.password_stdin => bail!("must provide --username with --password-stdin"),
        None if interactive => prompt("Username: ")?.trim().to_string(),
        None => bail!("cannot perform an interactive login from a non TTY device"),
    };
    if username.is_empty() {
        bail!("username is empty");
    }
    let password = match &args.password {
        Some(password) => password.clone(),
        None if args.password_stdin => read_stdin().await?,
        None if interactive => prompt_hidden("Password: ")?,
        None => bail!("cannot perform an interactive login from a non TTY device"),
    };
    if password.is_empty() {
        bail!("password is empty");
    }
    Ok(Credentials { username, password })
}

/// All of stdin, without the line end a shell's `echo` adds.
async fn read_stdin() -> Result<String> {
    let data = tokio::task::spawn_blocking(|| {
        let mut data = String::new();
        std::io::stdin().read_to_string(&mut data).map(|_| data)
    })
    .await
    .context("read the password from stdin")?
    .context("read the password from stdin")?;
    let data = data.strip_suffix('\n').unwrap_or(&data);
    Ok(data.strip_suffix('\r').unwrap_or(data).to_string())
}

/// Ask on stderr; the line typed, with its line end.
fn prompt(question: &str) -> Result<String> {
    eprint!("{question}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("read the answer")?;
    Ok(line)
}

/// A prompt whose answer is not echoed: the terminal's ECHO flag is off while it is typed.
fn prompt_hidden(question: &str) -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("read the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turn the terminal's echo off")?;
    let answer = prompt(question);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    let answer = answer?;
    Ok(answer.trim_end_matches(['\r', '\n']).to_string())
}
