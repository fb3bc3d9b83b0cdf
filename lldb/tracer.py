"""Tracer for lldb-16: a flight recorder for the IPC of a program and its threads.

    (lldb) command script import /path/to/tracer/lldb/tracer.py
    (lldb) help tracer

Batch (CI), the exit status tells failure from success:

    lldb-16 -b -o 'command script import lldb/tracer.py' -o 'tracer run' -- ./prog ARGS

This file is the lldb adapter only: commands, breakpoints, stops, threads, registers.
Decoding, recording and reports live in the core (tracerlib/_core, from csrc/) and in
tracerlib/ (run.py, frontend.py, settings.py, show.py), shared with the gdb front end.
Differences from gdb, and why: docs/lldb.md.
"""
import ctypes
import os
import shlex
import signal
import sys
import threading
import time

import lldb

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

try:
    from tracerlib import _core
except ImportError as _e:
    raise ImportError(f"tracer: the core is not built ({_e}); run `make` in {_ROOT}") from None
from tracerlib import export, frontend, settings, yields
from tracerlib.glibc_threads import ThreadPointers
from tracerlib.run import Run, TracerError, is_fatal, signal_name

CATALOGUE = _core.catalogue()
TRACED_CALLS = [i for i, c in enumerate(CATALOGUE) if c["class"] in ("send", "recv")]
BP_NAME = "tracer"            # every tracer breakpoint carries it: hidden from `breakpoint
                              # list`, safe from `breakpoint delete` and `breakpoint disable`
CHILDREN_NOTE = "forked children not traced"
_REGISTER = lldb.eValueTypeRegister
_LLDB_REGISTER = {"eflags": "rflags"}     # tracerlib names -> lldb's
_MINUS_ONE_32 = 0xFFFFFFFF

TRACER = globals().get("TRACER")   # the one Tracer of this lldb session (kept when
                                    # the script is imported again)


def _version():
    words = lldb.SBDebugger.GetVersionString().split()
    number = words[2] if len(words) > 2 and words[1] == "version" else "?"
    return f"lldb {number}"


def _reg(frame, name):
    return frame.FindValue(name, _REGISTER).GetValueAsUnsigned()


def _exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _ids(thread):
    return thread.GetProcess().GetProcessID(), thread.GetThreadID()


# ---- breakpoint callbacks: lldb calls these by name on its private state thread -------
def _entry_callback(frame, bp_loc, extra_args, internal_dict):
    return TRACER.on_entry(frame, bp_loc)


def _return_callback(frame, bp_loc, extra_args, internal_dict):
    return TRACER.on_return(frame)


def _exit_callback(frame, bp_loc, extra_args, internal_dict):
    return TRACER.on_exit_call(frame)


def _yield_callback(frame, bp_loc, extra_args, internal_dict):
    return TRACER.on_yield_site(frame, bp_loc)


class FatalStopHook:
    """`target stop-hook`: a fatal signal at a stop you drove yourself (`continue`, `run`)
    writes the report while the process is still there to be looked at."""

    def __init__(self, target, extra_args, internal_dict):
        self.target = target

    def handle_stop(self, exe_ctx, stream):
        if TRACER is not None:
            line = TRACER.on_public_stop(exe_ctx.GetProcess())
            if line:
                stream.Print(line + "\n")
        return True


class _InterruptCatcher:
    """Ctrl-C (SIGINT) while `tracer run` blocks lldb's main thread: Python's handler with
    a wakeup pipe notes it, and lldb's own handler is put back afterwards."""

    def __init__(self):
        self.pipe = None
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.saved = ctypes.create_string_buffer(256)     # a struct sigaction, opaque
        if self.libc.sigaction(signal.SIGINT, None, self.saved) != 0:
            return
        try:
            self.pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            signal.signal(signal.SIGINT, lambda signum, frame: None)
            signal.set_wakeup_fd(self.pipe[1], warn_on_full_buffer=False)
        except (OSError, ValueError):                     # not Python's main thread
            self.release()

    def caught(self):
        if self.pipe is None:
            return False
        try:
            return bool(os.read(self.pipe[0], 64))
        except BlockingIOError:
            return False

    def release(self):
        if self.pipe is None:
            return
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:
            pass
        self.libc.sigaction(signal.SIGINT, self.saved, None)
        for fd in self.pipe:
            os.close(fd)
        self.pipe = None


class Tracer:
    """The lldb adapter's state: one per lldb session."""

    def __init__(self, debugger):
        self.debugger = debugger
        self.values = settings.Values()
        self.version = _version()
        self.run = None
        self.armed = False
        self.target = None
        self.entry_calls = {}         # breakpoint id -> catalogue call
        self.entry_bps = {}           # call -> SBBreakpoint
        self.return_bps = {}          # (module path, file address) -> SBBreakpoint
        self.return_pcs = set()       # return pcs of this process with a breakpoint
        self.exit_bp = None           # on _exit: the exit status before the process is gone
        self.stop_hook = None         # id of our `target stop-hook`
        self.exit_calls = {}          # pid -> status passed to _exit
        self.thread_pointers = {}     # pid -> ThreadPointers
        self.errno_fn = {}            # pid -> address of __errno_location
        self.in_run_command = False
        self.timed_out = False
        self.interrupted = False      # Ctrl-C while `tracer run` waited
        self.continuing = False       # `tracer run` is inside SBProcess.Continue()
        self.timer = None
        self.disarming = False
        self.hot_path_error = None
        self.policy = None            # _core.YieldPolicy while yields are on
        self.yield_opts = None
        self.yield_bps = {}           # breakpoint id -> call site (from the DWARF index)
        self.yield_saved = {}         # tid -> registers saved before an inserted call
        self.yield_targets = {}       # "usleep" / "sched_yield" -> address in this process
        self.threads_seen = set()     # (pid, tid) announced to the yield policy

    # ---- the hot path: lldb's private state thread; must never raise ----
    def on_entry(self, frame, bp_loc):
        try:
            call = self.entry_calls.get(bp_loc.GetBreakpoint().GetID())
            if call is None or self.disarming:
                return False
            pid, tid = _ids(frame.GetThread())
            run = self._run_for(pid)
            regs = (_reg(frame, "rdi"), _reg(frame, "rsi"), _reg(frame, "rdx"), 0, 0, 0,
                    frame.GetSP(), 0, frame.GetPC(), 0)
            action, return_pc = run.session.entry(call, pid, tid, regs=regs)
            if action == _core.CATCH_RETURN:
                self._catch_return(return_pc)
            elif action == _core.DISARM:
                self._disarm_soon()
        except Exception as e:          # noqa: BLE001 - a raising callback stops the program
            self._hot_path_failed(e)
        return False

    def on_return(self, frame):
        try:
            run = self.run
            if run is None or self.disarming:
                return False
            pid, tid = _ids(frame.GetThread())
            rax = _reg(frame, "rax")
            fs_base = 0
            if rax & _MINUS_ONE_32 == _MINUS_ONE_32:     # maybe -1: errno will be wanted
                fs_base = self._fs_base(pid, tid) or 0
            session = run.session
            action = session.ret(pid, tid, regs=(0, 0, 0, 0, 0, 0, frame.GetSP(), rax,
                                                 frame.GetPC(), fs_base))
            if action == _core.NEED_ERRNO:
                location = self._errno_location(pid) if fs_base else None
                action = (session.errno(tid, location=location) if location
                          else session.errno(tid))
            if action == _core.DISARM:
                self._disarm_soon()
        except Exception as e:          # noqa: BLE001
            self._hot_path_failed(e)
        return False

    def on_exit_call(self, frame):
        """_exit(status): remember the status. lldb reports a process killed by signal N
        exactly like one that exited with status N; this stop tells them apart."""
        try:
            pid, _ = _ids(frame.GetThread())
            status = _reg(frame, "rdi") & 0xFF
            self.exit_calls[pid] = status
            run = self.run
            if not self.in_run_command and run is not None and run.pid == pid and \
                    not run.finished:
                # You drive the program (`continue`): this is its end, report it now.
                run.record_exit(pid, status=status)
                line = self._finish(frontend.stop("exit", pid, status=status), live=False)
                if line:
                    print(line)
        except Exception as e:          # noqa: BLE001
            self._hot_path_failed(e)
        return False

    def on_yield_site(self, frame, bp_loc):
        """A thread is at an instrumented call. Inserting the call is done right here, in
        the callback: save the registers, make the thread call usleep()/sched_yield() with
        the site as return address, let it go; when it comes back to the site (this same
        breakpoint), restore the registers and let the real call run."""
        try:
            pid, tid = _ids(frame.GetThread())
            saved = self.yield_saved.pop(tid, None)
            if saved is not None:
                self._write_registers(frame, saved)
                return False
            site = self.yield_bps.get(bp_loc.GetBreakpoint().GetID())
            if self.policy is None or site is None:
                return False
            self._announce_threads(pid, tid)
            us = self.policy.decide(pid, tid, yields.site_key(site))
            if us is None:
                return False
            target = self._yield_target("usleep" if us else "sched_yield")
            if target is None:
                return False
            regs = {name: _reg(frame, _LLDB_REGISTER.get(name, name))
                    for name in yields.SAVED_REGISTERS}
            writes, (address, data) = yields.insertion(regs, regs["rip"], target, us)
            error = lldb.SBError()
            frame.GetThread().GetProcess().WriteMemory(address, data, error)
            if error.Success():
                self._write_registers(frame, writes)
                self.yield_saved[tid] = regs
        except Exception as e:          # noqa: BLE001
            self._hot_path_failed(e)
        return False

    @staticmethod
    def _write_registers(frame, values):
        error = lldb.SBError()
        for name, value in values.items():
            if not frame.FindValue(_LLDB_REGISTER.get(name, name), _REGISTER) \
                    .SetValueFromCString(f"{value:#x}", error):
                raise RuntimeError(f"cannot write register {name}: {error.GetCString()}")

    def _announce_threads(self, pid, tid):
        """The policy keys decisions on thread ordinals: announce the process's threads in
        creation order (ascending tids) when one not seen yet reaches a site."""
        if (pid, tid) in self.threads_seen:
            return
        try:
            tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        except OSError:
            tids = [tid]
        for t in tids if tid in tids else tids + [tid]:
            if (pid, t) not in self.threads_seen:
                self.threads_seen.add((pid, t))
                self.policy.thread_seen(pid, t)

    def _yield_target(self, name):
        if name not in self.yield_targets:
            self.yield_targets[name] = self._symbol(name)
        return self.yield_targets[name]

    def _hot_path_failed(self, error):
        if self.hot_path_error is None:     # say it once, not once per stop
            self.hot_path_error = f"{type(error).__name__}: {error}"
            print(f"tracer: internal error while recording ({self.hot_path_error}); "
                  "events may be missing", file=sys.stderr)

    def _run_for(self, pid):
        run = self.run
        if run is not None and run.pid and run.pid != pid:
            # A new process while armed (a second `run`): the previous run is over.
            if not run.finished:
                self._finish(frontend.stop("kill", run.pid), live=False, quiet=True)
            self._forget_process()
            self._yields_new_process()
            run = None
        if run is None or (run.finished and run.pid != pid):
            run = self._new_run(pid)
        run.saw_process(pid)
        return run

    def _catch_return(self, pc):
        """One breakpoint per call site, kept for the session. It is placed at an address
        relative to its module's section, so lldb moves it with the module when a new
        process loads it elsewhere, and drops it when the module goes (exec)."""
        if pc in self.return_pcs:
            return
        address = self.target.ResolveLoadAddress(pc)
        module = address.GetModule()
        key = (module.GetFileSpec().fullpath if module.IsValid() else None,
               address.GetFileAddress() if module.IsValid() else pc)
        if key not in self.return_bps:
            bp = (self.target.BreakpointCreateBySBAddress(address) if module.IsValid()
                  else self.target.BreakpointCreateByAddress(pc))
            bp.AddName(BP_NAME)
            bp.SetScriptCallbackFunction(f"{__name__}._return_callback")
            self.return_bps[key] = bp
        self.return_pcs.add(pc)
        self.run.sites.setdefault(pc, self._describe_pc(pc))

    def _describe_pc(self, pc):
        """function, file, line of a call site; pc is its return address, so look at pc-1."""
        frame = {"function": None, "file": None, "line": None}
        address = self.target.ResolveLoadAddress(pc - 1)
        sc = address.GetSymbolContext(lldb.eSymbolContextEverything)
        line = sc.GetLineEntry()
        if line.IsValid() and line.GetFileSpec().IsValid():
            frame["file"] = line.GetFileSpec().fullpath
            frame["line"] = line.GetLine() or None
        block = sc.GetBlock().GetContainingInlinedBlock() if sc.GetBlock().IsValid() else None
        if block is not None and block.IsValid() and block.GetInlinedName():
            frame["function"] = block.GetInlinedName()
        elif sc.GetFunction().IsValid():
            frame["function"] = sc.GetFunction().GetName()
        elif sc.GetSymbol().IsValid():
            frame["function"] = sc.GetSymbol().GetName()
        return frame

    def _symbol(self, name):
        """Runtime address of a symbol, preferring libc's; None when not loaded."""
        found = []
        for ctx in self.target.FindSymbols(name):
            address = ctx.GetSymbol().GetStartAddress().GetLoadAddress(self.target)
            if address != lldb.LLDB_INVALID_ADDRESS:
                module = ctx.GetModule().GetFileSpec().GetFilename() or ""
                found.append((not module.startswith("libc."), address))
        return min(found)[1] if found else None

    def _errno_location(self, pid):
        if pid not in self.errno_fn:
            self.errno_fn[pid] = self._symbol("__errno_location")
        return self.errno_fn[pid]

    def _fs_base(self, pid, tid):
        pointers = self.thread_pointers.get(pid)
        if pointers is None:
            pointers = self.thread_pointers[pid] = ThreadPointers(pid, self._symbol)
        return pointers.fs_base(tid)

    # ---- arming ----
    def _current_target(self):
        target = self.debugger.GetSelectedTarget()
        if not target.IsValid():
            raise TracerError("no program loaded: `lldb -- PROGRAM ARGS` or "
                              "`target create PROGRAM` first")
        return target

    def arm(self, target):
        self.target = target
        name = lldb.SBBreakpointName(target, BP_NAME)
        name.SetAllowList(False)
        name.SetAllowDelete(False)
        name.SetAllowDisable(False)
        empty = lldb.SBFileSpecList()
        for call in TRACED_CALLS:
            bp = target.BreakpointCreateByName(CATALOGUE[call]["name"],
                                               lldb.eFunctionNameTypeFull, empty, empty)
            bp.AddName(BP_NAME)
            bp.SetScriptCallbackFunction(f"{__name__}._entry_callback")
            self.entry_bps[call] = bp
            self.entry_calls[bp.GetID()] = call
        self.exit_bp = target.BreakpointCreateByName("_exit", lldb.eFunctionNameTypeFull,
                                                     empty, empty)
        self.exit_bp.AddName(BP_NAME)
        self.exit_bp.SetScriptCallbackFunction(f"{__name__}._exit_callback")
        out = lldb.SBCommandReturnObject()
        self.debugger.GetCommandInterpreter().HandleCommand(
            f"target stop-hook add -P {__name__}.FatalStopHook", out)
        words = (out.GetOutput() or "").split("#")
        self.stop_hook = words[1].split()[0].rstrip(".") if out.Succeeded() and \
            len(words) > 1 else None
        self.armed = True
        self.disarming = False

    def placed(self):
        return [CATALOGUE[c]["name"] for c, bp in self.entry_bps.items()
                if bp.IsValid() and bp.GetNumLocations()]

    def missing(self):
        """Catalogue functions with no location (yet: a library may still load)."""
        return [CATALOGUE[c]["name"] for c, bp in self.entry_bps.items()
                if bp.IsValid() and not bp.GetNumLocations()]

    def disarm(self):
        """Removes every tracer breakpoint and the stop hook; never the user's."""
        target = self.target
        if target is not None and target.IsValid():
            for bp in list(self.entry_bps.values()) + list(self.return_bps.values()) + \
                    [self.exit_bp]:
                if bp is not None and bp.IsValid():
                    target.BreakpointDelete(bp.GetID())
            if self.stop_hook:
                self.debugger.GetCommandInterpreter().HandleCommand(
                    f"target stop-hook delete {self.stop_hook}", lldb.SBCommandReturnObject())
        self.entry_bps.clear()
        self.entry_calls.clear()
        self.return_bps.clear()
        self.return_pcs.clear()
        self.exit_bp = None
        self.stop_hook = None
        self.armed = False

    def _disarm_soon(self):
        """Budget reached: every tracer breakpoint stops stopping now (disabled inside the
        callback), and is deleted at the next command or stop."""
        if self.disarming:
            return
        self.disarming = True
        for bp in list(self.entry_bps.values()) + list(self.return_bps.values()):
            if bp.IsValid():
                bp.SetEnabled(False)

    def _reap(self):
        """A safe point: finish a budget disarm (the exit breakpoint stays)."""
        if self.disarming and (self.entry_bps or self.return_bps):
            for bp in list(self.entry_bps.values()) + list(self.return_bps.values()):
                if bp.IsValid():
                    self.target.BreakpointDelete(bp.GetID())
            self.entry_bps.clear()
            self.entry_calls.clear()
            self.return_bps.clear()
            self.return_pcs.clear()

    def _forget_process(self):
        """A new process or process image: what was learnt of the old one's addresses."""
        self.return_pcs.clear()
        self.errno_fn.clear()
        self.thread_pointers.clear()
        self.yield_targets.clear()
        self.yield_saved.clear()

    # ---- runs and processes ----
    def _program(self):
        target = self.target or self._current_target()
        exe = target.GetExecutable()
        return exe.fullpath if exe.IsValid() else None

    def _new_run(self, pid=0, argv=None):
        program = self._program()
        if argv is None:
            argv = self._argv(pid)
        self.run = Run(self.values, program, argv, f"{self.version} ({CHILDREN_NOTE})")
        self.hot_path_error = None
        self.timed_out = False
        self.exit_calls.clear()
        if pid:
            self.run.saw_process(pid)
        return self.run

    def _argv(self, pid):
        if pid:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    words = f.read().split(b"\0")[:-1]
                return [w.decode(errors="replace") for w in words]
            except OSError:
                pass
        info = (self.target or self._current_target()).GetLaunchInfo()
        args = [info.GetArgumentAtIndex(i) for i in range(info.GetNumArguments())]
        return [self._program() or "?"] + args

    def _process(self):
        target = self.target or self.debugger.GetSelectedTarget()
        process = target.GetProcess() if target.IsValid() else lldb.SBProcess()
        return process

    @staticmethod
    def _alive(process):
        return process.IsValid() and process.GetState() in (
            lldb.eStateStopped, lldb.eStateRunning, lldb.eStateStepping,
            lldb.eStateSuspended, lldb.eStateCrashed)

    def _finish(self, stop, live=True, quiet=False, processes=None):
        """The program stopped for good: one report. Returns the outcome line."""
        run = self.run
        if run is None or run.finished:
            return None
        run.yield_info = frontend.yield_info(self.policy, len(self.yield_bps))
        if processes is None:
            processes = self._snapshot_processes() if live else []
        try:
            run.finish(stop, processes)
        except TracerError as e:
            print(f"tracer: {e}", file=sys.stderr)
        return None if quiet else run.outcome()

    def _snapshot_processes(self):
        """The live traced process: its threads with bounded backtraces."""
        process = self._process()
        if not self._alive(process):
            return []
        limit = self.values.backtrace
        threads = []
        for thread in process:
            frames = []
            for frame in thread:
                if len(frames) >= limit:
                    break
                line = frame.GetLineEntry()
                spec = line.GetFileSpec() if line.IsValid() else None
                frames.append({"pc": frame.GetPC(),
                               "function": frame.GetFunctionName() or None,
                               "file": spec.fullpath if spec and spec.IsValid() else None,
                               "line": (line.GetLine() or None) if spec else None})
            threads.append({"tid": thread.GetThreadID(), "name": thread.GetName(),
                            "backtrace": frames})
        return [{"pid": process.GetProcessID(), "threads": threads}]

    def _classify(self, process):
        """What a public stop means: ("fatal", tid, SIG), ("user",), ("interrupt",),
        ("exec",), ("signal", tid, SIG) for one the program survives, or ("other",)."""
        signals = process.GetUnixSignals()
        pid = process.GetProcessID()
        found = []
        for thread in process:
            reason = thread.GetStopReason()
            if reason == lldb.eStopReasonSignal:
                name = signals.GetSignalAsCString(thread.GetStopReasonDataAtIndex(0)) or "?"
                if name in ("SIGSTOP", "SIGINT"):
                    found.append((2, "interrupt"))
                elif is_fatal(name, pid):
                    found.append((0, "fatal", thread.GetThreadID(), name))
                else:
                    found.append((4, "signal", thread.GetThreadID(), name))
            elif reason == lldb.eStopReasonBreakpoint:
                ids = [thread.GetStopReasonDataAtIndex(i)
                       for i in range(0, thread.GetStopReasonDataCount(), 2)]
                if any(not self._ours(i) for i in ids):
                    found.append((1, "user"))
            elif reason == lldb.eStopReasonExec:
                found.append((3, "exec"))
            elif reason in (lldb.eStopReasonWatchpoint, lldb.eStopReasonException):
                found.append((1, "user"))
            # eStopReasonTrace / PlanComplete while `tracer run` drives the process are lldb
            # finishing its own step over a breakpoint (seen leaking as a public stop, with
            # no step of the user's in flight): not a reason to hand control back.
        if not found:
            return ("other",)
        return min(found)[1:]

    def _ours(self, bp_id):
        bp = self.target.FindBreakpointByID(bp_id)
        return bp.IsValid() and bp.MatchesName(BP_NAME)

    def _record_exit(self, process):
        """The traced process is gone: its exit status, or the signal that killed it."""
        run = self.run
        pid = run.pid or process.GetProcessID()
        status = process.GetExitStatus()
        if run.fatal and run.fatal[0] == pid:
            run.record_exit(pid, signame=run.fatal[2])
            return frontend.stop("signal", pid, signal=run.fatal[2])
        said = self.exit_calls.get(pid)
        if said is None and self.exit_bp is not None and 0 < status < 65:
            name = signal_name(status)            # never reached _exit: killed by a signal
            run.record_fatal(pid, pid, name)
            run.record_exit(pid, signame=name)
            return frontend.stop("signal", pid, signal=name)
        run.record_exit(pid, status=status)
        return frontend.stop("exit", pid, status=status)

    def on_public_stop(self, process):
        """The stop hook: a fatal signal outside `tracer run` ends the run now."""
        try:
            if self.in_run_command or self.run is None or self.run.finished:
                return None
            self._reap()
            kind = self._classify(process)
            if kind[0] != "fatal":
                return None
            _, tid, name = kind
            pid = process.GetProcessID()
            self.run.record_fatal(pid, tid, name)
            return self._finish(frontend.stop("signal", pid, tid, signal=name))
        except Exception as e:          # noqa: BLE001
            self._hot_path_failed(e)
            return None

    def _catch_up(self):
        """Before a command: a run whose process ended unseen (killed, or exited while you
        drove it) gets its report now."""
        self._reap()
        run = self.run
        if run is None or run.finished or not run.pid:
            return
        process = self._process()
        if process.IsValid() and process.GetProcessID() == run.pid and self._alive(process):
            return
        same = process.IsValid() and process.GetProcessID() == run.pid
        if same and process.GetState() == lldb.eStateExited:
            line = self._finish(self._record_exit(process), live=False)
        elif same and process.GetState() == lldb.eStateDetached:
            # lldb has no detach hook: the run ends here, with what can still be read of
            # the process from outside (its mailboxes; threads need the debugger).
            line = self._finish(frontend.stop("detach", run.pid), live=False,
                                processes=[{"pid": run.pid, "threads": []}]
                                if _exists(run.pid) else [])
        else:
            line = self._finish(frontend.stop("kill", run.pid), live=False)
        if line:
            print(line)

    # ---- tracer run ----
    def run_to_end(self, args):
        run = self._run_once(args)
        if run is None:             # stopped at your own breakpoint, or interrupted
            process = self._process()
            text = lldb.SBStream()
            process.GetSelectedThread().GetStatus(text)
            return f"Process {process.GetProcessID()} stopped\n{text.GetData().rstrip()}"
        if run.failed:
            raise TracerError(run.outcome().removeprefix("tracer: "))
        return run.outcome()

    def _run_once(self, args):
        target = self._current_target()
        self._catch_up()
        process = target.GetProcess()
        live = self._alive(process)
        if self.armed and self.target is not None and self.target != target:
            self.disarm()
        if self.armed and self.disarming and not live:
            self.disarm()               # the last run spent its budget: a fresh one
        if not self.armed:
            self.arm(target)
        was_async = self.debugger.GetAsync()
        self.debugger.SetAsync(False)
        self.in_run_command = True
        self.interrupted = False
        quiet = self._quiet_breakpoint_events(target, True)
        try:
            if live:
                if self.run is None or self.run.finished or \
                        self.run.pid != process.GetProcessID():
                    self._new_run(process.GetProcessID())
                self._start_timer(process)
                self._resume(process)
            else:
                process = self._launch(target, args)
            return self._drive(process)
        finally:
            self._stop_timer()
            self.in_run_command = False
            self.debugger.SetAsync(was_async)
            if quiet:
                self._quiet_breakpoint_events(target, False)

    def _quiet_breakpoint_events(self, target, quiet):
        """lldb prints "1 location added to breakpoint N" for each of ours as libraries
        load; while `tracer run` drives, the debugger does not listen for those."""
        listener = self.debugger.GetListener()
        bit = lldb.SBTarget.eBroadcastBitBreakpointChanged
        if quiet:
            return listener.StopListeningForEvents(target.GetBroadcaster(), bit)
        return listener.StartListeningForEvents(target.GetBroadcaster(), bit)

    def _yields_new_process(self):
        """A new process: the yield decisions start again from the seed."""
        self.threads_seen.clear()
        self.yield_saved.clear()
        if self.policy is not None:
            self.policy.reseed(self.yield_opts.seed)

    def _launch(self, target, args):
        self._forget_process()
        self._yields_new_process()
        info = target.GetLaunchInfo()
        if args.strip():
            info.SetArguments(shlex.split(args), False)
        info.SetEnvironment(target.GetEnvironment(), False)
        argv = [self._program() or "?"] + [info.GetArgumentAtIndex(i)
                                            for i in range(info.GetNumArguments())]
        self._new_run(0, argv)
        # Stop at the entry so the timeout is armed before any of the program's code runs.
        info.SetLaunchFlags(info.GetLaunchFlags() | lldb.eLaunchFlagStopAtEntry)
        error = lldb.SBError()
        process = target.Launch(info, error)
        if not error.Success() or not process.IsValid():
            raise TracerError(f"cannot start {self._program()}: {error.GetCString()}")
        self.run.saw_process(process.GetProcessID())
        self._start_timer(process)
        self._resume(process)
        return process

    def _resume(self, process):
        self._reap()
        self.continuing = True
        try:
            error = process.Continue()
        finally:
            self.continuing = False
        if not error.Success() and self._alive(process) and \
                process.GetState() != lldb.eStateStopped:
            raise TracerError(f"cannot continue the program: {error.GetCString()}")

    def _drive(self, process):
        """Continues through stops that are not the end, until the program ends."""
        others = 0
        while True:
            state = process.GetState()
            if state in (lldb.eStateExited, lldb.eStateDetached) or not process.IsValid():
                if not self.run.finished:
                    self._finish(self._record_exit(process), live=False, quiet=True)
                return self.run
            if self.timed_out:
                pid = process.GetProcessID()
                self._finish(frontend.stop("timeout", pid, self._selected_tid(process)),
                             quiet=True)
                process.Kill()
                self.run.record_exit(pid, signame="SIGKILL")
                return self.run
            kind = self._classify(process)
            if kind[0] == "fatal":
                _, tid, name = kind
                pid = process.GetProcessID()
                self.run.record_fatal(pid, tid, name)
                self._finish(frontend.stop("signal", pid, tid, signal=name), quiet=True)
                return self.run         # left stopped there, to be looked at
            if kind[0] in ("user", "interrupt") or self.interrupted:
                return None
            if kind[0] == "exec":
                self._forget_process()
                self.run.session.forget(process.GetProcessID())
            if kind[0] == "other":
                others += 1
                if others > 1000:
                    raise TracerError("the program keeps stopping for no reason lldb "
                                      "gives; stopped here")
            self._resume(process)

    @staticmethod
    def _selected_tid(process):
        thread = process.GetSelectedThread()
        return thread.GetThreadID() if thread.IsValid() else process.GetProcessID()

    def _start_timer(self, process):
        """While `tracer run` waits for the program: interrupt it when `tracer set timeout`
        runs out, or on Ctrl-C. (lldb cannot interrupt a process that a command continues
        synchronously: its Ctrl-C goes to an input handler that only runs between commands.)"""
        if self.timer is not None:
            return
        done = threading.Event()
        deadline = time.monotonic() + self.values.timeout if self.values.timeout else None
        interpreter = self.debugger.GetCommandInterpreter()
        catcher = _InterruptCatcher()

        def watch():
            sent = 0.0
            while not done.wait(0.05):
                if deadline is not None and time.monotonic() >= deadline:
                    self.timed_out = True
                elif catcher.caught() or interpreter.WasInterrupted():
                    self.interrupted = True
                if not (self.timed_out or self.interrupted):
                    continue
                # An interrupt that lands while lldb auto-continues from one of our
                # breakpoints can be swallowed: ask again while the program has not stopped.
                # (Not process.GetState(): it waits for the lock Continue() holds.)
                now = time.monotonic()
                if now - sent > 0.5 and self.continuing:
                    process.SendAsyncInterrupt()
                    sent = now

        self.timer = (threading.Thread(target=watch, name="tracer-watch", daemon=True), done,
                      catcher)
        self.timer[0].start()

    def _stop_timer(self):
        if self.timer is not None:
            thread, done, catcher = self.timer
            done.set()
            thread.join()
            catcher.release()
            self.timer = None

    # ---- the other commands ----
    def start(self, arg):
        if self.armed:
            raise TracerError("already tracing; `tracer stop` first")
        target = self._current_target()
        self._catch_up()
        self.arm(target)
        process = target.GetProcess()
        if self._alive(process):
            self._run_for(process.GetProcessID())
            return "tracer: armed"
        return "tracer: armed; `run` (or `tracer run`) starts the program"

    def stop(self, arg):
        if not self.armed and self.policy is None:
            raise TracerError("not tracing; `tracer start` arms it")
        self._catch_up()
        self.yield_off(quiet=True)
        if self.armed:
            self.disarm()
        return "tracer: disarmed"

    def attach(self, arg):
        pid = frontend.attach_pid(arg, "lldb")
        process = self._process()
        if self._alive(process):
            if process.GetProcessID() == pid:
                raise TracerError(f"process {pid} is already traced")
            raise TracerError(f"already debugging process {process.GetProcessID()}; "
                              "`process detach` or `process kill` it first "
                              "(lldb traces one process at a time)")
        target = self.debugger.GetSelectedTarget()
        if not target.IsValid():
            error = lldb.SBError()
            target = self.debugger.CreateTarget("", "", "", False, error)
            if not target.IsValid():
                raise TracerError(f"cannot create a target: {error.GetCString()}")
        was_async = self.debugger.GetAsync()
        self.debugger.SetAsync(False)
        try:
            error = lldb.SBError()
            process = target.AttachToProcessWithID(lldb.SBListener(), pid, error)
        finally:
            self.debugger.SetAsync(was_async)
        if not error.Success() or not process.IsValid():
            raise TracerError(f"cannot attach to {pid}: {error.GetCString()} (is ptrace "
                              "allowed? see /proc/sys/kernel/yama/ptrace_scope)")
        if self.armed and self.target != target:
            self.disarm()
        if not self.armed:
            self.arm(target)
        self._new_run(pid)
        return (f"tracer: attached to {pid} and tracing; `continue` or `tracer run` "
                "to let it go")

    def status(self, arg):
        self._catch_up()
        notes = [f"lldb limitation: {CHILDREN_NOTE} (lldb follows one process: "
                 "see docs/lldb.md)"]
        return frontend.status_text(self.armed, self.run, self.placed(),
                                    len(self.return_bps), self.missing(),
                                    disarming=self.disarming,
                                    hot_path_error=self.hot_path_error, notes=notes)

    def show(self, arg):
        self._catch_up()
        return frontend.show_text(arg, self.run)

    def live_report(self):
        self._catch_up()
        if self.run is None:
            raise TracerError("nothing traced yet: `tracer run` first, or --from REPORT")
        return self.run.report_dict()

    def snapshot(self, arg):
        self._catch_up()
        run = self.run
        process = self._process()
        pid = run.pid if run is not None else 0
        tid = self._selected_tid(process) if self._alive(process) else pid
        if run is not None and not run.finished:
            run.yield_info = frontend.yield_info(self.policy, len(self.yield_bps))
        path = frontend.snapshot(run, frontend.stop("snapshot", pid, tid),
                                 self._snapshot_processes, arg or None)
        return f"tracer: report: {path}"

    def sites(self, arg):
        opts = yields.parse_sites_args(arg)
        program = self._program()
        if not program:
            raise TracerError("no program loaded: `target create PROGRAM` first")
        return yields.sites_table(yields.SiteIndex.of(program).select(opts))

    def yield_on(self, arg):
        target = self._current_target()
        program = self._program()
        if not program:
            raise TracerError("no program loaded: `target create PROGRAM` first")
        opts, policy, sites = yields.plan(program, arg)
        self.yield_off(quiet=True)
        module = target.FindModule(target.GetExecutable())
        name = lldb.SBBreakpointName(target, BP_NAME)
        name.SetAllowList(False)
        name.SetAllowDelete(False)
        name.SetAllowDisable(False)
        empty = lldb.SBFileSpecList()
        for site in sites:
            if site.get("entry"):           # no DWARF: at the called function's entry
                bp = target.BreakpointCreateByName(site["callee"], lldb.eFunctionNameTypeFull,
                                                   empty, empty)
            else:       # a module-relative address: it follows the program wherever loaded
                bp = target.BreakpointCreateBySBAddress(
                    module.ResolveFileAddress(site["call_pc"]))
            bp.AddName(BP_NAME)
            bp.SetScriptCallbackFunction(f"{__name__}._yield_callback")
            self.yield_bps[bp.GetID()] = site
        self.policy, self.yield_opts = policy, opts
        self.threads_seen.clear()
        where = ("functions (no DWARF: at their entry)" if sites[0].get("entry")
                 else "call sites")
        return (f"tracer: yields on at {len(sites)} {where}, probability "
                f"{opts.probability}, strategy {policy.info['strategy']}, seed {opts.seed}")

    def yield_off(self, arg="", quiet=False):
        if self.policy is None and not quiet:
            raise TracerError("yields are not on")
        target = self.target or self.debugger.GetSelectedTarget()
        for bp_id in self.yield_bps:
            if target.IsValid():
                target.BreakpointDelete(bp_id)
        self.yield_bps = {}
        self.policy = None
        self.yield_saved.clear()
        return None if quiet else "tracer: yields off, no site left instrumented"

    def yield_status(self, arg):
        return frontend.yield_status_text(self.policy, len(self.yield_bps))

    def hunt(self, arg):
        opts = yields.parse_hunt_args(arg)
        if self.policy is None:
            print(self.yield_on(f"--seed {opts.seed}" if opts.seed is not None else ""))
        first = opts.seed if opts.seed is not None else self.yield_opts.seed

        def run_once(seed):
            self.yield_opts.seed = seed
            return self._run_once("")

        return frontend.hunt(opts, first, self.values, run_once, self._replay_command,
                             lambda line: print(line, flush=True))

    def _replay_command(self, seed):
        """A shell command that reruns `seed` with the same sites, policy and limits."""
        argv = self.run.argv if self.run is not None else [self._program()]
        cmd = ["lldb-16", "-b", "-o",
               "command script import " + os.path.join(_ROOT, "lldb", "tracer.py")]
        cmd += [w for line in frontend.changed_limits(self.values)
                for w in ("-o", f"tracer set {line}")]
        cmd += ["-o", "tracer yield on " + frontend.yield_on_args(
            self.yield_opts, self.policy.info["strategy"], seed), "-o", "tracer run", "--",
            self._program() or argv[0], *argv[1:]]
        return " ".join(shlex.quote(w) for w in cmd)

    def set_value(self, arg):
        words = arg.split(None, 1)
        if len(words) != 2:
            raise TracerError("tracer set NAME VALUE; `tracer settings` lists them")
        value = self.values.set(words[0], words[1])
        return f"tracer {words[0]} is {value}"

    def settings_text(self, arg):
        lines = []
        for s in settings.SETTINGS:
            lines.append(f"tracer {s.name} = {getattr(self.values, s.name)}  ({s.doc})")
        return "\n".join(lines)


# ---- commands ----------------------------------------------------------------------------
_WORDS = {"batch": "In `lldb -b` a failing command ends the batch with exit status 1: put\n"
                   "`tracer run` last (commands after a failure do not run).",
          "resume": "continue"}


def _command_class(name, action, summary, long_help):
    """An lldb command class: TracerError and SettingError become one-line command errors."""

    class Command:
        def __init__(self, debugger, internal_dict):
            pass

        def get_short_help(self):
            return summary

        def get_long_help(self):
            return long_help

        def __call__(self, debugger, command, exe_ctx, result):
            try:
                out = action(command.strip())
            except (TracerError, settings.SettingError) as e:
                result.SetError(f"tracer: {e}")
                return
            except Exception as e:      # noqa: BLE001 - an lldb command must not raise
                result.SetError(f"tracer: internal error: {type(e).__name__}: {e}")
                return
            if out:
                result.AppendMessage(out)

    Command.__name__ = Command.__qualname__ = "Tracer_" + name.replace(" ", "_")
    return Command


def _register(debugger):
    interp = debugger.GetCommandInterpreter()
    out = lldb.SBCommandReturnObject()
    overview = frontend.overview(
        ", its threads (not its forked children: lldb follows one process)")
    table = frontend.command_table([("tracer set NAME VALUE", "Change a setting (validated)."),
                                    ("tracer settings", "The settings in force.")])
    long_help = ("tracer <subcommand> ...\n\n" + overview.split("\n", 2)[2] + "\n\n" + table
                 + "\n\nSettings: " + ", ".join(s.name for s in settings.SETTINGS)
                 + ". Differences from gdb: docs/lldb.md.")
    interp.HandleCommand(f"command container add -h {shlex.quote(overview.splitlines()[0])} "
                         f"-H {shlex.quote(long_help)} tracer", out)
    interp.HandleCommand("command container add -h 'Yield injection: make the program "
                         "yield or sleep before interesting calls.' tracer yield", out)
    actions = {"run": TRACER.run_to_end, "start": TRACER.start, "stop": TRACER.stop,
               "attach": TRACER.attach, "status": TRACER.status, "show": TRACER.show,
               "snapshot": TRACER.snapshot, "sites": TRACER.sites,
               "export": lambda a: export.export(a, TRACER.live_report),
               "yield on": TRACER.yield_on, "yield off": TRACER.yield_off,
               "yield status": TRACER.yield_status, "hunt": TRACER.hunt}
    table = [(name,) + frontend.command_help(name, **_WORDS)[1:] for name in actions]
    table.append(("set", "Change a setting: tracer set NAME VALUE.",
                  "Change a setting: tracer set NAME VALUE.\n\n" + "\n".join(
                      f"  {s.name:10s} {s.doc} (default {s.default})"
                      for s in settings.SETTINGS)))
    table.append(("settings", "The settings in force.", "The settings in force."))
    actions["set"] = TRACER.set_value
    actions["settings"] = TRACER.settings_text
    for name, summary, text in table:
        cls = _command_class(name, actions[name], summary, text)
        globals()[cls.__name__] = cls
        interp.HandleCommand(f"command script add -o -c {__name__}.{cls.__name__} "
                             f"tracer {name}", out)


def __lldb_init_module(debugger, internal_dict):
    global TRACER
    if TRACER is None or TRACER.debugger.GetID() != debugger.GetID():
        TRACER = Tracer(debugger)
    _register(debugger)
