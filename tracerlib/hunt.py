"""`tracer hunt`: the program again and again with seeds S, S+1, ... until it fails, and a
failure found is one its seed brings back.

A failure found by perturbing the schedule can hang on timing the seed does not control
(two processes' sleeps that end within a wake-up of each other): that seed fails again only
now and then, and a user handed it can neither debug nor fix-and-check with it. So a find is
confirmed: its seed runs CONFIRM more times (default 2, no reports). A seed that fails the
same way each time ends the hunt. One that does not is set aside, its report kept, and the
hunt goes on for a seed that does; when the runs are used up first, the hunt ends with the
find that came back most often (the first of equals). A failure of the program is never
dropped, and confirming runs do not count among the N.
"""
import shlex

from . import replay, yields
from .run import TracerError

CONFIRM_DEFAULT = 2
CONFIRM_MAX = 10


def parse_args(arg):
    parser = yields._Parser(prog="tracer hunt", add_help=False)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seed", type=yields._seed, default=None)
    parser.add_argument("--timeout", type=int, default=None)
    parser.add_argument("--confirm", type=int, default=CONFIRM_DEFAULT)
    opts = parser.parse_args(shlex.split(arg))
    if opts.runs < 1:
        raise TracerError("tracer hunt: --runs must be at least 1")
    if not 0 <= opts.confirm <= CONFIRM_MAX:
        raise TracerError(f"tracer hunt: --confirm must be from 0 to {CONFIRM_MAX}")
    if opts.timeout is not None and opts.timeout < 0:
        raise TracerError("tracer hunt: --timeout must be 0 (none) or more seconds")
    return opts


class Find:
    """A failing run, the lines that say how to replay it, and how its confirmation went."""

    def __init__(self, seed, run, replay_lines):
        self.seed, self.run, self.replay_lines = seed, run, replay_lines
        self.failure = replay.failure_of_run(run)
        self.again = 0              # confirming runs that failed the same way
        self.tried = 0              # confirming runs made

    @property
    def confirmed(self):
        return self.again == self.tried

    def phrase(self):
        if not self.tried:
            return ""
        return f" (it failed again in {self.again} of {self.tried} confirming runs)"


class Hunt:
    """One `tracer hunt`. run_once(seed, find) -> the finished Run, or None when your
    breakpoint or an interrupt stopped it (find: the Run a confirming run repeats, which
    keeps no report and draws PCT's change points as that run did; None for a new seed);
    replay_command(seed) -> the command line that replays a seed, while the seed's run is the
    driver's last; write(text) prints a line; profile(seed) -> the name of the yield profile
    a seed runs (the default mix), or None."""

    def __init__(self, opts, first, run_once, replay_command, write, profile=None):
        self.opts, self.first = opts, first
        self.run_once, self.replay_command, self.write = run_once, replay_command, write
        self.profile = profile
        self.finds = []             # unconfirmed finds, in order
        self.found = None           # the Find the hunt ends with

    def go(self, values):
        """Returns the closing line when no run failed; raises TracerError naming the
        failure found (the command fails: batch exit 1) or why the hunt stopped."""
        old_timeout, old_report = values.timeout, values.report
        if self.opts.timeout is not None:
            values.set("timeout", str(self.opts.timeout))
        if old_report == "always":          # a hunt keeps the failing run's report only
            values.set("report", "failure")
        try:
            for i in range(self.opts.runs):
                find = self._one(i, self.first + i)
                if find is not None and self._confirm(find):
                    self._end_with(find)
        finally:
            values.set("timeout", str(old_timeout))
            values.set("report", old_report)
        if self.finds:                      # none confirmed
            self._end_with(self._best())
        last = self.first + self.opts.runs - 1
        return f"tracer: hunt: no failure in {self.opts.runs} runs (seeds {self.first}..{last})"

    def _which(self, seed):
        return f"seed {seed}" + (f" ({self.profile(seed)})" if self.profile else "")

    def _one(self, i, seed):
        """Run i of the hunt: a Find when it failed, else None."""
        runs, which = self.opts.runs, self._which(seed)
        run = self._run(seed, None)
        outcome = run.outcome().removeprefix("tracer: ")
        if run.disturbed:
            self.write(f"hunt: run {i + 1} of {runs}, {which}: not counted - {outcome}")
            self._debugger_failed(
                f"the debugger failed under run {i + 1} (seed {seed}), which is not counted",
                f"no failure of the program in the {i} runs before. Go on in a new debugger: "
                f"tracer hunt --seed {seed + 1} --runs {runs - i - 1} (bin/tracer hunt does "
                "that by itself)")
        if not run.failed:
            self.write(f"hunt: run {i + 1} of {runs}, {which}: passed "
                       f"({len(self.finds)} failures so far)")
            return None
        self.write(f"hunt: run {i + 1} of {runs}, {which}: FAILED - {outcome}")
        lines = ["hunt: replay it with\n  " + self.replay_command(seed)]
        if run.report_path:
            lines.append(f"hunt: or count how often it fails again: tracer replay "
                         f"{shlex.quote(run.report_path)} --runs 10")
        return Find(seed, run, lines)

    def _confirm(self, find):
        """Runs the find's seed again; True when it failed the same way every time."""
        for k in range(self.opts.confirm):
            run = self._run(find.seed, find.run)
            if run.disturbed:
                self.finds.append(find)
                self._debugger_failed(f"the debugger failed under a confirming run of seed "
                                      f"{find.seed}", "")    # (the find ends the hunt)
            find.tried += 1
            same = replay.same_failure(find.failure, replay.failure_of_run(run))
            find.again += same
            outcome = run.outcome().removeprefix("tracer: ").split(";")[0]
            self.write(f"hunt: confirming seed {find.seed}, run {k + 1} of "
                       f"{self.opts.confirm}: {'failed again' if same else 'not again'} - "
                       f"{outcome}")
            if not same:
                break
        if find.confirmed:
            return True
        self.finds.append(find)
        self.write(f"hunt: seed {find.seed} failed again in {find.again} of {find.tried} "
                   f"confirming runs: its report is kept, and the hunt goes on for a seed "
                   f"that replays")
        return False

    def _run(self, seed, find):
        run = self.run_once(seed, find)
        if run is None:
            raise TracerError("hunt interrupted by a breakpoint or Ctrl-C")
        return run

    def _debugger_failed(self, what, otherwise):
        """Ends the hunt: with the best find so far (what the debugger did after it does not
        change that the program failed), else with why it stopped."""
        if self.finds:
            self.write(f"hunt: {what}")
            self._end_with(self._best())
        raise TracerError(f"hunt stopped: {what}; {otherwise}")

    def _best(self):
        """The find set aside that came back most often (the first of equals)."""
        return max(self.finds, key=lambda f: f.again)

    def _end_with(self, find):
        self.found = find
        for line in find.replay_lines:
            self.write(line)
        raise TracerError(f"hunt found a failure with seed {find.seed}{find.phrase()}")
