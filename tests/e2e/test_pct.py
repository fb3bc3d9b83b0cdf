"""End-to-end tests of `--strategy pct` (issue 13, PCT part), agent mode, under gdb and lldb:

- a PCT hunt finds start_order (a reader that gives up after 30 polls unless the loader,
  started first, runs meanwhile: a random sleep per call never finds it, see bench/README.md)
  and lost_wakeup (a condition variable signalled without the mutex) within 40 runs, and
  `tracer replay --runs 10` of its report reproduces the failure in at least 8 of 10;
- the report's yield record says strategy "pct:3" and carries depth, pct_steps, change_points;
- 30-run PCT hunts of correct threaded programs (threads_pipe: four threads on a pipe under a
  mutex and a barrier; cxx_workers: C++ member-function locks, a condition variable, a forked
  child on pipes) find nothing and never hang;
- with shared-access sites as scheduling points (`--class access`), PCT finds
  publish_before_init (no call in its window) and its find replays at least 8 of 10; 30 such
  runs of correct_sync (atomics, a spinlock, condition variables; lldb: 8) find nothing;
- `pct:0`, `pct:x`, and pct in breakpoint mode are one-line errors.
"""
import re

import pytest

import controller
from checks import validate
from harness import bug, fixture_path, hunt_found

REPLAYS = 10
REPLAY_GOAL = 8


def tracer_errors(run):
    """The `tracer:` lines of stderr (lldb puts "error: " before a failed command's)."""
    return [l.removeprefix("error: ") for l in run.stderr.splitlines()
            if l.removeprefix("error: ").startswith("tracer:")]


def assert_yields_stay_off(run):
    """gdb goes on after the refused command (lldb's batch stops there): nothing was armed."""
    if run.debugger.name == "gdb":
        assert "tracer: yields off" in run.stdout, run.describe()


def hunt(debugger, prog, tmp, runs, seed=0, timeout=300, classes=None):
    scope = f" --class {classes}" if classes else ""
    return controller.run(debugger, prog, mode="agent", tmp=tmp, report=None,
                          commands=[f"tracer yield on --strategy pct{scope}"],
                          run_command=f"tracer hunt --runs {runs} --seed {seed} --timeout 60",
                          timeout=timeout)


@pytest.mark.parametrize("name,says", [("start_order", "the reader gave up"),
                                       ("lost_wakeup", "wake-up lost")])
def test_pct_hunt_finds_bug_and_replays(debugger, name, says, tmp_path):
    prog = bug(name)
    run = hunt(debugger, prog, tmp_path / "hunt", 40)
    debugger.assert_sane(run)
    found = hunt_found(run.output, run.report_paths)
    assert found and found[2] and run.returncode == 1, run.describe()
    seed, _, path = found
    assert says in run.output, run.describe()
    rep = run.reports[run.report_paths.index(path)]
    validate(rep)
    y = rep["yield"]
    assert y["strategy"] == "pct:3" and y["depth"] == 3 and y["seed"] == seed, y
    assert y["pct_steps"] >= 1 and len(y["change_points"]) == 2, y
    assert all(1 <= k <= y["pct_steps"] for k in y["change_points"]), y
    assert rep["stop"]["reason"] == "exit" and rep["stop"]["status"] == 1, rep["stop"]
    # the printed replay command passes the steps estimate back
    assert re.search(rf"--strategy pct:3:{y['pct_steps']} --seed {y['seed']}", run.stdout), \
        run.describe()

    replay = controller.run(debugger, prog, mode="agent", tmp=tmp_path / "replay",
                            report=None, timeout=300,
                            run_command=f"tracer replay {path} --runs {REPLAYS}")
    debugger.assert_sane(replay)
    lines = re.findall(r"^replay: run \d+ of 10: (reproduced|not reproduced)", replay.stdout,
                       re.M)
    assert len(lines) == REPLAYS, replay.describe()
    reproduced = lines.count("reproduced")
    assert reproduced >= REPLAY_GOAL, f"{reproduced}/{REPLAYS} replays\n" + replay.describe()
    assert f"{reproduced} of {REPLAYS} runs reproduced" in replay.output, replay.describe()


def test_pct_at_access_sites_finds_publish_before_init(debugger, tmp_path):
    """No call sits between the flag's store and the value's: with shared-access sites as
    scheduling points (the debugger stops at each and the thread calls the agent's step) a
    change point there holds the main thread while the reader runs. The find is the
    schedule, not a timing: its report replays in at least 8 of 10 runs."""
    prog = bug("publish_before_init")
    run = hunt(debugger, prog, tmp_path / "hunt", 20, classes="access")
    debugger.assert_sane(run)
    found = hunt_found(run.output, run.report_paths)
    assert found and found[2] and run.returncode == 1, run.describe()
    assert "flag up, value 0" in run.output, run.describe()
    rep = run.reports[run.report_paths.index(found[2])]
    y = rep["yield"]
    assert y["strategy"] == "pct:3" and y["classes"] == "access" and y["access_sites"] == 8, y
    assert y["changes_taken"] >= 1, y
    replay = controller.run(debugger, prog, mode="agent", tmp=tmp_path / "replay",
                            report=None, timeout=300,
                            run_command=f"tracer replay {found[2]} --runs {REPLAYS}")
    debugger.assert_sane(replay)
    reproduced = len(re.findall(r"^replay: run \d+ of 10: reproduced", replay.stdout, re.M))
    assert reproduced >= REPLAY_GOAL, f"{reproduced}/{REPLAYS} replays\n" + replay.describe()


def test_pct_at_access_sites_of_correct_program_finds_nothing(debugger, tmp_path):
    """correct_sync (mutex, condition variables, release/acquire atomics, a spinlock of an
    atomic flag): 30 PCT runs with its 28 access sites as scheduling points, no failure.
    lldb: 8 runs (its stops cost ~4x gdb's: 8 s a run here, up to 256 stops per site)."""
    runs = 30 if debugger.name == "gdb" else 8
    run = hunt(debugger, fixture_path("correct_sync"), tmp_path, runs, timeout=900,
               classes="access,sync,proc,send,recv")
    debugger.assert_sane(run)
    assert run.returncode == 0, run.describe()
    assert f"tracer: hunt: no failure in {runs} runs (seeds 0..{runs - 1})" in run.output, \
        run.describe()
    assert not run.reports, run.describe()


@pytest.mark.parametrize("name", ["threads_pipe", "cxx_workers"])
def test_pct_hunt_of_correct_program_finds_nothing(debugger, name, tmp_path):
    run = hunt(debugger, fixture_path(name), tmp_path, 30, timeout=600)
    debugger.assert_sane(run)
    assert run.returncode == 0, run.describe()
    assert "tracer: hunt: no failure in 30 runs (seeds 0..29)" in run.output, run.describe()
    assert not run.reports, run.describe()


@pytest.mark.parametrize("strategy", ["pct:0", "pct:x", "pct:3:0", "pct:99"])
def test_bad_pct_is_one_line(debugger, strategy, tmp_path):
    run = controller.run(debugger, fixture_path("threads_pipe"), mode="agent", tmp=tmp_path,
                         report=None, run_command=f"tracer yield on --strategy {strategy}",
                         after=["tracer yield status"])
    debugger.assert_sane(run)
    errors = tracer_errors(run)
    assert len(errors) == 1 and f"not '{strategy}'" in errors[0], run.describe()
    assert "Traceback" not in run.output
    assert_yields_stay_off(run)


def test_pct_needs_agent_mode(debugger, tmp_path):
    run = controller.run(debugger, fixture_path("threads_pipe"), mode="breakpoint",
                         tmp=tmp_path, report=None,
                         run_command="tracer yield on --strategy pct",
                         after=["tracer yield status"])
    debugger.assert_sane(run)
    assert tracer_errors(run) == [
        "tracer: --strategy pct needs agent mode (tracer mode agent): the agent inside the "
        "program schedules its threads"], run.describe()
    assert_yields_stay_off(run)
