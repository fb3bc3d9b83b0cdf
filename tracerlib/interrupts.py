"""Ctrl-C and time-outs while a debugger's command blocks its main thread, for debuggers that
cannot interrupt a process their own command continues synchronously (lldb: its Ctrl-C goes
to an input handler that only runs between commands)."""
import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time


class _InterruptCatcher:
    """SIGINT noted through Python's handler and a wakeup pipe; the debugger's own handler
    is put back by release()."""

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
        try:
            return self.pipe is not None and bool(os.read(self.pipe[0], 64))
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


class WhileResuming:
    """`with watch.resuming():` around the debugger's blocking continue, for a watch thread
    that acts only meanwhile (it reads `_resuming`)."""
    _resuming = False

    @contextlib.contextmanager
    def resuming(self):
        self._resuming = True
        try:
            yield
        finally:
            self._resuming = False


class Watch(WhileResuming):
    """A thread that, while a run blocks, notices the deadline or Ctrl-C (or asked(): the
    debugger's own interrupt flag) and then calls interrupt() every half second while inside
    resuming(), until the program stops (an interrupt can be swallowed by an auto-continue)."""

    def __init__(self, asked, interrupt):
        self.deadline = None
        self.timed_out = self.interrupted = False
        self._done = threading.Event()
        self._catcher = _InterruptCatcher()
        self._asked, self._interrupt = asked, interrupt
        self._thread = threading.Thread(target=self._watch, name="tracer-watch", daemon=True)
        self._thread.start()

    def start_clock(self, seconds):
        self.deadline = time.monotonic() + seconds

    def _watch(self):
        sent = 0.0
        while not self._done.wait(0.05):
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.timed_out = True
            elif self._catcher.caught() or self._asked():
                self.interrupted = True
            now = time.monotonic()
            if (self.timed_out or self.interrupted) and now - sent > 0.5 and self._resuming:
                self._interrupt()
                sent = now

    def close(self):
        self._done.set()
        self._thread.join()
        self._catcher.release()


class Watchdog:
    """A detached sleeper process that sends `pid` SIGINT when `seconds` are up. Not a
    Python thread: one inside gdb can take the SIGCHLDs gdb relies on (internal errors)."""

    def __init__(self, seconds, pid):
        out = subprocess.run(["/bin/sh", "-c", f"(sleep {seconds}; kill -INT {pid}) "
                                               ">/dev/null 2>&1 </dev/null & echo $!"],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.pid = int(out.stdout.strip() or 0)
        self.deadline = time.monotonic() + seconds

    def fired(self):
        """A SIGINT now is the watchdog's (its time is up)."""
        return time.monotonic() >= self.deadline - 0.1

    def cancel(self):
        for target in (-self.pid, self.pid):
            try:
                os.kill(target, signal.SIGTERM)
                return
            except OSError:
                pass
