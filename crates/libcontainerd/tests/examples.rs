//! The examples, run end to end: each example binary against a private containerd it starts
//! itself, checked for its exit status, its key lines of output, and that it removed everything it
//! made (its temp dir is made in one of the test's, which must be empty afterwards). And the
//! README's library example must be the crate docs' doctest, which `cargo test --doc` compiles.
//!
//! `cargo test` builds the examples (into `<target>/debug/examples/`) before it runs any test;
//! `cargo test --test examples` alone does not, so a missing or stale binary fails with what to run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncReadExt;

/// Bound on one example's run (each takes about a second on a quiet machine).
const LIMIT: Duration = Duration::from_secs(180);
/// After SIGINT at the limit, how long the example gets to clean up before it is killed.
const GRACE: Duration = Duration::from_secs(60);

/// The built example `name`, next to this test binary: `<target>/debug/deps/examples-<hash>` ->
/// `<target>/debug/examples/<name>`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps")
        .join("examples")
        .join(name);
    let rebuild = "`cargo test -p libcontainerd` builds the examples before running the tests \
                   (`--test examples` alone does not); or run `cargo build -p libcontainerd --examples`";
    let built = modified(&path)
        .unwrap_or_else(|| panic!("example binary {} is missing: {rebuild}", path.display()));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = vec![
        manifest.join("examples").join(format!("{name}.rs")),
        manifest.join("examples/common/mod.rs"),
    ];
    sources.extend(files_under(&manifest.join("src")));
    for source in sources {
        if modified(&source).is_some_and(|changed| changed > built) {
            panic!(
                "example binary {} is older than {}: {rebuild}",
                path.display(),
                source.display()
            );
        }
    }
    path
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// How an example run ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Fail showing the whole output, which is what one needs to see then.
    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\nexit code: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
    }

    fn expect_code(&self, code: i32) {
        if self.code != Some(code) {
            self.fail(&format!("expected exit code {code}"));
        }
    }

    fn expect_line(&self, line: &str) {
        if !self.stdout.lines().any(|l| l == line) {
            self.fail(&format!("no line {line:?} in stdout"));
        }
    }

    /// The line that starts with `prefix`.
    fn line(&self, prefix: &str) -> &str {
        match self.stdout.lines().find(|l| l.starts_with(prefix)) {
            Some(line) => line,
            None => self.fail(&format!("no line starting with {prefix:?} in stdout")),
        }
    }
}

/// Run example `name` with `args`, its temp dir under a dir of the test's, which must be empty
/// once it has exited: whatever it made, it removed.
async fn run(name: &str, args: &[&str]) -> Run {
    let binary = example(name);
    let parent = tempfile::Builder::new()
        .prefix("lcdt")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let mut command = tokio::process::Command::new(&binary);
    command
        .args(args)
        .env("LCD_EXAMPLE_DIR", parent.path())
        // Hermetic: a private containerd, the examples' own defaults.
        .env_remove("LCD_EXAMPLE_ADDRESS")
        .env_remove("CI_RUNNER_JOBS")
        .env_remove("CI_RUNNER_FAIL_JOB")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // The containerd the other integration tests use (.ci/containerd-1.7 sets it).
    if let Some(containerd) = std::env::var_os("LCD_TEST_CONTAINERD") {
        command.env("LCD_EXAMPLE_CONTAINERD", containerd);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
    let pid = child.id().expect("a running child has a pid");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text).await;
        text
    });
    let err = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let status = match tokio::time::timeout(LIMIT, child.wait()).await {
        Ok(status) => status.expect("wait for the example"),
        Err(_) => {
            // Interrupted, an example still cleans up; only if that hangs too is it killed.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGINT,
            );
            let _ = tokio::time::timeout(GRACE, child.wait()).await;
            let _ = child.kill().await;
            let run = Run {
                code: None,
                stdout: out.await.unwrap_or_default(),
                stderr: err.await.unwrap_or_default(),
            };
            run.fail(&format!("{name} did not finish within {LIMIT:?}"));
        }
    };
    let run = Run {
        code: status.code(),
        stdout: out.await.expect("stdout reader"),
        stderr: err.await.expect("stderr reader"),
    };
    let left: Vec<_> = std::fs::read_dir(parent.path())
        .expect("read the examples' parent dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    if !left.is_empty() {
        run.fail(&format!("{name} left {left:?} behind"));
    }
    run
}

#[tokio::test]
async fn ci_runner_runs_eight_jobs_and_cleans_up() {
    let run = run("ci_runner", &[]).await;
    run.expect_code(0);
    run.expect_line("ci_runner: 8 jobs on a busybox rootfs");
    run.expect_line("ci_runner: exec probe into job-1: \"probe from job-1\" (exit 0)");
    for i in 0..8 {
        let line = run.line(&format!("job-{i} "));
        let fields: Vec<&str> = line.split_whitespace().collect();
        // job, exit, stdout bytes, stderr bytes, events...
        if fields.get(1) != Some(&"0") {
            run.fail(&format!("job-{i} did not exit 0: {line:?}"));
        }
        let events = fields.get(4..).unwrap_or_default().join(" ");
        let expected = if i == 1 {
            "create start exec-added exec-started exit exit"
        } else {
            "create start exit"
        };
        if events != expected {
            run.fail(&format!(
                "job-{i}: events {events:?}, expected {expected:?}"
            ));
        }
    }
    // The stdin job counted all 300,000 bytes it was fed ("300000\n"); a bulk job's mebibyte
    // arrived whole.
    assert_eq!(run.line("job-0 ").split_whitespace().nth(2), Some("7"));
    assert_eq!(
        run.line("job-4 ").split_whitespace().nth(2),
        Some("1048576")
    );
    assert!(
        run.line("ci_runner: 8 jobs, 8 passed, 0 failed in ")
            .ends_with(" s"),
        "{}",
        run.stdout
    );
    run.expect_line(
        "ci_runner: cleaned up: 0 containers removed at the end, 0 left, 0 files left in the bundle dir",
    );
}

#[tokio::test]
async fn ci_runner_reports_a_failed_job_and_exits_non_zero_after_cleaning_up() {
    let run = run("ci_runner", &["--jobs", "3", "--fail-job", "2"]).await;
    run.expect_code(1);
    let line = run.line("job-2 ");
    assert_eq!(line.split_whitespace().nth(1), Some("3"), "{line}");
    run.expect_line("ci_runner: job-2 FAILED: exit code 3; stderr: error: assertion failed");
    assert!(run
        .line("ci_runner: 3 jobs, 2 passed, 1 failed in ")
        .ends_with(" s"));
    // Cleanup happens on the failure path too.
    run.expect_line(
        "ci_runner: cleaned up: 0 containers removed at the end, 0 left, 0 files left in the bundle dir",
    );
    assert!(
        run.stderr.contains("Error: 1 of 3 jobs failed"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn exec_attach_feeds_stdin_resizes_a_terminal_and_re_attaches() {
    let run = run("exec_attach", &[]).await;
    run.expect_code(0);
    run.expect_line("exec_attach: stdin exec: \"HELLO THROUGH STDIN\" (exit 0)");
    run.expect_line(
        "exec_attach: terminal exec: stty size 24 80, resized to 120x40, stty size 40 120 (exit 5)",
    );
    run.expect_line(
        "exec_attach: re-attached from a new client to exec worker of box: \"worker got: again\" (exit 2)",
    );
    run.expect_line("exec_attach: SIGTERM -> container said \"box stopping\", exit 0");
    run.expect_line(
        "exec_attach: cleaned up: 0 containers removed at the end, 0 left, 0 files left in the bundle dir",
    );
}

#[tokio::test]
async fn events_arrive_in_order_per_container_and_waits_agree() {
    let run = run("events", &[]).await;
    run.expect_code(0);
    run.expect_line("events: wait_init_exit(alpha) -> exit 0");
    run.expect_line("events: wait_init_exit(beta) -> exit 7");
    run.expect_line("events: wait_init_exit(gamma) -> exit 143");
    run.expect_line("events: order alpha: create start exit");
    run.expect_line(
        "events: order gamma: create start paused resumed exec-added exec-started exit exit",
    );
    run.expect_line("events: every container's events arrived in order, each exit once");
    // The backend's own lines, numbered per container.
    run.expect_line("event gamma#3 paused");
    assert!(run.line("event beta#3 exit ").ends_with(" code=7"));
    run.expect_line(
        "events: cleaned up: 0 containers removed at the end, 0 left, 0 files left in the bundle dir",
    );
}

#[tokio::test]
async fn examples_explain_themselves_and_refuse_unknown_flags() {
    for name in ["ci_runner", "exec_attach", "events"] {
        let help = run(name, &["--help"]).await;
        help.expect_code(0);
        assert!(help.stdout.contains("--address SOCKET"), "{}", help.stdout);
        let bad = run(name, &["--no-such-flag"]).await;
        bad.expect_code(1);
        assert!(
            bad.stderr.contains("unknown argument \"--no-such-flag\""),
            "{}",
            bad.stderr
        );
    }
}

/// The README's library example, as the crate docs' doctest shows it (hidden `# ` lines left
/// out): the doctest is compiled, so the README's copy must not drift from it.
#[test]
fn the_readme_library_example_is_the_crate_doctest() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(manifest.join("../../README.md")).expect("README.md");
    let section = readme
        .split("\n## The library\n")
        .nth(1)
        .expect("the README has a \"## The library\" section");
    let readme_example: Vec<&str> = section
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a rust code block in \"The library\"")
        .lines()
        .collect();

    let lib = std::fs::read_to_string(manifest.join("src/lib.rs")).expect("src/lib.rs");
    let doc: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = doc
        .iter()
        .position(|l| l.starts_with("```no_run"))
        .expect("a no_run doctest in the crate docs");
    let doctest: Vec<&str> = doc[start + 1..]
        .iter()
        .take_while(|l| !l.starts_with("```"))
        .filter(|l| !(l.starts_with("# ") || **l == "#"))
        .copied()
        .collect();
    assert_eq!(
        readme_example, doctest,
        "README \"The library\" example != the crate docs' doctest (src/lib.rs)"
    );
}
