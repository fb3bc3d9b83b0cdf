"""Hunt speed by data plane: agent mode against breakpoint mode, measured in one run.

    /usr/bin/python3 bench/bench_hunt.py [--runs N] [--debugger gdb|lldb|both]

Through bin/tracer, for each debugger:
  per run   seconds per further run of a hunt that cannot fail (`--probability 0` on the correct
            fixtures threads_pipe and cxx_workers, N runs): the fixed cost of a run plus one
            debugger stop per traced call in breakpoint mode, none in agent mode;
  to fail   for each bug fixture (build/bugs/), `hunt --runs 200`: the runs and the seconds
            until the first failure, in each mode (a hunt that finds nothing says so).
Ratios are breakpoint / agent of the same rows in the same run (the machine is noisy).
Goal (issue 11): agent-mode hunts >= 10x faster, finding every bug breakpoint mode finds.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACER = os.path.join(ROOT, "bin", "tracer")
CORRECT = [("threads_pipe", ["5"]), ("cxx_workers", [])]
BUGS = ["check_then_act", "lost_wakeup", "lock_order", "send_before_ready",
        "interleaved_writers"]
MODES = ("agent", "breakpoint")
_RUN = re.compile(r"^hunt: run (\d+) of \d+, seed \d+(?: \(\w+\))?: (passed|FAILED)", re.M)


def hunt(debugger, mode, program, args, runs, extra=()):
    """(seconds, runs made, found a failure) of one `bin/tracer hunt`."""
    with tempfile.TemporaryDirectory() as store:
        cmd = [TRACER, "hunt", "--debugger", debugger, "--mode", mode, "--store", store,
               "--timeout", "60", "--runs", str(runs), *extra, "--", program, *args]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        elapsed = time.monotonic() - t0
    steps = _RUN.findall(proc.stdout + proc.stderr)
    if proc.returncode not in (0, 1):
        print(f"  ({debugger} {mode} {os.path.basename(program)}: tracer error "
              f"{proc.returncode}: {(proc.stderr.strip().splitlines() or ['?'])[-1]})")
    return elapsed, len(steps), proc.returncode == 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--debugger", choices=("gdb", "lldb", "both"), default="both")
    opts = ap.parse_args()
    debuggers = ("gdb", "lldb") if opts.debugger == "both" else (opts.debugger,)
    ratios = []
    for debugger in debuggers:
        print(f"\n{debugger}: seconds per run of a hunt that cannot fail ({opts.runs} runs)")
        print(f"  {'program':14s} {'agent':>8s} {'breakpoint':>11s} {'ratio':>7s}")
        for name, args in CORRECT:
            program = os.path.join(ROOT, "build", "fixtures", name)
            # the debugger's start-up is paid once per hunt: measured apart, left out
            one = {m: hunt(debugger, m, program, args, 1, ["--probability", "0"])[0]
                   for m in MODES}
            per = {m: hunt(debugger, m, program, args, opts.runs, ["--probability", "0"])
                   for m in MODES}
            a, b = ((per[m][0] - one[m]) / max(per[m][1] - 1, 1) for m in MODES)
            ratios.append(b / a)
            print(f"  {name:14s} {a:8.3f} {b:11.3f} {b / a:6.1f}x")
        print(f"{debugger}: hunt --runs 200 to the first failure (runs, seconds)")
        for bug in BUGS:
            program = os.path.join(ROOT, "build", "bugs", bug)
            found = {m: hunt(debugger, m, program, [], 200) for m in MODES}
            cells = "  ".join(f"{m} {runs} runs {t:.1f} s{'' if ok else ' NOT FOUND'}"
                              for m, (t, runs, ok) in found.items())
            print(f"  {bug:20s} {cells}")
    worst = min(ratios) if ratios else 0
    print(f"\nper-run ratio breakpoint/agent: worst {worst:.1f}x (goal >= 10x)")
    return 0 if worst >= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
