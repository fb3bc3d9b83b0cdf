"""The program's own shared libraries (tracerlib/objects.py) and the agent's matching of a
library's yield sites by object (csrc/agent/yield.c), on tests/fixtures/libsync: ledger and
its libappsync.so (found through RUNPATH $ORIGIN). Needs `make agent fixtures`."""
import json
import os
import subprocess
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import _core, agent, objects, yields  # noqa: E402

LIBSYNC = os.path.join(ROOT, "build", "fixtures", "libsync")
LEDGER = os.path.join(LIBSYNC, "ledger")
LIBRARY = os.path.join(LIBSYNC, "libappsync.so")
PLAIN = os.path.join(ROOT, "build", "fixtures", "threads_pipe")

pytestmark = pytest.mark.skipif(not all(map(os.path.exists, (agent.LIBRARY, LEDGER, PLAIN))),
                                reason="make agent fixtures first")


def test_own_libraries_are_found_from_runpath_and_system_ones_left_out():
    assert objects.dependencies(LEDGER) == [os.path.realpath(LIBRARY)]
    everything = objects.dependencies(LEDGER, own_only=False)
    assert everything[0] == os.path.realpath(LIBRARY)
    assert any(os.path.basename(p) == "libc.so.6" and objects.is_system(p) for p in everything)
    assert objects.dependencies(PLAIN) == []          # libc only: nothing of its own
    assert objects.dependencies("/nonexistent") == []


def test_a_library_is_named_by_path_file_name_or_stem():
    for name in ("libappsync.so", "libappsync", "appsync", LIBRARY):
        assert objects.matches(LIBRARY, name), name
    assert objects.matches("/usr/lib/x86_64-linux-gnu/libc.so.6", "libc.so")
    for name in ("appsync.c", "libapp", "sync", "/tmp/libappsync.so"):
        assert not objects.matches(LIBRARY, name), name


def test_library_site_keys_carry_the_library_and_the_program_keys_stay():
    site = {"call_pc": 0x12b7, "callee": "pthread_join", "object": LIBRARY}
    key = yields.site_key(site)
    assert key & 0xFFFFFFFF == 0x12b7 and key >> 32 == yields.object_tag(LIBRARY) != 0
    assert yields.site_key({**site, "object": "/elsewhere/libappsync.so"}) == key
    assert yields.site_key({**site, "object": None}) == 0x12b7
    assert agent.site_line({**site, "return_pc": 0x12bc}) == \
        f"0x12b7 0x12bc {key:#x} libappsync.so\n"
    assert agent.site_line({**site, "return_pc": 0x12bc, "object": None}) == "0x12b7 0x12bc\n"


def _join_site():
    """The index's site of app_join's pthread_join call in libappsync.so."""
    data = json.loads(subprocess.run(
        [sys.executable, "-m", "tracerlib.dwarf_worker", LIBRARY], cwd=ROOT,
        capture_output=True, text=True, check=True).stdout)
    joins = [s for s in data["sites"] if s["callee"] == "pthread_join"]
    assert len(joins) == 1 and joins[0]["caller"] == "app_join", joins
    return {**joins[0], "object": LIBRARY}


@pytest.mark.parametrize("listed,points", [("library", 4), ("program", 0), ("other", 0)])
def test_agent_matches_a_library_site_by_its_object(listed, points, tmp_path):
    """ledger joins 4 threads, each through app_join's pthread_join in libappsync.so. Listed
    as that library's site, the 4 calls are yield points (all injected at probability 1, all
    counted as library injections); the same file address listed as the program's, or as
    another library's, matches no call."""
    site = _join_site()
    line = agent.site_line(site)
    if listed == "program":
        line = agent.site_line({**site, "object": None})
    elif listed == "other":
        line = line.replace("libappsync.so", "libother.so")
    sites = tmp_path / "sites"
    sites.write_text("# one site\n" + line)
    path = f"/dev/shm/tracer-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    ring = _core.SharedRing.create(path, cap=10, budget=1000, payload=0)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACER_")}
        env.update(LD_PRELOAD=agent.LIBRARY, TRACER_RING=path, TRACER_YIELD="3:1.0:sleep:10",
                   TRACER_YIELD_CLASSES="proc", TRACER_YIELD_SITES=str(sites))
        p = subprocess.run([LEDGER], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode in (0, 1), p.stderr
        st = ring.stats()
        assert st["yield_points"] == points and st["injected"] == points, st
        assert ring.injected_lib == points
    finally:
        ring.unlink()
