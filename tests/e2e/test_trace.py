"""End-to-end tests of tracing, one scenario table run under gdb 13 and lldb-16 alike (issues 3,
6 and 10): the real debugger with its tracer port in batch mode against a real fixture; every
report schema-valid and its events exactly what the fixture wrote down, thread by thread.

SCENARIOS holds one row per fixture program: its arguments, settings, expected exit status
and the checks particular to it. Under lldb a row runs unless a documented limitation stops
it, the reason in the row. lldb-16 follows one process (docs/lldb.md): for a program that
forks (`forks=True`) only the parent is traced there, so under lldb the parent's events are
compared exactly with the parent's expectations and the report must hold no other pid.

The other tests here are the tracing behaviours common to both debuggers (settings, the
user's breakpoints, attach); per-debugger differences come from controller.py.
"""
import json
import re
import signal
from dataclasses import dataclass, field
from typing import Callable

import pytest

import controller
from checks import (assert_events_match, assert_exited, assert_full_trace, assert_recorder,
                    assert_recorder_consistent, assert_report, process, validate)
from harness import fixture_path, start_program, wait_for_lines

OPTS = pytest.mark.parametrize("opt", ["O0", "O2"])

# A ring large enough for every fixture's whole conversation, so that the events can be
# compared exactly with the expectations; the default cap is tested on its own.
BIG = {"cap": 10000}

SIGCHLD_RACE = ("gdb 13 race: a forked child that exits while gdb still handles its fork is "
                "lost ('No unwaited-for children left.') and gdb waits forever with every "
                "process stopped, so the run hits the controller's time-out; seen in 1 of 10 "
                "runs (5 x O0, 5 x O2, 12 rounds) when this was last measured; docs/guide.md, "
                "Known limits")


@dataclass(frozen=True)
class Scenario:
    fixture: str
    args: tuple = ()
    status: int = 0
    settings: dict = field(default_factory=dict)
    check: Callable = None      # check(run, report, expectations): what the row adds
    traced: bool = True         # the program makes IPC calls (False: no event at all)
    forks: bool = False         # lldb traces the parent only (docs/lldb.md)
    opts: tuple = ("O0", "O2")
    timeout: int = 180
    limits: dict = field(default_factory=dict)   # debugger -> why the row does not run there
    marks: dict = field(default_factory=dict)    # debugger -> pytest marks


def two_pids_under_gdb(run, rep, exp):
    if run.debugger.name == "gdb" or run.mode == "agent":
        assert len({e["pid"] for e in rep["events"]}) == 2, "parent and child both traced"


def pingpong(run, rep, exp):
    two_pids_under_gdb(run, rep, exp)
    assert any(e["truncated"] for e in rep["events"])


def socketpair_fns(run, rep, exp):
    every = {"send", "recv", "sendmsg", "recvmsg", "writev", "readv", "write", "read"}
    if run.debugger.name == "lldb" and run.mode == "breakpoint":  # the parent's share
        every = {e["fn"] for e in exp}
    assert {e["fn"] for e in rep["events"]} == every


def unix_path_endpoint(run, rep, exp):
    ends = [e["endpoint"] for e in rep["events"]]
    assert any(re.match(r"unix:/tmp/tracer-unix-\d+\.sock->\[\d+\]$", ep) or
               re.match(r"unix:\[\d+\]->/tmp/tracer-unix-\d+\.sock$", ep) for ep in ends), ends
    if run.debugger.name == "gdb" or run.mode == "agent":   # the server (lldb: the client)
        assert any(re.match(r"unix:/tmp/tracer-unix-\d+\.sock->\[\d+\]$", ep) for ep in ends)


def tcp_endpoints(run, rep, exp):
    assert all(re.match(r"tcp:127\.0\.0\.1:\d+->127\.0\.0\.1:\d+$", e["endpoint"])
               for e in rep["events"]), [e["endpoint"] for e in rep["events"]]


def one_timeout(run, rep, exp):
    failed = [e for e in rep["events"] if e["ret"] == -1]
    assert len(failed) == 1 and failed[0]["errno"] == 110, failed  # ETIMEDOUT


def four_threads(run, rep, exp):
    assert len({e["tid"] for e in rep["events"]}) == 4


def no_event(run, rep, exp):
    """Writes and reads on a regular file, stdout, stderr, /dev/null and /dev/zero (and the
    terminal lldb gives the program) are not messages."""
    assert rep["events"] == [], rep["events"]
    assert_recorder(rep, count=0, dropped=0, overflow=False)
    # The writes did happen (the program's output is in the debugger's output files).
    assert "to stdout" in run.stdout and "printf to stdout 1" in run.stdout, run.describe()
    assert "to stderr" in run.program_stderr and "fprintf to stderr 2" in run.program_stderr, \
        run.describe()


def sendfile_served(run, rep, exp):
    """The two sendfile calls are sends on the connection carrying the file's bytes (the
    exact comparison does the rest); the client's polls failed with EAGAIN at least once."""
    sent = [e for e in rep["events"] if e["fn"] == "sendfile"]
    assert [(e["len"], e["ret"]) for e in sent] == [(100, 100), (1000, 100)], sent
    assert all(e["dir"] == "send" and e["endpoint"].startswith("tcp:") for e in sent), sent
    if run.debugger.name == "gdb" or run.mode == "agent":      # the client's share
        assert any(e["fn"] == "read" and e["errno"] == 11 for e in rep["events"])


def splice_directions(run, rep, exp):
    """socket -> pipe is a receive on the socket, pipe -> socket a send on it, tee a send on
    the pipe it fills: each with the bytes it moved."""
    moves = [(e["fn"], e["dir"], e["endpoint"].split(":")[0]) for e in rep["events"]
             if e["fn"] in ("splice", "tee")]
    assert moves[:3] == [("splice", "recv", "unix"), ("tee", "send", "pipe"),
                         ("splice", "send", "unix")], moves


def one_event_per_message(run, rep, exp):
    """sendmmsg of 3 datagrams: 3 events, each with its own length; recvmmsg too."""
    parent = rep["program"]["pid"]
    sent = [e for e in rep["events"] if e["fn"] == "sendmmsg" and e["pid"] == parent]
    assert [e["len"] for e in sent] == [e["ret"] for e in sent] == [5, 90, 13], sent
    if run.debugger.name == "gdb" or run.mode == "agent":      # the child's receives
        got = [e for e in rep["events"] if e["fn"] == "recvmmsg" and e["ret"] > 0]
        assert [e["ret"] for e in got][:3] == [5, 90, 13], got


def recv_never_failed(run, rep, exp):
    assert "failed in round" not in run.program_stderr, (
        "the program's own send/recv failed under the tracer\n" + run.describe())


SCENARIOS = {
    # parent and child over two pipes, payloads with \0 \n \xff, one longer than the 64-byte
    # preview (truncated), and a read that returns 0 at EOF
    "pipe_pingpong": Scenario("pipe_pingpong", ("5",), forks=True, check=pingpong),
    # send/recv, sendmsg/recvmsg, writev/readv, write/read on a unix socketpair
    "socketpair_pingpong": Scenario("socketpair_pingpong", ("2",), forks=True,
                                    check=socketpair_fns),
    # a server bound to a path and a connecting client: unix:/path->[inode] and back
    "unix_stream": Scenario("unix_stream", ("3",), forks=True, check=unix_path_endpoint),
    # TCP on 127.0.0.1 with send/recv, sendto/recvfrom and write/read
    "tcp_loopback": Scenario("tcp_loopback", ("3",), forks=True, check=tcp_endpoints),
    # UDP unconnected (udp:LOCAL) and connected (udp:LOCAL->REMOTE): a socket's endpoint
    # changes when it connects after having been used
    "udp_loopback": Scenario("udp_loopback", forks=True),
    # the four mq calls, each one event named as called (glibc implements one through
    # another), and one ETIMEDOUT failure (the parent's)
    "posix_mq": Scenario("posix_mq", ("2",), forks=True, check=one_timeout),
    # msgsnd/msgrcv on a private SysV queue (and one ENOMSG failure): endpoint sysv:ID
    "sysv_msg": Scenario("sysv_msg", ("3",), forks=True),
    # a child that execs itself keeps talking on inherited pipes: tracing goes on in the new
    # image under the same pid (under lldb: test_lldb.py's exec_self, without the fork)
    "exec_child": Scenario("exec_child", forks=True),
    # send/recv on a socketpair while SIGCHLDs keep arriving (displaced stepping corrupts
    # recv under gdb 13): every recv succeeds with the right bytes
    "sigchld_recv": Scenario("sigchld_recv", ("12",), forks=True, timeout=45,
                             check=recv_never_failed, marks={"gdb": [pytest.mark.xfail(
                                 raises=controller.DebuggerTimeout, strict=False,
                                 reason=SIGCHLD_RACE)]}),
    # four threads writing to and reading from one pipe: each thread's own sequence
    "threads_pipe": Scenario("threads_pipe", ("5",), check=four_threads),
    # a TCP server sends a file with sendfile (an offset argument, then the file position) to
    # a client polling its non-blocking socket (EAGAIN) before it reads the file's bytes
    "sendfile_server": Scenario("sendfile_server", forks=True, check=sendfile_served),
    # splice socket -> pipe (a receive), tee pipe -> pipe (a send), splice pipe -> socket (a
    # send), splice file -> pipe and pipe -> file: each with the bytes it moved
    "splice_relay": Scenario("splice_relay", forks=True, check=splice_directions),
    # sendmmsg / recvmmsg of several datagrams: one event per message, a failed recvmmsg
    # (EAGAIN) one event offering the room of all
    "mmsg_datagrams": Scenario("mmsg_datagrams", forks=True, check=one_event_per_message),
    "not_ipc": Scenario("not_ipc", traced=False, check=no_event),
    "chatty": Scenario("chatty", ("30",), opts=("O0",)),
    "exit_code": Scenario("exit_code", ("3",), status=3, opts=("O0",)),
}

ROWS = [(sc, opt) for sc in SCENARIOS.values() for opt in sc.opts]


@pytest.mark.parametrize("debugger,row", controller.cases(
    ROWS, [f"{sc.fixture}-{opt}" for sc, opt in ROWS], limits=lambda row: row[0].limits,
    marks=lambda name, row: row[0].marks.get(name, ())), indirect=["debugger"])
def test_scenario(debugger, mode, row, tmp_path):
    sc, opt = row
    prog = fixture_path(sc.fixture, opt)
    run = controller.run(debugger, prog, sc.args, settings={**BIG, **sc.settings}, mode=mode,
                         tmp=tmp_path, timeout=sc.timeout)
    rep = assert_report(run, prog)
    if rep["stop"]["reason"] == "disturbed" and "gdb lost a process's event" in run.output:
        # gdb 13 at times shows a fork child's exit before its fork event and then never
        # reports the exit it owes (seen once, splice_relay-O2 in breakpoint mode, in a
        # clean-clone CI run): the hang watch ends the run as the tool's failure, as it
        # must (test_reliability checks that path).
        pytest.xfail(f"gdb lost a process's event: {sc.fixture} {opt} {mode}")
    exp = run.expectations
    if sc.forks and debugger.name == "lldb" and mode == "breakpoint":
        # The documented limitation, checked: the parent traced exactly, the child run to its
        # end untraced (and unharmed: the program's exit status says so).
        parent = rep["program"]["pid"]
        exp = [e for e in exp if e["pid"] == parent]
        assert exp and len(exp) < len(run.expectations), run.describe()
        assert {e["pid"] for e in rep["events"]} == {parent}, rep["events"]
    if sc.check:
        sc.check(run, rep, exp)
    assert_exited(run, rep, sc.status)
    if sc.traced:
        assert_full_trace(run, rep, f"{sc.fixture}.c", expectations=exp)


# --------------------------------------------------------------------------- settings

def trace(debugger, name, tmp_path, args=(), settings=BIG, opt="O0", **kw):
    """Runs fixture `name` under `tracer run` with `report always`; returns (run, report)."""
    prog = fixture_path(name, opt)
    run = controller.run(debugger, prog, args, settings=settings, tmp=tmp_path, **kw)
    return run, assert_report(run, prog)


def test_budget_overflow(debugger, tmp_path):
    """`budget 20`: exactly the first 20 events are kept, overflow is set, every tracer
    breakpoint goes away and the program runs to completion (200 calls made)."""
    run, rep = trace(debugger, "chatty", tmp_path, ["100"], settings={"budget": 20},
                     after=["tracer status"])
    assert_exited(run, rep, 0)
    assert len(run.expectations) == 200, "the program did not run to completion"
    assert_recorder(rep, budget=20, count=20, dropped=0, overflow=True)
    assert_recorder_consistent(rep)
    assert len(rep["events"]) == 20
    assert_events_match(rep, run.expectations[:20])
    assert "breakpoints: 0 functions" in run.stdout, run.describe()


def test_ring_keeps_last_cap(debugger, tmp_path):
    """`cap 10`: the ring keeps the last 10 of 120 events; dropped counts the rest."""
    run, rep = trace(debugger, "chatty", tmp_path, ["60"], settings={"cap": 10})
    assert_exited(run, rep, 0)
    assert_recorder(rep, cap=10, count=120, dropped=110, overflow=False)
    assert_recorder_consistent(rep)
    assert_events_match(rep, run.expectations[-10:])


def test_default_settings(debugger, tmp_path):
    """Without settings: cap 50, budget 5000, payload 64; 60 rounds of chatty overflow the ring
    but not the budget."""
    run, rep = trace(debugger, "chatty", tmp_path, ["60"], settings={})
    assert_exited(run, rep, 0)
    assert_recorder(rep, cap=50, budget=5000, payload=64, count=120, dropped=70,
                    overflow=False)
    assert_events_match(rep, run.expectations[-50:])


@pytest.mark.parametrize("name,args,payload", [("chatty", ["3"], 4),
                                               ("threads_pipe", ["3"], 8)])
def test_payload_setting(debugger, name, args, payload, tmp_path):
    """`payload N`: previews hold N bytes and longer messages are truncated."""
    run, rep = trace(debugger, name, tmp_path, args, settings={**BIG, "payload": payload})
    assert_exited(run, rep)
    assert_full_trace(run, rep, f"{name}.c", payload=payload)
    assert all(e["truncated"] for e in rep["events"] if e["ret"])


@pytest.mark.parametrize("name", ["sendfile_server", "splice_relay", "mmsg_datagrams"])
def test_moved_bytes_cut_to_the_payload(debugger, mode, name, tmp_path):
    """`payload 8` bounds the bytes read for sendfile, splice, tee and each mmsg message as
    for every preview: the first 8, truncated when more moved, in both modes."""
    run, rep = trace(debugger, name, tmp_path, settings={**BIG, "payload": 8}, mode=mode)
    assert_exited(run, rep)
    exp = run.expectations
    if debugger.name == "lldb" and mode == "breakpoint":     # the parent only (docs/lldb.md)
        exp = [e for e in exp if e["pid"] == rep["program"]["pid"]]
    assert_events_match(rep, exp, payload=8)
    assert any(e["truncated"] and e["fn"] in ("sendfile", "splice", "tee", "sendmmsg",
                                              "recvmmsg") for e in rep["events"])


def test_expectations_not_traced(debugger, tmp_path):
    """The fixture's own writes to its expectation file (a regular file, O_APPEND) are not
    messages: only the pipe's fd appears in the report."""
    run, rep = trace(debugger, "exit_code", tmp_path, ["0"])
    assert_exited(run, rep)
    assert len(run.expectations) == 2
    assert {e["endpoint"] for e in rep["events"]} == {run.expectations[0]["endpoint"]}


# --------------------------------------------------------------------------- your breakpoints

USER_STOP = {   # print the argument fixture_marker was called with
    "gdb": 'printf "USER-STOP %d\\n", $rdi',
    "lldb": 'script print("USER-STOP", lldb.frame.FindRegister("rdi").GetValueAsUnsigned())',
}
USER_HITS = {   # the debugger's own words for a stop at breakpoint 1
    "gdb": r"Breakpoint 1, (?:0x[0-9a-f]+ in )?fixture_marker",
    "lldb": r"stop reason = breakpoint 1\.1",
}


@OPTS
def test_user_breakpoint(debugger, opt, tmp_path):
    """The user's own breakpoint stops the program (three times) while tracing: `tracer run`
    hands the stop over, and either the debugger's own resume or `tracer run` carries on; the
    report is written at the exit and the trace stays complete."""
    show = USER_STOP[debugger.name]
    script = "\n".join([debugger.break_command.format(fn="fixture_marker"), "tracer run", show,
                        debugger.resume_command, show, "tracer run", show,
                        debugger.resume_command, ""])
    run = controller.run(debugger, fixture_path("user_breakpoint", opt), settings=BIG,
                         tmp=tmp_path, script=script, run_command=None)
    rep = assert_report(run)
    hits = re.findall(USER_HITS[debugger.name], run.stdout)
    assert len(hits) == 3 if debugger.name == "gdb" else hits, (
        f"user breakpoint hits: {hits}\n" + run.describe())
    stops = re.findall(r"USER-STOP (\d+)", run.stdout)
    assert stops == ["1", "2", "3"], f"stops seen by the user: {stops}\n" + run.describe()
    assert_exited(run, rep)
    assert_full_trace(run, rep, "user_breakpoint.c")


# --------------------------------------------------------------------------- attach
#
# `tracer attach PID` attaches to the running process (all its threads) and arms tracing;
# `tracer run` lets it run to its end; the report is written when it exits. The tracer sees
# only what happens after it attached: each thread's events must be the tail of that thread's
# expectations.

def test_attach_running_process(debugger, tmp_path):
    prog = fixture_path("sleeper_pipe", "O0")
    proc, tmp = start_program(prog, ["3"], tmp=tmp_path)   # 60 rounds, 50 ms apart
    try:
        assert wait_for_lines(tmp / "expect.jsonl", 8), "sleeper_pipe did not start"
        run = controller.run(debugger, None, settings=BIG, tmp=tmp,
                             commands=[f"tracer attach {proc.pid}"], timeout=120,
                             keep=(proc.pid,))
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    debugger.assert_sane(run)
    assert status == 0, f"sleeper_pipe exited with {status} after the tracer\n" + run.describe()
    rep = assert_report(run)
    assert rep["program"]["pid"] == proc.pid
    assert_exited(run, rep)
    assert len(run.expectations) == 2 * 2 * 60 + 1
    assert len({e["tid"] for e in rep["events"]}) == 2, "both threads traced after attach"
    assert_events_match(rep, run.expectations, mode="suffix", min_events=10)
    assert_recorder_consistent(rep)


def test_attach_snapshot_detach(debugger, tmp_path):
    """Attach, take a snapshot, detach: the snapshot shows the live process and its two
    threads; after the detach the program runs on untouched and exits 0 (no breakpoint left
    behind)."""
    prog = fixture_path("sleeper_pipe", "O0")
    proc, tmp = start_program(prog, ["2"], tmp=tmp_path)
    snap = tmp / "snap.json"
    try:
        assert wait_for_lines(tmp / "expect.jsonl", 8), "sleeper_pipe did not start"
        run = controller.run(debugger, None, tmp=tmp, run_command=f"tracer attach {proc.pid}",
                             after=[f"tracer snapshot {snap}", *debugger.detach_commands],
                             timeout=60, keep=(proc.pid,))
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    debugger.assert_sane(run)
    assert status == 0, f"sleeper_pipe exited with {status} after detach\n" + run.describe()
    assert snap.exists(), "tracer snapshot FILE wrote nothing\n" + run.describe()
    rep = json.loads(snap.read_text())
    validate(rep)
    p = process(rep, proc.pid)
    assert p["alive"] is True and len(p["threads"]) == 2, p
    assert all(t["backtrace"] for t in p["threads"]), p

