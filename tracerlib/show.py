"""Text views of the recorder for people: the event table and a stored report."""
import errno
import unicodedata

from . import _core


def errno_name(number):
    """EAGAIN for 11; `e4242` for a number the system does not name, `errno ?` for -1 (the
    errno could not be read)."""
    if number is None or number < 0:
        return "errno ?"
    return errno.errorcode.get(number, f"e{number}")


def display_width(text):
    """Columns `text` takes on a terminal: wide (East Asian) characters two, combining
    marks and other zero-width characters none, everything else one."""
    width = 0
    for c in text:
        if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return width


def align(rows):
    """Rows of cells as lines with every column as wide as its widest cell (in display
    columns), two spaces between columns, no trailing blanks."""
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c + " " * (w - display_width(c)) for c, w in zip(r, widths))
                     .rstrip() for r in rows)


def preview(data, width=32):
    """A payload as the report spells it (escaped), cut to width characters."""
    text = _core.escape(data) if isinstance(data, (bytes, bytearray)) else (data or "")
    return text if len(text) <= width else text[:width - 1] + "…"


def _site(ev, sites=None):
    site = ev.get("site")
    if isinstance(site, dict):
        frame = site
    else:
        frame = (sites or {}).get(site) or {}
    if frame.get("file"):
        return f"{frame['file'].rsplit('/', 1)[-1]}:{frame.get('line') or '?'}"
    return frame.get("function") or (f"{site:#x}" if isinstance(site, int) else "")


def event_table(events, sites=None):
    """Aligned columns: t_us, pid/tid, dir, fn, endpoint, len/ret, payload, site."""
    rows = [("t_us", "pid/tid", "dir", "fn", "endpoint", "len/ret", "payload", "site")]
    for ev in events:
        if ev["ret"] is None:
            ret = "…"
        elif ev["ret"] < 0:
            ret = f"{ev['ret']} {errno_name(ev['errno'])}"
        else:
            ret = str(ev["ret"])
        data = preview(ev["data"]) + ("…" if ev["truncated"] else "")
        rows.append((str(ev["t_us"]), f"{ev['pid']}/{ev['tid']}", ev["dir"], ev["fn"] or "?",
                     ev["endpoint"] or "?", f"{ev['len']}/{ret}", data, _site(ev, sites)))
    return align(rows)


def recorder_line(rec):
    return (f"cap {rec['cap']}, budget {rec['budget']}, payload {rec['payload']}; "
            f"{rec['count']} recorded, {rec['dropped']} dropped"
            + (", OVERFLOW: budget reached, tracing stopped" if rec["overflow"] else ""))


def report_text(report, last=None):
    """A stored report as `tracer show FILE` prints it. `report` is what _core.load_report
    returns: checked against the schema, so every required key is there with its type (text
    and integers may still be null where the schema says so)."""
    out = []
    stop = report.get("stop") or {}
    program = report.get("program") or {}
    why = stop.get("reason") or "?"
    if stop.get("signal"):
        why += f" {stop['signal']}"
    if stop.get("status") is not None:
        why += f" status {stop['status']}"
    out.append(f"report {report.get('key')}: {program.get('path')} "
               f"(pid {program.get('pid')}), stopped by {why} in {stop.get('pid')}/"
               f"{stop.get('tid')}")
    out.append(recorder_line(report["recorder"]))
    f = report.get("filter")
    if f and (f["trace"], f["status"], f["endpoint"]) != ("all", "all", "*"):
        out.append(f"filter: trace {f['trace']}, status {f['status']}, endpoint "
                   f"{f['endpoint']}; {f['filtered']} calls left out")
    events = report.get("events") or []
    if last is not None:
        events = events[-last:]
    out.append(event_table(events) if events else "(no events)")
    for gap in report.get("uncovered") or []:
        who = f"process {gap['pid']}" if gap["pid"] else "more"
        out.append(f"NOT COVERED: {who}" + (f" {gap['exe']}" if gap.get("exe") else "")
                   + f": {gap['why']}")
    for proc in report.get("processes") or []:
        state = "alive" if proc["alive"] else "dead"
        if proc.get("exit_signal"):
            state += f" by {proc['exit_signal']}"
        elif proc.get("exit_status") is not None:
            state += f", exit status {proc['exit_status']}"
        covered = f" (covered by: {proc['mode']})" if proc.get("mode") else ""
        out.append(f"process {proc['pid']}: {state}{covered}")
        for th in proc.get("threads") or []:
            out.append(f"  thread {th['tid']}" + (f" ({th['name']})" if th.get("name") else ""))
            for i, fr in enumerate(th.get("backtrace") or []):
                where = f" at {fr['file']}:{fr['line']}" if fr.get("file") else ""
                out.append(f"    #{i} {fr['pc']} in {fr.get('function') or '??'}{where}")
        for mb in proc.get("mailboxes") or []:
            if mb.get("error"):
                out.append(f"  mailbox fd {mb['fd']} {mb['endpoint']}: {mb['error']}")
                continue
            msgs = f", {mb['messages']} messages" if mb.get("messages") is not None else ""
            data = f" \"{preview(mb['data'], 48)}\"" if mb.get("data") else ""
            pending = mb["pending"] if mb.get("pending") is not None else "?"
            out.append(f"  mailbox fd {mb['fd']} {mb['endpoint'] or '?'}: {pending} bytes"
                       f" pending{msgs} (approx){data}")
    y = report.get("yield") or {}
    if y.get("enabled"):
        out.append(f"yield: {y['strategy']} p={y['probability']} seed {y['seed']}, "
                   f"{y['injected']} injected at {y['sites']} sites")
    return "\n".join(out)
