"""PCT, the debugger's side: `--strategy pct[:DEPTH[:STEPS]]` is scheduled by the agent inside
the program (csrc/agent/pct.c). Here: where it can run, the estimate of a run's scheduling
points its change points are drawn over, and what the report's `yield` record says of it.

STEPS, the estimate, is learned: a run that does not fix it draws its change points over the
scheduling points the previous run took (the agents count them in the ring), the first over
STEPS_DEFAULT. A run's record keeps the estimate it used (`pct_steps`), and its replay command
and `tracer replay` pass it back as pct:DEPTH:STEPS, so a seed replays the same schedule.
"""
from .run import TracerError

STEPS_DEFAULT = 500
STEPS_LIMIT = 100_000_000


def is_pct(policy):
    return policy is not None and policy.info["strategy"].startswith("pct")


def check(policy, mode):
    """A one-line error where PCT cannot schedule: breakpoint mode (the debugger would stop
    every thread at every point). Shared-access sites are scheduling points too: the
    debugger stops there and has the thread call the agent's step."""
    if not is_pct(policy):
        return
    if mode == "breakpoint":
        raise TracerError("--strategy pct needs agent mode (tracer mode agent): the agent "
                          "inside the program schedules its threads")


class Steps:
    """The estimate of a run's scheduling points: fixed by the user, or the last run's."""

    def __init__(self):
        self.learned = None

    def forget(self):
        self.learned = None

    def for_next_run(self, policy):
        fixed = policy.info["steps"]
        return fixed or self.learned or STEPS_DEFAULT

    def repeat(self, steps):
        """The next run draws over `steps`, as the run it repeats did (None: as it would)."""
        if steps:
            self.learned = steps

    def learn(self, taken):
        if taken > 0:
            self.learned = min(taken, STEPS_LIMIT)


def strategy_text(policy, steps):
    """What the agent is told (TRACER_YIELD's strategy): pct:DEPTH:STEPS."""
    return f"pct:{policy.info['depth']}:{steps}"


def record(yield_info, policy, steps, ring_stats):
    """The report's PCT keys (optional): the depth, the estimate used, the change points
    (step numbers of the first process), how many were reached (all processes) and the
    token take-overs after a bounded wait."""
    yield_info.update(depth=policy.info["depth"], pct_steps=steps,
                      change_points=policy.change_points(steps),
                      changes_taken=ring_stats["pct_changes"], steals=ring_stats["pct_steals"])
    return ring_stats["pct_steps"]
