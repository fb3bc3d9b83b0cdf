"""The hang supervisor: gdb 13 can lose a forked child's event under fork load and then wait
forever in `continue` with every traced thread stopped ("No unwaited-for children left.").
A thread watches from outside, through /proc only (the debugger's API is not thread-safe):
while the debugger waits in a resume, every thread of every process it traces is in a
tracing stop ('t') or gone, the debugger's main thread sits in poll(), and no tracer
breakpoint ran, for longer than `bound` seconds -> `on_hang()`, called from the watch
thread (once per resume)."""
import os
import signal
import threading
import time

from .interrupts import WhileResuming
from .procfs import thread_states, tracer_of

HANG_BOUND = 3.0            # seconds of "everything stopped, nobody working" that make a hang
_POLL = 0.25
_WAITING_SYSCALLS = {"7", "271", "232", "281"}     # poll, ppoll, epoll_wait, epoll_pwait


def traced_pids(tracer=None):
    """Processes whose tracer is `tracer` (this process by default)."""
    tracer = tracer or os.getpid()
    return [int(name) for name in os.listdir("/proc")
            if name.isdigit() and tracer_of(int(name)) == tracer]


def all_stopped(pids):
    """Every thread of pids is in a tracing stop, a zombie, or gone."""
    return all(state in ("t", "Z", "X") for pid in pids for state in thread_states(pid))


def waiting_in_poll(tid):
    """The thread tid of this process is blocked in a poll-like system call."""
    try:
        with open(f"/proc/self/task/{tid}/syscall") as f:
            return f.read().split()[0] in _WAITING_SYSCALLS
    except (OSError, IndexError):
        return False


class HangWatch(WhileResuming):
    """Started once per debugger session; `resuming()` around each blocking resume."""

    def __init__(self, on_hang, bound=HANG_BOUND):
        self.on_hang, self.bound = on_hang, bound
        self.ticks = 0                  # tracer breakpoints run (progress), see progress()
        self.hangs = 0                  # hangs seen in this session
        self._main = threading.get_native_id()
        self._done = threading.Event()
        # Blocked signals are inherited: the thread must never take gdb's SIGCHLD (gdb
        # blocks it on its own thread and waits for it with sigsuspend).
        saved = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            self._thread = threading.Thread(target=self._watch, name="tracer-hang-watch",
                                            daemon=True)
            self._thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved)

    def progress(self):
        self.ticks += 1

    def _quiet_since(self, since, ticks):
        """Still hung-looking: resuming, nobody ran, all traced threads stopped, gdb idle."""
        return (self._resuming and self.ticks == ticks and waiting_in_poll(self._main)
                and all_stopped(traced_pids()))

    def _watch(self):
        since, ticks, fired = None, None, 0
        while not self._done.wait(_POLL):
            if not self._resuming:
                since, fired = None, 0
                continue
            if since is None or self.ticks != ticks or not self._quiet_since(since, ticks):
                since, ticks = time.monotonic(), self.ticks
                continue
            if not fired and time.monotonic() - since >= self.bound:
                fired = 1
                self.hangs += 1
                self.on_hang()

    def close(self):
        self._done.set()
        self._thread.join()


def give_up(driver, debugger):
    """A hang no command of the debugger ends (gdb: `interrupt`, `kill inferiors`, SIGKILL of
    the processes and a quit were each tried, and each left gdb waiting): what was recorded
    is written as the tool's failure, the processes are killed and the debugger process
    ends (status 1) - its own quit would wait for the lost process too. From the debugger's
    main thread (gdb.post_event)."""
    driver.on_hang(f"{debugger} lost a process's event and waited {HANG_BOUND:.0f} s with "
                   f"every traced thread stopped; {debugger} ends")
    for pid in traced_pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(1)
