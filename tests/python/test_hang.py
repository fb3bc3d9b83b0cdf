"""tracerlib/hang.py: the hang watch on a real process this test really ptrace-stops (as gdb
does), and not on one it lets run."""
import ctypes
import os
import select
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib.hang import HangWatch, all_stopped, traced_pids  # noqa: E402

PTRACE_CONT, PTRACE_ATTACH, PTRACE_DETACH = 7, 16, 17
_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def _traced_sleeper():
    child = subprocess.Popen(["sleep", "30"])
    assert _libc.ptrace(PTRACE_ATTACH, child.pid, None, None) == 0, ctypes.get_errno()
    os.waitpid(child.pid, 0)            # its attach stop: now in a tracing stop ('t')
    return child


def _resume(child):
    """PTRACE_CONT until it runs: an attach that lands while the child still execs gets a
    second stop (the exec's SIGTRAP), which must be waited for and continued too."""
    for _ in range(20):
        assert _libc.ptrace(PTRACE_CONT, child.pid, None, None) == 0
        time.sleep(0.05)
        if os.waitpid(child.pid, os.WNOHANG)[0] == 0:
            return


def _wait_in_poll(watch, seconds):
    """What gdb does in `continue`: the main thread blocks in poll()."""
    r, w = os.pipe()
    try:
        with watch.resuming():
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                p = select.poll()
                p.register(r, select.POLLIN)
                p.poll(int((end - time.monotonic()) * 1000) + 1)
    finally:
        os.close(r)
        os.close(w)


def _finish(child):
    os.kill(child.pid, signal.SIGKILL)
    _libc.ptrace(PTRACE_DETACH, child.pid, None, None)
    child.wait()


def test_a_stopped_tree_is_a_hang():
    child = _traced_sleeper()
    fired = []
    watch = HangWatch(lambda: fired.append(time.monotonic()), bound=0.5)
    try:
        assert child.pid in traced_pids() and all_stopped([child.pid])
        t0 = time.monotonic()
        _wait_in_poll(watch, 2.0)
        assert len(fired) == 1 and 0.4 < fired[0] - t0 < 1.5, fired   # once per resume
        assert watch.hangs == 1
    finally:
        watch.close()
        _finish(child)


def test_a_running_process_is_no_hang():
    child = _traced_sleeper()
    _resume(child)                      # running (sleeping)
    fired = []
    watch = HangWatch(lambda: fired.append(1), bound=0.5)
    try:
        assert not all_stopped([child.pid])
        _wait_in_poll(watch, 1.5)
        assert not fired
    finally:
        watch.close()
        _finish(child)


def test_no_hang_outside_a_resume_or_while_breakpoints_run():
    child = _traced_sleeper()
    fired = []
    watch = HangWatch(lambda: fired.append(1), bound=0.5)
    try:
        time.sleep(1.0)                 # not resuming: never a hang
        with watch.resuming():          # tracer breakpoints keep running: progress
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                watch.progress()
                select.poll().poll(100)
        assert not fired
    finally:
        watch.close()
        _finish(child)
