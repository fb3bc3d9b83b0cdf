"""Shared-access sites from a real program (gcc -O0 and -O2): the DWARF variables and their
sizes, the accesses the code scan finds, and which variables access.py calls shared; the
rules on made-up facts; the hot-site budget."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import _dwarf, access, yields  # noqa: E402
from tracerlib.dwarf_worker import shared_access  # noqa: E402

SOURCE = r"""#include <pthread.h>
extern int declared_first;
int declared_first = 1;                 /* a definition after an extern declaration */
static long table[10];                  /* written by main, read by workers */
static struct { int a; char b[6]; } pair;
static int main_only;                   /* main alone */
static int never_written = 7;           /* read by all, written by none */
static int via_helper;                  /* touched in a function the worker calls */
static int atomic_hits;

static void helper(void) { via_helper = via_helper + 1; }

static void *worker(void *arg)
{
	static int calls;                   /* a function static, the worker's alone */
	calls++;
	helper();
	__sync_fetch_and_add(&atomic_hits, 1);
	return (void *)(table[3] + pair.a + never_written + declared_first);
}

int main(void)
{
	pthread_t t[2];
	table[3] = 5;
	pair.a = 2;
	main_only = never_written;
	declared_first = 3;
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], 0, worker, 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], 0);
	return via_helper + main_only + atomic_hits;
}
"""

SHARED = {"table", "pair", "declared_first", "via_helper", "atomic_hits", "worker::calls"}


@pytest.fixture(scope="module", params=["-O0", "-O2"])
def program(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("access")
    (d / "a.c").write_text(SOURCE)
    out = d / f"a{request.param}"
    subprocess.run(["gcc", "-g", request.param, "-pthread", "-o", str(out), str(d / "a.c")],
                   check=True)
    return str(out)


def test_variables_and_sizes(program):
    sizes = {v["name"]: v["size"] for v in _dwarf.DwarfIndex(program).variables()}
    expected = {"declared_first": 4, "table": 80, "pair": 12, "via_helper": 4, "calls": 4}
    if "-O0" in program:        # -O2 may fold a variable away (main_only, never_written)
        expected.update(main_only=4, never_written=4, atomic_hits=4)
    assert {k: sizes.get(k) for k in expected} == expected, sizes


def test_shared_set(program):
    result = shared_access(program)
    found = {s["variable"] for s in result["sites"]}
    # -O2 keeps what the code really loads and stores; the rules are the same.
    assert found <= SHARED and {"table", "pair", "atomic_hits"} <= found, found
    assert "main_only" not in found and "never_written" not in found
    summary = result["summary"]
    assert summary["thread_starts"] == 1 and summary["starts_unseen"] == 0, summary
    assert summary["undecoded"] == 0, summary
    atomic = [s for s in result["sites"] if s["variable"] == "atomic_hits"
              and s["caller"] == "worker"]
    assert atomic and all(s["access"] == "read+write" for s in atomic), atomic
    writes = {s["caller"] for s in result["sites"] if s["variable"] == "table"
              and s["access"] == "write"}
    assert writes == {"main"}, result["sites"]


def fact(pc, addr, caller, rw="read"):
    return {"pc": pc, "addr": addr, "indexed": False, "access": rw, "caller": f"f{caller:x}",
            "caller_low_pc": caller, "module": "m.c", "file": "m.c", "line": pc}


def code(accesses, calls=(), threads=(), taken=()):
    return {"accesses": accesses, "calls": list(calls), "threads": list(threads),
            "taken": list(taken), "objects": [(0x900, 8, "sym_only@GLIBC")], "undecoded": 0,
            "truncated": False}


VARS = [{"name": "x", "addr": 0x100, "size": 8, "file": None, "line": 0, "function": None},
        {"name": "y", "addr": 0x108, "size": 4, "file": None, "line": 0, "function": None}]


def test_rules_two_entries_and_reachability():
    """main (0x10) writes x; thread start 0x20 calls 0x30, which reads x: shared. y is
    written by main only: not shared. An access inside a variable (x + 4) names it."""
    c = code([fact(1, 0x100, 0x10, "write"), fact(2, 0x104, 0x30), fact(3, 0x108, 0x10, "write")],
             calls=[(0x20, 9, 0x30)], threads=[(0x10, 5, 0x20)])
    sites, summary = access.shared_sites(c, VARS, 0x10)
    assert [(s["variable"], s["call_pc"]) for s in sites] == [("x", 1), ("x", 2)]
    assert summary["entries"] == 2 and summary["variables"] == 1


def test_rules_unseen_start_falls_back_on_taken_functions():
    """pthread_create with a start function the scan did not see: every function whose
    address is taken is an entry."""
    c = code([fact(1, 0x100, 0x10, "write"), fact(2, 0x100, 0x40)],
             threads=[(0x10, 5, 0)], taken=[(0x10, 4, 0x40)])
    sites, summary = access.shared_sites(c, VARS, 0x10)
    assert {s["call_pc"] for s in sites} == {1, 2} and summary["starts_unseen"] == 1
    alone, _ = access.shared_sites(code(c["accesses"], threads=[(0x10, 5, 0)]), VARS, 0x10)
    assert alone == []


def test_rules_read_only_and_symbol_names():
    """Data nobody writes is not shared; an address DWARF does not place takes the ELF
    symbol's name (its version suffix dropped)."""
    c = code([fact(1, 0x100, 0x20), fact(2, 0x900, 0x20, "read+write")],
             threads=[(0x10, 5, 0x20)])
    sites, _ = access.shared_sites(c, VARS, 0x10)
    assert [(s["variable"], s["access"]) for s in sites] == [("sym_only", "read+write")]


def test_hot_site_budget():
    b = yields.AccessBudget()
    verdicts = [b.hit("k") for _ in range(b.LIMIT)]
    decided = [i + 1 for i, v in enumerate(verdicts) if v == b.DECIDE]
    assert decided == [1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64, 128]
    assert verdicts[-1] == b.DISABLE and verdicts.count(b.DISABLE) == 1
    assert b.hit("other") == b.DECIDE
    b.disabled.add("k")
    assert b.new_run() and not b.new_run() and b.hit("k") == b.DECIDE
