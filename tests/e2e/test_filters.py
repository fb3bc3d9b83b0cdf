"""End-to-end tests of the filters (`tracer trace`, `tracer status`, `tracer endpoint`; issue
14), under gdb and lldb, in breakpoint and agent mode: the fixture eagain_poll makes POLLS
failed recv()s (EAGAIN) on an empty non-blocking socket before its real conversation, and
writes every call down, so that each test takes from the expectations exactly what its filter
keeps and compares the report's events with them. That the calls left out cost nothing is
read in the recorder's counters: with cap and budget just above what the filter keeps, the
run neither drops an event nor reaches its budget, where the same run unfiltered does both.
"""
import pytest

import controller
from checks import (assert_events_match, assert_exited, assert_recorder,
                    assert_recorder_consistent, assert_report)
from harness import fixture_path
from tracerlib import _core

POLLS = 20
KEPT = 6                      # the calls eagain_poll makes that succeed
TIGHT = {"cap": KEPT, "budget": KEPT + 1}


def trace(debugger, mode, tmp_path, settings, after=()):
    prog = fixture_path("eagain_poll")
    run = controller.run(debugger, prog, [str(POLLS)], settings=settings, mode=mode,
                         tmp=tmp_path, after=after)
    rep = assert_report(run, prog)
    assert_exited(run, rep, 0)
    assert len(run.expectations) == POLLS + KEPT, run.describe()
    return run, rep


def failed(e):
    return e["ret"] < 0


def test_unfiltered_polls_fill_the_ring(debugger, mode, tmp_path):
    """The baseline of the next test: unfiltered, the polls take the budget and the ring."""
    run, rep = trace(debugger, mode, tmp_path, TIGHT)
    assert_recorder(rep, count=KEPT + 1, overflow=True, dropped=1)
    assert rep["filter"] == {"trace": "all", "status": "all", "endpoint": "*", "filtered": 0}
    assert any(e["errno"] == 11 for e in rep["events"])


@pytest.mark.parametrize("status", ["!EAGAIN", "successful"])
def test_status_leaves_the_polls_out_at_no_cost(debugger, mode, status, tmp_path):
    """`status !EAGAIN` / `successful`: the 20 EAGAIN polls are not in the report and took
    no slot: 6 events counted, none dropped, the budget of 7 not reached."""
    run, rep = trace(debugger, mode, tmp_path, {**TIGHT, "status": status})
    want = [e for e in run.expectations if not failed(e)]
    assert_events_match(rep, want)
    assert_recorder(rep, count=KEPT, dropped=0, overflow=False)
    assert_recorder_consistent(rep)
    assert rep["filter"] == {"trace": "all", "status": status, "endpoint": "*",
                             "filtered": POLLS}


def test_status_failed_keeps_only_the_polls(debugger, mode, tmp_path):
    run, rep = trace(debugger, mode, tmp_path, {"cap": 100, "status": "failed"})
    assert_events_match(rep, [e for e in run.expectations if failed(e)])
    assert_recorder(rep, count=POLLS, dropped=0)
    assert rep["filter"]["filtered"] == KEPT


@pytest.mark.parametrize("trace_text,keep", [
    ("recv", lambda e: e["dir"] == "recv"),
    ("sendmsg,recvmsg", lambda e: e["fn"] in ("sendmsg", "recvmsg")),
    ("send(),!recv", lambda e: e["fn"] == "send"),
])
def test_trace_by_class_and_function(debugger, mode, trace_text, keep, tmp_path):
    """`trace`: a class, functions by name, `send()` the function; the rest is not
    recorded (and not counted: breakpoint mode places no breakpoint on it)."""
    run, rep = trace(debugger, mode, tmp_path, {"cap": 100, "trace": trace_text},
                     after=["tracer status"])
    want = [e for e in run.expectations if keep(e)]
    assert want
    assert_events_match(rep, want)
    assert_recorder(rep, count=len(want), dropped=0)
    assert rep["filter"]["trace"] == trace_text
    assert f"filters: trace {trace_text}, status all, endpoint *; 0 calls left out" \
        in run.stdout, run.describe()
    if mode == "breakpoint":      # a breakpoint on each function kept, on no other
        kept = sorted(c["name"] for c in _core.catalogue()
                      if keep({"fn": c["name"], "dir": c["class"]}))
        assert f"breakpoints: {len(kept)} functions ({', '.join(kept)})" \
            in run.stdout, run.describe()


@pytest.mark.parametrize("glob,keep", [
    ("pipe:*", lambda e: e["endpoint"].startswith("pipe:")),
    ("!pipe:*", lambda e: not e["endpoint"].startswith("pipe:")),
])
def test_endpoint_glob(debugger, mode, glob, keep, tmp_path):
    run, rep = trace(debugger, mode, tmp_path, {"cap": 100, "endpoint": glob,
                                                "status": "successful"})
    want = [e for e in run.expectations if keep(e) and not failed(e)]
    assert want
    assert_events_match(rep, want)
    assert_recorder(rep, count=len(want), dropped=0)
    assert rep["filter"]["filtered"] == POLLS + KEPT - len(want)


@pytest.mark.parametrize("name,text,message", [
    ("status", "EFOO", "tracer: tracer status: 'EFOO' is not successful, failed, all or an errno "
                       "name like EAGAIN"),
    ("trace", "send,sem_post", "tracer: tracer trace: sem_post is a yield point, not a recorded "
                               "call (classes send, recv)"),
    ("trace", "bogus", "tracer: tracer trace: 'bogus' is neither a class (send, recv, all) nor a "
                       "recorded function (write, sendmsg, send()...)"),
])
def test_bad_filter_is_one_line_and_changes_nothing(debugger, name, text, message, tmp_path):
    """A refused filter: one `tracer: ...` line, the setting keeps its value, and the run
    after it records everything. (Sourced from a script: a failed command ends lldb's batch.)"""
    dbg = controller.get(debugger)
    prog = fixture_path("eagain_poll")
    run = controller.run(debugger, prog, [str(POLLS)], settings={"cap": 100},
                         script=dbg.set_command(name, text) + "\n", tmp=tmp_path)
    rep = assert_report(run, prog)
    assert_exited(run, rep, 0)
    lines = [line for line in run.output.splitlines() if f"tracer {name}" in line]
    assert len(lines) == 1 and lines[0].endswith(message), run.describe()
    assert rep["filter"][name] == {"status": "all", "trace": "all"}[name]
    assert_recorder(rep, count=POLLS + KEPT)


def assert_aligned(table_lines):
    """Every row's cells of the first five columns start where their header does."""
    header = table_lines[0].split()
    assert header[:6] == ["t_us", "pid/tid", "dir", "fn", "endpoint", "len/ret"], header
    starts = [table_lines[0].index(h) for h in header[1:5]]
    for line in table_lines[1:]:
        for at in starts:
            assert line[at - 2:at] == "  " and line[at] != " ", (at, line, table_lines[0])


def table_of(output):
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.split()[:2] == ["t_us", "pid/tid"])
    end = first + 1
    while end < len(lines) and lines[end][:1].isdigit():
        end += 1
    return lines[first:end]


def test_show_spells_errno_names_in_aligned_columns(debugger, mode, tmp_path):
    """`tracer show` (the ring just recorded) and `tracer show FILE` (the stored report): the
    polls read `-1 EAGAIN`, never `e11`, and every column stays aligned; the FILE view names
    the filter in force."""
    run, rep = trace(debugger, mode, tmp_path, {"cap": 100, "endpoint": "unix:*"},
                     after=["tracer show"])
    table = table_of(run.stdout)
    assert len(table) == 1 + POLLS + 4, run.describe()
    assert sum("16/-1 EAGAIN" in line for line in table) == POLLS, run.describe()
    assert " e11" not in run.stdout
    assert_aligned(table)

    shown = controller.run(debugger, None, run_command=f"tracer show {run.report_paths[0]}",
                           report=None, tmp=tmp_path / "show")
    table = table_of(shown.stdout)
    assert len(table) == 1 + POLLS + 4 and "16/-1 EAGAIN" in table[1], shown.describe()
    assert_aligned(table)
    assert f"filter: trace all, status all, endpoint unix:*; 2 calls left out" \
        in shown.stdout, shown.describe()


def test_a_new_trace_filter_holds_for_the_next_run(debugger, mode, tmp_path):
    """`trace send`, a run, then `trace all` and a second run in the same debugger: the
    second run records the receives too (breakpoint mode places their breakpoints anew)."""
    dbg = controller.get(debugger)
    prog = fixture_path("eagain_poll")
    run = controller.run(debugger, prog, [str(POLLS)], settings={"cap": 100, "trace": "send"},
                         mode=mode, tmp=tmp_path,
                         after=[dbg.set_command("trace", "all"), "tracer run"])
    assert len(run.reports) == 2, run.describe()
    first, second = sorted(run.reports, key=lambda r: r["started"])
    assert {e["dir"] for e in first["events"]} == {"send"}
    assert first["filter"]["trace"] == "send" and second["filter"]["trace"] == "all"
    assert_recorder(first, count=3)
    assert_recorder(second, count=POLLS + KEPT)
