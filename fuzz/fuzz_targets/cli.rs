//! lcd's command line on arbitrary argument vectors.
//!
//! `lcd` is a binary crate, so its clap definition (`crates/lcd/src/cli.rs`) and signal parser
//! (`crates/lcd/src/signals.rs`) are compiled here from their source files; `crate::exec_cmd` is
//! the one item they reach for outside themselves (a plain struct, mirrored below). The input is
//! split at NUL bytes into arguments (arbitrary bytes, UTF-8 or not, as a shell could pass them).
//!
//! Checked, besides "no panic": a refusal renders a non-empty message; an accepted command line
//! goes through the value parsers lcd applies after clap (sizes, users, signals, durations) and the
//! library's spec builder, each of which must answer with a value or an error, never a panic.

#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use clap::Parser;
use libcontainerd::spec::{parse_bytes, parse_user, SpecBuilder};
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/lcd/src/cli.rs"]
mod cli;

#[allow(dead_code)]
#[path = "../../crates/lcd/src/signals.rs"]
mod signals;

/// `crate::exec_cmd::ExecArgs` as lcd declares it (cli.rs converts its `ExecCli` into it).
#[allow(dead_code)]
mod exec_cmd {
    pub struct ExecArgs {
        pub interactive: bool,
        pub tty: bool,
        pub detach: bool,
        pub env: Vec<String>,
        pub workdir: Option<String>,
        pub user: Option<String>,
        pub container: String,
        pub command: Vec<String>,
    }
}

use cli::{Cli, Command, CreateArgs};

fn spec_of(namespace: &str, create: &CreateArgs) {
    let id = create.name.clone().unwrap_or_else(|| "generated".into());
    let mut builder = SpecBuilder::new(&create.rootfs)
        .args(if create.command.is_empty() {
            vec!["sh".to_string()]
        } else {
            create.command.clone()
        })
        .terminal(create.tty)
        .readonly_rootfs(create.read_only);
    for e in &create.env {
        builder = builder.env(e.clone());
    }
    if let Some(dir) = &create.workdir {
        builder = builder.cwd(dir.clone());
    }
    if let Some(user) = &create.user {
        if let Ok((uid, gid)) = parse_user(user) {
            builder = builder.user(uid, gid);
        }
    }
    if let Some(h) = &create.hostname {
        builder = builder.hostname(h.clone());
    }
    if let Some(m) = &create.memory {
        if let Ok(bytes) = parse_bytes(m) {
            builder = builder.memory_limit(bytes);
        }
    }
    if let Some(cpus) = create.cpus {
        builder = builder.cpus(cpus);
    }
    if let Some(n) = create.pids_limit {
        builder = builder.pids_limit(n);
    }
    if let Ok(spec) = builder.build() {
        // What new_container stores: the spec bound to the container's id and namespace.
        let (Ok(namespace), Ok(id)) = (
            libcontainerd::Id::new(namespace),
            libcontainerd::Id::new(id),
        ) else {
            return;
        };
        let spec = libcontainerd::spec::for_container(&spec, &namespace, &id)
            .expect("a valid id binds a built spec");
        let any = libcontainerd::raw::spec_to_any(&spec).expect("a built spec serialises");
        assert_eq!(
            libcontainerd::raw::spec_from_any(&any).expect("and reads back"),
            spec
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut args = vec![OsString::from("lcd")];
    args.extend(
        data.split(|b| *b == 0)
            .take(32)
            .map(|a| OsString::from_vec(a.to_vec())),
    );
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            assert!(!e.render().to_string().is_empty());
            return;
        }
    };
    match &cli.command {
        Command::Run(run) => spec_of(&cli.namespace, &run.create),
        Command::Create(create) => spec_of(&cli.namespace, create),
        Command::Kill(kill) => {
            if let Ok(sig) = kill.signal.parse::<libcontainerd::Signal>() {
                assert!((1..=64).contains(&sig.as_raw()), "{} -> {sig}", kill.signal);
            }
        }
        Command::Update(update) => {
            for size in [&update.memory, &update.memory_swap].into_iter().flatten() {
                if let Ok(n) = parse_bytes(size) {
                    assert!(n >= 0);
                }
            }
        }
        Command::Exec(exec) => {
            let _ = exec.user.as_deref().map(parse_user);
        }
        _ => {}
    }
    let _ = format!("{cli:?}");
});
