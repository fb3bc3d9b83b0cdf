"""End-to-end tests that only make sense under lldb (issue 6): the real lldb-16 with
lldb/tracer.py in batch mode; every report validated against docs/report.schema.json and
compared with what the program wrote down (checks.py). What runs under both debuggers is in
test_trace.py, test_snapshot.py and test_yield.py.

lldb-16 follows one process: a forked child runs untraced (docs/lldb.md). Programs written
here (threads instead of fork) make the forking fixtures' calls in one process, so that the
whole conversation, crash or deadlock is checked under lldb.
"""
import json
import re
import shlex
import signal
import subprocess

import pytest

from checks import (assert_events_match, assert_exited,
                    assert_full_trace, assert_mailboxes_match, assert_recorder,
                    assert_recorder_consistent, assert_report, frame_functions, process,
                    signal_name, validate)
from controller import run_lldb
from harness import (DELAYS_C, build_c, bug, fixture_path, hunt_found, pid_alive,
                     wait_for_lines)

OPTS = pytest.mark.parametrize("opt", ["O0", "O2"])
BIG = {"cap": 10000}


def trace(program, tmp_path, args=(), settings=BIG, **kw):
    """Runs `program` under `tracer run` with `report always`; returns (run, report)."""
    run = run_lldb(program, args, settings=settings, tmp=tmp_path, **kw)
    return run, assert_report(run)


# --------------------------------------------------------------------------- programs written
# here: the forking fixtures' calls, made by threads of one process.

SOCKETPAIR_THREADS = r"""
/* socketpair_pingpong's conversation between two threads instead of two processes, plus two
 * failing receives whose errno must be read from the right thread: read on an empty
 * non-blocking pipe in the main thread and recv(MSG_DONTWAIT) in the other (EAGAIN). */
#define main socketpair_pingpong_main
#include "socketpair_pingpong.c"
#undef main
#include <pthread.h>

static int rounds = 2, sv[2];

static void *other_side(void *arg)
{
	char buf[16];
	for (int i = 0; i < rounds; i++) {
		recv_plain(sv[1], 1, "send", i);
		send_msg(sv[1], 1, "sendmsg", i);
		recv_vec(sv[1], 1, "writev", i);
		write_plain(sv[1], 1, "write", i);
	}
	ssize_t r = recv(sv[1], buf, sizeof buf, MSG_DONTWAIT);   /* nothing is pending */
	fx_expect_recv("recv", sv[1], ep[1], buf, sizeof buf, r);
	FX_CHECK(r == -1 && errno == EAGAIN);
	send_plain(sv[1], 1, "bye", 0);
	return NULL;
}

int main(int argc, char **argv)
{
	int p[2];
	char ep_pipe[FX_ENDPOINT_MAX], buf[16];
	pthread_t t;

	if (argc > 1)
		rounds = atoi(argv[1]);
	FX_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	fx_ep_unix(sv[0], fx_ino(sv[1]), ep[0], sizeof ep[0], NULL);
	fx_ep_unix(sv[1], fx_ino(sv[0]), ep[1], sizeof ep[1], NULL);
	FX_CHECK(pipe2(p, O_NONBLOCK) == 0);
	fx_ep_pipe(p[0], ep_pipe, sizeof ep_pipe);
	ssize_t r = read(p[0], buf, sizeof buf);
	fx_expect_recv("read", p[0], ep_pipe, buf, sizeof buf, r);
	FX_CHECK(r == -1 && errno == EAGAIN);
	FX_CHECK(pthread_create(&t, NULL, other_side, NULL) == 0);
	for (int i = 0; i < rounds; i++) {
		send_plain(sv[0], 0, "send", i);
		recv_msg(sv[0], 0, "sendmsg", i);
		send_vec(sv[0], 0, "writev", i);
		read_plain(sv[0], 0, "write", i);
	}
	recv_plain(sv[0], 0, "bye", 0);
	FX_CHECK(pthread_join(t, NULL) == 0);
	return 0;
}
"""

CRASH_THREADS = r"""
/* A worker thread leaves bytes pending in a pipe and a socket, then dereferences NULL while
 * the main thread waits in pthread_join and a third thread is blocked in read. */
#include "fixture.h"
#include <pthread.h>

static int a[2], sv[2], idle[2];
static char ep_a[FX_ENDPOINT_MAX], ep_s0[FX_ENDPOINT_MAX], ep_s1[FX_ENDPOINT_MAX];
static char ep_idle[FX_ENDPOINT_MAX];

__attribute__((noinline)) static void crash_now(void)
{
	int *volatile nowhere = NULL;
	*(volatile int *)nowhere = 42;
}

static void *crasher(void *arg)
{
	static const char pipe_msg[] = "pending in the pipe\n", sock_msg[] = "pending\0in the socket";
	ssize_t w = write(a[1], pipe_msg, sizeof pipe_msg - 1);
	fx_expect_send("write", a[1], ep_a, pipe_msg, sizeof pipe_msg - 1, w);
	FX_CHECK(w == sizeof pipe_msg - 1);
	w = send(sv[0], sock_msg, sizeof sock_msg - 1, 0);
	fx_expect_send("send", sv[0], ep_s0, sock_msg, sizeof sock_msg - 1, w);
	FX_CHECK(w == sizeof sock_msg - 1);
	/* A pipe is listed once, under its lowest fd (the read end here); only the receiving
	 * socket holds the message. */
	fx_expect_pending(getpid(), a[0], ep_a, pipe_msg, sizeof pipe_msg - 1, 0);
	fx_expect_pending(getpid(), sv[1], ep_s1, sock_msg, sizeof sock_msg - 1, 0);
	crash_now();
	return NULL;
}

static void *idler(void *arg)
{
	char buf[8];
	ssize_t r = read(idle[0], buf, sizeof buf);   /* nobody writes: blocked at the crash */
	fx_die("idler: read returned %zd", r);
}

int main(void)
{
	pthread_t t1, t2;
	FX_CHECK(pipe(a) == 0 && pipe(idle) == 0);
	FX_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	fx_ep_pipe(a[0], ep_a, sizeof ep_a);
	fx_ep_pipe(idle[0], ep_idle, sizeof ep_idle);
	fx_ep_unix(sv[0], fx_ino(sv[1]), ep_s0, sizeof ep_s0, NULL);
	fx_ep_unix(sv[1], fx_ino(sv[0]), ep_s1, sizeof ep_s1, NULL);
	alarm(300);
	FX_CHECK(pthread_create(&t2, NULL, idler, NULL) == 0);
	FX_CHECK(pthread_create(&t1, NULL, crasher, NULL) == 0);
	pthread_join(t1, NULL);
	return 3;
}
"""

DEADLOCK_THREADS = r"""
/* deadlock_read between two threads: one greeting each way, then both read forever. */
#include "fixture.h"
#include <pthread.h>

static int a[2], b[2];
static char ep_a[FX_ENDPOINT_MAX], ep_b[FX_ENDPOINT_MAX];

static void *other(void *arg)
{
	char buf[64];
	ssize_t r = read(a[0], buf, sizeof buf);
	fx_expect_recv("read", a[0], ep_a, buf, sizeof buf, r);
	ssize_t w = write(b[1], "hello main!!", 12);
	fx_expect_send("write", b[1], ep_b, "hello main!!", 12, w);
	r = read(a[0], buf, sizeof buf);
	fx_die("other: read returned %zd", r);
}

int main(void)
{
	char buf[64];
	pthread_t t;
	FX_CHECK(pipe(a) == 0 && pipe(b) == 0);
	fx_ep_pipe(a[0], ep_a, sizeof ep_a);
	fx_ep_pipe(b[0], ep_b, sizeof ep_b);
	alarm(300);
	FX_CHECK(pthread_create(&t, NULL, other, NULL) == 0);
	ssize_t w = write(a[1], "hello thread", 12);
	fx_expect_send("write", a[1], ep_a, "hello thread", 12, w);
	ssize_t r = read(b[0], buf, sizeof buf);
	fx_expect_recv("read", b[0], ep_b, buf, sizeof buf, r);
	r = read(b[0], buf, sizeof buf);
	fx_die("main: read returned %zd", r);
}
"""

ENDINGS = r"""
/* One write and one read on a pipe, then an ending chosen by argv[1]: "kill" (SIGKILL, which
 * no debugger sees coming), "alarm" (SIGALRM, which lldb passes without stopping), or a number
 * N: exit(N) - lldb reports "killed by signal N" and "exit status N" alike. */
#include "fixture.h"
#include <signal.h>

int main(int argc, char **argv)
{
	int fds[2];
	char ep[FX_ENDPOINT_MAX], buf[32];
	FX_CHECK(pipe(fds) == 0);
	fx_ep_pipe(fds[0], ep, sizeof ep);
	ssize_t w = write(fds[1], "the end", 7);
	fx_expect_send("write", fds[1], ep, "the end", 7, w);
	ssize_t r = read(fds[0], buf, sizeof buf);
	fx_expect_recv("read", fds[0], ep, buf, sizeof buf, r);
	if (!strcmp(argv[1], "kill"))
		kill(getpid(), SIGKILL);
	if (!strcmp(argv[1], "alarm")) {
		alarm(1);
		pause();
	}
	exit(atoi(argv[1]));
}
"""


EXEC_SELF = r"""
/* exec_child without the fork: one write and one read on a pipe, then exec itself keeping the
 * pipe, and in the new image one more write and read on it; exit 0. */
#include "fixture.h"

static void talk(int rfd, int wfd, const char *ep, const char *msg)
{
	char buf[32];
	size_t n = strlen(msg);
	ssize_t w = write(wfd, msg, n);
	fx_expect_send("write", wfd, ep, msg, (long)n, w);
	FX_CHECK(w == (ssize_t)n);
	ssize_t r = read(rfd, buf, sizeof buf);
	fx_expect_recv("read", rfd, ep, buf, sizeof buf, r);
	FX_CHECK(r == (ssize_t)n);
}

int main(int argc, char **argv)
{
	char ep[FX_ENDPOINT_MAX], a[16], b[16];
	int fds[2];
	if (argc > 2) {                   /* the new image: the pipe's fds in argv */
		fx_ep_pipe(atoi(argv[1]), ep, sizeof ep);
		talk(atoi(argv[1]), atoi(argv[2]), ep, "after exec");
		return 0;
	}
	FX_CHECK(pipe(fds) == 0);
	fx_ep_pipe(fds[0], ep, sizeof ep);
	talk(fds[0], fds[1], ep, "before exec");
	snprintf(a, sizeof a, "%d", fds[0]);
	snprintf(b, sizeof b, "%d", fds[1]);
	execl("/proc/self/exe", argv[0], a, b, (char *)NULL);
	fx_die("execl");
}
"""


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """The programs above, built once per test module (-O0 and -O2 where it matters)."""
    d = tmp_path_factory.mktemp("lldb-programs")
    out = {}
    for name, src in (("socketpair_threads", SOCKETPAIR_THREADS),
                      ("crash_threads", CRASH_THREADS), ("deadlock_threads", DEADLOCK_THREADS),
                      ("endings", ENDINGS), ("exec_self", EXEC_SELF)):
        out[name] = build_c(src, name, d)
        out[name + "-O2"] = build_c(src, name + "-O2", d, flags=("-g", "-O2"))
    return out


# --------------------------------------------------------------------------- help and errors

def test_help(tmp_path, lldb_tracer):
    """`help tracer` lists the subcommands; each has its own help."""
    run = run_lldb(None, run_command="help tracer", report=None, tmp=tmp_path,
                   after=["help tracer run", "help tracer set"])
    run.debugger.assert_sane(run)
    for sub in ("run", "start", "stop", "attach", "status", "show", "snapshot", "sites", "set",
                "settings"):
        assert re.search(rf"^\s+{sub}\s+-- ", run.stdout, re.M), f"no '{sub}'\n" + run.describe()
    assert "exit status 1" in run.stdout and "budget" in run.stdout, run.describe()
    assert run.returncode == 0


@pytest.mark.parametrize("command,message", [
    ("tracer set cap 0", "tracer: tracer cap must be from 1 to 100000 (got 0)"),
    ("tracer set colour red", "tracer: no setting 'tracer colour'"),
    ("tracer set report sometimes", "tracer: tracer report is one of failure, always, never"),
    ("tracer run", "tracer: no program loaded"),
    ("tracer show", "tracer: nothing traced yet"),
    ("tracer stop", "tracer: not tracing"),
    ("tracer show /nonexistent.json", "tracer: cannot read report /nonexistent.json"),
    ("tracer attach abc", "tracer: tracer attach takes a process id (a number above 0), not 'abc'"),
    ("tracer attach 999999999", "tracer: no process 999999999"),
])
def test_errors_are_command_errors(command, message, tmp_path, lldb_tracer):
    """A mistake is a one-line command error; in batch mode lldb then exits 1."""
    run = run_lldb(None, run_command=command, report=None, tmp=tmp_path)
    run.debugger.assert_sane(run)
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: " + message), run.describe()
    assert run.returncode == 1, run.describe()


def test_start_twice(tmp_path, lldb_tracer):
    run = run_lldb(fixture_path("exit_code"), run_command="tracer start", report=None,
                   tmp=tmp_path, after=["tracer start"])
    run.debugger.assert_sane(run)
    assert "error: tracer: already tracing; `tracer stop` first" in run.stderr, run.describe()
    assert run.returncode == 1


def test_settings_listed_and_in_report(tmp_path, lldb_tracer):
    run = run_lldb(fixture_path("exit_code"), [3], settings={"cap": 7, "payload": 5,
                                                             "backtrace": 3},
                   commands=["tracer settings"], tmp=tmp_path)
    run.debugger.assert_sane(run)
    assert "tracer cap = 7" in run.stdout and "tracer payload = 5" in run.stdout, run.describe()
    rep = run.report
    validate(rep)
    assert_recorder(rep, cap=7, payload=5, backtrace=3)


# --------------------------------------------------------------------------- tracing

@OPTS
def test_socketpair_threads(opt, programs, tmp_path, lldb_tracer):
    """send/recv, sendmsg/recvmsg, writev/readv, write/read on a socketpair between threads,
    and two failed receives with errno EAGAIN read from the right thread's TLS."""
    name = "socketpair_threads" + ("-O2" if opt == "O2" else "")
    run, rep = trace(programs[name], tmp_path, ["3"])
    assert_exited(run, rep)
    assert_full_trace(run, rep, None)
    failed = [e for e in rep["events"] if e["ret"] == -1]
    assert [(e["fn"], e["errno"]) for e in failed] == [("read", 11), ("recv", 11)], failed
    assert len({e["tid"] for e in failed}) == 2, "one failure in each thread"
    assert {e["fn"] for e in rep["events"]} == {"send", "recv", "sendmsg", "recvmsg",
                                                "writev", "readv", "write", "read"}
    assert all(re.match(r"(unix:\[\d+\]->\[\d+\]|pipe:\[\d+\])$", e["endpoint"])
               for e in rep["events"])


@OPTS
def test_exec_self(opt, programs, tmp_path, lldb_tracer):
    """After exec (same pid, new image) tracing goes on: lldb stops at the exec, `tracer run`
    continues, the breakpoints follow the new image."""
    run, rep = trace(programs["exec_self" + ("-O2" if opt == "O2" else "")], tmp_path)
    assert_exited(run, rep)
    assert_full_trace(run, rep, None)
    assert len(rep["events"]) == 4


def test_start_then_plain_run(tmp_path, lldb_tracer):
    """`tracer start`, then lldb's own `run`: the same trace, reported at the exit."""
    run = run_lldb(fixture_path("threads_pipe"), ["2"], settings=BIG, tmp=tmp_path,
                   commands=["tracer start"], run_command="run")
    run.debugger.assert_sane(run)
    rep = run.report
    validate(rep)
    assert rep["stop"]["reason"] == "exit", rep["stop"]
    assert_full_trace(run, rep, "threads_pipe.c")


def test_start_then_plain_run_crash(programs, tmp_path, lldb_tracer):
    """`tracer start`, then lldb's own `run` into a SIGSEGV: the stop hook writes the report
    while the process is there (threads, backtraces, mailboxes)."""
    run = run_lldb(programs["crash_threads"], settings=BIG, report=None, tmp=tmp_path,
                   commands=["tracer start"], run_command="run")
    run.debugger.assert_sane(run)
    rep = run.report
    validate(rep)
    assert signal_name(rep["stop"]["signal"]) == "SIGSEGV", rep["stop"]
    assert "tracer: program failed: SIGSEGV" in run.stdout, run.describe()
    assert_events_match(rep, run.expectations)
    assert_mailboxes_match(rep, run.pending)
    assert len(process(rep, rep["program"]["pid"])["threads"]) == 3


# --------------------------------------------------------------------------- the end of a run

@pytest.mark.parametrize("ending,reason,sig,status", [
    ("kill", "signal", "SIGKILL", None),       # no stop: seen only as the process's end
    ("alarm", "signal", "SIGALRM", None),      # lldb passes SIGALRM without stopping
    ("9", "exit", None, 9),                    # lldb says "status 9" for this and SIGKILL
    ("0", "exit", None, 0),
])
def test_endings(ending, reason, sig, status, programs, tmp_path, lldb_tracer):
    """How the process ended, told apart although lldb reports a death by signal N and an
    exit with status N the same way (the tracer's breakpoint on _exit sees the status)."""
    run, rep = trace(programs["endings"], tmp_path, [ending])
    stop = rep["stop"]
    assert stop["reason"] == reason and signal_name(stop["signal"]) == sig and \
        stop["status"] == status, stop
    p = process(rep, rep["program"]["pid"])
    assert signal_name(p["exit_signal"]) == sig and p["exit_status"] == status, p
    assert_events_match(rep, run.expectations)
    assert (run.returncode == 0) == (ending == "0"), run.describe()


@OPTS
def test_crash_threads(opt, programs, tmp_path, lldb_tracer):
    """SIGSEGV in a worker thread: one report, stop = SIGSEGV in that thread, every thread
    with a backtrace (the crashing function, pthread_join, read), the pending bytes of the
    pipe and the socket in the mailboxes; lldb exits 1."""
    name = "crash_threads" + ("-O2" if opt == "O2" else "")
    run = run_lldb(programs[name], settings=BIG, report=None, tmp=tmp_path)
    run.debugger.assert_sane(run)
    assert run.returncode == 1, run.describe()
    rep = run.report
    validate(rep)
    crasher = run.expectations[0]["tid"]
    pid = run.expectations[0]["pid"]
    stop = rep["stop"]
    assert stop["reason"] == "signal" and signal_name(stop["signal"]) == "SIGSEGV", stop
    assert stop["pid"] == pid and stop["tid"] == crasher, stop
    assert "error: tracer: program failed: SIGSEGV in process" in run.stderr, run.describe()
    assert str(run.report_paths[0]) in run.stderr, run.describe()
    assert_events_match(rep, run.expectations)
    assert_recorder_consistent(rep)
    assert_mailboxes_match(rep, run.pending)
    p = process(rep, pid)
    assert p["alive"] is False and signal_name(p["exit_signal"]) == "SIGSEGV", p
    assert len(p["threads"]) == 3 and all(t["backtrace"] for t in p["threads"]), p["threads"]
    fns = {t["tid"]: " ".join(frame_functions(t)) for t in p["threads"]}
    assert "crash_now" in fns[crasher] or "crasher" in fns[crasher], fns
    assert any("join" in f for f in fns.values()), fns
    assert any("read" in f for f in fns.values()), fns
    frame = p["threads"][0]["backtrace"][0]
    assert re.match(r"0x[0-9a-f]+$", frame["pc"]), frame
    assert not any(pid_alive(x) for x in (pid,)), "lldb left the crashed program behind"


def test_crash_pending_parent(tmp_path, lldb_tracer):
    """crash_pending forks: the child sends and exits untraced (lldb), the parent crashes.
    The parent's mailboxes hold exactly what the child left, and its backtrace shows main."""
    run = run_lldb(fixture_path("crash_pending"), settings=BIG, report=None, tmp=tmp_path)
    run.debugger.assert_sane(run)
    assert run.returncode == 1, run.describe()
    rep = run.report
    validate(rep)
    parent = run.pending[0]["pid"]
    assert rep["program"]["pid"] == parent
    assert rep["events"] == [], "the child's sends are not traced under lldb"
    assert signal_name(rep["stop"]["signal"]) == "SIGSEGV", rep["stop"]
    assert_mailboxes_match(rep, run.pending)
    p = process(rep, parent)
    assert "main" in frame_functions(p["threads"][0]), p["threads"]


def test_deadlock_timeout(programs, tmp_path, lldb_tracer):
    """Two threads each blocked reading from the other: `tracer set timeout 5` interrupts,
    snapshots both (backtraces in read), kills the program; lldb exits 1."""
    run = run_lldb(programs["deadlock_threads"], settings={**BIG, "timeout": 5}, report=None,
                   tmp=tmp_path, timeout=90)
    run.debugger.assert_sane(run)
    assert run.duration < 60, f"the timeout took {run.duration:.0f} s\n" + run.describe()
    assert run.returncode == 1, run.describe()
    assert "timed out after 5 s" in run.stderr, run.describe()
    rep = run.report
    validate(rep)
    assert rep["stop"]["reason"] == "timeout", rep["stop"]
    p = process(rep, run.expectations[0]["pid"])
    assert p["alive"] is True and len(p["threads"]) == 2, p
    for t in p["threads"]:
        assert "read" in " ".join(frame_functions(t)), t
    assert_events_match(rep, run.expectations, ignore_unreturned=True)
    assert not pid_alive(p["pid"]), "the timed-out program was not killed"


@pytest.mark.xfail(strict=False, raises=AssertionError, reason=(
    "open: in about 1 run in 4 under load the two threads' events are reported under each "
    "other's tid (every event, not only those near the interrupt); lldb's breakpoint-callback "
    "frame -> thread is the suspect; see the closing note of the session that added this"))
def test_interrupt_then_snapshot(tmp_path, lldb_tracer):
    """Ctrl-C (SIGINT to lldb) while `tracer run` waits: the program stops, `tracer run`
    hands over, and `tracer snapshot FILE` shows it alive with both threads."""
    snap = tmp_path / "snap.json"

    def interrupt(proc, tmp):
        assert wait_for_lines(tmp / "expect.jsonl", 8, timeout=30), "sleeper_pipe did not start"
        proc.send_signal(signal.SIGINT)

    run = run_lldb(fixture_path("sleeper_pipe"), ["30"], tmp=tmp_path, during=interrupt,
                   after=[f"tracer snapshot {snap}", "process kill"], timeout=60)
    run.debugger.assert_sane(run)
    assert run.duration < 25, f"the interrupt took {run.duration:.0f} s\n" + run.describe()
    # lldb delivers the interrupt as SIGSTOP, or - when it lands while lldb steps a thread
    # over a breakpoint - as that step's trace stop.
    assert re.search(r"stop reason = (signal SIGSTOP|trace)", run.stdout), run.describe()
    rep = json.loads(snap.read_text())
    validate(rep)
    assert rep["stop"]["reason"] == "snapshot", rep["stop"]
    p = process(rep, rep["program"]["pid"])
    assert p["alive"] is True and len(p["threads"]) == 2, p
    # The interrupt may land after a traced call returned and before the fixture wrote that
    # call's expectation line: one more event than expected per thread is then tolerated.
    assert_events_match(rep, run.expectations, mode="prefix", ignore_unreturned=True,
                        interrupted=True)


def test_unwritable_store_then_snapshot(tmp_path, lldb_tracer):
    """A store that cannot be created: a clear error naming it; `tracer snapshot OTHER`
    then saves the same frozen data."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where the store's parent should be\n")
    store = blocker / "store"
    other = tmp_path / "other.json"
    run = run_lldb(fixture_path("exit_code"), [3], report=None, store=store, tmp=tmp_path,
                   script=f"tracer run\ntracer snapshot {other}\n", run_command=None)
    run.debugger.assert_sane(run)
    assert str(store) in run.output, run.describe()
    assert other.exists(), "tracer snapshot OTHER_PATH saved nothing\n" + run.describe()
    rep = json.loads(other.read_text())
    validate(rep)
    assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == 3, rep["stop"]
    assert_events_match(rep, run.expectations)


def test_show_stored_report(programs, tmp_path, lldb_tracer):
    crash = run_lldb(programs["crash_threads"], report=None, tmp=tmp_path / "crash")
    path = crash.report_paths[0] if crash.report_paths else None
    assert path, "no report to show\n" + crash.describe()
    run = run_lldb(None, run_command=f"tracer show {path}", report=None, tmp=tmp_path / "show")
    run.debugger.assert_sane(run)
    for want in ("pending in the pipe", "SIGSEGV", "crash_now", "mailbox fd", "process"):
        assert want in run.stdout, f"`tracer show FILE` lacks {want!r}\n" + run.describe()
    assert run.returncode == 0


def test_status_says_children_are_not_traced(tmp_path, lldb_tracer):
    run = run_lldb(fixture_path("exit_code"), [0], tmp=tmp_path, after=["tracer status",
                                                                        "tracer show"])
    run.debugger.assert_sane(run)
    assert "forked children not traced" in run.stdout, run.describe()
    assert re.search(r"2 recorded, 0 dropped", run.stdout), run.describe()
    assert "pipe:[" in run.stdout, run.describe()


def test_sites(tmp_path, lldb_tracer):
    run = run_lldb(fixture_path("threads_pipe", "O2"), run_command="tracer sites --class send,recv",
                   report=None, tmp=tmp_path)
    run.debugger.assert_sane(run)
    assert re.search(r"worker\s+write\s+threads_pipe\.c:\d+", run.stdout), run.describe()
    assert re.search(r"\d+ call sites", run.stdout), run.describe()


# --------------------------------------------------------------------------- yields and hunt

@pytest.fixture(scope="module")
def delays(tmp_path_factory):
    return build_c(DELAYS_C, "delays", tmp_path_factory.mktemp("lldb-delays"))


def test_yields_without_dwarf(tmp_path, lldb_tracer):
    """A program without DWARF: yields go on the called function's entry, and happen."""
    prog = build_c(DELAYS_C, "delays-nodebug", tmp_path, flags=("-O0", "-g0"))
    out = tmp_path / "d.txt"
    run, rep = trace(prog, tmp_path / "run", [out, 6, 0], commands=[
        "tracer yield on --function pthread_mutex_lock --probability 1 --seed 2 "
        "--strategy sleep:50000"])
    assert_exited(run, rep)
    assert "yields on at 1 functions (no DWARF: at their entry)" in run.stdout, run.describe()
    assert rep["yield"]["injected"] >= 6, rep["yield"]
    assert sum(int(x) for x in out.read_text().split()) > 30_000


def test_same_seed_same_decisions(delays, tmp_path, lldb_tracer):
    """The same seed makes the same decisions and sleeps; another seed does not."""
    seen = {}
    for i, seed in enumerate((5, 5, 6)):
        out = tmp_path / f"d{i}.txt"
        run = run_lldb(delays, [out, 12, 0], tmp=tmp_path / str(i), after=["tracer yield status"],
                       commands=[f"tracer yield on --function pthread_mutex_lock "
                                 f"--probability 0.5 --seed {seed} --strategy sleep:100000"])
        run.debugger.assert_sane(run)
        m = re.search(r"(\d+) injected of (\d+) decisions", run.stdout)
        assert m and run.returncode == 0, run.describe()
        seen[i] = (int(m.group(1)), int(m.group(2)), [int(x) for x in out.read_text().split()])

    def mismatches(a, b, tol=10_000):     # calls whose durations differ by more than tol
        return sum(abs(x - y) > tol for x, y in zip(a, b)) + abs(len(a) - len(b))
    assert seen[0][:2] == seen[1][:2] and 0 < seen[0][0] < seen[0][1] == 12, seen
    # A busy machine can stall one stop by a few ms: one outlier is tolerated.
    assert mismatches(seen[0][2], seen[1][2]) <= 1, seen
    assert mismatches(seen[0][2], seen[2][2]) >= 3, seen


def test_yield_off(tmp_path, lldb_tracer):
    """yield on, a run, yield off, a run: the second report has yields off and none
    injected, and its events are exact."""
    run = run_lldb(fixture_path("threads_pipe"), ["2"], settings=BIG, tmp=tmp_path,
                   commands=["tracer yield on --probability 1 --seed 3"],
                   after=["tracer yield off", "tracer yield status", "tracer run"])
    run.debugger.assert_sane(run)
    assert "no site left instrumented" in run.stdout and "tracer: yields off" in run.stdout
    assert len(run.reports) == 2, run.describe()
    on = [r for r in run.reports if r["yield"]["enabled"]]
    off = [r for r in run.reports if not r["yield"]["enabled"]]
    assert len(on) == 1 and on[0]["yield"]["injected"] > 0, [r["yield"] for r in run.reports]
    assert len(off) == 1 and off[0]["yield"]["injected"] == 0 and off[0]["yield"]["sites"] == 0
    assert_events_match(off[0], run.expectations[len(run.expectations) // 2:])


def test_hunt_finds_real_bug_and_replays(tmp_path, lldb_tracer):
    """check_then_act (tests/fixtures/bugs; threads): the hunt finds the overdraft, keeps one
    report and prints an lldb command that fails the same way with the same seed."""
    prog = bug("check_then_act")
    run = run_lldb(prog, run_command="tracer hunt --runs 30 --seed 100 --timeout 60",
                   report=None, tmp=tmp_path / "hunt", timeout=300)
    run.debugger.assert_sane(run)
    assert run.returncode == 1, run.describe()
    found = hunt_found(run.stderr, run.report_paths)
    assert found and found[2] and "error: tracer: hunt found" in run.stderr, run.describe()
    seed = found[0]
    rep = run.reports[run.report_paths.index(found[2])]
    validate(rep)
    assert rep["yield"]["seed"] == seed and rep["stop"]["status"] == 1, rep["stop"]
    lines = run.stdout.splitlines()
    command = lines[lines.index("hunt: replay it with") + 1].strip()
    assert command.startswith("lldb-16 -b ") and f"--seed {seed}" in command, command
    argv = shlex.split(command)
    k = argv.index("tracer run")
    replay_store = tmp_path / "replay" / "store"
    argv[k - 1:k - 1] = ["-o", f"tracer set store {replay_store}"]
    (tmp_path / "replay").mkdir()
    p = subprocess.run(argv, cwd=tmp_path / "replay", capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    again = [json.loads(f.read_text()) for f in replay_store.glob("*.json")]
    assert len(again) == 1 and again[0]["yield"]["seed"] == seed, again
    assert again[0]["stop"] == {**rep["stop"], "pid": again[0]["stop"]["pid"],
                                "tid": again[0]["stop"]["tid"]}


def test_hunt_without_failure(tmp_path, lldb_tracer):
    run = run_lldb(fixture_path("threads_pipe"), ["2"], report=None, tmp=tmp_path,
                   run_command="tracer hunt --runs 3 --seed 0 --timeout 60", timeout=120)
    run.debugger.assert_sane(run)
    assert run.returncode == 0, run.describe()
    assert re.findall(r"hunt: run (\d) of 3, seed (\d)(?: \(\w+\))?: passed", run.stdout) == \
        [("1", "0"), ("2", "1"), ("3", "2")], run.describe()
    assert "no failure in 3 runs" in run.output and not run.report_paths, run.describe()

