"""End-to-end tests of the snapshot on stop, the report policy and batch runs (issue 4): a crash
with bytes pending, an assert in a child, a deadlock bounded by the timeout, the exit-status
report policy and an unwritable store. Real debuggers, real fixtures, reports validated
against docs/report.schema.json. The forking fixtures here run under gdb only (lldb-16 follows
one process: test_lldb.py covers the same stops with threads); the report policy runs under
both.
"""
import json
import re

import pytest

import controller
from checks import (assert_sites, assert_command_error, assert_events_match, assert_mailboxes_match,
                    assert_no_leftovers, assert_recorder_consistent, frame_functions, pids_of,
                    process, signal_name, validate)
from controller import run_gdb
from harness import fixture_path

OPTS = pytest.mark.parametrize("opt", ["O0", "O2"])
BIG = {"cap": 10000}


@OPTS
def test_crash_with_pending_bytes(opt, tmp_path, tracer):
    """SIGSEGV in the parent with 35 bytes pending in its pipe and 106 in its socket: one
    report (default policy: the run failed), stop = SIGSEGV in the parent, the mailboxes hold
    exactly those bytes, the child's sends are the events."""
    run = run_gdb(fixture_path("crash_pending", opt), settings=BIG, report=None, tmp=tmp_path)
    run.debugger.assert_sane(run)
    rep = run.report
    validate(rep)
    assert len(run.pending) == 2, "the fixture did not write its pending expectations"
    parent = run.pending[0]["pid"]
    child = next(p for p in pids_of(run) if p != parent)
    stop = rep["stop"]
    assert stop["reason"] == "signal" and signal_name(stop["signal"]) == "SIGSEGV", stop
    assert stop["pid"] == parent and stop["tid"] == parent, stop

    assert_events_match(rep, run.expectations)
    assert_recorder_consistent(rep)
    assert_mailboxes_match(rep, run.pending)

    p = process(rep, parent)
    if p["alive"]:
        assert p["threads"], "the crashed process's threads are missing"
        assert "main" in frame_functions(p["threads"][0]) or any(
            "main" in frame_functions(t) for t in p["threads"]), p["threads"]
    else:
        assert signal_name(p["exit_signal"]) == "SIGSEGV", p
    c = process(rep, child)
    assert c["alive"] is False and c["exit_status"] == 0, c
    assert_no_leftovers(run)


RESUME_AFTER_SNAPSHOT = {"gdb": "continue", "lldb": "tracer run"}
EXITED_NORMALLY = {     # the debugger's (or the tracer's) words for the parent's normal end
    "gdb": r"\[Inferior \d+ \(process {pid}\) exited normally\]",
    "lldb": r"tracer: program exited normally",
}


def test_snapshot_consumes_nothing(debugger, mode, tmp_path):
    """Stopped at a user breakpoint with bytes pending, `tracer snapshot FILE` shows them,
    with the events so far and their call sites named (in agent mode too, where the sites
    are named at the snapshot); continuing, the program still reads every one of them
    (crash_pending --peek checks the bytes and exits 0)."""
    snap = tmp_path / "snap.json"
    script = "\n".join([debugger.break_command.format(fn="fixture_marker"), "tracer run",
                        f"tracer snapshot {snap}", RESUME_AFTER_SNAPSHOT[debugger.name], ""])
    run = controller.run(debugger, fixture_path("crash_pending", "O0"), ["--peek"],
                         settings=BIG, tmp=tmp_path, script=script, run_command=None,
                         mode=mode)
    debugger.assert_sane(run)
    assert snap.exists(), "tracer snapshot FILE wrote nothing\n" + run.describe()
    rep = json.loads(snap.read_text())
    validate(rep)
    assert rep["stop"]["reason"] == "snapshot", rep["stop"]
    assert rep["mode"] == mode, rep["mode"]
    if mode == "agent":             # the agent sees the child too (lldb's breakpoints do not)
        assert rep["events"], run.describe()
    assert_sites(rep, "crash_pending.c")
    assert_mailboxes_match(rep, run.pending)
    parent = run.pending[0]["pid"]
    assert process(rep, parent)["alive"] is True

    # After the snapshot the program read exactly what had been pending.
    reads = [e for e in run.expectations if e["pid"] == parent and e["dir"] == "recv"]
    assert [bytes.fromhex(e["data_hex"]) for e in reads] == \
        [bytes.fromhex(p["data_hex"]) for p in run.pending], run.describe()
    assert "FIXTURE-FAIL" not in run.output, run.describe()
    assert re.search(EXITED_NORMALLY[debugger.name].format(pid=parent), run.stdout), \
        run.describe()
    assert_no_leftovers(run)


@OPTS
def test_child_assert(opt, tmp_path, tracer):
    """assert() fails in a child while the parent waits in waitpid (main thread) and read
    (listener thread): one report; the child dead by SIGABRT; the parent alive with both
    threads' backtraces."""
    run = run_gdb(fixture_path("child_assert", opt), settings=BIG, report=None, tmp=tmp_path)
    run.debugger.assert_sane(run)
    rep = run.report
    validate(rep)
    child = next(e["pid"] for e in run.expectations if e["tid"] == e["pid"]
                 and e["dir"] == "send" and e["len"] == 20)
    parent = next(p for p in pids_of(run) if p != child)
    stop = rep["stop"]
    assert stop["reason"] == "signal" and signal_name(stop["signal"]) == "SIGABRT", stop
    assert stop["pid"] == child, stop

    c = process(rep, child)
    assert c["alive"] is False and signal_name(c["exit_signal"]) == "SIGABRT", c
    p = process(rep, parent)
    assert p["alive"] is True, p
    assert len(p["threads"]) == 2, p["threads"]
    assert all(t["backtrace"] for t in p["threads"]), p["threads"]
    fns = [" ".join(frame_functions(t)) for t in p["threads"]]
    assert any("wait" in f for f in fns), f"no thread in waitpid: {fns}"
    assert any("read" in f for f in fns), f"no thread in read: {fns}"

    # The calls before the assert are all there; calls after the freeze are not.
    assert_events_match(rep, run.expectations, mode="prefix", ignore_unreturned=True)
    evs = [e for e in rep["events"] if e["ret"] is not None]
    assert len(evs) >= 4, rep["events"]
    assert_recorder_consistent(rep)
    assert_no_leftovers(run)


def test_deadlock_timeout(tmp_path, tracer):
    """Two processes each blocked reading from the other: `set tracer timeout 5` interrupts,
    snapshots both (backtraces in read) and kills them."""
    run = run_gdb(fixture_path("deadlock_read", "O0"), settings={**BIG, "timeout": 5},
                  report=None, tmp=tmp_path, timeout=90)
    run.debugger.assert_sane(run)
    assert run.duration < 60, f"the timeout took {run.duration:.0f} s\n" + run.describe()
    rep = run.report
    validate(rep)
    assert rep["stop"]["reason"] == "timeout", rep["stop"]
    pids = pids_of(run)
    assert len(pids) == 2
    for pid in pids:
        p = process(rep, pid)
        assert p["alive"] is True, p
        assert p["threads"] and p["threads"][0]["backtrace"], p
        fns = " ".join(frame_functions(p["threads"][0]))
        assert "read" in fns, f"pid {pid} not shown blocked in read: {fns}"
    assert_events_match(rep, run.expectations, ignore_unreturned=True)
    assert_recorder_consistent(rep)
    assert_no_leftovers(run)


@pytest.mark.parametrize("status,policy,nreports", [
    (0, None, 0),        # the default policy is `failure`
    (0, "failure", 0),
    (0, "always", 1),
    (0, "never", 0),
    (3, None, 1),
    (3, "failure", 1),
    (3, "never", 0),
])
def test_exit_status_report_policy(debugger, status, policy, nreports, tmp_path):
    """Exit 0 writes no report by default, and does with `report always`; exit 3 writes one
    unless `report never`. In batch mode the debugger's exit status says whether the program
    failed, and the outcome line names the report."""
    run = controller.run(debugger, fixture_path("exit_code", "O0"), [status], report=policy,
                         tmp=tmp_path)
    debugger.assert_sane(run)
    assert len(run.reports) == nreports, (
        f"exit {status} with report={policy}: {len(run.reports)} reports\n" + run.describe())
    if nreports:
        rep = run.report
        validate(rep)
        assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == status, rep["stop"]
        assert_events_match(rep, run.expectations)
        assert str(run.report_paths[0]) in run.output, (
            "the outcome line does not name the report\n" + run.describe())
    assert (run.returncode == 0) == (status == 0), (
        f"{debugger.name} exit status {run.returncode} for a program exiting {status}\n"
        + run.describe())
    if status:
        assert_command_error(run, f"tracer: program failed: exit status {status}")
    assert_no_leftovers(run)


def test_crash_fails_batch_gdb(tmp_path, tracer):
    """A program killed by a signal makes batch gdb exit non-zero (CI sees the failure)."""
    run = run_gdb(fixture_path("crash_pending", "O0"), report=None, tmp=tmp_path)
    run.debugger.assert_sane(run)
    assert run.returncode != 0, "gdb exited 0 for a crashed program\n" + run.describe()
    assert str(run.report_paths[0]) in run.output, run.describe()


def test_show_stored_report(tmp_path, tracer):
    """`tracer show FILE` prints a stored report: its events, processes, backtraces and
    mailboxes."""
    crash = run_gdb(fixture_path("crash_pending", "O0"), report=None, tmp=tmp_path / "crash")
    path = crash.report_paths[0] if crash.report_paths else None
    assert path, "no report to show\n" + crash.describe()
    run = run_gdb(None, run_command=f"tracer show {path}", report=None, tmp=tmp_path / "show")
    run.debugger.assert_sane(run)
    out = run.stdout
    parent = crash.pending[0]["pid"]
    for want in (str(parent), crash.pending[0]["endpoint"], "pipe msg 1", "sock first",
                 "main", "SIGSEGV"):
        assert want in out, f"`tracer show FILE` does not show {want!r}\n" + run.describe()


def test_budget_overflow_in_report(tmp_path, tracer):
    """Budget overflow is visible in the report of a failing run."""
    run = run_gdb(fixture_path("chatty", "O0"), [50], settings={"budget": 7}, tmp=tmp_path)
    run.debugger.assert_sane(run)
    rep = run.report
    validate(rep)
    assert rep["recorder"]["overflow"] is True and rep["recorder"]["count"] == 7, rep["recorder"]
    # The 7th event is a write recorded at its entry; reaching the budget removed every
    # breakpoint there, its return stop included, so its return value is honestly unknown.
    last = rep["events"][-1]
    assert last["dir"] == "send" and last["ret"] is None, last
    assert_events_match(rep, run.expectations[:6], ignore_unreturned=True)
    exp = run.expectations[6]
    assert (last["fn"], last["len"], last["endpoint"]) == (exp["fn"], exp["len"], exp["endpoint"])
    assert run.returncode == 0, "the program must run on, untraced, to its normal end"


def test_unwritable_store(tmp_path, tracer):
    """A store that cannot be created gives a clear error naming it, and `tracer snapshot
    OTHER_PATH` afterwards still saves the same frozen data."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where the store's parent should be\n")
    store = blocker / "store"
    other = tmp_path / "other.json"
    run = run_gdb(fixture_path("exit_code", "O0"), [3], report=None, store=store,
                  tmp=tmp_path, after=[f"tracer snapshot {other}"])
    run.debugger.assert_sane(run)
    assert str(store) in run.output, (
        "the error does not name the unwritable store\n" + run.describe())
    assert other.exists(), "tracer snapshot OTHER_PATH saved nothing\n" + run.describe()
    rep = json.loads(other.read_text())
    validate(rep)
    assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == 3, rep["stop"]
    assert_events_match(rep, run.expectations)
