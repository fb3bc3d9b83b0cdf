"""The port: what the driver needs from a debugger, and nothing else.

One class per debugger implements it (gdb/tracer.py, lldb/tracer.py); the driver
(tracerlib/driver.py) holds every decision and is written once against it. A third debugger
plugs in by implementing `Port` and `Context`, then calling `Driver(port)` and registering
`driver.commands()` as its commands.

Breakpoint handlers run on the debugger's hot path: `handler(ctx) -> bool` (True: the
program must stop here for the driver, see YieldBreakpoints.service). The port calls them
with a `Context` of the stopped thread.

Run control is synchronous: `launch` and `resume` return when the program stops, as a
`Stop`. While a debugger resumes, it reports what happened to single processes through the
driver's `on_*` methods (new threads, exits, exec, stops seen outside `tracer run`).
"""
import shlex
import time
from dataclasses import dataclass
from typing import Optional

from .interrupts import Watchdog
from .procfs import vanished  # noqa: F401 (the ports take it from here)
from .run import is_fatal

# Stop kinds, in the order the driver cares about them.
OURS = "ours"            # a tracer breakpoint asked for a stop (a yield to insert or undo)
USER = "user"            # the user's own breakpoint, watchpoint, exception: hand control back
INTERRUPT = "interrupt"  # Ctrl-C or an interrupt from outside Tracer
TIMEOUT = "timeout"      # `tracer timeout` ran out
FATAL = "fatal"          # a signal that kills the process (pid, tid, signal)
SIGNAL = "signal"        # a signal the process survives
EXEC = "exec"            # the process replaced its image
EXITED = "exited"        # no traced process is left
OTHER = "other"          # anything else: resume


class DebuggerTrouble(Exception):
    """The debugger itself failed while it ran the program (gdb's internal errors under fork
    load): the run says nothing about the program. The message is one line."""


def cmdline(pid):
    """The argv of a live process as it was started (through a symlink, too); [] if gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [w.decode(errors="replace") for w in f.read().split(b"\0")[:-1]]
    except OSError:
        return []


def wait_for(done, seconds, step=0.01):
    """Polls done() until it holds or `seconds` pass: lldb shows a state change (your
    `process kill`, a detach) a moment after the command that made it."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(step)


@dataclass
class Stop:
    kind: str
    pid: int = 0
    tid: int = 0
    signal: Optional[str] = None


_RANK = {FATAL: 0, USER: 1, INTERRUPT: 2, EXEC: 3}


def most_important(stops, pid):
    """The one stop to act on of several threads' (a fatal signal first); OTHER if none."""
    return min(stops, key=lambda s: _RANK.get(s.kind, 4)) if stops else Stop(OTHER, pid)


def signal_stop(name, pid, tid, interrupts=("SIGINT",)):
    """The Stop of a signal `name` reported in thread tid of pid."""
    if name in interrupts:
        return Stop(INTERRUPT, pid, tid, name)
    return Stop(FATAL if is_fatal(name, pid) else SIGNAL, pid, tid, name)


class Context:
    """The stopped thread a breakpoint handler runs in."""
    pid = 0
    tid = 0

    def regs(self, returning=False):
        """Argument registers, sp, rax, pc, fs_base as the core's Session takes them, or None
        when the core can read them itself (ptrace from the debugger's thread, the default).
        With returning=True, fs_base is needed only when rax looks like -1; None: the port
        cannot read it (the driver finds it through glibc)."""
        return None

    def symbol(self, name):
        """Runtime address of `name` in this process (libc's first), or None."""
        raise NotImplementedError

    def return_key(self, pc):
        """A key for a return-site breakpoint at pc that names the image it lives in."""
        raise NotImplementedError

    def read_registers(self, names):
        raise NotImplementedError

    def write_registers(self, values):
        raise NotImplementedError

    def write_memory(self, address, data):
        raise NotImplementedError


class Port:
    """A debugger as the driver sees it. Errors the user can fix raise TracerError."""
    name = "?"                      # "gdb 13.1": the report's `debugger`
    follows_forks = True            # forked children are traced as processes of the run
    yields_in_callback = False      # insert a yield inside the handler (else at a stop)
    keep_fatal_stopped = False      # after a fatal signal, hand control back at once
    children_note = ""              # what the debugger cannot see, for help and status
    load_hint = "load one first"    # how to load a program, for "no program loaded: ..."
    help_words = {}                 # blanks of frontend.COMMANDS' help: batch, resume
    exit_hides_signal = False       # a process killed by signal N reports exit status N

    # ---- program and processes ----
    def program(self):
        """Path of the loaded program, or None."""
        raise NotImplementedError

    def args(self):
        """The arguments (argv without argv[0]) the next launch will use."""
        raise NotImplementedError

    def live_pids(self):
        raise NotImplementedError

    def processes(self, backtrace):
        """[{pid, threads: [{tid, name, backtrace: [{pc, function, file, line}]}]}] of every
        live traced process, at most `backtrace` frames each."""
        raise NotImplementedError

    def selected_tid(self):
        raise NotImplementedError

    def context(self):
        """The Context of the selected thread (for YieldBreakpoints.service)."""
        raise NotImplementedError

    def describe_pc(self, pc):
        """(function, file, line) of the instruction at pc, each None when unknown."""
        raise NotImplementedError

    # ---- arming ----
    def arm(self, mode="breakpoint"):
        """Change the debugger settings tracing in `mode` needs (kept for `disarm`)."""

    def disarm(self):
        """Restore every debugger setting `arm` changed."""

    def break_function(self, name, handler):
        """A breakpoint at function `name`'s entry; None when it is not there (yet)."""
        raise NotImplementedError

    def break_return(self, ctx, pc, handler):
        """A breakpoint at return address pc of ctx's process image."""
        raise NotImplementedError

    def break_site(self, site, handler):
        """A breakpoint before a yield site (a tracerlib.yields site); None when its library
        is not loaded yet (placed again at Driver.on_new_objects)."""
        raise NotImplementedError

    # A library's site breakpoints follow the library to wherever a new process loads it
    # (else they are removed with the process and placed again: yield_breakpoints.py).
    library_sites_follow_load = True

    def located(self, bp):
        """The breakpoint has at least one location."""
        return True

    def disable(self, bp):
        raise NotImplementedError

    def delete(self, bp):
        raise NotImplementedError

    # ---- run control ----
    environment = {}

    def set_environment(self, variables):
        """Environment of the next launch: {name: value, or None to unset}. By default they
        gather in self.environment, for launch() to apply."""
        self.environment = {**self.environment, **variables}

    def set_args(self, args):
        """The arguments (shell words, as text) of the next launch; empty keeps them."""
        raise NotImplementedError

    def launch(self):
        """Start the program; tell the driver on_new_thread(pid, pid, first=True) -> Stop."""
        raise NotImplementedError

    def resume(self):
        """Continue every traced process until something stops it -> Stop."""
        raise NotImplementedError

    def attach(self, pid):
        raise NotImplementedError

    def detach(self):
        """Let the traced process go (the driver has finished with it)."""
        raise NotImplementedError

    def kill(self):
        """Kill every traced process."""
        raise NotImplementedError

    watchdog = None

    def start_clock(self, seconds, pid):
        """From now, `seconds` until resume() returns Stop(TIMEOUT). By default a Watchdog
        sends pid SIGINT then: the port reports that SIGINT as TIMEOUT when clock_fired()."""
        self.watchdog = Watchdog(seconds, pid)

    def clock_fired(self):
        return self.watchdog is not None and self.watchdog.fired()

    def run_ended(self):
        """`tracer run` is over: stop the clock, undo what launch/resume set up for it."""
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None

    def before_run(self):
        """A fresh launch is coming: drop what the last one left (dead inferiors...)."""

    def fate(self, pid):
        """Before a command: None while `pid` lives (or when the port cannot tell), else
        ("exited", status), ("detached", None) or ("gone", None)."""
        return None

    # ---- the user's side ----
    def write(self, text, error=False):
        """One line (or more) to the user; error: to the error stream."""
        raise NotImplementedError

    def stopped_text(self):
        """What `tracer run` says when your own breakpoint or an interrupt stopped it."""
        return None

    # How the debugger runs commands in batch mode: argv that loads Tracer, the flag before
    # each command, how a setting is set, what comes before the program's argv.
    batch = ("?",)
    batch_flag = "-ex"
    batch_setting = "set tracer {}"
    batch_args = "--args"

    def batch_command(self, commands, program, args):
        """A shell command line that runs `commands` (tracer commands and settings as
        (kind, text) pairs, kind 'set' or 'do') in batch mode against program + args."""
        cmd = list(self.batch)
        for kind, text in commands:
            cmd += [self.batch_flag, self.batch_setting.format(text) if kind == "set" else text]
        return " ".join(shlex.quote(w) for w in cmd + [self.batch_args, program, *args])
