"""A traced process's end (a helper the Driver owns as `driver.exits`; Driver.on_exit,
on_ended and poll hand over to it): what the port saw is recorded in the run and, when the
run's last process is gone, one stop record ends the run (Driver._finish writes its report).

Ports differ in what they see. One gives an exit's status, or the signal that killed the
process (on_exit). One whose debugger gives one number for both (exit_hides_signal: lldb)
gets a breakpoint at _exit that keeps the status each process passed (on_exit_call), and
on_ended tells an exit from a death by signal with it. A process that ended unseen (killed,
detached, or exited while you drove it) is found before a command (poll: the port's fate).
"""
import os

from . import frontend
from .run import signal_name


class Exits:
    """Owns the _exit breakpoint and the statuses it saw, for the driver's run."""

    def __init__(self, driver):
        self.driver = driver
        self.port = driver.port
        self.bp = None                # at _exit, for ports whose exit status hides a signal
        self.calls = {}               # pid -> status passed to _exit (see on_exit_call)

    def arm(self):
        if self.port.exit_hides_signal:
            self.bp = self.port.break_function("_exit", self.on_exit_call)

    def disarm(self):
        if self.bp is not None:
            self.port.delete(self.bp)
            self.bp = None

    def on_exit(self, pid, status=None, signame=None):
        """A traced process ended: status, or signame when a signal killed it (None when
        the port cannot tell)."""
        driver = self.driver
        driver._reap()
        run = driver.run
        if run is None or not pid:
            return
        if run.fatal and run.fatal[0] == pid:
            signame = run.fatal[2]
        elif status is None and signame and not run.finished:
            run.record_fatal(pid, pid, signame)
        run.record_exit(pid, status=status, signame=signame)
        if [p for p in self.port.live_pids() if p != pid]:
            return
        stop, driver.pending = driver.pending, None
        main = run.exits.get(run.pid, {}).get("status")
        if stop is None and (pid != run.pid or status is None) and not signame and \
                main is not None:
            # the last to go is a child (or one whose end gdb lost): the program's end, and
            # its verdict, are its main process's exit
            stop = frontend.stop("exit", run.pid, status=main)
        if stop is None and status is not None:
            stop = frontend.stop("exit", pid, status=status)
        elif stop is None:
            stop = frontend.stop("signal" if signame else "kill", pid, signal=signame)
        driver._finish(stop, live=False)

    def on_exit_call(self, ctx):
        """_exit(status): a port with exit_hides_signal reports a process killed by signal N
        exactly like one that exited with status N; this stop tells them apart."""
        status = ctx.read_registers(("rdi",))["rdi"] & 0xFF
        self.calls[ctx.pid] = status
        run = self.driver.run
        if not self.driver.in_run_command and run is not None and run.pid == ctx.pid:
            self.on_exit(ctx.pid, status=status)    # you drive: this is its end
        return False

    def on_ended(self, pid, status):
        """pid is gone with `status` as the debugger gives it (see on_exit_call)."""
        if pid in self.calls:           # lldb-16 at times gives -1 for an ordinary exit
            self.on_exit(pid, status=self.calls[pid])
        elif self.bp is not None and 0 < status < 65:
            self.on_exit(pid, signame=signal_name(status))     # never reached _exit
        else:
            self.on_exit(pid, status=status)

    def poll(self):
        """Before a command: a run whose process ended unseen (killed, detached, or exited
        while you drove it) gets its report now."""
        run = self.driver.run
        if run is None or run.finished or not run.pid:
            return
        fate = self.port.fate(run.pid)
        if fate is None:
            return
        how, status = fate
        if how == "exited":
            self.on_ended(run.pid, status)
        elif how == "detached":
            # No detach hook saw it go: what can still be read from outside (mailboxes).
            self.driver.on_detach(run.pid, processes=[{"pid": run.pid, "threads": []}]
                                  if os.path.exists(f"/proc/{run.pid}") else [])
        else:
            self.on_exit(run.pid)
