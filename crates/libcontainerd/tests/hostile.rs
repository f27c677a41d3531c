//! Hostile input: ids that try to become paths, NUL bytes, `..` and symlinks in user-given paths,
//! hostile checkpoint archives in the content store, and specs far beyond any sane size. Every case
//! must end in a clear error (or a correct result), never in a hang, a crash or a file written outside
//! where the caller pointed. Calls that reach containerd use the real one through the fixture.

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use common::TestEnv;
use libcontainerd::checkpoint::{check_dir, restore_descriptor};
use libcontainerd::raw::{checkpoint_descriptor, extract_checkpoint};
use libcontainerd::spec::SpecBuilder;
use libcontainerd::{exec_process, ErrorKind, Id, Runtime, StdioConfig};

/// A small, seedable generator (xorshift64*), so the property tests need no extra crate and a failure
/// can be replayed: the seed is printed and `LCD_HOSTILE_SEED` sets it.
struct Rng(u64);

impl Rng {
    fn from_env(default: u64) -> Rng {
        let seed = std::env::var("LCD_HOSTILE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default);
        println!("seed {seed} (set LCD_HOSTILE_SEED to replay)");
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SEPARATORS: &[char] = &['.', '_', '-'];
/// What a path or a header would love to see in an id.
const NASTY: &[char] = &[
    '/',
    '\\',
    '\0',
    '\n',
    '\r',
    '\t',
    ' ',
    ':',
    '%',
    '*',
    '?',
    '~',
    '$',
    '\u{7f}',
    'é',
    'ａ',
    '．',
    '／',
    '\u{200b}',
    '\u{202e}',
    '٣',
    'ß',
    '\u{10ffff}',
];

/// A string that is often almost an id: mostly alphanumerics and separators, sometimes nasty.
fn random_candidate(rng: &mut Rng) -> String {
    let len = match rng.below(10) {
        0 => 70 + rng.below(12), // around the 76-character limit
        1 => 0,
        _ => 1 + rng.below(20),
    };
    (0..len)
        .map(|_| match rng.below(20) {
            0..=10 => ALNUM[rng.below(ALNUM.len())] as char,
            11..=17 => rng.pick(SEPARATORS),
            _ => rng.pick(NASTY),
        })
        .collect()
}

/// containerd's rule, written independently of the library: `^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`
/// and at most 76 bytes.
fn containerd_accepts(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 76
        && s.split(['.', '_', '-'])
            .all(|run| !run.is_empty() && run.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Everything an accepted id may become: a path component under a directory, a FIFO name, a cgroup
/// path, a gRPC header value. Each must stay exactly one normal component / one valid value.
fn assert_id_is_inert(id: &Id) {
    let s = id.as_str();
    let base = Path::new("/base/dir");
    let joined = base.join(s);
    assert_eq!(joined.parent(), Some(base), "{s:?} escaped its directory");
    let components: Vec<Component<'_>> = joined.components().collect();
    assert_eq!(components.len(), 4, "{s:?} is not one component");
    assert_eq!(components[3], Component::Normal(OsStr::new(s)), "{s:?}");
    assert!(joined.starts_with(base));
    // Relative bases too (a state dir given as a relative path).
    let relative = Path::new("rel").join(s);
    assert_eq!(relative.components().count(), 2, "{s:?}");

    // FIFO names `<id>-stdin` etc. (io.rs) stay inside the bundle dir.
    for stream in ["stdin", "stdout", "stderr"] {
        let fifo = base.join(format!("{s}-{stream}"));
        assert_eq!(fifo.parent(), Some(base), "fifo {fifo:?} of {s:?}");
    }

    // The cgroup path `/<namespace>/<id>` has exactly two normal components.
    let spec = SpecBuilder::new("/rootfs").build().expect("spec");
    let spec = libcontainerd::spec::for_container(&spec, id, id)
        .unwrap_or_else(|e| panic!("{s:?} is a valid id but the spec refused it: {e}"));
    let cgroup = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .expect("cgroups path");
    let parts: Vec<_> = cgroup.components().collect();
    assert_eq!(
        parts,
        [
            Component::RootDir,
            Component::Normal(OsStr::new(s)),
            Component::Normal(OsStr::new(s))
        ],
        "cgroup path {cgroup:?}"
    );

    // The namespace travels as the `containerd-namespace` header.
    tonic::metadata::AsciiMetadataValue::try_from(s)
        .unwrap_or_else(|e| panic!("{s:?} is not a valid header value: {e}"));
}

#[test]
fn random_ids_are_judged_as_containerd_does_and_accepted_ones_stay_one_path_component() {
    let mut rng = Rng::from_env(0x1cd_5eed);
    let (mut accepted, mut refused) = (0u32, 0u32);
    for _ in 0..200_000 {
        let candidate = random_candidate(&mut rng);
        let result = Id::new(candidate.as_str());
        assert_eq!(
            result.is_ok(),
            containerd_accepts(&candidate),
            "{candidate:?}: library says {result:?}"
        );
        match result {
            Ok(id) => {
                accepted += 1;
                assert_eq!(id.as_str(), candidate);
                assert_id_is_inert(&id);
            }
            Err(e) => {
                refused += 1;
                assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{candidate:?}");
                let message = e.to_string();
                assert!(message.starts_with("invalid id"), "{message}");
                // The message quotes the id escaped: no raw control character reaches a terminal.
                assert!(
                    !message.contains(['\0', '\n', '\r', '\u{202e}']),
                    "{message:?}"
                );
            }
        }
    }
    // The generator must exercise both sides, or the property says little.
    assert!(
        accepted > 10_000 && refused > 10_000,
        "{accepted} / {refused}"
    );
}

#[test]
fn constructed_valid_ids_of_every_shape_are_accepted() {
    let mut rng = Rng::from_env(76);
    for _ in 0..50_000 {
        // Runs of alphanumerics joined by single separators, up to the length limit.
        let mut s = String::new();
        let runs = 1 + rng.below(8);
        for i in 0..runs {
            if i > 0 {
                s.push(rng.pick(SEPARATORS));
            }
            for _ in 0..1 + rng.below(12) {
                s.push(ALNUM[rng.below(ALNUM.len())] as char);
            }
        }
        s.truncate(76);
        while s.ends_with(SEPARATORS) {
            s.pop();
        }
        let id = Id::new(s.as_str()).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_id_is_inert(&id);
    }
}

#[test]
fn hostile_id_vectors_are_refused() {
    let long_with_separators = format!("{}.b", "a".repeat(75));
    for bad in [
        "\0",
        "a\0",
        "\0a",
        "a\nb",
        "a\r",
        "a/b",
        "/a",
        "a/",
        "a\\b",
        "./a",
        "a/.",
        "a/../b",
        "...",
        "..a",
        "a..",
        "%2e%2e",
        "．．",
        "a\u{200b}b",
        "ａ",
        "٣",
        "a\u{202e}b",
        " a",
        "a ",
        "a\tb",
        "a:b",
        "a.-b",
        "a-_b",
        "_a",
        "a_",
        long_with_separators.as_str(),
    ] {
        let err = Id::new(bad).expect_err(bad);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}");
    }
    // Every parse route refuses the same way.
    assert!("a/..".parse::<Id>().is_err());
    assert!(Id::try_from("..").is_err());
    assert!(Id::try_from(String::from("a\0")).is_err());
}

fn assert_invalid(result: libcontainerd::Result<impl std::fmt::Debug>, needle: &str) {
    let err = result.expect_err(needle);
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(
        err.to_string().contains(needle),
        "{err:?} does not mention {needle:?}"
    );
    assert!(
        !err.to_string().contains('\0'),
        "the message carries a raw NUL: {err:?}"
    );
}

#[test]
fn nul_bytes_anywhere_in_a_spec_are_refused() {
    let base = || SpecBuilder::new("/rootfs");
    for args in [
        vec!["\0"],
        vec!["\0sh"],
        vec!["sh\0"],
        vec!["sh", "-c", "echo\0rm -rf /"],
        vec!["sh", "\0"],
    ] {
        assert_invalid(base().args(args.clone()).build(), "NUL");
    }
    for env in ["A\0=1", "\0A=1", "A=\0", "A=1\0", "A=a\0b", "\0=x", "A\0"] {
        assert_invalid(base().env(env).build(), "env");
    }
    // A NUL entry after many good ones is still found.
    let mut many = base();
    for i in 0..1000 {
        many = many.env(format!("K{i}=v"));
    }
    assert_invalid(many.env("LAST=\0").build(), "env");
    assert_invalid(base().cwd("/tmp\0/x").build(), "cwd");
    assert_invalid(base().cwd("\0").build(), "cwd");
    assert_invalid(base().hostname("h\0").build(), "hostname");
    let rootfs = PathBuf::from(OsStr::from_bytes(b"/root\0fs"));
    assert_invalid(SpecBuilder::new(rootfs).build(), "rootfs");
    let not_utf8 = PathBuf::from(OsStr::from_bytes(b"/root\xfffs"));
    assert_invalid(SpecBuilder::new(not_utf8).build(), "rootfs");
    // Namespaces and container ids are `Id`s: a NUL in one is refused there (see above).

    // Exec processes get the same treatment.
    let spec = base().build().expect("spec");
    assert_invalid(exec_process(&spec, ["sh", "a\0b"]).build(), "NUL");
    assert_invalid(exec_process(&spec, ["sh"]).env("A=\0").build(), "NUL");
    assert!(exec_process(&spec, ["sh"]).cwd("/a\0").build().is_err());
}

/// `SpecBuilder::env` replaces a later duplicate key in place; that must not make a large environment
/// quadratic (100k entries would then take minutes, a hang for the caller).
#[test]
fn a_hundred_thousand_env_entries_build_in_reasonable_time() {
    let mut builder = SpecBuilder::new("/rootfs");
    for i in 0..100_000 {
        builder = builder.env(format!("VARIABLE_{i:06}=value"));
    }
    // A few duplicates: they replace in place.
    builder = builder.env("VARIABLE_000007=changed").env("PATH=/bin");
    let started = Instant::now();
    let spec = builder.build().expect("build");
    let took = started.elapsed();
    let env = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .expect("env");
    assert_eq!(env.len(), 100_001);
    assert_eq!(env[0], "PATH=/bin");
    assert_eq!(env[8], "VARIABLE_000007=changed");
    assert!(
        took < Duration::from_secs(5),
        "building a spec with 100k env entries took {took:?}"
    );
}

#[test]
fn checkpoint_dirs_with_parent_components_are_refused() {
    for bad in [
        "..",
        "../x",
        "x/..",
        "x/../y",
        "/tmp/../etc",
        "/tmp/cp/../../etc/cron.d",
        "./..",
        "x/./../y",
        "//..//x",
    ] {
        let err = check_dir(Path::new(bad)).expect_err(bad);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
        assert!(err.to_string().contains(".."), "{err}");
    }
    assert_eq!(
        check_dir(Path::new("")).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    // Dots that are not a parent component are ordinary names.
    for good in ["...", "..x", "x..", "a/.../b", "/tmp/cp", "./cp", "cp/."] {
        check_dir(Path::new(good)).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    // A non-UTF-8 path is fine as long as it has no parent component.
    check_dir(Path::new(OsStr::from_bytes(b"/tmp/\xff"))).unwrap();
    assert!(check_dir(Path::new(OsStr::from_bytes(b"/tmp/\xff/.."))).is_err());
}

// ---- Against the real containerd ---------------------------------------------------------------

fn no_labels() -> HashMap<String, String> {
    HashMap::new()
}

/// Bound every call that could hang on a hostile input.
async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 60 s"))
}

/// The host's own root as a rootfs, however spelled (`/`, `/..`, a symlink to it): a container
/// on it would get the whole host. Refused when the container is made, and nothing is left.
#[tokio::test]
async fn the_hosts_root_is_refused_as_a_rootfs() {
    let env = TestEnv::new().await;
    let link = env.dir().join("to-root");
    std::os::unix::fs::symlink("/", &link).expect("symlink");
    let spellings = [
        std::path::PathBuf::from("/"),
        std::path::PathBuf::from("/.."),
        std::path::PathBuf::from("/./"),
        link,
    ];
    for (n, rootfs) in spellings.into_iter().enumerate() {
        let id = TestEnv::id(&format!("hostroot{n}"));
        let spec = SpecBuilder::new(&rootfs)
            .args(["true"])
            .build()
            .expect("spec");
        let made = bounded(
            "new_container",
            env.client
                .new_container(&id, &spec, &Runtime::default(), &no_labels()),
        )
        .await;
        match made {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
                assert!(e.to_string().contains("host's root"), "{e}");
            }
            Ok(c) => {
                let _ = c.delete().await;
                panic!("a container on rootfs {} was made", rootfs.display());
            }
        }
        assert!(
            env.client.load_container(&id).await.is_err(),
            "no record is left"
        );
    }
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

/// A rootfs that is (or lies under) a symlink: runc refuses it ("invalid rootfs: not an absolute path,
/// or a symlink"), and only at task creation, deep inside the shim. The library must say so when the
/// container is made, with the path to use instead, and leave nothing behind.
#[tokio::test]
async fn a_symlinked_rootfs_is_refused_when_the_container_is_made() {
    let env = TestEnv::new().await;
    let link = env.dir().join("rootfs-link");
    std::os::unix::fs::symlink(&env.rootfs, &link).expect("symlink");
    let parent_link = env.dir().join("dir-link");
    std::os::unix::fs::symlink(env.dir(), &parent_link).expect("symlink");
    for (n, rootfs) in [link.clone(), parent_link.join("rootfs")]
        .into_iter()
        .enumerate()
    {
        let name = format!("symlinked{n}");
        let id = TestEnv::id(&name);
        let spec = SpecBuilder::new(&rootfs)
            .args(["true"])
            .build()
            .expect("spec");
        let made = bounded(
            "new_container",
            env.client
                .new_container(&id, &spec, &Runtime::default(), &no_labels()),
        )
        .await;
        match made {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
                assert!(e.to_string().contains("symlink"), "{e}");
                assert!(
                    e.to_string().contains(env.rootfs.to_str().expect("utf-8")),
                    "the error should name the real path: {e}"
                );
            }
            Ok(c) => {
                let started =
                    bounded("start", c.start(None, &StdioConfig::default(), |_| Ok(()))).await;
                let _ = c.delete().await;
                panic!(
                    "a container with rootfs {} (a symlink) was made; start gave {started:?}",
                    rootfs.display()
                );
            }
        }
        assert!(
            env.client.load_container(&id).await.is_err(),
            "no record is left"
        );
    }
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

/// A rootfs path with `..` components names a host directory like any other; it is the caller's
/// path, not data from a container, so it works (runc resolves it the same way).
#[tokio::test]
async fn a_rootfs_with_parent_components_is_just_a_path() {
    let env = TestEnv::new().await;
    std::fs::create_dir(env.dir().join("sub")).expect("mkdir");
    let rootfs = env.dir().join("sub/../rootfs");
    let id = TestEnv::id("dotdot");
    let spec = SpecBuilder::new(&rootfs)
        .args(["sh", "-c", "exit 4"])
        .build()
        .expect("spec");
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .expect("container");
    let task = bounded("start", c.start(None, &StdioConfig::default(), |_| Ok(())))
        .await
        .expect("start");
    assert_eq!(bounded("wait", task.wait()).await.expect("wait").code, 4);
    task.delete().await.expect("delete task");
    c.delete().await.expect("delete container");
    env.cleanup().await;
}

/// containerd accepts up to 16 MiB per message. A 20 MiB argument cannot be sent: the client must
/// say so at once, as an invalid argument naming the limit, and make nothing.
#[tokio::test]
async fn a_spec_over_the_message_limit_is_a_clear_error() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("huge");
    let spec = env
        .spec(&["echo", &"x".repeat(20 << 20)])
        .build()
        .expect("spec");
    let started = Instant::now();
    let result = bounded(
        "new_container",
        env.client
            .new_container(&id, &spec, &Runtime::default(), &no_labels()),
    )
    .await;
    let took = started.elapsed();
    // Whatever happened, the connection is still good and nothing was made.
    env.client
        .version()
        .await
        .expect("version after the refusal");
    assert!(env.client.load_container(&id).await.is_err());
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    let err = result.expect_err("a 20 MiB spec");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let message = err.to_string();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{message}");
    assert!(message.contains("huge"), "names the container: {message}");
    assert!(
        message.contains("16777216") || message.contains("16 MiB"),
        "names the limit: {message}"
    );
    assert!(
        message.len() < 1000,
        "the message is not the spec: {} bytes",
        message.len()
    );
    env.cleanup().await;
}

/// A 10 MiB argument fits in a message, but the kernel refuses any single argument over 128 KiB
/// (MAX_ARG_STRLEN): the container is made, and the process fails clearly and quickly with the
/// kernel's reason, leaving nothing.
#[tokio::test]
async fn a_ten_mebibyte_argument_fails_with_the_kernels_reason() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("bigarg");
    let spec = env
        .spec(&["echo", &"x".repeat(10 << 20)])
        .build()
        .expect("spec");
    let c = bounded(
        "new_container",
        env.client
            .new_container(&id, &spec, &Runtime::default(), &no_labels()),
    )
    .await
    .expect("a 10 MiB spec fits in containerd's 16 MiB");
    let started = Instant::now();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let result = bounded(
        "start",
        c.start(None, &StdioConfig::default(), |io| {
            let _ = tx.send(io);
            Ok(())
        }),
    )
    .await;
    // runc reports an execve failure after `start` returned: on the process's stderr, with exit
    // status 1. Either way the reason reaches the caller.
    let reason = match result {
        Ok(task) => {
            let mut io = rx.await.expect("io");
            let mut err = String::new();
            if let Some(mut stderr) = io.stderr.take() {
                use tokio::io::AsyncReadExt;
                bounded("read stderr", stderr.read_to_string(&mut err))
                    .await
                    .expect("read stderr");
            }
            let status = bounded("wait", task.wait()).await.expect("wait");
            assert_ne!(status.code, 0, "{err}");
            task.delete().await.expect("delete task");
            err
        }
        Err(e) => e.to_string(),
    };
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // runc writes the kernel's reason in lowercase, crun capitalised ("Argument list too long").
    assert!(
        reason.to_lowercase().contains("argument list too long"),
        "the kernel's reason (E2BIG): {reason}"
    );
    assert!(
        reason.len() < 4096,
        "the message is not the spec: {} bytes",
        reason.len()
    );
    // Loading it back (a 10 MiB record) works within the raised decode limit.
    let loaded = bounded("load_container", env.client.load_container(&id))
        .await
        .expect("load a 10 MiB container record");
    assert_eq!(loaded.spec(), c.spec());
    let bound = libcontainerd::spec::for_container(&spec, env.client.namespace(), &id).unwrap();
    assert_eq!(loaded.spec(), &bound);
    c.delete().await.expect("delete");
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

/// Two containers of 9 MiB specs each: every single record fits in a message, the list of both does
/// not. Listing the namespace must still work (containerd's `ListStream` sends one record per
/// message), or one user's big container breaks `ps` for everyone.
#[tokio::test]
async fn listing_survives_containers_whose_specs_together_exceed_the_message_limit() {
    let env = TestEnv::new().await;
    let mut made = vec![];
    for name in ["big0", "big1"] {
        let id = TestEnv::id(name);
        let spec = env
            .spec(&["echo", &"y".repeat(9 << 20)])
            .build()
            .expect("spec");
        let c = bounded(
            "new_container",
            env.client
                .new_container(&id, &spec, &Runtime::default(), &no_labels()),
        )
        .await
        .expect("a 9 MiB spec fits");
        made.push(c);
    }
    let listed = bounded("list_containers", env.client.list_containers()).await;
    for c in &made {
        c.delete().await.expect("delete");
    }
    let listed = listed.expect("list two 9 MiB containers");
    assert_eq!(listed.len(), 2);
    env.cleanup().await;
}

/// 100k environment entries: the spec is built quickly and containerd stores it; the process either
/// runs and sees every entry, or its start fails with the kernel's reason. Never a hang.
#[tokio::test]
async fn a_hundred_thousand_env_entries_run_or_fail_clearly() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("manyenv");
    let mut builder = env.spec(&["sh", "-c", "env | wc -l"]);
    for i in 0..100_000 {
        builder = builder.env(format!("V{i}=1"));
    }
    let spec = bounded("build", async { builder.build() })
        .await
        .expect("spec");
    let c = bounded(
        "new_container",
        env.client
            .new_container(&id, &spec, &Runtime::default(), &no_labels()),
    )
    .await
    .expect("container with 100k env entries");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let started = bounded(
        "start",
        c.start(None, &StdioConfig::default(), |io| {
            let _ = tx.send(io);
            Ok(())
        }),
    )
    .await;
    match started {
        Ok(task) => {
            let mut io = rx.await.expect("io");
            let mut out = String::new();
            if let Some(mut stdout) = io.stdout.take() {
                use tokio::io::AsyncReadExt;
                bounded("read stdout", stdout.read_to_string(&mut out))
                    .await
                    .expect("read");
            }
            assert_eq!(bounded("wait", task.wait()).await.expect("wait").code, 0);
            // PATH, HOME (added by runc) and ours.
            let count: usize = out.trim().parse().expect("a count");
            assert!(count >= 100_001, "the process saw {count} variables");
            task.delete().await.expect("delete task");
        }
        Err(e) => {
            assert!(
                e.to_string()
                    .to_lowercase()
                    .contains("argument list too long"),
                "a failed start must say why: {e}"
            );
        }
    }
    c.delete().await.expect("delete");
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

// ---- Hostile checkpoint archives, served by containerd's content store ------------------------

/// Write `data` into containerd's content store (as a GC root) and return its descriptor.
async fn upload(env: &TestEnv, data: Vec<u8>) -> containerd_client::types::Descriptor {
    use containerd_client::services::v1::content_client::ContentClient;
    use containerd_client::services::v1::{WriteAction, WriteContentRequest};
    use sha2::{Digest, Sha256};

    let hex: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let digest = format!("sha256:{hex}");
    let size = data.len() as i64;
    let message = WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: common::unique_name("hostile"),
        total: size,
        expected: digest.clone(),
        offset: 0,
        data,
        labels: HashMap::from([(
            "containerd.io/gc.root".to_string(),
            "2025-01-01T00:00:00Z".to_string(),
        )]),
    };
    let mut request = tonic::Request::new(tokio_stream::iter(vec![message]));
    request.metadata_mut().insert(
        "containerd-namespace",
        env.namespace.parse().expect("namespace header"),
    );
    let mut responses = ContentClient::new(libcontainerd::raw::channel(&env.client))
        .max_encoding_message_size(16 << 20)
        .write(request)
        .await
        .expect("content write")
        .into_inner();
    while responses.message().await.expect("write response").is_some() {}
    containerd_client::types::Descriptor {
        media_type: libcontainerd::CRIU_CHECKPOINT_MEDIA_TYPE.to_string(),
        digest,
        size,
        annotations: HashMap::new(),
    }
}

async fn delete_blob(env: &TestEnv, digest: &str) {
    use containerd_client::services::v1::content_client::ContentClient;
    use containerd_client::services::v1::DeleteContentRequest;
    let mut request = tonic::Request::new(DeleteContentRequest {
        digest: digest.to_string(),
    });
    request.metadata_mut().insert(
        "containerd-namespace",
        env.namespace.parse().expect("namespace header"),
    );
    let _ = ContentClient::new(libcontainerd::raw::channel(&env.client))
        .delete(request)
        .await;
}

/// One raw tar entry, written as a hostile archive would (no path sanitising).
enum Entry<'a> {
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

fn hostile_tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (name, data, mode, kind, link) = match entry {
            Entry::File(name, data, mode) => (*name, *data, *mode, tar::EntryType::Regular, None),
            Entry::Symlink(name, target) => (
                *name,
                &b""[..],
                0o777,
                tar::EntryType::Symlink,
                Some(*target),
            ),
            Entry::Hardlink(name, target) => {
                (*name, &b""[..], 0o644, tar::EntryType::Link, Some(*target))
            }
        };
        // set_path/set_link_name refuse `..`: write the raw bytes.
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_entry_type(kind);
        header.set_cksum();
        builder.append(&header, data).expect("append");
    }
    builder.into_inner().expect("finish tar")
}

/// Extract `archive` (served by containerd) into a fresh directory under `root`; returns the directory
/// and the outcome. Either outcome may be right; what may never happen is checked by the caller.
async fn extract(
    env: &TestEnv,
    root: &Path,
    name: &str,
    archive: Vec<u8>,
) -> (PathBuf, libcontainerd::Result<()>) {
    let dir = root.join(name);
    std::fs::create_dir(&dir).expect("mkdir");
    let descriptor = upload(env, archive).await;
    let result = bounded(
        "extract_checkpoint",
        extract_checkpoint(&env.client, &descriptor, &dir),
    )
    .await;
    delete_blob(env, &descriptor.digest).await;
    (dir, result)
}

#[tokio::test]
async fn hostile_checkpoint_archives_write_nothing_outside_their_directory() {
    let env = TestEnv::new().await;
    let root = env.dir().join("cp");
    let outside = env.dir().join("outside");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let secret = outside.join("secret");
    std::fs::write(&secret, b"keep me").expect("write");
    let outside_str = outside.to_str().expect("utf-8");
    let secret_str = secret.to_str().expect("utf-8");

    // `..` entries are skipped; the rest arrives.
    let (dir, result) = extract(
        &env,
        &root,
        "parent",
        hostile_tar(&[
            Entry::File("inventory.img", b"ok", 0o644),
            Entry::File("../escaped", b"evil", 0o644),
            Entry::File("../../outside/escaped", b"evil", 0o644),
        ]),
    )
    .await;
    result.expect("`..` entries are skipped, not fatal");
    assert_eq!(
        std::fs::read(dir.join("inventory.img")).expect("read"),
        b"ok"
    );
    assert!(!root.join("escaped").exists());
    assert!(!outside.join("escaped").exists());

    // Absolute names land inside the directory, not at their absolute path.
    let absolute = format!("{outside_str}/absolute");
    let (dir, result) = extract(
        &env,
        &root,
        "absolute",
        hostile_tar(&[Entry::File(&absolute, b"evil", 0o644)]),
    )
    .await;
    assert!(!outside.join("absolute").exists(), "{result:?}");
    if result.is_ok() {
        assert!(dir.join(absolute.trim_start_matches('/')).exists());
    }

    // A symlink out of the directory, then a file written through it.
    let (_, result) = extract(
        &env,
        &root,
        "through-symlink",
        hostile_tar(&[
            Entry::Symlink("link", outside_str),
            Entry::File("link/planted", b"evil", 0o644),
            Entry::Symlink("relative", "../../outside"),
            Entry::File("relative/planted2", b"evil", 0o644),
        ]),
    )
    .await;
    assert!(!outside.join("planted").exists(), "{result:?}");
    assert!(!outside.join("planted2").exists(), "{result:?}");

    // A hard link to a file outside, then a write to it.
    let (dir, result) = extract(
        &env,
        &root,
        "hardlink",
        hostile_tar(&[
            Entry::Hardlink("hl", secret_str),
            Entry::File("hl", b"overwritten", 0o644),
        ]),
    )
    .await;
    assert_eq!(
        std::fs::read(&secret).expect("read"),
        b"keep me",
        "{result:?}"
    );
    if let Ok(meta) = std::fs::metadata(dir.join("hl")) {
        assert_ne!(
            meta.ino(),
            std::fs::metadata(&secret).expect("stat").ino(),
            "a hard link to a file outside was made: {result:?}"
        );
    }
    let (_, result) = extract(
        &env,
        &root,
        "hardlink-parent",
        hostile_tar(&[Entry::Hardlink("hl2", "../../outside/secret")]),
    )
    .await;
    assert_eq!(
        std::fs::metadata(&secret).expect("stat").nlink(),
        1,
        "{result:?}"
    );

    // Garbage and truncated archives fail, without hanging.
    let (_, result) = extract(&env, &root, "garbage", vec![0xA5; 10_000]).await;
    assert!(result.is_err(), "garbage is not a checkpoint");
    let mut truncated = hostile_tar(&[Entry::File("big.img", &[7u8; 100_000], 0o644)]);
    truncated.truncate(5_000);
    let (_, result) = extract(&env, &root, "truncated", truncated).await;
    assert!(result.is_err(), "a truncated archive is an error");

    assert_eq!(
        std::fs::read_dir(&outside).expect("ls").count(),
        1,
        "only the secret is outside"
    );
    env.cleanup().await;
}

/// CRIU images are plain files: nothing in a checkpoint needs set-user-id or set-group-id bits, and
/// keeping them would let whoever can write to the content store plant a set-uid-root binary
/// wherever a checkpoint is extracted (the extraction runs as root).
#[tokio::test]
async fn checkpoint_extraction_drops_setuid_and_setgid_bits() {
    let env = TestEnv::new().await;
    let root = env.dir().join("cp");
    std::fs::create_dir_all(&root).expect("mkdir");
    let (dir, result) = extract(
        &env,
        &root,
        "setuid",
        hostile_tar(&[
            Entry::File("suid", b"#!/bin/sh\n", 0o4755),
            Entry::File("sgid", b"#!/bin/sh\n", 0o2755),
            Entry::File("pages-1.img", b"data", 0o600),
        ]),
    )
    .await;
    result.expect("extract");
    for name in ["suid", "sgid"] {
        let mode = std::fs::metadata(dir.join(name)).expect("stat").mode();
        assert_eq!(mode & 0o6000, 0, "{name} kept mode {mode:o}");
    }
    let mode = std::fs::metadata(dir.join("pages-1.img"))
        .expect("stat")
        .mode();
    assert_eq!(mode & 0o777, 0o600, "ordinary modes are kept");
    env.cleanup().await;
}

#[tokio::test]
async fn extraction_refuses_parent_dirs_unknown_blobs_and_wrong_sizes() {
    let env = TestEnv::new().await;
    let good = hostile_tar(&[Entry::File("inventory.img", b"x", 0o644)]);
    let descriptor = upload(&env, good).await;

    let err = extract_checkpoint(&env.client, &descriptor, &env.dir().join("a/../b"))
        .await
        .expect_err("..");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");

    let mut unknown = descriptor.clone();
    unknown.digest = format!("sha256:{}", "0".repeat(64));
    let dir = env.dir().join("unknown");
    std::fs::create_dir(&dir).expect("mkdir");
    let err = bounded("extract", extract_checkpoint(&env.client, &unknown, &dir))
        .await
        .expect_err("unknown blob");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let mut lying = descriptor.clone();
    lying.size += 1;
    let dir = env.dir().join("lying");
    std::fs::create_dir(&dir).expect("mkdir");
    let err = bounded("extract", extract_checkpoint(&env.client, &lying, &dir))
        .await
        .expect_err("size mismatch");
    assert!(err.to_string().contains("bytes"), "{err}");

    let mut not_a_digest = descriptor.clone();
    not_a_digest.digest = "sha256:../../etc/passwd".to_string();
    let dir = env.dir().join("baddigest");
    std::fs::create_dir(&dir).expect("mkdir");
    let err = bounded(
        "extract",
        extract_checkpoint(&env.client, &not_a_digest, &dir),
    )
    .await
    .expect_err("invalid digest");
    assert!(
        matches!(err.kind(), ErrorKind::InvalidArgument | ErrorKind::NotFound),
        "{err}"
    );
    delete_blob(&env, &descriptor.digest).await;
    env.cleanup().await;
}

/// A restore directory is tarred as it is: symlinks stay links (their targets, e.g. /etc/shadow, are
/// not copied into the content store), whether relative or absolute.
#[tokio::test]
async fn restore_uploads_keep_symlinks_as_links() {
    let env = TestEnv::new().await;
    let dir = env.dir().join("restore");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("inventory.img"), b"inv").expect("write");
    std::os::unix::fs::symlink("/etc/shadow", dir.join("shadow")).expect("symlink");
    std::os::unix::fs::symlink("../../etc/passwd", dir.join("passwd")).expect("symlink");
    let blob = bounded("restore_descriptor", restore_descriptor(&env.client, &dir))
        .await
        .expect("upload");
    // Read it back through the extraction path and look at what was stored.
    let back = env.dir().join("back");
    std::fs::create_dir(&back).expect("mkdir");
    bounded(
        "extract",
        extract_checkpoint(&env.client, checkpoint_descriptor(&blob), &back),
    )
    .await
    .expect("extract");
    for (name, target) in [("shadow", "/etc/shadow"), ("passwd", "../../etc/passwd")] {
        let meta = std::fs::symlink_metadata(back.join(name)).expect("entry");
        assert!(
            meta.file_type().is_symlink(),
            "{name}: the link was followed"
        );
        assert_eq!(
            std::fs::read_link(back.join(name)).expect("readlink"),
            Path::new(target)
        );
    }
    blob.delete().await.expect("delete blob");

    let err = bounded(
        "restore_descriptor",
        restore_descriptor(&env.client, &env.dir().join("restore/../restore")),
    )
    .await
    .expect_err("..");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    env.cleanup().await;
}

/// A FIFO (or socket, or device) in a restore directory is not a CRIU image: the upload must neither
/// block reading it nor fail obscurely; it says which file is in the way.
#[tokio::test]
async fn restore_uploads_refuse_special_files_clearly() {
    let env = TestEnv::new().await;
    let dir = env.dir().join("restore");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("inventory.img"), b"inv").expect("write");
    nix::unistd::mkfifo(
        &dir.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let result = bounded("restore_descriptor", restore_descriptor(&env.client, &dir)).await;
    match result {
        Ok(blob) => {
            // Skipping it is fine too.
            blob.delete().await.expect("delete blob");
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
            assert!(e.to_string().contains("fifo"), "names the file: {e}");
        }
    }
    env.cleanup().await;
}
