"""End-to-end tests of the lldb front end (issue 6): the real lldb-16 with lldb/tracer.py in
batch mode against real fixtures; every report validated against docs/report.schema.json and
compared with what the fixture wrote down (tests/e2e/harness.py's checks, unchanged).

lldb-16 follows one process: a forked child runs untraced (docs/lldb.md). FIXTURES below says,
for every program in tests/fixtures, whether its scenario runs under lldb or why not; programs
written here (threads instead of fork) cover the same calls in one process.
"""
import json
import re
import shlex
import shutil
import signal
import subprocess

import pytest

from harness import (all_fixture_names, assert_events_match, assert_mailboxes_match,
                     assert_recorder, assert_recorder_consistent, assert_sites, fixture_path,
                     frame_functions, pid_alive, process, signal_name, start_program, validate,
                     wait_for_lines)
from lldb_harness import LLDB, assert_lldb_sane, build_c, lldb_available, run_lldb

OPTS = pytest.mark.parametrize("opt", ["O0", "O2"])
BIG = {"cap": 10000}
FORKS = ("forks a child: lldb-16 follows one process, so the child would run untraced "
         "(docs/lldb.md); the parent-only trace is checked by test_forking_parent_only")

# Every fixture program, and how it runs under lldb: None = a test below runs it; text = the
# documented lldb limitation that keeps its scenario from running as under gdb.
FIXTURES = {
    "chatty": None, "exit_code": None, "not_ipc": None, "sleeper_pipe": None,
    "threads_pipe": None, "user_breakpoint": None,
    "crash_pending": None,          # the parent crashes: its mailboxes and backtrace checked
    "child_assert": FORKS, "deadlock_read": FORKS, "exec_child": FORKS,
    "pipe_pingpong": FORKS, "posix_mq": FORKS, "sigchld_recv": FORKS,
    "socketpair_pingpong": FORKS, "sysv_msg": FORKS, "tcp_loopback": FORKS,
    "udp_loopback": FORKS, "unix_stream": FORKS,
}


@pytest.fixture(scope="session")
def lldb_tracer():
    """Skips when lldb-16 is not installed (scripts/install-deps installs it); fails with one
    clear message when it is but cannot load the front end."""
    if not shutil.which(LLDB):
        pytest.skip(f"{LLDB} is not installed (scripts/install-deps installs it)")
    ok, why = lldb_available()
    if not ok:
        pytest.fail(f"the lldb front end cannot be loaded: {why}", pytrace=False)


def trace(program, tmp_path, args=(), settings=BIG, **kw):
    """Runs `program` under `tracer run` with `report always`; lldb stayed sane, exactly one
    report was written and it is schema-valid. Returns (run, report)."""
    run = run_lldb(program, args, settings=settings, tmp=tmp_path, **kw)
    assert_lldb_sane(run)
    rep = run.report
    validate(rep)
    assert rep["version"] == 1
    assert rep["debugger"].startswith("lldb 16") and "forked children not traced" in \
        rep["debugger"], rep["debugger"]
    return run, rep


def assert_exited(run, rep, status=0):
    stop = rep["stop"]
    assert stop["reason"] == "exit" and stop["status"] == status, (
        f"stop {stop}, expected a normal exit with status {status}\n" + run.describe())
    assert "FIXTURE-FAIL" not in run.output, run.describe()
    assert (run.returncode == 0) == (status == 0), (
        f"lldb exit status {run.returncode} for a program exiting {status}\n" + run.describe())


def assert_full_trace(run, rep, source, payload=64):
    assert run.expectations, "the fixture wrote no expectations\n" + run.describe()
    assert_events_match(rep, run.expectations, payload=payload)
    assert_recorder(rep, count=len(run.expectations), dropped=0, overflow=False,
                    payload=payload)
    assert_recorder_consistent(rep)
    if source:
        assert_sites(rep, source)
    else:                           # calls made in more than one source file
        assert all(e["site"]["file"] and e["site"]["line"] for e in rep["events"]), \
            [e["site"] for e in rep["events"]]


def test_every_fixture_has_an_lldb_decision():
    """A new fixture must say whether it runs under lldb (and if not, which limitation)."""
    assert sorted(FIXTURES) == all_fixture_names()


@pytest.mark.parametrize("name", sorted(n for n, why in FIXTURES.items() if why))
def test_fixture_not_run_under_lldb(name):
    pytest.skip(FIXTURES[name])


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
	/* Both ends of the pipe show its bytes; only the receiving socket holds the message. */
	fx_expect_pending(getpid(), a[0], ep_a, pipe_msg, sizeof pipe_msg - 1, 0);
	fx_expect_pending(getpid(), a[1], ep_a, pipe_msg, sizeof pipe_msg - 1, 0);
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
    assert_lldb_sane(run)
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
    ("tracer attach abc", "tracer: tracer attach takes a process id, not 'abc'"),
    ("tracer attach 999999999", "tracer: no process 999999999"),
])
def test_errors_are_command_errors(command, message, tmp_path, lldb_tracer):
    """A mistake is a one-line command error; in batch mode lldb then exits 1."""
    run = run_lldb(None, run_command=command, report=None, tmp=tmp_path)
    assert_lldb_sane(run)
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: " + message), run.describe()
    assert run.returncode == 1, run.describe()


def test_start_twice(tmp_path, lldb_tracer):
    run = run_lldb(fixture_path("exit_code"), run_command="tracer start", report=None,
                   tmp=tmp_path, after=["tracer start"])
    assert_lldb_sane(run)
    assert "error: tracer: already tracing; `tracer stop` first" in run.stderr, run.describe()
    assert run.returncode == 1


def test_settings_listed_and_in_report(tmp_path, lldb_tracer):
    run = run_lldb(fixture_path("exit_code"), [3], settings={"cap": 7, "payload": 5,
                                                             "backtrace": 3},
                   commands=["tracer settings"], tmp=tmp_path)
    assert_lldb_sane(run)
    assert "tracer cap = 7" in run.stdout and "tracer payload = 5" in run.stdout, run.describe()
    rep = run.report
    validate(rep)
    assert_recorder(rep, cap=7, payload=5, backtrace=3)


# --------------------------------------------------------------------------- tracing

@OPTS
def test_threads_pipe(opt, tmp_path, lldb_tracer):
    """Four threads writing to and reading from one pipe: each thread's own sequence."""
    run, rep = trace(fixture_path("threads_pipe", opt), tmp_path, ["5"])
    assert_exited(run, rep)
    assert_full_trace(run, rep, "threads_pipe.c")
    assert len({e["tid"] for e in rep["events"]}) == 4


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


def test_not_ipc(tmp_path, lldb_tracer):
    """Regular files, the terminal lldb gives the program, /dev/null, /dev/zero: no event."""
    run, rep = trace(fixture_path("not_ipc"), tmp_path)
    assert_exited(run, rep)
    assert rep["events"] == [], rep["events"]
    assert_recorder(rep, count=0, dropped=0, overflow=False)
    assert "to stdout" in run.stdout and "printf to stdout 1" in run.stdout, run.describe()


def test_budget_overflow(tmp_path, lldb_tracer):
    """`tracer set budget 20`: exactly the first 20 events, overflow set, every tracer
    breakpoint gone, and the program runs on to its end (200 calls made)."""
    run, rep = trace(fixture_path("chatty"), tmp_path, ["100"], settings={"budget": 20},
                     after=["tracer status"])
    assert_exited(run, rep, 0)
    assert len(run.expectations) == 200, "the program did not run to completion"
    assert_recorder(rep, budget=20, count=20, dropped=0, overflow=True)
    assert_events_match(rep, run.expectations[:20])
    assert "breakpoints: 0 functions" in run.stdout, run.describe()


def test_ring_keeps_last_cap(tmp_path, lldb_tracer):
    run, rep = trace(fixture_path("chatty"), tmp_path, ["60"], settings={"cap": 10})
    assert_exited(run, rep, 0)
    assert_recorder(rep, cap=10, count=120, dropped=110, overflow=False)
    assert_recorder_consistent(rep)
    assert_events_match(rep, run.expectations[-10:])


def test_payload_setting(tmp_path, lldb_tracer):
    run, rep = trace(fixture_path("chatty"), tmp_path, ["3"], settings={**BIG, "payload": 4})
    assert_exited(run, rep)
    assert_full_trace(run, rep, "chatty.c", payload=4)
    assert all(e["truncated"] for e in rep["events"])


@OPTS
def test_user_breakpoint(opt, tmp_path, lldb_tracer):
    """Your breakpoint stops the program (three times) while tracing: `tracer run` hands the
    stop over, `continue` resumes; the report is written at the exit all the same."""
    script = "breakpoint set -n fixture_marker\ntracer run\n" + \
        'script print("USER-STOP", lldb.frame.FindRegister("rdi").GetValueAsUnsigned())\n' \
        "continue\n" * 1 + \
        'script print("USER-STOP", lldb.frame.FindRegister("rdi").GetValueAsUnsigned())\n' \
        "tracer run\n" + \
        'script print("USER-STOP", lldb.frame.FindRegister("rdi").GetValueAsUnsigned())\n' \
        "continue\n"
    run = run_lldb(fixture_path("user_breakpoint", opt), settings=BIG, tmp=tmp_path,
                   script=script, run_command=None)
    assert_lldb_sane(run)
    stops = re.findall(r"USER-STOP (\d+)", run.stdout)
    assert stops == ["1", "2", "3"], f"stops seen by the user: {stops}\n" + run.describe()
    assert "stop reason = breakpoint 1.1" in run.stdout, run.describe()
    rep = run.report
    validate(rep)
    assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == 0, rep["stop"]
    assert_full_trace(run, rep, "user_breakpoint.c")


def test_start_then_plain_run(tmp_path, lldb_tracer):
    """`tracer start`, then lldb's own `run`: the same trace, reported at the exit."""
    run = run_lldb(fixture_path("threads_pipe"), ["2"], settings=BIG, tmp=tmp_path,
                   commands=["tracer start"], run_command="run")
    assert_lldb_sane(run)
    rep = run.report
    validate(rep)
    assert rep["stop"]["reason"] == "exit", rep["stop"]
    assert_full_trace(run, rep, "threads_pipe.c")


def test_start_then_plain_run_crash(programs, tmp_path, lldb_tracer):
    """`tracer start`, then lldb's own `run` into a SIGSEGV: the stop hook writes the report
    while the process is there (threads, backtraces, mailboxes)."""
    run = run_lldb(programs["crash_threads"], settings=BIG, report=None, tmp=tmp_path,
                   commands=["tracer start"], run_command="run")
    assert_lldb_sane(run)
    rep = run.report
    validate(rep)
    assert signal_name(rep["stop"]["signal"]) == "SIGSEGV", rep["stop"]
    assert "tracer: program failed: SIGSEGV" in run.stdout, run.describe()
    assert_events_match(rep, run.expectations)
    assert_mailboxes_match(rep, run.pending)
    assert len(process(rep, rep["program"]["pid"])["threads"]) == 3


# --------------------------------------------------------------------------- the end of a run

@pytest.mark.parametrize("status,policy,nreports", [
    (0, None, 0), (0, "failure", 0), (0, "always", 1), (0, "never", 0),
    (3, None, 1), (3, "failure", 1), (3, "never", 0),
])
def test_exit_status_report_policy(status, policy, nreports, tmp_path, lldb_tracer):
    """Exit 0 writes no report by default; exit 3 does. `lldb -b` exits 1 when the program
    failed and the outcome line names the report."""
    run = run_lldb(fixture_path("exit_code"), [status], report=policy, tmp=tmp_path)
    assert_lldb_sane(run)
    assert len(run.reports) == nreports, run.describe()
    if nreports:
        rep = run.report
        validate(rep)
        assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == status, rep["stop"]
        assert_events_match(rep, run.expectations)
        assert str(run.report_paths[0]) in run.output, run.describe()
    assert (run.returncode == 0) == (status == 0), run.describe()
    if status:
        assert f"error: tracer: program failed: exit status {status}" in run.stderr, \
            run.describe()


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
    assert_lldb_sane(run)
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
    assert_lldb_sane(run)
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
    assert_lldb_sane(run)
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


def test_interrupt_then_snapshot(tmp_path, lldb_tracer):
    """Ctrl-C (SIGINT to lldb) while `tracer run` waits: the program stops, `tracer run`
    hands over, and `tracer snapshot FILE` shows it alive with both threads."""
    snap = tmp_path / "snap.json"

    def interrupt(proc, tmp):
        assert wait_for_lines(tmp / "expect.jsonl", 8, timeout=30), "sleeper_pipe did not start"
        proc.send_signal(signal.SIGINT)

    run = run_lldb(fixture_path("sleeper_pipe"), ["30"], tmp=tmp_path, during=interrupt,
                   after=[f"tracer snapshot {snap}", "process kill"], timeout=60)
    assert_lldb_sane(run)
    assert run.duration < 25, f"the interrupt took {run.duration:.0f} s\n" + run.describe()
    # lldb delivers the interrupt as SIGSTOP, or - when it lands while lldb steps a thread
    # over a breakpoint - as that step's trace stop.
    assert re.search(r"stop reason = (signal SIGSTOP|trace)", run.stdout), run.describe()
    rep = json.loads(snap.read_text())
    validate(rep)
    assert rep["stop"]["reason"] == "snapshot", rep["stop"]
    p = process(rep, rep["program"]["pid"])
    assert p["alive"] is True and len(p["threads"]) == 2, p
    assert_events_match(rep, run.expectations, mode="prefix", ignore_unreturned=True)


def test_snapshot_at_user_breakpoint(tmp_path, lldb_tracer):
    """Stopped at your breakpoint, `tracer snapshot FILE` shows the pending bytes without
    consuming them: the program then reads every one (crash_pending --peek checks them)."""
    snap = tmp_path / "snap.json"
    script = f"breakpoint set -n fixture_marker\ntracer run\ntracer snapshot {snap}\n" \
             "tracer run\n"
    run = run_lldb(fixture_path("crash_pending"), ["--peek"], settings=BIG, tmp=tmp_path,
                   script=script, run_command=None)
    assert_lldb_sane(run)
    assert snap.exists(), "tracer snapshot FILE wrote nothing\n" + run.describe()
    rep = json.loads(snap.read_text())
    validate(rep)
    assert rep["stop"]["reason"] == "snapshot", rep["stop"]
    assert_mailboxes_match(rep, run.pending)
    parent = run.pending[0]["pid"]
    assert process(rep, parent)["alive"] is True
    reads = [e for e in run.expectations if e["pid"] == parent and e["dir"] == "recv"]
    assert [bytes.fromhex(e["data_hex"]) for e in reads] == \
        [bytes.fromhex(p["data_hex"]) for p in run.pending], run.describe()
    assert "FIXTURE-FAIL" not in run.output, run.describe()
    assert "tracer: program exited normally" in run.stdout, run.describe()


def test_unwritable_store_then_snapshot(tmp_path, lldb_tracer):
    """A store that cannot be created: a clear error naming it; `tracer snapshot OTHER`
    then saves the same frozen data."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where the store's parent should be\n")
    store = blocker / "store"
    other = tmp_path / "other.json"
    run = run_lldb(fixture_path("exit_code"), [3], report=None, store=store, tmp=tmp_path,
                   script=f"tracer run\ntracer snapshot {other}\n", run_command=None)
    assert_lldb_sane(run)
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
    assert_lldb_sane(run)
    for want in ("pending in the pipe", "SIGSEGV", "crash_now", "mailbox fd", "process"):
        assert want in run.stdout, f"`tracer show FILE` lacks {want!r}\n" + run.describe()
    assert run.returncode == 0


def test_status_says_children_are_not_traced(tmp_path, lldb_tracer):
    run = run_lldb(fixture_path("exit_code"), [0], tmp=tmp_path, after=["tracer status",
                                                                        "tracer show"])
    assert_lldb_sane(run)
    assert "forked children not traced" in run.stdout, run.describe()
    assert re.search(r"2 recorded, 0 dropped", run.stdout), run.describe()
    assert "pipe:[" in run.stdout, run.describe()


@pytest.mark.parametrize("name", ["pipe_pingpong", "socketpair_pingpong"])
def test_forking_parent_only(name, tmp_path, lldb_tracer):
    """The documented limitation, checked: under lldb a forking program's parent is traced
    exactly, its child runs to its end untraced (and unharmed: no breakpoint left in it)."""
    run, rep = trace(fixture_path(name), tmp_path, ["3"])
    assert_exited(run, rep)
    parent = rep["program"]["pid"]
    mine = [e for e in run.expectations if e["pid"] == parent]
    assert mine and len(mine) < len(run.expectations), run.describe()
    assert_events_match(rep, mine)
    assert {e["pid"] for e in rep["events"]} == {parent}


# --------------------------------------------------------------------------- attach

def test_attach_running_process(tmp_path, lldb_tracer):
    prog = fixture_path("sleeper_pipe")
    proc, tmp = start_program(prog, ["3"], tmp=tmp_path)
    try:
        assert wait_for_lines(tmp / "expect.jsonl", 8), "sleeper_pipe did not start"
        run = run_lldb(None, settings=BIG, tmp=tmp, commands=[f"tracer attach {proc.pid}"],
                       run_command="tracer run", timeout=120, keep=(proc.pid,))
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_lldb_sane(run)
    assert status == 0, f"sleeper_pipe exited with {status}\n" + run.describe()
    rep = run.report
    validate(rep)
    assert rep["program"]["pid"] == proc.pid
    assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == 0, rep["stop"]
    assert len({e["tid"] for e in rep["events"]}) == 2, "both threads traced after attach"
    assert_events_match(rep, run.expectations, mode="suffix", min_events=10)
    assert_recorder_consistent(rep)


def test_attach_snapshot_detach(tmp_path, lldb_tracer):
    prog = fixture_path("sleeper_pipe")
    proc, tmp = start_program(prog, ["2"], tmp=tmp_path)
    snap = tmp / "snap.json"
    try:
        assert wait_for_lines(tmp / "expect.jsonl", 8), "sleeper_pipe did not start"
        run = run_lldb(None, tmp=tmp, run_command=f"tracer attach {proc.pid}",
                       after=[f"tracer snapshot {snap}", "tracer stop", "process detach"],
                       timeout=60, keep=(proc.pid,))
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert_lldb_sane(run)
    assert status == 0, f"sleeper_pipe exited with {status} after detach\n" + run.describe()
    rep = json.loads(snap.read_text())
    validate(rep)
    p = process(rep, proc.pid)
    assert p["alive"] is True and len(p["threads"]) == 2, p
    assert all(t["backtrace"] for t in p["threads"]), p


# --------------------------------------------------------------------------- sites

def test_sites(tmp_path, lldb_tracer):
    run = run_lldb(fixture_path("threads_pipe", "O2"), run_command="tracer sites --class send,recv",
                   report=None, tmp=tmp_path)
    assert_lldb_sane(run)
    assert re.search(r"worker\s+write\s+threads_pipe\.c:\d+", run.stdout), run.describe()
    assert re.search(r"\d+ call sites", run.stdout), run.describe()


# --------------------------------------------------------------------------- yields and hunt

DELAYS = r"""
/* delays OUT N: times N pthread_mutex_lock calls (one thread) and writes each duration in
 * microseconds to OUT, one a line. An injected sleep shows as a slow lock. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

static long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	FILE *out = fopen(argv[1], "w");
	int n = atoi(argv[2]);
	if (!out)
		return 2;
	for (int i = 0; i < n; i++) {
		long t0 = now_us();
		pthread_mutex_lock(&m);
		fprintf(out, "%ld\n", now_us() - t0);
		pthread_mutex_unlock(&m);
	}
	return fclose(out) != 0;
}
"""


@pytest.fixture(scope="module")
def delays(tmp_path_factory):
    return build_c(DELAYS, "delays", tmp_path_factory.mktemp("lldb-delays"))


def site_count(program, tmp):
    run = run_lldb(program, run_command="tracer sites", report=None, tmp=tmp)
    assert_lldb_sane(run)
    m = re.search(r"^(\d+) call sites$", run.stdout, re.M)
    assert m, run.describe()
    return int(m.group(1))


def test_yields_injected_threads_pipe(tmp_path, lldb_tracer):
    """Probability 1, seed 7: the report says yields were on (seed, strategy, probability,
    sites), many were injected, and every thread's IPC is exactly what the program did."""
    prog = fixture_path("threads_pipe")
    nsites = site_count(prog, tmp_path / "sites")
    run, rep = trace(prog, tmp_path / "run", ["5"],
                     commands=["tracer yield on --probability 1 --seed 7"], timeout=90)
    assert_exited(run, rep)
    y = rep["yield"]
    assert y["enabled"] is True and y["seed"] == 7 and y["probability"] == 1, y
    assert y["strategy"] == "sleep:1000" and y["sites"] == nsites, y
    assert y["injected"] >= 80, y
    assert_events_match(rep, run.expectations)
    assert run.report_paths[0].name.endswith("-s7.json"), run.report_paths


def test_yield_strategy_yield(tmp_path, lldb_tracer):
    run, rep = trace(fixture_path("threads_pipe", "O2"), tmp_path, ["3"],
                     commands=["tracer yield on --probability 1 --seed 11 --strategy yield"])
    assert_exited(run, rep)
    y = rep["yield"]
    assert y["enabled"] and y["strategy"] == "yield" and y["seed"] == 11 and y["injected"] > 0
    assert_events_match(rep, run.expectations)


def test_sleeps_really_happen(delays, tmp_path, lldb_tracer):
    """Every pthread_mutex_lock gets a sleep of up to 100 ms with probability 1 (the program
    sees its calls take long); with probability 0 (the same stops) they stay fast."""
    n, total = 12, {}
    for p in ("1", "0"):
        out = tmp_path / f"d{p}.txt"
        run, rep = trace(delays, tmp_path / p, [out, n], commands=[
            f"tracer yield on --function pthread_mutex_lock --probability {p} --seed 7 "
            "--strategy sleep:100000"])
        assert_exited(run, rep)
        y = rep["yield"]
        assert y["sites"] == 1 and y["injected"] == (n if p == "1" else 0), y
        d = [int(x) for x in out.read_text().split()]
        assert len(d) == n
        total[p] = sum(d)
    assert total["1"] > 100_000 and total["0"] < 100_000, total


def test_yields_without_dwarf(tmp_path, lldb_tracer):
    """A program without DWARF: yields go on the called function's entry, and happen."""
    prog = build_c(DELAYS, "delays-nodebug", tmp_path, flags=("-O0", "-g0"))
    out = tmp_path / "d.txt"
    run, rep = trace(prog, tmp_path / "run", [out, 6], commands=[
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
        run = run_lldb(delays, [out, 12], tmp=tmp_path / str(i), after=["tracer yield status"],
                       commands=[f"tracer yield on --function pthread_mutex_lock "
                                 f"--probability 0.5 --seed {seed} --strategy sleep:100000"])
        assert_lldb_sane(run)
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
    assert_lldb_sane(run)
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
    prog = harness_bug("check_then_act")
    run = run_lldb(prog, run_command="tracer hunt --runs 30 --seed 100 --timeout 60",
                   report=None, tmp=tmp_path / "hunt", timeout=300)
    assert_lldb_sane(run)
    assert run.returncode == 1, run.describe()
    m = re.search(r"error: tracer: hunt found a failure with seed (\d+)", run.stderr)
    assert m, run.describe()
    seed = int(m.group(1))
    rep = run.report
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
    assert_lldb_sane(run)
    assert run.returncode == 0, run.describe()
    assert re.findall(r"hunt: run (\d) of 3, seed (\d): passed", run.stdout) == \
        [("1", "0"), ("2", "1"), ("3", "2")], run.describe()
    assert "no failure in 3 runs" in run.output and not run.report_paths, run.describe()


def harness_bug(name):
    """build/bugs/NAME (the Makefile's `fixtures` target builds it)."""
    path = fixture_path("threads_pipe").parent.parent / "bugs" / name
    if not path.exists():
        pytest.skip(f"{path} is not built: `make fixtures`")
    return path
