"""End-to-end tests of the shared-access sites (issue 13, first part), with the real debuggers:

- `tracer sites --class access` lists exactly the accesses the fixtures' sources mark with
  `/* access: VARIABLE read|write */` (variable, line, read/write), each at an address whose
  instruction names that variable in objdump's disassembly;
- a hunt with `--class access` finds publish-before-init (a window with no call in it) within
  a bounded number of runs, under gdb and lldb in breakpoint mode and under gdb in agent mode
  (where the calls stay in the agent and only the access sites are breakpoints), and the seed
  replays to the same failure;
- a hot loop over a shared variable costs a bounded number of stops: its sites are disabled
  for the run and counted in the report and `tracer yield status`;
- `tracer yield off` leaves no breakpoint at an access site; an unknown class is one line;
- a hunt of 30 runs with access yields on a correct threaded program finds nothing.
"""
import re
import subprocess

import pytest

import controller
from checks import validate
from harness import BUG_SRC, bug, build_c, fixture_path
from test_yield import (assert_hunt_failed, assert_one_line_error, bp_addresses, gdb,
                        progress)

FIXTURES = ("publish_before_init", "lost_update_two_locks", "setters_checker", "ws_deque",
            "aba_stack", "twostage_100")
_MARK = re.compile(r"/\* access: (\w+) (read|write|read\+write) \*/")
_ROW = re.compile(r"^(\S+)\s+(\S+)\s+(read|write|read\+write)\s+(\S+):(\d+)\s+(0x[0-9a-f]+)$")


def marked_accesses(name):
    """{(variable, line, access)} from the fixture's `access:` comments."""
    found = set()
    for n, text in enumerate((BUG_SRC / f"{name}.c").read_text().splitlines(), 1):
        found |= {(m[0], n, m[1]) for m in _MARK.findall(text)}
    assert found, f"no access markers in {name}.c"
    return found


def access_rows(output):
    """The `tracer sites --class access` table: [(function, variable, access, file, line,
    address)], checked against its closing count."""
    lines = output.splitlines()
    head = [i for i, l in enumerate(lines)
            if re.match(r"^function\s+variable\s+access\s+file:line\s+address$", l)]
    assert len(head) == 1, f"no (or several) access tables in:\n{output}"
    rows = []
    for l in lines[head[0] + 1:]:
        m = re.match(r"^(\d+) shared-access sites$", l)
        if m:
            assert int(m.group(1)) == len(rows), f"count line {l!r} after {len(rows)} rows"
            return rows
        r = _ROW.match(l)
        assert r, f"unreadable row {l!r} in:\n{output}"
        rows.append((r[1], r[2], r[3], r[4], int(r[5]), int(r[6], 16)))
    raise AssertionError(f"no 'N shared-access sites' line:\n{output}")


def disassembly(program):
    """{address: instruction text with objdump's symbol comment}."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(program)],
                         capture_output=True, text=True, check=True).stdout
    return {int(m[1], 16): m[2] for m in re.finditer(r"(?m)^\s+([0-9a-f]+):\s+(.*)$", out)}


@pytest.mark.parametrize("name", FIXTURES)
def test_access_sites_match_source(name, tmp_path, tracer):
    prog = bug(name)
    run = gdb(prog, "tracer sites --class access", tmp=tmp_path)
    run.debugger.assert_sane(run)
    assert run.returncode == 0, run.describe()
    rows = access_rows(run.stdout)
    assert all(r[3] == f"{name}.c" for r in rows), rows
    assert {(r[1], r[4], r[2]) for r in rows} == marked_accesses(name), run.stdout
    insns = disassembly(prog)
    bad = [r for r in rows if f"<{r[1]}>" not in insns.get(r[5], "")]
    assert not bad, "sites whose instruction does not name the variable:\n" + "\n".join(
        f"  {r}: {insns.get(r[5], 'no instruction there')}" for r in bad)


def test_access_sites_leave_private_data_out(tmp_path, tracer):
    """check_then_act shares only a stack struct handed to the thread (not found: no
    global); threads_pipe shares `rounds` (written by main, read by the workers)."""
    run = gdb(bug("check_then_act"), "tracer sites --class access", tmp=tmp_path)
    assert access_rows(run.stdout) == [], run.stdout
    run = gdb(fixture_path("threads_pipe"), "tracer sites --class access", tmp=tmp_path)
    rows = access_rows(run.stdout)
    assert {r[1] for r in rows} == {"rounds"}, run.stdout
    assert {r[0] for r in rows} == {"main", "worker"}, run.stdout


# Sleeps of up to 20 ms: longer than a new thread takes to start under a debugger, so the
# outcome is a function of the seed's decisions (with 1 ms it is a matter of timing).
PUBLISH_YIELDS = "tracer yield on --class access --strategy delay:50000"


def hunt_publish(debugger, mode, tmp):
    return controller.run(debugger, bug("publish_before_init"), commands=[PUBLISH_YIELDS],
                          run_command="tracer hunt --runs 40 --seed 0 --timeout 60",
                          report=None, tmp=tmp, mode=mode, timeout=600)


@pytest.mark.parametrize("debugger,mode", [("gdb", "breakpoint"), ("lldb", "breakpoint"),
                                           ("gdb", "agent")], indirect=["debugger"])
def test_hunt_access_finds_publish_before_init(debugger, mode, tmp_path):
    """No call sits between the two stores: only access yields open the window. The hunt
    fails within 40 runs; in agent mode its seed, run 8 times again (each in a new gdb),
    fails the same way at least once."""
    run = hunt_publish(debugger, mode, tmp_path / "hunt")
    seed, rep = assert_hunt_failed(run, 40, 0)
    assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == 1, rep["stop"]
    assert "flag up, value 0" in run.stdout + run.stderr, run.describe()
    y = rep["yield"]
    assert y["access_sites"] == y["sites"] == 8 and y["injected"] > 0, y
    assert rep["mode"] == mode, rep["mode"]
    # Breakpoint mode's replays of this find are weak (2-5 of 10 in bench/README.md: each
    # access is a debugger stop, whose jitter is of the order of the delays): one replay,
    # checked to be the same seed and sane. In agent mode the reader and main still race to
    # their first access-site stops after gdb's thread-creation stop (the seeds found first
    # fail again 6-8 times in 10 in a new gdb, measured; a CI run saw 2 of 8): it must come
    # back at least once in 8. PCT at the access sites replays this bug 10/10 (test_pct).
    failed = []
    replays = 8 if mode == "agent" else 1
    for k in range(replays):
        replay = controller.run(debugger, bug("publish_before_init"),
                                commands=[f"{PUBLISH_YIELDS} --seed {seed}"],
                                tmp=tmp_path / f"replay{k}", mode=mode, report="failure")
        replay.debugger.assert_sane(replay)
        if replay.reports:
            again = replay.report
            assert again["yield"]["seed"] == seed, again["yield"]
            assert (again["stop"]["reason"], again["stop"]["status"]) == ("exit", 1), again
            failed.append(k)
    if mode == "agent":
        assert failed, f"seed {seed} failed again in none of 8 replays"


HOT_C = r"""
#include <pthread.h>

static long total;

static void *worker(void *arg)
{
	for (int i = 0; i < 200000; i++)
		total = total + 1;
	return 0;
}

int main(void)
{
	pthread_t t;

	pthread_create(&t, 0, worker, 0);
	for (int i = 0; i < 200000; i++)
		total = total + 1;
	pthread_join(t, 0);
	return total > 0 ? 0 : 1;
}
"""


def test_hot_sites_are_bounded(tmp_path, tracer):
    """Two threads in loops of 200000 over a shared counter, every access site perturbed
    with probability 1: the run ends (a stop per access would take hours), with the four
    sites in the loops disabled for the run (not main's last read, hit once), and said so in
    the report and in `tracer yield status`."""
    prog = build_c(HOT_C, "hot", tmp_path, flags=("-g", "-O0", "-pthread"))
    run = gdb(prog, "tracer yield on --class access --probability 1 --strategy yield",
              tmp=tmp_path, run_command="tracer run", report="always",
              after=["tracer yield status"], timeout=300)
    run.debugger.assert_sane(run)
    validate(run.report)
    assert run.report["stop"]["reason"] == "exit" and run.report["stop"]["status"] == 0
    y = run.report["yield"]
    assert y["access_sites"] == 5 and y["hot_sites_disabled"] == 4, y
    # 8 full hits, then hits 16, 32, 64, 128 of each hot site; 1 of the last read
    assert 0 < y["injected"] <= 4 * 12 + 1, y
    assert "4 hot access sites disabled" in run.stdout, run.describe()


def test_access_yield_off_leaves_nothing(tmp_path, tracer):
    prog = bug("publish_before_init")
    sites = [r[5] for r in access_rows(gdb(prog, "tracer sites --class access",
                                           tmp=tmp_path).stdout)]
    mark = "echo ===\\n"
    run = gdb(prog, "tracer yield on --class access --probability 1", tmp=tmp_path,
              report="always", run_command="tracer run",
              after=["maint info breakpoints", mark, "tracer yield off", mark,
                     "maint info breakpoints", mark, "tracer run", mark,
                     "maint info breakpoints"], timeout=120)
    run.debugger.assert_sane(run)
    before, off, after, _, after_run = run.stdout.split("===\n")
    addrs = set(bp_addresses(before))
    base = [b for b in {a - s for a in addrs for s in sites}
            if all(s + b in addrs for s in sites)]
    assert base, f"the access sites are not all breakpoints:\n{before}"
    where = {s + base[0] for s in sites}
    assert "no site left" in off, off
    for label, text in (("after yield off", after), ("after the next run", after_run)):
        left = where & set(bp_addresses(text))
        assert not left, f"{label}: breakpoints still at {sorted(map(hex, left))}:\n{text}"
    last = run.reports[-1]["yield"]
    assert not last["enabled"] and "access_sites" not in last, last


def test_unknown_class_is_one_line(tmp_path, tracer):
    run = gdb(bug("publish_before_init"), "tracer yield on --class access,acess",
              "tracer yield status", tmp=tmp_path)
    assert_one_line_error(run, "unknown class", "acess", "access")


def test_hunt_access_on_correct_program_finds_nothing(tmp_path, tracer):
    """threads_pipe (four threads, a shared pipe and a global read by all): 30 runs with
    yields at its access and sync sites, no failure."""
    run = gdb(fixture_path("threads_pipe"), "tracer yield on --class access,sync",
              "tracer hunt --runs 30 --seed 0 --timeout 60", tmp=tmp_path, args=["2"],
              timeout=900)
    run.debugger.assert_sane(run)
    assert run.returncode == 0, run.describe()
    assert progress(run) == [(i, 30, i - 1, "passed") for i in range(1, 31)], run.describe()
    assert "shared-access sites" in run.stdout and not run.report_paths
