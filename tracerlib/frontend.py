"""What both front ends say and do the same way, whichever debugger drives: the command
table with its help texts, `tracer status`, `tracer show`, `tracer snapshot`, the report's
yield record and stop descriptions.

A front end supplies the debugger's view (its breakpoints, its threads) as plain values and
callables; nothing here imports gdb or lldb.
"""
import os
import shlex
import textwrap

from . import _core, access, procfs, settings, show
from .yields import AccessBudget
from .run import TracerError

# ---------------------------------------------------------------------------- help texts
# One table of the `tracer` commands: (name, usage, summary, details). Each front end
# registers the commands it supports from it, so both say the same thing.

OVERVIEW = """\
Record the IPC of a process tree: the last messages before it broke.

Tracer stops at every send and receive of pipes, FIFOs, unix and inet sockets, POSIX and
SysV message queues in the program{children}; keeps the last `cap` events in a ring; and
when the program stops for good writes one JSON report with the events, each process's
threads and backtraces, and the bytes still pending in its mailboxes."""

COMMANDS = (
    ("run", "tracer run [ARGS]",
     "Arm and run the program to its end.",
     "When a process is already there (attached, or stopped at your breakpoint) it is\n"
     "continued instead. Returns early only for your own breakpoints or an interrupt.\n"
     "Prints one outcome line with the report's path, and fails (a command error) when\n"
     "the program failed: fatal signal, non-zero exit, timeout. {batch}"),
    ("start", "tracer start",
     "Arm tracing on the current program (now, or at the next run).", ""),
    ("stop", "tracer stop",
     "Disarm: remove every tracer breakpoint.",
     "Your own breakpoints are never touched; what was recorded stays for `tracer show`."),
    ("attach", "tracer attach PID",
     "Attach to a running process and arm.",
     "Then let it go with `{resume}` or `tracer run`. In agent mode (tracer mode agent or\n"
     "auto) the agent is loaded into the process (dlopen, by calls the debugger inserts)\n"
     "and records without a debugger stop per message; where it cannot be (a static\n"
     "program, a thread not waiting in a system call...) breakpoints cover it, and one\n"
     "line says why."),
    ("detach", "tracer detach",
     "Stop tracing an attached process and let it go.",
     "The agent is unbound first (its wrappers out of the program, nothing more recorded),\n"
     "the report is written as at a detach, then the debugger detaches."),
    ("status", "tracer status",
     "Armed or not, event counts, overflow, breakpoints placed, missing functions.", ""),
    ("show", "tracer show [N|FILE]",
     "The last N events of the live ring, or a stored report.",
     "tracer show N: the last N events (all kept ones without N) as a table.\n"
     "tracer show FILE: a stored report, with processes, backtraces and mailboxes."),
    ("snapshot", "tracer snapshot [FILE]",
     "Freeze the recorder and write the report now.",
     "Without FILE it goes to the store; with FILE, to exactly that path (never\n"
     "overwritten). Useful after an interrupt on a hung program. After a failed write it\n"
     "writes the same frozen data again."),
    ("export", "tracer export FILE [--format chrome|html] [--from REPORT]",
     "Export the events for a viewer.",
     "chrome: trace-event JSON for Perfetto / chrome://tracing: a track per thread, flow\n"
     "arrows from sends to the receives that got their bytes, the crash marked.\n"
     "html: one self-contained page with a message sequence diagram, the events, the\n"
     "backtraces and mailboxes. Without --from, the live (or just finished) run."),
    ("sites", "tracer sites [--module CU|LIBRARY | --app] "
     "[--class sync,proc,send,recv,access] [--function NAME...]",
     "List the call sites yields would instrument.",
     "Caller, callee, file:line and address of each, from the DWARF and code of the\n"
     "program and its own shared libraries (those outside /lib and /usr/lib; a library's\n"
     "sites name it).\n"
     "--class access: the shared-access sites instead, loads and stores of global and\n"
     "static variables more than one thread reaches (function, variable, read/write)."),
)


def overview(children):
    """OVERVIEW with `children` filled in, its paragraphs wrapped again."""
    text = OVERVIEW.format(children=children)
    return "\n\n".join(textwrap.fill(" ".join(p.split()), 88) for p in text.split("\n\n"))


SETTINGS_ROWS = (("tracer set NAME VALUE", "Change a setting (validated)."),
                 ("tracer settings", "The settings in force."))
YIELD_SUMMARY = "Yield injection: make the program yield or sleep before interesting calls."
YIELD_DETAILS = ("Yields happen while `tracer run` or `tracer hunt` drives the program. The "
                 "decisions come\nfrom a seeded generator keyed on thread and call order: the "
                 "same seed replays them.")


def help_text(children, settings_line, native_settings=True):
    """(summary line, the rest) of `help tracer`: the overview, the commands, settings_line
    with the settings' names in its {}. Without native settings `tracer set` is listed."""
    summary, rest = overview(children).split("\n", 1)
    names = [s.name for s in settings.SETTINGS]
    settings_line = settings_line.format(("|" if native_settings else ", ").join(names))
    table = command_table(() if native_settings else SETTINGS_ROWS)
    return summary, f"{rest}\n\n{table}\n\n{settings_line}"


def unknown_subcommand(arg):
    return (f"tracer: unknown subcommand '{arg}'; `help tracer` lists them" if arg
            else "tracer: which subcommand? `help tracer` lists them")


def command_table(extra=()):
    """The subcommands as `help tracer` lists them: usage, then what it does."""
    rows = [(usage, summary) for _, usage, summary, _ in COMMANDS] + list(extra)
    lines = []
    for usage, summary in rows:
        if len(usage) > 26:
            lines += [f"  {usage}", f"  {'':26s} {summary}"]
        else:
            lines.append(f"  {usage:26s} {summary}")
    return "\n".join(lines)


def command_help(name, **words):
    """(usage, summary, long text) of a command; words fill the per-debugger blanks."""
    for cname, usage, summary, details in COMMANDS:
        if cname == name:
            long_text = f"{summary}\n\n{usage}"
            if details:
                long_text += "\n\n" + details.format(**words).rstrip()
            return usage, summary, long_text
    raise KeyError(name)


# ---------------------------------------------------------------------------- attach

def attach_pid(arg, debugger):
    """The pid `tracer attach ARG` names, once it is known to exist and be ours to trace."""
    try:
        pid = int(arg)
    except ValueError:
        pid = 0
    if pid <= 0:
        raise TracerError(f"tracer attach takes a process id (a number above 0), not '{arg}'")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise TracerError(f"no process {pid}: check the id with `ps`") from None
    except PermissionError:
        raise TracerError(f"not allowed to trace process {pid}: run {debugger} as its user "
                          "or as root") from None
    tracer = procfs.tracer_of(pid)
    if tracer:
        raise TracerError(f"process {pid} is already traced by process {tracer} "
                          f"({procfs.command_name(tracer)}): detach it there first")
    return pid


# ---------------------------------------------------------------------------- stops

def shell_words(text, quoted=False):
    """Words of a command line as a shell splits them (plain splitting if unbalanced);
    quoted: of the part of text between its first and last double quote (none: no words)."""
    if quoted:
        text = text[text.find('"') + 1:text.rfind('"')] if text.count('"') >= 2 else ""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def frame(pc, function, file, line):
    """One backtrace frame of a report."""
    return {"pc": pc, "function": function or None, "file": file or None, "line": line or None}


def stop(reason, pid, tid=None, signal=None, status=None):
    """The report's `stop` record, as Run.finish takes it."""
    return {"reason": reason, "signal": signal, "status": status, "pid": pid,
            "tid": tid if tid is not None else pid}


def recorder(session):
    return {k: getattr(session, k)
            for k in ("cap", "budget", "payload", "count", "dropped", "overflow")}


def yield_info(policy, sites, opts=None, hot_disabled=0, library_injected=0):
    """The report's `yield` record: policy None when yields are off. sites: the yield sites.
    opts (the `tracer yield on` options) add the site selection, so that `tracer replay`
    selects the same sites; with shared-access sites among the sites, `access_sites` and
    `hot_sites_disabled` (optional keys) say how many, and how many were disabled as hot;
    with sites in the program's shared libraries, `library_sites` and `library_injected`
    (optional keys) how many, and how many of the injections were there (agent mode adds
    the agent's count, Run.take_agent_events)."""
    if policy is None:
        return {"enabled": False, "seed": 0, "strategy": None, "probability": 0.0,
                "sites": 0, "injected": 0}
    info = policy.info
    record = {"enabled": True, "seed": info["seed"], "strategy": info["strategy"],
              "probability": info["probability"], "sites": len(sites),
              "injected": info["injected"]}
    if opts is not None:
        record.update(classes=opts.classes, module=opts.module,
                      functions=list(opts.functions or []))
    accesses = sum(1 for s in sites if access.is_access(s))
    if accesses:
        record.update(access_sites=accesses, hot_sites_disabled=hot_disabled)
    in_libraries = sum(1 for s in sites if s.get("object"))
    if in_libraries:
        record.update(library_sites=in_libraries, library_injected=library_injected)
    return record


def sites_phrase(sites):
    """"3 call sites", "2 call sites and 6 shared-access sites"... for yield messages."""
    if sites and sites[0].get("entry"):
        return f"{len(sites)} functions (no DWARF: at their entry)"
    accesses = sum(1 for s in sites if access.is_access(s))
    calls = len(sites) - accesses
    parts = ([f"{calls} call sites"] if calls or not accesses else []) + \
        ([f"{accesses} shared-access sites"] if accesses else [])
    libraries = sorted({os.path.basename(s["object"]) for s in sites if s.get("object")})
    in_libraries = sum(1 for s in sites if s.get("object"))
    return " and ".join(parts) + (f" ({in_libraries} in {', '.join(libraries)})"
                                  if libraries else "")


# ---------------------------------------------------------------------------- commands

def status_text(armed, run, placed, return_sites, missing, disarming=False,
                hot_path_error=None, notes=()):
    """`tracer status`: placed = catalogue names with an entry breakpoint."""
    lines = [f"tracer: {'armed' if armed else 'not armed'}"
             + (" (budget reached: breakpoints removed)" if disarming else "")]
    placed = sorted(placed)
    lines.append(f"  breakpoints: {len(placed)} functions ({', '.join(placed) or 'none'}), "
                 f"{return_sites} return sites")
    if missing:
        lines.append(f"  not found (cannot be traced): {', '.join(missing)}")
    if run is not None:
        s = run.session
        lines.append(f"  run {run.key}: {show.recorder_line(recorder(s))}")
        lines.append(f"  skipped: {s.not_ipc} calls on files/terminals, {s.nested} nested, "
                     f"{s.unreadable} unreadable; {s.in_flight} calls in flight")
        f = run.filters
        lines.append(f"  filters: trace {f['trace']}, status {f['status']}, endpoint "
                     f"{f['endpoint']}; {s.filtered} calls left out")
        if run.finished:
            lines.append("  " + run.outcome().removeprefix("tracer: "))
    if hot_path_error:
        lines.append(f"  error while recording: {hot_path_error}")
    lines.extend("  " + n for n in notes)
    return "\n".join(lines)


def show_text(arg, run):
    """`tracer show [N|FILE]`."""
    arg = arg.strip()
    if arg and not arg.isdigit():
        try:
            report = _core.load_report(os.path.expanduser(arg))
        except ValueError as e:             # the reader's message names the file
            raise TracerError(f"cannot read report {e}") from None
        except OSError as e:
            raise TracerError(f"cannot read report {arg}: {e.strerror}") from None
        return show.report_text(report)
    if run is None:
        raise TracerError("nothing traced yet: `tracer run` or `tracer start` first")
    events = run.session.events(last=int(arg)) if arg else run.session.events()
    header = show.recorder_line(recorder(run.session))
    return header + "\n" + (show.event_table(events, run.sites) if events else "(no events)")


def snapshot(run, stop_record, processes, path=None):
    """`tracer snapshot [FILE]`: freezes an unfinished run and writes it (stop_record and
    processes() describe the moment); a finished one is written again (to FILE, or the
    store). Returns the path written."""
    if run is None:
        raise TracerError("nothing traced yet: `tracer start` or `tracer run` first")
    path = os.path.expanduser(path) if path else None
    if not run.finished:
        return run.finish(stop_record, processes(), force=True, path=path)
    if run.report_text is None:     # ended under a policy that wrote nothing
        run.compose([])
    return run.store(path)


# ---------------------------------------------------------------------------- yields and hunt

COMMANDS += (
    ("yield on", "tracer yield on [--module CU|LIBRARY | --app] "
     "[--class sync,proc,send,recv,access] [--function NAME...] [--probability P] [--seed S] "
     "[--strategy yield | sleep:MAX_US | taper:MAX_US | delay:MAX_US | pct:DEPTH]",
     "Insert sched_yield()/usleep() before interesting calls.",
     "At each instrumented call site a seeded generator, keyed on thread and call order,\n"
     "decides whether the thread first calls sched_yield() or usleep(1..MAX_US): the same\n"
     "seed replays the same decisions. taper:MAX_US sleeps the same way at a thread's first\n"
     "8 sites, then at its 16th, 32nd, ... delay:MAX_US chooses sites for the whole run:\n"
     "every thread reaching one sleeps there (the site's length, or a quarter of it).\n"
     "--class access adds the shared-access sites (loads\n"
     "and stores of shared globals); a hot one is perturbed less and less, then disabled\n"
     "for the run. pct[:DEPTH] (agent mode): the threads of a process run one at a time by\n"
     "seeded priorities with DEPTH-1 change points (PCT), so one can be held behind another;\n"
     "its scheduling points are the calls and, with --class access, the shared accesses."),
    ("yield off", "tracer yield off", "Remove every instrumented call site.", ""),
    ("yield status", "tracer yield status",
     "Whether yields are on, at how many sites, how many injected.", ""),
    ("replay", "tracer replay [REPORT] [--runs K]",
     "Rerun a stored report's failing run K times and count how often it fails again.",
     "The program must be the report's (it is run with the report's arguments). Its seed,\n"
     "strategy, probability, yield sites (classes, module, functions) and limits (cap,\n"
     "budget, payload, backtrace, mode, timeout) are used again. A run reproduces the\n"
     "failure when it stops the same way: the same fatal signal, a non-zero exit, or a\n"
     "timeout. The first reproducing run keeps a report. Without REPORT: the last run's.\n"
     "Your settings and yields are as they were afterwards.\n"
     "In batch mode the debugger exits 1 when the failure came back, 0 when it did not."),
    ("hunt", "tracer hunt --runs N [--seed S] [--confirm K] [--timeout SEC]",
     "Run the program again and again with seeds S, S+1, ... until it fails.",
     "With yields on, every run uses them. Without, the seeds take turns at three\n"
     "profiles: delays before calls and shared accesses (delay:), PCT (agent mode) and\n"
     "tapering sleeps before calls (taper:); each run's line names its profile.\n"
     "A failure is confirmed: its seed runs K more times (default 2, 0: none); one that\n"
     "does not fail the same way each time is set aside (its report kept) and the hunt\n"
     "goes on for one that does, ending with the best find when the N runs are used up.\n"
     "Keeps the failing run's report and prints the command that replays its seed. In\n"
     "batch mode the debugger exits 1 when a failure was found, 0 when none was."),
)


def yield_on_args(opts, strategy, seed):
    """The `tracer yield on` arguments that select the same sites and policy with `seed`,
    each word quoted for the command line that parses them."""
    words = ["--module", opts.module] if opts.module else ["--app"]
    if opts.functions:
        words += ["--function", *opts.functions]
    words += ["--class", opts.classes, "--probability", str(opts.probability), "--strategy",
              strategy, "--seed", str(seed)]
    return " ".join(shlex.quote(w) for w in words)


def changed_limits(values):
    """"NAME VALUE" of the recorder limits not at their defaults, for a replay command."""
    return [f"{name} {getattr(values, name)}" for name in ("timeout", "cap", "budget", "payload", "mode", *settings.FILTERS)
            if getattr(values, name) != settings.BY_NAME[name].default]


def yield_status_text(policy, sites, hot_disabled=0):
    if policy is None:
        return "tracer: yields off"
    info = policy.info
    hot = (f"; {hot_disabled} hot access sites disabled for this run (after "
           f"{AccessBudget.LIMIT} hits each)" if hot_disabled else "")
    return (f"tracer: yields on at {sites_phrase(sites)}; strategy {info['strategy']}, "
            f"probability {info['probability']}, seed {info['seed']}; "
            f"{info['injected']} injected of {info['points']} decisions{hot}")
