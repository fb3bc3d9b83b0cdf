"""End-to-end tests of yield sites inside the program's own shared libraries (issue 13,
"Sites inside the program's own libraries"), with the real gdb and lldb-16, on
tests/fixtures/libsync: ledger, whose every lock and thread call is made by its own
libappsync.so (found next to it through RUNPATH $ORIGIN):

- `tracer sites` lists exactly the catalogue calls of the library's C source (caller, callee,
  line), each with the library's name, at an address that is a call to that function in the
  library (objdump); `--module` selects the library by name, or a compilation unit as before;
- yields at those sites are injected in both data planes under both debuggers, and the
  report's yield record counts them (`library_sites`, `library_injected`);
- a hunt finds the fixture's check-then-act bug and its seed replays, under gdb in both
  modes and under lldb; without the library's sites there is nothing to hunt with;
- a program without a library of its own keeps its table and messages as they were;
- a library the program dlopen()s, named by its path, gets its yields once it is loaded.
"""
import re
import subprocess

import pytest

import controller
from checks import validate
from harness import REPO, bug, compile_c, hunt_found
from test_yield import (CATALOGUE, assert_calls_in_binary, assert_hunt_failed,
                        assert_one_line_error, assert_same_failure, gdb, replay_command,
                        run_replay, sites_rows, source_calls)

LIBSYNC = REPO / "build" / "fixtures" / "libsync"
LEDGER = LIBSYNC / "ledger"
LIBRARY = LIBSYNC / "libappsync.so"
LIB_SRC = REPO / "tests" / "fixtures" / "libsync" / "appsync.c"
DEFAULT = {c for c in CATALOGUE}        # every class of the default selection is in it


@pytest.fixture(scope="module", autouse=True)
def ledger():
    """Built with the Makefile's own rule (the library, then the program against it)."""
    subprocess.run(["make", "-s", str(LEDGER.relative_to(REPO))], cwd=REPO, check=True,
                   capture_output=True)
    return LEDGER


def rows_of(output):
    """The calls table of `tracer sites`: [(caller, callee, file, line, address, library)]
    (library None for the program's own code), checked against its closing count."""
    return sites_rows(output, library=True)


def library_calls():
    """[(caller, callee, line)] of the library source's calls of the default classes."""
    calls, _ = source_calls(LIB_SRC)
    return sorted((caller, callee, line) for caller, callee, _file, line in calls
                  if callee in DEFAULT)


def sites(*options, tmp):
    run = gdb(LEDGER, "tracer sites " + " ".join(options), tmp=tmp)
    run.debugger.assert_sane(run)
    assert run.returncode == 0, run.describe()
    return rows_of(run.stdout)


def test_sites_lists_the_library_calls(tmp_path, tracer):
    """The program calls only its library; its sites are the library's calls, named by the
    library, each a call to that function in the library's code."""
    rows = sites(tmp=tmp_path)
    assert sorted((r[0], r[1], r[3]) for r in rows) == library_calls(), rows
    assert all(r[2] == "appsync.c" and r[5] == "libappsync.so" for r in rows), rows
    assert_calls_in_binary(LIBRARY, [r[:5] for r in rows])


@pytest.mark.parametrize("name", ["libappsync.so", "appsync", str(LIBRARY), "appsync.c"])
def test_module_names_the_library_or_its_unit(name, tmp_path, tracer):
    assert sorted((r[0], r[1], r[3]) for r in sites("--module", name, tmp=tmp_path)) == \
        library_calls()


def test_module_still_names_a_unit_of_the_program(tmp_path, tracer):
    """The program's own unit makes no catalogue call: an empty table, and `yield on` says
    no site matches (what every selection said before library sites)."""
    assert sites("--module", "ledger.c", tmp=tmp_path / "sites") == []
    run = gdb(LEDGER, "tracer yield on --module ledger.c", "tracer yield status",
              tmp=tmp_path / "on")
    assert_one_line_error(run, "no call site matches")


def test_unknown_module_names_units_and_libraries(tmp_path, tracer):
    run = gdb(LEDGER, "tracer sites --module nosuch", "tracer yield status", tmp=tmp_path)
    assert_one_line_error(run, "no module 'nosuch'", "ledger.c", "libappsync.so", "libc.so.6")


def test_program_without_own_library_unchanged(tmp_path, tracer):
    """check_then_act links libc only: no library column, no library word in yield on."""
    run = gdb(bug("check_then_act"), "tracer sites", "tracer yield on", tmp=tmp_path)
    assert run.returncode == 0, run.describe()
    rows = rows_of(run.stdout)
    assert rows and all(r[5] is None for r in rows), rows
    assert re.search(r"^caller\s+callee\s+file:line\s+address$", run.stdout, re.M)
    assert re.search(rf"yields on at {len(rows)} call sites, probability", run.stdout)


def test_yields_injected_at_library_sites(debugger, mode, tmp_path):
    """Probability 1 at app_spawn's pthread_create and app_join's pthread_join (4 rounds:
    8 calls): every one is a yield, at a library site, counted by the report in either data
    plane under either debugger."""
    run = controller.run(debugger, LEDGER, tmp=tmp_path, mode=mode, timeout=120,
                         commands=["tracer yield on --probability 1 --seed 3 "
                                   "--function pthread_create pthread_join"])
    debugger.assert_sane(run)
    rep = run.report
    assert run.returncode == (1 if rep["stop"]["status"] else 0), run.describe()
    validate(rep)
    # Sleeping at every spawn and join can open ledger's window itself (its bug: exit 1 in
    # the round it shows); a run that passes made all 8 calls.
    assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] in (0, 1), rep["stop"]
    y = rep["yield"]
    assert y["sites"] == 2 and y["library_sites"] == 2, y
    assert y["injected"] == y["library_injected"] >= 2, y
    assert y["injected"] == 8 or rep["stop"]["status"] == 1, y
    assert "(2 in libappsync.so)" in run.stdout, run.describe()


def test_without_yields_never_fails():
    """The fixture's window is not hit unperturbed: at most 1 of 100 plain runs (the main
    clerk is through its check-then-act, a few instructions, before the new thread starts;
    a loaded 2-core machine preempted it inside that window once in a clean-clone CI run)."""
    failed = [i for i in range(100)
              if subprocess.run([str(LEDGER)], capture_output=True, timeout=30).returncode]
    assert len(failed) <= 1, f"ledger failed plain in runs {failed}"


def assert_library_yields(record):
    """The find perturbed the library's sites: yields there, or, for a PCT find (the default
    mix's pct profile; its holds are not counted per site, docs/report.md), change points
    reached over sites that include the library's."""
    if record["strategy"].startswith("pct"):
        assert record["library_sites"] > 0 and record["changes_taken"] >= 1, record
    else:
        assert record["library_injected"] > 0, record


@pytest.mark.parametrize("mode", ["agent", "breakpoint"])
def test_hunt_finds_the_library_window_and_replays(mode, tmp_path, tracer):
    """Default hunt (whole program and its own libraries): the overdraft is found, through
    yields at the library's sites; the printed replay fails the same way with that seed."""
    run = gdb(LEDGER, f"set tracer mode {mode}", "tracer hunt --runs 30 --seed 100",
              tmp=tmp_path, timeout=240)
    seed, rep = assert_hunt_failed(run, 30, 100)
    assert rep["stop"]["status"] == 1 and "balance -100" in run.stderr, run.describe()
    assert_library_yields(rep["yield"])
    command = replay_command(run)
    assert f"--seed {seed}" in command and "--app" in command, command
    for k in range(3):      # the window is wide and timing-bound: one of 3 replays must fail
        replay = run_replay(command, tmp_path / f"replay{k}")
        if replay.returncode == 1:
            break
    assert_same_failure(replay, rep, seed)


def test_hunt_under_lldb(tmp_path, lldb_tracer):
    run = controller.run_lldb(LEDGER, tmp=tmp_path, timeout=240, report=None,
                              run_command="tracer hunt --runs 30 --seed 100")
    lldb_tracer.assert_sane(run)
    found = hunt_found(run.output, run.report_paths)
    assert found and found[2], run.describe()
    rep = run.reports[run.report_paths.index(found[2])]
    assert rep["stop"]["status"] == 1, rep["stop"]
    assert_library_yields(rep["yield"])


DLOPEN_C = r"""
/* Loads libappsync.so (argv[1]) with dlopen after start and joins 3 threads through it. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static void *idle(void *arg) { return arg; }

int main(int argc, char **argv)
{
	void *lib = argc > 1 ? dlopen(argv[1], RTLD_NOW) : NULL;
	int (*spawn)(pthread_t *, void *(*)(void *), void *);
	void (*join)(pthread_t);

	if (!lib)
		return 2;
	spawn = (int (*)(pthread_t *, void *(*)(void *), void *))dlsym(lib, "app_spawn");
	join = (void (*)(pthread_t))dlsym(lib, "app_join");
	for (int i = 0; i < 3; i++) {
		pthread_t t;

		if (!spawn || !join || spawn(&t, idle, NULL) != 0)
			return 3;
		join(t);
	}
	return 0;
}
"""


def test_dlopened_library_named_by_path(debugger, mode, tmp_path):
    """A library loaded by dlopen() is not the program's by default; named by its path, its
    sites get yields once it is loaded: 3 joins at probability 1, in either data plane."""
    src = tmp_path / "dlopener.c"
    src.write_text(DLOPEN_C)
    prog = compile_c(tmp_path / "dlopener", [src], ["-g", "-O0", "-pthread", "-ldl"])
    run = controller.run(debugger, prog, [str(LIBRARY)], tmp=tmp_path / "run", mode=mode,
                         timeout=120, commands=[f"tracer yield on --module {LIBRARY} "
                                                "--probability 1 --function pthread_join"])
    debugger.assert_sane(run)
    assert run.returncode == 0, run.describe()
    y = run.report["yield"]
    assert y["library_sites"] == 1 and y["library_injected"] == 3, y
