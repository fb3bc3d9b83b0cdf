"""Which mode covered which process (issue 11): the agent notes each process it enters and
each exec it can see it will not enter; the report names every process's mode and lists the
uncovered ones with why, the closing line and `tracer status` say so too. And the deaths the
agent records where no debugger looks: a crash's backtrace (frame-pointer walk) and children
reaped by wait()/waitid(). Fixture: tests/fixtures/coverage_gaps.c (and static_helper.c,
linked -static). Real gdb 13 and lldb-16, agent and auto mode.
"""
import re

import pytest

from checks import assert_report, signal_name
from controller import run
from harness import fixture_path

AGENT_MODES = pytest.mark.parametrize("mode", ["agent", "auto"])


def gaps(debugger, tmp_path, what, mode="agent", after=()):
    prog = fixture_path("coverage_gaps")
    r = run(debugger, prog, [what], mode=mode, tmp=tmp_path, timeout=120, after=after)
    rep = assert_report(r, prog)
    m = re.search(r"coverage_gaps: child pid (\d+)", r.stdout)
    assert m, r.describe()
    return r, rep, int(m.group(1))


def by_pid(rep):
    return {p["pid"]: p for p in rep["processes"]}


@AGENT_MODES
@pytest.mark.parametrize("what,short,exe,why", [
    ("static", "static program", "static_helper", "a static program"),
    ("scrub", "LD_PRELOAD lost", "coverage_gaps", "without the agent in LD_PRELOAD"),
])
def test_exec_the_agent_cannot_enter_is_named(debugger, mode, what, short, exe, why, tmp_path):
    """A child that execs a static program, or re-execs with LD_PRELOAD scrubbed from its
    environment: it runs (its line reaches the parent) unrecorded, and the report says so -
    the parent covered by the agent, the child in `uncovered` with why, named on the closing
    line and by `tracer status`."""
    r, rep, child = gaps(debugger, tmp_path, what, mode, after=["tracer status"])
    assert "says hi" in r.stdout, r.describe()
    assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == 0, rep["stop"]
    parent = rep["program"]["pid"]
    procs = by_pid(rep)
    assert procs[parent]["mode"] == "agent", procs[parent]
    if debugger.name == "gdb":          # gdb follows the child: it is in processes too
        assert procs[child]["mode"] == "none", procs.get(child)
    gaps_ = rep["uncovered"]
    assert [g["pid"] for g in gaps_] == [child], gaps_
    assert gaps_[0]["exe"].endswith("/" + exe) and why in gaps_[0]["why"], gaps_
    assert {e["pid"] for e in rep["events"]} <= {parent, child}
    assert not [e for e in rep["events"] if e["pid"] == child and e["dir"] == "send"], \
        "the uncovered image's write cannot have been recorded"
    assert f"1 process not covered: {child} {exe} ({short})" in r.output, r.describe()
    assert re.search(rf"processes: .*{parent} agent.*{child} none \({re.escape(short)}\)",
                     r.stdout), r.describe()


def test_breakpoint_mode_names_its_processes(debugger, tmp_path):
    """Breakpoint mode: every process in the report is covered by breakpoints; none is
    uncovered."""
    prog = fixture_path("exit_code")
    r = run(debugger, prog, ["0"], tmp=tmp_path, mode="breakpoint")
    rep = assert_report(r, prog)
    assert [p["mode"] for p in rep["processes"]] == ["breakpoint"], rep["processes"]
    assert rep["uncovered"] == []
    assert "not covered" not in r.output, r.describe()


@AGENT_MODES
def test_untraced_crash_has_a_backtrace(lldb_tracer, mode, tmp_path):
    """lldb does not follow the fork: the child's SIGSEGV three calls deep is recorded by the
    agent's handler, with its frame-pointer walk: the crashed thread has the faulting pc and
    its callers (crash_deep, crash_middle, crash_top, main...), not one frame."""
    r, rep, child = gaps(lldb_tracer, tmp_path, "crash", mode)
    assert f"program failed: SIGSEGV in process {child}" in r.output, r.describe()
    dead = by_pid(rep)[child]
    assert signal_name(dead["exit_signal"]) == "SIGSEGV" and dead["mode"] == "agent", dead
    frames = dead["threads"][0]["backtrace"]
    pcs = [int(f["pc"], 16) for f in frames]
    assert len(pcs) >= 4 and len(set(pcs)) == len(pcs) and all(pcs), frames
    named = [f["function"] for f in frames if f["function"]]
    if named:       # named when the debugger still knows the program's load addresses
        assert named[:3] == ["crash_deep", "crash_middle", "crash_top"], frames


def test_traced_crash_gdb(tracer, tmp_path):
    """gdb follows the child itself: its own backtrace of the crash, with the callers."""
    r, rep, child = gaps(tracer, tmp_path, "crash", "agent")
    assert f"program failed: SIGSEGV in process {child}" in r.output, r.describe()
    frames = by_pid(rep)[child]["threads"][0]["backtrace"]
    assert [f["function"] for f in frames[:3]] == ["crash_deep", "crash_middle", "crash_top"]


@pytest.mark.parametrize("what", ["wait", "waitid"])
def test_sigkill_reaped_by_wait_is_a_failure(debugger, what, tmp_path):
    """A child SIGKILLs itself and its parent reaps it with wait() or waitid() (not waitpid):
    the agent records the death, so the run fails naming the child under both debuggers."""
    r, rep, child = gaps(debugger, tmp_path, what)
    assert f"program failed: SIGKILL in process {child}" in r.output, r.describe()
    dead = by_pid(rep)[child]
    assert signal_name(dead["exit_signal"]) == "SIGKILL" and not dead["alive"], dead
    assert r.returncode != 0, r.describe()
