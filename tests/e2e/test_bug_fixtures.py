"""End-to-end tests of the classic-pattern bug fixtures (issue 13), under gdb in agent mode:

- each fixture fails 0 times in 100 runs without a debugger (the window is closed unless a
  schedule opens it);
- a hunt with the strategy that finds it (bench/README.md: bench_effectiveness.py) fails
  within a bounded number of runs, with the fixture's own message, and `tracer replay
  REPORT --runs 10` reproduces the failure at least 8 times in 10 (issue 13's replay goal).
  Where a fixture does not meet the replay goal yet, the test still requires the find and at
  least one reproduction, and then says how many of 10 it saw as an expected failure (xfail):
  the goal is tracked, not dropped.
setters_checker_20 has no hunt test: the default mix finds it (bench/README.md), but in two
clean-clone CI runs a 40-run delay hunt found a seed that replayed 3/10, then none at all,
where seeds 0 and 4 fail 3 times in 3 on a quieter machine.
"""
import re
import subprocess

import pytest

import controller
from harness import bug, hunt_found
from test_yield import assert_hunt_failed

REPLAYS = 10
REPLAY_GOAL = 8
PLAIN_RUNS = 100
NEW = ("ws_deque", "aba_stack", "twostage_100", "pipe_wakeup", "setters_checker_20")
# Sleeps of up to 20 ms: longer than a thread takes to start or wake under the debugger, so
# the outcome is a function of the seed's decisions (docs/guide.md); with the default 1 ms
# twostage_100's finds replayed 3-9 times in 10, depending on the machine's load.
CALLS = "tracer yield on --class send,recv,sync,proc --strategy sleep:20000"
# per-site delays at shared accesses and calls: a thread held a quarter or all of a site's
# length, so a pop is held across another thread's pop, pop, push (per-hit sleeps of 20 ms
# at access sites alone replayed these finds 1-7 times in 10)
DELAY = "tracer yield on --class access,send,recv,sync,proc --strategy delay:50000"

# (fixture, yields, hunt runs, what its failure says, replays short of the goal so far)
CASES = [
    ("twostage_100", CALLS, 40, "a reader saw data2 != data1 + 1", False),
    ("pipe_wakeup", CALLS, 10, "pipe_wakeup: wake-up lost (watchdog)", False),
    ("ws_deque", DELAY, 30, "taken by the owner and a thief", False),
    ("aba_stack", DELAY, 40, "popped and still on the stack", False),
]


@pytest.mark.parametrize("name", NEW)
def test_fixture_never_fails_plain(name):
    prog = bug(name)
    failed = []
    for i in range(PLAIN_RUNS):
        p = subprocess.run([prog], capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            failed.append((i, p.returncode, p.stderr.strip()))
    assert not failed, f"{len(failed)} of {PLAIN_RUNS} plain runs failed: {failed[:3]}"


@pytest.mark.parametrize("name,yields,runs,says,short", CASES, ids=[c[0] for c in CASES])
def test_hunt_finds_and_replays(name, yields, runs, says, short, tmp_path, tracer):
    prog = bug(name)
    run = controller.run("gdb", prog, mode="agent", tmp=tmp_path / "hunt", report=None,
                         commands=[yields], timeout=600,
                         run_command=f"tracer hunt --runs {runs} --seed 0 --timeout 60")
    seed, rep = assert_hunt_failed(run, runs, 0)
    assert says in run.output, run.describe()
    assert rep["mode"] == "agent", rep["mode"]
    # the bug (exit 1) or its watchdog (exit 3); the report's stop is the main process's
    # exit, also where a child (pipe_wakeup's) ends after it
    assert re.search(rf"seed {seed}: FAILED - program failed: exit status [13]\b", run.stdout), \
        run.describe()
    assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] in (1, 3), rep["stop"]
    main_pid = int(re.search(r"-(\d+)-\d{8}T", rep["key"]).group(1))
    assert rep["stop"]["pid"] == main_pid, (rep["stop"], rep["processes"])

    replay = controller.run("gdb", prog, mode="agent", tmp=tmp_path / "replay", report=None,
                            timeout=900,
                            run_command=f"tracer replay {hunt_found(run.stderr, run.report_paths)[2]} "
                                        f"--runs {REPLAYS}")
    replay.debugger.assert_sane(replay)
    lines = re.findall(r"^replay: run \d+ of 10: (reproduced|not reproduced)", replay.stdout,
                       re.M)
    assert len(lines) == REPLAYS, replay.describe()
    reproduced = lines.count("reproduced")
    assert f"{reproduced} of {REPLAYS} runs reproduced" in replay.output, replay.describe()
    assert reproduced >= 1, f"seed {seed} never failed again\n" + replay.describe()
    if short and reproduced < REPLAY_GOAL:
        pytest.xfail(f"{name}: seed {seed} reproduced {reproduced}/{REPLAYS} "
                     f"(goal {REPLAY_GOAL}): sleeps nudge the schedule, they do not hold it")
    assert reproduced >= REPLAY_GOAL, f"{reproduced}/{REPLAYS} replays\n" + replay.describe()
