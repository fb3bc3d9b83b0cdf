"""Agent mode, for real: tests/fixtures/agent_smoke run with LD_PRELOAD=libtracer_agent.so and
TRACER_RING, then the ring read with _core.SharedRing and rendered through Session.absorb().

Needs `make agent fixtures` (skipped otherwise)."""
import errno
import json
import os
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import _core  # noqa: E402

AGENT = os.path.join(ROOT, "tracerlib", "libtracer_agent.so")
FIXTURE = os.path.join(ROOT, "build", "fixtures", "agent_smoke")
SCHEMA = os.path.join(ROOT, "docs", "report.schema.json")

pytestmark = pytest.mark.skipif(not (os.path.exists(AGENT) and os.path.exists(FIXTURE)),
                                reason="make agent fixtures first")



def run(args, ring=None, preload=True, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACER_")}
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = AGENT
    if ring:
        env["TRACER_RING"] = ring
    env.update(extra)
    return subprocess.run([FIXTURE] + args, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)


def facts(out):
    """stdout without the pid lines, which differ from run to run (sorted: the child's
    lines interleave with the parent's)."""
    return sorted(line for line in out.splitlines() if not line.startswith("pid "))


def pids(out):
    words = next(line for line in out.splitlines() if line.startswith("pid ")).split()
    return dict(zip(words[0::2], map(int, words[1::2])))


def test_basic_events_match_what_the_program_did(ring_path):
    ring = _core.SharedRing.create(ring_path, cap=50, budget=1000, payload=64)
    p = run(["basic"], ring_path)
    assert p.returncode == 0, p.stderr
    ids = pids(p.stdout)
    parent, child = ids["pid"], ids["child"]
    evs = ring.events()
    got = [(e["pid"], e["dir"], e["fn"], e["fd"], e["ret"], e["errno"], e["data"]) for e in evs]
    # the child's calls interleave with the parent's as the schedule had it; each
    # process's own calls are in program order
    assert sorted(got) == sorted([
        (parent, "send", "write", ids["pipe"], 5, 0, b"hello"),
        (child, "recv", "read", ids["pipe"] - 1, 5, 0, b"hello"),
        (child, "send", "send", ids["sock"] + 1, 5, 0, b"pong!"),
        (parent, "recv", "recv", ids["sock"], 5, 0, b"pong!"),
        (parent, "send", "writev", ids["pipe"], 6, 0, b"abcdef"),
        (parent, "recv", "read", ids["pipe"] - 1, 6, 0, b"abcdef"),
        (parent, "recv", "read", ids["empty"], -1, errno.EAGAIN, b""),
    ])
    assert [e["seq"] for e in evs] == list(range(7))
    assert [e["fn"] for e in evs if e["pid"] == parent] == ["write", "recv", "writev", "read",
                                                             "read"]
    by_fn = {(e["pid"], e["fn"]): e for e in evs}
    assert by_fn[(parent, "write")]["endpoint"].startswith("pipe:[")
    assert by_fn[(parent, "write")]["endpoint"] == by_fn[(child, "read")]["endpoint"]
    assert by_fn[(parent, "recv")]["endpoint"].startswith("unix:")
    assert by_fn[(parent, "writev")]["len"] == 6
    assert by_fn[(child, "read")]["len"] == 64         # the room offered
    assert all(e["tid"] == e["pid"] and e["site"] > 0 for e in evs)
    assert all(e["t_us"] >= 0 for e in evs)
    st = ring.stats()
    assert st["count"] == 7 and st["kept"] == 7 and st["dropped"] == 0 and st["torn"] == 0
    assert st["not_ipc"] >= 1                          # the write to /dev/null
    assert st["procs"] == 2

    # the report renders from the ring exactly as in breakpoint mode
    ring.freeze()
    s = _core.Session()
    s.absorb(ring)
    assert s.frozen and s.count == 7 and s.cap == 50 and s.budget == 1000
    assert s.events() == evs
    report = json.loads(s.render({"key": "agent-1", "stop": {"reason": "exit", "status": 0}}))
    assert report["recorder"]["count"] == 7 and len(report["events"]) == 7
    if os.path.exists(SCHEMA):
        jsonschema = pytest.importorskip("jsonschema")
        with open(SCHEMA) as f:
            jsonschema.validate(report, json.load(f))
    ring.unlink()
    assert not os.path.exists(ring_path)


def test_without_a_ring_the_program_behaves_identically(ring_path):
    plain = run(["basic"], preload=False)
    idle = run(["basic"])                              # preloaded, no TRACER_RING
    bad = run(["basic"], "/nonexistent/ring")
    with open(ring_path, "wb") as f:
        f.write(b"not a ring" * 1000)
    junk = run(["basic"], ring_path)
    assert plain.returncode == idle.returncode == bad.returncode == junk.returncode == 0
    assert facts(plain.stdout) == facts(idle.stdout) == facts(bad.stdout) == facts(junk.stdout)
    assert "eagain -1 11" in plain.stdout
    with open(ring_path, "rb") as f:
        assert f.read() == b"not a ring" * 1000    # untouched


def test_threads_wrap_the_ring_and_nothing_is_torn(ring_path):
    ring = _core.SharedRing.create(ring_path, cap=64, budget=100000, payload=32)
    p = run(["threads", "4", "500"], ring_path)
    assert p.returncode == 0, p.stderr
    st = ring.stats()
    assert st["count"] == 4 * 500 * 2
    assert st["kept"] + st["torn"] == 64 and st["dropped"] == st["count"] - st["kept"]
    evs = ring.events()
    for e in evs:                                      # self-describing payloads
        t, m = e["data"].decode().split()
        assert e["ret"] == len(e["data"]) and t[0] == "t" and m[0] == "m"
    assert len({e["tid"] for e in ring.events()}) >= 1
    assert [e["seq"] for e in evs] == sorted(e["seq"] for e in evs)


def test_budget_sets_overflow(ring_path):
    ring = _core.SharedRing.create(ring_path, cap=10, budget=25, payload=8)
    assert run(["threads", "2", "100"], ring_path).returncode == 0
    st = ring.stats()
    assert st["count"] == 25 and st["overflow"] and ring.overflow
    assert ring.events()[-1]["seq"] == 24


def test_sigkilled_writer_leaves_a_readable_ring(ring_path):
    ring = _core.SharedRing.create(ring_path, cap=50, budget=1000, payload=8)
    p = run(["killed", "10"], ring_path)
    assert p.returncode == -signal.SIGKILL
    evs = ring.events()
    assert len(evs) == 20
    assert [e["fn"] for e in evs] == ["write", "read"] * 10
    assert all(e["data"] == b"k" and e["ret"] == 1 for e in evs)
    assert ring.stats()["torn"] == 0


def test_yields_are_injected_and_counted(ring_path):
    ring = _core.SharedRing.create(ring_path, cap=10, budget=100000, payload=0)
    p = run(["threads", "2", "50"], ring_path, TRACER_YIELD="7:1.0:yield",
            TRACER_YIELD_CLASSES="sync")
    assert p.returncode == 0, p.stderr
    st = ring.stats()
    # two mutex calls per round, plus the pthread_* calls of main
    assert st["yield_points"] >= 2 * 2 * 50 and st["injected"] == st["yield_points"]
    assert ring.injected == st["injected"]
    sites = ring_path + ".sites"
    with open(sites, "w") as f:
        f.write("# no call site of the program is listed\n0x1\n")
    try:
        ring2 = _core.SharedRing.create(ring_path + ".2", cap=10, budget=100, payload=0)
        p = run(["threads", "2", "5"], ring_path + ".2", TRACER_YIELD="7:1.0:sleep:10",
                TRACER_YIELD_SITES=sites)
        assert p.returncode == 0 and ring2.stats()["yield_points"] == 0
        ring2.unlink()
    finally:
        os.unlink(sites)


def test_bad_settings_and_misuse_raise(ring_path):
    with pytest.raises(ValueError):
        _core.SharedRing.create(ring_path, cap=0)
    with pytest.raises(ValueError):
        _core.SharedRing.create(ring_path, payload=_core.PAYLOAD_MAX + 1)
    with pytest.raises(FileNotFoundError):
        _core.SharedRing.open("/nonexistent/ring")
    ring = _core.SharedRing.create(ring_path, cap=4)
    with pytest.raises(FileExistsError):
        _core.SharedRing.create(ring_path, cap=4)
    other = _core.SharedRing.open(ring_path)
    assert other.cap == 4 and other.payload == 64
    with pytest.raises(TypeError):
        _core.SharedRing()
    with pytest.raises(TypeError):
        _core.Session().absorb("not a ring")
    ring.close()
    with pytest.raises(ValueError):
        ring.events()
    with open(ring_path + ".junk", "wb") as f:
        f.write(b"\0" * 8192)
    try:
        with pytest.raises(ValueError, match="not a tracer ring"):
            _core.SharedRing.open(ring_path + ".junk")
    finally:
        os.unlink(ring_path + ".junk")


def test_stale_rings_are_swept_once(monkeypatch):
    """A ring left in /dev/shm by a dead debugger (or one that had this pid) is removed before
    the first run creates its own; a live process's ring is kept."""
    from tracerlib import agent
    dead = next(p for p in range(32767, 2, -1) if not os.path.exists(f"/proc/{p}"))
    names = {f"tracer-{dead}-0": False, f"tracer-{dead}-3.sites": False,
             f"tracer-{os.getpid()}-0": False, "tracer-1-0": True, "tracer-x-0": True}
    for name in names:
        with open(os.path.join("/dev/shm", name), "w"):
            pass
    try:
        monkeypatch.setattr(agent, "_swept", False)
        agent.sweep_stale_rings()
        kept = {n: os.path.exists(os.path.join("/dev/shm", n)) for n in names}
        assert kept == names, kept
        with open(os.path.join("/dev/shm", f"tracer-{dead}-0"), "w"):
            pass
        agent.sweep_stale_rings()          # once per debugger
        assert os.path.exists(os.path.join("/dev/shm", f"tracer-{dead}-0"))
    finally:
        for name in names:
            try:
                os.unlink(os.path.join("/dev/shm", name))
            except OSError:
                pass
