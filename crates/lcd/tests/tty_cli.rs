//! `lcd run -it` and `lcd attach` end to end, as a person uses them: the built binary on a real
//! pseudo-terminal that is its controlling terminal (raw mode, the window size at start and after a
//! resize, Ctrl-C reaching the container, Ctrl-P Ctrl-Q detaching, the terminal restored), and
//! attaching without a terminal from several processes in turn. Each test has its own temp dir,
//! namespace and managed containerd (see `support`); every child process has a deadline.

mod support;

use std::io::Write;
use std::os::fd::AsFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::termios::tcgetattr;
use support::pty::Pty;
use support::{Lcd, PROMPT, TIMEOUT};

/// Ask the container's shell for its terminal's size until it is `size` ("ROWS COLS"): a size
/// travels from our terminal through lcd and containerd, and may arrive after the next command.
#[track_caller]
fn wait_for_size(pty: &mut Pty, size: &str) {
    let deadline = Instant::now() + PROMPT;
    loop {
        let out = pty.command("stty size");
        if out.contains(size) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the size never became {size}: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Poll `lcd top ID` until some process's command line is `cmd` (or, with `present` false, until
/// none is).
#[track_caller]
fn wait_for_process(lcd: &Lcd, id: &str, cmd: &str, present: bool) {
    let deadline = Instant::now() + PROMPT;
    loop {
        let top = lcd.run(&["top", id]);
        let found = top.ok().lines().skip(1).any(|l| l.ends_with(cmd));
        if found == present {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{cmd:?} {} in the container: {top}",
            if present { "never ran" } else { "kept running" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `lcd ps -a` table row of `id`.
#[track_caller]
fn ps_row(lcd: &Lcd, args: &[&str], id: &str) -> Option<String> {
    let mut all = vec!["ps"];
    all.extend(args);
    let ps = lcd.run(&all);
    ps.ok()
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().next() == Some(id))
        .map(str::to_string)
}

#[test]
fn run_it_on_a_terminal_sizes_interrupts_exits_and_restores() {
    let lcd = Lcd::new("runit");
    let mut pty = Pty::new(120, 40);
    pty.assert_cooked();
    let before = tcgetattr(pty.slave.as_fd()).expect("tcgetattr");

    let cmd = lcd.command(["run", "-it", "--rm", "--name", "t1", lcd.rootfs(), "sh"]);
    let mut child = pty.spawn(cmd);
    pty.expect("# ");
    assert!(pty.is_raw(), "lcd must put its terminal in raw mode");

    // The container's terminal has our size from the start.
    let out = pty.command("stty size");
    assert!(out.contains("40 120"), "stty size said {out:?}");

    // A resize of our terminal reaches it: the kernel sends lcd SIGWINCH, lcd tells containerd.
    pty.resize(100, 30);
    wait_for_size(&mut pty, "30 100");

    // Ctrl-C is a key for the container's terminal: it interrupts the foreground process there,
    // not lcd.
    pty.type_keys(b"sleep 100\r");
    pty.expect("sleep 100");
    wait_for_process(&lcd, "t1", "sleep 100", true);
    pty.type_keys(b"\x03");
    // The shell prompts again once the sleep is gone.
    pty.expect("# ");
    wait_for_process(&lcd, "t1", "sleep 100", false);
    assert!(child.running(), "Ctrl-C must not end lcd");
    let out = pty.command("echo status=$?");
    assert!(out.contains("status=130"), "{out:?}");

    // The shell's exit status is lcd's, and the terminal is as lcd found it.
    pty.type_keys(b"exit 7\r");
    let status = child.wait(&mut pty);
    assert_eq!(
        status.code(),
        Some(7),
        "{status:?}; terminal: {:?}",
        pty.seen
    );
    pty.assert_cooked();
    let after = tcgetattr(pty.slave.as_fd()).expect("tcgetattr");
    assert_eq!(after.local_flags, before.local_flags);
    assert_eq!(after.input_flags, before.input_flags);
    assert_eq!(after.output_flags, before.output_flags);
    assert_eq!(after.control_flags, before.control_flags);

    // --rm: nothing is left.
    lcd.assert_clean();
}

#[test]
fn run_it_sizes_the_terminal_before_the_command_runs() {
    let lcd = Lcd::new("runsize");
    let mut pty = Pty::new(111, 33);
    // A command that reads the size at once must not see 0x0 (or an old size).
    let cmd = lcd.command(["run", "-it", "--rm", lcd.rootfs(), "stty", "size"]);
    let mut child = pty.spawn(cmd);
    let status = child.wait(&mut pty);
    pty.collect(Duration::from_millis(200));
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}; terminal: {:?}",
        pty.seen
    );
    assert!(pty.seen.contains("33 111"), "stty size said {:?}", pty.seen);
    pty.assert_cooked();
    lcd.assert_clean();
}

#[test]
fn attach_on_a_terminal_detaches_with_ctrl_p_ctrl_q_and_reattaches() {
    let lcd = Lcd::new("attachit");
    let out = lcd.run(&["run", "-d", "-it", "--name", "x", lcd.rootfs(), "sh"]);
    assert_eq!(out.ok(), "x\n", "{out}");
    lcd.wait_state("x", "running", PROMPT);

    let mut pty = Pty::new(100, 30);
    let mut child = pty.spawn(lcd.command(["attach", "x"]));
    // The shell's first prompt may wait in the container's output, or may not: type a line.
    pty.type_keys(b"echo hello-$((1+1))\r");
    pty.expect("hello-2");
    pty.expect("# ");
    assert!(pty.is_raw(), "lcd attach must put its terminal in raw mode");
    // Attaching sizes the container's terminal (`run -d` had no terminal to take a size from).
    wait_for_size(&mut pty, "30 100");

    // Ctrl-P Ctrl-Q: lcd attach returns 0, the container keeps running, the terminal is restored.
    pty.type_keys(b"\x10\x11");
    let status = child.wait(&mut pty);
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}; terminal: {:?}",
        pty.seen
    );
    pty.assert_cooked();
    let row = ps_row(&lcd, &[], "x").expect("x is not in `lcd ps` after detaching");
    assert!(row.contains("Up"), "{row}");

    // Attach again (another terminal, another size): the shell is where we left it.
    let mut pty = Pty::new(90, 25);
    let mut child = pty.spawn(lcd.command(["attach", "x"]));
    wait_for_size(&mut pty, "25 90");
    pty.type_keys(b"exit 3\r");
    let status = child.wait(&mut pty);
    assert_eq!(
        status.code(),
        Some(3),
        "{status:?}; terminal: {:?}",
        pty.seen
    );
    pty.assert_cooked();
    assert_eq!(ps_row(&lcd, &[], "x"), None, "x still runs");
    let row = ps_row(&lcd, &["-a"], "x").expect("x is not in `lcd ps -a`");
    assert!(row.contains("Exited (3)"), "{row}");

    lcd.run(&["rm", "x"]).ok();
    lcd.assert_clean();
}

#[test]
fn attach_without_a_terminal_from_one_process_after_another() {
    let lcd = Lcd::new("attachi");
    let script = "while read l; do echo got:$l; done; echo bye; exit 5";
    let out = lcd.run(&[
        "run",
        "-d",
        "-i",
        "--name",
        "y",
        lcd.rootfs(),
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.ok(), "y\n", "{out}");
    lcd.wait_state("y", "running", PROMPT);

    // A first attach, its stdin a pipe we keep open, is killed (no terminal: no detach keys).
    let mut first = lcd.spawn(&["attach", "y"], Stdio::piped());
    first
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"one\n")
        .expect("write");
    first.wait_for_line("got:one", PROMPT);
    first.signal(Signal::SIGKILL);
    let killed = first.finish(PROMPT);
    assert_eq!(
        killed.status.code(),
        None,
        "lcd attach was not killed: {killed}"
    );

    // The container runs on, its stdin still open: losing an attached client is no end of file.
    std::thread::sleep(Duration::from_millis(500));
    let row = lcd.ps_of("y");
    assert_eq!(row["State"], "running", "{row}");

    // A second attach sends a line, then its end of input ends the loop.
    let second = lcd.run_input(&["attach", "y"], b"two\n");
    second.expect_code(5);
    assert_eq!(second.stdout, "got:two\nbye\n", "{second}");
    assert_eq!(second.stderr, "", "{second}");
    let row = lcd.ps_of("y");
    assert_eq!(row["State"], "exited", "{row}");
    assert_eq!(row["ExitCode"], 5, "{row}");
    let row = ps_row(&lcd, &["-a"], "y").expect("y is not in `lcd ps -a`");
    assert!(row.contains("Exited (5)"), "{row}");

    lcd.run(&["rm", "y"]).ok();
    lcd.assert_clean();
}

#[test]
fn attach_refuses_what_it_cannot_attach_to() {
    let lcd = Lcd::new("attachno");

    // Started without -i or -t: its output is in the log.
    let out = lcd.run(&["run", "-d", "--name", "plain", lcd.rootfs(), "sleep", "60"]);
    assert_eq!(out.ok(), "plain\n", "{out}");
    lcd.wait_state("plain", "running", PROMPT);
    let started = Instant::now();
    lcd.run(&["attach", "plain"])
        .expect_error(125, &["plain", "lcd logs"]);
    assert!(started.elapsed() < TIMEOUT);
    assert_eq!(lcd.ps_of("plain")["State"], "running");

    // Unknown.
    lcd.run(&["attach", "nope"]).expect_error(125, &["nope"]);

    // Created, never started.
    let out = lcd.run(&["create", "-i", "--name", "fresh", lcd.rootfs(), "cat"]);
    assert_eq!(out.ok(), "fresh\n", "{out}");
    lcd.run(&["attach", "fresh"])
        .expect_error(125, &["fresh", "not running"]);

    // Stopped.
    let out = lcd.run(&["run", "-d", "-i", "--name", "done", lcd.rootfs(), "true"]);
    assert_eq!(out.ok(), "done\n", "{out}");
    lcd.wait_state("done", "exited", PROMPT);
    lcd.run(&["attach", "done"])
        .expect_error(125, &["done", "not running"]);

    lcd.run(&["rm", "-f", "plain", "fresh", "done"]).ok();
    lcd.assert_clean();
}
