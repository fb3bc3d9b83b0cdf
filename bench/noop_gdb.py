"""The fair no-op baseline for bench_gdb.py: the same stops Tracer makes (an entry breakpoint
on each traced function and a permanent breakpoint at each call's return address), with
stop() doing nothing but finding the return address. Same gdb settings as Tracer
(gdb/tracer.py GDB_SETTINGS)."""
import ctypes

import gdb

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_PEEKDATA, _PEEKUSER, _RSP = 2, 3, 19 * 8
_returns = {}


class Ret(gdb.Breakpoint):
    def stop(self):
        return False


class Entry(gdb.Breakpoint):
    def stop(self):
        thread = gdb.selected_thread()
        tid = thread.ptid[1] or thread.ptid[0]
        sp = _libc.ptrace(_PEEKUSER, tid, _RSP, None)
        pc = _libc.ptrace(_PEEKDATA, tid, sp, None) & 0xFFFFFFFFFFFFFFFF
        key = (thread.inferior.progspace, pc)
        if key not in _returns:
            _returns[key] = Ret(f"*{pc:#x}", internal=True)
        return False


for setting in ("set detach-on-fork off", "set schedule-multiple on",
                "set displaced-stepping off", "maint set target-non-stop off"):
    gdb.execute(setting)
for fn in ("write", "read"):
    Entry(fn, internal=True)
