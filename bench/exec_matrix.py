#!/usr/bin/env python3
"""Exec 2x2: lcd and ctr each exec /bin/true into lcd's container and into ctr's, in a rotating order,
on the benchmark's own setup (private containerd and dockerd, after the run --rm rows). Written to chase
why `lcd exec` is slower inside the full benchmark (22-38 ms) than alone (19-23 ms) while ctr's exec
stays at 41-46 ms. Prints the median of each cell. As root: python3 bench/exec_matrix.py [--runs 28]
"""

import argparse
import os
import statistics
import subprocess
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=28)
    ap.add_argument("--no-run-rm", action="store_true", help="skip the run --rm rows before the execs")
    args = ap.parse_args()
    b = B.Bench(types.SimpleNamespace(runs=30, parallel=20, parallel_rounds=1, stress_concurrency=4,
                                      stress_seconds=5, where_seconds=10, json=None))
    try:
        b.setup()
        if not args.no_run_rm:
            b.run_rm()
        B.sh([b.lcd, "run", "-d", "--name", "lexec0", b.rootfs, "/bin/sleep", "100000"], env=b.lcd_env,
             stdout=subprocess.DEVNULL)
        B.sh(b.ctr("run", "-d", "--rootfs", b.rootfs, "cexec0", "/bin/sleep", "100000"), stdout=subprocess.DEVNULL)
        ctr_ns = dict(b.lcd_env, LCD_NAMESPACE="bench-ctr")
        cells = {k: [] for k in ("lcd > lcd's", "lcd > ctr's", "ctr > lcd's", "ctr > ctr's")}
        for i in range(args.runs):
            cmds = {
                "lcd > lcd's": ([b.lcd, "exec", "lexec0", "/bin/true"], b.lcd_env),
                "lcd > ctr's": ([b.lcd, "exec", "cexec0", "/bin/true"], ctr_ns),
                "ctr > lcd's": (["ctr", "-a", b.sock, "-n", "bench-lcd", "task", "exec", "--exec-id", f"x{i}",
                                 "lexec0", "/bin/true"], b.lcd_env),
                "ctr > ctr's": (b.ctr("task", "exec", "--exec-id", f"y{i}", "cexec0", "/bin/true"), b.lcd_env),
            }
            for cell, (cmd, env) in B.rotated(cmds, i):
                cells[cell].append(B.timed(cmd, env)[0])
        for cell, times in cells.items():
            print(f"{cell:<12} median {statistics.median(times):6.1f} ms")
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
