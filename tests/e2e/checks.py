"""The assertion helpers of the end-to-end tests, for runs of either debugger (a
controller.Run): one module, used by every test file.

assert_events_match() is the core check: the report's events, grouped by thread, must be exactly
the fixture's sequence for that thread. assert_report / assert_exited / assert_full_trace are
the steps most tracing tests share.
"""

import difflib
import json
import os
import signal
import warnings
from collections import OrderedDict

from harness import REPO, pid_alive

SCHEMA = REPO / "docs" / "report.schema.json"
DEFAULT_PAYLOAD = 64           # the payload setting's default

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
                        ignore_unreturned=False, min_events=0, interrupted=False):
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
    interrupted: only for a program stopped by an interrupt while it ran ("prefix" mode): a
                 thread may hold ONE more event than the fixture wrote down, its last - the
                 interrupt landed after the traced call returned and before the fixture wrote
                 that call's expectation line. Every other event is compared as usual.
    Raises AssertionError with a per-thread diff."""
    if interrupted and mode != "prefix":
        raise ValueError("interrupted applies to mode 'prefix' only")
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
            if interrupted and len(rep) == len(exp) + 1:
                rep = rep[:-1]          # the call whose expectation line was not written yet
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


# --------------------------------------------------------------------------- steps most tests share

def assert_report(run, program=None):
    """The debugger stayed sane, exactly one report was written, it is schema-valid, version 1,
    with the debugger's banner (and, given `program`, that program's path). Returns it."""
    run.debugger.assert_sane(run)
    rep = run.report
    validate(rep)
    assert rep["version"] == 1
    assert run.debugger.banner.match(rep["debugger"]), rep["debugger"]
    mode = getattr(run, "mode", "breakpoint")
    mode = "agent" if mode == "auto" else mode      # the fixtures are dynamic programs
    assert rep.get("mode") == mode, (rep.get("mode"), mode)
    if run.debugger.name == "lldb" and mode == "breakpoint":   # its documented limitation
        assert "forked children not traced" in rep["debugger"], rep["debugger"]
    if program is not None:
        assert rep["program"]["path"].endswith(os.path.basename(str(program))), rep["program"]
    return rep


def assert_exited(run, rep, status=0):
    """The program exited with `status`, no fixture check failed, and the batch debugger's own
    exit status says whether the program failed."""
    stop = rep["stop"]
    assert stop["reason"] == "exit" and stop["status"] == status, (
        f"stop {stop}, expected a normal exit with status {status}\n" + run.describe())
    assert "FIXTURE-FAIL" not in run.output, run.describe()
    assert (run.returncode == 0) == (status == 0), (
        f"{run.debugger.name} exit status {run.returncode} for a program exiting {status}\n"
        + run.describe())


def assert_full_trace(run, rep, source, payload=DEFAULT_PAYLOAD, expectations=None):
    """Everything the program did is in the report: exact events, counters, call sites (in
    `source`, or - source None, calls made in several files - each with a file and a line).
    `expectations` defaults to all the fixture wrote down."""
    exp = run.expectations if expectations is None else expectations
    assert exp, "the fixture wrote no expectations\n" + run.describe()
    assert_events_match(rep, exp, payload=payload)
    assert_recorder(rep, count=len(exp), dropped=0, overflow=False, payload=payload)
    assert_recorder_consistent(rep)
    assert rep["program"]["pid"] in {e["pid"] for e in exp}
    if source:
        assert_sites(rep, source)
    else:
        assert all(e["site"]["file"] and e["site"]["line"] for e in rep["events"]), \
            [e["site"] for e in rep["events"]]


def pids_of(run):
    """{pid: {tids}} of the program's processes, from the fixture's expectations."""
    out = {}
    for e in run.expectations:
        out.setdefault(e["pid"], set()).add(e["tid"])
    return out


def assert_no_leftovers(run):
    """Nothing the run started is still alive (the controller killed leftovers; it must not
    have had to)."""
    alive = [p for p in pids_of(run) if pid_alive(p)]
    assert not alive, f"processes still alive after the debugger exited: {alive}\n" + \
        run.describe()
    assert not run.leftovers, (f"processes left running after the debugger exited (killed "
                               f"by the controller): {run.leftovers}\n" + run.describe())


def assert_command_error(run, message):
    """The debugger printed `message` as a command error (its own prefix in front)."""
    want = run.debugger.error_prefix + message
    assert want in run.stderr, f"no error {want!r}\n" + run.describe()
