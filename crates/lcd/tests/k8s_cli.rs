//! lcd next to the kubelet's CRI on one containerd (see k8s/mod.rs for the node).

mod k8s;
mod support;

use k8s::{Node, K8S};

macro_rules! skip_unless_cri {
    () => {
        if let Some(reason) = k8s::unsupported() {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

#[tokio::test(flavor = "multi_thread")]
async fn explore() {
    skip_unless_cri!();
    let mut node = Node::start("explore").await;
    let pod = node.run_pod("web", "echo hello from a pod; echo to stderr >&2; while :; do sleep 1; done").await;
    node.wait_file_contains(&pod.log, "hello from a pod").await;
    for args in [
        vec!["ps", "-a"],
        vec!["ps", "-a", "--format", "json"],
        vec!["logs", &pod.container],
        vec!["inspect", &pod.container],
        vec!["exec", &pod.container, "echo", "hi"],
        vec!["top", &pod.container],
        vec!["stats", "--no-stream", &pod.container],
        vec!["images"],
    ] {
        let out = node.lcd(K8S, &args);
        eprintln!("{out}");
    }
    eprintln!("{}", std::fs::read_to_string(&pod.log).unwrap());
}
