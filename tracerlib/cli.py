"""bin/tracer: Tracer from a shell or a CI job, driving gdb or lldb in batch mode.

    tracer run    [--debugger gdb|lldb] [SETTINGS] -- PROG ARGS
    tracer hunt   --runs N [--seed S] [--confirm K] [YIELD OPTIONS] [--junit FILE] [SETTINGS] -- PROG ARGS
    tracer replay REPORT [--runs K] [--debugger gdb|lldb] [--store DIR]
    tracer show   REPORT
    tracer export REPORT --format html|chrome -o FILE

SETTINGS are the `set tracer ...` settings, one option each (made from settings.SETTINGS).
Exit status: 0 the program passed / no failure found, 1 it failed / a failure was found (the
report's path on the last line), 2 Tracer's own error or bad usage (one line).

The debugger's own chatter is left out; the program's output and Tracer's lines pass. Which
way a command went is read from the file the driver writes (result_file), never guessed
from the debugger's exit status, which is 1 both for a failed program and for an error.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading

from . import result_file
from .run import TracerError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSED, FAILED, ERROR = 0, 1, 2
PIPE_GRACE = 5.0            # seconds to read the output left once the debugger has exited


class UsageError(Exception):
    """Bad usage: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (-h for help)")


# ---------------------------------------------------------------------------- the debuggers

class Debugger:
    """How one debugger runs Tracer in batch mode, and which of its lines are chatter."""

    def __init__(self, name, argv, flag, set_format, args_flag, chatter, unset_env):
        self.name, self.flag, self.set_format, self.args_flag = name, flag, set_format, args_flag
        self._argv, self.chatter = argv, re.compile("|".join(chatter))
        self.unset_env = unset_env

    def argv(self, commands, program, args):
        """commands: ("set", name, value) or ("do", text). The result file's variable is
        the debugger's, not the program's."""
        argv = list(self._argv) + [self.flag, self.unset_env.format(result_file.VARIABLE)]
        for c in commands:
            argv += [self.flag, self.set_format.format(*c[1:]) if c[0] == "set" else c[1]]
        return argv + [self.args_flag, program, *args]

    def error_line(self, line):
        """A command's error as the debugger prints it, without the debugger's prefix."""
        return line.removeprefix("error: ") if self.name == "lldb" else line


DEBUGGERS = {
    "gdb": Debugger("gdb", [os.environ.get("TRACER_GDB", "gdb"), "-q", "-batch", "-nx",
                            "-x", os.path.join(ROOT, "gdb", "tracer.py")],
                    "-ex", "set tracer {} {}", "--args",
                    (r"^\[(Thread debugging using|Inferior \d+ \(process|New Thread|"
                     r"Thread 0x|New LWP|LWP \d+ exited|Detaching after|Attaching after|"
                     r"New inferior|Switching to)",
                     r"^Using host libthread_db library", r"^Reading symbols from ",
                     r"^\d+\t.*: No such file or directory\.$",
                     r"^warning: Error disabling address space randomization"),
                    "unset environment {}"),
    "lldb": Debugger("lldb", [os.environ.get("TRACER_LLDB", "lldb-16"), "-b", "-Q",
                              "--no-lldbinit", "-o",
                              f"command script import {ROOT}/lldb/tracer.py"],
                     "-o", "tracer set {} {}", "--",
                     (r"^Current executable set to ", r"^tracer \w+ is ",
                      r"^\(lldb\) "),
                     "settings set target.unset-env-vars {}"),
}


# ---------------------------------------------------------------------------- options

def _settings():
    from . import settings          # imports the compiled core: only once a command needs it
    return settings


def add_settings(parser, skip=()):
    """One option per Tracer setting, validated as `set tracer` validates it."""
    settings = _settings()
    group = parser.add_argument_group("settings (as `set tracer NAME VALUE`)")
    for s in settings.SETTINGS:
        if s.name in skip:
            continue

        def check(text, s=s):
            try:
                s.parse(text)
            except settings.SettingError as e:
                raise argparse.ArgumentTypeError(str(e)) from None
            return text
        metavar = "|".join(s.choices) if s.choices else ("N" if s.kind == "int" else "VALUE")
        group.add_argument(f"--{s.name}", type=check, metavar=metavar, default=None,
                           help=f"{s.doc} (default {s.default})")


def setting_commands(opts, skip=()):
    return [("set", s.name, getattr(opts, s.name)) for s in _settings().SETTINGS
            if s.name not in skip and getattr(opts, s.name, None) is not None]


def add_debugger(parser):
    parser.add_argument("--debugger", choices=sorted(DEBUGGERS), default="gdb",
                        help="the debugger that drives the program (default gdb)")


def add_program(parser):
    parser.add_argument("program", metavar="PROG", help="the program (a path, or on PATH)")
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                        help="its arguments")


def build_parser():
    top = _Parser(prog="tracer", description="Record the IPC of a program under gdb or "
                  "lldb; find and replay the schedules that break it.",
                  epilog="Exit status: 0 passed / no failure found, 1 failed / a failure "
                  "was found (report path on the last line), 2 Tracer's error or bad usage.")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser("run", help="run the program once, traced",
                         usage="tracer run [options] -- PROG ARGS")
    add_debugger(run)
    add_settings(run)
    add_program(run)

    hunt = sub.add_parser("hunt", help="run it with seeds S, S+1, ... until one fails",
                          usage="tracer hunt --runs N [options] -- PROG ARGS")
    hunt.add_argument("--runs", type=int, required=True, help="at most N runs")
    hunt.add_argument("--seed", help="the first seed (default 0)")
    hunt.add_argument("--confirm", type=int, metavar="K",
                      help="runs of a failing seed that must fail again before the hunt "
                           "ends with it (default 2; 0: the first failure ends it)")
    hunt.add_argument("--junit", metavar="FILE", help="write a JUnit XML result to FILE")
    add_debugger(hunt)
    y = hunt.add_argument_group("yield options (as `tracer yield on` takes them)")
    scope = y.add_mutually_exclusive_group()
    scope.add_argument("--module", help="only call sites in this compilation unit or library")
    scope.add_argument("--app", action="store_true",
                       help="the program and its own libraries (the default)")
    y.add_argument("--class", dest="classes", metavar="CLASSES",
                   help="comma-separated: send, recv, sync, proc (default all)")
    y.add_argument("--function", dest="functions", nargs="+", metavar="NAME",
                   help="only calls to these functions")
    y.add_argument("--probability", help="chance of a yield at a site (default 0.5)")
    y.add_argument("--strategy", help="yield | sleep:MAX_US | taper:MAX_US | delay:MAX_US | "
                   "pct:DEPTH (agent mode); without yield options: the default mix "
                   "(docs/guide.md)")
    add_settings(hunt)
    add_program(hunt)

    replay = sub.add_parser("replay", help="rerun a report's failing run K times",
                            usage="tracer replay REPORT [--runs K] [--debugger gdb|lldb] "
                            "[--store DIR]",
                            description="Reruns the report's program with its arguments, "
                            "seed, strategy, yield sites and limits, K times, and counts the "
                            "runs that stop the same way: the same fatal signal, a non-zero "
                            "exit, or a timeout. Exit 1 when the failure came back.")
    replay.add_argument("report", metavar="REPORT")
    replay.add_argument("--runs", type=int, default=1, help="K runs (default 1)")
    add_debugger(replay)
    replay.add_argument("--store", help="where the reproducing run's report goes")

    show = sub.add_parser("show", help="a stored report, for reading",
                          usage="tracer show REPORT")
    show.add_argument("report", metavar="REPORT")

    export = sub.add_parser("export", help="a stored report for a viewer",
                            usage="tracer export REPORT --format html|chrome -o FILE")
    export.add_argument("report", metavar="REPORT")
    export.add_argument("--format", choices=("html", "chrome"), required=True)
    export.add_argument("-o", "--output", metavar="FILE", required=True)
    return top


def parse(argv):
    opts = build_parser().parse_args(argv)
    if getattr(opts, "args", None) and opts.args[0] == "--":
        opts.args = opts.args[1:]
    return opts


def find_program(name):
    """PROG as strace finds it: a path as given, else the first on PATH."""
    path = name if "/" in name else shutil.which(name)
    if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise TracerError(f"no program '{name}': not an executable file"
                          + ("" if "/" in name else " on PATH"))
    return os.path.abspath(path)


# ---------------------------------------------------------------------------- driving

class Output:
    """The debugger's lines to the user, chatter left out; the last Tracer line of each
    stream is held back until the end, since bin/tracer prints the closing line itself."""

    def __init__(self, debugger, on_line=None):
        self.debugger, self.on_line = debugger, on_line
        self.lock = threading.Lock()
        self.held = {}
        self.closed = set()         # outputs nobody reads any more
        self.tail = []              # the last lines, for a debugger that gave no result

    def pump(self, stream, out):
        for raw in iter(stream.readline, b""):
            self.line(raw.decode(errors="replace").rstrip("\n"), out)
        stream.close()

    def line(self, text, out):
        with self.lock:
            self.tail = (self.tail + [text])[-5:]
            if self.debugger.chatter.search(text):
                return
            previous = self.held.pop(out, None)
            if previous is not None:
                self.emit(previous, out)
            if self.on_line is not None and self.on_line(text):
                return
            if self.debugger.error_line(text).startswith("tracer: "):
                self.held[out] = text
            else:
                self.emit(text, out)

    def emit(self, text, out):
        if out in self.closed:
            return
        if self.on_line is not None:
            self.on_line(None)      # (a progress bar makes room)
        try:
            out.write(text + "\n")
            out.flush()
        except (BrokenPipeError, ValueError):
            self.closed.add(out)    # (`| head`): go on draining, or the debugger would block

    def finish(self, closing):
        """Writes what was held, except the closing line's twin."""
        for out, text in self.held.items():
            if self.debugger.error_line(text) != closing:
                self.emit(text, out)
        self.held.clear()


def drive(debugger, commands, program, args, on_line=None):
    """Runs the debugger; returns (its exit status, the last command's result or None,
    Output)."""
    with tempfile.TemporaryDirectory(prefix="tracer-cli-") as tmp:
        result_path = os.path.join(tmp, "result.jsonl")
        env = dict(os.environ, **{result_file.VARIABLE: result_path})
        output = Output(debugger, on_line)
        argv = debugger.argv(commands, program, args)
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=env)
        except OSError as e:
            raise TracerError(f"cannot start {argv[0]}: {e.strerror}") from None
        pumps = [threading.Thread(target=output.pump, args=(s, o), daemon=True)
                 for s, o in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr))]
        for t in pumps:
            t.start()
        rc = _wait(proc)
        for t in pumps:             # a process the program left behind may hold the pipes
            t.join(timeout=PIPE_GRACE)
        return rc, verdict(result_file.read(result_path)), output


def _wait(proc):
    """Ctrl-C reaches the debugger too, which interrupts the program and has Tracer write
    what it has: wait for that. A second Ctrl-C ends the debugger."""
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            return proc.wait()


def verdict(results):
    """The result that decides: the first error of a command before the last (gdb goes on
    after one; lldb stops), else the last command's."""
    for result in results[:-1]:
        if result["status"] == "error":
            return result
    return results[-1] if results else None


def conclude(debugger, rc, result, output, command):
    """The exit status and closing line of a debugger run."""
    if result is not None and result["status"] == "error":
        output.finish(result["message"])
        return ERROR, result["message"]
    if result is None or result["command"] != command or rc not in (0, 1):
        output.finish(None)
        last = next((t for t in reversed(output.tail) if t.strip()), "no output")
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
        return ERROR, (f"tracer: {debugger.name} {how} before `tracer {command}` finished: "
                       f"{debugger.error_line(last)}")
    message = result["message"]
    output.finish(message)
    if result["status"] == "ok":        # your breakpoint or an interrupt stopped it early
        return ERROR, (f"tracer: `tracer {command}` stopped before the program ended"
                       + (f": {message}" if message else ""))
    status = {"failed": FAILED, "error": ERROR, "disturbed": ERROR}.get(result["status"],
                                                                         PASSED)
    if result["report"] and result["report"] not in message:
        message += f"; report: {result['report']}"
    return status, message


def cmd_run(opts):
    debugger = DEBUGGERS[opts.debugger]
    program = find_program(opts.program)
    rc, result, output = drive(debugger, setting_commands(opts) + [("do", "tracer run")],
                               program, opts.args)
    return conclude(debugger, rc, result, output, "run")


def yield_words(opts):
    """The `tracer yield on` words of the hunt's options; none when only --seed is given
    (the hunt's first seed: `tracer hunt --seed` takes it, and the default mix stays)."""
    words = []
    if opts.module:
        words += ["--module", opts.module]
    for flag, value in (("--class", opts.classes), ("--probability", opts.probability),
                        ("--strategy", opts.strategy)):
        if value is not None:
            words += [flag, value]
    if opts.functions:
        words += ["--function", *opts.functions]
    return words


def cmd_hunt(opts):
    from . import hunt_view
    if opts.runs < 1:
        raise UsageError("tracer hunt: --runs must be at least 1")
    debugger = DEBUGGERS[opts.debugger]
    program = find_program(opts.program)
    commands = setting_commands(opts)
    words = yield_words(opts)
    if words:
        from . import yields            # bad options fail here, before any run
        yields.plan(program, " ".join(_quote(w) for w in words))
        commands.append(("do", "tracer yield on " + " ".join(_quote(w) for w in words)))
    view = hunt_view.View(opts.runs, sys.stdout)
    seed, left = opts.seed, opts.runs
    for restart in range(RESTARTS_MAX + 1):
        hunt = f"tracer hunt --runs {left}" + (f" --seed {_quote(seed)}"
                                               if seed is not None else "")
        if opts.confirm is not None:
            hunt += f" --confirm {opts.confirm}"
        rc, result, output = drive(debugger, commands + [("do", hunt)], program, opts.args,
                                   on_line=view.line)
        # The debugger failed under a run (a gdb internal error): that run is not counted,
        # and the hunt goes on from the next seed in a new debugger, which is sound again.
        if not (result and result["status"] == "disturbed" and view.spoilt) or \
                restart == RESTARTS_MAX or view.made >= opts.runs:
            break
        seed, left = view.spoilt[-1] + 1, opts.runs - view.made
        print(f"hunt: {debugger.name} failed under a run; going on in a new {debugger.name} "
              f"from seed {seed} ({left} runs left)", flush=True)
    view.close()
    status, line = conclude(debugger, rc, result, output, "hunt")
    if view.spoilt and status == PASSED:
        line = (f"tracer: hunt: no failure in {len(view.done)} runs; {len(view.spoilt)} more "
                f"not counted ({debugger.name} failed under them: seeds "
                f"{', '.join(map(str, view.spoilt))})")
    if opts.junit:
        hunt_view.write_junit(opts.junit, program, view, status, line,
                              result and result.get("report"))
    return status, line


RESTARTS_MAX = 3        # new debuggers a hunt may start after one failed under a run


def _quote(word):
    return shlex.quote(str(word))


def cmd_replay(opts):
    from . import replay
    report = replay.load(opts.report)
    path = report["program"]["path"]
    if not path:
        raise TracerError(f"{opts.report} names no program to rerun")
    program = find_program(path)
    debugger = DEBUGGERS[opts.debugger]
    commands = [("set", "store", opts.store)] if opts.store else []
    commands.append(("do", f"tracer replay {_quote(opts.report)} --runs {opts.runs}"))
    rc, result, output = drive(debugger, commands, program, report["program"]["argv"][1:])
    return conclude(debugger, rc, result, output, "replay")


def cmd_show(opts):
    from . import frontend
    sys.stdout.write(frontend.show_text(opts.report, None) + "\n")
    return PASSED, None


def cmd_export(opts):
    from . import export
    if any(c.isspace() for c in opts.report + opts.output):
        raise TracerError("tracer export: a path with spaces is not supported yet")
    return PASSED, export.export(f"{opts.output} --format {opts.format} --from {opts.report}",
                                 None)


COMMANDS = {"run": cmd_run, "hunt": cmd_hunt, "replay": cmd_replay, "show": cmd_show,
            "export": cmd_export}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse(argv)
        status, line = COMMANDS[opts.command](opts)
    except (UsageError, TracerError) as e:    # one line, named by its command
        status, line = ERROR, str(e) if str(e).startswith("tracer") else f"tracer: {e}"
    except KeyboardInterrupt:
        status, line = ERROR, "tracer: interrupted"
    if line:
        out = sys.stderr if status == ERROR else sys.stdout
        try:
            out.write(line + "\n")
            out.flush()
        except BrokenPipeError:         # (`| head`): the status still says it
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return status
