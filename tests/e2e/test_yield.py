"""End-to-end tests of yield injection, the call-site index and the hunt (issue 5), with the
real gdb and gdb/tracer.py in batch mode:

- `tracer sites` lists exactly the calls to catalogue functions that the fixture's C source
  makes (scanned here from the source, independently of the DWARF), at -O0 and -O2, and each
  address is a `call` to that function in the binary (objdump);
- bad input is one `tracer:` line and gdb carries on;
- `tracer yield off` leaves no breakpoint at any site, and the next run has no yields;
- yields are really injected (a program timing its own calls sees the sleeps), the program's
  IPC is unchanged, and the same seed makes the same decisions;
- `tracer hunt` finds a real bug, keeps one report, and its printed replay command replays it;
  on a program whose failure depends on the decisions alone, the replay is exact.

Small programs that the fixtures do not cover (a timing probe, two compilation units, a
program without DWARF, -O2 builds of the bug fixtures) are compiled into a temporary
directory.
"""
import collections
import itertools
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

import controller
from checks import assert_events_match, assert_exited, assert_report, validate
from controller import collect, run_gdb
from harness import (BUG_SRC, DELAYS_C, build_c, REPO, bug, compile_c, fixture_path, hunt_found,
                     kill_leftovers)

sys.path.insert(0, str(REPO))
from tracerlib import _core  # noqa: E402  (the catalogue: what `tracer sites` looks for)

CATALOGUE = [c["name"] for c in _core.catalogue()]
CLASS_OF = {c["name"]: c["class"] for c in _core.catalogue()}
BIG = {"cap": 10000}
_seq = itertools.count()


# --------------------------------------------------------------------------- programs

MOD_MAIN_C = r"""
#include <pthread.h>
#include <unistd.h>

void helper(int fd);
static pthread_mutex_t big = PTHREAD_MUTEX_INITIALIZER;

int main(void)
{
	pthread_mutex_lock(&big);
	helper(1);
	pthread_mutex_unlock(&big);
	return 0;
}
"""

MOD_HELPER_C = r"""
#include <pthread.h>
#include <unistd.h>

static pthread_mutex_t small = PTHREAD_MUTEX_INITIALIZER;

void helper(int fd)
{
	pthread_mutex_lock(&small);
	(void)!write(fd, "", 0);
	pthread_mutex_unlock(&small);
}
"""


@pytest.fixture(scope="module")
def progs(tmp_path_factory):
    d = tmp_path_factory.mktemp("yield-progs")
    (d / "mod_main.c").write_text(MOD_MAIN_C)
    (d / "mod_helper.c").write_text(MOD_HELPER_C)
    p = {name: bug(name) for name in ("lock_order", "send_before_ready", "check_then_act")}
    for name in ("lock_order", "send_before_ready"):
        p[f"{name}-O2"] = compile_c(d / f"{name}-O2", [BUG_SRC / f"{name}.c"],
                              ["-O2", "-g", "-pthread"])
    p["nodebug"] = compile_c(d / "lock_order-nodebug", [BUG_SRC / "lock_order.c"], ["-O0", "-pthread"])
    p["delays"] = build_c(DELAYS_C, "delays", d)
    p["twomod"] = compile_c(d / "twomod", [d / "mod_main.c", d / "mod_helper.c"],
                      ["-O0", "-g", "-pthread"])
    p["dir"] = d
    return p


@pytest.fixture(scope="module")
def delays(progs):
    return progs["delays"]


def gdb(program, *commands, tmp, args=(), timeout=60, **kw):
    """gdb -batch with the tracer and these -ex commands, no `tracer run` unless asked."""
    kw.setdefault("run_command", None)
    kw.setdefault("report", None)
    return run_gdb(program, args, commands=commands, tmp=tmp / f"gdb{next(_seq)}",
                   timeout=timeout, **kw)


# --------------------------------------------------------------------------- the sites table

_STRIP = re.compile(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)
_TOKEN = re.compile(r"[A-Za-z_]\w*|->|[{}();.]")


def source_calls(path, names=CATALOGUE):
    """[(caller, callee, file, line)] of every call to one of `names` in a C file and the
    local headers it includes (`#include "NAME"`, such as the bug fixtures' watchdog.h), and
    the set of functions defined there, by scanning the text: comments, strings and
    preprocessor lines removed, functions found as the last `NAME(` at file level before a
    `{`."""
    path = Path(path)
    calls, functions = _calls_in_text(path, names)
    for header in re.findall(r'(?m)^[ \t]*#[ \t]*include[ \t]+"([^"]+)"', path.read_text()):
        more, defined = source_calls(path.parent / header, names)
        calls += more
        functions |= defined
    return calls, functions


def _calls_in_text(path, names):
    text = Path(path).read_text()
    text = _STRIP.sub(lambda m: "\n" * m.group(0).count("\n") if m.group(0)[0] == "/"
                      else '""', text)
    text = re.sub(r"(?m)^[ \t]*#.*$", "", text)
    calls, functions = [], set()
    brace = paren = 0
    pending = current = prev = None
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        line = text.count("\n", 0, m.start()) + 1
        if tok == "(":
            paren += 1
        elif tok == ")":
            paren -= 1
        elif tok == "{":
            if brace == 0 and pending:
                current = pending
                functions.add(current)
            brace += 1
        elif tok == "}":
            brace -= 1
            if brace == 0:
                current = pending = None
        elif tok == ";" and brace == 0:
            pending = None
        elif re.match(r"\s*\(", text[m.end():]):         # NAME(
            if brace == 0 and paren == 0:
                pending = tok
            elif brace > 0 and tok in names and prev not in (".", "->"):
                calls.append((current, tok, Path(path).name, line))
        prev = tok
    return calls, functions


_ROW = re.compile(r"^(\S+)\s+(\S+)\s+(\S+):(\d+)\s+(0x[0-9a-f]+)(?:\s+(\S+))?$")


def sites_rows(output, library=False):
    """The `tracer sites` table as [(caller, callee, file, line, address)], checked against
    its closing count; with library=True each row ends with its library (None for the
    program's own code)."""
    lines = output.splitlines()
    head = [i for i, l in enumerate(lines)
            if re.match(r"^caller\s+callee\s+file:line\s+address(\s+library)?$", l)]
    assert len(head) == 1, f"no (or several) sites tables in:\n{output}"
    rows = []
    for l in lines[head[0] + 1:]:
        m = re.match(r"^(\d+) call sites$", l)
        if m:
            assert int(m.group(1)) == len(rows), f"count line {l!r} after {len(rows)} rows"
            return rows
        r = _ROW.match(l)
        assert r, f"unreadable sites row {l!r} in:\n{output}"
        row = (r[1], r[2], r[3], int(r[4]), int(r[5], 16))
        rows.append(row + (r[6],) if library else row)
    raise AssertionError(f"no 'N call sites' line after the table:\n{output}")


def rows_calls(rows):
    """The `tracer sites` rows as source_calls gives calls: (caller, callee, file, line)."""
    return [r[:4] for r in rows]


def sites_of(program, tmp, *options):
    run = gdb(program, "tracer sites " + " ".join(options), tmp=tmp)
    run.debugger.assert_sane(run)
    assert run.returncode == 0, run.describe()
    return sites_rows(run.stdout)


def call_instructions(program):
    """{address: instruction text} of every call/jmp in the binary's code."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(program)],
                         capture_output=True, text=True, check=True).stdout
    insns = {}
    for m in re.finditer(r"(?m)^\s+([0-9a-f]+):\s+((?:call|jmp)\S*\s+.*)$", out):
        insns[int(m.group(1), 16)] = m.group(2)
    return insns


def assert_calls_in_binary(program, rows):
    insns = call_instructions(program)
    bad = [r for r in rows
           if not re.match(r"call\s", insns.get(r[4], "")) or f"<{r[1]}@plt>" not in insns[r[4]]]
    assert not bad, "sites whose address is not a call to the callee:\n" + "\n".join(
        f"  {r}: {insns.get(r[4], 'no call/jmp instruction there')}" for r in bad)


@pytest.mark.parametrize("name", ["lock_order", "send_before_ready"])
def test_sites_match_source_O0(name, progs, tmp_path, tracer):
    """-O0 (no DW_TAG_call_site: found in the code): exactly the source's calls, each with
    its caller, file and line, at an address that is a call to it."""
    want, _ = source_calls(BUG_SRC / f"{name}.c")
    assert len(want) >= 7, want
    rows = sites_of(progs[name], tmp_path)
    got = collections.Counter(rows_calls(rows))
    assert got == collections.Counter(want), (
        f"sites differ from the source's calls\n  only in the source: "
        f"{sorted((collections.Counter(want) - got).elements())}\n  only in `tracer sites`: "
        f"{sorted((got - collections.Counter(want)).elements())}")
    assert_calls_in_binary(progs[name], rows)


@pytest.mark.parametrize("name", ["lock_order", "send_before_ready"])
def test_sites_match_source_O2(name, progs, tmp_path, tracer):
    """-O2 (gcc's call-site DWARF, static helpers inlined): every call line of the source and
    no other; callers are the source's functions that remain after inlining."""
    want, functions = source_calls(BUG_SRC / f"{name}.c")
    rows = sites_of(progs[f"{name}-O2"], tmp_path)
    assert {c[1:] for c in want} == {r[1:] for r in rows_calls(rows)}, (sorted(want), rows)
    assert {r[0] for r in rows} <= functions, rows
    assert len({r[4] for r in rows}) == len(rows), "one row per call instruction"
    assert_calls_in_binary(progs[f"{name}-O2"], rows)


def test_sites_filters(progs, tmp_path, tracer):
    """--class, --function (one or several), --module by name and by path suffix, --app."""
    prog = progs["lock_order"]
    all_rows = sites_of(prog, tmp_path)
    assert sites_of(prog, tmp_path, "--app") == all_rows
    assert sites_of(prog, tmp_path, "--module", "lock_order.c") == all_rows
    assert sites_of(prog, tmp_path, "--module", "bugs/lock_order.c") == all_rows
    for cls in ("sync", "proc", "send"):
        rows = sites_of(prog, tmp_path, "--class", cls)
        assert rows == [r for r in all_rows if CLASS_OF[r[1]] == cls], (cls, rows)
    assert {r[1] for r in sites_of(prog, tmp_path, "--class", "sync")} == {
        "pthread_mutex_lock", "pthread_mutex_unlock"}
    assert sites_of(prog, tmp_path, "--class", "recv") == []
    rows = sites_of(prog, tmp_path, "--function", "pthread_mutex_lock")
    want, _ = source_calls(BUG_SRC / "lock_order.c")      # lines from the source, not pinned
    assert rows_calls(rows) == [c for c in want if c[1] == "pthread_mutex_lock"], (want, rows)
    assert [c[0] for c in rows_calls(rows)] == ["transfer", "transfer"], rows
    rows = sites_of(prog, tmp_path, "--function", "pthread_create", "pthread_join")
    assert rows_calls(rows) == [c for c in want if c[1] in ("pthread_create", "pthread_join")]
    assert [r[1] for r in rows] == ["pthread_create", "pthread_join"], rows


def test_sites_module_selects_one_unit(progs, tmp_path, tracer):
    """A program of two compilation units: --module picks one unit's calls only."""
    prog, d = progs["twomod"], progs["dir"]
    helper, _ = source_calls(d / "mod_helper.c")
    main, _ = source_calls(d / "mod_main.c")
    rows = sites_of(prog, tmp_path, "--module", "mod_helper.c")
    assert sorted(rows_calls(rows)) == sorted(helper)
    rows = sites_of(prog, tmp_path, "--module", "mod_main.c", "--class", "sync")
    assert sorted(rows_calls(rows)) == sorted(main)
    assert len(sites_of(prog, tmp_path)) == len(helper) + len(main)


# --------------------------------------------------------------------------- bad input

def assert_one_line_error(run, *fragments):
    """The failing command printed exactly one line, `tracer: ...` holding every fragment;
    gdb went on to the next command (a `tracer yield status` saying yields are off)."""
    run.debugger.assert_sane(run)
    err = [l for l in run.stderr.splitlines() if l.strip()]
    assert len(err) == 1 and err[0].startswith("tracer: "), (
        "expected one `tracer:` error line\n" + run.describe())
    for f in fragments:
        assert f in err[0], f"{f!r} not in the error {err[0]!r}"
    assert "tracer: yields off" in run.stdout, run.describe()
    assert run.returncode == 0, "gdb did not carry on after the error\n" + run.describe()
    return err[0]


BAD = [
    # (program key or None, command, fragments of the error)
    ("lock_order", "tracer sites --module nosuch.c",
     ["no module 'nosuch.c'", "lock_order.c"]),
    ("lock_order", "tracer yield on --module nosuch.c",
     ["no module 'nosuch.c'", "lock_order.c"]),
    ("twomod", "tracer sites --module .c", ["ambiguous", "mod_main.c", "mod_helper.c"]),
    ("lock_order", "tracer sites --function nosuch",
     ["nosuch", "pthread_mutex_lock", "pthread_create", "write"]),
    ("lock_order", "tracer yield on --function nosuch pthread_mutex_lock",
     ["nosuch", "pthread_mutex_lock", "pthread_join"]),
    ("lock_order", "tracer yield on --probability 1.5", ["probability", "0", "1", "1.5"]),
    ("lock_order", "tracer yield on --probability -0.1", ["probability", "-0.1"]),
    ("lock_order", "tracer yield on --probability nan", ["probability"]),
    ("lock_order", "tracer yield on --probability abc", ["probability", "abc"]),
    ("lock_order", "tracer yield on --strategy bogus", ["strategy", "bogus"]),
    ("lock_order", "tracer yield on --strategy sleep:0", ["strategy", "sleep:0"]),
    ("lock_order", "tracer yield on --strategy sleep:", ["strategy"]),
    ("lock_order", "tracer yield on --seed -1", ["seed"]),
    ("lock_order", "tracer yield on --class nosuch", ["class", "nosuch"]),
    ("lock_order", "tracer yield on --class recv", ["no call site matches"]),
    ("lock_order", "tracer sites --module lock_order.c --app", ["--app", "--module"]),
    ("lock_order", "tracer hunt --runs 0", ["runs"]),
    ("lock_order", "tracer yield off", ["not on"]),
    (None, "tracer sites", ["no program"]),
    (None, "tracer yield on", ["no program"]),
    (None, "tracer yield on --app --probability 1", ["no program"]),
    (None, "tracer hunt --runs 2", ["no program"]),
    ("nodebug", "tracer yield on --module x", ["DWARF", "-g"]),
    ("nodebug", "tracer sites --module lock_order.c", ["DWARF", "-g"]),
]


@pytest.mark.parametrize("key,command,fragments", BAD, ids=[b[1] + (" (no program)" if b[0]
                                                                    is None else "")
                                                             for b in BAD])
def test_bad_input(key, command, fragments, progs, tmp_path, tracer):
    run = gdb(progs[key] if key else None, command, "tracer yield status", tmp=tmp_path)
    assert_one_line_error(run, *fragments)
    assert not run.reports


def test_yield_on_before_program_then_file(progs, tmp_path, tracer):
    """Yields asked before a program is loaded fail; after `file PROG` they work."""
    run = gdb(None, "tracer yield on", f"file {progs['lock_order']}", "tracer yield on",
              "tracer yield status", tmp=tmp_path)
    run.debugger.assert_sane(run)
    err = [l for l in run.stderr.splitlines() if l.strip()]
    assert len(err) == 1 and err[0].startswith("tracer: ") and "no program" in err[0], (
        run.describe())
    assert re.search(r"tracer: yields on at 7 call sites", run.stdout), run.describe()



def test_no_dwarf_sites_say_so(progs, tmp_path, tracer):
    """A program without DWARF: --module is refused (checked in test_bad_input). Whatever
    `tracer sites` lists, it is either call sites or a clear word about the missing debug
    info, never a silent empty table."""
    run = gdb(progs["nodebug"], "tracer sites", tmp=tmp_path)
    run.debugger.assert_sane(run)
    entries = re.findall(r"^\(any\)\s+(\S+)\s+-\s+function entry$", run.stdout, re.M)
    assert {"pthread_mutex_lock", "pthread_mutex_unlock", "pthread_create"} <= set(entries), (
        run.describe())
    assert re.search(rf"^{len(entries)} functions: the program has no DWARF", run.stdout,
                     re.M), ("`tracer sites` on a program without DWARF does not say why it "
                             "lists functions\n" + run.describe())


def test_no_dwarf_app_yields(progs, tmp_path, tracer):
    """A program without DWARF (but with its symbol table): `yield on --app` either works
    (the calls found in the code, yields injected) or says clearly that there is no debug
    info; it must not blame the selection."""
    run = gdb(progs["nodebug"], "tracer yield on --app --probability 1 --seed 3",
              tmp=tmp_path, run_command="tracer run", report="always", timeout=60)
    run.debugger.assert_sane(run)
    m = re.search(r"tracer: yields on at (\d+) functions \(no DWARF", run.stdout)
    if m:   # the fallback: at the entry of the called functions themselves, said plainly
        assert int(m.group(1)) > 0, run.describe()
        y = run.report["yield"]
        assert y["enabled"] and y["injected"] > 0 and y["sites"] == int(m.group(1)), y
    else:
        err = [l for l in run.stderr.splitlines() if l.startswith("tracer: ")]
        assert err and re.search(r"DWARF|debug info|-g\b", err[0]), (
            "`tracer yield on --app` on a program without DWARF neither works nor says "
            "that debug info is missing\n" + run.describe())


# --------------------------------------------------------------------------- yield off

_BP = re.compile(r"^-\d+\.\d+\s+\S+\s+(0x[0-9a-f]+)", re.M)


def bp_addresses(text):
    """Addresses of the breakpoint locations `maint info breakpoints` lists (N.M lines)."""
    return [int(a, 16) for a in _BP.findall(text)]


def test_yield_off_leaves_no_site(progs, tmp_path, tracer):
    """yield on, a run with yields (forked child included), yield off: `maint info
    breakpoints` shows nothing at any site address; the next run has yields disabled and
    injected 0, and the program's events are still exact."""
    prog = fixture_path("pipe_pingpong")
    sites = [r[4] for r in sites_of(prog, tmp_path)]
    mark = "echo ===\\n"
    run = gdb(prog, "tracer yield on --probability 1 --seed 3", tmp=tmp_path, args=["3"],
              settings=BIG, report="always", run_command="tracer run",
              after=["maint info breakpoints", mark, "tracer yield off", mark,
                     "maint info breakpoints", mark, "tracer yield status", mark, "tracer run",
                     mark, "maint info breakpoints"], timeout=90)
    run.debugger.assert_sane(run)
    parts = run.stdout.split("===\n")
    assert len(parts) == 6, run.describe()
    before, off, after, status, _, after_run = parts
    addrs = set(bp_addresses(before))
    bases = {a - s for a in addrs for s in sites}
    base = [b for b in bases if all(s + b in addrs for s in sites)]
    assert base, (f"the sites {[hex(s) for s in sites]} are not all among the breakpoint "
                  f"locations before `yield off`:\n{before}")
    where = {s + base[0] for s in sites}
    assert "no site left" in off, off
    for label, text in (("after yield off", after), ("after the next run", after_run)):
        left = where & set(bp_addresses(text))
        assert not left, f"{label}: breakpoints still at sites {sorted(map(hex, left))}:\n{text}"
    assert "tracer: yields off" in status
    assert len(run.reports) == 2, run.describe()
    on = [r for r in run.reports if r["yield"]["enabled"]]
    off_rep = [r for r in run.reports if not r["yield"]["enabled"]]
    assert len(on) == 1 and len(off_rep) == 1, [r["yield"] for r in run.reports]
    assert on[0]["yield"]["injected"] > 0, on[0]["yield"]
    assert off_rep[0]["yield"]["injected"] == 0 and off_rep[0]["yield"]["sites"] == 0, (
        off_rep[0]["yield"])
    assert off_rep[0]["stop"]["reason"] == "exit" and off_rep[0]["stop"]["status"] == 0
    # Both runs wrote their expectations into the same file: the second run is the suffix.
    assert_events_match(off_rep[0], run.expectations[len(run.expectations) // 2:])


# --------------------------------------------------------------------------- injection

def site_count(debugger, program, tmp):
    """The `N call sites` line of `tracer sites` (the table's rows are checked under gdb by
    sites_rows)."""
    run = controller.run(debugger, program, run_command="tracer sites", report=None, tmp=tmp)
    debugger.assert_sane(run)
    m = re.search(r"^(\d+) call sites$", run.stdout, re.M)
    assert m, run.describe()
    return int(m.group(1))


def test_yields_injected_threads_pipe(debugger, tmp_path):
    """Probability 1, seed 7, on four threads sharing a pipe under a mutex: the report says
    yields were on (seed, strategy, probability, sites), many were injected, and every thread's
    IPC is exactly what the program did."""
    prog = fixture_path("threads_pipe")
    nsites = site_count(debugger, prog, tmp_path / "sites")
    run = controller.run(debugger, prog, ["5"], settings=BIG, tmp=tmp_path / "run",
                         commands=["tracer yield on --probability 1 --seed 7"], timeout=90)
    rep = assert_report(run, prog)
    assert run.returncode == 0, run.describe()
    y = rep["yield"]
    assert y["enabled"] is True and y["seed"] == 7 and y["probability"] == 1, y
    assert y["strategy"] == "sleep:1000" and y["sites"] == nsites, y
    # 4 threads x 5 rounds x (write, read, lock, unlock), plus the fixture's own writes.
    assert y["injected"] >= 80, y
    assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == 0, rep["stop"]
    assert "FIXTURE-FAIL" not in run.output, run.describe()
    assert_events_match(rep, run.expectations)
    assert run.report_paths[0].name.endswith("-s7.json"), run.report_paths


@pytest.mark.parametrize("opt", ["O0", "O2"])
def test_yield_strategy_yield(debugger, opt, tmp_path):
    """--strategy yield (sched_yield) on the same program: recorded, injected, events exact."""
    prog = fixture_path("threads_pipe", opt)
    run = controller.run(debugger, prog, ["3"], settings=BIG, tmp=tmp_path,
                         commands=["tracer yield on --probability 1 --seed 11 --strategy yield"],
                         timeout=90)
    rep = assert_report(run, prog)
    assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == 0, rep["stop"]
    y = rep["yield"]
    assert y["enabled"] and y["strategy"] == "yield" and y["seed"] == 11 and y["injected"] > 0
    assert_events_match(rep, run.expectations)


def durations(path):
    return [int(x) for x in Path(path).read_text().split()]


def mismatches(a, b, tol):
    """How many calls' durations differ by more than tol (lists of unequal length: all)."""
    if len(a) != len(b):
        return max(len(a), len(b))
    return sum(abs(x - y) > tol for x, y in zip(a, b))


def test_sleeps_really_happen(debugger, delays, tmp_path):
    """A program timing its own pthread_mutex_lock calls: with probability 1 and sleeps of up
    to 100 ms, every call is injected (injected == calls) and the calls take ~50 ms on average;
    with probability 0 (the same breakpoint stops, no insertion) they stay fast."""
    n, total = 12, {}
    for p in ("1", "0"):
        out = tmp_path / f"d{p}.txt"
        run = controller.run(debugger, delays, [out, n, 0], tmp=tmp_path / p, timeout=60,
                             commands=[f"tracer yield on --function pthread_mutex_lock "
                                       f"--probability {p} --seed 7 --strategy sleep:100000"])
        rep = assert_report(run, delays)
        assert_exited(run, rep)
        y = rep["yield"]
        assert y["enabled"] and y["sites"] == 1 and y["strategy"] == "sleep:100000", y
        assert y["injected"] == (n if p == "1" else 0), y
        d = durations(out)
        assert len(d) == n
        total[p] = sum(d)
    # 12 uniform draws in 1..100000 us: a sum under 100 ms has probability ~2e-9.
    assert total["1"] > 100_000, total
    assert total["0"] < 100_000, total


def test_same_seed_same_decisions_pingpong(tmp_path, tracer):
    """pipe_pingpong (parent and child, each one thread): the same seed injects the same
    number of yields out of the same number of decisions; the events stay exact."""
    injected = []
    for i in range(2):
        run = run_gdb(fixture_path("pipe_pingpong"), ["5"], settings=BIG,
                      tmp=tmp_path / f"r{i}", after=["tracer yield status"],
                      commands=["tracer yield on --seed 5 --probability 0.5"], timeout=90)
        run.debugger.assert_sane(run)
        assert run.returncode == 0, run.describe()
        assert_events_match(run.report, run.expectations)
        y = run.report["yield"]
        assert y["enabled"] and y["seed"] == 5 and y["probability"] == 0.5, y
        m = re.search(r"(\d+) injected of (\d+) decisions", run.stdout)
        assert m and int(m.group(1)) == y["injected"], run.describe()
        injected.append((y["injected"], int(m.group(2))))
    assert injected[0] == injected[1], injected
    assert 0 < injected[0][0] < injected[0][1], injected


def test_same_seed_same_sleeps(progs, tmp_path, tracer):
    """The decisions AND the sleep lengths come from the seed: two runs with seed 5 see the
    same per-call delays (within scheduling noise); seed 6 sees different ones."""
    prog, n, tol = progs["delays"], 12, 10000
    runs = {}
    for i, seed in enumerate((5, 5, 6)):
        out = tmp_path / f"d{i}.txt"
        run = gdb(prog, f"tracer yield on --function pthread_mutex_lock --probability 0.5 "
                        f"--seed {seed} --strategy sleep:100000", tmp=tmp_path, args=[out, n, 0],
                  run_command="tracer run", timeout=60)
        run.debugger.assert_sane(run)
        assert run.returncode == 0, run.describe()
        runs[i] = durations(out)
    # A busy machine can stall one call by a few ms: one outlier is tolerated. Seeds 5 and 6
    # differ at 8 of the 12 calls.
    assert mismatches(runs[0], runs[1], tol) <= 1, (
        f"seed 5 twice, per-call delays (us) differ:\n{runs[0]}\n{runs[1]}")
    assert sum(d > tol for d in runs[0]) >= 3, f"seed 5 injected few long sleeps: {runs[0]}"
    assert mismatches(runs[0], runs[2], tol) >= 3, (
        f"seeds 5 and 6 gave the same delays:\n{runs[0]}\n{runs[2]}")


# --------------------------------------------------------------------------- hunt

_PROGRESS = re.compile(r"^hunt: run (\d+) of (\d+), seed (\d+)(?: \(\w+\))?: (passed|FAILED)", re.M)


def progress(run):
    return [(int(a), int(b), int(c), d) for a, b, c, d in _PROGRESS.findall(run.stdout)]


def replay_command(run):
    lines = run.stdout.splitlines()
    i = [k for k, l in enumerate(lines) if l.startswith("hunt: replay it with")]
    assert len(i) == 1 and i[0] + 1 < len(lines), "no replay command\n" + run.describe()
    return lines[i[0] + 1].strip()


def run_replay(command, tmp, timeout=120):
    """Runs a printed replay command with its store moved to tmp/store (an extra
    `-ex 'set tracer store DIR'` before `-ex 'tracer run'`); returns a GdbRun."""
    argv = shlex.split(command)
    k = [j for j in range(len(argv) - 1) if argv[j] == "-ex" and argv[j + 1] == "tracer run"]
    assert len(k) == 1, f"no -ex 'tracer run' in the replay command {argv}"
    store = tmp / "store"
    argv[k[0]:k[0]] = ["-ex", f"set tracer store {store}"]
    tmp.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(tmp / "gdb.stdout", "wb") as out, open(tmp / "gdb.stderr", "wb") as err:
        proc = subprocess.Popen(argv, cwd=tmp, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            raise AssertionError(f"replay did not finish within {timeout} s: {command}")
        finally:
            kill_leftovers(tmp)
    return collect("gdb", argv, rc, tmp, store, time.monotonic() - t0)


def assert_hunt_failed(run, runs, first):
    """gdb exit 1, progress lines run 1..k with seeds first..; a report for each FAILED run
    (named in its line). The hunt ends with a find its confirming runs brought back each time
    (its line the last) or, when none was, after all N runs with the one that came back most
    often. Returns that find's seed and report (yield.seed is the seed)."""
    run.debugger.assert_sane(run)
    steps = progress(run)
    assert steps, run.describe()
    assert [s[0] for s in steps] == list(range(1, len(steps) + 1)), steps
    assert all(s[1] == runs and s[2] == first + s[0] - 1 for s in steps), steps
    assert run.returncode == 1, run.describe()
    found = hunt_found(run.stderr, run.report_paths)
    assert found and found[2], run.describe()
    seed, confirmed, path = found
    failed = [s[2] for s in steps if s[3] == "FAILED"]
    assert seed in failed, (seed, steps)
    if confirmed:
        assert steps[-1][2:] == (seed, "FAILED"), steps
    else:
        assert len(steps) == runs, steps
    assert len(run.report_paths) == len(failed), (run.report_paths, failed)
    rep = run.reports[run.report_paths.index(path)]
    validate(rep)
    assert rep["yield"]["enabled"] and rep["yield"]["seed"] == seed, rep["yield"]
    failed_line = [l for l in run.stdout.splitlines() if f"seed {seed}" in l and "FAILED" in l][0]
    assert str(path) in failed_line, (failed_line, path)
    return seed, rep


def assert_same_failure(replay, rep, seed):
    replay.debugger.assert_sane(replay)
    assert replay.returncode == 1, "the replay did not fail\n" + replay.describe()
    again = replay.report
    for k in ("reason", "signal", "status"):
        assert again["stop"][k] == rep["stop"][k], (again["stop"], rep["stop"])
    for k in ("enabled", "seed", "strategy", "probability", "sites"):
        assert again["yield"][k] == rep["yield"][k], (again["yield"], rep["yield"])
    assert again["yield"]["seed"] == seed


def test_hunt_finds_real_bug_and_replays(progs, tmp_path, tracer):
    """check_then_act (two clerks withdraw from one balance; never fails under gdb without
    yields): the hunt finds the overdraft, keeps one report, and its replay command fails the
    same way with the same seed."""
    run = gdb(progs["check_then_act"], "tracer hunt --runs 30 --seed 100 --timeout 60",
              tmp=tmp_path, timeout=240)
    seed, rep = assert_hunt_failed(run, 30, 100)
    assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == 1, rep["stop"]
    assert "balance -100" in run.stderr
    command = replay_command(run)
    assert f"--seed {seed}" in command and str(progs["check_then_act"]) in command, command
    replay = run_replay(command, tmp_path / "replay")
    assert_same_failure(replay, rep, seed)


def test_hunt_replay_is_exact(progs, tmp_path, tracer):
    """A program that fails exactly when a long sleep lands on its lock (so its outcome is a
    function of the seed's decisions): the hunt reports passes then a failure; the replay
    fails with the same per-call delays, and replaying a seed that passed passes. (The
    program takes no arguments here: see test_replay_command_keeps_arguments.)"""
    prog = progs["delays"]
    # Sleeps of up to 400 ms, a failure above 100 ms: a machine stalling a stopped thread
    # for 100 ms would be needed to fail a run without a long sleep.
    run = gdb(prog, "tracer yield on --function pthread_mutex_lock --probability 0.1 "
                    "--strategy sleep:400000",
              "tracer hunt --runs 30 --seed 100 --timeout 60", tmp=tmp_path, timeout=240)
    seed, rep = assert_hunt_failed(run, 30, 100)
    assert rep["stop"]["status"] == 1 and rep["yield"]["strategy"] == "sleep:400000", rep
    hunted = durations(run.tmp / "delays.txt")
    assert max(hunted) > 100000, hunted
    command = replay_command(run)
    assert "--function pthread_mutex_lock" in command and "--probability 0.1" in command
    replay = run_replay(command, tmp_path / "replay")
    assert_same_failure(replay, rep, seed)
    again = durations(replay.tmp / "delays.txt")
    assert mismatches(hunted, again, 10000) <= 1, (hunted, again)
    if seed > 100:                       # a seed the hunt saw pass passes again
        passing = command.replace(f"--seed {seed}", f"--seed {seed - 1}")
        replay = run_replay(passing, tmp_path / "replay-pass")
        replay.debugger.assert_sane(replay)
        assert replay.returncode == 0 and not replay.reports, replay.describe()
        assert max(durations(replay.tmp / "delays.txt")) <= 100000


def test_replay_command_keeps_arguments(progs, tmp_path, tracer):
    """The printed replay command runs the program with the arguments the hunt gave it."""
    out = tmp_path / "out.txt"
    run = gdb(progs["delays"], "tracer yield on --function pthread_mutex_lock --probability 1",
              "tracer hunt --runs 1 --seed 3 --timeout 60", tmp=tmp_path, args=[out, 2, 1],
              timeout=120)
    seed, rep = assert_hunt_failed(run, 1, 3)
    argv = shlex.split(replay_command(run))
    assert argv[-4:] == [str(progs["delays"]), str(out), "2", "1"], argv
    replay = run_replay(replay_command(run), tmp_path / "replay")
    assert_same_failure(replay, rep, seed)


def test_hunt_without_failure(tmp_path, tracer):
    """3 runs of a correct program: 3 progress lines, no failure, gdb exit 0, no report."""
    run = gdb(fixture_path("pipe_pingpong"), "tracer hunt --runs 3 --seed 0 --timeout 60",
              tmp=tmp_path, args=["3"], timeout=120)
    run.debugger.assert_sane(run)
    assert run.returncode == 0, run.describe()
    assert progress(run) == [(i, 3, i - 1, "passed") for i in (1, 2, 3)], run.describe()
    assert "no failure in 3 runs" in run.output, run.describe()
    assert "replay" not in run.stdout
    assert not run.report_paths, run.report_paths
