"""One traced run, debugger-neutral: the core session, what happened to each process, the
call-site names, and turning all of it into exactly one report.

The front ends (gdb/tracer.py, lldb/tracer.py) own breakpoints, stops and the debugger's view
of threads; they call into a Run and never build a report themselves.
"""
import datetime
import os
import re
import signal as _signal

from . import _core
from .coverage import NOTES_MAX, Coverage
from .procfs import vanished

SYSV_CALLS = frozenset(c["name"] for c in _core.catalogue() if c["handle"] == "msqid")

# Default actions that end a process (signal(7)): a stop for one of these, with the signal
# neither caught nor ignored, is the program stopping for good.
_NON_FATAL = {"SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG",
              "SIGWINCH", "SIGTRAP"}


class TracerError(Exception):
    """A user-facing failure: the message is one line that says what to do."""


def signal_number(name):
    try:
        return int(getattr(_signal, name))
    except (AttributeError, TypeError):
        return 0


def signal_name(number):
    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def _signal_masks(pid):
    """SigCgt | SigIgn of pid from /proc: signals the program handles itself."""
    mask = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("SigCgt:", "SigIgn:")):
                    mask |= int(line.split()[1], 16)
    except OSError:
        pass
    return mask


def is_fatal(signame, pid):
    """Would delivering signame kill pid? (Default action terminates, not caught/ignored.)"""
    number = signal_number(signame)
    if not number or signame in _NON_FATAL or signame == "SIGINT":
        return False
    return not (_signal_masks(pid) >> (number - 1)) & 1


class Run:
    """The recorder of one run plus what the debugger learned about it."""

    def __init__(self, values, program, argv, debugger):
        self.values = values
        self.session = _core.Session(cap=values.cap, budget=values.budget,
                                     payload=values.payload)
        self.filters = values.filters()    # in force for this run, whatever is set later
        self.session.set_filter(**self.filters)
        self.program = program or ""
        self.argv = list(argv)
        self.debugger = debugger
        now = datetime.datetime.now(datetime.timezone.utc)
        self.started = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self._stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
        self.pid = 0                 # the first traced process
        self.pids = set()            # every traced process
        self.sites = {}              # return pc -> {function, file, line}
        self.exits = {}              # pid -> {"status": int|None, "signal": int}
        self.fatal = None            # (pid, tid, signame) of the first fatal signal
        self.crash_pcs = {}          # pid -> (tid, [pc, return addresses]): crashes the agent
                                     # saw, not the debugger
        self.crash_sites = {}        # pc -> {function, file, line} of those frames, if named
        self.notes = []              # the agent's process notes (coverage.py)
        self.notes_lost = 0          # notes its table could not hold
        self.pct_steps = None        # PCT: the steps estimate this run's agent was given
        self.agent_pct = None        # and the agents' PCT counters (ring.pct)
        self.yield_info = {"enabled": False, "seed": 0, "strategy": None,
                           "probability": 0.0, "sites": 0, "injected": 0}
        self.stop = None
        self.disturbed = None        # why the debugger failed under the run (not the program)
        self.mode = "breakpoint"     # how this run's calls are recorded
        self.agent = None            # agent.AgentRun in agent mode
        self.finished = False
        self.report_text = None
        self.report_path = None

    # ---- what happened ----
    def saw_process(self, pid):
        if not self.pid:
            self.pid = pid
        self.pids.add(pid)

    def record_exit(self, pid, status=None, signame=None):
        """A traced process ended; status None when it was killed by a signal."""
        entry = self.exits.setdefault(pid, {"status": None, "signal": 0})
        if status is not None:
            entry["status"] = status
        if signame:
            entry["signal"] = signal_number(signame)
        self.session.forget(pid)

    def record_fatal(self, pid, tid, signame):
        if not self.fatal:
            self.fatal = (pid, tid, signame)
        self.exits.setdefault(pid, {"status": None, "signal": signal_number(signame)})

    @property
    def failed(self):
        """A fatal signal anywhere, or the first process exiting non-zero; never a run the
        debugger failed under (whatever it did to the program is the tool's doing)."""
        if self.disturbed:
            return False
        if self.fatal or (self.stop and self.stop.get("reason") == "timeout"):
            return True
        if any(e["signal"] for e in self.exits.values()):
            return True
        main = self.exits.get(self.pid)
        return bool(main and main["status"])

    @property
    def key(self):
        name = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(self.program) or "program")
        return f"{name}-{self.pid}-{self._stamp}-s{self.yield_info['seed']}"

    # ---- the end of the run ----
    def should_report(self, reason):
        policy = self.values.report
        if reason in ("snapshot", "disturbed"):    # what was recorded is all there is
            return True
        if policy == "never":
            return False
        return policy == "always" or self.failed

    def finish(self, stop, live, force=False, path=None):
        """The program stopped for good (or a snapshot was asked): freeze, compose, store.

        live: [{pid, threads: [...]}] for processes still there, from the front end.
        Returns the report path, or None when policy says no report. A second call writes
        nothing; the composed text stays for `tracer snapshot FILE`.
        Raises TracerError when the store refuses the report (the text is kept).
        """
        if self.finished:
            return None
        self.finished = True
        self.take_agent_events()
        self.session.freeze()
        self.stop = stop
        if not (force or self.should_report(stop.get("reason"))):
            return None
        self.compose(live)
        return self.store(path)

    def take_agent_events(self):
        """Agent mode: the program's ring becomes this run's record (frozen) and goes away.
        Once is enough; later calls do nothing."""
        if self.agent is None:
            return
        # The agent's yields before calls, with the debugger's at access sites (if any).
        self.yield_info["injected"] = self.yield_info.get("injected", 0) + self.agent.ring.injected
        if "library_sites" in self.yield_info:
            self.yield_info["library_injected"] += self.agent.ring.injected_lib
        self.agent_pct = self.agent.ring.pct
        self._take_deaths(self.agent.ring.deaths())
        self.notes = self.agent.ring.notes()
        self.notes_lost = max(0, self.agent.ring.stats()["notes"] - NOTES_MAX)
        self.agent.absorb_into(self.session)
        self.agent.close()
        self.agent = None

    def _take_deaths(self, deaths):
        """Deaths the agent recorded where the debugger may not have seen them (lldb follows
        no fork): each is that process's fatal signal, as if the debugger had stopped it.
        One the debugger saw itself is left as the debugger saw it."""
        for death in deaths:
            pid = death["pid"]
            exit_ = self.exits.setdefault(pid, {"status": None, "signal": 0})
            if exit_["signal"]:         # seen already, by the debugger or an earlier record
                continue
            exit_["signal"] = death["signal"]
            self.pids.add(pid)
            self.record_fatal(pid, death["tid"], signal_name(death["signal"]))
            if death["pc"]:
                self.crash_pcs[pid] = (death["tid"], death.get("frames") or [death["pc"]])

    def coverage(self, pids=()):
        """Which mode covered which process (coverage.py): every process the debugger saw or
        the agent noted, and `pids`."""
        return Coverage(self.mode, self.notes, self.pids | set(self.exits) | set(pids),
                        self.notes_lost)

    def same_image(self, pid):
        """Was pid's last image the first process's (so its addresses can be named by the
        debugger's view of that program)? Known only from the agent's notes."""
        exes = {}
        for note in self.notes:
            exes[note["pid"]] = note["exe"] if note["what"] == "agent" else None
        return exes.get(pid) is not None and exes.get(pid) == exes.get(self.pid)

    def compose(self, live):
        """Renders the report text from the frozen ring and what the front end saw."""
        self.report_text = self.session.render(self._meta(live))
        return self.report_text

    def store(self, path=None):
        """Writes the composed report into the store, or to exactly `path`."""
        if self.report_text is None:
            raise TracerError("nothing to write yet: the run has not stopped "
                              "(use `tracer snapshot` to take one now)")
        try:
            if path:
                _core.store_put_path(path, self.report_text)
                self.report_path = path
            else:
                self.report_path = _core.store_put(self.values.store, self.key,
                                                   self.report_text)
        except OSError as e:
            where = path or self.values.store
            raise TracerError(f"cannot write the report to {where}: {e.strerror}; "
                              "the events are kept: `tracer snapshot FILE` saves them "
                              "elsewhere") from None
        return self.report_path

    def report_dict(self):
        """The report as it stands (composed earlier, or now without processes), parsed."""
        import json
        return json.loads(self.report_text or self.session.render(self._meta([])))

    def _meta(self, live):
        processes = []
        seen = set()
        sysv_owner = self._sysv_owners()
        cov = self.coverage(p["pid"] for p in live)
        for proc in live:
            pid = proc["pid"]
            seen.add(pid)
            exit_ = self.exits.get(pid, {})
            try:
                boxes = _core.mailboxes(pid, self.values.payload,
                                        sysv=sysv_owner.get(pid, ()))
            except OSError as e:
                boxes = [{"fd": -1, "endpoint": "", "pending": -1, "messages": -1,
                          "data": None, "truncated": False,
                          "error": f"cannot list fds: {e.strerror}"}]
            processes.append({"pid": pid, "alive": not exit_.get("signal"),
                              "exit_status": None, "exit_signal": exit_.get("signal", 0),
                              "threads": proc.get("threads", []), "mailboxes": boxes,
                              "mode": cov.mode(pid)})
        for pid, exit_ in sorted(self.exits.items()):
            if pid not in seen:
                processes.append({"pid": pid, "alive": False, "exit_status": exit_["status"],
                                  "exit_signal": exit_["signal"],
                                  "threads": self._crashed_thread(pid), "mailboxes": [],
                                  "mode": cov.mode(pid)})
        # A process whose events are here but whose end the debugger never saw (it lost the
        # exit, or never followed the fork): listed too, its end unknown.
        for pid in sorted(({ev["pid"] for ev in self.session.events()} | self.pids)
                          - seen - set(self.exits)):
            processes.append({"pid": pid, "alive": not vanished(pid), "exit_status": None,
                              "exit_signal": 0, "threads": [], "mailboxes": [],
                              "mode": cov.mode(pid)})
        stop = dict(self.stop)
        stop["signal"] = signal_number(stop.get("signal")) if stop.get("signal") else 0
        return {"key": self.key, "program": self.program, "argv": self.argv, "pid": self.pid,
                "started": self.started, "debugger": self.debugger,
                "backtrace": self.values.backtrace, "stop": stop, "processes": processes,
                "yield": self.yield_info, "sites": self.sites, "mode": self.mode,
                "uncovered": cov.uncovered(),
                "timeout": self.values.timeout,
                "filter": dict(self.filters, filtered=self.session.filtered)}

    def _crashed_thread(self, pid):
        """The thread the agent saw crash: the faulting pc, then the return addresses its
        frame-pointer walk found (csrc/agent/deaths.c), named where the driver could."""
        if pid not in self.crash_pcs:
            return []
        tid, pcs = self.crash_pcs[pid]
        unnamed = {"function": None, "file": None, "line": None}
        frames = [dict(self.crash_sites.get(pc, unnamed), pc=pc)
                  for pc in pcs[:self.values.backtrace]]
        return [{"tid": tid, "name": None, "backtrace": frames}]

    def _sysv_owners(self):
        """SysV queues are not fds: list each under the first process that used it."""
        owners = {}
        claimed = set()
        for ev in self.session.events():
            if ev["fn"] in SYSV_CALLS and ev["fd"] not in claimed:
                claimed.add(ev["fd"])
                owners.setdefault(ev["pid"], []).append(ev["fd"])
        return owners

    def outcome(self):
        """One line for the user: how the program ended and where the report went."""
        if self.disturbed:
            what = (f"tracing disturbed: {self.disturbed}; the program was killed and the run "
                    "says nothing about it")
        elif self.fatal:
            pid, _, signame = self.fatal
            what = f"program failed: {signame} in process {pid}"
        elif self.stop and self.stop.get("reason") == "timeout":
            what = f"program timed out after {self.values.timeout} s and was killed"
        elif self.pid in self.exits and self.exits[self.pid]["status"] is not None:
            status = self.exits[self.pid]["status"]
            what = ("program exited normally" if status == 0
                    else f"program failed: exit status {status}")
        elif self.stop:
            what = f"tracing ended ({self.stop.get('reason')})"
        else:
            what = "program still running"
        gap = self.coverage().closing_note() if self.finished else ""
        if gap:
            what += f"; {gap}"
        if self.report_path:
            return f"tracer: {what}; report: {self.report_path}"
        if self.report_text is not None:
            return f"tracer: {what}; report NOT written (`tracer snapshot FILE` saves it)"
        if self.values.report == "never":
            return f"tracer: {what}; no report (set tracer report always|failure)"
        return f"tracer: {what}; no report (set tracer report always to keep one)"
