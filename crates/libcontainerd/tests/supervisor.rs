//! Integration tests of the managed containerd: each test starts its own containerd in a private
//! temporary directory and stops it again, even when it panics.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use containerd_client::services::v1::version_client::VersionClient;
use libcontainerd::supervisor::{Daemon, DaemonConfig, DaemonStatus};
use libcontainerd::ErrorKind;

/// A test's containerd: stops it (blocking) and then removes its directory when dropped.
struct Managed {
    daemon: Daemon,
    dir: Option<tempfile::TempDir>,
}

impl Managed {
    fn new() -> Managed {
        let dir = tempfile::Builder::new()
            .prefix("lcd")
            .tempdir_in("/tmp")
            .expect("create temp dir");
        let config = DaemonConfig::new(dir.path().join("r"), dir.path().join("s"));
        Managed {
            daemon: Daemon::new(config),
            dir: Some(dir),
        }
    }

    fn with_config(edit: impl FnOnce(&mut DaemonConfig)) -> Managed {
        let mut managed = Managed::new();
        let mut config = managed.daemon.config().clone();
        edit(&mut config);
        managed.daemon = Daemon::new(config);
        managed
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().expect("temp dir").path()
    }

    /// Every live process whose command line mentions this test's directory.
    fn containerds(&self) -> Vec<u32> {
        let needle = self.dir().as_os_str().as_encoded_bytes().to_vec();
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            if alive(pid)
                && cmdline
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice())
            {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        let daemon = self.daemon.clone();
        // A runtime of its own on a thread of its own: Drop may run inside a test's runtime.
        let result = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(daemon.stop()))
        })
        .join();
        match result {
            Ok(Ok(Ok(()))) => {}
            other => eprintln!("cleanup: stopping containerd failed: {other:?}"),
        }
        drop(self.dir.take());
    }
}

/// A process this test started; killed and reaped when dropped.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.iter().rposition(|&b| b == b')') else {
        return false;
    };
    !matches!(stat.get(close + 2), Some(b'Z' | b'X') | None)
}

/// Wait up to 5 s for `pid` to be gone.
fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// The version the containerd on `socket` reports.
async fn version(socket: PathBuf) -> String {
    let channel = containerd_client::connect(socket)
        .await
        .expect("connect to containerd");
    VersionClient::new(channel)
        .version(())
        .await
        .expect("version rpc")
        .into_inner()
        .version
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").ino()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

#[tokio::test]
async fn start_status_version_stop() {
    let m = Managed::new();
    let d = &m.daemon;
    assert_eq!(d.status(), DaemonStatus::Stopped);

    let begin = Instant::now();
    let pid = d.ensure_running().await.expect("ensure_running");
    let elapsed = begin.elapsed();
    eprintln!("managed containerd (pid {pid}) serving after {elapsed:?}");

    assert_eq!(d.status(), DaemonStatus::Running { pid });
    assert!(alive(pid));
    let pid_file = fs::read_to_string(d.config().pid_file()).expect("pid file");
    assert_eq!(pid_file.trim(), pid.to_string());
    let v = version(d.config().socket()).await;
    assert!(!v.is_empty(), "empty version");
    assert!(d.config().log_file().exists());

    d.stop().await.expect("stop");
    assert!(gone(pid), "containerd {pid} still alive after stop");
    assert!(!d.config().socket().exists(), "socket left behind");
    assert!(!d.config().pid_file().exists(), "pid file left behind");
    assert_eq!(d.status(), DaemonStatus::Stopped);
    // Stopping again is fine.
    d.stop().await.expect("second stop");
}

#[tokio::test]
async fn ensure_running_twice_adopts() {
    let m = Managed::new();
    let first = m.daemon.ensure_running().await.expect("first");
    let second = m.daemon.ensure_running().await.expect("second");
    assert_eq!(first, second);
    // A separate Daemon value (as a later `lcd` process would build) adopts it too.
    let other = Daemon::new(m.daemon.config().clone());
    assert_eq!(other.ensure_running().await.expect("other"), first);
    assert_eq!(m.containerds(), vec![first]);
}

#[tokio::test]
async fn stale_pid_file_of_unrelated_process_is_not_signalled() {
    let m = Managed::new();
    let d = &m.daemon;
    let sleeper = Spawned(
        Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep"),
    );
    let sleep_pid = sleeper.0.id();
    fs::create_dir_all(&d.config().state).expect("create state dir");
    fs::write(d.config().pid_file(), format!("{sleep_pid}\n")).expect("write pid file");

    assert_eq!(
        d.status(),
        DaemonStatus::StalePidFile {
            pid: Some(sleep_pid)
        }
    );
    let pid = d.ensure_running().await.expect("ensure_running");
    assert_ne!(pid, sleep_pid);
    assert_eq!(d.status(), DaemonStatus::Running { pid });
    version(d.config().socket()).await;
    d.stop().await.expect("stop");
    assert!(gone(pid));
    assert!(
        alive(sleep_pid),
        "the unrelated process must survive ensure_running and stop"
    );
    drop(sleeper);
}

#[tokio::test]
async fn stale_pid_file_of_dead_process() {
    let m = Managed::new();
    let d = &m.daemon;
    let mut dead = Command::new("true").spawn().expect("spawn true");
    let dead_pid = dead.id();
    dead.wait().expect("wait true");
    fs::create_dir_all(&d.config().state).expect("create state dir");
    fs::write(d.config().pid_file(), format!("{dead_pid}\n")).expect("write pid file");
    assert_eq!(
        d.status(),
        DaemonStatus::StalePidFile {
            pid: Some(dead_pid)
        }
    );

    let pid = d.ensure_running().await.expect("ensure_running");
    assert_ne!(pid, dead_pid);
    assert_eq!(d.status(), DaemonStatus::Running { pid });

    // Garbage in the pid file is stale too, but the running containerd is still found.
    fs::write(d.config().pid_file(), "garbage").expect("write pid file");
    assert_eq!(d.status(), DaemonStatus::Running { pid });
    assert_eq!(d.ensure_running().await.expect("adopt"), pid);
    let recorded = fs::read_to_string(d.config().pid_file()).expect("pid file");
    assert_eq!(recorded.trim(), pid.to_string(), "pid file not repaired");
}

#[tokio::test]
async fn garbage_pid_file_without_daemon_is_stale() {
    let m = Managed::new();
    let d = &m.daemon;
    fs::create_dir_all(&d.config().state).expect("create state dir");
    fs::write(d.config().pid_file(), "not a pid\n").expect("write pid file");
    assert_eq!(d.status(), DaemonStatus::StalePidFile { pid: None });
    d.stop().await.expect("stop with a stale pid file");
    assert!(!d.config().pid_file().exists());
    assert_eq!(d.status(), DaemonStatus::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_start_one_containerd() {
    let m = Managed::new();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let d = Daemon::new(m.daemon.config().clone());
            tokio::spawn(async move { d.ensure_running().await })
        })
        .collect();
    let mut pids = Vec::new();
    for task in tasks {
        pids.push(task.await.expect("join").expect("ensure_running"));
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "different pids: {pids:?}");
    assert_eq!(m.containerds(), pids);
}

#[test]
fn concurrent_runtimes_start_one_containerd() {
    let m = Managed::new();
    let barrier = Arc::new(Barrier::new(3));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let d = Daemon::new(m.daemon.config().clone());
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                barrier.wait();
                rt.block_on(d.ensure_running())
            })
        })
        .collect();
    let mut pids: Vec<u32> = threads
        .into_iter()
        .map(|t| t.join().expect("join").expect("ensure_running"))
        .collect();
    pids.dedup();
    assert_eq!(pids.len(), 1, "different pids: {pids:?}");
    assert_eq!(m.containerds(), pids);
}

#[tokio::test]
async fn missing_binary_is_a_clear_error() {
    let m = Managed::with_config(|c| c.binary = "lcd-no-such-containerd".into());
    let err = m.daemon.ensure_running().await.expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let msg = err.to_string();
    assert!(
        msg.contains("\"lcd-no-such-containerd\" not found in PATH"),
        "{msg}"
    );
    assert!(msg.contains("install the containerd package"), "{msg}");
    // No advice in terms of a command line's flags: that is the caller's to add.
    assert!(!msg.contains("--"), "{msg}");

    let m = Managed::with_config(|c| c.binary = "/nonexistent/containerd".into());
    let err = m.daemon.ensure_running().await.expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("not found"), "{err}");
    assert_eq!(m.daemon.status(), DaemonStatus::Stopped);
}

#[tokio::test]
async fn binary_that_exits_reports_its_log() {
    // A "containerd" that fails at once, like one with a broken config.
    let m = Managed::new();
    let fake = m.dir().join("fake-containerd");
    fs::write(
        &fake,
        "#!/bin/sh\necho 'level=fatal msg=\"boom from fake\"' >&2\nexit 3\n",
    )
    .expect("write fake");
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).expect("chmod fake");
    let mut config = m.daemon.config().clone();
    config.binary = fake;
    let d = Daemon::new(config);
    let begin = Instant::now();
    let err = d.ensure_running().await.expect_err("must fail");
    assert!(
        begin.elapsed() < Duration::from_secs(5),
        "did not fail fast"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let msg = err.to_string();
    assert!(msg.contains("boom from fake"), "{msg}");
    assert!(msg.contains("exit status: 3"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(!d.config().pid_file().exists());
}

#[tokio::test]
async fn binary_that_never_serves_times_out_and_is_killed() {
    let m = Managed::new();
    let fake = m.dir().join("hung-containerd");
    fs::write(&fake, "#!/bin/sh\nwhile :; do sleep 0.1; done\n").expect("write fake");
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).expect("chmod fake");
    let mut config = m.daemon.config().clone();
    config.binary = fake;
    config.start_timeout = Duration::from_millis(300);
    let d = Daemon::new(config);
    let err = d.ensure_running().await.expect_err("must time out");
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    let msg = err.to_string();
    assert!(msg.contains("did not answer"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    // The hung process (its command line names our config) was killed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !m.containerds().is_empty() {
        assert!(
            Instant::now() < deadline,
            "hung fake still running: {:?}",
            m.containerds()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!d.config().pid_file().exists());
}

#[tokio::test]
async fn socket_and_dirs_are_private() {
    let m = Managed::new();
    let d = &m.daemon;
    d.ensure_running().await.expect("ensure_running");
    let socket = d.config().socket();
    assert_eq!(mode(&socket) & 0o077, 0, "socket mode {:o}", mode(&socket));
    let ttrpc = PathBuf::from(format!("{}.ttrpc", socket.display()));
    assert_eq!(mode(&ttrpc) & 0o077, 0, "ttrpc mode {:o}", mode(&ttrpc));
    assert_eq!(mode(&d.config().state), 0o700);
    assert_eq!(mode(&d.config().root), 0o700);
    // Still reachable by its owner.
    version(socket).await;
}

#[tokio::test]
async fn kill_then_ensure_running_restarts() {
    let m = Managed::new();
    let d = &m.daemon;
    let first = d.ensure_running().await.expect("ensure_running");
    assert_eq!(d.kill().expect("kill"), first);
    assert!(!alive(first), "kill returned before containerd died");
    assert_eq!(d.status(), DaemonStatus::StalePidFile { pid: Some(first) });

    let second = d.ensure_running().await.expect("restart");
    assert_ne!(first, second);
    assert_eq!(d.status(), DaemonStatus::Running { pid: second });
    version(d.config().socket()).await;

    d.stop().await.expect("stop");
    assert_eq!(
        d.kill().expect_err("nothing to kill").kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn too_long_socket_path_is_rejected() {
    let m = Managed::new();
    let long = m.dir().join("x".repeat(100));
    let d = Daemon::new(DaemonConfig::new(m.dir().join("r"), long.clone()));
    let err = d.ensure_running().await.expect_err("must fail");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("shorter state directory"), "{err}");
    assert!(!long.exists(), "created a directory for an invalid config");
}

/// Two roots, one state directory (lcd with two data roots and the default exec root): the second
/// root's start is refused with a one-line error naming the first root, and nothing of the first
/// containerd is touched: not its process, its socket or its pid file.
#[tokio::test]
async fn second_root_on_a_state_dir_in_use_is_refused() {
    let m = Managed::new();
    let first = m.daemon.ensure_running().await.expect("first root");
    let config = m.daemon.config().clone();
    let socket_inode = inode(&config.socket());
    let pid_file = fs::read_to_string(config.pid_file()).expect("pid file");

    // Declared after `m`, so dropped (stopped, by its own pid file and identity) before it.
    let second = Managed {
        daemon: Daemon::new(DaemonConfig::new(m.dir().join("r2"), &config.state)),
        dir: None,
    };
    let err = second
        .daemon
        .ensure_running()
        .await
        .expect_err("a second root on a state directory in use must be refused");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(msg.contains(&config.root.display().to_string()), "{msg}");
    assert!(msg.contains(&first.to_string()), "{msg}");
    // Stopping the second root finds nothing of its own and must not clean up the first's files.
    second.daemon.stop().await.expect("stop the second root");

    assert_eq!(m.containerds(), vec![first], "a second containerd runs");
    assert_eq!(m.daemon.status(), DaemonStatus::Running { pid: first });
    assert_eq!(inode(&config.socket()), socket_inode, "socket replaced");
    assert_eq!(
        fs::read_to_string(config.pid_file()).expect("pid file"),
        pid_file
    );
    version(config.socket()).await;
    assert_eq!(m.daemon.ensure_running().await.expect("adopt"), first);

    // Once the first root's containerd is stopped, the state directory is free for the second.
    m.daemon.stop().await.expect("stop the first root");
    assert!(gone(first));
    let pid = second.daemon.ensure_running().await.expect("second root");
    version(config.socket()).await;
    second.daemon.stop().await.expect("stop the second root");
    assert!(gone(pid));
}
