//! `--network`, `-p`, `lcd network` and `lcd port` end to end: real containerd, runc and Debian's
//! CNI plugins. Every test runs itself again inside a new network and mount namespace
//! (`unshare -n -m`) with its own containerd, so the bridges, veths and iptables rules it makes
//! never touch the host, and it talks only to 127.0.0.1 and to containers in that namespace.

#![allow(clippy::unwrap_used)]

mod support;

// The images crate's fixture image, whose config exposes 8080/tcp (for -P).
#[allow(dead_code)]
#[path = "../../images/tests/common/image.rs"]
mod image;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{in_private_namespace, Lcd, Output, PROMPT};

/// An `lcd` command with lcd's own default network (the fixture's is `none`).
fn lcd_cmd(lcd: &Lcd, args: &[&str]) -> Command {
    let mut cmd = lcd.command(args);
    cmd.env_remove("LCD_NETWORK");
    cmd
}

#[track_caller]
fn run(lcd: &Lcd, args: &[&str]) -> Output {
    lcd.output(lcd_cmd(lcd, args))
}

/// A fixture whose rootfs has an index page for busybox httpd.
fn fixture(tag: &str) -> Lcd {
    let lcd = Lcd::new(tag);
    std::fs::write(lcd.rootfs.join("index.html"), "hello from lcd\n").expect("index.html");
    lcd
}

/// GET / from `addr` (retrying until the server listens, up to PROMPT); the response.
fn http_get(addr: &str) -> String {
    let deadline = Instant::now() + PROMPT;
    loop {
        let attempt = TcpStream::connect(addr).and_then(|mut s| {
            s.set_read_timeout(Some(PROMPT))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        });
        match attempt {
            Ok(body) if !body.is_empty() => return body,
            other => assert!(
                Instant::now() < deadline,
                "no HTTP answer from {addr}: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `run -d --name NAME -p 127.0.0.1::80 ROOTFS httpd -f -p 80`: a web server published on a
/// random loopback port.
fn published_httpd<'a>(lcd: &'a Lcd, name: &'a str) -> [&'a str; 11] {
    [
        "run",
        "-d",
        "--name",
        name,
        "-p",
        "127.0.0.1::80",
        lcd.rootfs(),
        "httpd",
        "-f",
        "-p",
        "80",
    ]
}

/// This network namespace's interfaces (/sys/class/net shows the namespace that mounted /sys).
fn interfaces() -> Vec<String> {
    let dev = std::fs::read_to_string("/proc/self/net/dev").expect("/proc/self/net/dev");
    dev.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim().to_string()))
        .collect()
}

/// What a container's network leaves on the host: veths, leases of the network, per-container
/// iptables rules (the plugins comment them with the container id), attachment records.
fn leftovers(lcd: &Lcd, id: &str, network: &str) -> Vec<String> {
    let mut left = Vec::new();
    for name in interfaces() {
        if name.starts_with("veth") {
            left.push(format!("link {name}"));
        }
    }
    let leases = lcd.data_root().join("network/leases").join(network);
    for entry in support::entries(&leases) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.parse::<std::net::Ipv4Addr>().is_ok() {
            left.push(format!("lease {name}"));
        }
    }
    for table in ["nat", "filter"] {
        let rules = Command::new("iptables-save")
            .args(["-t", table])
            .output()
            .expect("iptables-save");
        for line in String::from_utf8_lossy(&rules.stdout).lines() {
            if line.contains(&format!("id: \"{id}\"")) || line.starts_with(":CNI-DN-") {
                left.push(format!("rule {line}"));
            }
        }
    }
    let record = lcd
        .data_root()
        .join("network/attachments")
        .join(&lcd.ns)
        .join(format!("{id}.json"));
    if record.exists() {
        left.push(format!("record {}", record.display()));
    }
    left
}

#[test]
fn none_host_and_bridge() {
    if !in_private_namespace("none_host_and_bridge") {
        return;
    }
    let lcd = fixture("modes");
    let root = lcd.rootfs();
    // none: only loopback, and it works; docker's sysctls.
    let out = run(
        &lcd,
        &["run", "--rm", "--network", "none", root, "sh", "-c",
          "ls /sys/class/net; cat /sys/class/net/lo/operstate /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range; httpd -p 127.0.0.1:81 && sleep 0.2 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 81 | grep -c 'hello from lcd'"],
    );
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "lo", "{out}");
    assert_eq!(lines[1], "unknown", "{out}");
    assert_eq!(lines[2], "0", "{out}");
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["0", "2147483647"],
        "{out}"
    );
    assert_eq!(lines[4], "1", "loopback serves: {out}");
    // host: the test namespace's interfaces, and its hostname.
    let ours = interfaces();
    let out = run(
        &lcd,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            root,
            "sh",
            "-c",
            "sed -n 's/^ *\\([^:]*\\):.*/\\1/p' /proc/net/dev; hostname",
        ],
    );
    let text = out.ok();
    for name in &ours {
        assert!(
            text.lines().any(|l| l == name),
            "{name} not seen with --network host: {out}"
        );
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(text.lines().last(), Some(hostname.trim()), "{out}");
    // bridge (the default): eth0 on lcd0's subnet, its name in /etc/hosts, HOSTNAME.
    let out = run(
        &lcd,
        &[
            "run",
            "--rm",
            "--name",
            "b1",
            root,
            "sh",
            "-c",
            "ip -4 -o addr show eth0; cat /etc/hosts /etc/hostname; echo HOSTNAME=$HOSTNAME",
        ],
    );
    let text = out.ok();
    assert!(text.contains("inet 10.209."), "{out}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("10.209.") && l.ends_with("\tb1")),
        "{out}"
    );
    assert!(text.contains("127.0.0.1\tlocalhost"), "{out}");
    assert!(text.contains("\nb1\nHOSTNAME=b1\n"), "{out}");
    assert!(
        leftovers(&lcd, "b1", "bridge").is_empty(),
        "{:?}",
        leftovers(&lcd, "b1", "bridge")
    );
    lcd.assert_clean();
}

#[test]
fn a_published_port_serves_http_and_rm_leaves_nothing() {
    if !in_private_namespace("a_published_port_serves_http_and_rm_leaves_nothing") {
        return;
    }
    let lcd = fixture("publish");
    let root = lcd.rootfs();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let publish = format!("127.0.0.1:{port}:80");
    run(
        &lcd,
        &[
            "run", "-d", "--name", "web", "-p", &publish, "-p", "90", root, "httpd", "-f", "-p",
            "80",
        ],
    )
    .ok();
    let body = http_get(&format!("127.0.0.1:{port}"));
    assert!(body.contains("hello from lcd"), "{body}");
    let out = run(&lcd, &["port", "web"]);
    let text = out.ok();
    assert!(
        text.contains(&format!("80/tcp -> 127.0.0.1:{port}\n")),
        "{out}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("90/tcp -> 0.0.0.0:") && !l.ends_with(":0")),
        "{out}"
    );
    assert_eq!(
        run(&lcd, &["port", "web", "80"]).ok(),
        format!("127.0.0.1:{port}\n")
    );
    let inspect: serde_json::Value =
        serde_json::from_str(run(&lcd, &["inspect", "web"]).ok()).unwrap();
    let settings = &inspect[0]["NetworkSettings"];
    let ip = settings["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap();
    assert!(ip.starts_with("10.209."), "{settings}");
    assert_eq!(settings["Ports"]["80/tcp"][0]["HostPort"], port.to_string());

    // The port is taken: a clear error before anything starts, nothing made.
    let out = run(
        &lcd,
        &[
            "run", "-d", "--name", "web2", "-p", &publish, root, "httpd", "-f", "-p", "80",
        ],
    );
    out.expect_error(125, &["already allocated", &port.to_string()]);
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = format!("127.0.0.1:{}:80", held.local_addr().unwrap().port());
    let out = run(
        &lcd,
        &["run", "-d", "--name", "web3", "-p", &busy, root, "true"],
    );
    out.expect_error(125, &["already allocated"]);
    for (bad, word) in [
        ("70000:80", "out of range"),
        ("80:x", "not a number"),
        ("1:2:3:4", "too many"),
        ("80/sctp", "protocol"),
    ] {
        run(&lcd, &["run", "-p", bad, root, "true"]).expect_error(125, &[word]);
    }
    assert_eq!(lcd.ids(), ["web"], "failed runs left containers");
    assert!(!lcd
        .data_root()
        .join("network/containers")
        .join(&lcd.ns)
        .join("web2")
        .exists());

    run(&lcd, &["rm", "-f", "web"]).ok();
    assert_eq!(leftovers(&lcd, "web", "bridge"), Vec::<String>::new());
    assert!(!lcd
        .data_root()
        .join("network/containers")
        .join(&lcd.ns)
        .join("web")
        .exists());
    lcd.assert_clean();
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name() {
    if !in_private_namespace("containers_on_a_user_network_reach_each_other_by_name") {
        return;
    }
    let lcd = fixture("user");
    let root = lcd.rootfs();
    run(
        &lcd,
        &["network", "create", "--subnet", "10.77.0.0/24", "front"],
    )
    .ok();
    run(
        &lcd,
        &["network", "create", "--subnet", "10.77.0.128/25", "other"],
    )
    .expect_error(125, &["overlaps network front"]);
    run(&lcd, &["network", "create", "front"]).expect_error(125, &["already exists"]);
    run(&lcd, &["run", "--network", "nope", root, "true"])
        .expect_error(125, &["network nope not found"]);
    let ls = run(&lcd, &["network", "ls", "-q"]);
    assert_eq!(ls.ok(), "bridge\nfront\n");

    run(
        &lcd,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "front",
            root,
            "httpd",
            "-f",
            "-p",
            "80",
        ],
    )
    .ok();
    // busybox's static wget cannot resolve names (no NSS in the rootfs); nc resolves /etc/hosts.
    let out = run(
        &lcd,
        &["run", "--rm", "--name", "client", "--network", "front", root, "sh", "-c",
          "for i in $(seq 50); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc web 80 && exit 0; sleep 0.2; done; exit 1"],
    );
    assert!(out.ok().contains("hello from lcd"), "{out}");
    let inspect: serde_json::Value =
        serde_json::from_str(run(&lcd, &["network", "inspect", "front"]).ok()).unwrap();
    assert_eq!(inspect[0]["IPAM"]["Config"][0]["Subnet"], "10.77.0.0/24");
    assert!(inspect[0]["Containers"]["web"]["IPv4Address"]
        .as_str()
        .unwrap()
        .starts_with("10.77.0."));

    run(&lcd, &["network", "rm", "front"]).expect_error(125, &["active endpoints", "web"]);
    run(&lcd, &["network", "rm", "bridge"]).expect_error(125, &["pre-defined"]);
    run(&lcd, &["rm", "-f", "web"]).ok();
    assert_eq!(leftovers(&lcd, "web", "front"), Vec::<String>::new());
    assert!(interfaces().contains(&"lcd1".to_string()), "front's bridge");
    assert_eq!(run(&lcd, &["network", "rm", "front"]).ok(), "front\n");
    assert!(
        !interfaces().contains(&"lcd1".to_string()),
        "network rm left its bridge"
    );
    run(&lcd, &["network", "rm", "front"]).expect_error(125, &["not found"]);
    lcd.assert_clean();
}

/// The addresses `/etc/hosts` of container `from` gives `name`.
fn hosts_entries(lcd: &Lcd, from: &str, name: &str) -> Vec<String> {
    let hosts = run(lcd, &["exec", from, "cat", "/etc/hosts"]);
    hosts
        .ok()
        .lines()
        .filter(|l| l.split_whitespace().skip(1).any(|n| n == name))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Container `name`'s address on network `network`.
fn address(lcd: &Lcd, name: &str, network: &str) -> String {
    let out = run(lcd, &["inspect", name]);
    let inspect: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    let ip = &inspect[0]["NetworkSettings"]["Networks"][network]["IPAddress"];
    ip.as_str()
        .unwrap_or_else(|| panic!("no address: {out}"))
        .to_string()
}

#[test]
fn a_renamed_container_is_reached_by_its_new_name() {
    if !in_private_namespace("a_renamed_container_is_reached_by_its_new_name") {
        return;
    }
    let lcd = fixture("rename");
    let root = lcd.rootfs();
    run(
        &lcd,
        &["network", "create", "--subnet", "10.78.0.0/24", "front"],
    )
    .ok();
    let on_front = |name: &str| {
        run(
            &lcd,
            &[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                "front",
                root,
                "sleep",
                "60",
            ],
        )
        .ok();
    };
    on_front("db");
    on_front("app");
    let old = address(&lcd, "db", "front");
    assert!(old.starts_with("10.78.0."), "{old}");
    assert_eq!(hosts_entries(&lcd, "app", "db"), [old.as_str()]);

    // Its peers know it by its new name at once; the old one is free on the network too.
    run(&lcd, &["rename", "db", "db-old"]).ok();
    assert_eq!(hosts_entries(&lcd, "app", "db-old"), [old.as_str()]);
    assert!(hosts_entries(&lcd, "app", "db").is_empty());
    on_front("db");
    let new = address(&lcd, "db", "front");
    assert_ne!(new, old);
    assert_eq!(hosts_entries(&lcd, "app", "db"), [new.as_str()]);
    assert_eq!(hosts_entries(&lcd, "db", "db-old"), [old]);

    // Started again, the renamed container is attached under its new name.
    run(&lcd, &["stop", "-t", "0", "db-old"]).ok();
    run(&lcd, &["start", "db-old"]).ok();
    let again = address(&lcd, "db-old", "front");
    assert_eq!(hosts_entries(&lcd, "app", "db-old"), [again]);
    assert_eq!(hosts_entries(&lcd, "app", "db"), [new]);

    run(&lcd, &["rm", "-f", "db", "db-old", "app"]).ok();
    assert_eq!(run(&lcd, &["network", "rm", "front"]).ok(), "front\n");
    lcd.assert_clean();
}

#[test]
fn dns_extra_hosts_and_hostname() {
    if !in_private_namespace("dns_extra_hosts_and_hostname") {
        return;
    }
    let lcd = fixture("dns");
    let out = run(
        &lcd,
        &[
            "run",
            "--rm",
            "--dns",
            "10.0.0.9",
            "--add-host",
            "db:10.1.2.3",
            "--hostname",
            "box",
            lcd.rootfs(),
            "sh",
            "-c",
            "cat /etc/resolv.conf /etc/hosts /etc/hostname; hostname; echo $HOSTNAME",
        ],
    );
    let text = out.ok();
    assert!(text.contains("nameserver 10.0.0.9\n"), "{out}");
    assert_eq!(text.matches("nameserver").count(), 1, "{out}");
    assert!(text.contains("10.1.2.3\tdb\n"), "{out}");
    assert!(text.ends_with("box\nbox\nbox\n"), "{out}");
    run(&lcd, &["run", "--dns", "x", lcd.rootfs(), "true"]).expect_error(125, &["--dns"]);
    run(&lcd, &["run", "--add-host", "db", lcd.rootfs(), "true"])
        .expect_error(125, &["--add-host"]);
    run(
        &lcd,
        &["run", "--network", "none", "-p", "80", lcd.rootfs(), "true"],
    )
    .expect_error(125, &["bridge network"]);
    lcd.assert_clean();
}

#[test]
fn a_missing_or_failing_plugin_is_one_line_and_leaves_nothing() {
    if !in_private_namespace("a_missing_or_failing_plugin_is_one_line_and_leaves_nothing") {
        return;
    }
    let lcd = fixture("plugins");
    let root = lcd.rootfs();
    let empty = lcd.path("no-plugins");
    std::fs::create_dir(&empty).unwrap();
    let mut cmd = lcd_cmd(&lcd, &["run", "--rm", root, "true"]);
    cmd.env("LCD_CNI_PATH", &empty);
    lcd.output(cmd)
        .expect_error(125, &["\"loopback\"", "containernetworking-plugins"]);

    // The real plugins, but a portmap that fails: the bridge's veth, lease and rules are undone.
    let plugins = lcd.path("plugins");
    std::fs::create_dir(&plugins).unwrap();
    for name in ["bridge", "host-local", "loopback"] {
        std::os::unix::fs::symlink(Path::new("/usr/lib/cni").join(name), plugins.join(name))
            .unwrap();
    }
    let failing = plugins.join("portmap");
    std::fs::write(&failing, "#!/bin/sh\necho '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"portmap says no\"}'\nexit 1\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&failing).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(
        &failing,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut cmd = lcd_cmd(
        &lcd,
        &["run", "--name", "half", "-p", "127.0.0.1::80", root, "true"],
    );
    cmd.env("LCD_CNI_PATH", &plugins);
    lcd.output(cmd).expect_error(125, &["portmap says no"]);
    assert_eq!(leftovers(&lcd, "half", "bridge"), Vec::<String>::new());
    assert!(lcd.ids().is_empty(), "the failed run left a container");
    lcd.assert_clean();
}

#[test]
fn a_crashed_containers_network_is_reclaimed_by_the_next_command() {
    if !in_private_namespace("a_crashed_containers_network_is_reclaimed_by_the_next_command") {
        return;
    }
    let lcd = fixture("reclaim");
    run(&lcd, &published_httpd(&lcd, "gone")).ok();
    assert!(!leftovers(&lcd, "gone", "bridge").is_empty(), "attached");
    // The container's process dies and nobody deletes its task (as after a crash of lcd's
    // caller): no hook runs, yet the next lcd command releases its network.
    let record = lcd
        .data_root()
        .join("network/attachments")
        .join(&lcd.ns)
        .join("gone.json");
    let attachment: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let pid = attachment["pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + PROMPT;
    while support::is_alive(pid as u32) {
        assert!(
            Instant::now() < deadline,
            "the container's process did not die"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    run(&lcd, &["ps", "-a"]).ok();
    assert_eq!(leftovers(&lcd, "gone", "bridge"), Vec::<String>::new());
    run(&lcd, &["rm", "-f", "gone"]).ok();
    lcd.assert_clean();
}

/// lcd killed between the network's ADD (run by runc's createRuntime hook while the task is
/// created) and the task's start: the half-made container holds its network until `rm -f`, which
/// releases every part of it.
#[test]
fn lcd_killed_between_network_setup_and_start_leaves_nothing_after_rm() {
    if !in_private_namespace("lcd_killed_between_network_setup_and_start_leaves_nothing_after_rm") {
        return;
    }
    let lcd = fixture("killedadd");
    let mut cmd = lcd_cmd(&lcd, &published_httpd(&lcd, "half"));
    cmd.env("LCD_CRASH_AT", "start-after-task-create");
    let out = lcd.output(cmd);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "run -d was not killed: {out}"
    );
    assert!(
        !leftovers(&lcd, "half", "bridge").is_empty(),
        "the task's network was set up before the kill"
    );
    run(&lcd, &["rm", "-f", "half"]).ok();
    assert_eq!(leftovers(&lcd, "half", "bridge"), Vec::<String>::new());
    lcd.assert_clean();
}

/// `-P` publishes each port the image's config exposes on a random host port, as docker does.
#[test]
fn publish_all_maps_the_images_exposed_ports() {
    if !in_private_namespace("publish_all_maps_the_images_exposed_ports") {
        return;
    }
    let lcd = fixture("publishall");
    let archive = lcd.path("app.tar");
    std::fs::write(&archive, image::Fixture::new(None).docker_save(None)).unwrap();
    run(&lcd, &["load", "-i", archive.to_str().unwrap()]).ok();
    // The image's entrypoint is `sh -c`: this keeps it running.
    run(
        &lcd,
        &[
            "run",
            "-d",
            "-P",
            "--name",
            "exp",
            image::APP,
            "busybox sleep 600",
        ],
    )
    .ok();
    let out = run(&lcd, &["port", "exp"]);
    let text = out.ok();
    let mapped = text
        .lines()
        .find_map(|l| l.strip_prefix("8080/tcp -> 0.0.0.0:"))
        .unwrap_or_else(|| panic!("8080/tcp not published: {out}"));
    let port: u16 = mapped.parse().unwrap_or_else(|_| panic!("{out}"));
    assert_ne!(port, 0, "{out}");
    assert_eq!(text.lines().count(), 1, "only the exposed port: {out}");
    run(&lcd, &["rm", "-f", "exp"]).ok();
    assert_eq!(leftovers(&lcd, "exp", "bridge"), Vec::<String>::new());
    lcd.assert_clean();
}
