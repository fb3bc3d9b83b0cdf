"""Ping-pong benchmark for lldb: µs per traced call, all measured in one run (these machines
are noisy: compare the ratios).

    /usr/bin/python3 bench/bench_lldb.py [--rounds N] [--repeat K] [--no-gdb]

Workload: bench/pingpong_threads.c, two threads of one process bouncing a 64-byte message
over two pipes (lldb follows one process, so the forking bench/pingpong.c would leave half
the calls untraced). Each round is 4 traced calls.

Rows:
  untraced                    the program alone
  lldb auto-continue          entry + return breakpoints without a callback: lldb's stop alone
  lldb no-op callback         the same breakpoints with Python callbacks returning False
                              (bench/noop_lldb.py): the fair baseline, the stops Tracer makes
  tracer (lldb)               lldb/tracer.py, `tracer run`
  gdb no-op / tracer (gdb)    the same program under gdb (bench/noop_gdb.py, gdb/tracer.py)

Each debugger row is timed for ROUNDS rounds and for 1 round (same command otherwise), and
µs/event = (T(ROUNDS) - T(1)) / (4 × (ROUNDS - 1)): the debugger's start-up, symbol loading
and breakpoint placing cancel out. Medians of K interleaved repeats, every command pinned to
CPU 0 (as bench_gdb.py). Goal: tracer (lldb) ≤ 1.25 × lldb no-op callback.
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
PROG = os.path.join(ROOT, "build", "bench", "pingpong_threads")
LLDB = ["lldb-16", "-b", "--no-lldbinit"]
GDB = ["gdb", "-q", "-batch", "-nx"]


def build():
    os.makedirs(os.path.dirname(PROG), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-g", "-o", PROG,
                    os.path.join(ROOT, "bench", "pingpong_threads.c"), "-lpthread"], check=True)


def timed(cmd, cwd, pin=True):
    if pin and shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or "error:" in proc.stderr or "Traceback" in proc.stderr:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): "
                           f"{proc.stdout[-500:]}{proc.stderr[-500:]}")
    return elapsed


def rows(rounds, with_gdb):
    noop = ["-o", f"command script import {os.path.join(ROOT, 'bench', 'noop_lldb.py')}"]
    tracer = ["-o", f"command script import {os.path.join(ROOT, 'lldb', 'tracer.py')}",
              "-o", "tracer set report never"]
    out = {
        "untraced": lambda n: [PROG, str(n)],
        "lldb auto-continue": lambda n: LLDB + noop + ["-o", "noop auto", "-o", "run", "--",
                                                       PROG, str(n)],
        "lldb no-op callback": lambda n: LLDB + noop + ["-o", "run", "--", PROG, str(n)],
        "tracer (lldb)": lambda n: LLDB + tracer + ["-o", "tracer run", "--", PROG, str(n)],
    }
    if with_gdb and shutil.which("gdb"):
        out["gdb no-op breakpoint"] = lambda n: GDB + [
            "-x", os.path.join(ROOT, "bench", "noop_gdb.py"), "-ex", "run", "--args", PROG,
            str(n)]
        out["tracer (gdb)"] = lambda n: GDB + [
            "-x", os.path.join(ROOT, "gdb", "tracer.py"), "-ex", "set tracer report never",
            "-ex", "tracer run", "--args", PROG, str(n)]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-gdb", action="store_true", help="leave out the gdb rows")
    ap.add_argument("--no-pin", action="store_true",
                    help="let the debugger, its server and the program use every CPU")
    args = ap.parse_args()
    if args.rounds < 2:
        ap.error("--rounds must be at least 2")
    build()
    work = tempfile.mkdtemp(prefix="tracer-bench-")
    table = rows(args.rounds, not args.no_gdb)
    full, one = {}, {}
    for _ in range(args.repeat):             # interleaved, so drift hits every row alike
        for name, cmd in table.items():
            full.setdefault(name, []).append(timed(cmd(args.rounds), work, not args.no_pin))
            one.setdefault(name, []).append(timed(cmd(1), work, not args.no_pin))
    events = 4 * (args.rounds - 1)
    print(f"ping-pong between two threads over pipes, {args.rounds} rounds = "
          f"{4 * args.rounds} traced calls, median of {args.repeat}, "
          + ("unpinned" if args.no_pin else "pinned to CPU 0"))
    per_event = {}
    for name in table:
        t = statistics.median(full[name]) - statistics.median(one[name])
        per_event[name] = t / events * 1e6
        print(f"  {name:22s} {per_event[name]:9.1f} µs/event")
    ratio = per_event["tracer (lldb)"] / per_event["lldb no-op callback"]
    print(f"tracer (lldb) / lldb no-op callback: {ratio:.2f}  (goal: ≤ 1.25)")
    print(f"lldb no-op callback / lldb auto-continue: "
          f"{per_event['lldb no-op callback'] / per_event['lldb auto-continue']:.2f}")
    if "gdb no-op breakpoint" in per_event:
        print(f"lldb no-op callback / gdb no-op breakpoint: "
              f"{per_event['lldb no-op callback'] / per_event['gdb no-op breakpoint']:.1f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
