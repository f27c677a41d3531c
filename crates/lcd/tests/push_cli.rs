//! `lcd push`, `lcd login` and `lcd logout` against real registries (Debian's docker-registry on
//! 127.0.0.1, started by the tests with configs of their own, one with htpasswd auth): images made
//! by `lcd import` (an uncompressed layer) and pulled with several layers go up, come back down
//! after `lcd rmi` and run; ctr pulls what lcd pushed. Logins store docker's entry and keep every
//! other key of config.json; a wrong password writes nothing and exits 1 as docker. Every command
//! gets a `DOCKER_CONFIG` of the test's own, never the user's `~/.docker`.

mod support;

#[allow(dead_code)]
#[path = "../../images/tests/common/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "../../images/tests/common/registry.rs"]
mod registry;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use support::{Lcd, Output};

/// `lcd ARGS` with `DOCKER_CONFIG=config`, and `input` on stdin if any.
fn lcd_with(lcd: &Lcd, config: &Path, args: &[&str], input: Option<&[u8]>) -> Output {
    let mut cmd = lcd.command(args);
    cmd.env("DOCKER_CONFIG", config);
    match input {
        None => lcd.output(cmd),
        Some(input) => support::run_command(cmd, Some(input.to_vec()), support::TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}")),
    }
}

/// The digest line docker prints at the end of a push: `TAG: digest: sha256:... size: N`.
fn digest_of(out: &str, tag: &str) -> String {
    let line = out.trim_end();
    let rest = line
        .strip_prefix(&format!("{tag}: digest: "))
        .unwrap_or_else(|| panic!("not a push result for {tag}: {out:?}"));
    let (digest, size) = rest.split_once(" size: ").expect("size");
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{out}");
    assert!(size.parse::<u64>().expect("size") > 0, "{out}");
    digest.to_string()
}

/// The digest the registry holds for `repository:tag`.
fn registry_digest(registry: &registry::Registry, repository: &str, tag: &str) -> String {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut request = reqwest::Client::new()
            .head(registry.url(&format!("/v2/{repository}/manifests/{tag}")))
            .header(
                "accept",
                "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json",
            );
        if let Some((user, password)) = &registry.login {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.expect("head manifest");
        assert_eq!(response.status(), 200, "{repository}:{tag}");
        response.headers()["docker-content-digest"]
            .to_str()
            .expect("digest")
            .to_string()
    })
}

#[test]
fn imported_and_pulled_images_go_up_come_back_and_run() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fixture = image::Fixture::new(None);
    // The source of a two-layer image (one gzip layer, one plain), and the registry pushed to.
    let source = runtime.block_on(registry::Registry::with_app(&fixture));
    let target = runtime.block_on(registry::Registry::start(None));
    drop(runtime);
    let lcd = Lcd::new("push");
    let config = lcd.path("docker");
    let run = |args: &[&str]| lcd_with(&lcd, &config, args, None);

    // An imported rootfs: one uncompressed layer, pushed as stored.
    let imported = format!("{}/imported/bb:1", target.addr);
    run(&["import", lcd.rootfs(), &imported]).ok();
    let out = run(&["push", &imported]);
    let pushed = digest_of(out.ok(), "1");
    assert_eq!(pushed, registry_digest(&target, "imported/bb", "1"));
    // Again: every blob is there already, and the digest is the same.
    let out = run(&["push", "-q", &imported]);
    assert_eq!(digest_of(out.ok(), "1"), pushed);
    run(&["rmi", &imported]).ok();
    run(&["pull", &imported]).ok();
    let out = run(&["run", "--rm", &imported, "echo", "came back"]);
    assert_eq!(out.ok(), "came back\n", "{out}");

    // A pulled image with two layers, under a name of the other registry.
    let original = format!("{}/fixture/app:1", source.addr);
    let copy = format!("{}/copy/app:2", target.addr);
    run(&["pull", &original]).ok();
    run(&["tag", &original, &copy]).ok();
    let out = run(&["push", &copy]);
    let pushed = digest_of(out.ok(), "2");
    assert_eq!(pushed, registry_digest(&target, "copy/app", "2"));
    // The stored manifest went up byte for byte: the same digest as the source's.
    assert_eq!(pushed, registry_digest(&source, "fixture/app", "1"));
    run(&["rmi", &copy, &original]).ok();
    source.stop();
    run(&["pull", &copy]).ok();
    let out = run(&["run", "--rm", &copy]);
    assert_eq!(out.ok(), image::HELLO, "{out}");

    // --all-tags pushes every tag of the repository.
    let other_tag = format!("{}/copy/app:3", target.addr);
    run(&["tag", &copy, &other_tag]).ok();
    let out = run(&["push", "--all-tags", &format!("{}/copy/app", target.addr)]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(digest_of(lines[0], "2"), pushed);
    assert_eq!(digest_of(lines[1], "3"), pushed);
    run(&["push", "-a", &copy]).expect_error(125, &["tag can't be used with --all-tags"]);

    // containerd's own client pulls what lcd pushed (everything from the registry: lcd's copy
    // is gone first), and lcd runs it.
    run(&["rmi", &copy, &other_tag]).ok();
    lcd.ctr(&["images", "pull", "--plain-http", &copy]);
    let out = run(&["run", "--rm", "--pull", "never", &copy]);
    assert_eq!(out.ok(), image::HELLO, "{out}");

    // Errors: one line, 125, as lcd's pull.
    run(&["push", "nosuch:1"]).expect_error(125, &["no such image: nosuch:1"]);
    let down = format!("127.0.0.1:{}/down/app:1", registry::free_port());
    run(&["tag", &copy, &down]).ok();
    run(&["push", &down]).expect_error(125, &["push", "cannot reach registry"]);
    run(&["rmi", &down, &copy, &imported]).ok();
    target.stop();
    lcd.assert_clean();
}

fn write_config(dir: &Path, config: &serde_json::Value) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(config).expect("json")).expect("write");
    path
}

fn read_config(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read config")).expect("json")
}

#[test]
fn login_push_and_logout_with_an_htpasswd_registry() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let registry = runtime.block_on(registry::Registry::start(Some(("alice", "s3cret"))));
    drop(runtime);
    let lcd = Lcd::new("login");
    let dir = lcd.path("docker");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // What the user had before: other settings and another registry's login.
    let before = serde_json::json!({
        "auths": {"other.example:5000": {"auth": b64("bob:pw")}},
        "psFormat": "table {{.ID}}\t{{.Names}}",
        "proxies": {"default": {"noProxy": "localhost"}},
    });
    let path = write_config(&dir, &before);
    let run = |args: &[&str]| lcd_with(&lcd, &dir, args, None);
    let addr = registry.addr.clone();
    let name = format!("{addr}/private/bb:1");
    run(&["import", lcd.rootfs(), &name]).ok();

    // No login: the registry refuses, and says what is missing.
    eprintln!(
        "{}",
        run(&["push", &name]).expect_error(125, &["401 Unauthorized", "needs a login"])
    );

    // A wrong password: one line, exit 1, nothing written.
    let untouched = std::fs::read(&path).expect("read");
    let out = lcd_with(
        &lcd,
        &dir,
        &["login", "-u", "alice", "--password-stdin", &addr],
        Some(b"wrong\n"),
    );
    eprintln!("{}", out.expect_error(1, &["unauthorized", &addr, "alice"]));
    assert_eq!(out.stdout, "");
    assert_eq!(std::fs::read(&path).expect("read"), untouched);

    // The right one, on the command line: docker's warning, then the entry docker writes.
    let out = run(&["login", "-u", "alice", "-p", "s3cret", &addr]);
    assert_eq!(out.ok(), "Login Succeeded\n", "{out}");
    assert!(
        out.stderr.contains("Use --password-stdin"),
        "no warning about -p: {out}"
    );
    let after = read_config(&path);
    assert_eq!(
        after["auths"][&addr]["auth"],
        b64("alice:s3cret"),
        "{after}"
    );
    assert_eq!(
        after["auths"]["other.example:5000"],
        before["auths"]["other.example:5000"]
    );
    assert_eq!(after["psFormat"], before["psFormat"]);
    assert_eq!(after["proxies"], before["proxies"]);
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // From stdin (a scheme in the server is dropped from the key, as docker does).
    let out = lcd_with(
        &lcd,
        &dir,
        &[
            "login",
            "--username",
            "alice",
            "--password-stdin",
            &format!("http://{addr}"),
        ],
        Some(b"s3cret\n"),
    );
    assert_eq!(out.ok(), "Login Succeeded\n", "{out}");
    assert_eq!(
        read_config(&path)["auths"]
            .as_object()
            .expect("auths")
            .len(),
        2
    );

    // Logged in: push, remove, pull back, run.
    let out = run(&["push", &name]);
    let pushed = digest_of(out.ok(), "1");
    assert_eq!(pushed, registry_digest(&registry, "private/bb", "1"));
    run(&["rmi", &name]).ok();
    run(&["pull", &name]).ok();
    let out = run(&["run", "--rm", &name, "echo", "private"]);
    assert_eq!(out.ok(), "private\n", "{out}");

    // Logout removes only that entry; a second one says there was none.
    let out = run(&["logout", &addr]);
    assert_eq!(out.ok(), format!("Removing login credentials for {addr}\n"));
    let after = read_config(&path);
    assert!(after["auths"].get(&addr).is_none(), "{after}");
    assert_eq!(
        after["auths"]["other.example:5000"],
        before["auths"]["other.example:5000"]
    );
    assert_eq!(after["psFormat"], before["psFormat"]);
    let out = run(&["logout", &addr]);
    assert_eq!(out.ok(), format!("Not logged in to {addr}\n"));
    run(&["push", &name]).expect_error(125, &["401 Unauthorized"]);

    // Bad input: one line, exit 1, nothing written.
    let untouched = std::fs::read(&path).expect("read");
    run(&["login", &addr]).expect_error(1, &["non TTY"]);
    run(&["login", "--password-stdin", &addr]).expect_error(1, &["--username"]);
    run(&["login", "-u", "alice", "-p", "x", "--password-stdin", &addr])
        .expect_error(1, &["mutually exclusive"]);
    let down = format!("127.0.0.1:{}", registry::free_port());
    lcd_with(
        &lcd,
        &dir,
        &["login", "-u", "alice", "--password-stdin", &down],
        Some(b"s3cret"),
    )
    .expect_error(1, &[&down, "cannot reach registry"]);
    assert_eq!(std::fs::read(&path).expect("read"), untouched);

    // A credential helper configured: said plainly, nothing written in its place.
    let helper = serde_json::json!({"credsStore": "secretservice", "auths": {}});
    let path = write_config(&dir, &helper);
    let untouched = std::fs::read(&path).expect("read");
    lcd_with(
        &lcd,
        &dir,
        &["login", "-u", "alice", "--password-stdin", &addr],
        Some(b"s3cret"),
    )
    .expect_error(
        1,
        &["credential helpers are not supported", "secretservice"],
    );
    run(&["logout", &addr]).expect_error(1, &["credential helpers are not supported"]);
    assert_eq!(std::fs::read(&path).expect("read"), untouched);

    // No config.json yet: login makes one (mode 0600) with only the entry.
    let fresh = lcd.path("fresh");
    let out = lcd_with(
        &lcd,
        &fresh,
        &["login", "-u", "alice", "-p", "s3cret", &addr],
        None,
    );
    out.ok();
    let made = read_config(&fresh.join("config.json"));
    assert_eq!(
        made,
        serde_json::json!({"auths": {&addr: {"auth": b64("alice:s3cret")}}})
    );

    run(&["rmi", &name]).ok();
    registry.stop();
    lcd.assert_clean();
}

/// A registry behind a token server (the test front demands `Bearer` tokens, handed out at its
/// `/token` to alice's Basic credentials): login checks the credentials there, and push asks for a
/// `pull,push` token and sends every request with it.
#[test]
fn login_and_push_through_a_token_server() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (registry, front) = runtime.block_on(async {
        let registry = registry::Registry::start(None).await;
        let login = Some(("alice".to_string(), "s3cret".to_string()));
        let config = registry::FrontConfig {
            bearer: Some(("user-token".to_string(), login)),
            ..Default::default()
        };
        let front = registry::Front::start(&registry.addr, config).await;
        (registry, front)
    });
    let lcd = Lcd::new("token");
    let dir = lcd.path("docker");
    let run = |args: &[&str]| lcd_with(&lcd, &dir, args, None);
    let login = |password: &[u8]| {
        lcd_with(
            &lcd,
            &dir,
            &["login", "-u", "alice", "--password-stdin", &front.addr],
            Some(password),
        )
    };
    let name = format!("{}/tok/bb:1", front.addr);
    run(&["import", lcd.rootfs(), &name]).ok();
    run(&["push", &name]).expect_error(125, &["token", "401"]);
    login(b"wrong").expect_error(1, &["unauthorized", "alice"]);
    assert!(!dir.join("config.json").exists());
    assert_eq!(login(b"s3cret").ok(), "Login Succeeded\n");

    let out = run(&["push", &name]);
    let pushed = digest_of(out.ok(), "1");
    let seen = front.seen();
    assert!(
        seen.iter()
            .any(|r| r.starts_with("GET /token?") && r.contains("tok%2Fbb%3Apull%2Cpush")),
        "push asks for a pull,push token: {seen:?}"
    );
    for method in ["HEAD", "POST", "PUT"] {
        assert!(
            seen.iter()
                .any(|r| r.starts_with(method) && r.ends_with("auth=Bearer user-token")),
            "{method} with the token: {seen:?}"
        );
    }
    run(&["rmi", &name]).ok();
    run(&["pull", &name]).ok();
    let out = run(&["image", "inspect", &name]);
    let inspect: serde_json::Value = serde_json::from_str(out.ok()).expect("json");
    let repo_digest = format!("{}/tok/bb@{pushed}", front.addr);
    assert_eq!(
        inspect[0]["RepoDigests"][0],
        repo_digest.as_str(),
        "{inspect}"
    );
    let out = run(&["run", "--rm", &name, "echo", "through tokens"]);
    assert_eq!(out.ok(), "through tokens\n", "{out}");
    run(&["rmi", &name]).ok();
    drop(front);
    registry.stop();
    lcd.assert_clean();
}
