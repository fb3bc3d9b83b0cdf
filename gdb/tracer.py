"""Tracer for gdb (`source gdb/tracer.py`, then `help tracer`): the gdb port (tracerlib/port.py)
only; every decision is the driver's (tracerlib/driver.py), shared with lldb."""
import contextlib
import os
import re
import sys

import gdb

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:          # gdb's sys.path does not hold the script's directory
    sys.path.insert(0, _ROOT)

try:
    from tracerlib.driver import Driver
except ImportError as _e:
    raise gdb.GdbError(f"tracer: the core is not built ({_e}); run `make` in {_ROOT}")
from tracerlib import frontend, settings, yields
from tracerlib.hang import HangWatch, give_up
from tracerlib.pinning import keep_in_space
from tracerlib.port import (EXITED, OTHER, OURS, TIMEOUT, USER, Context, DebuggerTrouble, Port,
                            Stop, signal_stop, vanished)
from tracerlib.run import TracerError, signal_name

# gdb settings tracing needs, and why (restored by `tracer stop`).
GDB_SETTINGS = (
    ("detach-on-fork", "off"),        # keep forked children: trace the whole tree
    ("schedule-multiple", "on"),      # let parent and children run together
    ("displaced-stepping", "off"),    # gdb 13 corrupts %rcx in send/recv when SIGCHLD lands
    ("maint target-non-stop", "off"),   # on: hangs when a child exits in a step-over
    # gdb's internal errors (select_event_lwp under fork load) end the command, not gdb:
    ("maint internal-error quit", "no"), ("maint internal-error corefile", "no"),
    ("index-cache enabled", "on"),    # else every run rereads libc's debug info (~0.3 s)
)
# gdb has no detach event: a pre-hook tells the driver (the user's own is kept and restored).
_HOOKS = {"hook-detach": "python TRACER_PORT.driver.on_detach()"}


def _quiet(command):
    return gdb.execute(command, to_string=True)


def _setting_cmd(verb, name, value=""):
    command = f"maint {verb} {name[6:]}" if name.startswith("maint ") else f"{verb} {name}"
    return f"{command} {value}".rstrip()


def _ids(thread):
    return thread.ptid[0], thread.ptid[1] or thread.ptid[0]


def _symbol(name):
    with contextlib.suppress(gdb.error):
        return int(gdb.parse_and_eval(f"(long)&{name}"))
    return None


class GdbContext(Context):
    """gdb's native target runs Python on the ptrace thread: the core reads registers itself."""

    def __init__(self, thread):
        self.thread = thread
        self.pid, self.tid = _ids(thread)

    symbol = staticmethod(_symbol)

    def return_key(self, pc):
        return (self.thread.inferior.progspace, pc)

    def read_registers(self, names):
        frame = gdb.newest_frame()
        return {name: int(frame.read_register(name)) & 0xFFFFFFFFFFFFFFFF for name in names}

    def write_registers(self, values):
        self.thread.switch(), gdb.newest_frame().select()  # `set var $reg` writes frame 0
        for name, value in values.items():
            _quiet(f"set var ${name} = {value:#x}")

    def write_memory(self, address, data):
        self.thread.inferior.write_memory(address, data)


class TracerBreakpoint(gdb.Breakpoint):
    """Tracer's (internal); only yield sites stop (yield_breakpoints.py); space: pinning.py."""

    def __init__(self, location, handler, yield_site=False, space=None):
        super().__init__(location, internal=True)
        self.silent, self.handler, self.yield_site, self.space = True, handler, yield_site, space

    def stop(self):
        TRACER_PORT.hang_watch.progress()
        return self.handler(GdbContext(gdb.selected_thread()))


class GdbPort(Port):
    name = f"gdb {gdb.VERSION.split()[0]}"
    load_hint = "`gdb --args PROGRAM ARGS` or `file PROGRAM` first"
    help_words = {"batch": "In `gdb -batch` gdb exits with the status of its last command: "
                           "put\n`tracer run` last.", "resume": "continue"}
    batch = ("gdb", "-q", "-batch", "-x", os.path.join(_ROOT, "gdb", "tracer.py"))
    library_sites_follow_load = False   # a library's sites: at the process's addresses

    def __init__(self):
        self.driver = Driver(self)
        self.saved = {}                 # gdb setting -> the user's value, while armed
        self.saved_hooks = {}           # hook -> the user's own body, while armed
        self.pids = {}                  # inferior number -> pid (gone by its exit event)
        self.last = Stop(OTHER)         # what ended the latest resume
        self.hang_watch = HangWatch(lambda: gdb.post_event(lambda: give_up(self.driver, 'gdb')))
        for event, handler in ((gdb.events.new_objfile,
                                lambda e: self.driver.on_new_objects()),
                               (gdb.events.clear_objfiles, self._on_clear_objfiles),
                               (gdb.events.new_thread, self._on_new_thread),
                               (gdb.events.stop, self._on_stop),
                               (gdb.events.exited, self._on_exited),
                               (gdb.events.breakpoint_modified,
                                lambda bp: keep_in_space(bp, gdb.inferiors())),
                               (gdb.events.gdb_exiting, lambda e: self.driver.on_quit()),
                               (gdb.events.before_prompt, self.driver.flush_pending)):
            event.connect(handler)

    def program(self):
        return getattr(gdb.current_progspace(), "filename", None)

    def args(self):
        """gdb.parameter("args") is always '' in gdb 13: `show args` quotes them as a shell."""
        return frontend.shell_words(_quiet("show args"), quoted=True)

    def _live(self):
        """Inferiors with a process and threads (gdb may keep a reaped child, threadless)."""
        return [inf for inf in gdb.inferiors() if inf.pid and inf.threads()]

    def live_pids(self):
        return [inf.pid for inf in self._live()]

    def processes(self, backtrace):
        selected = gdb.selected_thread()
        processes = [{"pid": inf.pid, "threads": [
            {"tid": _ids(t)[1], "name": t.name, "backtrace": self._backtrace(t, backtrace)}
            for t in sorted(inf.threads(), key=lambda t: t.num) if t.is_valid()]}
            for inf in self._live()]
        if selected is not None and selected.is_valid():
            selected.switch()
        return processes

    @staticmethod
    def _backtrace(thread, limit):
        frames = []
        try:
            thread.switch()
            frame = gdb.newest_frame()
            while frame is not None and len(frames) < limit:
                sal = frame.find_sal()
                frames.append(frontend.frame(frame.pc(), frame.name(),
                                             sal.symtab and sal.symtab.fullname(), sal.line))
                frame = frame.older()
        except gdb.error:
            pass                        # a thread gdb cannot unwind: keep what we have
        return frames

    def selected_tid(self):
        return _ids(gdb.selected_thread())[1] if gdb.selected_thread() is not None else 0

    def context(self):
        return GdbContext(gdb.selected_thread())

    def describe_pc(self, pc):
        sal, function = gdb.find_pc_line(pc), None
        with contextlib.suppress(RuntimeError):
            block = gdb.block_for_pc(pc)
            while block is not None and block.function is None:
                block = block.superblock
            function = block and block.function.print_name
        text = gdb.format_address(pc)           # no debug info: the minimal symbol
        if function is None and "<" in text:
            function = text.split("<", 1)[1].split("+", 1)[0].rstrip(">")
        return function, sal.symtab and sal.symtab.fullname(), sal.line

    def arm(self, mode="breakpoint"):
        for name, value in GDB_SETTINGS:
            if mode == "agent" and name == "maint target-non-stop":
                continue                # no breakpoint to step over: gdb's own default
            command, shown = _setting_cmd("set", name, value), _setting_cmd("show", name)
            try:                        # the value as `set` takes it: the last "is WORD"
                self.saved[name] = re.findall(r' is "?([\w-]+)', _quiet(shown))[-1]
                _quiet(command)
            except gdb.error as e:      # target-non-stop cannot change under a live process
                self.write(f"tracer: warning: could not `{command}`: {e}", error=True)
        for hook, ours in _HOOKS.items():
            try:
                shown = _quiet(f"show user {hook}").splitlines()[1:]
            except gdb.error:
                shown = []
            self.saved_hooks[hook] = "\n".join(ln[2:] for ln in shown if ours not in ln)
            _quiet(f"define {hook}\n{ours}\n{self.saved_hooks[hook]}\nend")

    def disarm(self):
        for name, value in self.saved.items():
            try:
                _quiet(_setting_cmd("set", name, value))
            except gdb.error:
                pass                    # a live process pins target-non-stop: keep it
        self.saved.clear()
        for hook, body in self.saved_hooks.items():
            _quiet(f"define {hook}\n{body}\nend")
        self.saved_hooks.clear()

    def break_function(self, name, handler):
        """Probing first keeps gdb from printing 'Function not defined'."""
        return TracerBreakpoint(name, handler) if _symbol(name) is not None else None

    def break_return(self, ctx, pc, handler):
        return TracerBreakpoint(f"*{pc:#x}", handler, space=ctx.thread.inferior.progspace)

    def break_site(self, site, handler):
        where = yields.site_location(site, self.program(), gdb.selected_inferior().pid)
        return where and TracerBreakpoint(where, handler, yield_site=True)

    def disable(self, bp):
        bp.is_valid() and setattr(bp, "enabled", False)

    def delete(self, bp):
        bp.is_valid() and bp.delete()

    def _on_clear_objfiles(self, event):
        """exec or a re-run replaced the program: its return sites go (safe: not in a stop())."""
        space = event.progspace
        self.driver.on_exec([inf.pid for inf in gdb.inferiors() if inf.progspace == space
                             and inf.pid], image_key=lambda key: key[0] == space)

    def _on_new_thread(self, event):
        thread = event.inferior_thread
        pid, tid = _ids(thread)
        self.pids[thread.inferior.num] = pid
        # A process's first thread can be announced twice (again once thread_db knows it).
        self.driver.on_new_thread(pid, tid, first=len(thread.inferior.threads()) == 1)

    def _on_stop(self, event):
        self.last = self._classify(event)
        if not self.driver.in_run_command:  # you drive: the report is written at the prompt
            self.driver.on_stop(self.last)

    def _classify(self, event):
        if isinstance(event, gdb.BreakpointEvent):
            bps = event.breakpoints
            ours = (any(getattr(bp, "yield_site", False) for bp in bps)
                    and all(isinstance(bp, TracerBreakpoint) for bp in bps))
            return Stop(OURS if ours else USER)
        if not isinstance(event, gdb.SignalEvent):
            return Stop(USER)
        pid, tid = _ids(gdb.selected_thread())
        if event.stop_signal == "SIGINT" and self.clock_fired():
            return Stop(TIMEOUT, pid, tid)
        return signal_stop(event.stop_signal, pid, tid)

    def _on_exited(self, event):
        pid = event.inferior.pid or self.pids.get(event.inferior.num, 0)
        self.last = Stop(EXITED, pid)
        # No exit code: a signal gdb did not stop on (SIGKILL: $_exitsignal, cleared after
        # each exit), your `kill`, or an exit gdb lost (never called failures).
        sig = gdb.convenience_variable("_exitsignal")
        gdb.set_convenience_variable("_exitsignal", None)
        self.driver.on_exit(pid, status=getattr(event, "exit_code", None),
                            signame=signal_name(int(sig)) if sig is not None else None)

    def set_environment(self, variables):
        for name, value in variables.items():
            _quiet(f"unset environment {name}" if value is None
                   else f"set environment {name}={value}")

    def set_args(self, args):
        if args:
            _quiet("set args " + args)

    def launch(self):
        return self._execute("run")

    def resume(self):
        return self._execute("continue")

    def _execute(self, command):
        self.last = Stop(OTHER)
        for attempt in range(3):
            live = self._live()
            if command == "continue" and live and not gdb.selected_inferior().threads():
                live[0].threads()[0].switch()   # continuing from an exited inferior fails
            try:
                with self.hang_watch.resuming():
                    gdb.execute(command)
                break
            except KeyboardInterrupt as e:  # a quit: how an internal error ends a command
                raise DebuggerTrouble(f"gdb failed while it ran the program ({e})") from None
            except gdb.error as e:
                # gdb 13 loses the exit of a child its parent reaps ("No unwaited-for children
                # left.", "Couldn't get registers: No such process."): forget it, go on.
                if attempt == 2 or not ("unwaited-for" in str(e) or self._forget_vanished()):
                    raise
                if not self._live():
                    break
                command = "continue"
        return self.last

    def _forget_vanished(self):
        """Inferiors whose process is gone (or a zombie) without gdb seeing it exit."""
        gone = [(inf.num, inf.pid) for inf in self._live() if vanished(inf.pid)]
        for num, pid in gone:
            with contextlib.suppress(gdb.error):
                _quiet(f"kill inferiors {num}")
            self.driver.on_exit(pid)    # how it ended is unknown: never called a failure
        return bool(gone)

    def before_run(self):
        """Back to inferior 1, dead children's inferiors removed (a hunt would pile them up)."""
        if gdb.selected_inferior().num != 1:
            _quiet("inferior 1")
        dead = [str(inf.num) for inf in gdb.inferiors() if inf.num != 1 and not inf.pid]
        dead and _quiet("remove-inferiors " + " ".join(dead))

    def attach(self, pid):
        try:
            _quiet(f"attach {pid}")
        except gdb.error as e:
            raise TracerError(f"cannot attach to {pid}: {e} (is ptrace allowed? see "
                              "/proc/sys/kernel/yama/ptrace_scope)") from None

    def detach(self):
        _quiet("detach")

    def kill(self):
        if self._live():
            _quiet("kill inferiors " + " ".join(str(inf.num) for inf in self._live()))

    def write(self, text, error=False):
        gdb.write(text + "\n", gdb.STDERR if error else gdb.STDOUT)


TRACER_PORT = GdbPort()


def _command(name, doc, action, prefix=False, files=False, group=gdb.COMMAND_RUNNING):
    """`NAME` as a gdb command running action(arg) -> (text, one-line error)."""

    class Command(gdb.Command):
        __doc__ = doc

        def __init__(self):
            super().__init__(name, group, gdb.COMPLETE_FILENAME if files else
                             gdb.COMPLETE_NONE, prefix=prefix)

        if action is not None:          # else a prefix as gdb makes it (`show tracer`)
            def invoke(self, arg, from_tty):
                out, error = action(arg)
                if error:
                    raise gdb.GdbError(error)
                if out:
                    gdb.write(out + "\n")

    Command()


_command("tracer", "\n".join(frontend.help_text(", its threads and its forked children",
                                                "Settings: show tracer / set tracer {}.")),
         lambda arg: (None, frontend.unknown_subcommand(arg)), prefix=True)
_command("tracer yield", f"{frontend.YIELD_SUMMARY}\n\n{frontend.YIELD_DETAILS}",
         lambda arg: (None, "tracer: tracer yield on|off|status"), prefix=True)
for _name, _summary, _doc, _action, _files in TRACER_PORT.driver.commands(native_settings=True):
    _command(f"tracer {_name}", _doc, _action, files=_files)
for _verb in ("set", "show"):
    _command(f"{_verb} tracer", "Tracer settings.", None, prefix=True, group=gdb.COMMAND_DATA)


def _parameter(setting):
    """One gdb parameter per setting: a string, since gdb's own integer parsing evaluates
    `abc` as an expression; the setting validates it and names its range."""

    class Parameter(gdb.Parameter):
        __doc__ = setting.doc
        set_doc, show_doc = f"Set tracer {setting.name}.", f"Show tracer {setting.name}."

        def __init__(self):
            enum = setting.kind == "enum"
            super().__init__(f"tracer {setting.name}", gdb.COMMAND_DATA,
                             *((gdb.PARAM_ENUM, list(setting.choices)) if enum
                               else (gdb.PARAM_STRING_NOESCAPE,)))
            self.value = setting.default if enum else str(setting.default)

        def get_set_string(self):
            self.value, error = TRACER_PORT.driver.set_value(setting.name, self.value or "")
            if error:
                raise gdb.GdbError(error)
            return ""

        def get_show_string(self, svalue):
            return f"tracer {setting.name} is {svalue}. ({setting.doc})"

    Parameter()


for _setting in settings.SETTINGS:
    _parameter(_setting)
