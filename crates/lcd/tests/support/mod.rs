//! Fixture for the CLI end-to-end tests: the built `lcd` binary run as a user would, in a temp dir of
//! its own (data root, exec root, rootfs) and a containerd namespace of its own, so that every test
//! gets its own managed containerd, started by `lcd` itself on first use. Every child process has a
//! deadline: a hang fails the test (the child is killed by its pid) instead of blocking CI. Dropping
//! the fixture removes every container, stops the managed containerd and removes the temp dir, also
//! when the test panics.

#![allow(dead_code)]

pub mod pty;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The longest any single `lcd` invocation may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on anything that should take well under a second; generous for a loaded machine.
pub const PROMPT: Duration = Duration::from_secs(20);
/// How long cleanup checks (shims exiting, cgroups going away) may take to settle.
const SETTLE: Duration = Duration::from_secs(5);

/// The path of the `lcd` binary under test.
pub fn lcd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lcd")
}

/// What a finished `lcd` invocation produced.
#[derive(Debug)]
pub struct Output {
    /// What was run, for messages.
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    /// The exit status; panics if the process was killed by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("{} ended by a signal: {self}", self.what))
    }

    /// Assert the exit status and return self for more checks.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "unexpected exit status: {self}"
        );
        self
    }

    /// Assert success (status 0) and return stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        self.expect_code(0);
        &self.stdout
    }

    /// Assert that lcd failed with `code` and said so on one stderr line starting with "lcd: " that
    /// contains every one of `words`; returns that line.
    #[track_caller]
    pub fn expect_error(&self, code: i32, words: &[&str]) -> &str {
        self.expect_code(code);
        let line = self.stderr.strip_suffix('\n').unwrap_or(&self.stderr);
        assert!(
            line.starts_with("lcd: ") && !line.contains('\n'),
            "the error should be one line starting with \"lcd: \": {self}"
        );
        for word in words {
            assert!(
                line.contains(word),
                "the error should mention {word:?}: {self}"
            );
        }
        line
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = |s: &str| {
            if s.len() > 2000 {
                format!("{}… ({} bytes)", &s[..2000], s.len())
            } else {
                s.to_string()
            }
        };
        write!(
            f,
            "`{}` exited with {} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.status,
            self.elapsed,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
}

/// A spawned `lcd` whose stdout arrives line by line, for tests that act on what it prints.
pub struct Running {
    pub what: String,
    child: Option<Child>,
    pub stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stdout_seen: String,
    stderr: Option<thread::JoinHandle<String>>,
    started: Instant,
}

impl Running {
    /// The pid of the `lcd` process (our own child).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child").id()
    }

    /// Wait until stdout has a line equal to `line` (panics after `timeout`).
    #[track_caller]
    pub fn wait_for_line(&mut self, line: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.stdout_seen.push_str(&l);
                    if l.trim_end_matches('\n') == line {
                        return;
                    }
                }
                Err(e) => {
                    let seen = self.stdout_seen.clone();
                    self.kill();
                    panic!(
                        "{}: no line {line:?} on stdout within {timeout:?} ({e}); stdout so far: {seen:?}",
                        self.what
                    );
                }
            }
        }
    }

    /// The next stdout line, if one comes within `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        self.stdout_seen.push_str(&line);
        Some(line)
    }

    /// Send `signal` to the `lcd` process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("signal lcd");
    }

    /// Wait (up to `timeout`) for the process to exit and collect the rest of its output.
    #[track_caller]
    pub fn finish(mut self, timeout: Duration) -> Output {
        self.stdin.take();
        let mut child = self.child.take().expect("child");
        let status = match wait_deadline(&mut child, timeout) {
            Some(status) => status,
            None => panic!("{} did not exit within {timeout:?}; killed it", self.what),
        };
        let mut stdout = std::mem::take(&mut self.stdout_seen);
        // The reader thread ends at EOF, which follows the exit (no other process holds the pipe).
        let deadline = Instant::now() + SETTLE;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(l) => stdout.push_str(&l),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{}: stdout stayed open after exit", self.what)
                }
            }
        }
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        Output {
            what: self.what.clone(),
            status,
            stdout,
            stderr,
            elapsed: self.started.elapsed(),
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Our own child, by its pid.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Start a prepared `lcd` command in the background with stdout read line by line.
pub fn spawn_command(mut cmd: Command, stdin: Stdio) -> Running {
    let what = describe(&cmd);
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let stderr = thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut s);
        s
    });
    Running {
        what,
        stdin: child.stdin.take(),
        child: Some(child),
        lines,
        stdout_seen: String::new(),
        stderr: Some(stderr),
        started,
    }
}

/// Poll `child` until it exits or `timeout` passes; on timeout kill it (by its pid) and return None.
fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Read a pipe to its end in a thread; the result arrives on the returned channel.
fn drain(mut from: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = from.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Run `cmd` (stdout and stderr piped; stdin as configured, or fed `input`) with a deadline.
pub fn run_command(
    mut cmd: Command,
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Output, String> {
    let what = describe(&cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawn {what}: {e}"))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let out = drain(child.stdout.take().expect("stdout"));
    let err = drain(child.stderr.take().expect("stderr"));
    let status = wait_deadline(&mut child, timeout)
        .ok_or_else(|| format!("`{what}` did not exit within {timeout:?}; killed it"))?;
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(SETTLE)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|_| format!("`{what}`: output pipe stayed open after exit"))
    };
    let stdout = collect(out)?;
    let stderr = collect(err)?;
    Ok(Output {
        what,
        status,
        stdout,
        stderr,
        elapsed: started.elapsed(),
    })
}

fn describe(cmd: &Command) -> String {
    let mut parts = vec!["lcd".to_string()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One test's world: temp dir, namespace, rootfs, and the managed containerd `lcd` starts there.
pub struct Lcd {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    pub ns: String,
    pub rootfs: PathBuf,
}

impl Lcd {
    /// A fixture with a busybox rootfs made by `lcd rootfs busybox`.
    pub fn new(tag: &str) -> Lcd {
        let lcd = Lcd::bare(tag);
        lcd.make_rootfs();
        lcd
    }

    /// A fixture without a rootfs and without having run `lcd` yet.
    pub fn bare(tag: &str) -> Lcd {
        // Short paths: containerd's sockets live under <tmp>/run and must fit in a unix address.
        let dir = tempfile::Builder::new()
            .prefix("lcdc")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let root = dir.path().to_path_buf();
        let ns = format!(
            "cli-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Lcd {
            rootfs: root.join("rootfs"),
            dir: Some(dir),
            root,
            ns,
        }
    }

    /// `lcd rootfs busybox <tmp>/rootfs`.
    pub fn make_rootfs(&self) {
        let rootfs = self.rootfs.to_str().expect("utf-8 path").to_string();
        let out = self.run(&["rootfs", "busybox", &rootfs]);
        assert_eq!(out.ok(), format!("{rootfs}\n"), "{out}");
        assert!(
            self.rootfs.join("bin/sh").exists(),
            "no /bin/sh in the rootfs"
        );
    }

    /// The rootfs argument for run/create.
    pub fn rootfs(&self) -> &str {
        self.rootfs.to_str().expect("utf-8 path")
    }

    /// The temp dir.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// A path inside the temp dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// `<tmp>/data` (LCD_DATA_ROOT).
    pub fn data_root(&self) -> PathBuf {
        self.root.join("data")
    }
    /// `ctr ARGS` on this fixture's managed containerd and namespace; its stdout (the test fails
    /// when ctr does).
    pub fn ctr(&self, args: &[&str]) -> String {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(self.exec_root().join("containerd/containerd.sock"))
            .args(["--namespace", &self.ns])
            .args(args)
            .output()
            .expect("run ctr");
        assert!(
            out.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `<tmp>/run` (LCD_EXEC_ROOT).
    pub fn exec_root(&self) -> PathBuf {
        self.root.join("run")
    }

    /// This namespace's bundle dirs.
    pub fn bundles(&self) -> PathBuf {
        self.exec_root().join("bundles").join(&self.ns)
    }

    /// Where a detached container's log lives.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.data_root()
            .join("logs")
            .join(&self.ns)
            .join(format!("{id}.log"))
    }

    /// The managed containerd's pid file.
    pub fn pid_file(&self) -> PathBuf {
        self.exec_root().join("containerd/containerd.pid")
    }

    /// An `lcd` command with this fixture's environment; stdin is /dev/null unless changed.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(lcd_bin());
        cmd.args(args)
            .env("LCD_DATA_ROOT", self.data_root())
            .env("LCD_EXEC_ROOT", self.exec_root())
            .env("LCD_NAMESPACE", &self.ns)
            // Whatever the developer's shell has must not redirect the tests.
            .env_remove("LCD_ADDRESS")
            .env_remove("LCD_CONTAINERD")
            .env_remove("LCD_LOG")
            // Containers get a namespace of their own with only loopback: lcd's default bridge
            // network would change the host's network (tests/network_cli.rs tests networks, inside
            // namespaces of its own).
            .env("LCD_NETWORK", "none")
            .env_remove("LCD_CNI_PATH")
            // Tests talk only to 127.0.0.0/8: an image pull that would leave the machine (a test
            // naming an image nobody stored) goes to a proxy on loopback that refuses it instead.
            // The pull never uses a proxy for loopback registries, so local ones still work.
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .stdin(Stdio::null());
        // Another containerd to test against (.ci/containerd-1.7 sets it, and PATH for its shim).
        if let Some(binary) = std::env::var_os("LCD_TEST_CONTAINERD") {
            cmd.env("LCD_CONTAINERD", binary);
        }
        cmd
    }

    /// Run `lcd ARGS` to completion (stdin /dev/null), panicking after [`TIMEOUT`].
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Output {
        self.output(self.command(args))
    }

    /// Run a prepared command to completion, panicking after [`TIMEOUT`].
    #[track_caller]
    pub fn output(&self, cmd: Command) -> Output {
        run_command(cmd, None, TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Run `lcd ARGS` with `input` on its stdin.
    #[track_caller]
    pub fn run_input(&self, args: &[&str], input: &[u8]) -> Output {
        run_command(self.command(args), Some(input.to_vec()), TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start `lcd ARGS` in the background with stdout read line by line.
    pub fn spawn(&self, args: &[&str], stdin: Stdio) -> Running {
        spawn_command(self.command(args), stdin)
    }

    /// `lcd ps -aq`.
    #[track_caller]
    pub fn ids(&self) -> Vec<String> {
        self.run(&["ps", "-aq", "--no-trunc"])
            .ok()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `lcd ps -a --format json`, one object per container.
    #[track_caller]
    pub fn ps_json(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["ps", "-a", "--format", "json"]);
        out.ok()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("ps line {l:?} is not JSON: {e}"))
            })
            .collect()
    }

    /// The `lcd ps -a --format json` object of `id`.
    #[track_caller]
    pub fn ps_of(&self, id: &str) -> serde_json::Value {
        self.ps_json()
            .into_iter()
            .find(|v| v["Names"] == id)
            .unwrap_or_else(|| panic!("{id} is not in `lcd ps -a`"))
    }

    /// `lcd inspect ID`'s single element.
    #[track_caller]
    pub fn inspect(&self, id: &str) -> serde_json::Value {
        let out = self.run(&["inspect", id]);
        let v: serde_json::Value = serde_json::from_str(out.ok())
            .unwrap_or_else(|e| panic!("inspect output is not JSON ({e}): {out}"));
        let array = v
            .as_array()
            .unwrap_or_else(|| panic!("inspect is not an array: {out}"));
        assert_eq!(array.len(), 1, "{out}");
        array[0].clone()
    }

    /// Poll `lcd ps -a` until `id`'s state is `state` (panics after `timeout`).
    #[track_caller]
    pub fn wait_state(&self, id: &str, state: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.ps_of(id);
            if v["State"] == state {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{id} did not become {state} within {timeout:?}: {v}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Assert that nothing of this test's containers is left: `lcd ps -a` is empty, the bundle dir
    /// and the container lock dir have no entries, no FIFO exists anywhere under the temp dir,
    /// containerd holds no task state for the namespace, no shim of the namespace runs, and no
    /// container cgroup is left.
    #[track_caller]
    pub fn assert_clean(&self) {
        let ps = self.run(&["ps", "-a"]);
        let lines: Vec<&str> = ps.ok().lines().collect();
        assert_eq!(lines.len(), 1, "`lcd ps -a` should list no container: {ps}");
        assert!(lines[0].starts_with("CONTAINER ID"), "{ps}");
        let bundles = entries(&self.bundles());
        assert!(bundles.is_empty(), "left in the bundle dir: {bundles:?}");
        let fifos = fifos(&self.root);
        assert!(fifos.is_empty(), "FIFOs left: {fifos:?}");
        let tasks = entries(
            &self
                .exec_root()
                .join("containerd/containerd/io.containerd.runtime.v2.task")
                .join(&self.ns),
        );
        assert!(tasks.is_empty(), "containerd task state left: {tasks:?}");
        // A removed container's lock file goes with it (see crates/lcd/src/container_lock.rs).
        let locks = entries(&self.exec_root().join("locks").join(&self.ns));
        assert!(locks.is_empty(), "container lock files left: {locks:?}");
        let deadline = Instant::now() + SETTLE;
        loop {
            let shims = shims_of(&self.ns);
            let cgroups = cgroups_of(&self.ns);
            if shims.is_empty() && cgroups.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "left behind: shims (pids) {shims:?}, cgroups {cgroups:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Best-effort cleanup; never panics (it runs in Drop, maybe while unwinding).
    fn cleanup(&self) {
        let quiet = |args: &[&str]| run_command(self.command(args), None, TIMEOUT).ok();
        if let Some(ps) = quiet(&["ps", "-aq", "--no-trunc"]) {
            let ids: Vec<&str> = ps.stdout.lines().filter(|l| !l.is_empty()).collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                quiet(&args);
            }
        }
        quiet(&["daemon", "stop"]);
        // runc removes a container's cgroup; the namespace's parent cgroup is ours to remove.
        for dir in cgroup_parents(&self.ns) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl Drop for Lcd {
    fn drop(&mut self) {
        self.cleanup();
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// A directory's entries (none if it does not exist).
pub fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Every FIFO under `dir`, symlinks not followed.
pub fn fifos(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in entries(dir) {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_fifo() {
            found.push(path);
        } else if meta.is_dir() {
            found.extend(fifos(&path));
        }
    }
    found
}

/// The cgroup v1 (or v2) directories `/sys/fs/cgroup/[<controller>/]<ns>` of a namespace.
fn cgroup_parents(ns: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![base.join(ns)];
    dirs.extend(entries(base).into_iter().map(|c| c.join(ns)));
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// Container cgroups left under the namespace's cgroups.
fn cgroups_of(ns: &str) -> Vec<PathBuf> {
    cgroup_parents(ns)
        .into_iter()
        .flat_map(|d| entries(&d))
        .filter(|p| p.is_dir())
        .collect()
}

/// Pids of running shims serving namespace `ns` (read from /proc; nothing is signalled).
pub fn shims_of(ns: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in entries(Path::new("/proc")) {
        let Some(pid) = entry
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_shim = args
            .first()
            .is_some_and(|a| a.ends_with(b"containerd-shim-runc-v2"));
        let ours = args
            .windows(2)
            .any(|w| w[0] == b"-namespace" && w[1] == ns.as_bytes());
        if is_shim && ours && is_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The pid in a `lcd daemon` message: "containerd running (pid 123) at …".
pub fn pid_in(text: &str) -> u32 {
    text.split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {text:?}"))
}

/// Set in the inner run, inside the private namespace.
const PRIVATE_NAMESPACE_INNER: &str = "LCD_NETWORK_TEST_INNER";

/// Run test `name` again inside a new network and mount namespace (`unshare -n -m`: for tests
/// that make bridges, veths or firewall rules); true in that inner run (the
/// test body then runs), false in the outer one (which only checks that the inner one passed).
pub fn in_private_namespace(name: &str) -> bool {
    if std::env::var_os(PRIVATE_NAMESPACE_INNER).is_some() {
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("run ip");
        assert!(up.success(), "bring loopback up in the test's namespace");
        return true;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--mount", "--propagation", "private", "--"])
        .arg(std::env::current_exe().expect("test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(PRIVATE_NAMESPACE_INNER, "1");
    let out =
        run_command(cmd, None, Duration::from_secs(300)).expect("run the test in a namespace");
    assert!(
        out.status.success() && out.stdout.contains("1 passed"),
        "{name} inside `unshare -n -m`: {out}"
    );
    false
}
