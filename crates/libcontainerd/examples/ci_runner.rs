//! A CI-runner-style engine on libcontainerd: N jobs at once, each in a container of its own on a
//! busybox rootfs, their output captured, their events recorded, everything removed at the end.
//!
//! ```text
//! sudo cargo run -p libcontainerd --example ci_runner -- [--jobs 8] [--fail-job K] [--address SOCKET]
//! ```
//!
//! What it shows:
//! - a private containerd started (or adopted) through `libcontainerd::supervisor` in a temp dir,
//!   or an existing one with `--address`;
//! - jobs run concurrently with `Container::spawn`, stdout and stderr read as they come (a
//!   mebibyte of output does not block anything);
//! - one job fed through stdin (`StdioConfig::stdin`, `Stdin::close` delivers end of file);
//! - an exec into a running job with `Task::spawn_exec`, which is what lets that job finish;
//! - an `EventMonitor` with a recording `Backend`; exits awaited with
//!   `EventMonitor::wait_init_exit` / `EventMonitor::wait_exit`, registered before the process
//!   starts so they cannot be missed;
//! - a summary (job, exit code, bytes of output, events seen), cleanup of every container, FIFO,
//!   namespace dir and the containerd it started, and a non-zero exit status if any job failed.
//!   `--fail-job K` makes job K fail on purpose, to see that path.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{read_all, read_until, within, Args, Env, Recorder, Report};
use libcontainerd::{
    exec_process, Client, Container, EventMonitor, Id, Runtime, SpecBuilder, StdioConfig, Task,
};
use tokio::io::AsyncWriteExt;

const USAGE: &str = "\
ci_runner: run CI jobs in containers concurrently (as root)

  --jobs N            how many jobs (env CI_RUNNER_JOBS, default 8, at least 2)
  --fail-job K        make job K fail on purpose (env CI_RUNNER_FAIL_JOB)";

/// How much data the stdin job is fed: over a FIFO's 64 KiB, so the writer has to wait for the
/// reader, as a real job's input would.
const STDIN_BYTES: usize = 300_000;
/// What the bulk job prints: 16 FIFOs' worth, read while the job runs.
const BULK_BYTES: usize = 1 << 20;

/// One job: a command, maybe input, and what its stdout must show.
struct Job {
    name: Id,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    /// The exec probe goes into this job once it is running.
    probe: bool,
    expect: Expect,
}

enum Expect {
    /// stdout, trimmed, is exactly this.
    Exactly(String),
    /// stdout contains this.
    Contains(&'static str),
    /// stdout is this many bytes.
    Bytes(usize),
}

impl Expect {
    fn check(&self, stdout: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(stdout);
        let ok = match self {
            Expect::Exactly(want) => text.trim() == want,
            Expect::Contains(want) => text.contains(want),
            Expect::Bytes(n) => stdout.len() == *n,
        };
        if ok {
            return Ok(());
        }
        let shown: String = text.chars().take(80).collect();
        Err(match self {
            Expect::Exactly(want) => format!("stdout {shown:?}, expected {want:?}"),
            Expect::Contains(want) => format!("stdout {shown:?} lacks {want:?}"),
            Expect::Bytes(n) => format!("stdout is {} bytes, expected {n}", stdout.len()),
        })
    }
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// The jobs: job-0 reads stdin, job-1 waits for the exec probe, the others build, test or log.
fn plan(count: usize, fail: Option<usize>) -> Result<Vec<Job>, Report> {
    let mut jobs = Vec::new();
    for i in 0..count {
        let name = Id::new(format!("job-{i}"))?;
        let mut job = match i {
            0 => Job {
                name,
                args: sh("wc -c"),
                stdin: Some((0..STDIN_BYTES).map(|n| b'a' + (n % 26) as u8).collect()),
                probe: false,
                expect: Expect::Exactly(STDIN_BYTES.to_string()),
            },
            1 => Job {
                name,
                args: sh("echo waiting for the probe; \
                     while [ ! -e /tmp/probe-done ]; do sleep 0.05; done; echo probe seen"),
                stdin: None,
                probe: true,
                expect: Expect::Contains("probe seen"),
            },
            _ => match i % 3 {
                0 => Job {
                    name,
                    args: sh(
                        "for i in $(seq 1 500); do echo \"compiling unit $i\"; done; \
                         echo 'warning: 1 unused import' >&2",
                    ),
                    stdin: None,
                    probe: false,
                    expect: Expect::Contains("compiling unit 500"),
                },
                1 => Job {
                    name,
                    args: sh(&format!("yes ci-log-line | head -c {BULK_BYTES}")),
                    stdin: None,
                    probe: false,
                    expect: Expect::Bytes(BULK_BYTES),
                },
                _ => Job {
                    name,
                    args: sh("echo running 3 tests; sleep 0.3; echo 'test result: ok. 3 passed'"),
                    stdin: None,
                    probe: false,
                    expect: Expect::Contains("test result: ok"),
                },
            },
        };
        if fail == Some(i) {
            job.args = sh("echo 'error: assertion failed' >&2; exit 3");
            job.probe = false;
            job.stdin = None;
        }
        jobs.push(job);
    }
    Ok(jobs)
}

/// What a job came to.
struct Outcome {
    name: Id,
    exit_code: Option<u32>,
    stdout_bytes: usize,
    stderr_bytes: usize,
    /// Whether its task ever started (so that its exit event is due).
    started: bool,
    error: Option<String>,
}

/// What every job needs, shared between the job tasks.
struct Shared {
    client: Client,
    monitor: EventMonitor,
    rootfs: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Report> {
    let Some(args) = Args::parse(USAGE, &["--jobs", "--fail-job"])? else {
        return Ok(());
    };
    let count = args.number("--jobs", "CI_RUNNER_JOBS", 8)?;
    if count < 2 {
        return Err("--jobs: at least 2 (one job reads stdin, one takes the exec probe)".into());
    }
    let fail = match args.get("--fail-job", "CI_RUNNER_FAIL_JOB") {
        Some(_) => Some(args.number("--fail-job", "CI_RUNNER_FAIL_JOB", 0)?),
        None => None,
    };
    let mut interrupts = common::Interrupts::catch()?;
    let env = Env::setup("ci", &args).await?;
    let outcome = interrupts.around(run(&env, count, fail)).await;
    let cleaned = env.cleanup().await;
    common::finish("ci_runner", outcome, cleaned)
}

async fn run(env: &Env, count: usize, fail: Option<usize>) -> Result<(), Report> {
    say!("ci_runner: {}", env.describe().await?);
    let recorder = Recorder::new(false);
    let monitor = EventMonitor::start(env.client.clone(), recorder.clone());
    // Live before the first container: every event from here on reaches the recorder.
    within("subscribe to events", monitor.ready()).await?;
    let shared = Arc::new(Shared {
        client: env.client.clone(),
        monitor,
        rootfs: env.rootfs.clone(),
    });

    let jobs = plan(count, fail)?;
    say!("ci_runner: {count} jobs on a busybox rootfs");
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for job in jobs {
        let shared = Arc::clone(&shared);
        running.spawn(async move { run_job(&shared, job).await });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = running.join_next().await {
        outcomes.push(joined?);
    }
    let elapsed = started.elapsed();
    outcomes.sort_by_key(|o| {
        o.name
            .as_str()
            .trim_start_matches("job-")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });

    // Waits resolve when the monitor decides on an exit; the backend is handed it a moment later.
    let due: Vec<String> = outcomes
        .iter()
        .filter(|o| o.started)
        .map(|o| o.name.to_string())
        .collect();
    let all_seen = recorder
        .wait_until(Duration::from_secs(10), |r| {
            due.iter().all(|name| r.has_init_exit(name))
        })
        .await;

    say!(
        "{:<8} {:>4} {:>9} {:>7}  events",
        "job",
        "exit",
        "stdout",
        "stderr"
    );
    for o in &outcomes {
        let exit = o
            .exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into());
        say!(
            "{:<8} {:>4} {:>9} {:>7}  {}",
            o.name.as_str(),
            exit,
            o.stdout_bytes,
            o.stderr_bytes,
            recorder.line(o.name.as_str())
        );
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    for o in &failed {
        say!(
            "ci_runner: {} FAILED: {}",
            o.name,
            o.error.as_deref().unwrap_or_default()
        );
    }
    say!(
        "ci_runner: {} jobs, {} passed, {} failed in {:.1} s",
        outcomes.len(),
        outcomes.len() - failed.len(),
        failed.len(),
        elapsed.as_secs_f64()
    );
    if !all_seen {
        return Err("not every started job's exit reached the backend within 10 s".into());
    }
    if !failed.is_empty() {
        return Err(format!("{} of {} jobs failed", failed.len(), outcomes.len()).into());
    }
    Ok(())
}

/// Run one job from container creation to deletion. Errors end up in the outcome, never abort the
/// other jobs; the container is removed whatever happened.
async fn run_job(shared: &Shared, job: Job) -> Outcome {
    let mut outcome = Outcome {
        name: job.name.clone(),
        exit_code: None,
        stdout_bytes: 0,
        stderr_bytes: 0,
        started: false,
        error: None,
    };
    let container = match create(shared, &job).await {
        Ok(container) => container,
        Err(e) => {
            outcome.error = Some(format!("{e:?}"));
            return outcome;
        }
    };
    let result = drive(shared, &container, &job, &mut outcome).await;
    // The task is deleted by `drive` when it got that far; after a failure, whatever is left goes.
    let removed = remove(&container).await;
    if let Err(e) = result.and(removed) {
        outcome.error = Some(format!("{e:?}"));
    }
    outcome
}

async fn create(shared: &Shared, job: &Job) -> Result<Container, Report> {
    let spec = SpecBuilder::new(&shared.rootfs)
        .args(job.args.iter().cloned())
        .env(format!("CI_JOB={}", job.name))
        .build()?;
    let labels = HashMap::from([("ci.job".to_string(), job.name.to_string())]);
    let container = within(
        "create container",
        shared
            .client
            .new_container(&job.name, &spec, &Runtime::default(), &labels),
    )
    .await?;
    Ok(container)
}

async fn drive(
    shared: &Shared,
    container: &Container,
    job: &Job,
    outcome: &mut Outcome,
) -> Result<(), Report> {
    // Registered before the task exists: an exit cannot slip past it.
    let exit = shared.monitor.wait_init_exit(container.id());
    let stdio = StdioConfig {
        stdin: job.stdin.is_some(),
        ..StdioConfig::default()
    };
    let (task, mut io) = within("start", container.spawn(None, &stdio)).await?;
    outcome.started = true;

    // Input in a task of its own: the job reads it while we read its output.
    let feeder = match (io.stdin.take(), job.stdin.clone()) {
        (Some(mut stdin), Some(data)) => Some(tokio::spawn(async move {
            stdin.write_all(&data).await?;
            // Our end and, through containerd, the process's: `wc` sees end of file.
            stdin.close().await?;
            Ok::<(), Report>(())
        })),
        _ => None,
    };

    let mut stdout = io.stdout.take();
    let mut early = Vec::new();
    if job.probe {
        if let Some(reader) = stdout.as_mut() {
            early = read_until(reader, "waiting for the probe")
                .await?
                .into_bytes();
            probe(shared, &task).await?;
        }
    }
    let (out, err) = tokio::join!(read_all(stdout), read_all(io.stderr.take()));
    let mut out = out?;
    let err = err?;
    if let Some(feeder) = feeder {
        within("feed stdin", feeder).await??;
    }
    early.append(&mut out);
    outcome.stdout_bytes = early.len();
    outcome.stderr_bytes = err.len();

    let status = within("wait for the exit event", exit).await?;
    outcome.exit_code = Some(status.code);
    // The task's own record of the exit must agree with the event's.
    let deleted = within("delete task", task.delete()).await?;
    if deleted.code != status.code {
        return Err(format!(
            "the exit event says {}, the task's delete {}",
            status.code, deleted.code
        )
        .into());
    }
    if status.code != 0 {
        let stderr = String::from_utf8_lossy(&err);
        return Err(format!("exit code {}; stderr: {}", status.code, stderr.trim()).into());
    }
    job.expect.check(&early)?;
    Ok(())
}

/// Exec into the running job: `probe-done` is what lets it finish.
async fn probe(shared: &Shared, task: &Task) -> Result<(), Report> {
    let id = Id::new("probe")?;
    let process = exec_process(
        task.container().spec(),
        [
            "sh",
            "-c",
            "echo probe from $(hostname); touch /tmp/probe-done",
        ],
    )
    .build()?;
    let exit = shared.monitor.wait_exit(task.id(), &id);
    let (exec, io) = within(
        "exec the probe",
        task.spawn_exec(&id, process, &StdioConfig::default()),
    )
    .await?;
    let (out, _err) = tokio::join!(read_all(io.stdout), read_all(io.stderr));
    let status = within("wait for the probe's exit", exit).await?;
    within("delete the probe", exec.delete()).await?;
    say!(
        "ci_runner: exec probe into {}: {:?} (exit {})",
        task.id(),
        String::from_utf8_lossy(&out?).trim(),
        status.code
    );
    if status.code != 0 {
        return Err(format!("the probe exited {}", status.code).into());
    }
    Ok(())
}

/// Remove the container and, if still there, its task (a job that failed half-way).
async fn remove(container: &Container) -> Result<(), Report> {
    match container.task().await {
        Ok(task) => within("force delete task", task.force_delete()).await?,
        Err(e) if e.kind() == libcontainerd::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    within("delete container", container.delete()).await?;
    Ok(())
}
