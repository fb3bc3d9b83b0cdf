"""Breakpoint-mode reliability under the real gdb 13 and lldb-16 (docs/reliability.md): gdb's
own fork bugs never hang a run nor lose its report, every death from outside is a verdict,
your own kill is not, and processes[] names every process whose events are in the report.
Bounded: each run has a generous time-out; counts are kept small (see each test)."""
import json
import os
import re
import signal
import time

import pytest

from checks import assert_report, signal_name, validate
from controller import run
from harness import REPO, fixture_path

BIG = {"cap": 100000, "budget": 1000000}


def report_of(r):
    """The one report of a run, schema-valid (read directly: a run gdb failed under is not
    `sane` by assert_report's standard, yet its report must be whole)."""
    assert len(r.report_paths) == 1, r.describe()
    with open(r.report_paths[0]) as f:
        rep = json.load(f)
    validate(rep)
    return rep


def assert_every_event_process_listed(rep):
    listed = {p["pid"] for p in rep["processes"]}
    missing = {e["pid"] for e in rep["events"]} - listed
    assert not missing, f"processes[] lacks {sorted(missing)} (has {sorted(listed)})"


def test_fanout_breakpoint_gdb_never_hangs(tracer, tmp_path):
    """40 forked children, child 17 crashing, in breakpoint mode x5. gdb 13 loses a child's
    event in some runs (then waits forever: the hang watch ends the run after 3 s) and hits
    select_event_lwp internal errors in others: each run still ends in bounded time with one
    report listing every process that sent or received; a clean run names the crash, a
    run gdb failed under is `disturbed`, never the program's failure."""
    outcomes = []
    for i in range(5):
        r = run(tracer, fixture_path("fanout"), ["crash"], settings=BIG, mode="breakpoint",
                tmp=tmp_path / f"run{i}", timeout=90)
        assert "Traceback (most recent" not in r.output, r.describe()
        rep = report_of(r)
        assert_every_event_process_listed(rep)
        stop = rep["stop"]
        if stop["reason"] == "disturbed":
            assert "tracing disturbed: gdb" in r.output and "program failed" not in r.output
            outcomes.append("lost event" if "lost a process's event" in r.output
                            else "internal error")
            continue
        m = re.search(r"fanout: child 17 pid (\d+) crashing", r.output)
        assert m and signal_name(stop["signal"]) == "SIGSEGV" and stop["pid"] == int(m[1]), \
            (stop, r.describe())
        # (gdb ends the run at the crash: the children not yet run have sent nothing)
        assert {e["pid"] for e in rep["events"] if e["dir"] == "send"}, r.describe()
        outcomes.append("clean")
    print(f"\nfanout crash x5, gdb breakpoint mode: {outcomes}")


def test_pipeline_breakpoint_gdb(tracer, tmp_path):
    """sh -c 'seq 1 300000 | gzip -1 -c | gunzip -c | wc -l' in breakpoint mode x10 (exec
    chains: a return-site breakpoint stays in its own image, tracerlib/pinning.py; gdb
    failed every run with `Cannot insert breakpoint -N. Cannot access memory`, or the
    program died of SIGILL): the program is never broken (300000, exit 0) and processes[]
    lists every process whose events are in the report."""
    pipeline = "seq 1 300000 | gzip -1 -c | gunzip -c | wc -l"
    for i in range(10):
        r = run(tracer, "/bin/sh", ["-c", pipeline], settings=BIG, mode="breakpoint",
                tmp=tmp_path / f"run{i}", timeout=120)
        rep = assert_report(r)
        assert r.returncode == 0 and re.search(r"^\s*300000\s*$", r.stdout, re.M), \
            r.describe()
        assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == 0, rep["stop"]
        assert_every_event_process_listed(rep)
        assert len({e["pid"] for e in rep["events"]}) >= 3, f"run {i}"


@pytest.mark.parametrize("mode", ["breakpoint", "agent"])
def test_exec_chain_processes_listed(debugger, mode, tmp_path):
    """sh -c 'a | b | c' of real programs: every process whose events are in the report is in
    processes[] (gdb listed only those whose exit it saw)."""
    r = run(debugger, "/bin/sh", ["-c", "seq 1 20000 | gzip -1 -c | gunzip -c | wc -l"],
            settings=BIG, mode=mode, tmp=tmp_path, timeout=120)
    rep = assert_report(r)
    assert re.search(r"^\s*20000\s*$", r.stdout, re.M), r.describe()
    assert_every_event_process_listed(rep)
    if mode == "agent" or debugger.name == "gdb":
        assert len({e["pid"] for e in rep["events"]}) >= 3, rep["processes"]


def _kill_main_when_writing(killed):
    def during(proc, tmp):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            exp = tmp / "expect.jsonl"
            if exp.exists() and len(exp.read_text().splitlines()) >= 5:
                lines = [json.loads(x) for x in exp.read_text().splitlines()]
                with open(f"/proc/{lines[0]['pid']}/stat") as f:    # the writer's parent
                    main = int(f.read().rsplit(")", 1)[1].split()[1])
                os.kill(main, signal.SIGKILL)
                killed["pid"] = main
                return
            time.sleep(0.05)
    return during


@pytest.mark.parametrize("mode", ["breakpoint", "agent"])
def test_main_sigkilled_from_outside_is_a_failure(debugger, mode, tmp_path):
    """The main process SIGKILLed from outside (OOM killer, CI time-out): a failed run whose
    verdict names SIGKILL and that process (gdb used to say `tracing ended (kill)`)."""
    killed = {}
    r = run(debugger, fixture_path("slow_writer"), settings=BIG, mode=mode, tmp=tmp_path,
            during=_kill_main_when_writing(killed), timeout=120)
    assert "pid" in killed, r.describe()
    rep = report_of(r)
    if debugger.name == "lldb" and "program failed: exit status -1" in r.output:
        pytest.xfail("lldb-16 at times gives a process killed under it exit status -1 and no "
                     "signal: still a failure, but SIGKILL is not named (seen 1 in ~10)")
    if debugger.name == "gdb" and re.search(r"program failed: SIGPIPE in process (?!%d\b)"
                                            % killed["pid"], r.output):
        pytest.xfail("gdb holds the reader's SIGKILL queued and shows the writer's SIGPIPE it "
                     "caused first (it picks among queued events at random; seen 1 in ~15)")
    if debugger.name == "gdb" and "gdb lost a process's event" in r.output:
        pytest.xfail("gdb lost the SIGKILL's event; the hang watch ended the run as disturbed "
                     "(seen 1 in ~30)")
    assert f"program failed: SIGKILL in process {killed['pid']}" in r.output, r.describe()
    assert r.returncode != 0, r.describe()
    main = [p for p in rep["processes"] if p["pid"] == killed["pid"]]
    assert main and main[0]["alive"] is False and \
        signal_name(main[0]["exit_signal"]) == "SIGKILL", rep["processes"]


_KILL = {"gdb": "kill", "lldb": "process kill"}


def test_your_own_kill_is_not_a_failure(debugger, tmp_path):
    """Your own kill command (gdb `kill`, lldb `process kill`) after your breakpoint stopped
    `tracer run`: both debuggers end the run as `kill`, never a failure (lldb called it a
    SIGKILL failure)."""
    r = run(debugger, fixture_path("slow_writer"), mode="breakpoint", tmp=tmp_path,
            commands=[debugger.break_command.format(fn="main")],
            after=[_KILL[debugger.name], "tracer status"], timeout=120)
    assert "tracing ended (kill)" in r.output, r.describe()
    assert "program failed" not in r.output and "SIGKILL" not in r.output, r.describe()
    rep = report_of(r)
    assert rep["stop"]["reason"] == "kill", rep["stop"]


def test_attach_to_a_process_traced_by_someone_else(debugger):
    """Attaching to a process another tracer holds (here: this test, by PTRACE_ATTACH) is one
    line naming that tracer, in both debuggers (lldb blamed ptrace_scope)."""
    import ctypes
    import subprocess
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert libc.ptrace(16, sleeper.pid, None, None) == 0     # PTRACE_ATTACH
        os.waitpid(sleeper.pid, 0)
        script = str(REPO / ("gdb" if debugger.name == "gdb" else "lldb") / "tracer.py")
        argv = (["gdb", "-q", "-batch", "-nx", "-x", script] if debugger.name == "gdb" else
                ["lldb-16", "-b", "--no-lldbinit", "-o", f"command script import {script}"])
        attach = f"tracer attach {sleeper.pid}"
        argv += ["-ex", attach] if debugger.name == "gdb" else ["-o", attach]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        said = f"process {sleeper.pid} is already traced by process {os.getpid()} ("
        assert said in p.stderr and "detach it there first" in p.stderr, p.stderr
        assert "ptrace_scope" not in p.stdout + p.stderr and "Traceback" not in p.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
