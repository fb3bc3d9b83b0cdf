"""`tracer replay`: rerun a stored report's run K times and count how often it fails again.

What a report must hold for that (docs/report.md): the program and its argv, the yield seed,
strategy, probability and site selection (`yield.classes`, `module`, `functions`), the
recorder limits, the mode, the timeout and the filters. Reports written before the site selection was
recorded replay with the default selection (every call site of every class).

A run reproduces the failure when it stops the same way: the same fatal signal (in any
process), or else a non-zero exit of the first process, or else a timeout.
"""
import argparse
import os
import shlex

from . import _core, frontend, yields
from .run import TracerError, signal_name

RUNS_MAX = 10000


def parse_args(arg):
    parser = yields._Parser(prog="tracer replay", add_help=False)
    parser.add_argument("report", nargs="?")
    parser.add_argument("--runs", type=int, default=1)
    opts = parser.parse_args(shlex.split(arg))
    if not 1 <= opts.runs <= RUNS_MAX:
        raise TracerError(f"tracer replay: --runs must be from 1 to {RUNS_MAX}")
    return opts


def load(path):
    try:
        return _core.load_report(os.path.expanduser(path))
    except ValueError as e:             # the reader's message names the file
        raise TracerError(f"cannot read report {e}") from None
    except OSError as e:
        raise TracerError(f"cannot read report {path}: {e.strerror}") from None


def failure_of_report(report):
    """("signal", "SIGSEGV"), ("exit", status), ("timeout", None) or None (no failure)."""
    stop = report["stop"]
    if stop["reason"] == "timeout":
        return ("timeout", None)
    if stop["signal"]:
        return ("signal", stop["signal"])
    for proc in report["processes"]:
        if proc["exit_signal"]:
            return ("signal", proc["exit_signal"])
    first = report["program"]["pid"]
    status = stop["status"] if stop["reason"] == "exit" else None
    for proc in report["processes"]:
        if proc["pid"] == first and proc["exit_status"]:
            status = proc["exit_status"]
    return ("exit", status) if status else None


def failure_of_run(run):
    """The same for a finished Run of this session."""
    if run.fatal:
        return ("signal", run.fatal[2])
    if run.stop and run.stop.get("reason") == "timeout":
        return ("timeout", None)
    for exit_ in run.exits.values():
        if exit_["signal"]:
            return ("signal", signal_name(exit_["signal"]))
    main = run.exits.get(run.pid)
    return ("exit", main["status"]) if main and main["status"] else None


def same_failure(wanted, got):
    """A signal must be the same signal; an exit any non-zero status; a timeout a timeout."""
    if wanted is None or got is None or wanted[0] != got[0]:
        return False
    return wanted[0] != "signal" or wanted[1] == got[1]


def describe(failure):
    kind, detail = failure
    return {"signal": f"{detail}", "exit": f"exit status {detail}",
            "timeout": "a timeout"}[kind]


def settings_of(report):
    """[(setting, value text)] the report's run had: limits, mode, timeout and filters."""
    recorder = report["recorder"]
    pairs = [(name, str(recorder[name])) for name in ("cap", "budget", "payload", "backtrace")]
    if report.get("mode") in ("agent", "breakpoint"):
        pairs.append(("mode", report["mode"]))
    if "timeout" in report:
        pairs.append(("timeout", str(report["timeout"])))
    for name in ("trace", "status", "endpoint"):     # the filters, where recorded
        if isinstance(report.get("filter"), dict) and report["filter"].get(name):
            pairs.append((name, report["filter"][name]))
    return pairs


def yield_on_args(report):
    """`tracer yield on` arguments selecting the report's sites and policy, or None when the
    run had no yields."""
    record = report["yield"]
    if not record["enabled"]:
        return None
    opts = argparse.Namespace(classes=record.get("classes") or "sync,proc,send,recv",
                              module=record.get("module"),
                              functions=record.get("functions") or None,
                              probability=record["probability"])
    strategy = record["strategy"] or "sleep:1000"
    if strategy.startswith("pct") and record.get("pct_steps"):     # the same change points
        strategy = f"{strategy}:{record['pct_steps']}"
    return frontend.yield_on_args(opts, strategy, record["seed"])


def check_program(report, program):
    wanted = report["program"]["path"]
    if wanted and os.path.realpath(wanted) != os.path.realpath(program):
        raise TracerError(f"the report is of {wanted}, but {program} is loaded: load "
                          "the report's program (bin/tracer replay does)")


def replay(driver, arg):
    """Runs the replay on `driver`; returns (count reproduced, runs, closing line, first
    reproducing run's report path)."""
    opts = parse_args(arg)
    run = driver.run
    path = opts.report or (run.report_path if run is not None else None)
    if not path:
        raise TracerError("tracer replay REPORT: no report given and the last run wrote none")
    report = load(path)
    wanted = failure_of_report(report)
    if wanted is None:
        raise TracerError(f"{path} records no failure ({report['stop']['reason']}): "
                          "nothing to reproduce")
    check_program(report, driver._program())
    values = driver.values
    changed = [name for name, _ in settings_of(report)] + ["report"]
    saved = {name: getattr(values, name) for name in changed}
    yielder = driver.yielder
    yields_before = (frontend.yield_on_args(yielder.opts, yielder.policy.info["strategy"],
                                            yielder.opts.seed)
                     if yielder.policy is not None else None)
    args = " ".join(shlex.quote(a) for a in report["program"]["argv"][1:])
    reproduced, kept = 0, None
    try:
        for name, text in settings_of(report):
            values.set(name, text)
        values.set("report", "failure")
        yield_args = yield_on_args(report)
        if yield_args is not None:
            driver.port.write(driver.yield_on(yield_args))
        else:
            driver.yield_off(quiet=True)
        for i in range(opts.runs):
            done = driver.run_once(args)
            if done is None:
                raise TracerError("replay interrupted by a breakpoint or Ctrl-C")
            same = same_failure(wanted, failure_of_run(done))
            if same:
                reproduced += 1
                kept = kept or done.report_path
                values.set("report", "never")     # one report of the reproduction is enough
            outcome = done.outcome().removeprefix("tracer: ")
            if not done.report_path:        # (its hint to change `report` does not apply)
                outcome = outcome.split(";")[0]
            driver.port.write(f"replay: run {i + 1} of {opts.runs}: "
                              f"{'reproduced' if same else 'not reproduced'} - {outcome}")
    finally:                            # your settings and yields as they were
        for name, value in saved.items():
            values.set(name, str(value))
        driver.yield_off(quiet=True)
        if yields_before is not None:
            driver.yield_on(yields_before)
    line = (f"tracer: replay: {reproduced} of {opts.runs} runs reproduced the failure "
            f"({describe(wanted)}) of {path}")
    if kept:
        line += f"; report: {kept}"
    return reproduced, opts.runs, line, kept
