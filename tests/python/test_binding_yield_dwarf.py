"""The DwarfIndex and YieldPolicy bindings, misuse included (from /usr/bin/python3)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import _core, _dwarf  # noqa: E402

SOURCE = """#include <pthread.h>
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
int main(void)
{
\tpthread_mutex_lock(&m);
\tpthread_mutex_unlock(&m);
\treturn 0;
}
"""


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    d = tmp_path_factory.mktemp("prog")
    (d / "m.c").write_text(SOURCE)
    subprocess.run(["gcc", "-g", "-O0", "-pthread", "-o", str(d / "m"), str(d / "m.c")],
                   check=True)
    return str(d / "m")


def test_sites_of_an_O0_program_come_from_the_code(program):
    ix = _dwarf.DwarfIndex(program)
    assert ix.has_debug_info and ix.units()[-1].endswith("m.c")
    sites = ix.sites(functions=["pthread_mutex_lock", "pthread_mutex_unlock"], scan=program)
    assert [(s["caller"], s["callee"], s["line"]) for s in sites] == [
        ("main", "pthread_mutex_lock", 5), ("main", "pthread_mutex_unlock", 6)]
    assert all(s["from_code"] and s["call_pc"] + 5 == s["return_pc"] for s in sites)
    where = ix.lookup(ix.function("main")["low_pc"])
    assert where["function"] == "main" and where["line"] == 4


def test_dwarf_misuse(tmp_path, program):
    with pytest.raises(FileNotFoundError):
        _dwarf.DwarfIndex(str(tmp_path / "missing"))
    text = tmp_path / "text"
    text.write_text("not an ELF file\n")
    with pytest.raises(ValueError):
        _dwarf.DwarfIndex(str(text))
    ix = _dwarf.DwarfIndex(program)
    with pytest.raises(LookupError, match="no module"):
        ix.sites(module="nope.c")
    with pytest.raises(TypeError):
        ix.sites(functions=[1, 2])
    assert ix.function("no_such_function") is None


def test_yield_policy_replays_per_thread_order():
    a = _core.YieldPolicy(seed=9, probability=0.5, strategy="sleep:500")
    b = _core.YieldPolicy(seed=9, probability=0.5, strategy="sleep:500")
    a.thread_seen(100, 100)
    b.thread_seen(200, 200)          # other pids and tids, same ordinals
    da = [a.decide(100, 100, 0x1234) for _ in range(50)]
    db = [b.decide(200, 200, 0x1234) for _ in range(50)]
    assert da == db and any(d is None for d in da) and any(d for d in da)
    assert all(d is None or 1 <= d <= 500 for d in da)
    assert a.info["injected"] == sum(d is not None for d in da)
    a.reseed(9)
    a.thread_seen(300, 300)
    assert [a.decide(300, 300, 0x1234) for _ in range(50)] == da


@pytest.mark.parametrize("kw", [{"probability": 1.5}, {"probability": -0.1},
                                {"probability": float("nan")}, {"strategy": "nap"},
                                {"strategy": "sleep:0"}, {"strategy": "sleep:99999999"}])
def test_yield_policy_misuse(kw):
    with pytest.raises(ValueError):
        _core.YieldPolicy(**kw)


def test_yield_strategy_yield_means_zero_microseconds():
    p = _core.YieldPolicy(seed=1, probability=1.0, strategy="yield")
    p.thread_seen(1, 1)
    assert p.decide(1, 1, 0) == 0 and p.info["strategy"] == "yield"


def test_core_keeps_libdwarf_out_of_the_debugger():
    """gdb links elfutils' libdw, whose dwarf_* symbols shadow libdwarf's: the extension the
    debuggers load must neither link nor load libdwarf/libelf. Only the worker imports _dwarf."""
    assert not hasattr(_core, "DwarfIndex")
    code = ("import sys; sys.path.insert(0, %r); from tracerlib import _core, yields\n"
            "maps = open('/proc/self/maps').read()\n"
            "print('libdwarf' in maps or 'libelf' in maps)") % ROOT
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    ldd = subprocess.run(["ldd", _core.__file__], capture_output=True, text=True, check=True)
    assert "libdwarf" not in ldd.stdout and "libelf" not in ldd.stdout
    assert "libdwarf" in subprocess.run(["ldd", _dwarf.__file__], capture_output=True,
                                        text=True, check=True).stdout
