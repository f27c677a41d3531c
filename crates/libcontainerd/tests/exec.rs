//! Exec processes, terminals and re-attaching, against a real containerd and runc: `Task::exec`
//! and `Process`, the stdin close handshake after start, terminals for init and exec processes,
//! every fault the issue lists, and a re-attach across two client processes.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::TestEnv;
use containerd_client::services::v1::{
    tasks_client::TasksClient, ListPidsRequest, PauseTaskRequest, ResumeTaskRequest,
};
use libcontainerd::{
    exec_process, Client, ClientConfig, Container, DirectIo, ErrorKind, ExecFailure, Id, Output,
    Runtime, StdioConfig, Task, TaskStatus,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Bound on anything that should take well under a second; generous for a loaded machine.
const PROMPT: Duration = Duration::from_secs(20);

/// A request in the test's namespace, for RPCs the library does not wrap (yet).
fn raw<T>(env: &TestEnv, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "containerd-namespace",
        env.namespace.parse().expect("namespace header"),
    );
    request
}

/// The pids containerd's `ListPids` reports for the container.
async fn pids(env: &TestEnv, id: &str) -> Vec<u32> {
    let response = TasksClient::new(libcontainerd::raw::channel(&env.client))
        .list_pids(raw(
            env,
            ListPidsRequest {
                container_id: id.to_string(),
            },
        ))
        .await
        .expect("list pids")
        .into_inner();
    let mut pids: Vec<u32> = response.processes.iter().map(|p| p.pid).collect();
    pids.sort_unstable();
    pids
}

/// Files in the bundle dir that belong to process `process_id` (its FIFOs).
fn files_of(bundle: &Path, process_id: &str) -> Vec<PathBuf> {
    let prefix = format!("{process_id}-");
    std::fs::read_dir(bundle)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A container running `args` as its init process, started with no stdio.
async fn running(env: &TestEnv, name: &str, args: &[&str]) -> (Container, Task) {
    let spec = env.spec(args).build().expect("spec");
    let container = env
        .client
        .new_container(
            &TestEnv::id(name),
            &spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .expect("new container");
    let task = container
        .start(None, &StdioConfig::default(), |_| Ok(()))
        .await
        .expect("start");
    (container, task)
}

/// Remove the task and the container, then check nothing is left in the bundle root.
async fn remove(env: &TestEnv, container: Container, task: Task) {
    task.force_delete().await.expect("force delete");
    container.delete().await.expect("delete container");
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
}

/// Read both output streams to the end, concurrently (a full pipe would stall the other).
async fn collect(io: DirectIo) -> (String, String) {
    async fn drain(r: Option<libcontainerd::OutputReader>) -> String {
        let mut buf = vec![];
        if let Some(mut r) = r {
            r.read_to_end(&mut buf).await.expect("read output");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
    tokio::join!(drain(io.stdout), drain(io.stderr))
}

/// Read from `r` into `seen` until it contains `needle`; a terminal's output never ends by itself.
async fn read_until(r: &mut (impl AsyncRead + Unpin), seen: &mut String, needle: &str) {
    let deadline = Instant::now() + PROMPT;
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, r.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in {seen:?}"))
            .expect("read terminal");
        assert!(n > 0, "end of output before {needle:?}: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// Hand the attach callback's handles out of it.
fn handoff() -> (
    impl FnOnce(DirectIo) -> Result<(), libcontainerd::BoxError>,
    tokio::sync::oneshot::Receiver<DirectIo>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    (
        move |io| {
            let _ = tx.send(io);
            Ok(())
        },
        rx,
    )
}

#[tokio::test]
async fn exec_runs_in_the_container_with_its_own_streams_and_exit_status() {
    let env = TestEnv::new().await;
    let (c, task) = running(&env, "basic", &["sleep", "600"]).await;
    let exec_id = TestEnv::id("e1");
    let process = exec_process(
        c.spec(),
        [
            "sh",
            "-c",
            "echo out:$FOO:$(pwd):$(id -u):$(id -g); echo err >&2; exit 5",
        ],
    )
    .env("FOO=bar")
    .cwd("/tmp")
    .user(1000, 1001)
    .build()
    .unwrap();
    let (attach, rx) = handoff();
    let exec = task
        .exec(&exec_id, process, &StdioConfig::default(), attach)
        .await
        .unwrap();
    assert_eq!(exec.id(), &exec_id);
    assert_eq!(exec.container_id(), c.id());
    assert!(exec.pid() > 0 && exec.pid() != task.pid());
    assert!(!exec.has_terminal());
    let (out, err) = collect(rx.await.unwrap()).await;
    assert_eq!(out, "out:bar:/tmp:1000:1001\n");
    assert_eq!(err, "err\n");
    let status = exec.wait().await.unwrap();
    assert_eq!(status.code, 5);
    assert!(status.exited_at.is_some());
    assert_eq!(exec.status().await.unwrap(), TaskStatus::Stopped);
    // The init process is untouched by its exec's exit.
    assert_eq!(task.status().await.unwrap(), TaskStatus::Running);

    assert_eq!(exec.delete().await.unwrap().code, 5);
    assert!(files_of(c.bundle_dir(), "e1").is_empty());
    assert_eq!(exec.wait().await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        task.load_process(&exec_id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // A detached exec (output discarded) makes no FIFO at all.
    let quiet = StdioConfig {
        output: Output::Null,
        ..Default::default()
    };
    let process = exec_process(c.spec(), ["sh", "-c", "echo lost; exit 3"])
        .build()
        .unwrap();
    let exec = task
        .exec(&TestEnv::id("quiet"), process, &quiet, |io| {
            assert!(io.stdin.is_none() && io.stdout.is_none() && io.stderr.is_none());
            Ok(())
        })
        .await
        .unwrap();
    assert!(files_of(c.bundle_dir(), "quiet").is_empty());
    assert_eq!(exec.wait().await.unwrap().code, 3);
    assert_eq!(exec.delete().await.unwrap().code, 3);
    remove(&env, c, task).await;
    env.cleanup().await;
}

/// `spawn_exec` returns the process and its stdio without a callback.
#[tokio::test]
async fn spawn_exec_hands_back_the_stdio() {
    let env = TestEnv::new().await;
    let (c, task) = running(&env, "spawn", &["sleep", "600"]).await;
    let (exec, io) = task
        .spawn_exec(
            &TestEnv::id("e1"),
            exec_process(c.spec(), ["sh", "-c", "echo out; echo err >&2; exit 3"])
                .build()
                .unwrap(),
            &StdioConfig::default(),
        )
        .await
        .unwrap();
    let (out, err) = collect(io).await;
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    assert_eq!(exec.wait().await.unwrap().code, 3);
    exec.delete().await.unwrap();
    task.force_delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn exec_stdin_reaches_the_process_and_closing_it_ends_the_process() {
    let env = TestEnv::new().await;
    let (c, task) = running(&env, "stdin", &["sleep", "600"]).await;
    let with_stdin = StdioConfig {
        stdin: true,
        ..Default::default()
    };

    let (attach, rx) = handoff();
    let exec = task
        .exec(
            &TestEnv::id("cat"),
            exec_process(c.spec(), ["cat"]).build().unwrap(),
            &with_stdin,
            attach,
        )
        .await
        .unwrap();
    let mut io = rx.await.unwrap();
    let mut stdin = io.stdin.take().expect("stdin handle");
    let reader = tokio::spawn(collect(io));
    stdin.write_all(b"through the exec fifo\n").await.unwrap();
    stdin.close().await.unwrap();
    let status = tokio::time::timeout(PROMPT, exec.wait())
        .await
        .expect("cat must see end of file")
        .unwrap();
    assert_eq!(status.code, 0);
    assert_eq!(reader.await.unwrap().0, "through the exec fifo\n");
    exec.delete().await.unwrap();

    // `cat /dev/null | exec -i cat`: stdin ends as soon as the handles arrive; the close must not be
    // lost (moby#38001) and the exec must end at once.
    let started = Instant::now();
    let exec = task
        .exec(
            &TestEnv::id("devnull"),
            exec_process(c.spec(), ["cat"]).build().unwrap(),
            &with_stdin,
            |mut io| {
                drop(io.stdin.take());
                tokio::spawn(collect(io));
                Ok(())
            },
        )
        .await
        .unwrap();
    let status = tokio::time::timeout(PROMPT, exec.wait())
        .await
        .expect("cat must see end of file")
        .unwrap();
    assert_eq!(status.code, 0);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    exec.delete().await.unwrap();
    remove(&env, c, task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn an_exec_terminal_has_one_stream_an_initial_size_and_follows_resizes() {
    let env = TestEnv::new().await;
    let (c, task) = running(&env, "tty", &["sleep", "600"]).await;
    let process = exec_process(
        c.spec(),
        [
            "sh",
            "-c",
            "echo term:$TERM; stty size; read x; stty size; read y; stty size; exit 4",
        ],
    )
    .terminal(true)
    .console_size(77, 33)
    .build()
    .unwrap();
    let (attach, rx) = handoff();
    // The stdio config's own `terminal` is overridden by the process spec.
    let exec = task
        .exec(
            &TestEnv::id("tty1"),
            process,
            &StdioConfig {
                stdin: true,
                terminal: false,
                output: Output::Pipe,
            },
            attach,
        )
        .await
        .unwrap();
    assert!(exec.has_terminal());
    let mut io = rx.await.unwrap();
    assert!(io.stderr.is_none(), "a terminal has no stderr stream");
    assert_eq!(
        files_of(c.bundle_dir(), "tty1")
            .iter()
            .filter(|p| p.to_string_lossy().ends_with("-stderr"))
            .count(),
        0
    );
    let mut stdin = io.stdin.take().unwrap();
    let mut out = io.stdout.take().unwrap();
    let mut seen = String::new();
    read_until(&mut out, &mut seen, "33 77").await;
    assert!(seen.contains("term:xterm"), "{seen:?}");

    exec.resize(100, 40).await.unwrap();
    stdin.write_all(b"\n").await.unwrap();
    read_until(&mut out, &mut seen, "40 100").await;
    exec.resize(120, 50).await.unwrap();
    stdin.write_all(b"\n").await.unwrap();
    read_until(&mut out, &mut seen, "50 120").await;
    assert_eq!(exec.wait().await.unwrap().code, 4);

    let err = exec.resize(0, 10).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    drop(stdin);
    exec.delete().await.unwrap();
    assert!(files_of(c.bundle_dir(), "tty1").is_empty());
    remove(&env, c, task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn an_init_process_with_a_terminal_is_resizable() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("inittty");
    let spec = env
        .spec(&["sh", "-c", "read x; stty size"])
        .terminal(true)
        .build()
        .unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &HashMap::new())
        .await
        .unwrap();
    let (attach, rx) = handoff();
    let task = c
        .start(
            None,
            &StdioConfig {
                stdin: true,
                ..Default::default()
            },
            attach,
        )
        .await
        .unwrap();
    let mut io = rx.await.unwrap();
    assert!(io.stderr.is_none());
    let mut stdin = io.stdin.take().unwrap();
    let mut out = io.stdout.take().unwrap();
    task.resize(91, 19).await.unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    let mut seen = String::new();
    read_until(&mut out, &mut seen, "19 91").await;
    assert_eq!(task.wait().await.unwrap().code, 0);
    drop(stdin);
    task.delete().await.unwrap();
    c.delete().await.unwrap();
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

#[tokio::test]
async fn resizing_or_killing_an_exec_without_a_terminal() {
    let env = TestEnv::new().await;
    let (c, task) = running(&env, "notty", &["sleep", "600"]).await;
    let exec = task
        .exec(
            &TestEnv::id("sleeper"),
            exec_process(c.spec(), ["sleep", "600"]).build().unwrap(),
            &StdioConfig::default(),
            |_| Ok(()),
        )
        .await
        .unwrap();
    // containerd's shim accepts and ignores this; the library says what is wrong.
    let err = exec.resize(80, 24).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("has no terminal"), "{err}");

    let err = exec.delete().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert_eq!(
        libcontainerd::Signal::new(0).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    exec.kill(libcontainerd::Signal::TERM).await.unwrap();
    assert_eq!(exec.wait().await.unwrap().code, 128 + libc::SIGTERM as u32);
    assert_eq!(task.status().await.unwrap(), TaskStatus::Running);
    let err = exec.kill(libcontainerd::Signal::TERM).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    exec.delete().await.unwrap();
    remove(&env, c, task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_missing_command_is_not_found_and_leaks_no_process_or_fifo() {
    let env = TestEnv::new().await;
    let (c, task) = running(&env, "missing", &["sleep", "600"]).await;
    let before = pids(&env, "missing").await;
    assert_eq!(before, vec![task.pid()]);
    let with_stdin = StdioConfig {
        stdin: true,
        ..Default::default()
    };
    let mut attached = false;
    let err = task
        .exec(
            &TestEnv::id("nocmd"),
            exec_process(c.spec(), ["no-such-command"]).build().unwrap(),
            &with_stdin,
            |_| {
                attached = true;
                Ok(())
            },
        )
        .await
        .unwrap_err();
    assert_eq!(ExecFailure::of(&err), Some(ExecFailure::NotFound), "{err}");
    assert!(err.to_string().contains("no-such-command"), "{err}");
    assert!(
        !attached,
        "attach must not be called for a process that never ran"
    );
    assert!(files_of(c.bundle_dir(), "nocmd").is_empty());
    assert_eq!(
        task.load_process(&TestEnv::id("nocmd"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(pids(&env, "missing").await, before);

    let err = task
        .exec(
            &TestEnv::id("noexec"),
            exec_process(c.spec(), ["/etc/passwd"]).build().unwrap(),
            &StdioConfig::default(),
            |_| Ok(()),
        )
        .await
        .unwrap_err();
    assert_eq!(
        ExecFailure::of(&err),
        Some(ExecFailure::NotExecutable),
        "{err}"
    );
    assert!(files_of(c.bundle_dir(), "noexec").is_empty());
    assert_eq!(pids(&env, "missing").await, before);
    // The failed id is free again.
    let exec = task
        .exec(
            &TestEnv::id("nocmd"),
            exec_process(c.spec(), ["true"]).build().unwrap(),
            &StdioConfig::default(),
            |_| Ok(()),
        )
        .await
        .unwrap();
    assert_eq!(exec.wait().await.unwrap().code, 0);
    exec.delete().await.unwrap();
    remove(&env, c, task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_reused_exec_id_already_exists_and_keeps_the_first() {
    let env = TestEnv::new().await;
    let (c, task) = running(&env, "reuse", &["sleep", "600"]).await;
    let id = TestEnv::id("same");
    let (attach, rx) = handoff();
    let first = task
        .exec(
            &id,
            exec_process(c.spec(), ["sh", "-c", "read l; echo first:$l"])
                .build()
                .unwrap(),
            &StdioConfig {
                stdin: true,
                ..Default::default()
            },
            attach,
        )
        .await
        .unwrap();
    let fifos = files_of(c.bundle_dir(), "same");
    assert_eq!(fifos.len(), 3, "{fifos:?}");

    for output in [Output::Pipe, Output::Null] {
        let err = task
            .exec(
                &id,
                exec_process(c.spec(), ["true"]).build().unwrap(),
                &StdioConfig {
                    output,
                    ..Default::default()
                },
                |_| Ok(()),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        assert!(err.to_string().contains("already in use"), "{err}");
    }
    // The container's own id would take over the init process's FIFOs.
    let err = task
        .exec(
            c.id(),
            exec_process(c.spec(), ["true"]).build().unwrap(),
            &StdioConfig::default(),
            |_| Ok(()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");

    // The first exec is untouched: same FIFOs, still attached, still works.
    assert_eq!(files_of(c.bundle_dir(), "same"), fifos);
    let mut io = rx.await.unwrap();
    let mut stdin = io.stdin.take().unwrap();
    let reader = tokio::spawn(collect(io));
    stdin.write_all(b"ok\n").await.unwrap();
    stdin.close().await.unwrap();
    assert_eq!(first.wait().await.unwrap().code, 0);
    assert_eq!(reader.await.unwrap().0, "first:ok\n");
    first.delete().await.unwrap();

    // Once deleted, the id can be used again.
    let again = task
        .exec(
            &id,
            exec_process(c.spec(), ["true"]).build().unwrap(),
            &StdioConfig::default(),
            |_| Ok(()),
        )
        .await
        .unwrap();
    assert_eq!(again.wait().await.unwrap().code, 0);
    again.delete().await.unwrap();
    assert!(Id::new("../x").is_err() && Id::new("a b").is_err());
    remove(&env, c, task).await;
    env.cleanup().await;
}

#[tokio::test]
async fn exec_into_a_paused_stopped_or_unknown_container_is_refused() {
    let env = TestEnv::new().await;
    let (c, task) = running(&env, "states", &["sleep", "600"]).await;
    let mut tasks = TasksClient::new(libcontainerd::raw::channel(&env.client));
    let request = |env: &TestEnv| {
        raw(
            env,
            PauseTaskRequest {
                container_id: "states".into(),
            },
        )
    };
    tasks.pause(request(&env)).await.unwrap();
    assert_eq!(task.status().await.unwrap(), TaskStatus::Paused);
    let err = tokio::time::timeout(
        PROMPT,
        task.exec(
            &TestEnv::id("p1"),
            exec_process(c.spec(), ["true"]).build().unwrap(),
            &StdioConfig::default(),
            |_| Ok(()),
        ),
    )
    .await
    .expect("an exec into a paused container must not hang")
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("it is paused"), "{err}");
    assert!(files_of(c.bundle_dir(), "p1").is_empty());
    tasks
        .resume(raw(
            &env,
            ResumeTaskRequest {
                container_id: "states".into(),
            },
        ))
        .await
        .unwrap();

    task.kill(libcontainerd::Signal::KILL).await.unwrap();
    task.wait().await.unwrap();
    let err = task
        .exec(
            &TestEnv::id("s1"),
            exec_process(c.spec(), ["true"]).build().unwrap(),
            &StdioConfig::default(),
            |_| Ok(()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("it is stopped"), "{err}");
    assert!(files_of(c.bundle_dir(), "s1").is_empty());

    // A stale handle on a task that was deleted meanwhile.
    task.delete().await.unwrap();
    let err = task
        .exec(
            &TestEnv::id("d1"),
            exec_process(c.spec(), ["true"]).build().unwrap(),
            &StdioConfig::default(),
            |_| Ok(()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("has no task"), "{err}");
    assert_eq!(c.task().await.unwrap_err().kind(), ErrorKind::NotFound);
    c.delete().await.unwrap();

    let err = env
        .client
        .load_container(&TestEnv::id("never-made"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.to_string(), "no such container: never-made");
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

#[tokio::test]
async fn an_exec_outlives_the_init_exit_and_keeps_its_own_status() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("dying");
    let spec = env.spec(&["sh", "-c", "read x; exit 7"]).build().unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &HashMap::new())
        .await
        .unwrap();
    let (attach, rx) = handoff();
    let task = c
        .start(
            None,
            &StdioConfig {
                stdin: true,
                ..Default::default()
            },
            attach,
        )
        .await
        .unwrap();
    let exec = task
        .exec(
            &TestEnv::id("bystander"),
            exec_process(c.spec(), ["sleep", "600"]).build().unwrap(),
            &StdioConfig::default(),
            |_| Ok(()),
        )
        .await
        .unwrap();
    let exec_wait = tokio::spawn({
        let exec = exec.clone();
        async move { exec.wait().await }
    });
    let mut io = rx.await.unwrap();
    io.stdin.take().unwrap().close().await.unwrap();

    let init = tokio::time::timeout(PROMPT, task.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(init.code, 7);
    let status = tokio::time::timeout(PROMPT, exec_wait)
        .await
        .expect("the exec's exit must arrive after the init's")
        .unwrap()
        .unwrap();
    // Killed with its pid namespace, not the init's 7.
    assert_eq!(status.code, 128 + libc::SIGKILL as u32, "{status:?}");
    assert_eq!(exec.wait().await.unwrap().code, status.code);
    assert_eq!(exec.delete().await.unwrap().code, status.code);
    assert_eq!(task.delete().await.unwrap().code, 7);
    c.delete().await.unwrap();
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

#[tokio::test]
async fn a_missing_bundle_dir_is_a_clear_error_on_re_attach() {
    let env = TestEnv::new().await;
    let (c, task) = running(&env, "nobundle", &["sleep", "600"]).await;
    let exec = task
        .exec(
            &TestEnv::id("e"),
            exec_process(c.spec(), ["sleep", "600"]).build().unwrap(),
            &StdioConfig::default(),
            |_| Ok(()),
        )
        .await
        .unwrap();
    std::fs::remove_dir_all(c.bundle_dir()).unwrap();
    let loaded = env.client.load_container(c.id()).await.unwrap();
    let err = loaded.attach_task(|_| Ok(())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("bundle dir"), "{err}");
    let err = task
        .attach_process(exec.id(), |_| Ok(()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("bundle dir"), "{err}");
    let err = task
        .attach_process(&TestEnv::id("nope"), |_| Ok(()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    exec.force_delete().await.unwrap();
    remove(&env, c, task).await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Re-attach across client processes. The test binary re-runs itself as the clients: one child
// starts the container and an exec and exits abruptly, as a crashed or restarted caller would; a
// second child loads the container, re-attaches to both processes, talks to them and closes their
// stdin. The parent only orchestrates and checks.

const ROLE: &str = "LCD_EXEC_TEST_ROLE";
const SOCKET: &str = "LCD_EXEC_TEST_SOCKET";
const NAMESPACE: &str = "LCD_EXEC_TEST_NAMESPACE";
const STATE: &str = "LCD_EXEC_TEST_STATE";

/// The rest of the line after `marker` in a child's output (libtest prints its own text in front).
fn field(output: &str, marker: &str) -> String {
    output
        .lines()
        .find_map(|l| l.find(marker).map(|i| l[i + marker.len()..].to_string()))
        .unwrap_or_else(|| panic!("no {marker:?} in {output}"))
}

fn run_child(env: &TestEnv, role: &str) -> String {
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "cross_process_client",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(SOCKET, env.daemon.config().socket())
        .env(NAMESPACE, &env.namespace)
        .env(STATE, env.dir().join("bundles"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the test binary as a child");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "child {role} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
#[ignore = "helper: run as a child process by re_attach_works_across_client_processes"]
async fn cross_process_client() {
    let Ok(role) = std::env::var(ROLE) else {
        println!("skipped: only meaningful as a child of re_attach_works_across_client_processes");
        return;
    };
    let client = Client::connect(ClientConfig::new(
        std::env::var(SOCKET).unwrap(),
        std::env::var(NAMESPACE).unwrap(),
        std::env::var(STATE).unwrap(),
    ))
    .await
    .unwrap();
    let c = client.load_container(&TestEnv::id("xproc")).await.unwrap();
    let with_stdin = StdioConfig {
        stdin: true,
        ..Default::default()
    };
    match role.as_str() {
        "start" => {
            let (attach, rx) = handoff();
            let task = c.start(None, &with_stdin, attach).await.unwrap();
            let mut io = rx.await.unwrap();
            let mut out = io.stdout.take().unwrap();
            let mut seen = String::new();
            read_until(&mut out, &mut seen, "init-ready").await;
            let process = exec_process(c.spec(), ["sh", "-c", "read l; echo exec-got:$l"])
                .build()
                .unwrap();
            let exec = task
                .exec(&TestEnv::id("xexec"), process, &with_stdin, |io| {
                    // Kept open until the abrupt exit below, like a caller that crashes.
                    std::mem::forget(io);
                    Ok(())
                })
                .await
                .unwrap();
            println!("STARTED {} {}", task.pid(), exec.pid());
            // No destructors: nothing is closed in an orderly way, as when a caller dies.
            std::process::exit(0);
        }
        "attach" => {
            let (attach, rx) = handoff();
            let task = c.attach_task(attach).await.unwrap();
            let mut io = rx.await.unwrap();
            let mut init_stdin = io.stdin.take().expect("init stdin re-opened");
            let init_reader = tokio::spawn(collect(io));
            let (attach, rx) = handoff();
            let exec = task
                .attach_process(&TestEnv::id("xexec"), attach)
                .await
                .unwrap();
            let mut io = rx.await.unwrap();
            let mut exec_stdin = io.stdin.take().expect("exec stdin re-opened");
            let exec_reader = tokio::spawn(collect(io));

            exec_stdin.write_all(b"second\n").await.unwrap();
            exec_stdin.close().await.unwrap();
            let exec_status = exec.wait().await.unwrap();
            let (exec_out, _) = exec_reader.await.unwrap();

            init_stdin.write_all(b"after-reattach\n").await.unwrap();
            // cat in the init ends only if this close reaches it (moby forgets the CloseIO here).
            init_stdin.close().await.unwrap();
            let init_status = tokio::time::timeout(PROMPT, task.wait())
                .await
                .expect("closing the re-attached stdin must reach the init process")
                .unwrap();
            let (init_out, _) = init_reader.await.unwrap();
            println!("PIDS {} {}", task.pid(), exec.pid());
            println!("EXEC {} {exec_out:?}", exec_status.code);
            println!("INIT {} {init_out:?}", init_status.code);
        }
        other => panic!("unknown role {other}"),
    }
}

#[tokio::test]
async fn re_attach_works_across_client_processes() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("xproc");
    let spec = env
        .spec(&["sh", "-c", "echo init-ready; cat; echo init-done"])
        .build()
        .unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &HashMap::new())
        .await
        .unwrap();

    let started = run_child(&env, "start");
    let line = field(&started, "STARTED ");
    let task = c.task().await.unwrap();
    assert_eq!(task.status().await.unwrap(), TaskStatus::Running);
    let exec = task.load_process(&TestEnv::id("xexec")).await.unwrap();
    assert_eq!(line, format!("{} {}", task.pid(), exec.pid()));

    let attached = run_child(&env, "attach");
    let find = |prefix: &str| field(&attached, prefix);
    assert_eq!(find("PIDS "), line);
    assert_eq!(find("EXEC "), r#"0 "exec-got:second\n""#);
    // Output written after the re-attach arrives (init-ready was read by the first client).
    assert_eq!(find("INIT "), r#"0 "after-reattach\ninit-done\n""#);

    assert_eq!(exec.delete().await.unwrap().code, 0);
    assert_eq!(task.delete().await.unwrap().code, 0);
    c.delete().await.unwrap();
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
#[ignore = "benchmark: cargo test --test exec -- --ignored exec_latency --nocapture"]
async fn exec_latency() {
    let env = TestEnv::new().await;
    let (c, task) = running(&env, "bench", &["sleep", "600"]).await;
    let mut samples = vec![];
    for i in 0..30 {
        let started = Instant::now();
        let exec = task
            .exec(
                &TestEnv::id(&format!("b{i}")),
                exec_process(c.spec(), ["true"]).build().unwrap(),
                &StdioConfig::default(),
                |io| {
                    tokio::spawn(collect(io));
                    Ok(())
                },
            )
            .await
            .unwrap();
        assert_eq!(exec.wait().await.unwrap().code, 0);
        exec.delete().await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "exec true (exec+start+wait+delete), 30 runs: median {:?}, min {:?}, max {:?}",
        samples[15], samples[0], samples[29]
    );
    remove(&env, c, task).await;
    env.cleanup().await;
}
