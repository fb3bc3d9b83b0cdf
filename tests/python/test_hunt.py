"""`tracer hunt`'s loop and its confirmation of a find (tracerlib/hunt.py), over scripted
runs: which seed it ends with, what it prints, and that a failure is never dropped. (Hunts of
real programs under the real debuggers: tests/e2e.)"""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import hunt  # noqa: E402
from tracerlib.run import TracerError  # noqa: E402


class FakeRun:
    """What the hunt reads of a finished run: an exit status, or the debugger's failure."""

    def __init__(self, seed, status, disturbed=None, report=True):
        self.pid, self.fatal, self.stop, self.disturbed = 1, None, {"reason": "exit"}, disturbed
        self.exits = {1: {"status": status, "signal": 0}}
        self.report_path = f"r-s{seed}.json" if status and report else None

    @property
    def failed(self):
        return bool(self.exits[1]["status"]) and not self.disturbed

    def outcome(self):
        return f"tracer: exit status {self.exits[1]['status']}"


class Values:
    timeout, report = 0, "failure"

    def set(self, name, text):
        setattr(self, name, text)


def go(outcomes, runs=10, confirm=2):
    """Runs a hunt where seed S's k-th run ends with outcomes[S][k] (its last one repeats):
    an exit status, or "disturbed". Returns (closing line or error, lines, runs made,
    the Find it ended with)."""
    made, lines = [], []

    def run_once(seed, find):
        confirming = find is not None
        script = outcomes.get(seed, [0])
        k = sum(1 for s, _ in made if s == seed)
        made.append((seed, confirming))
        what = script[min(k, len(script) - 1)]
        if what == "disturbed":
            return FakeRun(seed, 0, disturbed="gdb failed")
        return FakeRun(seed, what, report=not confirming)

    opts = hunt.parse_args(f"--runs {runs} --confirm {confirm}")
    search = hunt.Hunt(opts, 0, run_once, lambda s: f"replay {s}", lines.append)
    try:
        closing = search.go(Values())
    except TracerError as e:
        closing = str(e)
    return closing, lines, made, search.found


def test_a_confirmed_find_ends_the_hunt():
    closing, lines, made, found = go({3: [1]})
    assert closing == "hunt found a failure with seed 3 (it failed again in 2 of 2 " \
                      "confirming runs)"
    assert made == [(0, False), (1, False), (2, False), (3, False), (3, True), (3, True)]
    assert found.seed == 3 and found.run.report_path == "r-s3.json"
    assert "hunt: confirming seed 3, run 2 of 2: failed again - exit status 1" in lines
    assert lines[-2:] == ["hunt: replay it with\n  replay 3",
                          "hunt: or count how often it fails again: tracer replay r-s3.json "
                          "--runs 10"]


def test_a_find_that_does_not_come_back_is_set_aside():
    closing, lines, made, found = go({1: [1, 0], 4: [2]})
    assert closing.startswith("hunt found a failure with seed 4 (it failed again in 2 of 2")
    # seed 1's first confirming run passed: no second one, and the hunt went on
    assert made[:4] == [(0, False), (1, False), (1, True), (2, False)]
    assert "hunt: seed 1 failed again in 0 of 1 confirming runs: its report is kept, and " \
           "the hunt goes on for a seed that replays" in lines
    assert "hunt: run 3 of 10, seed 2: passed (1 failures so far)" in lines
    assert [l for l in lines if l.startswith("hunt: replay it with")] == \
        ["hunt: replay it with\n  replay 4"]


def test_without_a_confirmed_find_the_best_one_ends_it():
    closing, _, made, found = go({2: [1, 0], 5: [1, 1, 0]}, runs=8)
    assert closing == "hunt found a failure with seed 5 (it failed again in 1 of 2 " \
                      "confirming runs)"
    assert sum(1 for _, confirming in made if not confirming) == 8
    assert found.run.report_path == "r-s5.json"


def test_any_non_zero_exit_confirms_an_exit():
    """As `tracer replay` counts: any non-zero status of the first process is the same
    failure (the bug's exit 1 or its watchdog's exit 3)."""
    closing, _, _, _ = go({0: [1, 3]})
    assert closing.startswith("hunt found a failure with seed 0 (it failed again in 2 of 2")


def test_confirm_0_ends_at_the_first_failure():
    closing, _, made, _ = go({2: [1, 0]}, confirm=0)
    assert closing == "hunt found a failure with seed 2" and made[-1] == (2, False)


def test_no_failure():
    closing, lines, made, found = go({}, runs=3)
    assert closing == "tracer: hunt: no failure in 3 runs (seeds 0..2)" and found is None
    assert len(made) == 3 and lines[-1] == "hunt: run 3 of 3, seed 2: passed (0 failures so far)"


def test_the_debugger_failing_after_a_find_ends_with_the_find():
    closing, _, _, found = go({1: [1, 0], 3: ["disturbed"]})
    assert closing == "hunt found a failure with seed 1 (it failed again in 0 of 1 " \
                      "confirming runs)" and found.seed == 1
    closing, _, _, found = go({1: [1, "disturbed"]})
    assert closing.startswith("hunt found a failure with seed 1") and found.seed == 1


def test_the_debugger_failing_with_no_find_says_where_to_go_on():
    closing, _, _, found = go({2: ["disturbed"]})
    assert found is None and closing.startswith(
        "hunt stopped: the debugger failed under run 3 (seed 2), which is not counted; no "
        "failure of the program in the 2 runs before. Go on in a new debugger: tracer hunt "
        "--seed 3 --runs 7")


@pytest.mark.parametrize("arg", ["--confirm -1", "--confirm 11", "--runs 0"])
def test_bad_numbers_get_one_line(arg):
    with pytest.raises(TracerError) as e:
        hunt.parse_args(arg)
    assert "\n" not in str(e.value) and str(e.value).startswith("tracer hunt: --")
