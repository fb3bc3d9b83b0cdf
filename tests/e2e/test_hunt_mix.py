"""A plain `tracer hunt` (no `tracer yield on`): the seeds take turns at the default mix's
profiles (tracerlib/hunt_mix.py), each run's line names its profile, and a failure it finds
replays from its report in at least 8 of 10 runs. Through bin/tracer, as CI would run it.
A correct program with shared-access sites finds nothing (test_stress.py's hunts of correct
programs run the mix too)."""
import json
import re
import subprocess

import pytest

from harness import REPO, bug, fixture_path, hunt_found
from test_cli import assert_no_chatter, cli

_RUN = re.compile(r"^hunt: run (\d+) of \d+, seed (\d+) \((\w+)\): (passed|FAILED)", re.M)


def _hunt_and_replay(debugger, program, tmp_path, runs=30):
    """The hunt's runs, the failing run's report, and how many of 10 replays reproduced it."""
    p = cli("hunt", "--debugger", debugger, "--runs", runs, "--timeout", 60, "--", program,
            cwd=tmp_path, timeout=900)
    assert p.returncode == 1, p.describe
    assert_no_chatter(p)
    lines = _RUN.findall(p.stdout)
    last = p.stdout.rstrip().splitlines()[-1]
    found = hunt_found(last, [re.search(r"; report: (\S+)$", last).group(1)])
    assert found and found[2], p.describe
    path = found[2]
    report = json.loads((tmp_path / path).read_text())
    r = cli("replay", path, "--runs", 10, "--debugger", debugger, cwd=tmp_path, timeout=900)
    m = re.search(r"(\d+) of 10 runs reproduced", r.stdout + r.stderr)
    assert m, r.describe
    return lines, report, int(m.group(1))


def _profile_of(lines, report):
    """The profile of the run the hunt ended with (the report's seed), from its line."""
    (profile,) = [l[2] for l in lines if int(l[1]) == report["yield"]["seed"] and
                  l[3] == "FAILED"]
    return profile


_STRATEGIES = {"delay": "delay:50000", "pct": "pct:3", "taper": "taper:20000"}


@pytest.mark.parametrize("name,profile", [
    ("setters_checker", "delay"),       # between two stores of 3 setters: only delay
    ("start_order", "pct"),             # a thread held behind another: only PCT
    ("lock_order", None),               # two threads running the same code: any profile
])
def test_plain_hunt_finds_and_replays(name, profile, tmp_path):
    lines, report, reproduced = _hunt_and_replay("gdb", bug(name), tmp_path)
    mix = list(_STRATEGIES)
    assert [l[2] for l in lines] == [mix[int(l[1]) % 3] for l in lines], lines
    found_by = _profile_of(lines, report)
    assert found_by == (profile or found_by), lines
    assert report["yield"]["strategy"] == _STRATEGIES[found_by], report["yield"]
    # delay adds the shared-access sites where there are some (setters_checker's window
    # lies between two stores; lock_order has none); the other profiles stay at calls
    assert ("access" in report["yield"]["classes"]) == (found_by == "delay" and
                                                        name == "setters_checker")
    assert reproduced >= 8, f"{name}: {reproduced} of 10 replays reproduced"


def test_plain_hunt_under_lldb(tmp_path):
    lines, report, reproduced = _hunt_and_replay("lldb", bug("check_then_act"), tmp_path)
    assert report["yield"]["strategy"].split(":")[0] == _profile_of(lines, report)
    assert reproduced >= 8, f"{reproduced} of 10 replays reproduced"


def test_breakpoint_mode_mix_has_no_pct(tmp_path):
    """PCT schedules inside the program: breakpoint mode rotates the other two."""
    p = cli("hunt", "--debugger", "gdb", "--runs", 3, "--mode", "breakpoint", "--",
            fixture_path("pipe_pingpong"), cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.describe
    assert [l[2] for l in _RUN.findall(p.stdout)] == ["delay", "taper", "delay"], p.describe


def test_plain_hunt_of_correct_program_finds_nothing(tmp_path):
    """correct_sync (a mutex and condition variables, release/acquire atomics, an atomic
    counter, a spinlock of an atomic flag; shared globals at 28 access sites): 30 runs of
    the default mix, delays at its access sites included, find no failure and keep no
    report."""
    program = fixture_path("correct_sync")
    p = cli("hunt", "--debugger", "gdb", "--runs", 30, "--timeout", 60, "--", program,
            cwd=tmp_path, timeout=900)
    assert p.returncode == 0, p.describe
    assert_no_chatter(p)
    lines = _RUN.findall(p.stdout)
    assert [(l[2], l[3]) for l in lines] == \
        [(list(_STRATEGIES)[s % 3], "passed") for s in range(30)], p.describe
    assert p.stdout.rstrip().endswith("tracer: hunt: no failure in 30 runs (seeds 0..29)"), \
        p.describe
    assert not list(tmp_path.glob("tracer-reports/*.json")), p.describe
    sites = subprocess.run(["gdb", "-q", "-batch", "-nx", "-x", REPO / "gdb" / "tracer.py",
                            "-ex", "tracer sites --class access", program], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert "28 shared-access sites" in sites.stdout, sites.stdout + sites.stderr

