"""Ping-pong benchmark: µs per traced call, all measured in one run (these machines are noisy).

    /usr/bin/python3 bench/bench_gdb.py [--rounds N] [--repeat K]

Rows: the untraced program, gdb with a no-op breakpoint making the same stops as Tracer
(bench/noop_gdb.py), Tracer in gdb, strace -f, ltrace -f. Prints µs/event (median of K) and
Tracer's ratio to the no-op breakpoint (goal: ≤ 1.25). Every command runs pinned to CPU 0.
gdb rows have gdb's own start-up (a run of the program with 1 round) subtracted.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = os.path.join(ROOT, "build", "bench", "pingpong")
GDB = ["gdb", "-q", "-batch", "-nx"]


def build():
    os.makedirs(os.path.dirname(PROG), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-g", "-o", PROG, os.path.join(ROOT, "bench", "pingpong.c")],
                   check=True)


def timed(cmd, cwd):
    # Pinned to one CPU: cross-core wake-ups between gdb and its two tracees made runs of the
    # same command differ by ±40 %; on one core they agree within a few %.
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    build()
    work = tempfile.mkdtemp(prefix="tracer-bench-")
    rounds = str(args.rounds)
    events = 4 * args.rounds
    rows = {
        "untraced": [PROG, rounds],
        "gdb no-op breakpoint": GDB + ["-x", os.path.join(ROOT, "bench", "noop_gdb.py"),
                                       "-ex", "run", "--args", PROG, rounds],
        "tracer (gdb)": GDB + ["-x", os.path.join(ROOT, "gdb", "tracer.py"),
                               "-ex", "set tracer report never", "-ex", "tracer run",
                               "--args", PROG, rounds],
    }
    if shutil.which("strace"):
        rows["strace -f"] = ["strace", "-f", "-qq", "-o", "/dev/null", PROG, rounds]
    if shutil.which("ltrace"):
        rows["ltrace -f"] = ["ltrace", "-f", "-o", "/dev/null", "-e", "write+read", PROG,
                             rounds]
    # Fixed-cost baseline: gdb starting and running the program with no breakpoints, so
    # per-event figures exclude gdb's own start-up (symbol loading) on both sides.
    startup = GDB + ["-ex", "run", "--args", PROG, "1"]
    results = {}
    for _ in range(args.repeat):         # interleaved, so drift hits every row alike
        base = timed(startup, work)
        for name, cmd in rows.items():
            t = timed(cmd, work)
            if name.startswith(("gdb", "tracer")):
                t -= base
            results.setdefault(name, []).append(t)
    print(f"ping-pong over pipes, {args.rounds} rounds = {events} traced calls, "
          f"median of {args.repeat}")
    per_event = {name: statistics.median(ts) / events * 1e6 for name, ts in results.items()}
    for name, us in per_event.items():
        print(f"  {name:22s} {us:9.1f} µs/event")
    ratio = per_event["tracer (gdb)"] / per_event["gdb no-op breakpoint"]
    print(f"tracer / no-op breakpoint: {ratio:.2f}  (goal: ≤ 1.25)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
