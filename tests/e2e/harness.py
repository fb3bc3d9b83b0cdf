"""End-to-end harness: run the real gdb with the tracer against a fixture program and compare
the report it writes with what the fixture itself wrote down.

A fixture (tests/fixtures/NAME.c) appends one JSON line per IPC call it makes to the file named
by $TRACER_EXPECT (see tests/fixtures/fixture.h); a crashing fixture may also write the bytes it
leaves pending to $TRACER_EXPECT_PENDING. run_gdb() runs

    gdb -q -batch -nx -x gdb/tracer.py -ex 'set tracer store DIR' -ex 'set tracer report always'
        [-ex 'set tracer KEY VALUE' ...] [-ex CMD ...] [-x SCRIPT] -ex 'tracer run'
        [-ex CMD ...] --args PROGRAM ARGS

in a fresh temporary directory, with stdin /dev/null and gdb's stdout/stderr sent to regular
files there (the program inherits them, so its own output is never a pipe message), and returns
gdb's output, exit status, the reports found in DIR and the fixture's expectations.

assert_events_match() is the core check: the report's events, grouped by thread, must be exactly
the fixture's sequence for that thread.
"""

import difflib
import json
import os
import signal
import subprocess
import tempfile
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURE_SRC = REPO / "tests" / "fixtures"
BUILD = REPO / "build" / "fixtures"
TRACER_PY = REPO / "gdb" / "tracer.py"
SCHEMA = REPO / "docs" / "report.schema.json"
GDB = os.environ.get("TRACER_GDB", "gdb")
CC = os.environ.get("CC", "gcc")
CFLAGS = ["-std=gnu11", "-g", "-Wall", "-Wextra", "-Wno-unused-parameter"]
OPTS = ("O0", "O2")

# Names of the default settings the harness relies on when a test does not say otherwise.
DEFAULT_PAYLOAD = 64


# --------------------------------------------------------------------------- fixtures

def fixture_path(name, opt="O0"):
    """build/fixtures/NAME for -O0, build/fixtures/NAME-O2 for -O2 (the Makefile's names)."""
    if opt not in OPTS:
        raise ValueError(f"opt must be one of {OPTS}, not {opt!r}")
    return BUILD / (name if opt == "O0" else f"{name}-O2")


def build_fixture(name, opt="O0"):
    """Compiles one fixture unless its binary is newer than its source and fixture.h (the same
    command as `make fixtures`). Returns the binary's path; raises with gcc's output on error."""
    src = FIXTURE_SRC / f"{name}.c"
    out = fixture_path(name, opt)
    deps = [src, FIXTURE_SRC / "fixture.h"]
    if out.exists() and all(out.stat().st_mtime >= d.stat().st_mtime for d in deps):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    cmd = [CC, *CFLAGS, f"-{opt}", "-o", str(tmp), str(src), "-lpthread", "-lrt"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0 or p.stderr.strip():
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"building fixture {name} (-{opt}) failed or warned:\n"
                           f"$ {' '.join(cmd)}\n{p.stderr}")
    os.replace(tmp, out)
    return out


def all_fixture_names():
    return sorted(p.stem for p in FIXTURE_SRC.glob("*.c"))


def build_all():
    return [build_fixture(n, o) for n in all_fixture_names() for o in OPTS]


def tracer_available():
    """(True, '') when gdb loads gdb/tracer.py and knows `help tracer`, else (False, why)."""
    if not TRACER_PY.exists():
        return False, f"{TRACER_PY} does not exist yet"
    p = subprocess.run([GDB, "-q", "-batch", "-nx", "-x", str(TRACER_PY), "-ex", "help tracer"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    if p.returncode != 0 or "Python Exception" in p.stderr or "Undefined command" in p.stderr:
        return False, f"`gdb -x gdb/tracer.py -ex 'help tracer'` failed:\n{p.stdout}{p.stderr}"
    return True, ""


# --------------------------------------------------------------------------- running gdb

@dataclass
class GdbRun:
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
    leftovers: list = field(default_factory=list)   # pids the harness had to kill after gdb

    @property
    def output(self):
        return self.stdout + self.stderr

    @property
    def report(self):
        """The one report of the run; fails unless exactly one was written."""
        assert len(self.reports) == 1, (
            f"expected exactly one report in {self.store}, found {len(self.reports)}: "
            f"{[str(p) for p in self.report_paths]}\n{self.describe()}")
        return self.reports[0]

    def describe(self, limit=6000):
        """gdb's command line and output, for failure messages."""
        def tail(s):
            return s if len(s) <= limit else "...\n" + s[-limit:]
        return (f"--- gdb command: {' '.join(_shell_quote(a) for a in self.argv)}\n"
                f"--- exit status {self.returncode}, {self.duration:.1f} s, tmp {self.tmp}\n"
                f"--- gdb stdout (with the program's stdout):\n{tail(self.stdout)}\n"
                f"--- gdb stderr (with the program's stderr):\n{tail(self.stderr)}")


def _shell_quote(a):
    a = str(a)
    if a and all(c.isalnum() or c in "-_./=:,+@%" for c in a):
        return a
    return "'" + a.replace("'", "'\\''") + "'"


class GdbTimeout(AssertionError):
    pass


def make_tmp(tmp=None):
    if tmp is None:
        return Path(tempfile.mkdtemp(prefix="tracer-e2e-"))
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


def fixture_env(tmp, env=None):
    """The environment a fixture needs: TRACER_EXPECT and TRACER_EXPECT_PENDING in tmp."""
    e = dict(os.environ)
    e.pop("TRACER_EXPECT", None)
    e.pop("TRACER_EXPECT_PENDING", None)
    e["TRACER_EXPECT"] = str(tmp / "expect.jsonl")
    e["TRACER_EXPECT_PENDING"] = str(tmp / "pending.jsonl")
    e.setdefault("LC_ALL", "C")
    e.update(env or {})
    (tmp / "expect.jsonl").touch()
    return e


def run_gdb(program, args=(), settings=None, commands=(), after=(), env=None, timeout=120,
            script=None, run_command="tracer run", report="always", store=None, tmp=None,
            gdb_args=(), keep=()):
    """Runs gdb with the tracer in batch mode against `program` (a path, or None for no
    program) and returns a GdbRun.

    settings: {key: value} -> -ex 'set tracer KEY VALUE', after store and report.
    commands: extra -ex commands before `script` and `run_command`.
    script:   text of a gdb script, written to tmp/script.gdb and passed with -x at that point.
    run_command: the command that runs the program ('tracer run' by default; None: none).
    after:    -ex commands after run_command.
    report:   value for `set tracer report` (None: leave the default alone).
    store:    the report store directory (default tmp/store).
    keep:     pids not to kill when gdb is done (a program started by the test, for attach);
              anything else still running in tmp after gdb exits is killed and listed in
              run.leftovers.
    """
    tmp = make_tmp(tmp)
    store = Path(store) if store else tmp / "store"
    e = fixture_env(tmp, env)
    argv = [GDB, "-q", "-batch", "-nx", *gdb_args, "-x", str(TRACER_PY),
            "-ex", f"set tracer store {store}"]
    if report is not None:
        argv += ["-ex", f"set tracer report {report}"]
    for k, v in (settings or {}).items():
        argv += ["-ex", f"set tracer {k} {v}"]
    for c in commands:
        argv += ["-ex", c]
    if script is not None:
        sp = tmp / "script.gdb"
        sp.write_text(script)
        argv += ["-x", str(sp)]
    if run_command:
        argv += ["-ex", run_command]
    for c in after:
        argv += ["-ex", c]
    if program is not None:
        argv += ["--args", str(program), *[str(a) for a in args]]

    out_path, err_path = tmp / "gdb.stdout", tmp / "gdb.stderr"
    t0 = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, cwd=tmp, env=e, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        timed_out = False
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)
            rc = proc.wait()
    duration = time.monotonic() - t0
    leftovers = kill_leftovers(tmp, keep)
    run = collect(argv, rc, tmp, store, duration)
    run.leftovers = leftovers
    if timed_out:
        raise GdbTimeout(f"gdb did not finish within {timeout} s and was killed\n"
                         + run.describe())
    return run


def collect(argv, rc, tmp, store, duration=0.0):
    def text(p):
        return p.read_text(errors="replace") if p.exists() else ""
    run = GdbRun(argv=argv, returncode=rc, stdout=text(tmp / "gdb.stdout"),
                 stderr=text(tmp / "gdb.stderr"), tmp=tmp, store=store, duration=duration)
    run.report_paths = sorted(store.glob("*.json")) if store.is_dir() else []
    for p in run.report_paths:
        try:
            run.reports.append(json.loads(p.read_text(encoding="utf-8")))
        except (ValueError, UnicodeDecodeError) as exc:
            raise AssertionError(f"report {p} is not valid UTF-8 JSON: {exc}\n"
                                 + run.describe()) from None
    run.expectations = read_jsonl(tmp / "expect.jsonl")
    run.pending = read_jsonl(tmp / "pending.jsonl")
    return run


def read_jsonl(path):
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            raise AssertionError(f"{path}:{i}: torn or invalid expectation line "
                                 f"(a fixture bug): {exc}: {line!r}") from None
    return out


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def processes_in(tmp):
    """Pids of live processes whose working directory is tmp: everything a run started
    (gdb, the program and its children all start there)."""
    tmp = os.path.realpath(tmp)
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            if os.readlink(f"/proc/{d}/cwd") == tmp:
                pids.append(int(d))
        except OSError:
            pass
    return pids


def kill_leftovers(tmp, keep=()):
    """SIGKILLs what is still running in tmp (a tracer that failed to kill a hung program, a
    gdb that hung), except the pids in keep. Returns the pids it killed."""
    killed = []
    for _ in range(3):
        pids = [p for p in processes_in(tmp) if p not in keep]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    return killed


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def start_program(program, args=(), tmp=None, env=None):
    """Starts a fixture outside any debugger (for attach tests), in tmp with the fixture
    environment and its output in tmp/program.stdout|stderr. Returns (Popen, tmp)."""
    tmp = make_tmp(tmp)
    e = fixture_env(tmp, env)
    out = open(tmp / "program.stdout", "wb")
    err = open(tmp / "program.stderr", "wb")
    p = subprocess.Popen([str(program), *[str(a) for a in args]], cwd=tmp, env=e,
                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    out.close()
    err.close()
    return p, tmp


def wait_for_lines(path, n, timeout=10.0):
    """Waits until the JSON-lines file at path holds at least n lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(path).exists() and len(Path(path).read_text().splitlines()) >= n:
            return True
        time.sleep(0.02)
    return False


# --------------------------------------------------------------------------- checks

_schema_cache = {}


def validate(report):
    """Validates a report against docs/report.schema.json. Returns True when validated, False
    (with a warning) when the schema does not exist yet; raises AssertionError listing every
    violation otherwise."""
    if not SCHEMA.exists():
        warnings.warn(f"{SCHEMA} does not exist yet: report NOT validated against the schema")
        return False
    import jsonschema
    key = SCHEMA.stat().st_mtime
    if key not in _schema_cache:
        schema = json.loads(SCHEMA.read_text())
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        _schema_cache.clear()
        _schema_cache[key] = cls(schema)
    validator = _schema_cache[key]
    errors = sorted(validator.iter_errors(report), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"report violates {SCHEMA.relative_to(REPO)} ({len(errors)} errors):"]
        for err in errors[:30]:
            where = "/".join(str(p) for p in err.absolute_path) or "(top)"
            lines.append(f"  at {where}: {err.message[:300]}")
        raise AssertionError("\n".join(lines))
    return True


_SHORT = {"n": 0x0a, "t": 0x09, "r": 0x0d, '"': 0x22, "\\": 0x5c, "a": 0x07, "b": 0x08,
          "f": 0x0c, "v": 0x0b, "e": 0x1b}


def unescape(s):
    """Inverse of the report's payload escaping: printable ASCII as is, \\n \\t \\r \\" \\\\
    short, \\xHH for any other byte (octal \\NNN and \\a \\b \\f \\v \\e are accepted too).
    Non-ASCII characters, which the escaping never writes, are taken as their UTF-8 bytes."""
    if s is None:
        return b""
    out = bytearray()
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError(f"dangling backslash at the end of {s!r}")
        e = s[i + 1]
        if e == "x":
            h = s[i + 2:i + 4]
            if len(h) != 2 or any(ch not in "0123456789abcdefABCDEF" for ch in h):
                raise ValueError(f"bad \\x escape at {i} in {s!r}")
            out.append(int(h, 16))
            i += 4
        elif e in _SHORT:
            out.append(_SHORT[e])
            i += 2
        elif e in "01234567":
            j = i + 1
            while j < n and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(int(s[i + 1:j], 8) & 0xff)
            i = j
        else:
            raise ValueError(f"unknown escape \\{e} at {i} in {s!r}")
    return bytes(out)


def escape(b):
    """Escapes bytes the way reports do (for readable diffs)."""
    out = []
    for c in b:
        if c == 0x0a:
            out.append("\\n")
        elif c == 0x09:
            out.append("\\t")
        elif c == 0x0d:
            out.append("\\r")
        elif c == 0x22:
            out.append('\\"')
        elif c == 0x5c:
            out.append("\\\\")
        elif 0x20 <= c <= 0x7e:
            out.append(chr(c))
        else:
            out.append(f"\\x{c:02x}")
    return "".join(out)


_FIELDS = ("pid", "dir", "fn", "fd", "endpoint", "len", "ret", "errno", "data", "truncated")


def _norm_report_event(ev):
    try:
        data = unescape(ev.get("data"))
    except ValueError as exc:
        data = f"<UNDECODABLE: {exc}>".encode()
    return {"pid": ev.get("pid"), "dir": ev.get("dir"), "fn": ev.get("fn"), "fd": ev.get("fd"),
            "endpoint": ev.get("endpoint"), "len": ev.get("len"), "ret": ev.get("ret"),
            "errno": ev.get("errno"), "data": data, "truncated": ev.get("truncated")}


def _norm_expected(ex, payload):
    full = bytes.fromhex(ex["data_hex"])
    return {"pid": ex["pid"], "dir": ex["dir"], "fn": ex["fn"], "fd": ex["fd"],
            "endpoint": ex["endpoint"], "len": ex["len"], "ret": ex["ret"],
            "errno": ex["errno"], "data": full[:payload], "truncated": len(full) > payload,
            "_prefix": bool(ex.get("endpoint_prefix"))}


def _same(exp, got):
    for k in _FIELDS:
        if k == "endpoint" and exp["_prefix"]:
            if not (isinstance(got["endpoint"], str) and got["endpoint"].startswith(exp["endpoint"])):
                return False
        elif exp[k] != got[k]:
            return False
    return True


def _line(ev, prefix=False):
    ep = ev["endpoint"] + ("*" if prefix else "")
    return (f"pid={ev['pid']} {ev['dir']} {ev['fn']} fd={ev['fd']} {ep} len={ev['len']} "
            f"ret={ev['ret']} errno={ev['errno']} trunc={ev['truncated']} "
            f"\"{escape(ev['data']) if isinstance(ev['data'], bytes) else ev['data']}\"")


def group_by_tid(items):
    g = OrderedDict()
    for it in items:
        g.setdefault(it["tid"], []).append(it)
    return g


def assert_events_match(report, expectations, payload=DEFAULT_PAYLOAD, mode="exact",
                        ignore_unreturned=False, min_events=0):
    """The report's events, grouped by tid, must match the expected sequences.

    mode "exact":  each tid's events equal its expected sequence.
           "suffix": each tid's events equal the LAST k expected calls of that tid (attach).
           "prefix": each tid's events equal the FIRST k expected calls (the ring froze before
                     the program stopped making calls).
    Always: every event's tid has expectations; with "exact", every expected tid has events.
    Fields compared: pid, dir, fn, fd, endpoint (by prefix where the expectation says
    endpoint_prefix), len, ret, errno, data (the first `payload` bytes), truncated.
    ignore_unreturned: drop events whose ret is null (still in the call when the ring froze).
    min_events: in "suffix"/"prefix" modes, each reported tid must have at least this many.
    Raises AssertionError with a per-thread diff."""
    events = list(report.get("events") or [])
    if ignore_unreturned:
        events = [e for e in events if e.get("ret") is not None]
    got = group_by_tid(events)
    want = group_by_tid(expectations)
    problems = []

    for tid in got:
        if tid not in want:
            lines = "\n".join("    " + _line(_norm_report_event(e)) for e in got[tid][:20])
            problems.append(f"tid {tid}: {len(got[tid])} events reported for a thread that "
                            f"made no expected call:\n{lines}")
    for tid, exp_raw in want.items():
        exp = [_norm_expected(x, payload) for x in exp_raw]
        rep = [_norm_report_event(e) for e in got.get(tid, [])]
        if mode == "exact":
            sel = exp
        elif mode == "suffix":
            if not rep:
                continue
            sel = exp[-len(rep):] if len(rep) <= len(exp) else exp
        elif mode == "prefix":
            if not rep:
                continue
            sel = exp[:len(rep)]
        else:
            raise ValueError(f"unknown mode {mode!r}")
        if mode != "exact" and len(rep) < min_events:
            problems.append(f"tid {tid}: only {len(rep)} events reported, expected at least "
                            f"{min_events} ({mode} of {len(exp)} expected calls)")
        if len(sel) == len(rep) and all(_same(a, b) for a, b in zip(sel, rep)):
            continue
        a = [_line(x, x["_prefix"]) for x in sel]
        b = [_line(x) for x in rep]
        # Lines that match modulo an endpoint prefix must not show up as differences.
        for i in range(min(len(sel), len(rep))):
            if _same(sel[i], rep[i]):
                b[i] = a[i]
        diff = "\n".join(difflib.unified_diff(a, b, "expected (fixture)", "reported (tracer)",
                                              lineterm="", n=2))
        problems.append(f"tid {tid} (pid {exp_raw[0]['pid']}): {len(sel)} expected, "
                        f"{len(rep)} reported ({mode}; '*' = endpoint compared by prefix)\n"
                        f"{diff}")
    if problems:
        raise AssertionError("events do not match the fixture's expectations:\n\n"
                             + "\n\n".join(problems))


def assert_sites(report, source_name, allow_missing=False):
    """Every event's call site is in the fixture's source file, with a line number."""
    bad = []
    for ev in report.get("events") or []:
        site = ev.get("site") or {}
        f, line = site.get("file"), site.get("line")
        if f is None and allow_missing:
            continue
        if not f or os.path.basename(f) != source_name or not line or line <= 0:
            bad.append(f"seq {ev.get('seq')} {ev.get('fn')}: site {site}")
    assert not bad, (f"{len(bad)} events without a call site in {source_name}:\n  "
                     + "\n  ".join(bad[:15]))


def assert_recorder(report, **want):
    """recorder.<key> == value for each keyword."""
    rec = report.get("recorder") or {}
    diffs = {k: (v, rec.get(k)) for k, v in want.items() if rec.get(k) != v}
    assert not diffs, "recorder fields differ (expected, reported): " + repr(diffs) + \
        f"\nrecorder: {rec}"


def assert_recorder_consistent(report):
    """Counters that must always hold: events == min(count, cap), dropped == count - events,
    seq numbers increasing, t_us non-decreasing, every event frozen in the ring."""
    rec = report["recorder"]
    evs = report.get("events") or []
    assert rec["count"] >= len(evs), rec
    assert len(evs) <= rec["cap"], (len(evs), rec)
    assert len(evs) == min(rec["count"], rec["cap"]), (len(evs), rec)
    assert rec["dropped"] == rec["count"] - len(evs), (len(evs), rec)
    seqs = [e["seq"] for e in evs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"seq not increasing: {seqs}"
    if evs:
        assert seqs[-1] == rec["count"] - 1, (seqs[-1], rec)
    ts = [e["t_us"] for e in evs]
    assert ts == sorted(ts), f"t_us not monotonic: {ts}"


def assert_gdb_sane(run):
    """gdb did not crash, hit an internal error or print a Python traceback."""
    # ("Segmentation fault" alone is gdb reporting the program's SIGSEGV: not gdb trouble.)
    bad = ("internal-error", "Fatal signal", "Python Exception", "Traceback (most recent",
           "A problem internal to GDB", "A fatal error internal to GDB")
    found = [b for b in bad if b in run.output]
    assert not found, f"gdb trouble ({found}):\n" + run.describe()
    assert run.returncode >= 0, f"gdb killed by signal {-run.returncode}\n" + run.describe()


def signal_name(sig):
    """'SIGSEGV' for 11 or 'SIGSEGV'; None for None/0."""
    if sig in (None, 0):
        return None
    if isinstance(sig, str):
        return sig if sig.startswith("SIG") else "SIG" + sig
    return signal.Signals(sig).name


def process(report, pid):
    for p in report.get("processes") or []:
        if p.get("pid") == pid:
            return p
    raise AssertionError(f"pid {pid} not among the report's processes "
                         f"{[p.get('pid') for p in report.get('processes') or []]}")


def frame_functions(thread):
    return [f.get("function") or "" for f in thread.get("backtrace") or []]


def assert_mailboxes_match(report, pending, payload=DEFAULT_PAYLOAD):
    """The mailboxes holding bytes (pending > 0) are exactly the expected ones: same pid, fd,
    endpoint (or prefix), pending == byte count, and a preview equal to the first bytes."""
    problems = []
    have = {}
    for p in report.get("processes") or []:
        for m in p.get("mailboxes") or []:
            if (m.get("pending") or 0) > 0:
                have[(p["pid"], m.get("fd"))] = m
    for exp in pending:
        key = (exp["pid"], exp["fd"])
        data = bytes.fromhex(exp["data_hex"])
        m = have.pop(key, None)
        if m is None:
            problems.append(f"no mailbox with pending bytes for pid {key[0]} fd {key[1]} "
                            f"(expected {len(data)} bytes {escape(data[:payload])!r})")
            continue
        ep = m.get("endpoint") or ""
        if exp.get("endpoint_prefix") and not ep.startswith(exp["endpoint"]):
            problems.append(f"pid {key[0]} fd {key[1]}: endpoint {ep!r} does not start with "
                            f"{exp['endpoint']!r}")
        elif not exp.get("endpoint_prefix") and ep != exp["endpoint"]:
            problems.append(f"pid {key[0]} fd {key[1]}: endpoint {ep!r} != {exp['endpoint']!r}")
        if m.get("pending") != len(data):
            problems.append(f"pid {key[0]} fd {key[1]}: pending {m.get('pending')} != "
                            f"{len(data)}")
        try:
            preview = unescape(m.get("data"))
        except ValueError as exc:
            problems.append(f"pid {key[0]} fd {key[1]}: undecodable data: {exc}")
            continue
        if not preview or preview != data[:len(preview)]:
            problems.append(f"pid {key[0]} fd {key[1]}: preview {escape(preview)!r} is not "
                            f"a prefix of the pending {escape(data)!r}")
        want_trunc = len(preview) < len(data)
        if bool(m.get("truncated")) != want_trunc:
            problems.append(f"pid {key[0]} fd {key[1]}: truncated={m.get('truncated')} with "
                            f"{len(preview)} of {len(data)} bytes shown")
        if len(preview) < min(len(data), payload):
            problems.append(f"pid {key[0]} fd {key[1]}: preview holds {len(preview)} bytes, "
                            f"expected {min(len(data), payload)}")
        if m.get("approx") is not True:
            problems.append(f"pid {key[0]} fd {key[1]}: approx is {m.get('approx')!r}, "
                            f"not true")
    for key, m in have.items():
        problems.append(f"unexpected mailbox with pending bytes: pid {key[0]} fd {key[1]}: {m}")
    if problems:
        boxes = json.dumps([{"pid": p.get("pid"), "mailboxes": p.get("mailboxes")}
                            for p in report.get("processes") or []], indent=1)[:4000]
        raise AssertionError("mailboxes do not match:\n  " + "\n  ".join(problems)
                             + f"\nreport's mailboxes: {boxes}")
