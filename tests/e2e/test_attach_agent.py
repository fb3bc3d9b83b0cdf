"""`tracer attach PID` in agent mode (issue 11), under gdb and lldb-16: the debugger loads the
agent into the running process with inserted calls (dlopen, then tracer_agent_attach), the
agent binds its wrappers into the process's GOT, and the messages sent after the attach are
recorded with no debugger stop per message. `tracer detach` unbinds it and the program goes on
untouched; where the agent cannot enter (a static program, a dlopen that fails) breakpoints
cover the process, and one line says why.
"""
import re
import time

import controller
from checks import (assert_events_match, assert_exited, assert_recorder_consistent,
                    assert_report, process)
from harness import FIXTURE_SRC, build_c, fixture_path, start_program, wait_for_lines

BIG = {"cap": 10000}

# Waits for a file "go" (the tracer attaches meanwhile: its thread waits in nanosleep), then
# ROUNDS write/read round trips on a pipe as fast as they go, each checked; the time they
# took, in ns per round trip, on stdout. Under breakpoints 2 x 100,000 stops take minutes.
FAST_PIPE = r"""
#include "fixture.h"
#include <time.h>

int main(int argc, char **argv)
{
	int rounds = atoi(argv[1]), fds[2];
	char msg[32], buf[32];
	struct timespec t0, t1;

	FX_CHECK(pipe(fds) == 0);
	fprintf(stderr, "ready\n");
	for (int i = 0; i < 6000 && access("go", F_OK) != 0; i++)
		usleep(10000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < rounds; i++) {
		int n = snprintf(msg, sizeof msg, "msg %07d", i);
		FX_CHECK(write(fds[1], msg, (size_t)n) == n);
		FX_CHECK(read(fds[0], buf, sizeof buf) == n && memcmp(buf, msg, (size_t)n) == 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("ns per round trip: %.0f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 +
					      (t1.tv_nsec - t0.tv_nsec)) / rounds);
	return 0;
}
"""


def _wait_ready(tmp, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "ready" in (tmp / "program.stderr").read_text():
            return True
        time.sleep(0.02)
    return False


def _go_once_attached(debugger_proc, tmp, pid, timeout=60.0):
    """Lets the program go once the agent is in it (or the debugger says it attached)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and debugger_proc.poll() is None:
        if "libtracer_agent.so" in open(f"/proc/{pid}/maps").read() or any(
                "tracer: attached to" in p.read_text(errors="replace")
                for p in tmp.glob("*.stdout") if p.name != "program.stdout"):
            break
        time.sleep(0.02)
    (tmp / "go").write_text("")


def _finish(proc, timeout=60):
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _bound(run):
    found = re.search(r"in agent mode \((\d+) GOT entries bound\)", run.stdout)
    assert found, "no agent-mode attach\n" + run.describe()
    return int(found[1])


def test_attach_agent_records_without_stops(debugger, tmp_path):
    """Both threads' messages after the attach, exactly as the fixture wrote them down, in a
    report that says agent mode; no breakpoint placed for the messages."""
    prog = fixture_path("sleeper_pipe", "O0")
    proc, tmp = start_program(prog, ["3"], tmp=tmp_path)   # 60 rounds, 50 ms apart
    try:
        assert wait_for_lines(tmp / "expect.jsonl", 8), "sleeper_pipe did not start"
        run = controller.run(debugger, None, settings=BIG, tmp=tmp, mode="agent",
                             commands=[f"tracer attach {proc.pid}", "tracer status"],
                             timeout=120, keep=(proc.pid,))
    finally:
        status = _finish(proc)
    assert status == 0, f"sleeper_pipe exited with {status}\n" + run.describe()
    rep = assert_report(run)
    assert _bound(run) >= 2, run.stdout                    # read and write at least
    assert "breakpoints: 0 functions (none), 0 return sites" in run.stdout, run.describe()
    assert rep["program"]["pid"] == proc.pid
    assert_exited(run, rep)
    assert len({e["tid"] for e in rep["events"]}) == 2, "both threads recorded after attach"
    assert_events_match(rep, run.expectations, mode="suffix", min_events=10)
    assert_recorder_consistent(rep)


def test_attach_agent_fast_program(debugger, tmp_path):
    """200,000 messages after the attach, every one counted, in far less time than a
    debugger stop per message would take; the program checks each round trip itself."""
    prog = build_c(FAST_PIPE, "fast_pipe", tmp_path)
    rounds = 100_000
    proc, tmp = start_program(prog, [rounds], tmp=tmp_path)
    try:
        assert _wait_ready(tmp), "fast_pipe did not start"
        started = time.monotonic()
        run = controller.run(debugger, None, tmp=tmp, mode="agent",
                             settings={"budget": 4 * rounds},
                             commands=[f"tracer attach {proc.pid}"], timeout=120,
                             keep=(proc.pid,),
                             during=lambda dbg, tmp: _go_once_attached(dbg, tmp, proc.pid))
        took = time.monotonic() - started
    finally:
        status = _finish(proc)
    assert status == 0, f"fast_pipe exited with {status}\n" + run.describe()
    rep = assert_report(run)
    assert_exited(run, rep)
    assert rep["recorder"]["count"] == 2 * rounds, rep["recorder"]
    assert [e["fn"] for e in rep["events"][-2:]] == ["write", "read"], rep["events"][-2:]
    assert rep["events"][-1]["data"].startswith("msg 0099999"), rep["events"][-1]
    assert took < 60, f"{took:.0f} s for {2 * rounds} messages: stops per message?"


def test_attach_agent_detach(debugger, tmp_path):
    """`tracer detach` puts every GOT entry back and lets the program go: it goes on checking
    every message it reads (its system call, interrupted by the attach, was redone) and exits
    0; attaching again later works the same."""
    prog = fixture_path("sleeper_pipe", "O0")
    proc, tmp = start_program(prog, ["3"], tmp=tmp_path)
    try:
        assert wait_for_lines(tmp / "expect.jsonl", 8), "sleeper_pipe did not start"
        run = controller.run(debugger, None, tmp=tmp, mode="agent",
                             run_command=f"tracer attach {proc.pid}",
                             after=["tracer detach", f"tracer attach {proc.pid}",
                                    "tracer detach"], timeout=60, keep=(proc.pid,))
    finally:
        status = _finish(proc)
    debugger.assert_sane(run)
    assert status == 0, f"sleeper_pipe exited with {status} after detach\n" + run.describe()
    assert "FIXTURE-FAIL" not in (tmp / "program.stderr").read_text()
    bound = [int(n) for n in re.findall(r"\((\d+) GOT entries bound\)", run.stdout)]
    restored = [int(n) for n in re.findall(r"agent unbound: (\d+) GOT entries restored",
                                           run.stdout)]
    assert len(bound) == 2 and bound == restored and bound[0] > 0, run.describe()
    assert len(run.reports) == 2, run.describe()             # one per attach, at its detach
    assert all(r["stop"]["reason"] == "detach" and r["mode"] == "agent" for r in run.reports)


def test_attach_agent_gdb_detach_hook(tmp_path):
    """gdb's own `detach` (through the hook Tracer installs) unbinds the agent too."""
    prog = fixture_path("sleeper_pipe", "O0")
    proc, tmp = start_program(prog, ["2"], tmp=tmp_path)
    try:
        assert wait_for_lines(tmp / "expect.jsonl", 8), "sleeper_pipe did not start"
        run = controller.run("gdb", None, tmp=tmp, mode="agent",
                             run_command=f"tracer attach {proc.pid}", after=["detach"],
                             timeout=60, keep=(proc.pid,))
    finally:
        status = _finish(proc)
    run.debugger.assert_sane(run)
    assert _bound(run) > 0
    assert status == 0, f"sleeper_pipe exited with {status} after detach\n" + run.describe()
    rep = assert_report(run)
    assert rep["stop"]["reason"] == "detach", rep["stop"]
    assert process(rep, proc.pid)["alive"] is True


def _fallback(debugger, prog, tmp, commands, why):
    proc, tmp = start_program(prog, ["3"], tmp=tmp)
    try:
        assert wait_for_lines(tmp / "expect.jsonl", 8), "sleeper_pipe did not start"
        run = controller.run(debugger, None, settings=BIG, tmp=tmp, mode="agent",
                             commands=[*commands, f"tracer attach {proc.pid}"], timeout=120,
                             keep=(proc.pid,))
    finally:
        status = _finish(proc)
    assert status == 0, f"sleeper_pipe exited with {status}\n" + run.describe()
    line = [ln for ln in run.stderr.splitlines() if "breakpoint mode covers it" in ln]
    assert line and why in line[0], run.describe()
    run.mode = "breakpoint"
    rep = assert_report(run)
    assert_exited(run, rep)
    assert_events_match(rep, run.expectations, mode="suffix", min_events=10)


def test_attach_agent_static_program_falls_back(debugger, tmp_path):
    source = (FIXTURE_SRC / "sleeper_pipe.c").read_text()
    prog = build_c(source, "sleeper_static", tmp_path, flags=("-g", "-O0", "-static"))
    _fallback(debugger, prog, tmp_path, [], "a static program")


def test_attach_agent_failed_dlopen_falls_back(debugger, tmp_path):
    """A dlopen that fails inside the program (here: not a library) leaves it as it was:
    breakpoints record it and it runs on to a clean exit."""
    bogus = tmp_path / "not_a_library.so"
    bogus.write_text("not an ELF file\n")
    script = "python" if debugger.name == "gdb" else "script"
    _fallback(debugger, fixture_path("sleeper_pipe", "O0"), tmp_path,
              [f"{script} import tracerlib.agent as a; a.LIBRARY = '{bogus}'"],
              "dlopen could not load the agent")
