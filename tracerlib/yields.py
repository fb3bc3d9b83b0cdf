"""Yield injection, debugger-neutral: which call sites, which decisions, which registers.

The debugger stops a thread at an instrumented call site (before the call instruction). If
the seeded policy says so, the front end makes the thread call sched_yield() or usleep(N)
first: it saves the registers, pushes the site's own address as a return address, points the
pc at the function, and continues. The inserted call returns to the site, the debugger stops
there again, the front end restores the registers and the real call proceeds. Other threads
run all the while: that is the perturbation.
"""
import argparse
import collections
import json
import os
import shlex
import struct
import subprocess
import zlib

from . import _core, access, elf_symbols, objects
from .run import TracerError

# Caller-saved registers of the SysV x86-64 ABI (the inserted call may change them) plus the
# two it changes on purpose. Restored after the inserted call returns, in this order: rsp
# last, since gdb writes `$reg` into the selected frame, and moving rsp can make gdb select
# another frame than the innermost for the writes after it.
SAVED_REGISTERS = ("rip", "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
                   "eflags", "rsp")

CATALOGUE = _core.catalogue()


class Instrumenter:
    """Which call sites get a yield and what is inserted there.

    predicate(module, function) -> bool: module is the compilation unit holding the call,
    function the callee's name. insert: "yield" or "sleep:MAX_US", used instead of
    `--strategy`. Without one, every call to a catalogue function of `--class` counts.
    """

    def __init__(self, predicate=None, insert=None):
        self.predicate = predicate
        self.insert = insert


_custom = None


def set_instrumenter(predicate=None, insert=None):
    """Installs a custom instrumenter (no arguments: back to the default). From gdb:
    `python import tracerlib.yields as y; y.set_instrumenter(lambda m, f: f == "sem_post")`."""
    global _custom
    _custom = Instrumenter(predicate, insert) if predicate or insert else None


def custom_instrumenter():
    return _custom


def strategy_for(opts):
    """The strategy in force: a custom instrumenter's insert, else --strategy."""
    return _custom.insert if _custom and _custom.insert else opts.strategy


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise TracerError(f"{self.prog}: {message}")


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: '{text}'") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, not {text}")
    return value


def _seed(text):
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: '{text}'") from None
    if not 0 <= value < 2 ** 64:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2**64-1, not {text}")
    return value


def _selection_options(parser):
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--module", help="only call sites in this compilation unit or shared "
                       "library (by name or path)")
    scope.add_argument("--app", action="store_true",
                       help="call sites in the program and its own shared libraries (the "
                       "default)")
    parser.add_argument("--class", dest="classes", default="sync,proc,send,recv",
                        help="comma-separated: send, recv, sync, proc, access")
    parser.add_argument("--function", dest="functions", nargs="+", default=None,
                        help="only calls to these functions (access: only accesses in them)")


def parse_sites_args(arg):
    parser = _Parser(prog="tracer sites", add_help=False)
    _selection_options(parser)
    return parser.parse_args(shlex.split(arg))


def parse_yield_on_args(arg):
    parser = _Parser(prog="tracer yield on", add_help=False)
    _selection_options(parser)
    parser.add_argument("--probability", type=_probability, default=0.5)
    parser.add_argument("--seed", type=_seed, default=0)
    parser.add_argument("--strategy", default="sleep:1000",
                        help="yield (sched_yield), sleep:MAX_US (usleep of 1..MAX_US), "
                        "taper:MAX_US (sleep at a thread's first 8 points, then its 16th, "
                        "32nd...), delay:MAX_US (sites chosen per run, 3/16..1 of MAX_US) or "
                        "pct[:DEPTH] (agent mode: threads run by seeded priority)")
    return parser.parse_args(shlex.split(arg))


def function_names(classes, functions):
    """The callee names a selection means: catalogue functions of `classes`, or `functions`."""
    mask = _core.parse_classes(classes)      # raises ValueError on an unknown class
    by_class = [c["name"] for c in CATALOGUE
                if mask & _core.parse_classes(c["class"])]
    if functions:
        return list(functions)
    return by_class


ACCESS = _core.parse_classes("access")


def _worker(path, *options):
    """Runs dwarf_worker.py on path: its JSON output, or TracerError."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        proc = subprocess.run([SiteIndex.WORKER_PYTHON, "-m", "tracerlib.dwarf_worker",
                               *options, path],
                              cwd=root, capture_output=True, text=True, timeout=300)
        data = json.loads(proc.stdout or "{}")
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        raise TracerError(f"cannot index the DWARF of {path}: {e}") from None
    if "error" in data or "sites" not in data:
        detail = data.get("error") or proc.stderr.strip().splitlines()[-1:] or "no output"
        raise TracerError(f"cannot read the DWARF of {path}: {detail}")
    return data


class SiteIndex:
    """The call sites of one object - the program, or one of its shared libraries - from
    its DWARF and code, indexed out of process (see dwarf_worker.py for why), cached per file
    and modification time; the program's shared-access sites (access.py) computed the first
    time they are asked for. A library's sites carry its path as their `object` (None: the
    program's)."""

    _cache = {}
    CACHE_MAX = 32
    WORKER_PYTHON = "/usr/bin/python3"   # the interpreter the core is built for

    def __init__(self, path, library=False):
        self.path = path
        self.library = library
        data = _worker(path)
        self.has_debug_info = data["has_debug_info"]
        self.units = data["units"]
        self.all_sites = data["sites"]
        for site in self.all_sites:
            site["object"] = path if library else None
        self._access = None

    def access_sites(self):
        if self._access is None:
            self._access = _worker(self.path, "--access")["sites"]
            for site in self._access:
                site["object"] = None
        return self._access

    @classmethod
    def of(cls, path, library=False):
        key = (path, os.stat(path).st_mtime_ns, library)
        if key not in cls._cache:
            if len(cls._cache) >= cls.CACHE_MAX:
                cls._cache.clear()
            cls._cache[key] = cls(path, library)
        return cls._cache[key]

    def libraries(self):
        """The indexes of the program's own shared libraries (objects.py says which); one
        that cannot be indexed adds no site (it must not keep the program's from working)."""
        found = []
        for path in objects.dependencies(self.path):
            try:
                found.append(SiteIndex.of(path, library=True))
            except (TracerError, OSError):
                pass
        return found

    def find_module(self, name):
        """A compilation unit by its name or a suffix of its path; errors name the choices."""
        exact = [u for u in self.units if u == name]
        if exact:
            return exact[0]
        matches = [u for u in self.units if u.endswith("/" + name) or u.endswith(name)]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(self.units) or "none"
        if matches:
            raise TracerError(f"module '{name}' is ambiguous ({', '.join(matches)}): "
                              "give more of its path")
        raise TracerError(f"no module '{name}' in the program; modules: {known}")

    def resolve_module(self, name):
        """`--module NAME`: ([the object indexes], compilation unit or None). NAME is a
        compilation unit of the program, else a library the program loads (its own or a
        system one, by file name, stem or path; or the path of any shared object, such as
        one it dlopen()s), else a compilation unit of one of its own libraries."""
        try:
            return [self], self.find_module(name)
        except TracerError as not_unit:
            if "ambiguous" in str(not_unit):
                raise
            problem = not_unit
        loaded = objects.dependencies(self.path, own_only=False)
        named = [p for p in loaded if objects.matches(p, name)]
        if not named and "/" in name and os.path.isfile(name):
            named = [os.path.realpath(name)]
        if len(named) > 1:
            raise TracerError(f"module '{name}' is ambiguous ({', '.join(named)}): give its "
                              "path")
        if named:
            return [SiteIndex.of(named[0], library=True)], None
        for lib in self.libraries():
            try:
                return [lib], lib.find_module(name)
            except TracerError:
                pass
        if not self.has_debug_info:
            raise TracerError(f"{self.path} has no DWARF (build it with -g), so it has no "
                              "modules; use --app")
        if loaded:
            raise TracerError(f"{problem}; libraries: "
                              f"{', '.join(os.path.basename(p) for p in loaded)}")
        raise problem

    def select(self, opts):
        """Call sites, then shared-access sites, matching the options; raises TracerError
        naming what exists. --app (the default): the program's and its own libraries'."""
        try:
            names = set(function_names(opts.classes, opts.functions))
            want_access = _core.parse_classes(opts.classes) & ACCESS
        except ValueError as e:
            raise TracerError(str(e)) from None
        if opts.module:
            indexes, module = self.resolve_module(opts.module)
            if not indexes[0].has_debug_info:
                raise TracerError(f"{indexes[0].path} has no DWARF (build it with -g): it has "
                                  "no call sites to select")
        elif self.has_debug_info:
            indexes, module = [self] + self.libraries(), None
        else:                           # function entries: every object's calls meet there
            indexes, module = [self], None
        calls = [s for ix in indexes for s in ix.all_sites]
        shared = self.access_sites() if want_access and self.has_debug_info and \
            self in indexes else []
        if opts.functions:
            called = {s["callee"] for s in calls if s["callee"]}
            holding = {s["caller"] for s in shared}
            missing = [f for f in opts.functions if f not in called | holding]
            if missing:
                raise TracerError(f"no call to {', '.join(missing)} in the program; it calls: "
                                  f"{', '.join(sorted(called))}")
        sites = [s for s in calls
                 if s["callee"] in names and (module is None or s["module"] == module)]
        accesses = [s for s in shared if (module is None or s["module"] == module)
                    and (not opts.functions or s["caller"] in opts.functions)]
        custom = custom_instrumenter()
        if custom and custom.predicate:
            sites = [s for s in sites if custom.predicate(s["module"], s["callee"])]
            accesses = [s for s in accesses if custom.predicate(s["module"], s["variable"])]
        if not self.has_debug_info and not opts.module:
            return function_entries(sorted({s["callee"] for s in sites}))
        # Only sites whose call instruction is known and inside a named function can be
        # placed (as FUNCTION+OFFSET, which gdb relocates for PIE programs).
        return [s for s in sites if s["call_pc"] and s["caller"] and not s["tail"]] + \
            [s for s in accesses if s["caller"]]


def function_entries(names):
    """Without DWARF there are no callers to name: yield at the entry of the called functions
    themselves (every call, from the program and its libraries, goes through there)."""
    return [{"caller": None, "callee": name, "file": None, "line": 0, "call_pc": 0,
             "return_pc": 0, "module": None, "caller_low_pc": 0, "tail": False,
             "from_code": True, "inlined": False, "entry": True} for name in names]


def site_key(site):
    """What the policy's decisions are keyed on: stable across runs and load addresses. A
    library's site: its file address with its library's name (crc32) above it."""
    if site.get("object"):
        return site["call_pc"] ^ (object_tag(site["object"]) << 32)
    return site["call_pc"] or zlib.crc32(site["callee"].encode())


def object_tag(path):
    """A library's part of its sites' keys: its file name, so the same across builds in
    other directories (the agent names the library the same way)."""
    return zlib.crc32(os.path.basename(path).encode())


def site_location(site, program, pid=0):
    """A gdb breakpoint location that follows the program's load address: SYMBOL+OFFSET,
    with a symbol the ELF table names once (DWARF's caller name may be a C++ short name gdb
    cannot find, or a static function's name that several files use). A library's site is
    at its address in process pid, None while the library is not loaded there (a symbol of
    the library may name the program's PLT entry before it is)."""
    if site.get("entry"):
        return site["callee"]
    if site.get("object"):
        bias = objects.load_bias(pid, site["object"]) if pid else None
        return None if bias is None else f"*{bias + site['call_pc']:#x}"
    found = elf_symbols.anchor(program, site["call_pc"], site["caller_low_pc"])
    if found is None:
        return f"*{site['caller']}+{site['call_pc'] - site['caller_low_pc']}"
    symbol, offset = found
    return f"*'{symbol}'{offset:+d}"


def describe(site):
    where = f"{os.path.basename(site['file'])}:{site['line']}" if site["file"] else "?"
    return where


def sites_table(sites, opts=None):
    """The call-site table, the shared-access one, or both, as the options' classes ask (an
    empty table says so rather than vanish)."""
    mask = _core.parse_classes(opts.classes) if opts else 0
    calls = [s for s in sites if not access.is_access(s)]
    accesses = [s for s in sites if access.is_access(s)]
    tables = []
    if calls or not mask & ACCESS or mask & ~ACCESS or (opts and opts.functions and not
                                                        accesses):
        tables.append(_calls_table(calls))
    if accesses or mask & ACCESS:
        tables.append(access.table(accesses))
    return "\n\n".join(tables)


def _calls_table(sites):
    """caller, callee, file:line, address (a file address in its object) and, when some
    site is in a library, the library's file name (blank for the program's own code)."""
    rows = [("caller", "callee", "file:line", "address", "library")]
    for s in sites:
        if s.get("entry"):
            rows.append(("(any)", s["callee"], "-", "function entry", ""))
        else:
            rows.append((s["caller"] or "?", s["callee"] or "?", describe(s),
                         f"{s['call_pc']:#x}", os.path.basename(s.get("object") or "")))
    if not any(s.get("object") for s in sites):
        rows = [r[:4] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if any(s.get("entry") for s in sites):
        return "\n".join(lines + [f"{len(sites)} functions: the program has no DWARF (build "
                                  "with -g for call sites), so yields go on the functions"])
    return "\n".join(lines + [f"{len(sites)} call sites"])


RED_ZONE = 128                  # bytes below rsp a leaf function may use (SysV x86-64 ABI)


def insertion(regs, pc, target, argument):
    """The register and memory changes that make a thread stopped at `pc` call
    target(argument) and come back to `pc`: (writes {reg: value}, (address, bytes)); see
    call_frame."""
    writes, memory = call_frame(regs, pc, target, (argument,))
    return writes, memory[0]


ARGUMENT_REGISTERS = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")


def call_frame(regs, return_pc, target, args, data=b""):
    """The register and memory changes that make a stopped thread call target(*args) and
    return to `return_pc`; `data` (a string argument, say) is copied onto the stack, and
    its address is data_address(regs, data).

    regs: {name: int} of SAVED_REGISTERS. Returns (writes {reg: value}, [(address, bytes)]).
    The stack pointer at the inserted function's entry must be 8 mod 16 (as after a call
    from an aligned frame). Below the current stack pointer, a leaf function may keep data
    in its 128-byte red zone (an access site can be anywhere in one, a system call wrapper
    is a leaf): the data and the inserted frame go below it."""
    below = data_address(regs, data)
    sp = ((below - 16) & ~0xF) | 8
    writes = dict(zip(ARGUMENT_REGISTERS, args))
    writes.update({"rip": target, "rsp": sp})       # rsp last: see SAVED_REGISTERS
    memory = [(sp, struct.pack("<Q", return_pc))]
    return writes, memory + ([(below, data)] if data else [])


def data_address(regs, data):
    return (regs["rsp"] - RED_ZONE - len(data)) & ~0xF


def plan(program, arg):
    """`tracer yield on ARG` for `program`: (options, a fresh policy, the sites to instrument).
    Raises TracerError for bad options or when nothing matches."""
    opts = parse_yield_on_args(arg)
    index = SiteIndex.of(program)
    try:
        policy = _core.YieldPolicy(seed=opts.seed, probability=opts.probability,
                                   strategy=strategy_for(opts))
    except ValueError as e:
        raise TracerError(str(e)) from None
    sites = index.select(opts)
    if not sites:
        what = "site" if _core.parse_classes(opts.classes) & ACCESS else "call site"
        raise TracerError(f"no {what} matches: `tracer sites` lists the candidates")
    return opts, policy, sites


class AccessBudget:
    """What a hot shared-access site costs: every hit of its breakpoint is a debugger stop.
    The first FULL hits of a site in a run go to the policy; after that only hits 16, 32,
    64... (a rate that halves as the site stays hot); at LIMIT hits its breakpoint is
    disabled for the rest of the run. Deterministic, so a seed still replays."""
    FULL = 8
    LIMIT = 256
    DECIDE, SKIP, DISABLE = "decide", "skip", "disable"

    def __init__(self):
        self.hits = collections.Counter()
        self.disabled = set()           # site keys whose breakpoint is off for this run

    def hit(self, key):
        n = self.hits[key] = self.hits[key] + 1
        if n >= self.LIMIT:
            return self.DISABLE
        return self.DECIDE if n <= self.FULL or n & (n - 1) == 0 else self.SKIP

    def new_run(self):
        """True when breakpoints were disabled and must be placed again."""
        again = bool(self.disabled)
        self.hits.clear()
        self.disabled.clear()
        return again
