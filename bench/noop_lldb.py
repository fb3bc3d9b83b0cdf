"""The fair no-op baselines for bench_lldb.py: the stops Tracer makes in lldb (an entry
breakpoint on write and read, and a breakpoint at each call's return address, kept).

    lldb-16 -b -o 'command script import bench/noop_lldb.py' -o run -- PROGRAM ROUNDS
        each breakpoint has a Python callback that returns False; the entry one only finds
        the return address (lldb's own no-op breakpoint callback)
    lldb-16 -b -o 'command script import bench/noop_lldb.py' -o 'noop auto' -o run -- ...
        the same breakpoints auto-continuing without any callback: lldb's stop alone. The
        return addresses are learnt by a first run of the program with one round.
"""
import lldb

_returns = {}


def on_return(frame, bp_loc, extra_args, internal_dict):
    return False


def on_entry(frame, bp_loc, extra_args, internal_dict):
    process = frame.GetThread().GetProcess()
    error = lldb.SBError()
    pc = process.ReadUnsignedFromMemory(frame.GetSP(), 8, error)
    if pc not in _returns:
        bp = process.GetTarget().BreakpointCreateByAddress(pc)
        bp.SetScriptCallbackFunction(f"{__name__}.on_return")
        _returns[pc] = bp
    return False


def _auto(debugger, command, result, internal_dict):
    target = debugger.GetSelectedTarget()
    info = target.GetLaunchInfo()
    info.SetArguments(["1"], False)
    was_async = debugger.GetAsync()
    debugger.SetAsync(False)
    target.Launch(info, lldb.SBError())       # learn the return addresses
    debugger.SetAsync(was_async)
    for i in range(target.GetNumBreakpoints()):
        bp = target.GetBreakpointAtIndex(i)
        bp.SetScriptCallbackFunction("")
        bp.SetAutoContinue(True)
    result.AppendMessage(f"noop: {target.GetNumBreakpoints()} breakpoints auto-continue")


def __lldb_init_module(debugger, internal_dict):
    target = debugger.GetSelectedTarget()
    empty = lldb.SBFileSpecList()
    for fn in ("write", "read"):
        bp = target.BreakpointCreateByName(fn, lldb.eFunctionNameTypeFull, empty, empty)
        bp.SetScriptCallbackFunction(f"{__name__}.on_entry")
    debugger.HandleCommand(f"command script add -o -f {__name__}._auto noop")
