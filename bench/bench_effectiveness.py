"""How well each hunting strategy finds each bug fixture, measured in one run through bin/tracer.

    /usr/bin/python3 bench/bench_effectiveness.py [--runs R] [--hunt-runs H] [--replays K]
        [--fixtures NAME,...] [--strategies NAME,...] [--debugger gdb|lldb] [--mode agent|...]

For every bug fixture (tests/fixtures/bugs/*.c, built into build/bugs/), with seeds 0..R-1
(default R = 100):
  plain     the program alone, no debugger: failures in R runs (the fixtures' contract: 0)
  default   `tracer hunt` with no yield options: the default mix (tracerlib/hunt_mix.py);
            the run that found the bug names its profile
  call      yields before calls: --class send,recv,sync,proc --strategy sleep:1000
  access    yields before shared accesses too: --class access,send,recv,sync,proc
            --strategy sleep:20000 (the guide's advice: under a debugger a 1 ms sleep is
            shorter than a thread's start, and the outcome a matter of timing)
  delay     delays chosen per site for the run, at calls and shared accesses:
            --class access,send,recv,sync,proc --strategy delay:50000
  pct       PCT at calls: --strategy pct:3 (agent mode only)
  pct_access  PCT at calls and shared accesses: --class access,send,recv,sync,proc
            --strategy pct:3 (agent mode only)
For each strategy: failures in the R seeds (hunts with `--confirm 0` started again after each
failing seed, so one debugger start per failure), the runs a `tracer hunt --runs H` from seed 0
(H = max(R, --hunt-runs); its default confirmation) needed for the failure it ends with, and
how many of K (default 10) runs of `tracer replay REPORT --runs K` reproduced that find. The second table is the cost:
milliseconds per run of each column (the debugger's start-up shared out over a hunt's runs)
and the slowdown against plain.

A run fails when the program exits non-zero (1: the bug showed; 3: its watchdog caught a
hang) or is killed. A hunt that ends with Tracer's error (exit 2) is shown as `err` with its
last line under the table. Progress goes to stderr. Exit 0 when every fixture fails 0 times
plain and every fixture is found by some strategy, 1 otherwise.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from bench_yield import build   # the Makefile's command, rebuilt when a source is newer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "tests", "fixtures", "bugs")
TRACER = os.path.join(ROOT, "bin", "tracer")
NOT_FIXTURES = {"perturb_shim"}     # the LD_PRELOAD shim of bugs_shim.sh
STRATEGIES = {
    "default": [],
    "call": ["--class", "send,recv,sync,proc", "--strategy", "sleep:1000"],
    "access": ["--class", "access,send,recv,sync,proc", "--strategy", "sleep:20000"],
    "delay": ["--class", "access,send,recv,sync,proc", "--strategy", "delay:50000"],
    "pct": ["--strategy", "pct:3"],
    "pct_access": ["--class", "access,send,recv,sync,proc", "--strategy", "pct:3"],
}
TIMEOUT = 30            # seconds a run may take (`--timeout`); the fixtures' watchdogs are shorter
_RUN = re.compile(r"^hunt: run (\d+) of \d+, seed (\d+)(?: \((\w+)\))?: "
                  r"(passed|FAILED|not counted)", re.M)
_CONFIRMING = re.compile(r"^hunt: confirming seed \d+, run", re.M)
_FOUND = re.compile(r"hunt found a failure with seed (\d+)")
_REPORT = re.compile(r"report: (\S+\.json)")
_REPLAYED = re.compile(r"replay: (\d+) of (\d+) runs reproduced")


def fixtures():
    return sorted(f[:-2] for f in os.listdir(SRC)
                  if f.endswith(".c") and f[:-2] not in NOT_FIXTURES)


def progress(text, end="\n"):
    print(text, end=end, file=sys.stderr, flush=True)


def plain(prog, runs, cwd):
    """(failures, seconds) of `runs` runs of the program alone."""
    failures, t0 = 0, time.monotonic()
    for _ in range(runs):
        try:
            p = subprocess.run([prog], cwd=cwd, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=TIMEOUT)
            failures += p.returncode != 0
        except subprocess.TimeoutExpired:
            failures += 1
    return failures, time.monotonic() - t0


class Hunt:
    """One strategy on one fixture: hunts over seeds 0..runs-1, each started again after a
    failing seed, so every seed is tried once."""

    def __init__(self, opts, prog, options, store):
        self.opts, self.prog, self.options, self.store = opts, prog, options, store
        self.failures, self.runs, self.seconds = 0, 0, 0.0
        self.first, self.report, self.error = None, None, None
        self.profile = None         # the default mix's profile that found it

    def hunt(self, seed, runs, *confirm):
        """One `bin/tracer hunt`: (its run lines, the seed it ended with or None, its output)."""
        cmd = [TRACER, "hunt", "--debugger", self.opts.debugger, "--mode", self.opts.mode,
               "--store", self.store, "--timeout", str(TIMEOUT), "--runs", str(runs),
               "--seed", str(seed), *confirm, *self.options, "--", self.prog]
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                           stdin=subprocess.DEVNULL, timeout=3 * runs * (TIMEOUT + 20) + 120)
        self.seconds += time.monotonic() - t0
        out = p.stdout + p.stderr
        steps = _RUN.findall(out)
        self.runs += len(steps) + len(_CONFIRMING.findall(out))
        found = _FOUND.search(out)
        if p.returncode == 1 and found:
            return steps, int(found.group(1)), out
        if p.returncode != 0 or len(steps) < runs:
            tail = [l for l in out.splitlines() if l.strip()][-1:] or ["(no output)"]
            self.error = f"hunt from seed {seed}: exit {p.returncode}: {tail[0][:160]}"
            return None, None, out
        return steps, None, out

    def measure(self, runs, hunt_runs):
        seed = 0
        while seed < runs:              # every failing seed among 0..runs-1
            steps, failed, _ = self.hunt(seed, runs - seed, "--confirm", "0")
            if steps is None:
                return
            if failed is None:
                break
            self.failures += 1
            seed = failed + 1
        if self.failures or hunt_runs > runs:     # the find a user's hunt ends with
            steps, failed, out = self.hunt(0, hunt_runs)
            if failed is not None:
                self.first = failed + 1
                self.profile = next((p for _, s, p, _ in steps if int(s) == failed), None)
                report = _REPORT.search(out[out.index("hunt found a failure"):])
                self.report = report.group(1) if report else None

    def replay(self, k):
        """How many of k replays of the first failure reproduced it, or None."""
        if not self.report:
            return None
        cmd = [TRACER, "replay", self.report, "--runs", str(k), "--debugger",
               self.opts.debugger, "--store", self.store]
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                           stdin=subprocess.DEVNULL, timeout=k * (TIMEOUT + 20) + 120)
        m = _REPLAYED.search(p.stdout + p.stderr)
        return int(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100, help="seeds per strategy (default 100)")
    ap.add_argument("--hunt-runs", type=int, default=0,
                    help="look for a first failure up to this many runs (default: --runs)")
    ap.add_argument("--replays", type=int, default=10, help="replays of a find (default 10)")
    ap.add_argument("--fixtures", default=",".join(fixtures()),
                    help="comma-separated (default: all of tests/fixtures/bugs)")
    ap.add_argument("--strategies", default=",".join(STRATEGIES),
                    help=f"comma-separated among {','.join(STRATEGIES)} (default: all)")
    ap.add_argument("--debugger", choices=("gdb", "lldb"), default="gdb")
    ap.add_argument("--mode", choices=("agent", "breakpoint", "auto"), default="agent")
    opts = ap.parse_args()
    names = [f for f in opts.fixtures.split(",") if f]
    bad = [f for f in names if f not in fixtures()]
    strategies = [s for s in opts.strategies.split(",") if s]
    bad += [s for s in strategies if s not in STRATEGIES]
    if bad or opts.runs < 1 or opts.replays < 0:
        ap.error(f"unknown fixture or strategy: {', '.join(bad)}" if bad else "bad numbers")
    if {"pct", "pct_access"} & set(strategies) and opts.mode == "breakpoint":
        ap.error("pct needs agent mode")

    rows, t_start = {}, time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tracer-bench-eff-") as work:
        for name in names:
            prog = build(name)
            row = rows[name] = {"plain": plain(prog, opts.runs, work)}
            progress(f"{name}: plain {row['plain'][0]}/{opts.runs} failed "
                     f"({row['plain'][1]:.0f} s)")
            for s in strategies:
                h = Hunt(opts, prog, STRATEGIES[s], os.path.join(work, f"{name}-{s}"))
                h.measure(opts.runs, max(opts.hunt_runs, opts.runs))
                h.replayed = h.replay(opts.replays) if opts.replays else None
                row[s] = h
                progress(f"  {s}: {h.failures}/{opts.runs} failed, first at "
                         f"{h.first or '-'}, replayed {h.replayed}/{opts.replays} "
                         f"({h.seconds:.0f} s)" + (f"; {h.error}" if h.error else ""))
    print_tables(opts, rows, strategies)
    print(f"{time.monotonic() - t_start:.0f} s in all")
    ok = all(r["plain"][0] == 0 and (not strategies or any(r[s].first for s in strategies))
             for r in rows.values())
    print("every fixture fails 0 times plain and is found by some strategy" if ok else
          "NOT every fixture fails 0 times plain and is found by some strategy")
    return 0 if ok else 1


def print_tables(opts, rows, strategies):
    r, k = opts.runs, opts.replays
    reach = max(opts.hunt_runs, r)
    print(f"\neach cell: failures in {r} runs (seeds 0..{r - 1}) / the run of a hunt from seed "
          f"0 that found the failure it ended with, confirmed (>{reach}: none) / how many of "
          f"{k} runs of `tracer replay REPORT --runs {k}` reproduced that find "
          f"({opts.debugger}, {opts.mode} mode)\n")
    print("| " + " | ".join(["bug", "plain", *strategies]) + " |")
    print("|" + "---|" * (len(strategies) + 2))
    for name, row in rows.items():
        cells = [name, f"{row['plain'][0]}"]
        for h in (row[s] for s in strategies):
            found = str(h.first) if h.first else ("err" if h.error else f">{reach}")
            if h.first and h.profile:
                found += f" ({h.profile})"
            replays = "-" if h.replayed is None else f"{h.replayed}/{k}"
            cells.append(f"{'err' if h.error and not h.runs else h.failures} / {found} / "
                         f"{replays}")
        print("| " + " | ".join(cells) + " |")
    print("\nms per run (a hunt's seconds over its runs, the debugger's start-up included) "
          "and slowdown against plain\n")
    print("| " + " | ".join(["bug", "plain", *strategies]) + " |")
    print("|" + "---|" * (len(strategies) + 2))
    totals = {s: [0.0, 0] for s in ["plain", *strategies]}
    for name, row in rows.items():
        base = row["plain"][1] / r
        totals["plain"][0] += row["plain"][1]
        totals["plain"][1] += r
        cells = [name, f"{1000 * base:.0f}"]
        for s in strategies:
            h = row[s]
            per = h.seconds / max(h.runs, 1)
            totals[s][0] += h.seconds
            totals[s][1] += h.runs
            cells.append(f"{1000 * per:.0f} ({per / max(base, 1e-6):.0f}x)")
        print("| " + " | ".join(cells) + " |")
    base = totals["plain"][0] / max(totals["plain"][1], 1)
    print("| " + " | ".join(["all", f"{1000 * base:.0f}"] + [
        f"{1000 * t / max(n, 1):.0f} ({t / max(n, 1) / max(base, 1e-6):.0f}x)"
        for t, n in (totals[s] for s in strategies)]) + " |")
    for name, row in rows.items():
        for s in strategies:
            if row[s].error:
                print(f"  {name} {s}: {row[s].error}")


if __name__ == "__main__":
    sys.exit(main())
