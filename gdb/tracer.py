"""Tracer for gdb: a flight recorder for the IPC of a whole process tree.

    (gdb) source gdb/tracer.py
    (gdb) help tracer

This file is the gdb adapter only: commands, parameters, breakpoints, stop events, threads.
Decoding, recording and reports live in the core (tracerlib/_core, from csrc/) and in
tracerlib/run.py, shared with the lldb front end.
"""
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import gdb

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:          # gdb's sys.path does not hold the script's directory
    sys.path.insert(0, _ROOT)

try:
    from tracerlib import _core
except ImportError as _e:
    raise gdb.GdbError(f"tracer: the core is not built ({_e}); run `make` in {_ROOT}")
from tracerlib import export, frontend, settings, yields
from tracerlib.run import Run, TracerError, is_fatal

CATALOGUE = _core.catalogue()
TRACED_CALLS = [i for i, c in enumerate(CATALOGUE) if c["class"] in ("send", "recv")]

# gdb settings tracing needs, and why (restored by `tracer stop`).
GDB_SETTINGS = (
    ("detach-on-fork", "off"),        # keep forked children: trace the whole tree
    ("schedule-multiple", "on"),      # let parent and children run together
    ("displaced-stepping", "off"),    # gdb 13 corrupts %rcx in send/recv when SIGCHLD lands
    # With the default non-stop target, a child exiting while gdb steps another process over
    # a breakpoint can leave every process stopped and gdb waiting forever (seen with
    # tests/fixtures/sigchld_recv); the legacy all-stop target does not.
    ("maint target-non-stop", "off"),
)


def _quiet(command):
    return gdb.execute(command, to_string=True)


def _set_setting(name, value):
    return f"maint set {name[6:]} {value}" if name.startswith("maint ") else f"set {name} {value}"


def _show_setting(name):
    """The current value as `set` takes it: the last "is WORD" of gdb's show text."""
    text = _quiet(f"maint show {name[6:]}" if name.startswith("maint ") else f"show {name}")
    return re.findall(r" is (\w+)", text)[-1]


def _program_args():
    """The inferior's arguments. gdb.parameter("args") is always empty in gdb 13 (arguments
    are per inferior); `show args` quotes them the way a shell reads them."""
    text = _quiet("show args")
    inner = text[text.find('"') + 1:text.rfind('"')] if text.count('"') >= 2 else ""
    try:
        return shlex.split(inner)
    except ValueError:
        return inner.split()


def _gdb_version():
    return f"gdb {gdb.VERSION.split()[0]}"


def _thread_ids(thread):
    pid, lwp, _ = thread.ptid
    return pid, lwp or pid


class EntryBreakpoint(gdb.Breakpoint):
    """On a catalogue function: one stop per traced call."""

    def __init__(self, tracer, call):
        super().__init__(CATALOGUE[call]["name"], internal=True)
        self.tracer = tracer
        self.call = call

    def stop(self):
        return self.tracer.on_entry(self.call)


class ReturnBreakpoint(gdb.Breakpoint):
    """At a call site's return address: the stop where a receive's bytes exist. One per
    site and program space, kept for the whole run: cheaper than one per call."""

    def __init__(self, tracer, pc):
        super().__init__(f"*{pc:#x}", internal=True)
        self.tracer = tracer

    def stop(self):
        return self.tracer.on_return()


class YieldBreakpoint(gdb.Breakpoint):
    """Before an interesting call: where the seeded policy may insert a yield or a sleep."""

    def __init__(self, tracer, site):
        super().__init__(yields.site_location(site), internal=True)
        self.silent = True
        self.tracer = tracer
        self.site = site

    def stop(self):
        return self.tracer.on_yield_site(self)


class Tracer:
    """The gdb adapter's state: one per gdb session."""

    def __init__(self):
        self.values = settings.Values()
        self.run = None
        self.armed = False
        self.entry_bps = {}           # call -> EntryBreakpoint
        self.missing = []             # catalogue names with no symbol yet
        self.return_bps = {}          # (progspace, pc) -> ReturnBreakpoint
        self.errno_fn = {}            # progspace -> address of __errno_location
        self.saved_gdb = {}
        self.pids = {}                # inferior num -> pid
        self.last_event = None        # what ended the latest run/continue
        self.in_run_command = False
        self.timed_out = False
        self.watchdog = None          # the `tracer timeout` process, while a run is timed
        self.watchdog_pid = 0
        self.deadline = 0.0
        self.hot_path_error = None
        self.disarming = False
        self.pending_finish = None    # a stop that ends the run, reported at a safe point
        self.policy = None            # _core.YieldPolicy while yields are on
        self.yield_opts = None
        self.yield_bps = []
        self.yield_plans = {}         # tid -> microseconds (0: sched_yield) to insert
        self.yield_saved = {}         # tid -> registers saved before the inserted call
        self.yield_targets = {}       # progspace -> {"usleep": addr, "sched_yield": addr}
        gdb.events.new_objfile.connect(self._on_new_objfile)
        gdb.events.clear_objfiles.connect(self._on_clear_objfiles)
        gdb.events.new_thread.connect(self._on_new_thread)
        gdb.events.stop.connect(self._on_stop)
        gdb.events.exited.connect(self._on_exited)
        gdb.events.gdb_exiting.connect(self._on_gdb_exiting)
        gdb.events.before_prompt.connect(self._flush_pending_finish)

    # ---- the hot path: runs inside Breakpoint.stop(), must never raise ----
    def on_entry(self, call):
        try:
            thread = gdb.selected_thread()
            pid, tid = _thread_ids(thread)
            run = self._run_for(pid)
            action, return_pc = run.session.entry(call, pid, tid)
            if action == _core.CATCH_RETURN:
                self._catch_return(thread.inferior, return_pc)
            elif action == _core.DISARM:
                self._disarm_soon()
        except Exception as e:          # a stop() that raises makes gdb stop the program
            self._hot_path_failed(e)
        return False

    def on_return(self):
        try:
            thread = gdb.selected_thread()
            pid, tid = _thread_ids(thread)
            session = self.run.session
            action = session.ret(pid, tid)
            if action == _core.NEED_ERRNO:
                location = self._errno_location(thread.inferior)
                action = session.errno(tid, location=location)
            if action == _core.DISARM:
                self._disarm_soon()
        except Exception as e:
            self._hot_path_failed(e)
        return False

    def on_yield_site(self, bp):
        """A thread reached an instrumented call. Stop (return True) only to insert a call or
        to undo one; the insertion itself happens outside stop(), in `tracer run`'s loop."""
        try:
            if self.policy is None or not self.in_run_command:
                return False
            pid, tid = _thread_ids(gdb.selected_thread())
            if tid in self.yield_saved or tid in self.yield_plans:
                return True             # back from the inserted call, or a re-reported stop
            us = self.policy.decide(pid, tid, yields.site_key(bp.site))
            if us is None:
                return False
            self.yield_plans[tid] = us
            return True
        except Exception as e:
            self._hot_path_failed(e)
            return False

    def _service_yield(self):
        """Inserts the planned call in the stopped thread, or restores it after the call."""
        thread = gdb.selected_thread()
        pid, tid = _thread_ids(thread)
        frame = gdb.newest_frame()
        saved = self.yield_saved.pop(tid, None)
        if saved is not None:
            for name in yields.SAVED_REGISTERS:
                _quiet(f"set var ${name} = {saved[name]:#x}")
            return
        us = self.yield_plans.pop(tid, None)
        if us is None:
            return
        target = self._yield_target(thread.inferior, "usleep" if us else "sched_yield")
        if target is None:
            return
        regs = {name: int(frame.read_register(name)) & 0xFFFFFFFFFFFFFFFF
                for name in yields.SAVED_REGISTERS}
        writes, (address, data) = yields.insertion(regs, regs["rip"], target, us)
        thread.inferior.write_memory(address, data)
        for name, value in writes.items():
            _quiet(f"set var ${name} = {value:#x}")
        self.yield_saved[tid] = regs

    def _yield_target(self, inferior, name):
        space = inferior.progspace
        targets = self.yield_targets.setdefault(space, {})
        if name not in targets:
            try:
                targets[name] = int(gdb.parse_and_eval(f"(long)&{name}"))
            except gdb.error:
                targets[name] = None
        return targets[name]

    def _hot_path_failed(self, error):
        if self.hot_path_error is None:     # say it once, not once per stop
            self.hot_path_error = f"{type(error).__name__}: {error}"
            gdb.write(f"tracer: internal error while recording ({self.hot_path_error}); "
                      "events may be missing\n", gdb.STDERR)

    def _run_for(self, pid):
        if self.run is None:
            self._new_run()
        self.run.saw_process(pid)
        return self.run

    def _catch_return(self, inferior, pc):
        key = (inferior.progspace, pc)
        if key not in self.return_bps:
            self.return_bps[key] = ReturnBreakpoint(self, pc)
            self.run.sites.setdefault(pc, self._describe_pc(pc))

    def _describe_pc(self, pc):
        """function, file, line of a call site; pc is its return address, so look at pc-1."""
        frame = {"function": None, "file": None, "line": None}
        sal = gdb.find_pc_line(pc - 1)
        if sal.symtab:
            frame["file"] = sal.symtab.fullname()
            frame["line"] = sal.line or None
        try:
            block = gdb.block_for_pc(pc - 1)
            while block is not None and block.function is None:
                block = block.superblock
            if block is not None:
                frame["function"] = block.function.print_name
        except RuntimeError:
            pass
        if frame["function"] is None:       # no debug info: the minimal symbol
            text = gdb.format_address(pc - 1)
            if "<" in text:
                frame["function"] = text.split("<", 1)[1].split("+", 1)[0].rstrip(">")
        return frame

    def _errno_location(self, inferior):
        space = inferior.progspace
        if space not in self.errno_fn:
            try:
                self.errno_fn[space] = int(gdb.parse_and_eval("(long)&__errno_location"))
            except gdb.error:
                self.errno_fn[space] = None
        return self.errno_fn[space]

    # ---- arming ----
    def arm(self):
        for name, value in GDB_SETTINGS:
            try:
                self.saved_gdb[name] = _show_setting(name)
                _quiet(_set_setting(name, value))
            except gdb.error as e:      # target-non-stop cannot change under a live process
                gdb.write(f"tracer: warning: could not `{_set_setting(name, value)}`: {e}\n",
                          gdb.STDERR)
        self.armed = True
        self.disarming = False
        self.missing = [CATALOGUE[c]["name"] for c in TRACED_CALLS]
        self._place_entry_breakpoints()
        # gdb has no detach event: a pre-hook sees the processes while they are still ours.
        _quiet("define hook-detach\npython TRACER.before_detach()\nend")

    def _place_entry_breakpoints(self):
        """Creates the breakpoints whose functions exist now; the rest wait for their library.
        (Probing first keeps gdb from printing 'Function not defined' for each.)"""
        still_missing = []
        for name in self.missing:
            call = CATALOGUE.index(next(c for c in CATALOGUE if c["name"] == name))
            try:
                gdb.parse_and_eval(f"(long)&{name}")
            except gdb.error:
                still_missing.append(name)
                continue
            self.entry_bps[call] = EntryBreakpoint(self, call)
        self.missing = still_missing

    def disarm(self, restore=True):
        """Removes every tracer breakpoint (never the user's) and restores gdb's settings."""
        for bp in list(self.entry_bps.values()) + list(self.return_bps.values()):
            if bp.is_valid():
                bp.delete()
        self.entry_bps.clear()
        self.return_bps.clear()
        self.armed = False
        if restore:
            for name, value in self.saved_gdb.items():
                try:
                    _quiet(_set_setting(name, value))
                except gdb.error:
                    pass                # a live process pins target-non-stop: keep it
            self.saved_gdb.clear()

    def _disarm_soon(self):
        """Budget reached: every tracer breakpoint stops stopping now; they are deleted at
        the next safe point (deleting one inside its own stop() crashes gdb, and an event
        posted with gdb.post_event but not yet run when gdb exits crashes it too)."""
        if self.disarming:
            return
        self.disarming = True
        for bp in list(self.entry_bps.values()) + list(self.return_bps.values()):
            bp.enabled = False

    def _reap(self):
        """A safe point (a command, a stop or exit event): finish a budget disarm."""
        if self.disarming and (self.entry_bps or self.return_bps):
            self.disarm(restore=False)
            self.armed = True           # still "armed" for status; the budget ended it

    # ---- runs and processes ----
    def _new_run(self):
        space = gdb.current_progspace()
        program = space.filename if space else None
        self.run = Run(self.values, program, [program or "?"] + _program_args(), _gdb_version())
        self.hot_path_error = None
        self.timed_out = False
        return self.run

    def _live_inferiors(self):
        """Inferiors with a process and threads. gdb sometimes keeps a forked child that its
        parent reaped as a pid without threads whose exit it never reports: not live."""
        return [inf for inf in gdb.inferiors() if inf.pid and inf.threads()]

    def _live_pids(self, exclude=None):
        return [inf.pid for inf in self._live_inferiors() if inf.pid != exclude]

    def _on_new_objfile(self, event):
        if self.armed and self.missing and not self.disarming:
            self._place_entry_breakpoints()

    def _on_clear_objfiles(self, event):
        """exec (or a re-run) replaced the program: its return addresses mean nothing now."""
        space = event.progspace
        for key in [k for k in self.return_bps if k[0] == space]:
            bp = self.return_bps.pop(key)
            if bp.is_valid():           # not inside a stop(): deleting here is safe, and a
                bp.delete()             # stale one could land mid-instruction in the new image
        self.errno_fn.pop(space, None)
        if self.run is not None:
            for inf in gdb.inferiors():
                if inf.progspace == space and inf.pid:
                    self.run.session.forget(inf.pid)

    def _on_new_thread(self, event):
        thread = event.inferior_thread
        pid, tid = _thread_ids(thread)
        self.pids[thread.inferior.num] = pid
        if self.policy is not None:     # ordinals in the order gdb reports threads: stable
            self.policy.thread_seen(pid, tid)
        if not self.armed:
            return
        # A process's first thread can be announced twice (again once thread_db knows it).
        fresh_program = (len(thread.inferior.threads()) == 1
                         and not self._live_pids(exclude=pid)
                         and (self.run is None or pid not in self.run.pids))
        if fresh_program and self.run is not None and self.run.pid:
            # A new `run` while armed: the previous run is over, this one gets its own report.
            if not self.run.finished:
                self._finish({"reason": "kill", "signal": None, "status": None,
                              "pid": self.run.pid, "tid": self.run.pid}, live=False)
            self._new_run()
        self._run_for(pid)
        if fresh_program:
            self._start_watchdog(pid)

    def _on_stop(self, event):
        self._reap()
        if not self.armed and (self.run is None or self.run.finished):
            return
        if isinstance(event, gdb.BreakpointEvent):
            bps = event.breakpoints
            ours = (any(isinstance(bp, YieldBreakpoint) for bp in bps) and
                    all(isinstance(bp, (YieldBreakpoint, EntryBreakpoint, ReturnBreakpoint))
                        for bp in bps))
            self.last_event = "yield" if ours else "breakpoint"
            return
        if not isinstance(event, gdb.SignalEvent):
            self.last_event = "stop"
            return
        thread = gdb.selected_thread()
        pid, tid = _thread_ids(thread)
        sig = event.stop_signal
        if sig == "SIGINT" and self._watchdog_fired(pid):
            self.timed_out = True
            self.last_event = "timeout"
            self.pending_finish = {"reason": "timeout", "signal": None, "status": None,
                                   "pid": pid, "tid": tid}
        elif is_fatal(sig, pid):
            self.last_event = "fatal"
            if self.run is not None and not self.run.finished:
                self.run.record_fatal(pid, tid, sig)
                self.pending_finish = {"reason": "signal", "signal": sig, "status": None,
                                       "pid": pid, "tid": tid}
        else:
            self.last_event = "signal" if sig != "SIGINT" else "interrupt"

    def _flush_pending_finish(self, event=None):
        """Writes the report a stop asked for, from a safe place: walking threads and frames
        inside the stop event itself can trip gdb's thread_db assertions."""
        stop, self.pending_finish = self.pending_finish, None
        if stop is not None:
            self._finish(stop)

    def _on_exited(self, event):
        self._reap()
        inferior = event.inferior
        pid = inferior.pid or self.pids.get(inferior.num, 0)
        self.last_event = "exited"
        run = self.run
        if run is None or not pid:
            return
        code = getattr(event, "exit_code", None)
        fatal_sig = run.fatal[2] if run.fatal and run.fatal[0] == pid else None
        run.record_exit(pid, status=code, signame=fatal_sig)
        if self._live_pids(exclude=pid):
            return
        stop, self.pending_finish = self.pending_finish, None
        if stop is None and code is not None:
            stop = {"reason": "exit", "signal": None, "status": code, "pid": pid, "tid": pid}
        elif stop is None:
            stop = {"reason": "signal" if fatal_sig else "kill", "signal": fatal_sig,
                    "status": None, "pid": pid, "tid": pid}
        self._finish(stop, live=False)

    def before_detach(self):
        """`detach` of the last traced process ends the run (a report under `always`)."""
        live = self._live_inferiors()
        if self.run is None or self.run.finished or len(live) > 1:
            return
        self._flush_pending_finish()
        pid = live[0].pid if live else self.run.pid
        self._finish({"reason": "detach", "signal": None, "status": None, "pid": pid,
                      "tid": pid})

    def _on_gdb_exiting(self, event):
        self._flush_pending_finish()
        if self.run is not None and not self.run.finished and self.armed:
            self._finish({"reason": "quit", "signal": None, "status": None,
                          "pid": self.run.pid, "tid": self.run.pid})

    def _finish(self, stop, live=True, force=False):
        """The program stopped for good: one report, and one line saying where it went."""
        run = self.run
        if run is None or run.finished:
            return None
        self._note_yields(run)
        try:
            path = run.finish(stop, self._snapshot_processes() if live else [], force=force)
        except TracerError as e:
            gdb.write(f"tracer: {e}\n", gdb.STDERR)
            return None
        if not self.in_run_command:
            gdb.write(run.outcome() + "\n")
        return path

    def _snapshot_processes(self):
        """Every live traced process: its threads with bounded backtraces."""
        limit = self.values.backtrace
        processes = []
        try:
            selected = gdb.selected_thread()
        except gdb.error:
            selected = None
        for inf in self._live_inferiors():
            threads = []
            for thread in sorted(inf.threads(), key=lambda t: t.num):
                if not thread.is_valid():
                    continue
                threads.append({"tid": _thread_ids(thread)[1], "name": thread.name,
                                "backtrace": self._backtrace(thread, limit)})
            processes.append({"pid": inf.pid, "threads": threads})
        if selected is not None and selected.is_valid():
            selected.switch()
        return processes

    def _backtrace(self, thread, limit):
        frames = []
        try:
            thread.switch()
            frame = gdb.newest_frame()
            while frame is not None and len(frames) < limit:
                sal = frame.find_sal()
                frames.append({"pc": frame.pc(), "function": frame.name(),
                               "file": sal.symtab.fullname() if sal.symtab else None,
                               "line": sal.line or None})
                frame = frame.older()
        except gdb.error:
            pass                        # a thread gdb cannot unwind: keep what we have
        return frames

    # ---- commands ----
    def start(self):
        if self.armed:
            raise TracerError("already tracing; `tracer stop` first")
        if not gdb.current_progspace().filename and not self._live_inferiors():
            raise TracerError("no program loaded: use `file PROGRAM` or "
                              "`gdb --args PROGRAM ARGS`, then `tracer start`")
        self.arm()
        if self._live_inferiors():
            self._run_for(gdb.selected_inferior().pid)

    def stop(self):
        if not self.armed and self.policy is None:
            raise TracerError("not tracing; `tracer start` arms it")
        self.yield_off(quiet=True)
        if self.armed:
            self.disarm()

    def run_to_end(self, args):
        """`tracer run`: arm, run (or continue an attached process) until the program ends."""
        run = self._run_once(args)
        if run is None:
            return              # stopped at the user's own breakpoint or Ctrl-C
        if run.failed:
            raise gdb.GdbError(run.outcome())  # batch gdb exits non-zero: CI sees it
        gdb.write(run.outcome() + "\n")

    def _run_once(self, args):
        """One run to its end; the Run, or None when the user's own stop interrupted it."""
        live = self._live_inferiors()
        if not live and not gdb.current_progspace().filename:
            raise TracerError("no program loaded: `gdb --args PROGRAM ARGS` or "
                              "`file PROGRAM` first")
        if self.armed and self.disarming and not live:
            self.disarm()               # the last run spent its budget: a fresh one
        if not self.armed:
            self.arm()
        if not live:
            self._prepare_rerun()
            self._new_run()
        self.in_run_command = True
        if live:                        # attached: the clock starts now
            self._start_watchdog(live[0].pid)
        try:
            self._resume("run " + args if not live else "continue")
            while True:
                if self.timed_out:
                    self._kill_all()
                    break
                if not self._live_inferiors():
                    break
                if self.last_event == "yield":
                    self._service_yield()
                elif self.last_event in ("breakpoint", "interrupt", "stop"):
                    return None         # the user's own stop: hand control back
                self._resume("continue")
        finally:
            self.in_run_command = False
            self._stop_watchdog()
        return self.run

    def _prepare_rerun(self):
        """Before a new `run`: back to inferior 1, the exited children's inferiors removed
        (a hunt would pile up hundreds), their return breakpoints forgotten."""
        self.yield_plans.clear()
        self.yield_saved.clear()
        if gdb.selected_inferior().num != 1:
            _quiet("inferior 1")
        dead = [str(inf.num) for inf in gdb.inferiors() if inf.num != 1 and not inf.pid]
        if dead:
            _quiet("remove-inferiors " + " ".join(dead))
        for key in [k for k, bp in self.return_bps.items() if not bp.is_valid()]:
            del self.return_bps[key]
        if self.policy is not None:
            self.policy.reseed(self.yield_opts.seed)

    def _note_yields(self, run):
        run.yield_info = frontend.yield_info(self.policy, len(self.yield_bps))

    # ---- yields ----
    def _program(self):
        path = gdb.current_progspace().filename
        if not path:
            raise TracerError("no program loaded: `file PROGRAM` or `gdb --args PROGRAM` first")
        return path

    def sites(self, arg):
        opts = yields.parse_sites_args(arg)
        return yields.sites_table(yields.SiteIndex.of(self._program()).select(opts))

    def yield_on(self, arg):
        opts, policy, sites = yields.plan(self._program(), arg)
        self.yield_off(quiet=True)
        self.policy, self.yield_opts = policy, opts
        self.yield_bps = [YieldBreakpoint(self, site) for site in sites]
        for inf in self._live_inferiors():
            for thread in sorted(inf.threads(), key=lambda t: t.num):
                policy.thread_seen(*_thread_ids(thread))
        where = ("functions (no DWARF: at their entry)" if sites[0].get("entry")
                 else "call sites")
        return (f"tracer: yields on at {len(sites)} {where}, probability "
                f"{opts.probability}, strategy {policy.info['strategy']}, seed {opts.seed}")

    def yield_off(self, quiet=False):
        if self.policy is None and not quiet:
            raise TracerError("yields are not on")
        for bp in self.yield_bps:
            if bp.is_valid():
                bp.delete()
        self.yield_bps = []
        self.policy = None
        self.yield_plans.clear()
        self.yield_saved.clear()
        return None if quiet else "tracer: yields off, no site left instrumented"

    def yield_status(self):
        return frontend.yield_status_text(
            self.policy, sum(1 for bp in self.yield_bps if bp.is_valid()))

    def hunt(self, arg):
        """Runs the program with seeds S, S+1, ... until one run fails."""
        opts = yields.parse_hunt_args(arg)
        if self.policy is None:
            seed = f"--seed {opts.seed}" if opts.seed is not None else ""
            gdb.write(self.yield_on(seed) + "\n")
        first = opts.seed if opts.seed is not None else self.yield_opts.seed

        def run_once(seed):
            self.yield_opts.seed = seed
            return self._run_once("")

        return frontend.hunt(opts, first, self.values, run_once, self._replay_command,
                             lambda line: gdb.write(line + "\n"))

    def _replay_command(self, seed):
        """A shell command that reruns the failing seed with the same selection, policy and
        limits (every word quoted: paths and arguments may hold spaces)."""
        yield_on = "tracer yield on " + frontend.yield_on_args(
            self.yield_opts, self.policy.info["strategy"], seed)
        cmd = ["gdb", "-q", "-batch", "-x", os.path.join(_ROOT, "gdb", "tracer.py")]
        for limit in frontend.changed_limits(self.values):
            cmd += ["-ex", f"set tracer {limit}"]
        cmd += ["-ex", yield_on, "-ex", "tracer run", "--args", self._program(),
                *_program_args()]
        return " ".join(shlex.quote(w) for w in cmd)

    def _resume(self, command):
        self._reap()
        self.last_event = None
        live = self._live_inferiors()
        if command == "continue" and live and not gdb.selected_inferior().threads():
            live[0].threads()[0].switch()   # continuing from an exited inferior fails
        try:
            for attempt in range(3):
                try:
                    gdb.execute(command)
                    break
                except gdb.error as e:
                    # gdb loses a race with a parent reaping its short-lived child: "No
                    # unwaited-for children left." The processes are fine; resume again.
                    if "unwaited-for" not in str(e) or attempt == 2:
                        raise
                    command = "continue"
                    live = self._live_inferiors()
                    if not live:
                        break
                    if not gdb.selected_inferior().threads():
                        live[0].threads()[0].switch()
        finally:
            self._flush_pending_finish()

    def _start_watchdog(self, pid):
        """`set tracer timeout`: a detached process sends the program SIGINT when time is up.
        Not a Python thread: a thread inside gdb can take the SIGCHLDs gdb relies on, and
        then gdb trips over its own thread_db state (seen as internal errors here)."""
        if not self.values.timeout or self.watchdog is not None or not self.in_run_command:
            return
        self.watchdog = subprocess.Popen(
            ["/bin/sh", "-c", f"(sleep {self.values.timeout}; kill -INT {pid}) "
                              ">/dev/null 2>&1 </dev/null & echo $!"],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.watchdog_pid = int(self.watchdog.communicate()[0].strip() or 0)
        self.deadline = time.monotonic() + self.values.timeout

    def _stop_watchdog(self):
        if self.watchdog is None:
            return
        if self.watchdog_pid:
            try:
                os.kill(-self.watchdog_pid, signal.SIGTERM)
            except OSError:
                try:
                    os.kill(self.watchdog_pid, signal.SIGTERM)
                except OSError:
                    pass
        self.watchdog = None
        self.watchdog_pid = 0

    def _watchdog_fired(self, pid):
        """A SIGINT stop while a watchdog ran: did its time run out?"""
        return self.watchdog is not None and time.monotonic() >= self.deadline - 0.1

    def _kill_all(self):
        nums = " ".join(str(inf.num) for inf in self._live_inferiors())
        if nums:
            _quiet(f"kill inferiors {nums}")

    def attach(self, arg):
        pid = frontend.attach_pid(arg, "gdb")
        if any(inf.pid == pid for inf in gdb.inferiors()):
            raise TracerError(f"process {pid} is already traced")
        armed_here = not self.armed
        if armed_here:
            self.arm()                  # before attaching: target-non-stop is fixed after
        try:
            _quiet(f"attach {pid}")
        except gdb.error as e:
            if armed_here:
                self.disarm()
            raise TracerError(f"cannot attach to {pid}: {e} (is ptrace allowed? see "
                              "/proc/sys/kernel/yama/ptrace_scope)") from None
        self._new_run()
        self._run_for(pid)
        gdb.write(f"tracer: attached to {pid} and tracing; `continue` or `tracer run` "
                  "to let it go\n")

    def snapshot(self, path):
        """`tracer snapshot [FILE]`: freeze and write now (the program may be hung)."""
        run = self.run
        if run is not None and not run.finished:
            self._note_yields(run)
        try:
            tid = _thread_ids(gdb.selected_thread())[1]
        except (gdb.error, AttributeError):
            tid = run.pid if run else 0
        return frontend.snapshot(run, frontend.stop("snapshot", run.pid if run else 0, tid),
                                 self._snapshot_processes, path)

    def status(self):
        notes = [self.yield_status().removeprefix("tracer: ")] if self.policy else []
        return frontend.status_text(self.armed, self.run,
                                    [CATALOGUE[c]["name"] for c in self.entry_bps],
                                    len(self.return_bps), self.missing, self.disarming,
                                    self.hot_path_error, notes)

    def show(self, arg):
        return frontend.show_text(arg, self.run)

    def live_report(self):
        if self.run is None:
            raise TracerError("nothing traced yet: `tracer run` first, or --from REPORT")
        return self.run.report_dict()

TRACER = Tracer()


def _command(name, doc, action, completer=gdb.COMPLETE_NONE):
    """Registers `tracer NAME`; TracerError and SettingError become one-line gdb errors."""

    class Command(gdb.Command):
        __doc__ = doc

        def __init__(self):
            super().__init__(f"tracer {name}", gdb.COMMAND_RUNNING, completer)

        def invoke(self, arg, from_tty):
            try:
                out = action(arg.strip())
            except (TracerError, settings.SettingError) as e:
                raise gdb.GdbError(f"tracer: {e}") from None
            if out:
                gdb.write(out + "\n")

    Command()


_WORDS = {"batch": "In `gdb -batch` gdb exits with the status of its last command: put\n"
                  "`tracer run` last.",
          "resume": "continue"}


def _doc(name):
    return frontend.command_help(name, **_WORDS)[2]


class TracerPrefix(gdb.Command):
    __doc__ = (frontend.overview(", its threads and its forked children") + "\n\n"
               + frontend.command_table() + "\n\nSettings: show tracer / set tracer "
               + "|".join(s.name for s in settings.SETTINGS) + ".")

    def __init__(self):
        super().__init__("tracer", gdb.COMMAND_RUNNING, gdb.COMPLETE_NONE, prefix=True)

    def invoke(self, arg, from_tty):
        raise gdb.GdbError(f"tracer: unknown subcommand '{arg}'; `help tracer` lists them"
                           if arg else "tracer: which subcommand? `help tracer` lists them")


class YieldPrefix(gdb.Command):
    """Yield injection: make the program yield or sleep before interesting calls.

Yields happen while `tracer run` or `tracer hunt` drives the program. The decisions come
from a seeded generator keyed on thread and call order: the same seed replays them."""

    def __init__(self):
        super().__init__("tracer yield", gdb.COMMAND_RUNNING, gdb.COMPLETE_NONE, prefix=True)

    def invoke(self, arg, from_tty):
        raise gdb.GdbError("tracer: tracer yield on|off|status")


TracerPrefix()
YieldPrefix()
_FILES = gdb.COMPLETE_FILENAME
for _name, _action, _completer in (
        ("start", lambda a: TRACER.start() or "tracer: armed", gdb.COMPLETE_NONE),
        ("stop", lambda a: TRACER.stop() or "tracer: disarmed", gdb.COMPLETE_NONE),
        ("run", TRACER.run_to_end, _FILES),
        ("attach", TRACER.attach, gdb.COMPLETE_NONE),
        ("status", lambda a: TRACER.status(), gdb.COMPLETE_NONE),
        ("show", TRACER.show, _FILES),
        ("snapshot", lambda a: "tracer: report: " + str(
            TRACER.snapshot(os.path.expanduser(a) if a else None)), _FILES),
        ("export", lambda a: export.export(a, TRACER.live_report), _FILES),
        ("sites", TRACER.sites, gdb.COMPLETE_NONE),
        ("yield on", TRACER.yield_on, gdb.COMPLETE_NONE),
        ("yield off", lambda a: TRACER.yield_off(), gdb.COMPLETE_NONE),
        ("yield status", lambda a: TRACER.yield_status(), gdb.COMPLETE_NONE),
        ("hunt", TRACER.hunt, gdb.COMPLETE_NONE)):
    _command(_name, _doc(_name), _action, _completer)


class _SetPrefix(gdb.Command):
    """Tracer settings."""

    def __init__(self, verb):
        super().__init__(f"{verb} tracer", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, prefix=True)


_SetPrefix("set")
_SetPrefix("show")

_PARAM_KIND = {"int": gdb.PARAM_ZUINTEGER, "str": gdb.PARAM_STRING, "enum": gdb.PARAM_ENUM}


def _parameter(setting):
    """One gdb parameter per setting, validated by the setting itself."""

    class Parameter(gdb.Parameter):
        __doc__ = setting.doc
        set_doc = f"Set tracer {setting.name}."
        show_doc = f"Show tracer {setting.name}."

        def __init__(self):
            if setting.kind == "enum":
                super().__init__(f"tracer {setting.name}", gdb.COMMAND_DATA,
                                 _PARAM_KIND["enum"], list(setting.choices))
            else:
                super().__init__(f"tracer {setting.name}", gdb.COMMAND_DATA,
                                 _PARAM_KIND[setting.kind])
            self.value = setting.default

        def get_set_string(self):
            try:
                TRACER.values.set(setting.name, self.value)
            except settings.SettingError as e:
                self.value = getattr(TRACER.values, setting.name)
                raise gdb.GdbError(f"tracer: {e}") from None
            return ""

        def get_show_string(self, svalue):
            return f"tracer {setting.name} is {svalue}. ({setting.doc})"

    Parameter()


for _setting in settings.SETTINGS:
    _parameter(_setting)
