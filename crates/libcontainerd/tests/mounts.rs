//! Bind and tmpfs mounts from `SpecBuilder` in real containers: read-write and read-only binds
//! (EROFS), a tmpfs with docker's options, and a bad mount refused before anything is created.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::TestEnv;
use libcontainerd::spec::{BindOptions, SpecBuilder};
use libcontainerd::{DirectIo, ErrorKind, Runtime, StdioConfig};
use tokio::io::AsyncReadExt;

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

/// Run `spec` to completion as container `name`, then remove it: (exit code, stdout, stderr).
async fn run(env: &TestEnv, name: &str, spec: SpecBuilder) -> (u32, String, String) {
    let spec = spec.build().expect("spec");
    let c = env
        .client
        .new_container(
            &TestEnv::id(name),
            &spec,
            &Runtime::default(),
            &HashMap::new(),
        )
        .await
        .expect("create container");
    let (task, io) = c
        .create_task(None, &StdioConfig::default())
        .await
        .expect("create task");
    let output = tokio::spawn(collect(io));
    task.start().await.expect("start");
    let status = tokio::time::timeout(Duration::from_secs(60), task.wait())
        .await
        .expect("exit in time")
        .expect("wait");
    let (out, err) = output.await.expect("output");
    task.delete().await.expect("delete task");
    c.delete().await.expect("delete container");
    (status.code, out, err)
}

#[tokio::test]
async fn binds_are_read_write_or_read_only_and_tmpfs_has_dockers_options() {
    let env = TestEnv::new().await;
    let host = env.dir().join("shared");
    std::fs::create_dir(&host).expect("mkdir");
    std::fs::write(host.join("in"), "host\n").expect("write");

    let spec = env
        .spec(&["sh", "-c", "cat /rw/in && echo ctr > /rw/out"])
        .bind_mount(&host, "/rw", BindOptions::default());
    let (code, out, err) = run(&env, "rw", spec).await;
    assert_eq!((code, out.as_str()), (0, "host\n"), "{err}");
    assert_eq!(
        std::fs::read_to_string(host.join("out")).expect("out"),
        "ctr\n"
    );

    let spec = env
        .spec(&["touch", "/ro/new"])
        .bind_mount(&host, "/ro", BindOptions::read_only());
    let (code, _, err) = run(&env, "ro", spec).await;
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!host.join("new").exists());

    let spec = env
        .spec(&["grep", " /scratch ", "/proc/mounts"])
        .tmpfs("/scratch", ["size=1m", "mode=0750"]);
    let (code, out, err) = run(&env, "tmpfs", spec).await;
    assert_eq!(code, 0, "{err}");
    let options: Vec<&str> = out.split(' ').nth(3).expect("options").split(',').collect();
    for option in ["nosuid", "nodev", "noexec", "size=1024k", "mode=750"] {
        assert!(options.contains(&option), "{option} missing: {out}");
    }

    // A bind of a missing source is refused by build, before containerd hears of it.
    let err = env
        .spec(&["true"])
        .bind_mount(env.dir().join("missing"), "/m", BindOptions::default())
        .build()
        .expect_err("a missing source");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.message().contains("bind source path does not exist"),
        "{err}"
    );
    assert!(env.client.list_containers().await.expect("list").is_empty());
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    env.cleanup().await;
}
