#!/usr/bin/env python3
"""Side-by-side benchmark: runc (the floor), ctr, docker and lcd on one machine, in one run.

Installs what it needs (Debian packages), builds lcd in release mode, starts a private containerd (through
lcd's supervisor) and a private dockerd using that same containerd, measures, prints medians, p90s and
the ratios lcd/ctr and lcd/docker, and removes everything it started. It never asserts a time.

Usage (as root):  python3 bench/bench.py [--runs 30] [--parallel 20] [--json FILE]
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ["containerd", "runc", "docker.io", "busybox-static", "protobuf-compiler", "time"]


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def install():
    missing = [p for p in PACKAGES
               if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                                 text=True).stdout.find("install ok installed") < 0]
    if missing:
        print("installing:", " ".join(missing), flush=True)
        sh(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL)
        sh(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)


def quiet_check(label):
    load1 = float(open("/proc/loadavg").read().split()[0])
    ok = load1 < 0.5 * os.cpu_count()
    print(f"{label}: load average {load1:.2f} on {os.cpu_count()} cores"
          + ("" if ok else "  ** machine was not quiet: numbers may be noisy **"), flush=True)
    return {"load1": load1, "quiet": ok}


def peak_rss_kib(cmd, env=None):
    """Peak RSS of one run of cmd, through GNU time: a child forked from this (large) Python process
    would report Python's own RSS as its peak, so the measuring parent must be small."""
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name, *cmd], env=env, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return int(out.read().split()[-1])


def timed(cmd, env=None):
    """Run cmd to completion; return (milliseconds, rusage max RSS, which includes the forking parent's)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, rusage = os.wait4(p.pid, 0)
    ms = (time.perf_counter() - start) * 1000
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.read().decode()}")
    return ms, rusage.ru_maxrss


def series(make_cmd, runs, warmup, env=None):
    times, rss = [], []
    for i in range(warmup + runs):
        ms, kib = timed(make_cmd(i), env)
        if i >= warmup:
            times.append(ms)
            rss.append(kib)
    return times, rss


def at_once(make_cmd, n, env=None):
    """Wall time for n commands started together."""
    start = time.perf_counter()
    procs = [subprocess.Popen(make_cmd(i), env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(n)]
    failed = 0
    for p in procs:
        if p.wait() != 0:
            failed += 1
            sys.stderr.write(p.stderr.read().decode())
    return (time.perf_counter() - start) * 1000, failed


def stats(values):
    values = sorted(values)
    return {"median": statistics.median(values), "p90": values[min(len(values) - 1, int(len(values) * 0.9))]}


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Bench:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="lcdb", dir="/tmp")
        self.lcd = os.path.join(ROOT, "target/release/lcd")
        self.rootfs = os.path.join(self.dir, "rootfs")
        self.lcd_env = dict(os.environ, LCD_DATA_ROOT=f"{self.dir}/data", LCD_EXEC_ROOT=f"{self.dir}/run",
                            LCD_NAMESPACE="bench-lcd")
        self.sock = f"{self.dir}/run/containerd/containerd.sock"
        self.docker_sock = f"{self.dir}/docker.sock"
        self.dockerd = None
        self.runc_root = f"{self.dir}/runc"
        self.results = {"rows": {}, "machine": {}}

    # --- setup -----------------------------------------------------------------------------------
    def setup(self):
        sh(["cargo", "build", "--release", "-q", "-p", "lcd"], cwd=ROOT)
        sh([self.lcd, "rootfs", "busybox", self.rootfs], stdout=subprocess.DEVNULL)
        sh([self.lcd, "daemon", "start"], env=self.lcd_env, stdout=subprocess.DEVNULL)
        self.lcd_env["LCD_ADDRESS"] = self.sock
        self.start_dockerd()
        # docker needs an image: import the same rootfs.
        tar = subprocess.Popen(["tar", "-C", self.rootfs, "-c", "."], stdout=subprocess.PIPE)
        sh(self.docker("import", "-", "lcdbench:latest"), stdin=tar.stdout, stdout=subprocess.DEVNULL)
        tar.wait()
        self.runc_bundle()

    def start_dockerd(self):
        log = open(f"{self.dir}/dockerd.log", "w")
        self.dockerd = subprocess.Popen(
            ["dockerd", "--data-root", f"{self.dir}/docker", "--exec-root", f"{self.dir}/docker-run",
             "-H", f"unix://{self.docker_sock}", "--pidfile", f"{self.dir}/docker.pid",
             "--containerd", self.sock, "--iptables=false", "--ip-masq=false", "--bridge=none",
             "--storage-driver=vfs"], stdout=log, stderr=log, start_new_session=True)
        for _ in range(300):
            if subprocess.run(self.docker("version"), capture_output=True).returncode == 0:
                return
            if self.dockerd.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"dockerd did not start; see {self.dir}/dockerd.log")

    def runc_bundle(self):
        bundle = f"{self.dir}/runc-bundle"
        os.makedirs(bundle)
        sh(["runc", "spec", "--bundle", bundle])
        cfg = json.load(open(f"{bundle}/config.json"))
        cfg["root"] = {"path": self.rootfs, "readonly": True}
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["/bin/true"]
        json.dump(cfg, open(f"{bundle}/config.json", "w"))
        self.bundle = bundle

    def docker(self, *args):
        return ["docker", "-H", f"unix://{self.docker_sock}", *args]

    def ctr(self, *args):
        return ["ctr", "-a", self.sock, "-n", "bench-ctr", *args]

    # --- rows ------------------------------------------------------------------------------------
    def row(self, name, tool, values, extra=None):
        self.results["rows"].setdefault(name, {})[tool] = {**stats(values), **(extra or {})}

    def run_rm(self):
        runs, warm = self.args.runs, 3
        cmds = {
            "runc": lambda i: ["runc", "--root", self.runc_root, "run", "-b", self.bundle, f"r{i}"],
            "ctr": lambda i: self.ctr("run", "--rm", "--rootfs", self.rootfs, f"c{i}", "/bin/true"),
            "docker": lambda i: self.docker("run", "--rm", "--network", "none", "lcdbench", "/bin/true"),
            "lcd": lambda i: [self.lcd, "run", "--rm", self.rootfs, "/bin/true"],
        }
        # Interleave the tools run by run, so drift in the machine hits all of them alike.
        samples = {t: ([], []) for t in cmds}
        for i in range(warm + runs):
            for tool, make in cmds.items():
                ms, kib = timed(make(i), self.lcd_env)
                if i >= warm:
                    samples[tool][0].append(ms)
                    samples[tool][1].append(kib)
        for tool, (times, _) in samples.items():
            rss = peak_rss_kib(cmds[tool](warm + runs), self.lcd_env)
            self.row("run --rm /bin/true", tool, times, {"client_peak_rss_kib": rss})

    def exec_(self):
        runs, warm = self.args.runs, 3
        sh(["runc", "--root", self.runc_root, "run", "-d", "-b", self.exec_bundle(), "rexec"],
           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sh(self.ctr("run", "-d", "--rootfs", self.rootfs, "cexec", "/bin/sleep", "100000"), stdout=subprocess.DEVNULL)
        sh(self.docker("run", "-d", "--network", "none", "--name", "dexec", "lcdbench", "/bin/sleep", "100000"),
           stdout=subprocess.DEVNULL)
        sh([self.lcd, "run", "-d", "--name", "lexec", self.rootfs, "/bin/sleep", "100000"], env=self.lcd_env,
           stdout=subprocess.DEVNULL)
        cmds = {
            "runc": lambda i: ["runc", "--root", self.runc_root, "exec", "rexec", "/bin/true"],
            "ctr": lambda i: self.ctr("task", "exec", "--exec-id", f"e{i}", "cexec", "/bin/true"),
            "docker": lambda i: self.docker("exec", "dexec", "/bin/true"),
            "lcd": lambda i: [self.lcd, "exec", "lexec", "/bin/true"],
        }
        samples = {t: [] for t in cmds}
        for i in range(warm + runs):
            for tool, make in cmds.items():
                ms, _ = timed(make(i), self.lcd_env)
                if i >= warm:
                    samples[tool].append(ms)
        for tool, times in samples.items():
            self.row("exec /bin/true", tool, times)

    def exec_bundle(self):
        bundle = f"{self.dir}/runc-exec-bundle"
        os.makedirs(bundle)
        cfg = json.load(open(f"{self.bundle}/config.json"))
        cfg["process"]["args"] = ["/bin/sleep", "100000"]
        json.dump(cfg, open(f"{bundle}/config.json", "w"))
        return bundle

    def parallel(self):
        n = self.args.parallel
        cmds = {
            "runc": lambda r: lambda i: ["runc", "--root", self.runc_root, "run", "-b", self.bundle, f"p{r}-{i}"],
            "ctr": lambda r: lambda i: self.ctr("run", "--rm", "--rootfs", self.rootfs, f"p{r}-{i}", "/bin/true"),
            "docker": lambda r: lambda i: self.docker("run", "--rm", "--network", "none", "lcdbench", "/bin/true"),
            "lcd": lambda r: lambda i: [self.lcd, "run", "--rm", self.rootfs, "/bin/true"],
        }
        samples = {t: [] for t in cmds}
        dockerd_peak = 0
        for r in range(self.args.parallel_rounds):
            for tool, make in cmds.items():
                ms, failed = at_once(make(r), n, self.lcd_env)
                if failed:
                    print(f"  {tool}: {failed} of {n} failed", flush=True)
                samples[tool].append(ms)
                if tool == "docker":
                    dockerd_peak = max(dockerd_peak, rss_kib(self.dockerd.pid))
        for tool, times in samples.items():
            self.row(f"{n} at once (wall)", tool, times)
        self.results["dockerd_rss_after_load_kib"] = dockerd_peak

    def stress(self):
        """Containers per second: `lcd stress -c N` (one process, one connection) against N parallel
        loops of `ctr run --rm` (containerd-stress needs an image store this bench does not fill)."""
        n, secs = self.args.stress_concurrency, self.args.stress_seconds
        out = subprocess.run([self.lcd, "stress", "-c", str(n), "-d", f"{secs}s", "--json",
                              "--rootfs", self.rootfs], env=self.lcd_env, capture_output=True, text=True,
                             check=True).stdout
        lcd = json.loads(out)
        deadline = time.monotonic() + secs
        done = [0] * n
        failed = [0] * n
        procs = [None] * n
        start = time.monotonic()
        while time.monotonic() < deadline or any(procs):
            for w in range(n):
                p = procs[w]
                if p is not None and p.poll() is not None:
                    if p.returncode == 0:
                        done[w] += 1
                    else:
                        failed[w] += 1
                    procs[w] = None
                if procs[w] is None and time.monotonic() < deadline:
                    procs[w] = subprocess.Popen(
                        self.ctr("run", "--rm", "--rootfs", self.rootfs, f"s{w}-{done[w] + failed[w]}",
                                 "/bin/true"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.002)
        elapsed = time.monotonic() - start
        ctr_rate = sum(done) / elapsed
        self.results["stress"] = {
            "concurrency": n, "seconds": secs,
            "lcd_per_second": lcd["per_second"], "lcd_failures": lcd["failures"],
            "lcd_client_cpu_ms_per_container": lcd["client_cpu_ms_per_op"],
            "lcd_client_peak_rss_kib": lcd["client_peak_rss_kib"],
            "lcd_fds_before_after": [lcd["client_fds_before"], lcd["client_fds_after"]],
            "ctr_loops_per_second": ctr_rate, "ctr_failures": sum(failed),
            "ratio_lcd_over_ctr": lcd["per_second"] / ctr_rate if ctr_rate else None,
        }

    # --- report ----------------------------------------------------------------------------------
    def report(self):
        rows = self.results["rows"]
        print()
        print(f"{'benchmark':<24} {'tool':<7} {'median ms':>10} {'p90 ms':>9}")
        for name, tools in rows.items():
            for tool, s in tools.items():
                print(f"{name:<24} {tool:<7} {s['median']:>10.1f} {s['p90']:>9.1f}")
            lcd = tools.get("lcd", {}).get("median")
            for other in ("ctr", "docker"):
                if lcd and other in tools:
                    ratio = lcd / tools[other]["median"]
                    rows[name].setdefault("ratios", {})[f"lcd/{other}"] = ratio
                    print(f"{'':<24} lcd/{other} = {ratio:.2f}")
        st = self.results.get("stress")
        if st:
            print()
            print(f"stress -c {st['concurrency']} for {st['seconds']} s: lcd {st['lcd_per_second']:.1f}/s "
                  f"({st['lcd_failures']} failures, {st['lcd_client_cpu_ms_per_container']:.2f} ms client CPU per "
                  f"container, fds {st['lcd_fds_before_after']}), {st['concurrency']} ctr loops "
                  f"{st['ctr_loops_per_second']:.1f}/s ({st['ctr_failures']} failures): "
                  f"lcd/ctr = {st['ratio_lcd_over_ctr']:.2f}")
        mem = self.results["memory"]
        print()
        print("client-side memory (KiB):")
        for k, v in mem.items():
            print(f"  {k:<40} {v}")

    def memory(self):
        rr = self.results["rows"].get("run --rm /bin/true", {})
        self.results["memory"] = {
            "lcd resident when idle (no daemon)": 0,
            "lcd peak RSS of one run --rm": rr.get("lcd", {}).get("client_peak_rss_kib"),
            "ctr peak RSS of one run --rm": rr.get("ctr", {}).get("client_peak_rss_kib"),
            "docker CLI peak RSS of one run --rm": rr.get("docker", {}).get("client_peak_rss_kib"),
            "dockerd RSS when idle": self.results.get("dockerd_idle_kib"),
            "dockerd RSS after the parallel load": self.results.get("dockerd_rss_after_load_kib"),
        }

    def cleanup(self):
        for cmd in ([self.lcd, "rm", "-f", "lexec"], self.docker("rm", "-f", "dexec"),
                    self.ctr("task", "kill", "-s", "KILL", "cexec")):
            subprocess.run(cmd, env=self.lcd_env, capture_output=True)
        time.sleep(0.5)
        for cmd in (self.ctr("task", "rm", "-f", "cexec"), self.ctr("c", "rm", "cexec"),
                    ["runc", "--root", self.runc_root, "delete", "-f", "rexec"]):
            subprocess.run(cmd, capture_output=True)
        if self.dockerd and self.dockerd.poll() is None:
            self.dockerd.send_signal(signal.SIGTERM)
            try:
                self.dockerd.wait(20)
            except subprocess.TimeoutExpired:
                self.dockerd.kill()
                self.dockerd.wait()
        env = {k: v for k, v in self.lcd_env.items() if k != "LCD_ADDRESS"}
        subprocess.run([self.lcd, "daemon", "stop"], env=env, capture_output=True)
        subprocess.run(["umount", "-R", f"{self.dir}/docker"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        # The namespaces' cgroup parents outlive their containers; rmdir removes only empty ones.
        for controller in os.listdir("/sys/fs/cgroup"):
            for parent in ("bench-ctr", "bench-lcd", "docker"):
                try:
                    os.rmdir(os.path.join("/sys/fs/cgroup", controller, parent))
                except OSError:
                    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--parallel", type=int, default=20)
    ap.add_argument("--parallel-rounds", type=int, default=3)
    ap.add_argument("--stress-concurrency", type=int, default=4)
    ap.add_argument("--stress-seconds", type=int, default=20)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (containerd, runc and dockerd need it)")
    install()
    b = Bench(args)
    try:
        b.results["machine"] = {"cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
                                "kernel": os.uname().release,
                                "before": quiet_check("before")}
        b.setup()
        b.results["dockerd_idle_kib"] = rss_kib(b.dockerd.pid)
        print("run --rm ...", flush=True)
        b.run_rm()
        print("exec ...", flush=True)
        b.exec_()
        print(f"{args.parallel} at once ...", flush=True)
        b.parallel()
        print("stress ...", flush=True)
        b.stress()
        b.results["machine"]["after"] = quiet_check("after")
        b.memory()
        b.report()
        if args.json:
            json.dump(b.results, open(args.json, "w"), indent=2)
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
