"""The one driver: the run state machine, arming, the recording hot path and what the port
saw, written once against a debugger port (tracerlib/port.py).

A port reports what its debugger sees (threads, exits, exec, stops) through the `on_*`
methods and calls the breakpoint handlers the driver gave it; the driver decides everything
else. Nothing here imports gdb or lldb. Its parts elsewhere, each owning its own state:
- tracerlib/commands.py: the `tracer` commands (a mixin of the Driver, over its state);
- tracerlib/yield_breakpoints.py: the yields (policy, sites, their breakpoints, the calls
  inserted at them), `driver.yielder`;
- tracerlib/exits.py: a process's end and the stop that ends the run (on_exit, on_ended,
  poll hand over to it; the _exit breakpoint), `driver.exits`;
- tracerlib/agent_mode.py: agent mode's part of a run (launch, attach, leave, its events).
"""

from . import _core, agent_mode, frontend, pct, result_file, settings
from .commands import CATALOGUE, Commands
from .exits import Exits
from .glibc_threads import ThreadPointers
from .port import EXEC, FATAL, INTERRUPT, OTHER, OURS, TIMEOUT, USER, DebuggerTrouble, cmdline
from .run import Run, TracerError
from .yield_breakpoints import YieldBreakpoints

CALL_INDEX = {c["name"]: i for i, c in enumerate(CATALOGUE)}
_UNEXPLAINED_STOPS = 1000     # stops with no reason in one run before giving up


class Driver(Commands):
    """Tracer's state in one debugger session; its commands are in commands.py."""

    def __init__(self, port):
        self.port = port
        self.values = settings.Values()
        self.run = None
        self.armed = False
        self.disarming = False        # budget reached: breakpoints go at the next safe point
        self.hot_path_error = None
        self.in_run_command = False   # `tracer run` / `tracer hunt` drives the program
        self.clock_on = False
        self.pending = None           # a stop record that ends the run, written when safe
        self.entry_bps = {}           # catalogue call -> breakpoint
        self.missing = []             # catalogue names not found yet
        self.return_bps = {}          # ctx.return_key(pc) -> breakpoint
        self.return_pcs = set()       # (pid, pc) whose return breakpoint is known
        self.symbols = {}             # (pid, name) -> runtime address, for this process image
        self.yielder = YieldBreakpoints(port, self._symbol, self.on_yield_site)
        self.armed_mode = None        # "breakpoint" or "agent": what arm() set up
        self.armed_trace = None       # the trace filter arm() placed breakpoints for
        self.exits = Exits(self)      # a process's end, and the _exit breakpoint
        self.thread_pointers = {}     # pid -> ThreadPointers, for ports without fs_base
        self.verdict = None           # ("passed"|"failed", report path) of run, hunt, replay

    # ================================================================ hot path
    # Handlers run inside the debugger's breakpoint callbacks: they never raise.

    def on_entry(self, call, ctx):
        try:
            if self.disarming:
                return False
            run = self._run_for(ctx.pid)
            action, return_pc = run.session.entry(call, ctx.pid, ctx.tid, regs=ctx.regs())
            if action == _core.CATCH_RETURN:
                self._catch_return(ctx, return_pc)
            elif action == _core.DISARM:
                self._disarm_soon()
        except Exception as e:          # noqa: BLE001 - a raising handler stops the program
            self._hot_path_failed(e)
        return False

    def on_return(self, ctx):
        try:
            run = self.run
            if run is None or self.disarming:
                return False
            session = run.session
            action = session.ret(ctx.pid, ctx.tid, regs=self._return_regs(ctx))
            if action == _core.NEED_ERRNO:
                location = self._symbol(ctx, "__errno_location")
                action = (session.errno(ctx.tid, location=location) if location
                          else session.errno(ctx.tid))
            if action == _core.DISARM:
                self._disarm_soon()
        except Exception as e:          # noqa: BLE001
            self._hot_path_failed(e)
        return False

    def _return_regs(self, ctx):
        """A port that cannot read fs_base leaves it None: glibc's thread list gives it, read
        only when rax looks like -1 (errno will be wanted, and with it the thread pointer)."""
        regs = ctx.regs(returning=True)
        if regs is None or regs[9] is not None:
            return regs
        fs_base = 0
        if regs[7] & 0xFFFFFFFF == 0xFFFFFFFF:
            if ctx.pid not in self.thread_pointers:
                self.thread_pointers[ctx.pid] = ThreadPointers(ctx.pid, ctx.symbol)
            fs_base = self.thread_pointers[ctx.pid].fs_base(ctx.tid) or 0
        return regs[:9] + (fs_base,)

    def on_yield_site(self, site, ctx):
        """A thread is before an instrumented call (yield_breakpoints.py; True: stop for
        it)."""
        try:
            return self.yielder.at_site(site, ctx, self.in_run_command)
        except Exception as e:          # noqa: BLE001
            self._hot_path_failed(e)
            return False

    def _symbol(self, ctx, name):
        """Runtime addresses are per process image: never reused across runs or exec."""
        key = (ctx.pid, name)
        if key not in self.symbols:
            self.symbols[key] = ctx.symbol(name)
        return self.symbols[key]

    def _hot_path_failed(self, error):
        if self.hot_path_error is None:     # say it once, not once per stop
            self.hot_path_error = f"{type(error).__name__}: {error}"
            self.port.write(f"tracer: internal error while recording ({self.hot_path_error}); "
                            "events may be missing", error=True)

    def _catch_return(self, ctx, pc):
        if (ctx.pid, pc) in self.return_pcs:
            return
        self.return_pcs.add((ctx.pid, pc))
        key = ctx.return_key(pc)
        if key not in self.return_bps:
            self.return_bps[key] = self.port.break_return(ctx, pc, self.on_return)
        self.run.sites.setdefault(pc, self._describe(pc))

    def _describe(self, pc):
        """function, file, line of a call site; pc is its return address: look at pc-1."""
        function, file, line = self.port.describe_pc(pc - 1)
        return {"function": function or None, "file": file or None, "line": line or None}

    # ================================================================ arming
    def arm(self, mode="breakpoint", port_mode=None):
        """In agent mode the program records itself: no breakpoint per call. port_mode: the
        debugger settings of that mode instead."""
        self.port.arm(port_mode or mode)
        self.exits.arm()
        self.armed = True
        self.armed_mode = mode
        self.disarming = False
        # the trace filter: a function left out gets no breakpoint at all
        self.armed_trace = self.values.trace
        self.missing = _core.filter_check("trace", self.values.trace) \
            if mode == "breakpoint" else []
        self.place_entry_breakpoints()

    def place_entry_breakpoints(self):
        """Breakpoints on the catalogue functions there now; the rest wait for a library."""
        if not self.armed or self.disarming:
            return
        still_missing = []
        for name in self.missing:
            call = CALL_INDEX[name]
            bp = self.port.break_function(
                name, lambda ctx, call=call: self.on_entry(call, ctx))
            if bp is None:
                still_missing.append(name)
            else:
                self.entry_bps[call] = bp
        self.missing = still_missing

    def _tracer_breakpoints(self):
        return list(self.entry_bps.values()) + list(self.return_bps.values())

    def disarm(self, restore=True):
        """Removes every tracer breakpoint (never the user's); restore: and the debugger
        settings Tracer changed."""
        for bp in self._tracer_breakpoints():
            self.port.delete(bp)
        self.entry_bps.clear()
        self.return_bps.clear()
        self.return_pcs.clear()
        self.armed = False
        if restore:
            self.disarming = False
            self.exits.disarm()
            self.port.disarm()

    def _disarm_soon(self):
        """Budget reached (or a snapshot froze the ring): the breakpoints stop stopping now
        and are deleted at the next safe point (deleting one in its own callback crashes
        gdb)."""
        if self.disarming:
            return
        self.disarming = True
        for bp in self._tracer_breakpoints():
            self.port.disable(bp)

    def _reap(self):
        """A safe point: finish a budget disarm."""
        if self.disarming and (self.entry_bps or self.return_bps):
            self.disarm(restore=False)
            self.armed = True           # still "armed" for status; the budget ended it

    # ================================================================ what the port saw
    def on_new_objects(self):
        """The debugger loaded objects (libraries): the breakpoints waiting for them."""
        self.place_entry_breakpoints()
        self.yielder.place_pending()

    def on_new_thread(self, pid, tid, first):
        """A thread appeared; first: its process's first. The first thread of the only live
        process is a new program's (not a fork's)."""
        fresh = first and not [p for p in self.port.live_pids() if p != pid]
        self.yielder.announce(pid, tid)
        if not self.armed:
            return
        run = self.run
        if fresh and run is not None and run.pid and pid not in run.pids:
            # A new `run` while armed: the previous run is over, this one gets its own report.
            if not run.finished:
                self._finish(frontend.stop("kill", run.pid), live=False)
            self._new_run()
        self._run_for(pid)
        if fresh:
            self._start_clock(pid)

    def on_stop(self, stop):
        """A classified stop (from `tracer run`'s loop, or one the user's own resume met)."""
        self._reap()
        run = self.run
        if stop.kind == TIMEOUT:
            self.pending = frontend.stop("timeout", stop.pid, stop.tid)
        elif stop.kind == FATAL and run is not None and not run.finished:
            run.record_fatal(stop.pid, stop.tid, stop.signal)
            self.pending = frontend.stop("signal", stop.pid, stop.tid, signal=stop.signal)
        elif stop.kind == EXEC:
            self.on_exec([stop.pid])

    def on_fatal_outside_run(self, stop):
        """A stop you drove yourself (`continue`, `run`): a fatal signal writes the report
        while the process is still there to be looked at."""
        run = self.run
        if not self.in_run_command and run and not run.finished and stop.kind == FATAL:
            self.on_stop(stop)
            self.flush_pending()

    def flush_pending(self):
        """Writes the report a stop asked for, from a safe place (walking threads inside a
        stop event can trip the debugger's own assertions)."""
        stop, self.pending = self.pending, None
        if stop is not None:
            self._finish(stop)

    # ---- a process's end: exits.py
    def on_exit(self, pid, status=None, signame=None):
        """A traced process ended: status, or signame when a signal killed it (None when
        the port cannot tell)."""
        self.exits.on_exit(pid, status=status, signame=signame)

    def on_ended(self, pid, status):
        """pid is gone with `status` as the debugger gives it (exits.py tells an exit from
        a death by signal)."""
        self.exits.on_ended(pid, status)

    def poll(self):
        """Before a command: a run whose process ended unseen gets its report now."""
        self.exits.poll()

    def on_exec(self, pids, image_key=None):
        """pids replaced their image: its return sites, symbols and yields mean nothing now.
        image_key(key) says which return breakpoints belonged to the old image."""
        for key in [k for k in self.return_bps if image_key and image_key(k)]:
            self.port.delete(self.return_bps.pop(key))
        self.yielder.forget_library_sites()
        for pid in pids:
            self.thread_pointers.pop(pid, None)
            self.return_pcs = {k for k in self.return_pcs if k[0] != pid}
            self.symbols = {k: v for k, v in self.symbols.items() if k[0] != pid}
            self.yielder.forget_process(pid)
            if self.run is not None:
                self.run.session.forget(pid)

    def on_detach(self, pid=0, processes=None):
        """The last traced process is being (or was) detached: the run ends; tracing too."""
        run = self.run
        live = self.port.live_pids()
        if run is not None and not run.finished and len(live) <= 1:
            agent_mode.leave(self.port, run)
            self.flush_pending()
            pid = pid or (live[0] if live else run.pid)
            self._finish(frontend.stop("detach", pid), processes=processes)
        if self.armed and len(live) <= 1:
            self.disarm()

    def on_hang(self, why):
        """The debugger hung under the run (tracerlib/hang.py) and cannot be brought back:
        what was recorded is written now, as the tool's failure, never the program's (no
        thread can be walked while the debugger waits: processes[] holds what the events
        name). Returns the report path."""
        run = self.run
        if run is None or run.finished:
            return None
        run.disturbed = why
        path = self._finish(frontend.stop("disturbed", run.pid), live=False)
        text = "tracer: " + run.outcome().removeprefix("tracer: ")
        self.port.write(text, error=True)
        result_file.record("run", ("disturbed", path), None, text)
        return path

    def on_quit(self):
        self.flush_pending()
        if self.run is not None and not self.run.finished and self.armed:
            self._finish(frontend.stop("quit", self.run.pid))

    # ================================================================ runs
    def _new_run(self, pid=0, argv=None, mode="breakpoint"):
        name = self.port.name
        if mode == "breakpoint" and not self.port.follows_forks:
            name += " (forked children not traced)"
        self.run = Run(self.values, self.port.program(),
                       argv if argv is not None else self.argv(pid), name)
        self.run.mode = mode
        self.hot_path_error = None
        for cache in (self.return_pcs, self.symbols, self.exits.calls, self.thread_pointers):
            cache.clear()               # they describe the last run's process images
        if pid:
            self.run.saw_process(pid)
        return self.run

    def argv(self, pid=0):
        """The argv of live `pid` as it was started (through a symlink, too), or the one the
        next launch will use."""
        return (pid and cmdline(pid)) or [self.port.program() or "?"] + list(self.port.args())

    def _run_for(self, pid):
        run = self.run
        if run is not None and run.pid and pid not in run.pids and not self.port.follows_forks:
            # A process the debugger did not see being born: a new program, a new run.
            if not run.finished:
                self._finish(frontend.stop("kill", run.pid), live=False)
            run = None
        if run is None or (run.finished and not self.port.follows_forks and
                           run.pid != pid and pid not in run.pids):
            run = self._new_run(pid)    # (where forks are followed, on_new_thread says)
        run.saw_process(pid)
        return run

    def _finish(self, stop, live=True, processes=None):
        """The program stopped for good: one report, and one line saying where it went
        (printed here unless `tracer run` prints it). Returns the report path."""
        run = self.run
        if run is None or run.finished:
            return None
        self._settle(run)
        if processes is None:
            processes = self.port.processes(self.values.backtrace) if live else []
        try:
            run.finish(stop, processes)
        except TracerError as e:
            self.port.write(f"tracer: {e}", error=True)
        if not self.in_run_command:
            self.port.write(run.outcome())
        return run.report_path

    def _settle(self, run):
        """Before a run's report: its yield record, and in agent mode the program's events
        (agent_mode.settle)."""
        run.yield_info = self.yielder.info()
        if run.mode == "agent":
            agent_mode.settle(run, self.yielder, self._describe)

    def _start_clock(self, pid):
        if self.values.timeout and self.in_run_command and not self.clock_on:
            self.port.start_clock(self.values.timeout, pid)
            self.clock_on = True

    def _before_launch(self):
        """A fresh process is coming: the yield decisions start again from the seed."""
        self.port.before_run()
        self.yielder.new_launch()

    def _resume(self):
        self._reap()
        return self.port.resume()

    def run_once(self, args=""):
        """One run to its end: the finished Run, or None when the user's own breakpoint or
        an interrupt stopped it (control goes back to the user)."""
        self.poll()
        live = self.port.live_pids()
        if not live and not self.port.program():
            raise TracerError("no program loaded: " + self.port.load_hint)
        mode = self.armed_mode if live else agent_mode.launch_mode(self.values, self.port)
        if self.armed and ((self.disarming and not live) or mode != self.armed_mode
                           or (self.values.trace != self.armed_trace and not live)):
            self.disarm()               # a fresh run: the last spent its budget, a new trace
                                        # filter wants other breakpoints, or a mode
        if not self.armed:
            self.arm(mode)
        self.in_run_command = True
        try:
            if live:                    # attached, or stopped at your breakpoint
                if self.run is None or self.run.finished or self.run.pid not in live:
                    self._new_run(live[0], mode=mode)
                self._start_clock(live[0])
                stop = self._resume()
            else:
                self._before_launch()
                self.port.set_args(args)
                self._new_run(mode=mode)
                stop = self._launch()
            return self._drive(stop)
        except DebuggerTrouble as e:
            return self._disturbed(str(e))
        finally:
            self.in_run_command = False
            self.clock_on = False
            self.port.run_ended()

    def _disturbed(self, why):
        """The debugger failed under the run: what was recorded is saved (the report says
        why), the program is killed, and the run is the tool's failure, never the
        program's; a hunt does not count it."""
        run = self.run
        run.disturbed = why
        self._finish(frontend.stop("disturbed", run.pid), live=False)
        try:
            self.port.kill()
        except Exception:               # noqa: BLE001 - the debugger is already in trouble
            pass
        return run

    def _launch(self):
        """Starts the program; in agent mode with the agent (agent_mode.launch)."""
        run = self.run
        for bp in self.return_bps.values():     # at the last run's (randomised) addresses
            self.port.delete(bp)
        self.return_bps.clear()
        yielder = self.yielder
        yielder.forget_library_sites()
        yielder.place(True, agent=run.mode == "agent")
        pct.check(yielder.policy, run.mode)
        if run.mode != "agent":
            return self.port.launch()
        return agent_mode.launch(self.port, run, self.values, yielder)

    def _drive(self, stop):
        unexplained = 0
        while True:
            self.on_stop(stop)
            self.flush_pending()
            if stop.kind == TIMEOUT:
                self.port.kill()
                break
            if not self.port.live_pids():
                break
            if stop.kind == FATAL and self.port.keep_fatal_stopped:
                break                   # left stopped there, to be looked at
            if stop.kind == OURS:
                self.yielder.service()
            elif stop.kind in (USER, INTERRUPT):
                return None
            elif stop.kind == OTHER:      # (EXITED with processes left: just go on)
                unexplained += 1
                if unexplained > _UNEXPLAINED_STOPS:
                    raise TracerError("the program keeps stopping for no reason the debugger "
                                      "gives; stopped here")
            stop = self._resume()
        if self.run is not None and not self.run.finished:
            self._finish(frontend.stop("kill", self.run.pid), live=False)
        return self.run
