"""Which process the agent covers, for real: tests/fixtures/coverage_gaps run with the agent
and a ring; its notes read back and turned into per-process modes by tracerlib/coverage.py;
a crash's walked frames and deaths reaped by wait()/waitid().

Needs `make agent fixtures` (skipped otherwise)."""
import os
import re
import signal
import subprocess
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import _core  # noqa: E402
from tracerlib.coverage import UNCOVERED_MAX, Coverage  # noqa: E402

AGENT = os.path.join(ROOT, "tracerlib", "libtracer_agent.so")
FIXTURE = os.path.join(ROOT, "build", "fixtures", "coverage_gaps")
HELPER = os.path.join(ROOT, "build", "fixtures", "static_helper")

pytestmark = pytest.mark.skipif(not all(map(os.path.exists, (AGENT, FIXTURE, HELPER))),
                                reason="make agent fixtures first")


@pytest.fixture
def ring():
    path = f"/dev/shm/tracer-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    r = _core.SharedRing.create(path, cap=50, budget=1000, payload=16)
    yield r
    r.unlink()
    r.close()


def gaps(ring, what):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACER_")}
    env.update(LD_PRELOAD=AGENT, TRACER_RING=ring.path)
    p = subprocess.Popen([FIXTURE, what], env=env, stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0, out
    return p.pid, int(re.search(r"child pid (\d+)", out).group(1)), out


@pytest.mark.parametrize("what,note,exe", [("static", "static", HELPER),
                                           ("scrub", "no-preload", FIXTURE)])
def test_an_exec_the_agent_cannot_enter_is_noted(ring, what, note, exe):
    parent, child, out = gaps(ring, what)
    assert "says hi" in out
    notes = ring.notes()
    assert [(n["what"], n["pid"]) for n in notes] == [
        ("agent", parent), ("agent", child), (note, child)], notes
    assert notes[2]["exe"] == exe and notes[2]["ppid"] == parent
    cov = Coverage("agent", notes, {parent})
    assert cov.modes == {parent: "agent", child: "none"}
    assert [(g["pid"], g["exe"]) for g in cov.uncovered()] == [(child, exe)]
    assert cov.closing_note().startswith(f"1 process not covered: {child} ")


def test_covered_children_need_no_note(ring):
    """A forked child that only crashes stays with the agent: nothing uncovered."""
    parent, child, _ = gaps(ring, "crash")
    cov = Coverage("agent", ring.notes(), {parent})
    assert cov.modes == {parent: "agent", child: "agent"}
    assert cov.uncovered() == [] and cov.closing_note() == ""


def test_crash_frames_are_the_call_chain(ring):
    """-O0 keeps frame pointers: pc in crash_deep, then returns into crash_middle, crash_top,
    main (checked against the fixture's symbols with nm)."""
    _, child, _ = gaps(ring, "crash")
    died = [d for d in ring.deaths() if d["how"] == "signal"]
    assert len(died) == 1 and died[0]["pid"] == child and died[0]["signal"] == signal.SIGSEGV
    frames = died[0]["frames"]
    assert frames[0] == died[0]["pc"] and 4 <= len(frames) <= 16, frames
    syms = sorted((int(a, 16), n) for a, t, n in (line.split() for line in subprocess.run(
        ["nm", FIXTURE], stdout=subprocess.PIPE, text=True).stdout.splitlines()
        if len(line.split()) == 3) if t in "tT")
    # PIE: the load base is page-aligned and crash_deep is far shorter than a page
    base = (frames[0] - next(a for a, n in syms if n == "crash_deep")) & ~0xFFF

    def name(pc):
        return max((a, n) for a, n in syms if a <= pc - base)[1]
    assert [name(pc) for pc in frames[:4]] == ["crash_deep", "crash_middle", "crash_top",
                                               "main"], [hex(f) for f in frames]


@pytest.mark.parametrize("what", ["wait", "waitid"])
def test_sigkill_reaped_by_wait_is_recorded(ring, what):
    _, child, _ = gaps(ring, what)
    assert [(d["pid"], d["signal"], d["how"]) for d in ring.deaths()] == [
        (child, signal.SIGKILL, "reaped")]


def test_uncovered_is_bounded():
    notes = [{"what": "static", "pid": 1000 + i, "ppid": 1, "exe": "/s", "t_ns": i}
             for i in range(UNCOVERED_MAX + 5)]
    listed = Coverage("agent", notes, (), lost=2).uncovered()
    assert len(listed) == UNCOVERED_MAX + 1 and listed[-1]["pid"] == 0
    assert "5 not listed, 2 not noted" in listed[-1]["why"]


def test_breakpoint_runs_cover_what_the_debugger_saw():
    cov = Coverage("breakpoint", [], {7, 8})
    assert cov.modes == {7: "breakpoint", 8: "breakpoint"} and cov.uncovered() == []
