#!/usr/bin/env python3
"""Side-by-side benchmark: runc (the floor), ctr, docker and lcd on one machine, in one run.

Installs what it needs (Debian packages), builds lcd in release mode, starts a private containerd (through
lcd's supervisor) and a private dockerd using that same containerd, measures, prints medians, p90s and
the ratios lcd/ctr and lcd/docker, and removes everything it started. It never asserts a time.

Besides wall times it reports, per tool, the CPU the client process itself took (user + system, from
wait4's rusage: lcd, ctr, the docker CLI, runc); "where the time goes": one in-process lifecycle
(`lcd stress -c 1`, no process start-up) per round of the run --rm rows, whose median is what
containerd, the shim and runc take for one `run --rm`, against which lcd's and ctr's own overheads are
read, and the per-phase p50s of a longer `lcd stress -c 1` run; and, for the
stress comparison, the whole machine's CPU per container (from /proc/stat) and the client's share of it,
with containerd + shims + runc's own CPU counted apart by moving the private containerd into a cpuacct
cgroup of its own (cgroup v1; removed at the end), which other load on the machine does not disturb.
It also measures what one cgroup migration costs on this kernel (see SETTLE_S), which every runc create
and exec pays, and pauses before each timed sequential command so that all tools pay it alike.

Images: a private registry (Debian's docker-registry on 127.0.0.1, a config of its own) serves an
image the bench builds offline (3 gzip layers of random bytes, 50 MiB; 10 MiB when --runs is under
10), which `lcd pull` and `ctr images pull` fetch and unpack, and `lcd load` and `ctr images import`
load from its docker-save tar, each into a cold store (the image removed with a synchronous GC, its
blobs and snapshots checked gone), 10 rounds (2 when --runs is under 10); ctr also without its
unpack, and whether each command unpacked is checked, so that lcd is held against the ctr command
doing the same work. `lcd run`, `ctr run` and `docker run` start busybox from an image each has
stored and unpacked. Reported against the issue's targets, with `lcd pull`'s peak RSS.

Checkpoints: CRIU dump and restore of a small container and of one holding 256 MiB (32 when --runs is
under 10), lcd against ctr on the same containerd and criu (see Bench.checkpoints); skipped, with the
reason, where `criu check` fails (`bash .ci/criu` builds a criu that works).

crun: the run --rm and exec rows also time `lcd --runtime crun` (Debian's crun under the same runc
shim) where crun runs containers on this host; where it does not (crun refuses cgroup v1 hosts whose
cgroup v2 hierarchy has controllers too), the row is skipped with lcd's reason printed.

Usage (as root):  python3 bench/bench.py [--runs 30] [--parallel 20] [--image-mib 50] [--only images] [--json FILE]
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The phases `lcd stress` times, in lifecycle order.
PHASES = ["create", "start", "wait", "delete", "remove"]
# The pseudo-tool of the run --rm rounds that times one lifecycle inside an lcd process.
IN_PROCESS = "lcd in-process"
# Containers each tool execs into, in turn (see Bench.exec_).
EXEC_TARGETS = 4
# The pause before each timed sequential command (run --rm, exec). A cgroup migration (runc moving
# its init into the container's cgroups) waits for an RCU grace period, 10-20 ms on the 2-core VM
# it was found on, unless another migration ran within about the last 25-30 ms (the kernel's
# cgroup_threadgroup_rwsem; not with favordynmods). Without the pause, whether a tool paid
# it depended on which tool ran just before and how soon its own migration came after start-up.
# With it every command starts from the same quiet kernel, as one a person types does.
SETTLE_S = 0.1
# What --only can pick: the rows' sections, in the order they run.
# `ctr run --seccomp`: containerd's default seccomp profile (equal in effect to docker's, which lcd
# applies by default); plain `ctr run` applies none, and runc's compiling of the profile is ~10-15 ms
# of every container start here.
CTR_SECCOMP = "ctr+sec"
SECTIONS = ["run", "exec", "parallel", "stress", "images", "network", "checkpoint"]
PACKAGES = ["containerd", "runc", "docker.io", "busybox-static", "protobuf-compiler", "time", "docker-registry",
            "crun"]
# The tool name of lcd with `--runtime crun` (the run --rm and exec rows), where crun works.
LCD_CRUN = "lcd-crun"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def install():
    missing = [p for p in PACKAGES
               if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                                 text=True).stdout.find("install ok installed") < 0]
    if missing:
        print("installing:", " ".join(missing), flush=True)
        # The packages must not start their services (docker.io would start a system dockerd and
        # containerd, docker-registry a registry on all interfaces with htpasswd auth): the bench
        # runs private daemons only. A policy-rc.d that answers 101 tells invoke-rc.d and
        # deb-systemd-invoke to start nothing; one the machine has already is kept.
        policy = "/usr/sbin/policy-rc.d"
        ours = not os.path.exists(policy)
        if ours:
            with open(policy, "w") as f:
                f.write("#!/bin/sh\n# written by lcd's bench/bench.py for one apt-get install\nexit 101\n")
            os.chmod(policy, 0o755)
        try:
            sh(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL)
            sh(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
               env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)
        finally:
            if ours:
                os.remove(policy)


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


def cpu_ms(ru):
    """User + system CPU of an rusage, in milliseconds."""
    return (ru.ru_utime + ru.ru_stime) * 1000


def children_cpu_ms():
    """CPU of every child this process has waited for so far (user + system, ms)."""
    return cpu_ms(resource.getrusage(resource.RUSAGE_CHILDREN))


def self_cpu_ms():
    return cpu_ms(resource.getrusage(resource.RUSAGE_SELF))


def machine_busy_ms():
    """CPU time the whole machine has been busy since boot, all cores, in ms: /proc/stat's first line,
    total (user nice system idle iowait irq softirq steal; guest time is already in user) minus idle
    minus iowait."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) * 1000 / os.sysconf("SC_CLK_TCK")


class CpuAccount:
    """containerd moved into a cpuacct cgroup of its own (cgroup v1): the shims it starts and the runc
    processes they run inherit it, while the containers run in cgroups of their own, so the cgroup's
    usage is exactly the CPU of containerd + shims + runc, whatever else the machine is doing.
    Best effort: without cgroup v1's cpuacct it measures nothing (ms() is None)."""

    ROOT = "/sys/fs/cgroup/cpuacct"

    def __init__(self, pid, name):
        self.path = None
        if not os.path.isfile(f"{self.ROOT}/cpuacct.usage"):
            return
        try:
            os.mkdir(f"{self.ROOT}/{name}")
            self.path = f"{self.ROOT}/{name}"
            with open(f"{self.path}/cgroup.procs", "w") as f:
                f.write(str(pid))
        except OSError as e:
            print(f"  (no containerd CPU accounting: {e})", flush=True)
            self.close()

    def ms(self):
        if self.path is None:
            return None
        with open(f"{self.path}/cpuacct.usage") as f:
            return int(f.read()) / 1e6

    def close(self):
        """Move whatever is left back to the root cgroup and remove ours."""
        if self.path is None:
            return
        try:
            with open(f"{self.path}/cgroup.procs") as f:
                left = f.read().split()
            for pid in left:
                try:
                    with open(f"{self.ROOT}/cgroup.procs", "w") as f:
                        f.write(pid)
                except OSError:
                    pass  # it exited meanwhile
            os.rmdir(self.path)
        except OSError:
            pass
        self.path = None


def rotated(cmds, i):
    """The tools in a different order each round: a tool that leaves its daemon busy after it returns
    (dockerd deletes an exec's or a container's remains in the background) must not always slow down
    the same next tool."""
    items = list(cmds.items())
    k = i % len(items)
    return items[k:] + items[:k]


def timed(cmd, env=None):
    """Run cmd to completion; return (milliseconds, rusage max RSS, which includes the forking parent's,
    CPU ms of the process, user + system: the client's own, with whatever children it waited for)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, rusage = os.wait4(p.pid, 0)
    ms = (time.perf_counter() - start) * 1000
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.read().decode()}")
    p.stderr.close()
    return ms, rusage.ru_maxrss, cpu_ms(rusage)


def at_once(make_cmd, n, env=None):
    """Wall time for n commands started together; also their CPU (user + system ms, all n together)."""
    cpu0 = children_cpu_ms()
    start = time.perf_counter()
    procs = [subprocess.Popen(make_cmd(i), env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(n)]
    failed = 0
    for p in procs:
        if p.wait() != 0:
            failed += 1
            sys.stderr.write(p.stderr.read().decode())
        p.stderr.close()
    return (time.perf_counter() - start) * 1000, failed, children_cpu_ms() - cpu0


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


def cgroup_setup():
    """How this host mounts cgroups: "v1" (or hybrid), "v2", and whether favordynmods is on for any
    hierarchy (then cgroup migrations do not wait for an RCU grace period; on kernels 6.18+ setting it
    once stays in effect until reboot, whatever the mount options say later)."""
    mounts = [line.split() for line in open("/proc/mounts")]
    kinds = {m[2] for m in mounts if m[2] in ("cgroup", "cgroup2")}
    favordynmods = any("favordynmods" in m[3].split(",") for m in mounts if m[2] in ("cgroup", "cgroup2"))
    return {"mode": "v1" if "cgroup" in kinds else "v2", "favordynmods_mounted": favordynmods}


def cgroup_procs_of(pid):
    """The cgroup.procs file of the cgroup pid is in, on one hierarchy: pids or cpu on cgroup v1,
    the unified tree on v2."""
    entries = [line.rstrip("\n").split(":", 2) for line in open(f"/proc/{pid}/cgroup")]
    for _, controllers, path in entries:
        if {"pids", "cpu"} & set(controllers.split(",")):
            return f"/sys/fs/cgroup/{controllers}{path.rstrip('/')}/cgroup.procs"
    v2_root = next((m[1] for m in (line.split() for line in open("/proc/mounts")) if m[2] == "cgroup2"), None)
    path = next((path for num, _, path in entries if num == "0"), None)
    return f"{v2_root}{path.rstrip('/')}/cgroup.procs" if v2_root and path is not None else None


def cgroup_migration_ms(samples=7, idle_s=0.2):
    """What the kernel takes to move a process between cgroups after a quiet moment: runc pays this
    once per create and once per exec (it moves its init into the container's cgroups). A child
    `sleep` is moved into the cgroup it is already in, which changes nothing but takes the same
    lock: cgroup_threadgroup_rwsem, whose writer waits for an RCU grace period unless a migration
    ran within the last grace period or two, or favordynmods is on. Returns the median in ms, or None
    where cgroup.procs cannot be written."""
    times = []
    for _ in range(samples):
        child = subprocess.Popen(["sleep", "5"])
        try:
            procs = cgroup_procs_of(child.pid)
            if procs is None:
                return None
            time.sleep(idle_s)
            with open(procs, "w") as f:
                start = time.perf_counter()
                f.write(str(child.pid))
                f.flush()
                times.append((time.perf_counter() - start) * 1000)
        except OSError:
            return None
        finally:
            child.kill()
            child.wait()
    return statistics.median(times)


# The image of the pull and load rows: layers of incompressible random bytes (so a layer's size is
# what crosses the wire and lands on disk), each this share of the whole, gzip-compressed as
# registries serve them (level 1: random bytes come out as stored blocks, a few bytes larger; the
# unpack still inflates each layer and checks its digest and diff ID).
IMAGE_LAYER_SHARES = (0.6, 0.3, 0.1)
# Files in a layer are at most this large.
IMAGE_FILE_MAX = 8 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# containerd's directories under its root (see Bench.containerd_root) that must be empty of an
# image once it is removed.
BLOBS_DIR = "io.containerd.content.v1.content/blobs/sha256"
OVERLAY_SNAPSHOTS_DIR = "io.containerd.snapshotter.v1.overlayfs/snapshots"


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_arch():
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def random_layer(rng, size, n):
    """A layer tar: /bench/layer<n>/ holding size bytes of random data in files of at most
    IMAGE_FILE_MAX."""
    buf = io.BytesIO()
    mtime = 1700000000
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bench", f"bench/layer{n}"):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(info)
        left, k = size, 0
        while left > 0:
            info = tarfile.TarInfo(f"bench/layer{n}/{k}.bin")
            info.size, info.mode, info.mtime = min(left, IMAGE_FILE_MAX), 0o644, mtime
            tar.addfile(info, io.BytesIO(rng.randbytes(info.size)))
            left, k = left - info.size, k + 1
    return buf.getvalue()


def build_image(total_mib, seed=1):
    """An OCI image of len(IMAGE_LAYER_SHARES) gzip layers totalling total_mib MiB of random bytes,
    built offline: {"layers": [(digest, gzip bytes)], "config": bytes, "manifest": bytes,
    "digests": every blob's digest, "diff_ids": [...]}."""
    rng = random.Random(seed)
    layers, diff_ids = [], []
    for n, share in enumerate(IMAGE_LAYER_SHARES):
        tar = random_layer(rng, int(total_mib * share * (1 << 20)), n)
        diff_ids.append(sha256_digest(tar))
        blob = gzip.compress(tar, compresslevel=1, mtime=0)
        layers.append((sha256_digest(blob), blob))
    config = json.dumps({
        "architecture": oci_arch(), "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": d, "size": len(b)} for d, b in layers],
    }, separators=(",", ":")).encode()
    return {"layers": layers, "config": config, "manifest": manifest, "diff_ids": diff_ids,
            "digests": [d for d, _ in layers] + [sha256_digest(config), sha256_digest(manifest)]}


def chain_ids(diff_ids):
    """The snapshots an unpacked image's layers are committed as (OCI's ChainID)."""
    chain = []
    for d in diff_ids:
        chain.append(d if not chain else sha256_digest(f"{chain[-1]} {d}".encode()))
    return chain


class Registry:
    """Debian's docker-registry on 127.0.0.1 with a config of the bench's own in its temp dir (never
    the packaged /etc/docker/registry/config.yml, which listens on all interfaces with htpasswd
    auth); images pushed through the registry HTTP API; stopped by its PID."""

    BINARY = "/usr/bin/docker-registry"

    def __init__(self, path):
        os.makedirs(path)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.addr = f"127.0.0.1:{s.getsockname()[1]}"
        config = f"{path}/config.yml"
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {path}/storage\n"
                    f"http:\n  addr: {self.addr}\n")
        self.log = f"{path}/registry.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([self.BINARY, "serve", config], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        # Only ever 127.0.0.1, never through a proxy from the environment.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        host, port = self.addr.split(":")
        for _ in range(300):
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not start; see {self.log}")

    def request(self, method, path_or_url, data=None, content_type=None):
        url = urllib.parse.urljoin(f"http://{self.addr}/", path_or_url)
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": content_type} if content_type else {})
        with self.opener.open(req, timeout=120) as r:
            r.read()
            return r.status, r.headers

    def push_blob(self, repo, data):
        """Monolithic upload: POST for a session, PUT its location with the digest and the bytes."""
        digest = sha256_digest(data)
        status, headers = self.request("POST", f"/v2/{repo}/blobs/uploads/", b"")
        if status != 202:
            raise RuntimeError(f"registry: upload to {repo} answered {status}")
        location = headers["Location"]
        sep = "&" if "?" in location else "?"
        status, _ = self.request("PUT", f"{location}{sep}digest={digest}", data, "application/octet-stream")
        if status != 201:
            raise RuntimeError(f"registry: upload of {digest} answered {status}")

    def push_image(self, repo, tag, image):
        for _, blob in image["layers"]:
            self.push_blob(repo, blob)
        self.push_blob(repo, image["config"])
        status, _ = self.request("PUT", f"/v2/{repo}/manifests/{tag}", image["manifest"], OCI_MANIFEST)
        if status != 201:
            raise RuntimeError(f"registry: manifest {repo}:{tag} answered {status}")

    def cpu_ms(self):
        """The registry's CPU so far (user + system, all its threads; clock-tick resolution)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Bench:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="lcdb", dir="/tmp")
        # Where cargo puts it: $CARGO_TARGET_DIR (relative to the worktree, where cargo runs) if set.
        self.lcd = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target", "release/lcd")
        self.rootfs = os.path.join(self.dir, "rootfs")
        # --network none, as docker's rows: lcd's default bridge network would change the host's
        # network; the network rows run in a namespace of their own (see network_inner).
        self.lcd_env = dict(os.environ, LCD_DATA_ROOT=f"{self.dir}/data", LCD_EXEC_ROOT=f"{self.dir}/run",
                            LCD_NAMESPACE="bench-lcd", LCD_NETWORK="none")
        self.sock = f"{self.dir}/run/containerd/containerd.sock"
        self.docker_sock = f"{self.dir}/docker.sock"
        self.dockerd = None
        self.runc_root = f"{self.dir}/runc"
        self.acct = None
        self.registry = None
        # The managed containerd's root: under lcd's data root, containerd/ (the supervisor's) +
        # containerd/ (containerd's own root in its config).
        self.containerd_root = f"{self.dir}/data/containerd/containerd"
        self.results = {"rows": {}, "machine": {}}
        # Why `lcd --runtime crun` cannot be measured here (see crun_check); None where it can.
        self.crun_skip = "not checked"

    # --- setup -----------------------------------------------------------------------------------
    def setup(self):
        sh(["cargo", "build", "--release", "-q", "-p", "lcd"], cwd=ROOT)
        sh([self.lcd, "rootfs", "busybox", self.rootfs], stdout=subprocess.DEVNULL)
        sh([self.lcd, "daemon", "start"], env=self.lcd_env, stdout=subprocess.DEVNULL)
        self.lcd_env["LCD_ADDRESS"] = self.sock
        with open(f"{self.dir}/run/containerd/containerd.pid") as f:
            self.acct = CpuAccount(int(f.read().split()[0]), f"lcdbench-{os.getpid()}")
        self.start_dockerd()
        # docker needs an image: import the same rootfs.
        tar = subprocess.Popen(["tar", "-C", self.rootfs, "-c", "."], stdout=subprocess.PIPE)
        sh(self.docker("import", "-", "lcdbench:latest"), stdin=tar.stdout, stdout=subprocess.DEVNULL)
        tar.wait()
        self.runc_bundle()
        self.crun_check()

    def crun_check(self):
        """Whether lcd runs containers with crun here; if not, lcd's one-line reason."""
        out = subprocess.run([self.lcd, "run", "--rm", "--runtime", "crun", self.rootfs, "/bin/true"],
                             env=self.lcd_env, capture_output=True, text=True)
        self.crun_skip = None if out.returncode == 0 else (out.stderr.strip() or f"exit {out.returncode}")
        if self.crun_skip:
            print(f"  {LCD_CRUN} rows skipped: {self.crun_skip}", flush=True)
            self.results["crun"] = {"skipped": self.crun_skip}

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
    def row(self, name, tool, values, extra=None, cpu=None):
        """One (benchmark, tool) cell: median and p90 of values (ms); cpu: the client's CPU ms per
        command, one value per run, summarised by its median."""
        cell = {**stats(values), **(extra or {})}
        if cpu:
            cell["client_cpu_ms_median"] = statistics.median(cpu)
        self.results["rows"].setdefault(name, {})[tool] = cell

    def run_rm(self):
        runs, warm = self.args.runs, 3
        cmds = {
            "runc": lambda i: ["runc", "--root", self.runc_root, "run", "-b", self.bundle, f"r{i}"],
            "ctr": lambda i: self.ctr("run", "--rm", "--rootfs", self.rootfs, f"c{i}", "/bin/true"),
            CTR_SECCOMP: lambda i: self.ctr("run", "--rm", "--seccomp", "--rootfs", self.rootfs, f"s{i}",
                                            "/bin/true"),
            "docker": lambda i: self.docker("run", "--rm", "--network", "none", "lcdbench", "/bin/true"),
            "lcd": lambda i: [self.lcd, "run", "--rm", self.rootfs, "/bin/true"],
        }
        if not self.crun_skip:
            cmds[LCD_CRUN] = lambda i: [self.lcd, "run", "--rm", "--runtime", "crun", self.rootfs, "/bin/true"]
        # Interleave the tools run by run, so drift in the machine hits all of them alike. Each round
        # also times one lifecycle inside an lcd process (`lcd stress -c 1` for one lifecycle: what
        # containerd, the shim and runc take, without any client start-up), the baseline against
        # which each client's own overhead is read.
        samples = {t: ([], []) for t in cmds}
        in_process = []
        for i in range(warm + runs):
            for tool, make in rotated({**cmds, IN_PROCESS: None}, i):
                time.sleep(SETTLE_S)
                if tool == IN_PROCESS:
                    ms = self.lcd_stress(1, "1ms")["per_op"]["p50_ms"]
                    if i >= warm:
                        in_process.append(ms)
                    continue
                ms, _, cpu = timed(make(i), self.lcd_env)
                if i >= warm:
                    samples[tool][0].append(ms)
                    samples[tool][1].append(cpu)
        for tool, (times, cpu) in samples.items():
            rss = peak_rss_kib(cmds[tool](warm + runs), self.lcd_env)
            self.row("run --rm /bin/true", tool, times, {"client_peak_rss_kib": rss}, cpu)
        self.results["in_process_lifecycle"] = stats(in_process)

    def exec_(self):
        """Each tool execs into EXEC_TARGETS containers of its own, in turn, so that no single
        container's state weighs on one tool's figure."""
        runs, warm = self.args.runs, 3
        bundle = self.exec_bundle()
        for k in range(EXEC_TARGETS):
            sh(["runc", "--root", self.runc_root, "run", "-d", "-b", bundle, f"rexec{k}"],
               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            sh(self.ctr("run", "-d", "--rootfs", self.rootfs, f"cexec{k}", "/bin/sleep", "100000"),
               stdout=subprocess.DEVNULL)
            sh(self.docker("run", "-d", "--network", "none", "--name", f"dexec{k}", "lcdbench", "/bin/sleep",
                           "100000"), stdout=subprocess.DEVNULL)
            sh([self.lcd, "run", "-d", "--name", f"lexec{k}", self.rootfs, "/bin/sleep", "100000"],
               env=self.lcd_env, stdout=subprocess.DEVNULL)
            if not self.crun_skip:
                sh([self.lcd, "run", "-d", "--runtime", "crun", "--name", f"lcexec{k}", self.rootfs, "/bin/sleep",
                    "100000"], env=self.lcd_env, stdout=subprocess.DEVNULL)
        target = lambda i: i % EXEC_TARGETS  # noqa: E731
        cmds = {
            "runc": lambda i: ["runc", "--root", self.runc_root, "exec", f"rexec{target(i)}", "/bin/true"],
            "ctr": lambda i: self.ctr("task", "exec", "--exec-id", f"e{i}", f"cexec{target(i)}", "/bin/true"),
            "docker": lambda i: self.docker("exec", f"dexec{target(i)}", "/bin/true"),
            "lcd": lambda i: [self.lcd, "exec", f"lexec{target(i)}", "/bin/true"],
        }
        if not self.crun_skip:
            cmds[LCD_CRUN] = lambda i: [self.lcd, "exec", f"lcexec{target(i)}", "/bin/true"]
        samples = {t: ([], []) for t in cmds}
        for i in range(warm + runs):
            for tool, make in rotated(cmds, i):
                time.sleep(SETTLE_S)
                ms, _, cpu = timed(make(i), self.lcd_env)
                if i >= warm:
                    samples[tool][0].append(ms)
                    samples[tool][1].append(cpu)
        for tool, (times, cpu) in samples.items():
            self.row("exec /bin/true", tool, times, cpu=cpu)

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
        samples = {t: ([], []) for t in cmds}
        dockerd_peak = 0
        for r in range(self.args.parallel_rounds):
            for tool, make in rotated(cmds, r):
                ms, failed, cpu = at_once(make(r), n, self.lcd_env)
                if failed:
                    print(f"  {tool}: {failed} of {n} failed", flush=True)
                samples[tool][0].append(ms)
                samples[tool][1].append(cpu / n)
                if tool == "docker":
                    dockerd_peak = max(dockerd_peak, rss_kib(self.dockerd.pid))
        for tool, (times, cpu) in samples.items():
            self.row(f"{n} at once (wall)", tool, times, cpu=cpu)
        self.results["dockerd_rss_after_load_kib"] = dockerd_peak

    def lcd_stress(self, concurrency, secs):
        """One `lcd stress --json` run; its summary."""
        duration = secs if isinstance(secs, str) else f"{secs}s"
        out = subprocess.run([self.lcd, "stress", "-c", str(concurrency), "-d", duration, "--json",
                              "--rootfs", self.rootfs], env=self.lcd_env, capture_output=True, text=True,
                             check=True).stdout
        return json.loads(out)

    def where_time_goes(self):
        """One lifecycle at a time inside one lcd process (`lcd stress -c 1`): no process start-up, one
        connection, so the sum of the phases' p50s is what containerd, the shim and runc take for one
        `run --rm`. What lcd's and ctr's `run --rm` medians take beyond it is their own overhead."""
        secs = self.args.where_seconds
        a0 = self.acct.ms()
        st = self.lcd_stress(1, secs)
        a1 = self.acct.ms()
        ops = st["ok"] + st["failures"]
        phases = {name: st["phases"][name] for name in PHASES if name in st["phases"]}
        self.results["where_time_goes"] = {
            "stress_seconds": secs, "containers": st["ok"], "failures": st["failures"],
            "phase_p50_ms": {k: v["p50_ms"] for k, v in phases.items()},
            "phase_mean_ms": {k: v.get("mean_ms") for k, v in phases.items()},
            "sum_p50_ms": sum(v["p50_ms"] for v in phases.values()),
            "whole_lifecycle_p50_ms": st.get("per_op", {}).get("p50_ms"),
            "client_cpu_ms_per_op": st["client_cpu_ms_per_op"],
            "containerd_shim_runc_cpu_ms_per_op": (a1 - a0) / ops if a0 is not None and ops else None,
        }

    def where_summary(self):
        """The overheads, once the run --rm medians and the in-process phases are both known."""
        w = self.results.get("where_time_goes")
        rr = self.results["rows"].get("run --rm /bin/true", {})
        if not w or "lcd" not in rr or "ctr" not in rr:
            return
        lcd, ctr = rr["lcd"]["median"], rr["ctr"]["median"]
        # The interleaved in-process lifecycles ran at the same moments as the run --rm rows; the
        # -c 1 run's phases ran alone, later, so machine drift would shift both overheads.
        total = self.results.get("in_process_lifecycle", {}).get("median", w["sum_p50_ms"])
        w.update({
            "in_process_lifecycle_median_ms": total,
            "lcd_run_rm_median_ms": lcd, "ctr_run_rm_median_ms": ctr,
            "lcd_overhead_ms": lcd - total, "ctr_overhead_ms": ctr - total,
            "lcd_over_ctr": lcd / ctr, "best_lcd_over_ctr_zero_cost_client": total / ctr,
        })

    def stress(self):
        """Containers per second: `lcd stress -c N` (one process, one connection) against N parallel
        loops of `ctr run --rm` (containerd-stress needs an image store this bench does not fill).
        Also the whole machine's CPU during each (from /proc/stat) per container, and the client's
        share of it: lcd's own CPU as it reports it; the ctr processes' from wait4's rusage. The
        machine's background rate is measured for 2 s first, while nothing of the bench runs."""
        n, secs = self.args.stress_concurrency, self.args.stress_seconds
        b0, t0 = machine_busy_ms(), time.monotonic()
        time.sleep(2)
        background = (machine_busy_ms() - b0) / (time.monotonic() - t0)  # ms of CPU per second
        b0, t0, a0 = machine_busy_ms(), time.monotonic(), self.acct.ms()
        lcd = self.lcd_stress(n, secs)
        lcd_busy, lcd_wall = machine_busy_ms() - b0, time.monotonic() - t0
        lcd_acct = self.acct.ms() - a0 if a0 is not None else None
        deadline = time.monotonic() + secs
        done = [0] * n
        failed = [0] * n
        procs = [None] * n
        ctr_cpu = 0.0
        b0, self0, a0 = machine_busy_ms(), self_cpu_ms(), self.acct.ms()
        start = time.monotonic()
        while time.monotonic() < deadline or any(procs):
            for w in range(n):
                p = procs[w]
                if p is not None:
                    pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                    if pid:
                        p.returncode = os.waitstatus_to_exitcode(status)
                        ctr_cpu += cpu_ms(ru)
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
        harness = self_cpu_ms() - self0
        ctr_busy = machine_busy_ms() - b0 - harness
        ctr_acct = self.acct.ms() - a0 if a0 is not None else None
        ctr_rate = sum(done) / elapsed
        lcd_ops = lcd["ok"] + lcd["failures"]
        ctr_ops = sum(done) + sum(failed)

        def cpu(busy, wall, ops, client_per_op, acct):
            per = busy / ops if ops else None
            return {
                "machine_cpu_ms_per_container": per,
                "machine_busy_share": busy / (wall * 1000 * os.cpu_count()),
                "machine_cpu_ms_per_container_minus_background":
                    (busy - background * wall) / ops if ops else None,
                "client_cpu_ms_per_container": client_per_op,
                "client_share": client_per_op / per if per else None,
                "containerd_shim_runc_cpu_ms_per_container": acct / ops if acct is not None and ops else None,
            }

        self.results["stress"] = {
            "concurrency": n, "seconds": secs,
            "lcd_per_second": lcd["per_second"], "lcd_failures": lcd["failures"],
            "lcd_client_cpu_ms_per_container": lcd["client_cpu_ms_per_op"],
            "lcd_client_peak_rss_kib": lcd["client_peak_rss_kib"],
            "lcd_fds_before_after": [lcd["client_fds_before"], lcd["client_fds_after"]],
            "lcd_rss_kib_after_warmup_end": [lcd.get("client_rss_kib_after_warmup"),
                                             lcd.get("client_rss_kib_end")],
            "ctr_loops_per_second": ctr_rate, "ctr_failures": sum(failed),
            "ratio_lcd_over_ctr": lcd["per_second"] / ctr_rate if ctr_rate else None,
            "background_cpu_ms_per_s": background,
            "cpu": {
                "lcd": cpu(lcd_busy, lcd_wall, lcd_ops, lcd["client_cpu_ms_per_op"], lcd_acct),
                "ctr": {**cpu(ctr_busy, elapsed, ctr_ops, ctr_cpu / ctr_ops if ctr_ops else 0.0, ctr_acct),
                        "harness_cpu_ms_excluded": harness},
            },
        }

    # --- images ----------------------------------------------------------------------------------
    def images(self):
        """The image rows. A registry on 127.0.0.1 serves an image built here (IMAGE_LAYER_SHARES
        gzip layers of random bytes, --image-mib in all); `lcd pull` and `ctr images pull` fetch it
        into a cold store and unpack it; `lcd load` and `ctr images import` store it from its
        docker-save tar (written by `lcd save`), ctr also unpacking it, lcd not (its first run
        does). After each, the image is removed with a synchronous GC, and its blobs and snapshots
        are checked gone before the next. "ctr*" is ctr without the unpack (`ctr content fetch`,
        `ctr images import --no-unpack`): ctr's time less ctr*'s is what the unpack takes. Then
        `lcd run`, `ctr run` and `docker run` start busybox from an image already stored and
        unpacked."""
        mib = self.args.image_mib
        start = time.perf_counter()
        image = build_image(mib)
        self.registry = Registry(f"{self.dir}/registry")
        self.registry.push_image("bench/big", "1", image)
        sizes = [len(blob) for _, blob in image["layers"]]
        digests, chain = image["digests"], chain_ids(image["diff_ids"])
        del image
        ref = f"{self.registry.addr}/bench/big:1"
        self.results["images"] = {
            "image_mib": mib, "layer_bytes_gzip": sizes, "rounds": self.args.image_runs,
            "registry": "Debian docker-registry on 127.0.0.1 (plain HTTP)",
        }
        print(f"  built and pushed a {mib} MiB image ({len(sizes)} gzip layers of random bytes) in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        snapshots = self.snapshot_count()
        cold = lambda: self.assert_cold(digests, chain, snapshots)  # noqa: E731
        rm_lcd = [self.lcd, "rmi", ref]
        rm_ctr = self.ctr("images", "rm", "--sync", ref)
        self.cold_rows(f"pull {mib} MiB image", {
            "ctr": (self.ctr("images", "pull", "--plain-http", ref), rm_ctr, "bench-ctr"),
            "ctr*": (self.ctr("content", "fetch", "--plain-http", ref), rm_ctr, "bench-ctr"),
            "lcd": ([self.lcd, "pull", "--plain-http", ref], rm_lcd, "bench-lcd"),
        }, cold, chain[-1])
        # The docker-save tar of the same image: one more pull, then `lcd save`.
        tar = f"{self.dir}/big.tar"
        sh([self.lcd, "pull", "--plain-http", ref], env=self.lcd_env, stdout=subprocess.DEVNULL)
        sh([self.lcd, "save", "-o", tar, ref], env=self.lcd_env)
        sh(rm_lcd, env=self.lcd_env, stdout=subprocess.DEVNULL)
        self.cold_rows(f"load {mib} MiB image", {
            "ctr": (self.ctr("images", "import", tar), rm_ctr, "bench-ctr"),
            "ctr*": (self.ctr("images", "import", "--no-unpack", tar), rm_ctr, "bench-ctr"),
            "lcd": ([self.lcd, "load", "-i", tar], rm_lcd, "bench-lcd"),
        }, cold, chain[-1])
        os.remove(tar)
        cold()
        self.run_image()

    def cold_rows(self, name, cmds, cold, top):
        """Each tool's command (cmd, removal, namespace) into a cold store, in a rotating order; the
        removal, untimed, right after, once it is known whether the command unpacked the image (its
        top layer's snapshot, chain ID top, in the namespace). Then one more of lcd's and ctr's under
        GNU time for their peak RSS. Besides the client's CPU, the CPU containerd (its cgroup) and
        the registry took during each command."""
        rounds, warm = self.args.image_runs, 1
        samples = {t: ([], []) for t in cmds}
        daemons = {t: ([], []) for t in cmds}
        unpacked = {t: set() for t in cmds}
        for i in range(warm + rounds):
            for tool, (cmd, remove, ns) in rotated(cmds, i):
                cold()
                time.sleep(SETTLE_S)
                a0, r0 = self.acct.ms(), self.registry.cpu_ms()
                ms, _, cpu = timed(cmd, self.lcd_env)
                a1, r1 = self.acct.ms(), self.registry.cpu_ms()
                unpacked[tool].add(top in subprocess.run(["ctr", "-a", self.sock, "-n", ns, "snapshots", "ls"],
                                                         capture_output=True, text=True, check=True).stdout)
                sh(remove, env=self.lcd_env, stdout=subprocess.DEVNULL)
                if i >= warm:
                    samples[tool][0].append(ms)
                    samples[tool][1].append(cpu)
                    if a0 is not None:
                        daemons[tool][0].append(a1 - a0)
                    daemons[tool][1].append(r1 - r0)
        for tool, (times, cpu) in samples.items():
            if len(unpacked[tool]) != 1:
                raise RuntimeError(f"{name}: {tool} unpacked the image in some rounds and not in others")
            extra = {"unpacks": unpacked[tool].pop(),
                     "containerd_cpu_ms_median": statistics.median(daemons[tool][0]) if daemons[tool][0] else None,
                     "registry_cpu_ms_median": statistics.median(daemons[tool][1])}
            if tool in ("lcd", "ctr"):
                cmd, remove, _ = cmds[tool]
                cold()
                extra["client_peak_rss_kib"] = peak_rss_kib(cmd, self.lcd_env)
                sh(remove, env=self.lcd_env, stdout=subprocess.DEVNULL)
            self.row(name, tool, times, extra, cpu)

    def snapshot_count(self):
        return len(os.listdir(f"{self.containerd_root}/{OVERLAY_SNAPSHOTS_DIR}"))

    def assert_cold(self, digests, chain, snapshots, timeout_s=10):
        """The store is cold: none of the image's blobs is on disk in containerd's content store, the
        overlayfs snapshotter holds as many snapshots as before the first pull, and neither
        namespace lists a blob or a layer snapshot of it (`ctr content ls`, `ctr snapshots ls`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            blobs = [d for d in digests if os.path.exists(f"{self.containerd_root}/{BLOBS_DIR}/{d[7:]}")]
            count = self.snapshot_count()
            listed = []
            if not blobs and count == snapshots:
                lists = [subprocess.Popen(["ctr", "-a", self.sock, "-n", ns, *what], stdout=subprocess.PIPE,
                                          text=True)
                         for ns in ("bench-ctr", "bench-lcd")
                         for what in (["content", "ls", "-q"], ["snapshots", "ls"])]
                for p in lists:
                    out = p.communicate()[0]
                    if p.returncode != 0:
                        raise RuntimeError(f"{' '.join(p.args)} failed ({p.returncode})")
                    listed += [d for d in digests + chain if d in out]
                if not listed:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the store is not cold after removing the image: blobs on disk {blobs}, "
                                   f"{count} overlayfs snapshots where {snapshots} were, listed {listed}")
            time.sleep(0.1)

    def run_image(self):
        """`run --rm IMAGE /bin/true`: busybox (the bench's rootfs) as an image, `lcd import`ed, saved
        with `lcd save` and given to ctr (`ctr images import`, which unpacks it) and to docker
        (`docker load`, into dockerd's own store), so each tool starts from an image it has stored
        and unpacked."""
        runs, warm = self.args.runs, 3
        name, tar = "bench/busybox:1", f"{self.dir}/busybox.tar"
        sh([self.lcd, "import", self.rootfs, name], env=self.lcd_env, stdout=subprocess.DEVNULL)
        sh([self.lcd, "save", "-o", tar, name], env=self.lcd_env)
        sh(self.ctr("images", "import", tar), stdout=subprocess.DEVNULL)
        sh(self.docker("load", "-i", tar), stdout=subprocess.DEVNULL)
        os.remove(tar)
        cmds = {
            "ctr": lambda i: self.ctr("run", "--rm", f"docker.io/{name}", f"i{i}", "/bin/true"),
            CTR_SECCOMP: lambda i: self.ctr("run", "--rm", "--seccomp", f"docker.io/{name}", f"j{i}",
                                            "/bin/true"),
            "docker": lambda i: self.docker("run", "--rm", "--network", "none", name, "/bin/true"),
            "lcd": lambda i: [self.lcd, "run", "--rm", name, "/bin/true"],
        }
        samples = {t: ([], []) for t in cmds}
        for i in range(warm + runs):
            for tool, make in rotated(cmds, i):
                time.sleep(SETTLE_S)
                ms, _, cpu = timed(make(i), self.lcd_env)
                if i >= warm:
                    samples[tool][0].append(ms)
                    samples[tool][1].append(cpu)
        for tool, (times, cpu) in samples.items():
            rss = peak_rss_kib(cmds[tool](warm + runs), self.lcd_env)
            self.row("run --rm IMAGE /bin/true", tool, times, {"client_peak_rss_kib": rss}, cpu)


    # --- checkpoint / restore --------------------------------------------------------------------
    def checkpoints(self):
        """CRIU checkpoint and restore of a small container (a shell counting) and of one holding
        --checkpoint-mib of memory (a shell variable that size), lcd against ctr on the same
        containerd and criu, --checkpoint-runs rounds each, interleaved. Dump: `lcd checkpoint
        create` against `ctr tasks checkpoint --exit --image-path DIR`, the same work (criu dumps
        into a directory, the task stops). Restore: `lcd start --checkpoint` (CRIU reads the
        directory in place, the task is started) against `ctr containers restore --live` from a
        checkpoint image `ctr containers checkpoint --task` made before (untimed), which containerd
        unpacks from its content store first. Skipped, with the reason, where
        `criu check` fails."""
        check = subprocess.run(["criu", "check"], capture_output=True, text=True)
        if check.returncode != 0:
            reason = next((l for l in check.stderr.splitlines() if "Error" in l), check.stderr.strip())
            print(f"  skipped: criu check fails ({reason}); `bash .ci/criu` builds a working criu")
            self.results["checkpoint"] = {"skipped": reason}
            return
        name = "docker.io/bench/busybox:1"
        if name not in subprocess.run(self.ctr("images", "ls", "-q"), capture_output=True,
                                      text=True).stdout.split():
            tar = f"{self.dir}/busybox-ck.tar"
            sh([self.lcd, "import", self.rootfs, "bench/busybox:1"], env=self.lcd_env, stdout=subprocess.DEVNULL)
            sh([self.lcd, "save", "-o", tar, "bench/busybox:1"], env=self.lcd_env)
            sh(self.ctr("images", "import", tar), stdout=subprocess.DEVNULL)
            os.remove(tar)
        mib = self.args.checkpoint_mib
        workloads = {
            "small": (0, "i=0; while :; do i=$((i+1)); sleep 0.1; done"),
            f"{mib} MiB": (mib, f"x=$(head -c {mib * 1024 * 1024} /dev/zero | tr '\\0' a); "
                                "while :; do sleep 1; done"),
        }
        sizes = {}
        for label, (need_mib, script) in workloads.items():
            samples = {("dump", "lcd"): [], ("dump", "ctr"): [], ("restore", "lcd"): [], ("restore", "ctr"): []}
            for i in range(self.args.checkpoint_runs):
                for tool, one_round in rotated({"lcd": self.checkpoint_lcd, "ctr": self.checkpoint_ctr}, i):
                    id_ = f"ck{tool[0]}{i}{'s' if need_mib == 0 else 'b'}"
                    dump, restore, size = one_round(id_, script, need_mib)
                    samples[("dump", tool)].append(dump)
                    samples[("restore", tool)].append(restore)
                    sizes.setdefault(label, {})[tool] = size
            for (what, tool), values in samples.items():
                self.row(f"{what} {label}", tool, values)
        self.results["checkpoint"] = {"image_bytes": sizes, "mib": mib, "runs": self.args.checkpoint_runs}

    def wait_checkpointable(self, pid, need_mib):
        """Until the container's shell holds need_mib MiB and its only child, if any, is the loop's
        `sleep` (the head | tr pipeline that builds its memory has ended). The shell forks a sleep
        every second, so "no child at all" is a moment a poll may never see."""
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                rss_kib = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
                children = open(f"/proc/{pid}/task/{pid}/children").read().split()
                busy = [c for c in children if open(f"/proc/{c}/comm").read().strip() != "sleep"]
            except (OSError, StopIteration):
                rss_kib, busy = 0, ["?"]
            if rss_kib >= need_mib * 1024 and (need_mib == 0 or not busy):
                return
            time.sleep(0.05)
        raise RuntimeError(f"container process {pid} never reached {need_mib} MiB")

    def checkpoint_lcd(self, id_, script, need_mib):
        sh([self.lcd, "run", "-d", "--name", id_, self.rootfs, "sh", "-c", script], env=self.lcd_env,
           stdout=subprocess.DEVNULL)
        info = json.loads(subprocess.run([self.lcd, "inspect", id_], env=self.lcd_env, check=True,
                                         capture_output=True, text=True).stdout)
        self.wait_checkpointable(info[0]["State"]["Pid"], need_mib)
        time.sleep(SETTLE_S)
        dump, _, _ = timed([self.lcd, "checkpoint", "create", id_, "cp"], self.lcd_env)
        cp_dir = f"{self.dir}/data/checkpoints/bench-lcd/{id_}/cp"
        size = sum(os.path.getsize(os.path.join(cp_dir, f)) for f in os.listdir(cp_dir))
        time.sleep(SETTLE_S)
        restore, _, _ = timed([self.lcd, "start", "--checkpoint", "cp", id_], self.lcd_env)
        sh([self.lcd, "rm", "-f", id_], env=self.lcd_env, stdout=subprocess.DEVNULL)
        return dump, restore, size

    def checkpoint_ctr(self, id_, script, need_mib):
        image = "docker.io/bench/busybox:1"
        sh(self.ctr("run", "-d", image, id_, "sh", "-c", script), stdout=subprocess.DEVNULL)
        pid = int(next(l.split()[1] for l in subprocess.run(self.ctr("t", "ls"), capture_output=True, text=True,
                                                             check=True).stdout.splitlines()
                       if l.split()[:1] == [id_]))
        self.wait_checkpointable(pid, need_mib)
        images = f"{self.dir}/ctr-{id_}"
        time.sleep(SETTLE_S)
        dump, _, _ = timed(self.ctr("t", "checkpoint", "--exit", "--image-path", images, id_))
        size = sum(os.path.getsize(os.path.join(images, f)) for f in os.listdir(images))
        shutil.rmtree(images)
        # ctr restores from a checkpoint image: make one (untimed) from a fresh run of the same
        # workload, then restore it into a new container.
        sh(self.ctr("t", "rm", "-f", id_), stdout=subprocess.DEVNULL)
        sh(self.ctr("c", "rm", id_), stdout=subprocess.DEVNULL)
        sh(self.ctr("run", "-d", image, id_, "sh", "-c", script), stdout=subprocess.DEVNULL)
        pid = int(next(l.split()[1] for l in subprocess.run(self.ctr("t", "ls"), capture_output=True, text=True,
                                                             check=True).stdout.splitlines()
                       if l.split()[:1] == [id_]))
        self.wait_checkpointable(pid, need_mib)
        ref = f"bench/checkpoint-{id_}:1"
        sh(self.ctr("c", "checkpoint", "--task", id_, ref), stdout=subprocess.DEVNULL)
        self.ctr_stop(id_)
        time.sleep(SETTLE_S)
        restore, _, _ = timed(self.ctr("c", "restore", "--live", id_, ref))
        self.ctr_stop(id_)
        sh(self.ctr("images", "rm", "--sync", ref), stdout=subprocess.DEVNULL)
        return dump, restore, size

    def ctr_stop(self, id_):
        subprocess.run(self.ctr("t", "kill", "-s", "KILL", id_), capture_output=True)
        for _ in range(200):
            if subprocess.run(self.ctr("t", "rm", id_), capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        subprocess.run(self.ctr("t", "rm", "-f", id_), capture_output=True)
        sh(self.ctr("c", "rm", id_), stdout=subprocess.DEVNULL)

    def report_checkpoints(self):
        ck = self.results.get("checkpoint")
        if not ck or "skipped" in ck:
            return
        print()
        print(f"checkpoint/restore (criu {subprocess.run(['criu', '--version'], capture_output=True, text=True).stdout.split()[1]}, "
              f"{ck['runs']} rounds): dump = lcd checkpoint create vs ctr tasks checkpoint --exit --image-path; "
              "restore = lcd start --checkpoint vs ctr containers restore --live")
        for label, tools in ck["image_bytes"].items():
            print(f"  {label}: images " + ", ".join(f"{t} {b / 1048576:.1f} MiB" for t, b in tools.items()))

    # --- report ----------------------------------------------------------------------------------
    def report(self):
        rows = self.results["rows"]
        machine = self.results["machine"]
        mig = machine.get("cgroup_migration_ms")
        cg = machine.get("cgroups", {})
        print()
        print(f"host: cgroup {cg.get('mode')}, favordynmods {'on' if cg.get('favordynmods_mounted') else 'not'} "
              "in the mount options; one cgroup migration after a quiet moment takes "
              + (f"{mig:.2f} ms" if mig is not None else "(not measurable)")
              + (" (an RCU grace period: every runc create and exec that follows no other migration closely "
                 "waits this long, whichever client drives it)" if mig is not None and mig > 1 else ""))
        print(f"{'benchmark':<24} {'tool':<7} {'median ms':>10} {'p90 ms':>9} {'client CPU ms (median)':>23}")
        for name, tools in rows.items():
            for tool, s in tools.items():
                cpu = s.get("client_cpu_ms_median")
                cpu = f"{cpu:>23.1f}" if cpu is not None else ""
                print(f"{name:<24} {tool:<7} {s['median']:>10.1f} {s['p90']:>9.1f} {cpu}")
            lcd = tools.get("lcd", {}).get("median")
            for other in ("ctr", CTR_SECCOMP, "docker"):
                if lcd and other in tools:
                    ratio = lcd / tools[other]["median"]
                    rows[name].setdefault("ratios", {})[f"lcd/{other}"] = ratio
                    print(f"{'':<24} lcd/{other} = {ratio:.2f}")
            if lcd and LCD_CRUN in tools:
                ratio = tools[LCD_CRUN]["median"] / lcd
                rows[name].setdefault("ratios", {})[f"{LCD_CRUN}/lcd"] = ratio
                print(f"{'':<24} {LCD_CRUN}/lcd = {ratio:.2f}")
        if self.crun_skip:
            print(f"{LCD_CRUN}: skipped: {self.crun_skip}")
        self.report_images()
        self.report_checkpoints()
        w = self.results.get("where_time_goes")
        if w:
            print()
            print(f"where the time goes (lcd stress -c 1, {w['stress_seconds']} s, {w['containers']} containers, "
                  f"{w['failures']} failures; in-process, no process start-up):")
            for name, p50 in w["phase_p50_ms"].items():
                mean = w["phase_mean_ms"].get(name)
                mean = f"  (mean {mean:.1f})" if mean is not None else ""
                print(f"  {name:<8} p50 {p50:>7.1f} ms{mean}")
            whole = w.get("whole_lifecycle_p50_ms")
            print(f"  {'sum':<8} p50 {w['sum_p50_ms']:>7.1f} ms  = containerd + shim + runc for one lifecycle"
                  + (f" (whole lifecycle p50 {whole:.1f} ms)" if whole is not None else ""))
            acct = w.get("containerd_shim_runc_cpu_ms_per_op")
            print(f"  CPU per lifecycle: client lcd {w['client_cpu_ms_per_op']:.2f} ms"
                  + (f", containerd + shim + runc {acct:.1f} ms" if acct is not None else ""))
            if "lcd_overhead_ms" in w:
                base = w["in_process_lifecycle_median_ms"]
                print(f"  one lifecycle inside lcd, interleaved with the run --rm rows: median {base:.1f} ms"
                      " (containerd + shim + runc, no client start-up)")
                print(f"  run --rm: lcd median {w['lcd_run_rm_median_ms']:.1f} ms - that = "
                      f"{w['lcd_overhead_ms']:.1f} ms lcd's own (process start, connect, spec, FIFOs)")
                print(f"  run --rm: ctr median {w['ctr_run_rm_median_ms']:.1f} ms - that = "
                      f"{w['ctr_overhead_ms']:.1f} ms ctr's own")
                print(f"  best possible lcd/ctr with a zero-cost client = that / ctr median = "
                      f"{w['best_lcd_over_ctr_zero_cost_client']:.2f} (measured lcd/ctr {w['lcd_over_ctr']:.2f})")
        st = self.results.get("stress")
        if st:
            print()
            print(f"stress -c {st['concurrency']} for {st['seconds']} s: lcd {st['lcd_per_second']:.1f}/s "
                  f"({st['lcd_failures']} failures, {st['lcd_client_cpu_ms_per_container']:.2f} ms client CPU per "
                  f"container, fds {st['lcd_fds_before_after']}, RSS after warm-up/end "
                  f"{st['lcd_rss_kib_after_warmup_end']} KiB), {st['concurrency']} ctr loops "
                  f"{st['ctr_loops_per_second']:.1f}/s ({st['ctr_failures']} failures): "
                  f"lcd/ctr = {st['ratio_lcd_over_ctr']:.2f}")
            capacity = os.cpu_count() * 1000
            bg = st["background_cpu_ms_per_s"]
            print(f"  machine CPU (/proc/stat, all {os.cpu_count()} cores = {capacity} ms/s; in the 2 s before "
                  f"the runs something else used {bg:.0f} ms/s)"
                  + ("" if bg < 0.1 * capacity else
                     "  ** machine was not idle: its CPU per container includes other work **") + ":")
            for tool, c in st["cpu"].items():
                if c["machine_cpu_ms_per_container"] is None:
                    continue
                extra = (f" (the bench's own polling, {c['harness_cpu_ms_excluded']:.0f} ms, excluded)"
                         if "harness_cpu_ms_excluded" in c else "")
                acct = c["containerd_shim_runc_cpu_ms_per_container"]
                print(f"    {tool:<3}: machine {c['machine_cpu_ms_per_container']:.1f} ms per container "
                      f"({c['machine_cpu_ms_per_container_minus_background']:.1f} less the background rate), "
                      f"{c['machine_busy_share'] * 100:.0f}% busy{extra}")
                print(f"         client {c['client_cpu_ms_per_container']:.2f} ms per container "
                      f"({c['client_share'] * 100:.1f}% of the machine's)"
                      + (f"; containerd + shim + runc {acct:.1f} ms (their cgroup)" if acct is not None else ""))
        mem = self.results["memory"]
        print()
        print("client-side memory (KiB):")
        for k, v in mem.items():
            print(f"  {k:<40} {v}")

    def report_images(self):
        """The image rows against the issue's targets: lcd at most 0.8 x ctr for pull and load, at
        most 1.0 x ctr for run from an image, each against the ctr command that does the same work
        (unpacks or not, as lcd did); `lcd pull` under 30 MiB peak RSS."""
        im = self.results.get("images")
        if not im:
            return
        rows = self.results["rows"]
        mib = im["image_mib"]
        print()
        print(f"images: a {mib} MiB image ({len(im['layer_bytes_gzip'])} gzip layers of random bytes) from "
              f"{im['registry']}, {im['rounds']} rounds; each pull and load into a cold store (the image "
              "removed with a synchronous GC, its blobs and snapshots checked gone); ctr* = ctr without "
              "the unpack (ctr content fetch, ctr images import --no-unpack)")
        targets = {}
        for name, target in ((f"pull {mib} MiB image", 0.8), (f"load {mib} MiB image", 0.8),
                             ("run --rm IMAGE /bin/true", 1.0)):
            tools = rows.get(name, {})
            if "lcd" not in tools or "ctr" not in tools:
                continue
            lcd = tools["lcd"]
            did = ", ".join(f"{t} {'unpacks' if c['unpacks'] else 'does not unpack'}"
                            for t, c in tools.items() if "unpacks" in c)
            print(f"  {name}" + (f": {did}" if did else ": the image stored and unpacked before"))
            # The same work: the ctr command that unpacks if and only if lcd's does, and that
            # applies a seccomp profile as lcd does.
            same = next((t for t in (CTR_SECCOMP, "ctr", "ctr*") if t in tools
                         and tools[t].get("unpacks") == lcd.get("unpacks")), "ctr")
            ratio = lcd["median"] / tools[same]["median"]
            line = f"    lcd/{same} = {ratio:.2f} (same work; target <= {target} x ctr)"
            if same == CTR_SECCOMP:
                line += (f"; lcd/ctr = {lcd['median'] / tools['ctr']['median']:.2f} (ctr without --seccomp "
                         "applies no seccomp filter, lcd docker's default profile)")
            elif same != "ctr":
                line += f"; lcd/ctr = {lcd['median'] / tools['ctr']['median']:.2f} (ctr also unpacks)"
            if "ctr*" in tools and tools["ctr"].get("unpacks") and not tools["ctr*"].get("unpacks"):
                line += (f"; ctr's unpack ~ {tools['ctr']['median'] - tools['ctr*']['median']:.0f} ms "
                         f"of its {tools['ctr']['median']:.0f}")
            print(line)
            for tool, c in tools.items():
                if c.get("registry_cpu_ms_median") is None:
                    continue
                acct = c.get("containerd_cpu_ms_median")
                print(f"    {tool:<4} median {c['median']:>7.1f} ms wall; CPU medians: client "
                      f"{c.get('client_cpu_ms_median', 0):.0f} ms"
                      + (f", containerd {acct:.0f} ms" if acct is not None else "")
                      + f", registry {c['registry_cpu_ms_median']:.0f} ms")
            targets[name] = {"against": same, "ratio": ratio, "target_at_most": target, "met": ratio <= target}
        rss = rows.get(f"pull {mib} MiB image", {}).get("lcd", {}).get("client_peak_rss_kib")
        if rss is not None:
            ctr_rss = rows[f"pull {mib} MiB image"].get("ctr", {}).get("client_peak_rss_kib")
            print(f"  lcd pull peak RSS {rss / 1024:.1f} MiB (target < 30 MiB)"
                  + (f"; ctr pull {ctr_rss / 1024:.1f} MiB" if ctr_rss else ""))
            targets["lcd pull peak RSS"] = {"kib": rss, "target_below_kib": 30 * 1024, "met": rss < 30 * 1024}
        im["targets"] = targets

    def memory(self):
        rr = self.results["rows"].get("run --rm /bin/true", {})
        ri = self.results["rows"].get("run --rm IMAGE /bin/true", {})
        mib = self.results.get("images", {}).get("image_mib")
        pull = self.results["rows"].get(f"pull {mib} MiB image", {})
        load = self.results["rows"].get(f"load {mib} MiB image", {})
        self.results["memory"] = {
            "lcd resident when idle (no daemon)": 0,
            "lcd peak RSS of one run --rm": rr.get("lcd", {}).get("client_peak_rss_kib"),
            "ctr peak RSS of one run --rm": rr.get("ctr", {}).get("client_peak_rss_kib"),
            "docker CLI peak RSS of one run --rm": rr.get("docker", {}).get("client_peak_rss_kib"),
            "lcd peak RSS of one run --rm IMAGE": ri.get("lcd", {}).get("client_peak_rss_kib"),
            "ctr peak RSS of one run --rm IMAGE": ri.get("ctr", {}).get("client_peak_rss_kib"),
            "lcd peak RSS of one pull": pull.get("lcd", {}).get("client_peak_rss_kib"),
            "ctr peak RSS of one pull": pull.get("ctr", {}).get("client_peak_rss_kib"),
            "lcd peak RSS of one load": load.get("lcd", {}).get("client_peak_rss_kib"),
            "ctr peak RSS of one import": load.get("ctr", {}).get("client_peak_rss_kib"),
            "dockerd RSS when idle": self.results.get("dockerd_idle_kib"),
            "dockerd RSS after the parallel load": self.results.get("dockerd_rss_after_load_kib"),
        }

    def network(self):
        """The network rows (see network_inner), measured by this script run again inside a new
        network and mount namespace."""
        out = f"{self.dir}/network.json"
        sh(["unshare", "--net", "--mount", "--propagation", "private", "--", sys.executable,
            os.path.abspath(__file__), "--network-inner", str(self.args.runs), out])
        with open(out) as f:
            for name, tools in json.load(f).items():
                self.results["rows"].setdefault(name, {}).update(tools)

    def cleanup(self):
        targets = range(EXEC_TARGETS)
        for k in targets:
            for cmd in ([self.lcd, "rm", "-f", f"lexec{k}"], [self.lcd, "rm", "-f", f"lcexec{k}"],
                        self.docker("rm", "-f", f"dexec{k}"),
                        self.ctr("task", "kill", "-s", "KILL", f"cexec{k}")):
                subprocess.run(cmd, env=self.lcd_env, capture_output=True)
        time.sleep(0.5)
        for k in targets:
            for cmd in (self.ctr("task", "rm", "-f", f"cexec{k}"), self.ctr("c", "rm", f"cexec{k}"),
                        ["runc", "--root", self.runc_root, "delete", "-f", f"rexec{k}"]):
                subprocess.run(cmd, capture_output=True)
        if self.registry:
            self.registry.stop()
            # The images in both namespaces (their blobs and snapshots would go with the data root
            # below anyway).
            subprocess.run([self.lcd, "rmi", "-f", "bench/busybox:1", f"{self.registry.addr}/bench/big:1"],
                           env=self.lcd_env, capture_output=True)
            names = subprocess.run(self.ctr("images", "ls", "-q"), capture_output=True, text=True).stdout.split()
            if names:
                subprocess.run(self.ctr("images", "rm", "--sync", *names), capture_output=True)
        if self.dockerd and self.dockerd.poll() is None:
            self.dockerd.send_signal(signal.SIGTERM)
            try:
                self.dockerd.wait(20)
            except subprocess.TimeoutExpired:
                self.dockerd.kill()
                self.dockerd.wait()
        env = {k: v for k, v in self.lcd_env.items() if k != "LCD_ADDRESS"}
        subprocess.run([self.lcd, "daemon", "stop"], env=env, capture_output=True)
        if self.acct:
            self.acct.close()
        subprocess.run(["umount", "-R", f"{self.dir}/docker"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        # The namespaces' cgroup parents outlive their containers; rmdir removes only empty ones.
        for controller in os.listdir("/sys/fs/cgroup"):
            for parent in ("bench-ctr", "bench-lcd", "docker"):
                try:
                    os.rmdir(os.path.join("/sys/fs/cgroup", controller, parent))
                except OSError:
                    pass
        # So does ctr's runc state dir (runc's default root, shared by every containerd on the host).
        try:
            os.rmdir("/run/containerd/runc/bench-ctr")
        except OSError:
            pass


def network_inner(runs, out_json):
    """The network rows, run by bench.py itself inside `unshare -n -m` (Bench.network), so that the
    bridges, veths and iptables rules never touch the host: a private containerd (lcd's), and a
    private dockerd on it with its own docker0 bridge and iptables, in the namespace. Times a detached
    start with `--network none` and with the bridge and a published port (`-p 127.0.0.1:PORT:80`,
    busybox httpd), for lcd and docker, interleaved; each container is removed untimed."""
    sh(["ip", "link", "set", "lo", "up"])
    d = tempfile.mkdtemp(prefix="lcdn", dir="/tmp")
    lcd = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target", "release/lcd")
    env = dict(os.environ, LCD_DATA_ROOT=f"{d}/data", LCD_EXEC_ROOT=f"{d}/run", LCD_NAMESPACE="bench-net")
    env.pop("LCD_NETWORK", None)
    rootfs = f"{d}/rootfs"
    sock = f"{d}/run/containerd/containerd.sock"
    docker = ["docker", "-H", f"unix://{d}/docker.sock"]
    dockerd = None
    rows = {}
    try:
        sh([lcd, "rootfs", "busybox", rootfs], stdout=subprocess.DEVNULL)
        with open(f"{rootfs}/index.html", "w") as f:
            f.write("hello\n")
        sh([lcd, "daemon", "start"], env=env, stdout=subprocess.DEVNULL)
        log = open(f"{d}/dockerd.log", "w")
        dockerd = subprocess.Popen(
            ["dockerd", "--data-root", f"{d}/docker", "--exec-root", f"{d}/docker-run",
             "-H", f"unix://{d}/docker.sock", "--pidfile", f"{d}/docker.pid", "--containerd", sock,
             "--storage-driver=vfs"], stdout=log, stderr=log, start_new_session=True)
        for _ in range(300):
            if subprocess.run([*docker, "version"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"dockerd did not start in the namespace; see {d}/dockerd.log")
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        sh([*docker, "import", "-", "lcdbench:latest"], stdin=tar.stdout, stdout=subprocess.DEVNULL)
        tar.wait()
        cmds = {
            ("run -d --network none", "lcd"):
                lambda i: [lcd, "run", "-d", "--network", "none", "--name", f"n{i}", rootfs, "sleep", "1000"],
            ("run -d -p (bridge)", "lcd"):
                lambda i: [lcd, "run", "-d", "--name", f"p{i}", "-p", f"127.0.0.1:{20000 + i}:80", rootfs,
                           "httpd", "-f", "-p", "80"],
            ("run -d --network none", "docker"):
                lambda i: [*docker, "run", "-d", "--network", "none", "--name", f"dn{i}", "lcdbench",
                           "sleep", "1000"],
            ("run -d -p (bridge)", "docker"):
                lambda i: [*docker, "run", "-d", "--name", f"dp{i}", "-p", f"127.0.0.1:{21000 + i}:80",
                           "lcdbench", "httpd", "-f", "-p", "80"],
        }
        removers = {"lcd": lambda name: [lcd, "rm", "-f", name], "docker": lambda name: [*docker, "rm", "-f", name]}
        names = {("run -d --network none", "lcd"): "n", ("run -d -p (bridge)", "lcd"): "p",
                 ("run -d --network none", "docker"): "dn", ("run -d -p (bridge)", "docker"): "dp"}
        samples = {k: [] for k in cmds}
        warm = 2
        for i in range(warm + runs):
            for key, make in rotated(cmds, i):
                time.sleep(SETTLE_S)
                ms, _, _ = timed(make(i), env)
                if i >= warm:
                    samples[key].append(ms)
                subprocess.run(removers[key[1]](f"{names[key]}{i}"), env=env, capture_output=True)
        for (name, tool), values in samples.items():
            rows.setdefault(name, {})[tool] = stats(values)
    finally:
        if dockerd and dockerd.poll() is None:
            dockerd.send_signal(signal.SIGTERM)
            try:
                dockerd.wait(20)
            except subprocess.TimeoutExpired:
                dockerd.kill()
                dockerd.wait()
        subprocess.run([lcd, "daemon", "stop"], env=env, capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
    with open(out_json, "w") as f:
        json.dump(rows, f)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--network-inner":
        network_inner(int(sys.argv[2]), sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--parallel", type=int, default=20)
    ap.add_argument("--parallel-rounds", type=int, default=3)
    ap.add_argument("--stress-concurrency", type=int, default=4)
    ap.add_argument("--stress-seconds", type=int, default=20)
    ap.add_argument("--where-seconds", type=int, default=10,
                    help="length of the in-process `lcd stress -c 1` run that splits a lifecycle's time")
    ap.add_argument("--image-mib", type=int,
                    help="size of the pulled and loaded image (default 50; 10 when --runs is under 10)")
    ap.add_argument("--image-runs", type=int,
                    help="rounds of the pull and load rows (default 10; 2 when --runs is under 10)")
    ap.add_argument("--checkpoint-mib", type=int,
                    help="memory of the big checkpointed container (default 256; 32 when --runs is under 10)")
    ap.add_argument("--checkpoint-runs", type=int,
                    help="rounds of the checkpoint/restore rows (default 5; 1 when --runs is under 10)")
    ap.add_argument("--only", metavar="SECTION[,SECTION...]",
                    help="run only these sections (default all): " + ", ".join(SECTIONS))
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    unknown = set(args.only.split(",")) - set(SECTIONS) if args.only else set()
    if unknown:
        ap.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    if args.image_mib is None:
        args.image_mib = 50 if args.runs >= 10 else 10
    if args.image_runs is None:
        args.image_runs = 10 if args.runs >= 10 else 2
    if args.checkpoint_mib is None:
        args.checkpoint_mib = 256 if args.runs >= 10 else 32
    if args.checkpoint_runs is None:
        args.checkpoint_runs = 5 if args.runs >= 10 else 1
    if os.geteuid() != 0:
        sys.exit("bench: run as root (containerd, runc and dockerd need it)")
    install()
    b = Bench(args)
    try:
        b.results["machine"] = {"cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
                                "kernel": os.uname().release,
                                "cgroups": cgroup_setup(),
                                "cgroup_migration_ms": cgroup_migration_ms(),
                                "before": quiet_check("before")}
        b.setup()
        b.results["dockerd_idle_kib"] = rss_kib(b.dockerd.pid)
        wanted = set(args.only.split(",")) if args.only else set(SECTIONS)
        if "run" in wanted:
            print("run --rm ...", flush=True)
            b.run_rm()
            print("where the time goes (lcd stress -c 1) ...", flush=True)
            b.where_time_goes()
            b.where_summary()
        if "exec" in wanted:
            print("exec ...", flush=True)
            b.exec_()
        if "parallel" in wanted:
            print(f"{args.parallel} at once ...", flush=True)
            b.parallel()
        if "stress" in wanted:
            print("stress ...", flush=True)
            b.stress()
        if "images" in wanted:
            print("images (pull, load, run --rm IMAGE) ...", flush=True)
            b.images()
        if "network" in wanted:
            print("networks (in a namespace of their own) ...", flush=True)
            b.network()
        if "checkpoint" in wanted:
            print("checkpoint / restore ...", flush=True)
            b.checkpoints()
        b.results["machine"]["after"] = quiet_check("after")
        b.memory()
        b.report()
        if args.json:
            json.dump(b.results, open(args.json, "w"), indent=2)
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
