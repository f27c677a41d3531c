//! Containers and tasks against a real containerd and runc: create, start, IO, wait, kill, delete,
//! and every bad input the foundation promises a clear error for.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::TestEnv;
use libcontainerd::{
    Client, ClientConfig, DirectIo, ErrorKind, ExecFailure, Id, Output, Runtime, StdioConfig,
    TaskStatus,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn no_labels() -> HashMap<String, String> {
    HashMap::new()
}

/// Read both output streams to the end, concurrently (a full pipe would stall the other).
async fn collect(io: DirectIo) -> (Vec<u8>, Vec<u8>) {
    async fn drain(r: Option<libcontainerd::OutputReader>) -> Vec<u8> {
        let mut buf = vec![];
        if let Some(mut r) = r {
            r.read_to_end(&mut buf).await.expect("read output");
        }
        buf
    }
    tokio::join!(drain(io.stdout), drain(io.stderr))
}

#[tokio::test]
async fn version_reports_containerd() {
    let env = TestEnv::new().await;
    let v = env.client.version().await.unwrap();
    assert!(
        v.version.starts_with('1') || v.version.starts_with('v'),
        "{v:?}"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn container_records_round_trip_and_delete_removes_the_bundle() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("rec");
    let spec = env.spec(&["true"]).hostname("box").build().unwrap();
    let mut labels = no_labels();
    labels.insert("purpose".into(), "test".into());
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &labels)
        .await
        .unwrap();
    assert!(c.bundle_dir().is_dir());

    let loaded = env.client.load_container(&id).await.unwrap();
    assert_eq!(loaded.bundle_dir(), c.bundle_dir());
    assert_eq!(
        loaded.labels().get("purpose").map(String::as_str),
        Some("test")
    );
    assert_eq!(loaded.spec().hostname().as_deref(), Some("box"));

    let all = env.client.list_containers().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, id);
    assert_eq!(all[0].runtime, Runtime::default());
    assert!(all[0].created_at.is_some());

    let err = c.task().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let (both, task) = env.client.load_container_and_task(&id).await.unwrap();
    assert_eq!(both.bundle_dir(), c.bundle_dir());
    assert!(task.is_none(), "a container without a task has none");

    loaded.delete().await.unwrap();
    assert!(!c.bundle_dir().exists());
    assert!(env.client.list_containers().await.unwrap().is_empty());
    let err = env.client.load_container(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.to_string(), "no such container: rec");
    let err = env.client.load_container_and_task(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.to_string(), "no such container: rec");
    env.cleanup().await;
}

#[tokio::test]
async fn containerd_selects_containers_by_label_and_id_filters() {
    let env = TestEnv::new().await;
    let spec = env.spec(&["true"]).build().unwrap();
    let mut made = Vec::new();
    for (id, name) in [("flt-a1", "web"), ("flt-a2", "db.1"), ("flt-b1", "cache")] {
        let mut labels = no_labels();
        labels.insert("io.example.name".into(), name.into());
        let id = TestEnv::id(id);
        made.push(
            env.client
                .new_container(&id, &spec, &Runtime::default(), &labels)
                .await
                .unwrap(),
        );
    }
    let ids = |found: Vec<libcontainerd::ContainerInfo>| {
        let mut ids: Vec<String> = found.into_iter().map(|c| c.id.to_string()).collect();
        ids.sort();
        ids
    };
    let by_name = |name: &str| vec![format!(r#"labels."io.example.name"=="{name}""#)];
    let found = env.client.list_containers_matching(&by_name("db.1")).await;
    assert_eq!(ids(found.unwrap()), ["flt-a2"]);
    assert!(env
        .client
        .list_containers_matching(&by_name("nobody"))
        .await
        .unwrap()
        .is_empty());
    // Two filters are ORed: a name, or an id prefix.
    let either = vec![by_name("cache").remove(0), r#"id~="^flt-a""#.to_string()];
    let found = env.client.list_containers_matching(&either).await.unwrap();
    assert_eq!(ids(found), ["flt-a1", "flt-a2", "flt-b1"]);
    let err = env
        .client
        .list_containers_matching(&["labels.==".to_string()])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    for c in made {
        c.delete().await.unwrap();
    }
    env.cleanup().await;
}

#[tokio::test]
async fn duplicate_ids_already_exist_and_keep_the_first() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("dup");
    let spec = env.spec(&["true"]).build().unwrap();
    let first = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap();
    let err = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("already in use"), "{err}");
    assert!(
        first.bundle_dir().is_dir(),
        "the first container's bundle must survive"
    );
    first.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn missing_or_bad_rootfs_is_refused_before_anything_is_made() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("nofs");
    let missing = libcontainerd::spec::SpecBuilder::new("/nonexistent/rootfs")
        .build()
        .unwrap();
    let err = env
        .client
        .new_container(&id, &missing, &Runtime::default(), &no_labels())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string()
            .contains("rootfs /nonexistent/rootfs does not exist"),
        "{err}"
    );

    let file = env.dir().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let not_dir = libcontainerd::spec::SpecBuilder::new(&file)
        .build()
        .unwrap();
    let err = env
        .client
        .new_container(&id, &not_dir, &Runtime::default(), &no_labels())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(env.client.list_containers().await.unwrap().is_empty());
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

/// A spec names no container: one spec serves two containers, each in a cgroup and with a
/// hostname of its own, set from its id and the client's namespace.
#[tokio::test]
async fn one_spec_serves_two_containers_each_in_its_own_cgroup() {
    let env = TestEnv::new().await;
    let spec = env
        .spec(&["sh", "-c", "hostname; grep pids /proc/self/cgroup"])
        .build()
        .unwrap();
    for name in ["twin-a", "twin-b"] {
        let id = TestEnv::id(name);
        let c = env
            .client
            .new_container(&id, &spec, &Runtime::default(), &no_labels())
            .await
            .unwrap();
        let (task, io) = c.create_task(None, &StdioConfig::default()).await.unwrap();
        let reader = tokio::spawn(collect(io));
        task.start().await.unwrap();
        assert_eq!(task.wait().await.unwrap().code, 0);
        let (out, err) = reader.await.unwrap();
        let out = String::from_utf8_lossy(&out);
        assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
        assert!(out.starts_with(&format!("{name}\n")), "{out}");
        assert!(
            out.trim_end()
                .ends_with(&format!("/{}/{name}", env.namespace)),
            "{out}"
        );
        task.delete().await.unwrap();
        c.delete().await.unwrap();
    }
    env.cleanup().await;
}

#[tokio::test]
async fn invalid_ids_never_reach_containerd() {
    for bad in ["", "../x", "a/b", "-a", "a..b", &"x".repeat(77)] {
        let err = Id::new(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
    }
}

#[tokio::test]
async fn stdout_and_stderr_stay_apart_and_exit_codes_arrive() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("io");
    let spec = env
        .spec(&["sh", "-c", "echo out; echo err >&2; exit 3"])
        .build()
        .unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = c
        .start(None, &StdioConfig::default(), |io| {
            let _ = tx.send(tokio::spawn(collect(io)));
            Ok(())
        })
        .await
        .unwrap();
    assert!(task.pid() > 0);
    let status = task.wait().await.unwrap();
    let (out, err) = rx.await.unwrap().await.unwrap();
    assert_eq!(out, b"out\n");
    assert_eq!(err, b"err\n");
    assert_eq!(status.code, 3);
    assert!(status.exited_at.is_some());
    assert_eq!(task.status().await.unwrap(), TaskStatus::Stopped);
    let deleted = task.delete().await.unwrap();
    assert_eq!(deleted.code, 3);
    c.delete().await.unwrap();
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

#[tokio::test]
async fn a_mebibyte_of_output_arrives_whole() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("big");
    // 1 MiB of 'a' (1024 lines of 1023 a's and a newline) from busybox's own tools.
    let spec = env
        .spec(&["sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' a"])
        .build()
        .unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap();
    let (task, io) = c.create_task(None, &StdioConfig::default()).await.unwrap();
    let reader = tokio::spawn(collect(io));
    task.start().await.unwrap();
    assert_eq!(task.wait().await.unwrap().code, 0);
    let (out, err) = reader.await.unwrap();
    assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
    assert_eq!(out.len(), 1 << 20);
    assert!(out.iter().all(|&b| b == b'a'));
    task.delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}

/// Output nobody reads must never block a container: a dropped reader drains its stream, and a
/// discarded stream is /dev/null. Each case writes 10 MiB to each stream (a blocked FIFO holds 64
/// KiB), then a last line on stdout.
#[tokio::test]
async fn output_nobody_reads_never_blocks_the_container() {
    let env = TestEnv::new().await;
    let script = "head -c 10485760 /dev/zero; head -c 10485760 /dev/zero >&2; echo end";
    // The time limit only turns a hang into a failure; the cases take about a second each.
    let limit = Duration::from_secs(120);
    for (name, output, read_stdout) in [
        ("drop-both", Output::Pipe, false),
        ("read-out-drop-err", Output::Pipe, true),
        ("discard-err", Output::PipeStdout, true),
    ] {
        let id = TestEnv::id(name);
        let spec = env.spec(&["sh", "-c", script]).build().unwrap();
        let c = env
            .client
            .new_container(&id, &spec, &Runtime::default(), &no_labels())
            .await
            .unwrap();
        let stdio = StdioConfig {
            output: output.clone(),
            ..Default::default()
        };
        let mut stdout = None;
        let task = c
            .start(None, &stdio, |io| {
                // stderr is dropped here (or was never piped); stdout too unless it is read.
                if read_stdout {
                    stdout = io.stdout;
                }
                Ok(())
            })
            .await
            .unwrap();
        let reader = tokio::spawn(async move {
            let mut buf = vec![];
            if let Some(mut r) = stdout {
                r.read_to_end(&mut buf).await.expect("read stdout");
            }
            buf
        });
        let status = tokio::time::timeout(limit, task.wait())
            .await
            .unwrap_or_else(|_| panic!("{name}: the container blocked on its output"))
            .unwrap();
        assert_eq!(status.code, 0, "{name}");
        let out = reader.await.unwrap();
        if read_stdout {
            assert_eq!(out.len(), (10 << 20) + 4, "{name}");
            assert!(out.ends_with(b"end\n"), "{name}");
        }
        task.delete().await.unwrap();
        c.delete().await.unwrap();
    }
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

/// The async-first form: `spawn` returns the task and its stdio; and a callback may fail with an
/// error of the caller's own type, which removes the task and keeps the caller's error as source.
#[tokio::test]
async fn spawn_hands_back_stdio_and_a_callbacks_own_error_removes_the_task() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("spawned");
    let spec = env.spec(&["cat"]).build().unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap();
    let with_stdin = StdioConfig {
        stdin: true,
        ..Default::default()
    };
    let (task, mut io) = c.spawn(None, &with_stdin).await.unwrap();
    let mut stdin = io.stdin.take().expect("stdin");
    stdin.write_all(b"round trip").await.unwrap();
    stdin.close().await.unwrap();
    let (out, _) = collect(io).await;
    assert_eq!(out, b"round trip");
    assert_eq!(task.wait().await.unwrap().code, 0);
    task.delete().await.unwrap();

    #[derive(Debug)]
    struct TerminalGone;
    impl std::fmt::Display for TerminalGone {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the caller's terminal is gone")
        }
    }
    impl std::error::Error for TerminalGone {}
    let err = c
        .start(None, &with_stdin, |_io| Err(TerminalGone.into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unknown, "{err}");
    assert_eq!(
        err.to_string(),
        "attach stdio of container spawned: the caller's terminal is gone"
    );
    let source = std::error::Error::source(&err).expect("the caller's error as source");
    assert!(
        source.downcast_ref::<TerminalGone>().is_some(),
        "{source:?}"
    );
    assert_eq!(c.task().await.unwrap_err().kind(), ErrorKind::NotFound);
    c.delete().await.unwrap();
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

#[tokio::test]
async fn stdin_reaches_the_container_and_its_end_closes_it() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("cat");
    let spec = env.spec(&["cat"]).build().unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap();
    let config = StdioConfig {
        stdin: true,
        ..Default::default()
    };
    let (task, mut io) = c.create_task(None, &config).await.unwrap();
    let mut stdin = io.stdin.take().expect("stdin handle");
    let reader = tokio::spawn(collect(io));
    task.start().await.unwrap();
    stdin.write_all(b"hello through the fifo\n").await.unwrap();
    stdin.close().await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), task.wait())
        .await
        .expect("cat must see end of file")
        .unwrap();
    assert_eq!(status.code, 0);
    let (out, _) = reader.await.unwrap();
    assert_eq!(out, b"hello through the fifo\n");
    task.delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn stdin_closed_before_start_still_reaches_the_process() {
    // `cat /dev/null | lcd run -i ROOTFS cat`: stdin ends before the process even runs.
    let env = TestEnv::new().await;
    let id = TestEnv::id("early");
    let spec = env.spec(&["cat"]).build().unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap();
    let config = StdioConfig {
        stdin: true,
        ..Default::default()
    };
    let task = c
        .start(None, &config, |mut io| {
            // Dropping the handle without writing anything must deliver end of file.
            drop(io.stdin.take());
            tokio::spawn(collect(io));
            Ok(())
        })
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), task.wait())
        .await
        .expect("cat must see end of file")
        .unwrap();
    assert_eq!(status.code, 0);
    task.delete().await.unwrap();
    c.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn a_missing_command_fails_create_and_leaves_nothing() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("nocmd");
    let spec = env.spec(&["no-such-command"]).build().unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap();
    let err = c
        .start(
            None,
            &StdioConfig {
                stdin: true,
                ..Default::default()
            },
            |_| Ok(()),
        )
        .await
        .unwrap_err();
    assert_eq!(ExecFailure::of(&err), Some(ExecFailure::NotFound), "{err}");
    assert!(err.to_string().contains("no-such-command"), "{err}");
    assert_eq!(c.task().await.unwrap_err().kind(), ErrorKind::NotFound);
    // Only the bundle dir itself remains: no FIFO.
    let left: Vec<_> = std::fs::read_dir(c.bundle_dir()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");

    let spec = env.spec(&["/etc/passwd"]).build().unwrap();
    let c2 = env
        .client
        .new_container(
            &TestEnv::id("noexec"),
            &spec,
            &Runtime::default(),
            &no_labels(),
        )
        .await
        .unwrap();
    let err = c2
        .start(None, &StdioConfig::default(), |_| Ok(()))
        .await
        .unwrap_err();
    assert_eq!(
        ExecFailure::of(&err),
        Some(ExecFailure::NotExecutable),
        "{err}"
    );
    c.delete().await.unwrap();
    c2.delete().await.unwrap();
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

#[tokio::test]
async fn kill_wait_and_the_states_of_a_task() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("sleeper");
    let spec = env.spec(&["sleep", "600"]).build().unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap();
    let (task, _io) = c.create_task(None, &StdioConfig::default()).await.unwrap();
    assert_eq!(task.status().await.unwrap(), TaskStatus::Created);
    task.start().await.unwrap();
    assert_eq!(task.status().await.unwrap(), TaskStatus::Running);
    assert_eq!(c.task().await.unwrap().pid(), task.pid());
    let (_, found) = env.client.load_container_and_task(&id).await.unwrap();
    let (found, status) = found.expect("the running task");
    assert_eq!((found.pid(), status), (task.pid(), TaskStatus::Running));

    let err = task.delete().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    let err = c.delete().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");

    let listed = env.client.list_tasks().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, TaskStatus::Running);
    assert_eq!(listed[0].container_id, "sleeper");
    assert_eq!(listed[0].pid, task.pid());

    task.kill(libcontainerd::Signal::KILL).await.unwrap();
    let status = task.wait().await.unwrap();
    assert_eq!(status.code, 137);
    let (_, found) = env.client.load_container_and_task(&id).await.unwrap();
    assert_eq!(found.map(|(_, s)| s), Some(TaskStatus::Stopped));
    let err = task.kill(libcontainerd::Signal::TERM).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("not running"), "{err}");
    assert_eq!(task.delete().await.unwrap().code, 137);
    c.delete().await.unwrap();
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

#[tokio::test]
async fn force_delete_removes_a_task_that_was_only_created() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("created");
    let spec = env.spec(&["sleep", "600"]).build().unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap();
    let (task, _io) = c
        .create_task(
            None,
            &StdioConfig {
                stdin: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(task.status().await.unwrap(), TaskStatus::Created);
    task.force_delete().await.unwrap();
    assert_eq!(c.task().await.unwrap_err().kind(), ErrorKind::NotFound);
    c.delete().await.unwrap();
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

/// A handle that deleted its task earlier must not trust that long: a task another client created
/// since still blocks the delete (containerd itself would remove the record under it).
#[tokio::test]
async fn a_task_created_elsewhere_after_ours_was_deleted_still_blocks_delete() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("handover");
    let spec = env.spec(&["sleep", "600"]).build().unwrap();
    let ours = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap();
    let (task, _io) = ours
        .create_task(None, &StdioConfig::default())
        .await
        .unwrap();
    task.force_delete().await.unwrap();

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let theirs = env.client.load_container(&id).await.unwrap();
    let (other, _io) = theirs
        .create_task(None, &StdioConfig::default())
        .await
        .unwrap();
    other.start().await.unwrap();
    let err = ours.delete().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert_eq!(theirs.task().await.unwrap().pid(), other.pid());

    other.force_delete().await.unwrap();
    ours.delete().await.unwrap();
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

/// Run `script` (sh -c) with `output`, wait for it, delete its task, and return the log file's text.
#[allow(clippy::unwrap_used)]
async fn logged_output(env: &TestEnv, name: &str, script: &str, output: Output) -> String {
    let id = TestEnv::id(name);
    let spec = env.spec(&["sh", "-c", script]).build().unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap();
    let config = StdioConfig {
        output,
        ..Default::default()
    };
    let task = c.start(None, &config, |_| Ok(())).await.unwrap();
    assert_eq!(task.wait().await.unwrap().code, 0);
    task.delete().await.unwrap();
    c.delete().await.unwrap();
    std::fs::read_to_string(env.dir().join(format!("logs/{name}.log"))).unwrap_or_default()
}

#[tokio::test]
async fn file_output_is_written_by_the_shim() {
    let env = TestEnv::new().await;
    let log = env.dir().join("logs/logged.log");
    let text = logged_output(&env, "logged", "echo to-out", Output::File(log)).await;
    assert_eq!(text, "to-out\n");
    env.cleanup().await;
}

/// containerd's `file://` IO (1.6 and 1.7) lets the stdout copier close the descriptor both
/// streams share: stderr written once stdout has ended is lost. Deterministic when the process
/// closes stdout first; at exit it is a race, which lost stderr's last line in about 3% of runs under
/// load here. This pins the reason `Output::File` is documented as lossy and lcd logs through
/// `Output::Binary`; if containerd fixes it, this test says so.
#[tokio::test]
async fn file_output_loses_stderr_written_after_stdout_ended() {
    let env = TestEnv::new().await;
    let log = env.dir().join("logs/late.log");
    let script = "exec 1>&-; sleep 0.2; echo to-err >&2";
    let text = logged_output(&env, "late", script, Output::File(log)).await;
    assert_eq!(
        text, "",
        "containerd's file:// IO kept stderr: Output::File may no longer be lossy"
    );
    env.cleanup().await;
}

/// A logging binary gets both streams on descriptors of its own: nothing is lost whichever ends first.
#[tokio::test]
async fn binary_output_keeps_both_streams_whichever_ends_first() {
    let env = TestEnv::new().await;
    let logger = env.dir().join("logger.sh");
    // containerd runs it as `logger.sh log-to FILE`, with the streams on fds 3 and 4.
    std::fs::write(
        &logger,
        "#!/bin/sh\nexec 5>&-\ncat <&3 >>\"$2\" &\ncat <&4 >>\"$2\"\nwait\n",
    )
    .unwrap();
    std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let output = |name: &str| Output::Binary {
        path: logger.clone(),
        args: vec![(
            "log-to".into(),
            env.dir()
                .join(format!("logs/{name}.log"))
                .display()
                .to_string(),
        )],
    };
    std::fs::create_dir_all(env.dir().join("logs")).unwrap();
    let script = "exec 1>&-; sleep 0.2; echo to-err >&2";
    let late = logged_output(&env, "late", script, output("late")).await;
    assert_eq!(late, "to-err\n");
    let both = logged_output(&env, "both", "echo to-out; echo to-err >&2", output("both")).await;
    let mut lines: Vec<_> = both.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["to-err", "to-out"], "{both:?}");
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

#[tokio::test]
async fn a_fresh_client_re_attaches_to_a_running_task() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("reattach");
    let spec = env
        .spec(&["sh", "-c", "read line; echo got:$line"])
        .build()
        .unwrap();
    let c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &no_labels())
        .await
        .unwrap();
    let config = StdioConfig {
        stdin: true,
        ..Default::default()
    };
    let (task, io) = c.create_task(None, &config).await.unwrap();
    task.start().await.unwrap();
    // The first client goes away (its handles close) while the task keeps running.
    drop(io.stdout);
    drop(io.stderr);
    std::mem::forget(io.stdin);

    let fresh = Client::connect(ClientConfig::new(
        env.daemon.config().socket(),
        env.namespace.clone(),
        env.dir().join("bundles"),
    ))
    .await
    .unwrap();
    let loaded = fresh.load_container(&id).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task2 = loaded
        .attach_task(|io| {
            let _ = tx.send(io);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(task2.pid(), task.pid());
    let mut io = rx.await.unwrap();
    let mut stdin = io.stdin.take().expect("stdin re-opened");
    let reader = tokio::spawn(collect(io));
    stdin.write_all(b"again\n").await.unwrap();
    stdin.close().await.unwrap();
    assert_eq!(task2.wait().await.unwrap().code, 0);
    let (out, _) = reader.await.unwrap();
    assert_eq!(out, b"got:again\n");
    task2.delete().await.unwrap();
    loaded.delete().await.unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn a_missing_runc_binary_is_a_clear_error_and_leaves_nothing() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("norunc");
    let spec = env.spec(&["true"]).build().unwrap();
    let c = env
        .client
        .new_container(
            &id,
            &spec,
            &Runtime::runc_binary("/nonexistent/runc"),
            &no_labels(),
        )
        .await
        .unwrap();
    let err = c
        .start(None, &StdioConfig::default(), |_| Ok(()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/runc"), "{err}");
    assert_eq!(c.task().await.unwrap_err().kind(), ErrorKind::NotFound);
    c.delete().await.unwrap();
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_containerd_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let err = Client::connect(ClientConfig::new(
        dir.path().join("nope.sock"),
        "x",
        dir.path(),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.to_string()
            .starts_with("cannot connect to containerd at "),
        "{err}"
    );

    // A socket file nobody listens on.
    let path = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = Client::connect(ClientConfig::new(&path, "x", dir.path()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn calls_fail_unavailable_once_containerd_is_gone() {
    let env = TestEnv::new().await;
    env.daemon.stop().await.unwrap();
    let err = env.client.version().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let err = env.client.list_containers().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn labels_can_be_set_and_removed() {
    let env = TestEnv::new().await;
    let id = TestEnv::id("labels");
    let spec = env.spec(&["true"]).build().unwrap();
    let mut labels = no_labels();
    labels.insert("keep".into(), "1".into());
    labels.insert("drop".into(), "2".into());
    let mut c = env
        .client
        .new_container(&id, &spec, &Runtime::default(), &labels)
        .await
        .unwrap();
    let mut changes = no_labels();
    changes.insert("drop".into(), String::new());
    changes.insert("new".into(), "3".into());
    c.set_labels(&changes).await.unwrap();
    let loaded = env.client.load_container(&id).await.unwrap();
    let got = loaded.labels();
    assert_eq!(got.get("keep").map(String::as_str), Some("1"));
    assert_eq!(got.get("new").map(String::as_str), Some("3"));
    assert!(!got.contains_key("drop"));
    assert!(got.contains_key(libcontainerd::BUNDLE_LABEL));
    assert_eq!(c.labels(), got);
    c.delete().await.unwrap();
    env.cleanup().await;
}
