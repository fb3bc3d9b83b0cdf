"""The default mix of a plain `tracer hunt` (no `tracer yield on` before it).

No single strategy finds every kind of bug (bench/README.md): delays chosen per site for a
whole run (`delay:`) open a window in every thread that reaches the site, before calls and
before shared-memory accesses alike, and replay best; PCT holds one thread behind another
(start order); random sleeps at each thread's first points, tapering off (`taper:`), tell
apart threads that run the same code and hold one long enough to keep a replay's order.
So the seeds of a plain hunt take turns: seed S runs profile S mod len(profiles). A profile
is a complete `tracer yield on` selection, so a run's report and its replay command carry
everything needed to replay it, and a user who knows which one finds their bug can ask for
it directly with the same arguments.
"""
import collections

CALLS = "sync,proc,send,recv"

Profile = collections.namedtuple("Profile", "name arguments")

DELAY = Profile("delay", f"--class {CALLS} --strategy delay:50000")
DELAY_ACCESS = Profile("delay", f"--class {CALLS},access --strategy delay:50000")
PCT = Profile("pct", f"--class {CALLS} --strategy pct:3")
# 20 ms: long against thread start-up under a debugger, so the order it makes replays
# (twostage_100: sleep:1000 found it after 35 runs and replayed it 3/10); tapering keeps a
# chatty program's cost (a C++ worker pool: 0.4 s a run, sleep:20000 3.7 s)
TAPER = Profile("taper", f"--class {CALLS} --strategy taper:20000")


def profiles(agent_mode, has_access_sites):
    """The rotation: delays at calls (and shared accesses, where the program has such
    sites), PCT where the agent schedules (agent mode), tapering sleeps."""
    rotation = [DELAY_ACCESS if has_access_sites else DELAY]
    if agent_mode:
        rotation.append(PCT)
    rotation.append(TAPER)
    return rotation


class Mix:
    """Which profile each seed of a hunt runs."""

    def __init__(self, rotation):
        self.rotation = rotation

    def profile(self, seed):
        return self.rotation[seed % len(self.rotation)]

    def arguments(self, seed):
        return f"{self.profile(seed).arguments} --seed {seed}"

    def describe(self):
        return ", ".join(p.name for p in self.rotation)
