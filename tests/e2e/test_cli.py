"""bin/tracer end to end, with the real gdb and lldb-16: run, hunt (JUnit XML), replay of the
report a hunt found, show, export, and bad usage.

Exit status: 0 passed / no failure found, 1 failed / a failure was found (the report's path
on the last line of stdout), 2 Tracer's own error or bad usage (one line on stderr).
"""
import json
import os
import re
import subprocess
from xml.etree import ElementTree

import pytest

from harness import REPO, bug, fixture_path

TRACER = REPO / "bin" / "tracer"

def cli(*argv, cwd, exe=TRACER, timeout=300):
    p = subprocess.run([str(exe), *[str(a) for a in argv]], cwd=cwd, capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, timeout=timeout)
    p.describe = (f"$ tracer {' '.join(map(str, argv))}\n--- exit {p.returncode}\n"
                  f"--- stdout:\n{p.stdout}\n--- stderr:\n{p.stderr}")
    return p


def last_report(p):
    """The report path on the last line of stdout."""
    last = p.stdout.rstrip("\n").splitlines()[-1]
    m = re.search(r"; report: (\S+)$", last)
    assert m, p.describe
    return m.group(1)


def assert_no_chatter(p):
    for chatter in ("[Inferior", "libthread_db", "Current executable set to", "(lldb)",
                    "Traceback", "tracer store is"):
        assert chatter not in p.stdout + p.stderr, p.describe


@pytest.mark.parametrize("status", [0, 3])
def test_run_exit_codes_and_report(debugger, tmp_path, status):
    """A passing program: exit 0; a failing one: exit 1; both write the report asked for and
    name it on the last line."""
    store = tmp_path / "store"
    p = cli("run", "--debugger", debugger.name, "--store", store, "--report", "always",
               "--", fixture_path("exit_code"), status, cwd=tmp_path)
    assert p.returncode == (1 if status else 0), p.describe
    assert_no_chatter(p)
    assert p.stderr == "", p.describe
    path = tmp_path / last_report(p)
    assert path.parent == store and [path] == list(store.glob("*.json")), p.describe
    report = json.loads(path.read_text())
    assert report["stop"]["status"] == status and report["program"]["argv"][1:] == [str(status)]
    assert report["debugger"].startswith(debugger.name) and report["timeout"] == 0
    assert [e["fn"] for e in report["events"]] == ["write", "read"], report["events"]


def test_run_through_a_symlink_from_any_directory(tracer, tmp_path):
    """bin/tracer on PATH as a symlink, run elsewhere, finds its repository; a program is
    looked up on PATH as a shell would; settings pass as options."""
    (tmp_path / "bin").mkdir()
    link = tmp_path / "bin" / "tracer"
    link.symlink_to(TRACER)
    env_path = f"{tmp_path / 'bin'}:{fixture_path('exit_code').parent}:{os.environ['PATH']}"
    p = subprocess.run(["tracer", "run", "--cap", "1", "--payload", "4", "--", "exit_code", "5"],
                       cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PATH=env_path), timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    report = json.loads((tmp_path / p.stdout.split("; report: ")[-1].strip()).read_text())
    assert report["recorder"]["cap"] == 1 and report["recorder"]["payload"] == 4
    assert report["stop"]["status"] == 5 and [e["fn"] for e in report["events"]] == ["read"]


def test_help_lists_every_setting(tmp_path):
    """-h on each subcommand; run's and hunt's options are the settings, one to one."""
    import sys
    sys.path.insert(0, str(REPO))
    from tracerlib import settings
    for command in ("run", "hunt", "replay", "show", "export"):
        p = cli(command, "-h", cwd=tmp_path)
        assert p.returncode == 0 and p.stdout.startswith("usage: tracer " + command), p.describe
        if command in ("run", "hunt"):
            for s in settings.SETTINGS:
                assert f"--{s.name}" in p.stdout, (s.name, p.describe)


def test_hunt_junit_replay_show_export(debugger, tmp_path):
    """check_then_act (two clerks, one balance): the hunt finds the overdraft (exit 1, the
    report on the last line), the JUnit XML names the failing seed and the report; replaying
    the report K times says how many runs reproduced it, keeps one report of the
    reproduction, and exits 1 since it came back; show and export read the report."""
    store, junit = tmp_path / "store", tmp_path / "hunt.xml"
    p = cli("hunt", "--debugger", debugger.name, "--runs", 30, "--seed", 100,
               "--timeout", 60, "--class", "sync", "--store", store, "--junit", junit,
               "--", bug("check_then_act"), cwd=tmp_path, timeout=600)
    assert p.returncode == 1, p.describe
    assert_no_chatter(p)
    last = p.stdout.rstrip().splitlines()[-1]
    m = re.match(r"tracer: hunt found a failure with seed (\d+) \(it failed again in "
                 r"(\d) of (\d) confirming runs\); report: (\S+)$", last)
    assert m, p.describe
    seed, path, confirmed = int(m.group(1)), m.group(4), m.group(2) == m.group(3) == "2"
    report = json.loads((tmp_path / path).read_text())
    assert report["yield"]["seed"] == seed and report["stop"]["status"] == 1
    assert (report["yield"]["classes"], report["yield"]["module"],
            report["yield"]["functions"]) == ("sync", None, [])
    assert report["timeout"] == 60
    runs = re.findall(r"^hunt: run (\d+) of 30, seed (\d+)(?: \(\w+\))?: (passed|FAILED)", p.stdout, re.M)
    failed = [s for _, s, verdict in runs if verdict == "FAILED"]
    # a confirmed find ends the hunt; one that came back less often, the runs
    assert runs and str(seed) in failed, p.describe
    assert runs[-1] == (str(len(runs)), str(seed), "FAILED") if confirmed else len(runs) == 30

    suite = ElementTree.parse(junit).getroot()
    assert suite.tag == "testsuites"
    (ts,) = suite.findall("testsuite")
    cases = ts.findall("testcase")
    assert ts.get("tests") == str(len(runs)) == str(len(cases))
    assert ts.get("failures") == str(len(failed))
    assert ts.get("errors") == "0" and float(ts.get("time")) > 0
    assert [c.get("name") for c in cases] == [f"seed {s}" for _, s, _ in runs]
    failures = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert sorted(failures) == sorted(f"seed {s}" for s in failed)
    assert f"seed: {seed}" in failures[f"seed {seed}"].text
    assert path in failures[f"seed {seed}"].text

    k = 3
    replay_store = tmp_path / "replay"
    r = cli("replay", path, "--runs", k, "--debugger", debugger.name, "--store",
               replay_store, cwd=tmp_path, timeout=600)
    assert_no_chatter(r)
    verdicts = re.findall(r"^replay: run \d of 3: (reproduced|not reproduced)", r.stdout, re.M)
    assert len(verdicts) == k, r.describe
    n = verdicts.count("reproduced")
    assert n >= 1, r.describe          # the seed's schedule, replayed, overdraws again
    last = r.stdout.rstrip().splitlines()[-1]
    assert last.startswith(f"tracer: replay: {n} of {k} runs reproduced the failure "
                           "(exit status 1)"), r.describe
    assert r.returncode == 1, r.describe
    again = list(replay_store.glob("*.json"))
    assert len(again) == 1 and last.endswith(f"report: {replay_store.name}/{again[0].name}") \
        or last.endswith(f"report: {again[0]}"), r.describe
    rep2 = json.loads(again[0].read_text())
    assert rep2["yield"]["seed"] == seed and rep2["stop"]["status"] == 1
    assert rep2["yield"]["classes"] == "sync" and rep2["timeout"] == 60

    s = cli("show", path, cwd=tmp_path)
    assert s.returncode == 0 and f"seed {seed}" in s.stdout, s.describe
    for fmt in ("html", "chrome"):
        out = tmp_path / f"hunt.{fmt}"
        e = cli("export", path, "--format", fmt, "-o", out, cwd=tmp_path)
        assert e.returncode == 0 and out.is_file(), e.describe
    assert "<html" in (tmp_path / "hunt.html").read_text().lower()
    assert "traceEvents" in json.loads((tmp_path / "hunt.chrome").read_text())


def test_replay_of_a_passing_run_is_an_error(tracer, tmp_path):
    p = cli("run", "--report", "always", "--store", tmp_path, "--",
            fixture_path("exit_code"), 0, cwd=tmp_path)
    assert p.returncode == 0, p.describe
    r = cli("replay", last_report(p), cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "", r.describe
    assert r.stderr.count("\n") == 1 and "records no failure" in r.stderr, r.describe


@pytest.mark.parametrize("argv", [
    ["run", "--bogus", "--", "true"],
    ["run", "--cap", "0", "--", "true"],
    ["run", "--mode", "fast", "--", "true"],
    ["run", "--debugger", "dbx", "--", "true"],
    ["run", "--", "no-such-program-here"],
    ["run"],
    ["hunt", "--", "true"],
    ["hunt", "--runs", "0", "--", "true"],
    ["frobnicate"],
    [],
    ["replay", "/nonexistent/report.json"],
    ["show", "/nonexistent/report.json"],
    ["export", "/nonexistent/report.json", "--format", "svg", "-o", "x"],
], ids=lambda a: " ".join(a) or "nothing")
def test_bad_usage_is_one_line_and_exit_2(tmp_path, argv):
    p = cli(*argv, cwd=tmp_path)
    assert p.returncode == 2 and p.stdout == "", p.describe
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("tracer"), p.describe


def test_bad_yield_option_stops_before_any_run(debugger, tmp_path):
    """gdb goes on after a failed command in batch mode: a yield option Tracer refuses must
    still end the hunt with exit 2, not hunt with other sites."""
    p = cli("hunt", "--debugger", debugger.name, "--runs", 2, "--function", "nosuch",
               "--", fixture_path("threads_pipe"), 2, cwd=tmp_path)
    assert p.returncode == 2 and "hunt: run" not in p.stdout, p.describe
    assert p.stderr.count("\n") == 1 and "no call to nosuch" in p.stderr, p.describe


ABORTS_C = r"""
#include <stdlib.h>
#include <unistd.h>
/* One message through a pipe, then abort(): SIGABRT in the first process, every time. */
int main(void)
{
	int fds[2];
	char c;

	if (pipe(fds) || write(fds[1], "x", 1) != 1 || read(fds[0], &c, 1) != 1)
		return 2;
	abort();
}
"""


def test_signal_and_timeout_failures_replay(debugger, tmp_path):
    """A fatal signal and a timeout are failures (exit 1) under both debuggers, and a replay
    of each counts the runs that stop the same way: the same signal; a timeout again (the
    report's timeout is used again)."""
    from harness import build_c
    prog = build_c(ABORTS_C, "aborts", tmp_path)
    p = cli("run", "--debugger", debugger.name, "--", prog, cwd=tmp_path)
    assert p.returncode == 1 and "SIGABRT" in p.stdout.splitlines()[-1], p.describe
    path = last_report(p)
    assert json.loads((tmp_path / path).read_text())["stop"]["signal"] == "SIGABRT"
    r = cli("replay", path, "--runs", 2, "--debugger", debugger.name, cwd=tmp_path)
    assert r.returncode == 1, r.describe
    assert "tracer: replay: 2 of 2 runs reproduced the failure (SIGABRT)" in r.stdout, \
        r.describe

    p = cli("run", "--debugger", debugger.name, "--timeout", 1, "--mode", "breakpoint",
            "--", fixture_path("deadlock_read"), cwd=tmp_path)
    assert p.returncode == 1 and "timed out" in p.stdout.splitlines()[-1], p.describe
    report = json.loads((tmp_path / last_report(p)).read_text())
    assert report["stop"]["reason"] == "timeout" and report["timeout"] == 1
    r = cli("replay", last_report(p), "--debugger", debugger.name, cwd=tmp_path)
    assert r.returncode == 1 and "1 of 1 runs reproduced the failure (a timeout)" in r.stdout, \
        r.describe


def test_hunt_progress_bar_on_a_terminal(tracer, tmp_path):
    """On a terminal the hunt draws one bar, redrawn in place, with run i of N, failures,
    elapsed and runs per second; it is gone (the line cleared) before the closing line."""
    import pty
    pid, fd = pty.fork()
    if pid == 0:                        # the child: bin/tracer on the pty
        os.chdir(tmp_path)
        os.execv(str(TRACER), [str(TRACER), "hunt", "--runs", "3", "--seed", "0",
                               "--class", "sync", "--store", str(tmp_path / "store"), "--",
                               str(fixture_path("threads_pipe")), "2"])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, wait_status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(wait_status) == 0, text
    bars = re.findall(r"\r\[[#.]{24}\] run (\d) of 3, (\d+) failures, [\d.]+ s, [\d.]+ runs/s",
                      text)
    assert [b[0] for b in bars] == ["1", "2", "3"] and {b[1] for b in bars} == {"0"}, text
    assert "hunt: run 1 of 3" not in text, text      # no plain lines on a terminal
    assert text.rstrip().splitlines()[-1].endswith("tracer: hunt: no failure in 3 runs "
                                                   "(seeds 0..2)"), text
    assert "\r\x1b[K" in text


def test_replay_inside_gdb_takes_the_last_report(tracer, tmp_path):
    """`tracer replay` without REPORT replays the run just made (gdb goes on after the failed
    `tracer run` in batch mode), and leaves your yields as they were; a report of another
    program is refused in one line."""
    from controller import run as run_debugger
    from harness import build_c
    prog = build_c(ABORTS_C, "aborts", tmp_path)
    run = run_debugger("gdb", prog, report=None, tmp=tmp_path / "a",
                       after=["tracer yield on --seed 9 --probability 0.75",
                              "tracer replay --runs 2", "tracer yield status"])
    run.debugger.assert_sane(run)
    assert run.returncode == 0, run.describe()      # gdb -batch: the last command's status
    assert re.search(r"^replay: run 2 of 2: reproduced - program failed: SIGABRT", run.stdout,
                     re.M), run.describe()
    assert "tracer: replay: 2 of 2 runs reproduced the failure (SIGABRT)" in run.stderr
    assert len(run.reports) == 2, run.describe()    # the run's and the first reproduction's
    assert all(not r["yield"]["enabled"] for r in run.reports)     # as the run had them
    assert re.search(r"^tracer: yields on at \d+ call sites; strategy sleep:1000, "
                     r"probability 0.75, seed 9", run.stdout, re.M), run.describe()
    other = run_debugger("gdb", fixture_path("exit_code"), report=None, tmp=tmp_path / "b",
                         run_command=f"tracer replay {run.report_paths[0]}")
    assert other.returncode == 1 and "the report is of " in other.stderr, other.describe()
    assert "replay: run" not in other.stdout and not other.reports, other.describe()


def test_a_missing_debugger_is_exit_2(tmp_path):
    p = subprocess.run([str(TRACER), "run", "--debugger", "lldb", "--",
                        str(fixture_path("exit_code"))], cwd=tmp_path, capture_output=True,
                       text=True, env=dict(os.environ, TRACER_LLDB="/nonexistent/lldb"))
    assert p.returncode == 2 and p.stdout == "", p.stderr
    assert p.stderr == "tracer: cannot start /nonexistent/lldb: No such file or directory\n"


def test_the_program_gets_its_own_environment(debugger, tmp_path):
    """bin/tracer's result file is the debugger's business: not in the program's environment;
    the program's output passes through."""
    p = cli("run", "--debugger", debugger.name, "--", "env", cwd=tmp_path)
    assert p.returncode == 0, p.describe
    assert re.search(r"^PATH=", p.stdout, re.M) and "TRACER_RESULT_FILE" not in p.stdout, \
        p.describe
