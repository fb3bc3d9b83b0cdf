"""Tracer for lldb-16: `command script import lldb/tracer.py`, then `help tracer` (in CI:
`lldb-16 -b -o 'command script import lldb/tracer.py' -o 'tracer run' -- ./prog ARGS`). The
lldb port (tracerlib/port.py) only: every decision is the driver's. See docs/lldb.md.
"""
import os
import re
import shlex
import sys

import lldb

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

try:
    from tracerlib.driver import Driver
except ImportError as _e:
    raise ImportError(f"tracer: the core is not built ({_e}); run `make` in {_ROOT}") from None
from tracerlib import frontend
from tracerlib.interrupts import Watch
from tracerlib.port import (EXEC, EXITED, INTERRUPT, TIMEOUT, USER, Context, Port, Stop,
                            most_important, signal_stop, vanished, wait_for)
from tracerlib.run import TracerError

BP_NAME = "tracer"    # on every tracer breakpoint: `breakpoint list/delete/disable` pass it by
_REGISTER = lldb.eValueTypeRegister
_LLDB_REGISTER = {"eflags": "rflags"}     # tracerlib names -> lldb's
_ARGS = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
_STOP_KINDS = {lldb.eStopReasonExec: EXEC, lldb.eStopReasonWatchpoint: USER,
               lldb.eStopReasonException: USER}
_ALIVE = (lldb.eStateStopped, lldb.eStateRunning, lldb.eStateStepping, lldb.eStateSuspended,
          lldb.eStateCrashed)

PORT = globals().get("PORT")   # the one port of this lldb session (kept on re-import)


def _reg(frame, name):
    return frame.FindValue(_LLDB_REGISTER.get(name, name), _REGISTER).GetValueAsUnsigned()


def _run(debugger, command):
    out = lldb.SBCommandReturnObject()
    debugger.GetCommandInterpreter().HandleCommand(command, out)
    return out


def _alive(process):
    return process.IsValid() and process.GetState() in _ALIVE


def _callback(frame, bp_loc, extra_args, internal_dict):
    """Every tracer breakpoint: lldb calls it by name on its private state thread."""
    handler = PORT.handlers.get(bp_loc.GetBreakpoint().GetID())
    return bool(handler and handler(LldbContext(frame)))


class LldbContext(Context):
    def __init__(self, frame):
        self.frame, self.process = frame, frame.GetThread().GetProcess()
        self.pid, self.tid = self.process.GetProcessID(), frame.GetThread().GetThreadID()

    def regs(self, returning=False):
        frame = self.frame
        if not returning:
            return tuple(_reg(frame, r) for r in _ARGS) + (frame.GetSP(), 0, frame.GetPC(), 0)
        return (0,) * 6 + (frame.GetSP(), _reg(frame, "rax"), frame.GetPC(), None)

    def symbol(self, name):
        return PORT.symbol(name)

    def return_key(self, pc):
        module = (address := PORT.target.ResolveLoadAddress(pc)).GetModule()
        return (module.GetFileSpec().fullpath, address.GetFileAddress()) if module.IsValid() \
            else (None, pc)

    def read_registers(self, names):
        return {name: _reg(self.frame, name) for name in names}

    def write_registers(self, values):
        error = lldb.SBError()
        for name, value in values.items():
            if not self.frame.FindValue(_LLDB_REGISTER.get(name, name), _REGISTER) \
                    .SetValueFromCString(f"{value:#x}", error):
                raise RuntimeError(f"cannot write register {name}: {error.GetCString()}")

    def write_memory(self, address, data):
        error = lldb.SBError()
        if self.process.WriteMemory(address, data, error) != len(data):
            raise RuntimeError(f"cannot write memory: {error.GetCString()}")


class FatalStopHook:
    """`target stop-hook`: lldb's only look at a stop you drove yourself."""

    __init__ = lambda self, target, extra_args, internal_dict: None    # noqa: E731

    def handle_stop(self, exe_ctx, stream):
        PORT.driver.on_fatal_outside_run(PORT.classify(exe_ctx.GetProcess()))
        return True


class LldbPort(Port):
    follows_forks = False
    exit_hides_signal = True
    yields_in_callback = True     # evaluating inside a callback loses other threads' events;
    keep_fatal_stopped = True     # writing registers there does not (FIELD-NOTES)
    children_note = "forked children not traced (lldb follows one process: see docs/lldb.md)"
    load_hint = "`lldb -- PROGRAM ARGS` or `target create PROGRAM` first"
    help_words = {"batch": "In `lldb -b` a failing command ends the batch with exit status "
                           "1: put\n`tracer run` last (commands after a failure do not run).",
                  "resume": "continue"}
    batch = ("lldb-16", "-b", "-o", f"command script import {_ROOT}/lldb/tracer.py")
    batch_flag, batch_setting, batch_args = "-o", "tracer set {}", "--"

    def __init__(self, debugger):
        self.debugger = debugger
        words = lldb.SBDebugger.GetVersionString().split()
        self.name = f"lldb {words[2] if len(words) > 2 and words[1] == 'version' else '?'}"
        self.driver = Driver(self)
        self.target = self.stop_hook = self.launch_args = None
        self.handlers = {}            # breakpoint id -> handler(ctx)
        self.watch = self.was_async = None    # during `tracer run`: a Watch, lldb's async mode

    def _target(self, required=True):
        target = self.target if self.target is not None and self.target.IsValid() \
            else self.debugger.GetSelectedTarget()
        if required and not target.IsValid():
            raise TracerError("no program loaded: " + self.load_hint)
        return target

    def _process(self):
        return t.GetProcess() if (t := self._target(False)).IsValid() else lldb.SBProcess()

    def program(self):
        exe = self._target(required=False).GetExecutable()
        return exe.fullpath if exe.IsValid() else None

    def args(self):
        info = self._target().GetLaunchInfo()
        return self.launch_args if self.launch_args is not None else \
            [info.GetArgumentAtIndex(i) for i in range(info.GetNumArguments())]

    def live_pids(self):
        return [self._process().GetProcessID()] if _alive(self._process()) else []

    def processes(self, backtrace):
        process = self._process()
        return [{"pid": process.GetProcessID(), "threads": [
            {"tid": t.GetThreadID(), "name": t.GetName(),
             "backtrace": [self._frame(f) for f in list(t)[:backtrace]]}
            for t in process]}] if _alive(process) else []

    @staticmethod
    def _frame(frame):
        line = frame.GetLineEntry()
        spec = line.GetFileSpec() if line.IsValid() else None
        return frontend.frame(frame.GetPC(), frame.GetFunctionName(),
                              spec.fullpath if spec and spec.IsValid() else None,
                              line.GetLine() if spec else None)

    def selected_tid(self):
        return t.GetThreadID() if (t := self._process().GetSelectedThread()).IsValid() else 0

    def context(self):
        return LldbContext(self._process().GetSelectedThread().GetFrameAtIndex(0))

    def describe_pc(self, pc):
        sc = self.target.ResolveLoadAddress(pc).GetSymbolContext(lldb.eSymbolContextEverything)
        line, block = sc.GetLineEntry(), sc.GetBlock().GetContainingInlinedBlock()
        spec = line.GetFileSpec() if line.IsValid() else None
        names = [block.GetInlinedName() if block.IsValid() else None,
                 sc.GetFunction().GetName(), sc.GetSymbol().GetName()]
        function = next((n for n in names if n and not n.startswith("___lldb_unnamed")), None)
        if not (spec and spec.IsValid()):
            return function, None, None
        return function, spec.fullpath, line.GetLine()

    def symbol(self, name):
        """libc's when there are several (a program or library may define its own)."""
        found = [(not (c.GetModule().GetFileSpec().GetFilename() or "").startswith("libc."),
                  c.GetSymbol().GetStartAddress().GetLoadAddress(self.target))
                 for c in self.target.FindSymbols(name)]
        return min((f for f in found if f[1] != lldb.LLDB_INVALID_ADDRESS), default=(0, None))[1]

    def arm(self, mode="breakpoint"):
        target = self.debugger.GetSelectedTarget()
        if not target.IsValid():                  # `tracer attach` with no program loaded
            error = lldb.SBError()
            target = self.debugger.CreateTarget("", "", "", False, error)
            if not target.IsValid():
                raise TracerError(f"cannot create a target: {error.GetCString()}")
        self.target = target
        name = lldb.SBBreakpointName(target, BP_NAME)
        for allow in (name.SetAllowList, name.SetAllowDelete, name.SetAllowDisable):
            allow(False)
        out = _run(self.debugger, f"target stop-hook add -P {__name__}.FatalStopHook")
        found = re.search(r"#(\d+)", out.GetOutput() or "")
        self.stop_hook = found.group(1) if out.Succeeded() and found else None

    def disarm(self):
        if self.stop_hook:
            _run(self.debugger, f"target stop-hook delete {self.stop_hook}")
        self.stop_hook = None

    def _named(self, bp, handler):
        bp.AddName(BP_NAME)
        bp.SetScriptCallbackFunction(f"{__name__}._callback")
        self.handlers[bp.GetID()] = handler
        return bp

    def break_function(self, name, handler):
        """-K false: at the first instruction (prologue skip put sendfile's past its syscall)."""
        found = re.search(r"Breakpoint (\d+):", _run(
            self.debugger, f"breakpoint set -F {name} -K false").GetOutput() or "")
        return found and self._named(self.target.FindBreakpointByID(int(found[1])), handler)

    def break_return(self, ctx, pc, handler):
        """Module-relative: lldb moves it with the module, drops it when the module goes."""
        address = self.target.ResolveLoadAddress(pc)
        return self._named(self.target.BreakpointCreateBySBAddress(address)
                           if address.GetModule().IsValid()
                           else self.target.BreakpointCreateByAddress(pc), handler)

    def break_site(self, site, handler):
        self.target = self._target()
        if site.get("entry"):           # no DWARF: at the called function's entry
            return self.break_function(site["callee"], handler)
        spec = lldb.SBFileSpec(site["object"]) if site.get("object") else \
            self.target.GetExecutable()     # a library is added before it loads: module-
        module = self.target.FindModule(spec) or self.target.AddModule(spec.fullpath, None, None)
        return self._named(self.target.BreakpointCreateBySBAddress(    # relative, follows it
            module.ResolveFileAddress(site["call_pc"])), handler)

    def located(self, bp):
        return bp.IsValid() and bp.GetNumLocations() > 0

    def disable(self, bp):
        if bp.IsValid():
            bp.SetEnabled(False)

    def delete(self, bp):
        self.handlers.pop(bp.GetID(), None)
        if bp.IsValid() and self.target is not None and self.target.IsValid():
            self.target.BreakpointDelete(bp.GetID())

    def classify(self, process):
        signals, pid, found = process.GetUnixSignals(), process.GetProcessID(), []
        for thread in process:
            reason, tid = thread.GetStopReason(), thread.GetThreadID()
            if reason == lldb.eStopReasonSignal:
                name = signals.GetSignalAsCString(thread.GetStopReasonDataAtIndex(0)) or "?"
                found.append(signal_stop(name, pid, tid, interrupts=("SIGSTOP", "SIGINT")))
            elif reason == lldb.eStopReasonBreakpoint:
                ids = [thread.GetStopReasonDataAtIndex(i)
                       for i in range(0, thread.GetStopReasonDataCount(), 2)]
                if any(not self.target.FindBreakpointByID(i).MatchesName(BP_NAME) for i in ids):
                    found.append(Stop(USER, pid, tid))
            elif reason in _STOP_KINDS:
                found.append(Stop(_STOP_KINDS[reason], pid, tid))
            # Trace / PlanComplete: lldb's own step over a breakpoint leaking out: not ours.
        return most_important(found, pid)

    def fate(self, pid):
        process = self._process()
        same = process.IsValid() and process.GetProcessID() == pid
        if same and _alive(process) and vanished(pid):     # your `process kill`, not shown yet
            wait_for(lambda: not _alive(process), 2.0)
        if same and _alive(process):
            return None
        state = process.GetState() if same else None
        if state == lldb.eStateExited and process.GetExitDescription() == "killed":
            return ("gone", None)       # your `process kill` (lldb has no detach hook either)
        return {lldb.eStateExited: ("exited", process.GetExitStatus()),
                lldb.eStateDetached: ("detached", None)}.get(state, ("gone", None))

    def set_args(self, args):
        self.launch_args = shlex.split(args) if args.strip() else None

    def launch(self):
        target = self._target()
        info = target.GetLaunchInfo()
        if self.launch_args is not None:
            info.SetArguments(self.launch_args, False)
        env = target.GetEnvironment()
        for name, value in self.environment.items():
            if value is None:
                env.Unset(name)
            else:
                env.Set(name, value, True)
        info.SetEnvironment(env, False)
        # Stop at the entry so the timeout is armed before any of the program's code runs.
        info.SetLaunchFlags(info.GetLaunchFlags() | lldb.eLaunchFlagStopAtEntry)
        self._enter_run(target)
        error = lldb.SBError()
        process = target.Launch(info, error)
        if not error.Success() or not process.IsValid():
            raise TracerError(f"cannot start {self.program()}: {error.GetCString()}")
        pid = process.GetProcessID()
        self.driver.on_new_thread(pid, pid, first=True)
        return self.resume()

    def resume(self):
        process = self._process()
        self._enter_run(self._target())
        with self.watch.resuming():
            error = process.Continue()
        state, pid = process.GetState(), process.GetProcessID()
        if not error.Success() and _alive(process) and state != lldb.eStateStopped:
            raise TracerError(f"cannot continue the program: {error.GetCString()}")
        if state in (lldb.eStateExited, lldb.eStateDetached) or not process.IsValid():
            self.driver.on_ended(pid, process.GetExitStatus())
            return Stop(EXITED, pid)
        if self.watch.timed_out:
            return Stop(TIMEOUT, pid, self.selected_tid())
        return Stop(INTERRUPT, pid) if self.watch.interrupted else self.classify(process)

    def _enter_run(self, target):
        """While `tracer run` waits: synchronous, quiet about our breakpoints' locations,
        and a watch for the timeout and Ctrl-C."""
        if self.watch is not None:
            return
        self.target = target
        self.was_async = self.debugger.GetAsync()
        self.debugger.SetAsync(False)
        self.debugger.GetListener().StopListeningForEvents(
            target.GetBroadcaster(), lldb.SBTarget.eBroadcastBitBreakpointChanged)
        self.watch = Watch(self.debugger.GetCommandInterpreter().WasInterrupted,
                           lambda: self._process().SendAsyncInterrupt())

    def start_clock(self, seconds, pid):
        self.watch.start_clock(seconds)

    def run_ended(self):
        if self.watch is None:
            return
        self.watch.close()
        self.watch = None
        self.debugger.SetAsync(self.was_async)
        self.debugger.GetListener().StartListeningForEvents(
            self.target.GetBroadcaster(), lldb.SBTarget.eBroadcastBitBreakpointChanged)

    def attach(self, pid):
        process = self._process()
        if _alive(process):
            raise TracerError(f"already debugging process {process.GetProcessID()}; "
                              "`process detach` or `process kill` it first "
                              "(lldb traces one process at a time)")
        was_async, error = self.debugger.GetAsync(), lldb.SBError()
        self.debugger.SetAsync(False)
        try:
            process = self.target.AttachToProcessWithID(lldb.SBListener(), pid, error)
        finally:
            self.debugger.SetAsync(was_async)
        if not error.Success() or not process.IsValid():
            raise TracerError(f"cannot attach to {pid}: {error.GetCString()} (is ptrace "
                              "allowed? see /proc/sys/kernel/yama/ptrace_scope)")

    def kill(self):
        self._process().Kill()

    def detach(self):           # (`process detach` has no hook: fate() sees it after the fact)
        self._process().Detach()

    def write(self, text, error=False):
        print(text, file=sys.stderr if error else sys.stdout, flush=True)

    def stopped_text(self):
        process, text = self._process(), lldb.SBStream()
        process.GetSelectedThread().GetStatus(text)
        return f"Process {process.GetProcessID()} stopped\n{text.GetData().rstrip()}"


def _command(action, text):
    """An lldb command function over a guarded driver action; lldb's long help is its doc."""
    def command(debugger, arg, exe_ctx, result, internal_dict):
        out, error = action(arg)
        if error:
            result.SetError(error)
        elif out:
            result.AppendMessage(out)
    command.__doc__ = text
    return command


def __lldb_init_module(debugger, internal_dict):
    global PORT
    if PORT is None or PORT.debugger.GetID() != debugger.GetID():
        PORT = LldbPort(debugger)
    summary, details = frontend.help_text(
        ", its threads (not its forked children: lldb follows one process)",
        "Settings: {}. Differences from gdb: docs/lldb.md.", native_settings=False)
    details = shlex.quote("tracer <subcommand> ...\n" + details)
    _run(debugger, f"command container add -h {shlex.quote(summary)} -H {details} tracer")
    _run(debugger, f"command container add -h {shlex.quote(frontend.YIELD_SUMMARY)} tracer yield")
    for name, summary, text, action, _ in PORT.driver.commands(native_settings=False):
        function = "tracer_" + name.replace(" ", "_")
        globals()[function] = _command(action, text)
        _run(debugger, f"command script add -o -h {shlex.quote(summary)} "
                       f"-f {__name__}.{function} tracer {name}")
