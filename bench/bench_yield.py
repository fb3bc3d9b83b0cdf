"""Yield-injection effectiveness: how often each concurrency-bug fixture fails, measured in one run.

    /usr/bin/python3 bench/bench_yield.py [--runs R] [--hunt-runs H] [--strategies] [--pct]
                                          [BUG...]

For each bug in build/bugs/ (tests/fixtures/bugs/*.c), out of R runs (default 100):
  plain    the program alone, no debugger
  gdb      under gdb with Tracer recording, yields off (breakpoint stops alone perturb the
           schedule: some bugs already show here)
  inject   under gdb with `tracer yield on --seed i` for run i (default strategy)
  yield    (--strategies) the same with `--strategy yield` (sched_yield instead of a sleep)
  pct      (--pct) the same with `--strategy pct` (PCT: threads held by seeded priority)
and `hunt`: how many runs `tracer hunt --runs H --seed 0` (default H = 200) needs to find a
failure (with --pct also `pct hunt`, the same under `--strategy pct`). The seconds per run of
each column are printed under the table: the slowdown of each strategy against `gdb`.

A run fails when the program exits non-zero (1: the bug showed; 3: its own watchdog caught a
hang) or is killed by a signal or by the timeout (`set tracer timeout`, or 30 s without gdb).
Runs where gdb itself broke (crash, internal error, a Tracer error: anything but "passed" or
"the program failed") are counted apart, in the `err` columns, and are neither passes nor
failures.

Goals (issue 5): inject fails at least 5x as often as plain, and the hunt finds every bug
within 200 runs (with --pct: inject or pct, and the hunt or the pct hunt). The ratio's denominator is plain's failures with a floor of 1 (a bug that
never fails plain counts as 1 failure), so a ratio printed as >=Nx means plain was 0.

Exit status 0 when every goal holds, 1 otherwise. Runs are sequential and unpinned: the bugs
are scheduling races, and pinning everything to one CPU would change what is measured.
"""
import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "tests", "fixtures", "bugs")
OUT = os.path.join(ROOT, "build", "bugs")
TRACER = os.path.join(ROOT, "gdb", "tracer.py")
BUGS = ["lost_wakeup", "check_then_act", "interleaved_writers", "lock_order",
        "send_before_ready", "start_order"]
CFLAGS = ["-std=gnu11", "-g", "-O0", "-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"]
TIMEOUT = 30            # seconds: `set tracer timeout`, and the plain runs' limit
RATIO_GOAL = 5
HUNT_GOAL = 200

PASS, FAIL, ERROR = "pass", "fail", "error"


def build(bug):
    """build/bugs/BUG with the Makefile's command, unless up to date."""
    src, out = os.path.join(SRC, bug + ".c"), os.path.join(OUT, bug)
    # a fixture may include the others' sources (watchdog.h, setters_checker.c)
    newest = max(os.path.getmtime(os.path.join(SRC, f)) for f in os.listdir(SRC)
                 if f.endswith((".c", ".h")))
    if os.path.exists(out) and os.path.getmtime(out) >= newest:
        return out
    os.makedirs(OUT, exist_ok=True)
    subprocess.run(["gcc", *CFLAGS, "-o", out, src], check=True)
    return out


def _no_core():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))   # a crashing gdb leaves no core files


def _run(cmd, cwd, timeout):
    try:
        p = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, errors="replace", timeout=timeout, preexec_fn=_no_core,
                           start_new_session=True)
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        return None, out.decode(errors="replace") if isinstance(out, bytes) else out


def gdb_cmd(prog, *ex):
    cmd = ["gdb", "-q", "-batch", "-nx", "-x", TRACER, "-ex", "set tracer report never",
           "-ex", f"set tracer timeout {TIMEOUT}"]
    for e in ex:
        cmd += ["-ex", e]
    return cmd + ["--args", prog]


def plain_run(prog, cwd, seed):
    rc, _ = _run([prog], cwd, TIMEOUT)
    return PASS if rc == 0 else FAIL


ERRORS = {}             # what broke -> how many times, for the notes under the table


def gdb_outcome(rc, out):
    """pass / fail (the program failed, as `tracer run` says) / error (gdb or Tracer broke)."""
    if rc == 0 and "tracer: program exited normally" in out:
        return PASS
    if rc == 1 and re.search(r"^tracer: program (failed|timed out)", out, re.M):
        return FAIL
    why = re.search(r"^.*(internal-error|Fatal signal|Python Exception|Traceback).*$",
                    out or "", re.M)
    if why:
        what = why.group(0).strip()
    else:
        lines = [l for l in (out or "").splitlines() if l.strip()]
        what = lines[-1].strip() if lines else "(no output)"
    key = f"gdb exit {rc}: {re.sub(r'0x[0-9a-f]+|[0-9]{3,}', 'N', what)[:160]}"
    ERRORS[key] = ERRORS.get(key, 0) + 1
    return ERROR


def traced_run(prog, cwd, seed):
    return gdb_outcome(*_run(gdb_cmd(prog, "tracer run"), cwd, 3 * TIMEOUT))


def injected_run(strategy):
    def run(prog, cwd, seed):
        on = f"tracer yield on --seed {seed}" + (f" --strategy {strategy}" if strategy else "")
        return gdb_outcome(*_run(gdb_cmd(prog, on, "tracer run"), cwd, 3 * TIMEOUT))
    return run


def hunt(prog, cwd, runs, strategy=None):
    """(runs needed or None, errors): `tracer hunt --runs N --seed 0`."""
    on = [f"tracer yield on --strategy {strategy}"] if strategy else []
    rc, out = _run(gdb_cmd(prog, *on, f"tracer hunt --runs {runs} --seed 0"), cwd,
                   runs * (TIMEOUT + 10))
    steps = re.findall(r"^hunt: run (\d+) of \d+, seed \d+(?: \(\w+\))?: (passed|FAILED)", out or "", re.M)
    if rc == 1 and steps and steps[-1][1] == "FAILED":
        return int(steps[-1][0]), None
    if rc == 0 and re.search(r"no failure in \d+ runs", out):
        return None, None
    tail = [l for l in (out or "").splitlines() if l.strip()][-1:] or ["(no output)"]
    return None, f"hunt broke after {len(steps)} runs (gdb exit {rc}): {tail[0][:120]}"


def measure(fn, prog, runs, cwd, label, progress):
    counts = {PASS: 0, FAIL: 0, ERROR: 0}
    t0 = time.monotonic()
    tty = sys.stderr.isatty()
    for i in range(1, runs + 1):
        counts[fn(prog, cwd, i)] += 1
        if progress and (tty or i == runs):
            print(f"\r  {label}: {i}/{runs}, {counts[FAIL]} failed, {counts[ERROR]} errors",
                  end="", file=sys.stderr, flush=True)
    counts["seconds"] = time.monotonic() - t0
    if progress:
        print(f" ({counts['seconds']:.0f} s)", file=sys.stderr)
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bugs", nargs="*", default=BUGS, help=f"default: {' '.join(BUGS)}")
    ap.add_argument("--runs", type=int, default=100, help="runs per column (default 100)")
    ap.add_argument("--hunt-runs", type=int, default=HUNT_GOAL,
                    help=f"the hunt's --runs (default {HUNT_GOAL})")
    ap.add_argument("--strategies", action="store_true",
                    help="also measure --strategy yield (sched_yield) against the default sleep")
    ap.add_argument("--pct", action="store_true",
                    help="also measure --strategy pct, and a hunt under it")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args()
    unknown = [b for b in args.bugs if not os.path.exists(os.path.join(SRC, b + ".c"))]
    if unknown:
        ap.error(f"no fixture {', '.join(unknown)} in {SRC}")
    if not shutil.which("gdb"):
        ap.error("gdb is not on PATH")

    columns = [("plain", plain_run), ("gdb", traced_run), ("inject", injected_run(None))]
    if args.strategies:
        columns.append(("yield", injected_run("yield")))
    if args.pct:
        columns.append(("pct", injected_run("pct")))
    work = tempfile.mkdtemp(prefix="tracer-bench-yield-")
    results = {}
    t_start = time.monotonic()
    try:
        for bug in args.bugs:
            prog = build(bug)
            if not args.quiet:
                print(f"{bug}:", file=sys.stderr)
            row = {}
            for name, fn in columns:
                row[name] = measure(fn, prog, args.runs, work, name, not args.quiet)
            t0 = time.monotonic()
            row["hunt"] = hunt(prog, work, args.hunt_runs)
            if not args.quiet:
                print(f"  hunt: {row['hunt']} ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
            if args.pct:
                row["pct hunt"] = hunt(prog, work, args.hunt_runs, "pct")
                if not args.quiet:
                    print(f"  pct hunt: {row['pct hunt']}", file=sys.stderr)
            results[bug] = row
    finally:
        shutil.rmtree(work, ignore_errors=True)

    names = [c[0] for c in columns]
    print(f"failures per {args.runs} runs (err: runs where gdb itself broke, not counted); "
          f"inject = `tracer yield on --seed i` (default strategy)"
          + ("; yield = the same with --strategy yield" if args.strategies else "")
          + ("; pct = the same with --strategy pct" if args.pct else ""))
    head = f"{'bug':<20}" + "".join(f"{n:>8}" for n in names) + \
        "".join(f"{'err:' + n:>11}" for n in names[1:]) + \
        f"{'inject/plain':>14}{'hunt':>8}" + (f"{'pct hunt':>10}" if args.pct else "") + \
        "  goals"
    print(head)
    ok = True
    for bug, row in results.items():
        plain = row["plain"][FAIL]
        inject = row["inject"][FAIL]
        ratio = inject / max(plain, 1)
        ratio_text = (">=" if plain == 0 else "") + f"{ratio:.1f}x"
        found, hunt_err = row["hunt"]
        hunt_text = str(found) if found else ("err" if hunt_err else f">{args.hunt_runs}")
        best = max(inject, row["pct"][FAIL]) if args.pct else inject
        ratio_ok = best >= RATIO_GOAL * max(plain, 1)
        hunt_ok = found is not None and found <= HUNT_GOAL
        if args.pct:            # with --pct a goal holds when one of the strategies meets it
            hunt_ok = hunt_ok or (row["pct hunt"][0] or HUNT_GOAL + 1) <= HUNT_GOAL
        ok = ok and ratio_ok and hunt_ok
        goals = f"ratio {'met' if ratio_ok else 'MISSED'}, hunt {'met' if hunt_ok else 'MISSED'}"
        pct_text = ""
        if args.pct:
            found_pct, pct_err = row["pct hunt"]
            pct_text = f"{found_pct if found_pct else ('err' if pct_err else '>' + str(args.hunt_runs)):>10}"
        print(f"{bug:<20}" + "".join(f"{row[n][FAIL]:>8}" for n in names)
              + "".join(f"{row[n][ERROR]:>11}" for n in names[1:])
              + f"{ratio_text:>14}{hunt_text:>8}{pct_text}  {goals}")
        if hunt_err:
            print(f"  {bug}: {hunt_err}")
    print(f"ratio = inject / max(plain, 1): the denominator has a floor of 1 failure "
          f"(>= marks a plain 0). Goals: ratio >= {RATIO_GOAL}x; hunt (`tracer hunt --runs "
          f"{args.hunt_runs} --seed 0`: runs until the first failure) <= {HUNT_GOAL}.")
    for name in names:
        per_run = [row[name]["seconds"] / args.runs for row in results.values()]
        base = [row["gdb"]["seconds"] / args.runs for row in results.values()]
        print(f"  {name}: {1000 * sum(per_run) / len(per_run):.0f} ms per run on average"
              + ("" if name in ("plain", "gdb") else
                 f", {sum(per_run) / max(sum(base), 1e-9):.2f}x the gdb column"))
    for what, n in sorted(ERRORS.items(), key=lambda kv: -kv[1]):
        print(f"  gdb broke {n}x: {what}")
    print(f"all goals {'hold' if ok else 'do NOT all hold'}; "
          f"{time.monotonic() - t_start:.0f} s in all")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
