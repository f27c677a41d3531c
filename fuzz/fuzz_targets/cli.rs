//! lcd's command line on arbitrary argument vectors, through the `lcd` library: the clap types the
//! binary parses with (`lcd::cli`) and the conversions its commands apply afterwards
//! (`lcd::commands::build_spec` for run and create, `update_resources` for update), not copies of
//! them. The input is split at NUL bytes into arguments (arbitrary bytes, UTF-8 or not, as a shell
//! could pass them).
//!
//! Checked, besides "no panic": a refusal renders a non-empty message; an accepted command line
//! goes through the value parsers lcd applies after clap (sizes, users, signals, resources) and the
//! spec lcd would create the container with, each of which must answer with a value or an error,
//! never a panic; a spec that builds survives containerd's encoding.

#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use clap::Parser;
use lcd::cli::{Cli, Command, CreateArgs};
use lcd::commands::{build_spec, update_resources};
use libcontainerd::spec::{parse_bytes, parse_user};
use libcontainerd::Signal;
use libfuzzer_sys::fuzz_target;

/// The spec `lcd run` or `lcd create` would make. lcd first checks that the rootfs is a directory
/// and resolves it; that is the filesystem's business, so the path is taken as written.
fn spec_of(namespace: &str, create: &CreateArgs) {
    let Ok(spec) = build_spec(create, Path::new(&create.rootfs)) else {
        return;
    };
    // What new_container stores: the spec bound to the container's id and namespace.
    let name = create.name.as_deref().unwrap_or("generated");
    let (Ok(namespace), Ok(id)) = (
        libcontainerd::Id::new(namespace),
        libcontainerd::Id::new(name),
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
            // As `lcd kill` reads -s.
            if let Ok(sig) = kill.signal.parse::<Signal>() {
                assert!((1..=64).contains(&sig.as_raw()), "{} -> {sig}", kill.signal);
            }
        }
        Command::Update(update) => {
            for size in [&update.memory, &update.memory_swap].into_iter().flatten() {
                if let Ok(n) = parse_bytes(size) {
                    assert!(n >= 0);
                }
            }
            let _ = update_resources(update);
        }
        Command::Exec(exec) => {
            let _ = exec.user.as_deref().map(parse_user);
        }
        _ => {}
    }
    let _ = format!("{cli:?}");
});
