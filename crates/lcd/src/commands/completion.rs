//! `lcd completion SHELL` and `lcd man`: a shell completion script and the man pages, both
//! generated from the clap definitions at run time, so they never disagree with the binary.
//! `lcd man` is a hidden command rather than an xtask: a package build runs the binary it just
//! built (`lcd man --dir DIR`), and no second tool has to know the definitions.

use std::io::Write as _;

use anyhow::{Context as _, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionArgs, ManArgs};

/// `lcd completion bash|zsh|fish|elvish|powershell`.
pub fn completion(args: CompletionArgs) -> Result<i32> {
    let shell: Shell = args
        .shell
        .parse()
        .map_err(|e| anyhow::anyhow!("unknown shell {:?}: {e}", args.shell))?;
    let mut command = Cli::command();
    // Into memory first: clap_complete panics on a failed write (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "lcd", &mut script);
    std::io::stdout()
        .write_all(&script)
        .context("write the completion script")?;
    Ok(0)
}

/// `lcd man [--dir DIR]`: lcd.1 on stdout, or lcd.1 and a page per command in DIR.
pub fn man(args: ManArgs) -> Result<i32> {
    let command = Cli::command();
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .with_context(|| format!("write man pages to {}", dir.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .context("write the man page")?;
        }
    }
    Ok(0)
}
