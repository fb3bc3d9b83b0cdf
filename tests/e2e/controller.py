"""One controller for the end-to-end tests: runs the real gdb 13 or lldb-16 with the tracer in
batch mode against a program and collects what the run left behind, the same way for both.

    run(debugger, program, args, settings, commands, during, after, timeout, ...) -> Run

runs, in a fresh temporary directory with stdin /dev/null and the debugger's stdout/stderr in
regular files there (the program inherits them under gdb; lldb gives the program a terminal
and copies what it prints, stderr included, into its own stdout):

    DEBUGGER <load the tracer> <store DIR> <report POLICY> [<set KEY VALUE> ...] [CMD ...]
             [<source SCRIPT>] [RUN_COMMAND] [CMD ...] <program and ARGS>

Everything that differs between the debuggers - the command-line shape, `set tracer X` vs
`tracer set X`, how a script is sourced, what a crash of the debugger looks like, the report's
debugger banner, where the program's stderr ends up - lives in one small class per debugger
(Gdb, Lldb); tests name a debugger by "gdb" or "lldb" and use DEBUGGERS[name].

`mode` is the data plane: "breakpoint" (the debugger stops at every traced call) or "agent"
(a library inside the program records into shared memory); it is the `tracer mode` setting.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import REPO, fixture_env, kill_leftovers, make_tmp, read_jsonl

MODES = ("breakpoint", "agent")      # the data planes: tests taking `mode` run in each
SETTABLE_MODES = MODES + ("auto",)   # auto: the agent where it can enter (test_coverage.py)


class Debugger:
    """What one debugger needs said differently. Subclasses set the class attributes."""
    name = ""            # "gdb" / "lldb": the pytest id, the prefix of the output files and
    executable = ""      # the directory of the tracer port (gdb/tracer.py, lldb/tracer.py)
    option = ""          # the flag that runs one command: -ex / -o
    banner = re.compile("")         # the report's "debugger" field
    error_prefix = ""    # what the debugger prints before a command's error message
    trouble = ()         # text in the output that means the debugger itself went wrong
    break_command = ""   # set a breakpoint on a function: FORMAT with {fn}
    detach_commands = ()            # stop tracing and let an attached process go
    resume_command = "continue"     # resume after the user's own stop (tracing goes on)

    help_command = ""    # a `help tracer ...` whose output shows the port is loaded

    def help_argv(self):
        return self.base_argv(()) + [self.option, self.help_command]

    def available(self):
        """(True, '') when the debugger loads its tracer port and knows `help tracer`."""
        if not shutil.which(self.executable):
            return False, f"{self.executable} is not installed"
        if not self.tracer_py.exists():
            return False, f"{self.tracer_py} does not exist yet"
        p = subprocess.run(self.help_argv(), capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        if p.returncode != 0 or self.help_failed(p):
            return False, (f"{self.name} could not load {self.tracer_py.relative_to(REPO)}:\n"
                           f"{p.stdout}{p.stderr}")
        return True, ""

    # Each subclass also defines: set_command(key, value) -> the command that sets a tracer
    # setting; base_argv(extra) -> the debugger, its batch flags, `extra`, the port loaded;
    # script_argv(path) -> what sources a command file; program_argv(program, args);
    # help_failed(CompletedProcess) -> whether `help_argv()` shows the port did not load.

    def script_suffix(self):
        return "." + self.name

    def program_stderr(self, run):
        """The output file that holds the program's stderr."""
        return run.stderr

    def argv(self, program, args, store, report, settings, commands, script_path,
             run_command, after, extra):
        argv = self.base_argv(extra)
        cmds = [self.set_command("store", store)]
        if report is not None:
            cmds.append(self.set_command("report", report))
        cmds += [self.set_command(k, v) for k, v in (settings or {}).items()]
        cmds += list(commands)
        for c in cmds:
            argv += [self.option, c]
        if script_path is not None:
            argv += self.script_argv(script_path)
        for c in ([run_command] if run_command else []) + list(after):
            argv += [self.option, c]
        if program is not None:
            argv += self.program_argv(program, args)
        return argv

    def assert_sane(self, run):
        """The debugger did not crash, hit an internal error or print a Python traceback."""
        found = [b for b in self.trouble if b in run.output]
        assert not found, f"{self.name} trouble ({found}):\n" + run.describe()
        assert run.returncode >= 0, (f"{self.name} killed by signal {-run.returncode}\n"
                                     + run.describe())

    @property
    def tracer_py(self):
        return REPO / self.name / "tracer.py"

    def __repr__(self):
        return self.name


class Gdb(Debugger):
    name, option, error_prefix = "gdb", "-ex", ""
    executable = os.environ.get("TRACER_GDB", "gdb")
    banner = re.compile(r"gdb ")
    # ("Segmentation fault" alone is gdb reporting the program's SIGSEGV: not gdb trouble.)
    trouble = ("internal-error", "Fatal signal", "Python Exception", "Traceback (most recent",
               "A problem internal to GDB", "A fatal error internal to GDB")
    break_command, help_command = "break {fn}", "help tracer"
    detach_commands = ("detach",)

    def help_failed(self, p):
        return "Python Exception" in p.stderr or "Undefined command" in p.stderr

    def set_command(self, key, value):
        return f"set tracer {key} {value}"

    def base_argv(self, extra):
        return [self.executable, "-q", "-batch", "-nx", *extra, "-x", str(self.tracer_py)]

    def script_argv(self, path):
        return ["-x", str(path)]

    def program_argv(self, program, args):
        return ["--args", str(program), *[str(a) for a in args]]


class Lldb(Debugger):
    name, option, error_prefix = "lldb", "-o", "error: "
    executable = os.environ.get("TRACER_LLDB", "lldb-16")
    # lldb-16 follows one process (docs/lldb.md), and its reports say so.
    banner = re.compile(r"lldb 16")
    trouble = ("Traceback (most recent", "PLEASE submit a bug report", "Stack dump:",
               "tracer: internal error", "error: python", "Segmentation fault (core dumped)")
    break_command, help_command = "breakpoint set -n {fn}", "help tracer run"
    detach_commands = ("tracer stop", "process detach")

    def help_failed(self, p):
        return "Traceback" in p.stderr or "tracer run" not in p.stdout

    def set_command(self, key, value):
        return f"tracer set {key} {value}"

    def base_argv(self, extra):
        return [self.executable, "-b", "--no-lldbinit", *extra,
                "-o", f"command script import {self.tracer_py}"]

    def script_argv(self, path):
        # `-e false`: a failing command in the script does not end the batch.
        return ["-o", f"command source -e false {path}"]

    def program_argv(self, program, args):
        return ["--", str(program), *[str(a) for a in args]]

    def program_stderr(self, run):
        return run.stdout


DEBUGGERS = {d.name: d for d in (Gdb(), Lldb())}


def get(debugger):
    return debugger if isinstance(debugger, Debugger) else DEBUGGERS[debugger]


# --------------------------------------------------------------------------- the result

@dataclass
class Run:
    debugger: Debugger
    argv: list
    returncode: int
    stdout: str
    stderr: str
    tmp: Path
    store: Path
    report_paths: list = field(default_factory=list)
    reports: list = field(default_factory=list)
    expectations: list = field(default_factory=list)
    pending: list = field(default_factory=list)
    duration: float = 0.0
    leftovers: list = field(default_factory=list)   # pids killed after the debugger exited

    @property
    def output(self):
        return self.stdout + self.stderr

    @property
    def program_stderr(self):
        return self.debugger.program_stderr(self)

    @property
    def report(self):
        """The one report of the run; fails unless exactly one was written."""
        assert len(self.reports) == 1, (
            f"expected exactly one report in {self.store}, found {len(self.reports)}: "
            f"{[str(p) for p in self.report_paths]}\n{self.describe()}")
        return self.reports[0]

    def describe(self, limit=6000):
        """The command line and output, for failure messages."""
        def tail(s):
            return s if len(s) <= limit else "...\n" + s[-limit:]
        name = self.debugger.name
        return (f"--- {name} command: {' '.join(shell_quote(a) for a in self.argv)}\n"
                f"--- exit status {self.returncode}, {self.duration:.1f} s, tmp {self.tmp}\n"
                f"--- {name} stdout (with the program's stdout):\n{tail(self.stdout)}\n"
                f"--- {name} stderr:\n{tail(self.stderr)}")


class DebuggerTimeout(AssertionError):
    pass


def shell_quote(a):
    a = str(a)
    if a and all(c.isalnum() or c in "-_./=:,+@%" for c in a):
        return a
    return "'" + a.replace("'", "'\\''") + "'"


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------- running

def run(debugger, program, args=(), settings=None, commands=(), during=None, after=(),
        timeout=120, script=None, run_command="tracer run", report="always", store=None,
        tmp=None, env=None, debugger_args=(), keep=(), mode="breakpoint"):
    """Runs `debugger` ("gdb", "lldb" or a Debugger) with the tracer in batch mode against
    `program` (a path, or None for no program) and returns a Run.

    settings: {key: value}, set after store and report.
    commands: extra commands before `script` and `run_command`.
    script:   text of debugger commands, written to tmp/script.NAME and sourced at that point
              (under gdb the first failing command ends it; under lldb it does not).
    run_command: the command that runs the program ('tracer run'; None: none).
    after:    commands after run_command (a failed run_command ends lldb's batch).
    during:   called with (Popen, tmp) once the debugger has started (to send it a signal).
    report:   the report policy (None: leave the default alone).
    store:    the report store directory (default tmp/store).
    keep:     pids not to kill when the debugger is done (a program started by the test);
              anything else still running in tmp then is killed and listed in run.leftovers.
    mode:     the data plane (MODES), or "auto".
    """
    dbg = get(debugger)
    if mode not in SETTABLE_MODES:
        raise ValueError(f"mode must be one of {SETTABLE_MODES}, not {mode!r}")
    tmp = make_tmp(tmp)
    store = Path(store) if store else tmp / "store"
    e = fixture_env(tmp, env)
    script_path = None
    if script is not None:
        script_path = tmp / ("script" + dbg.script_suffix())
        script_path.write_text(script)
    settings = {"mode": mode, **(settings or {})}
    argv = dbg.argv(program, args, store, report, settings, commands, script_path,
                    run_command, after, debugger_args)
    result = execute(dbg, argv, tmp, store, env=e, during=during, timeout=timeout, keep=keep)
    result.mode = mode
    return result


def execute(debugger, argv, tmp, store, env=None, during=None, timeout=120, keep=()):
    """Runs a ready command line (run()'s, or a replay command a hunt printed) in tmp and
    collects it: the one run/kill loop of the end-to-end tests."""
    dbg = get(debugger)
    t0 = time.monotonic()
    with open(tmp / f"{dbg.name}.stdout", "wb") as out, \
            open(tmp / f"{dbg.name}.stderr", "wb") as err:
        proc = subprocess.Popen(argv, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        timed_out = False
        try:
            if during is not None:
                during(proc, tmp)
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(proc.pid)
            rc = proc.wait()
    duration = time.monotonic() - t0
    leftovers = kill_leftovers(tmp, keep)
    result = collect(dbg, argv, rc, tmp, store, duration)
    result.leftovers = leftovers
    if timed_out:
        raise DebuggerTimeout(f"{dbg.name} did not finish within {timeout} s and was killed\n"
                              + result.describe())
    return result


def collect(debugger, argv, rc, tmp, store, duration=0.0):
    dbg = get(debugger)

    def text(p):
        return p.read_text(errors="replace") if p.exists() else ""
    result = Run(debugger=dbg, argv=argv, returncode=rc, stdout=text(tmp / f"{dbg.name}.stdout"),
                 stderr=text(tmp / f"{dbg.name}.stderr"), tmp=tmp, store=store,
                 duration=duration)
    result.report_paths = sorted(store.glob("*.json")) if store.is_dir() else []
    for p in result.report_paths:
        try:
            result.reports.append(json.loads(p.read_text(encoding="utf-8")))
        except (ValueError, UnicodeDecodeError) as exc:
            raise AssertionError(f"report {p} is not valid UTF-8 JSON: {exc}\n"
                                 + result.describe()) from None
    result.expectations = read_jsonl(tmp / "expect.jsonl")
    result.pending = read_jsonl(tmp / "pending.jsonl")
    return result


def run_gdb(program, args=(), **kw):
    """run("gdb", ...), for the tests that only make sense under gdb."""
    return run("gdb", program, args, **kw)


def run_lldb(program, args=(), **kw):
    """run("lldb", ...), for the tests that only make sense under lldb."""
    return run("lldb", program, args, **kw)


# --------------------------------------------------------------------------- tables

def cases(rows, ids, limits=lambda row: {}, marks=lambda debugger, row: ()):
    """pytest parameters (debugger name, row) for every debugger and row of a scenario table,
    for `@pytest.mark.parametrize("debugger,row", cases(...), indirect=["debugger"])`.
    limits(row) -> {debugger name: why the row cannot run there (a documented limitation)}:
    such a case is collected and skipped with that reason. marks(name, row): extra marks."""
    import pytest
    out = []
    for row, rid in zip(rows, ids):
        for name in sorted(DEBUGGERS):
            why = limits(row).get(name)
            m = list(marks(name, row)) + ([pytest.mark.skip(reason=why)] if why else [])
            out.append(pytest.param(name, row, id=f"{name}-{rid}", marks=m))
    return out
