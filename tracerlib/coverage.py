"""Which mode covered which process of a run: what the agent noted in the ring (each process
image it entered, and each exec it saw it would not enter: csrc/agent/coverage.c) combined
with the processes the debugger saw. A process is covered by "agent", "breakpoint" or
"none"; the ones with "none" are listed with why, so a gap is never silent.

An agent-mode run arms no breakpoint per call, in any process: a static program exec'd from
an agent-mode run is named as not covered even where the debugger follows it (gdb).
"""
import os

from .procfs import vanished

UNCOVERED_MAX = 64          # entries in a report's `uncovered` list
NOTES_MAX = 1024            # TR_RING_NOTES (csrc/shared_ring.h)

WHY = {
    "static": "a static program: no dynamic loader reads LD_PRELOAD, so the agent cannot "
              "enter it",
    "setuid": "a setuid/setgid program: the loader ignores LD_PRELOAD, so the agent cannot "
              "enter it",
    "no-preload": "exec'd with an environment without the agent in LD_PRELOAD",
    "no-ring": "exec'd with an environment without TRACER_RING: the agent stays off",
    "unseen": "the debugger saw it, the agent never started in it",
}
SHORT = {"static": "static program", "setuid": "setuid program",
         "no-preload": "LD_PRELOAD lost", "no-ring": "TRACER_RING lost",
         "unseen": "agent not started"}


class Coverage:
    """The per-process modes of one run. notes: ring.notes() (oldest first); lost: notes the
    ring's table could not hold."""

    def __init__(self, run_mode, notes=(), debugger_pids=(), lost=0):
        self.modes = {}             # pid -> "agent" | "breakpoint" | "none"
        self.exes = {}              # pid -> the image's path, where the agent noted one
        self.why = {}               # pid -> a key of WHY, for "none"
        self.lost = lost
        if run_mode != "agent":
            for pid in debugger_pids:
                self.modes[pid] = "breakpoint"
            return
        for note in notes:          # the newest note of a pid wins (an exec came later)
            pid = note["pid"]
            self.exes[pid] = note["exe"] or None
            if note["what"] == "agent":
                self.modes[pid] = "agent"
                self.why.pop(pid, None)
            else:
                self.modes[pid] = "none"
                self.why[pid] = note["what"] if note["what"] in WHY else "unseen"
        for pid in debugger_pids:
            if pid not in self.modes and not lost:  # (else its note may be the lost one)
                self.modes[pid] = "none"
                self.why[pid] = "unseen"

    def mode(self, pid):
        return self.modes.get(pid)

    def uncovered(self):
        """[{pid, exe, why}] for the report, bounded; a last entry with pid 0 says when more
        processes were left out (by this bound or by the ring's table)."""
        out = [{"pid": pid, "exe": self.exes.get(pid), "why": WHY[self.why[pid]]}
               for pid in sorted(self.why)]
        more = len(out) - UNCOVERED_MAX
        out = out[:UNCOVERED_MAX]
        if more > 0 or self.lost:
            out.append({"pid": 0, "exe": None,
                        "why": f"more processes than recorded: {max(more, 0)} not listed, "
                               f"{self.lost} not noted by the agent (its table holds "
                               f"{NOTES_MAX})"})
        return out

    def summary(self, pids=None):
        """'8360 agent, 8362 none (static program)' for pids (default: every one known)."""
        pids = sorted(self.modes if pids is None else pids)
        parts = []
        for pid in pids:
            mode = self.modes.get(pid, "unknown")
            why = self.why.get(pid)
            parts.append(f"{pid} {mode}" + (f" ({SHORT[why]})" if why else ""))
        return ", ".join(parts)

    def closing_note(self):
        """For the run's closing line: '' when every process was covered."""
        if not self.why and not self.lost:
            return ""
        if not self.why:
            return (f"the agent's table of {NOTES_MAX} process notes overflowed: which mode "
                    "covered the later processes is not known")
        named = [f"{pid}" + (f" {os.path.basename(self.exes[pid])}" if self.exes.get(pid)
                             else "") + f" ({SHORT[self.why[pid]]})"
                 for pid in sorted(self.why)[:4]]
        more = len(self.why) - len(named)
        return (f"{len(self.why)} process{'es' if len(self.why) != 1 else ''} not covered: "
                + ", ".join(named) + (f" and {more} more" if more > 0 else "")
                + (" (the agent's table overflowed: more may be missing)" if self.lost else ""))


def status_line(run, live_pids):
    """`tracer status`: which mode covers each live process (the ring says which the agent
    entered, the debugger which it traces), or, once the run is over, each of its processes."""
    if run.finished:
        cov = run.coverage()
        return f"processes: {cov.summary() or 'none seen'}"
    ring = run.agent.ring if run.agent is not None else None
    cov = Coverage(run.mode, ring.notes() if ring is not None else [],
                   set(live_pids) | run.pids)
    alive = [pid for pid in cov.modes if pid in live_pids or not vanished(pid)]
    return f"live processes: {cov.summary(alive) or 'none'}"

