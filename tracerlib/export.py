"""Exports of a report for people who would rather look at the conversation.

html: one self-contained page with a message sequence diagram (threads as lifelines named with
their program, `gzip 4242`; time going down; arrows for matched messages labelled with their
endpoint; bytes still pending in a mailbox as an arrow that never arrives; the crash marked),
the event table, and each process's backtraces and mailboxes.

chrome: Chrome trace-event JSON (opens in Perfetto and chrome://tracing): one track per
process and thread, named as the lifelines, each send/receive a slice with its endpoint and payload, a flow arrow from
a send to the receive that got its bytes where they can be matched, the fatal signal marked.
"""
import json
import os

from . import _core, show
from .run import TracerError

FORMATS = ("chrome", "html")


def _data(ev):
    try:
        return _core.unescape(ev["data"])
    except ValueError:
        return b""


def _peer_endpoint(endpoint):
    """The name the other end of a connection gives the same channel: A->B seen from B."""
    kind, sep, rest = endpoint.partition(":")
    if "->" not in rest:
        return endpoint
    local, remote = rest.split("->", 1)
    return f"{kind}{sep}{remote}->{local}"


def _sides(endpoint):
    """(kind, local, remote or None) of an endpoint name "kind:local->remote"."""
    kind, _, rest = endpoint.partition(":")
    local, arrow, remote = rest.partition("->")
    return kind, local, remote if arrow else None


def _same_channel(send_endpoint, box_endpoint):
    """Do the bytes a send put on send_endpoint land in the mailbox named box_endpoint? The
    same name (a pipe), the reversed name (a connected socket), or the send's remote side
    being the mailbox's own (its peer has gone, so the mailbox names only itself)."""
    if send_endpoint in (box_endpoint, _peer_endpoint(box_endpoint)):
        return True
    kind, _, remote = _sides(send_endpoint)
    box_kind, box_local, _ = _sides(box_endpoint)
    return remote is not None and kind == box_kind and remote == box_local


def program_names(report):
    """pid -> the program's name: the main thread's name (the kernel's comm, `gzip`) where
    the snapshot has it, else the traced program's file name."""
    default = os.path.basename((report.get("program") or {}).get("path") or "") or "?"
    names = {}
    for proc in report.get("processes") or []:
        for th in proc.get("threads") or []:
            if th.get("tid") == proc["pid"] and th.get("name"):
                names[proc["pid"]] = th["name"]
    pids = {ev["pid"] for ev in report["events"]} | set(names) | {
        p["pid"] for p in report.get("processes") or []}
    return {pid: names.get(pid, default) for pid in pids}


def lane_name(names, pid, tid, thread_names=None):
    """`gzip 4242` for a process's main thread, `gzip 4242/4243 (worker)` for another."""
    program = names.get(pid, "?")
    if tid == pid:
        return f"{program} {pid}"
    thread = (thread_names or {}).get((pid, tid))
    return f"{program} {pid}/{tid}" + (f" ({thread})" if thread and thread != program else "")


def thread_names(report):
    return {(proc["pid"], th["tid"]): th["name"] for proc in report.get("processes") or []
            for th in proc.get("threads") or [] if th.get("name")}


def pending_mail(report):
    """[(pid, mailbox)] of every mailbox still holding bytes at the stop."""
    return [(proc["pid"], mb) for proc in report.get("processes") or []
            for mb in proc.get("mailboxes") or []
            if not mb.get("error") and (mb.get("pending") or 0) > 0]


def match_flows(events):
    """(send index, receive index) pairs: each receive's bytes start with an unmatched earlier
    send's bytes on the same channel (pipes share a name; sockets see each other's reversed).
    A heuristic for the arrows: streams may split or merge messages."""
    pairs, used = [], set()
    for r, recv in enumerate(events):
        if recv["dir"] != "recv" or not recv.get("ret") or recv["ret"] <= 0:
            continue
        got = _data(recv)
        for s, send in enumerate(events[:r]):
            if s in used or send["dir"] != "send" or send["tid"] == recv["tid"]:
                continue
            if send["endpoint"] not in (recv["endpoint"], _peer_endpoint(recv["endpoint"])):
                continue
            sent = _data(send)
            if sent and (got.startswith(sent) or sent.startswith(got)):
                used.add(s)
                pairs.append((s, r))
                break
    return pairs


def chrome(report):
    """The trace-event document for a report (a dict as load_report returns it)."""
    out = []
    names, tnames = program_names(report), thread_names(report)
    threads = {(ev["pid"], ev["tid"]) for ev in report["events"]}
    for pid in sorted(names):
        out.append({"name": "process_name", "ph": "M", "pid": pid, "tid": pid,
                    "args": {"name": lane_name(names, pid, pid)}})
    for pid, tid in sorted(threads):
        out.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                    "args": {"name": lane_name(names, pid, tid, tnames)}})
    events = report["events"]
    for ev in events:
        out.append({"name": f"{ev['fn']} {ev['endpoint']}", "cat": ev["dir"], "ph": "X",
                    "ts": ev["t_us"], "dur": 1, "pid": ev["pid"], "tid": ev["tid"],
                    "args": {k: ev[k] for k in ("seq", "fn", "fd", "endpoint", "len", "ret",
                                                "errno", "data", "truncated")}})
    for n, (s, r) in enumerate(match_flows(events)):
        send, recv = events[s], events[r]
        out.append({"name": "message", "cat": "flow", "ph": "s", "id": n, "ts": send["t_us"],
                    "pid": send["pid"], "tid": send["tid"]})
        out.append({"name": "message", "cat": "flow", "ph": "f", "bp": "e", "id": n,
                    "ts": recv["t_us"], "pid": recv["pid"], "tid": recv["tid"]})
    stop = report.get("stop") or {}
    if stop.get("signal"):
        last = max((ev["t_us"] for ev in events), default=0)
        out.append({"name": stop["signal"], "cat": "crash", "ph": "i", "s": "p", "ts": last,
                    "pid": stop["pid"], "tid": stop["tid"],
                    "args": {"reason": stop["reason"]}})
    rec = report["recorder"]
    return {"traceEvents": out, "displayTimeUnit": "ms",
            "otherData": {"report": report.get("key"), "dropped": rec["dropped"],
                          "overflow": rec["overflow"], "program": report["program"]["path"]}}


def export(arg, live_report):
    """`tracer export FILE [--format chrome] [--from REPORT]`: writes FILE, returns a line.
    live_report() gives the live run's report when no REPORT is named."""
    words = arg.split()
    fmt, source, path = "chrome", None, None
    while words:
        w = words.pop(0)
        if w == "--format" and words:
            fmt = words.pop(0)
        elif w == "--from" and words:
            source = os.path.expanduser(words.pop(0))
        elif path is None and not w.startswith("--"):
            path = os.path.expanduser(w)
        else:
            raise TracerError(f"tracer export: unexpected '{w}'; "
                              "usage: tracer export FILE [--format chrome|html] [--from REPORT]")
    if path is None:
        raise TracerError("tracer export needs a FILE to write")
    if fmt not in FORMATS:
        raise TracerError(f"tracer export: unknown format '{fmt}' (known: "
                          f"{', '.join(FORMATS)})")
    if source:
        try:
            report = _core.load_report(source)
        except ValueError as e:     # the reader's one line, which starts with the path
            raise TracerError(f"cannot read report {e}") from None
        except OSError as e:
            raise TracerError(f"cannot read report {source}: {e.strerror}") from None
    else:
        report = live_report()
    text = html(report) if fmt == "html" else json.dumps(chrome(report))
    try:
        # As reports are written (they hold the same payloads): mode 0600, atomically, never
        # over an existing file, never through a symlink.
        _core.store_put_path(path, text)
    except OSError as e:
        raise TracerError(f"cannot write {path}: {e.strerror}") from None
    return f"tracer: {len(report['events'])} events exported to {path} ({fmt})"


# ---------------------------------------------------------------------------- html

_STYLE = """
body{font:13px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
.meta{color:#555}.warn{color:#a00;font-weight:bold}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:top}
tr.event:nth-child(even){background:#f4f4f4}code{font:12px monospace;white-space:pre-wrap}
svg text{font:11px monospace}.send{fill:#1565c0}.recv{fill:#2e7d32}
.crash{fill:#c62828;font-weight:bold}.endpoint{fill:#555;font-size:10px}
text.pending{fill:#e65100}.lifeline{font-weight:bold}
"""


def _esc(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _lanes(report):
    """Threads with events, then the crashed thread and the processes holding pending mail."""
    lanes = sorted({(ev["pid"], ev["tid"]) for ev in report["events"]})
    stop = report.get("stop") or {}
    if stop.get("signal") and (stop["pid"], stop["tid"]) not in lanes:
        lanes.append((stop["pid"], stop["tid"]))
    for pid, _ in pending_mail(report):
        if not any(lane[0] == pid for lane in lanes):
            lanes.append((pid, pid))
    return lanes


def _receiver_lane(lanes, events, pid, endpoint):
    """The lane of pid that last used endpoint, else its first lane."""
    used = [(e["pid"], e["tid"]) for e in events if e["pid"] == pid and e["endpoint"] == endpoint]
    return used[-1] if used else next(lane for lane in lanes if lane[0] == pid)


def _pending_arrows(report, lanes, x, y0, row):
    """Bytes still in a mailbox, one per two rows below the events: a dashed arrow from the
    lane of the last send on that channel (or from outside, none being recorded) toward the
    receiver, stopping short: it never arrived."""
    events, parts = report["events"], []
    for k, (pid, mb) in enumerate(pending_mail(report)):
        to = _receiver_lane(lanes, events, pid, mb.get("endpoint"))
        sends = [i for i, e in enumerate(events) if e["dir"] == "send"
                 and (e["pid"], e["tid"]) != to and mb.get("endpoint")
                 and _same_channel(e["endpoint"], mb["endpoint"])]
        x1 = x[to]
        x0 = x[(events[sends[-1]]["pid"], events[sends[-1]]["tid"])] if sends else x1 - 150
        if x0 == x1:                    # the sender is the receiver's own lane
            x0 = x1 - 150
        y = y0 + 2 * row * k
        xe = x0 + (x1 - x0) * 0.6
        label = f"{mb.get('endpoint') or '?'}: {mb['pending']} bytes pending"
        if mb.get("data"):
            label += f" {mb['data'][:24]}"
        parts.append(f'<g class="pending" id="pending-{pid}-{mb["fd"]}">'
                     f'<line x1="{x0}" y1="{y}" x2="{xe:.0f}" y2="{y}" stroke="#e65100" '
                     'stroke-dasharray="6 4" marker-end="url(#open)"/>'
                     f'<text x="{min(x0, x1) + 4}" y="{y + 14}" class="pending">'
                     f'{_esc(label)}</text></g>')
    return parts


def _diagram(report):
    """An SVG message sequence diagram: a lifeline per thread named with its program, time
    going down, an arrow per matched message labelled with its endpoint, a dot per unmatched
    call, bytes still pending in a mailbox as an arrow that never arrives, the fatal signal
    marked."""
    events = report["events"]
    lanes = _lanes(report)
    names, tnames = program_names(report), thread_names(report)
    x = {lane: 120 + i * 190 for i, lane in enumerate(lanes)}
    row = 26
    pending = len(pending_mail(report))
    height = 60 + row * (len(events) + 2 + 2 * pending)
    width = 160 + 190 * max(len(lanes), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'id="sequence">',
             '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" '
             'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker>'
             '<marker id="open" markerWidth="8" markerHeight="8" refX="7" refY="4" '
             'orient="auto"><path d="M0,0 L8,4 L0,8" fill="none" stroke="#e65100"/></marker>'
             '</defs>']
    for lane in lanes:
        parts.append(f'<text x="{x[lane] - 60}" y="20" class="lifeline">'
                     f'{_esc(lane_name(names, lane[0], lane[1], tnames))}</text>'
                     f'<line x1="{x[lane]}" y1="30" x2="{x[lane]}" y2="{height - 10}" '
                     'stroke="#bbb" stroke-dasharray="4 3"/>')
    y_of = {i: 50 + row * i for i in range(len(events))}
    flows = dict((r, s) for s, r in match_flows(events))
    for i, ev in enumerate(events):
        lane, y = (ev["pid"], ev["tid"]), y_of[i]
        ret = ev["ret"] if ev["ret"] is not None else "…"
        if isinstance(ret, int) and ret < 0:
            ret = f"{ret} {show.errno_name(ev['errno'])}"
        label = f"{ev['fn']} {ev['len']}/{ret} {ev['data'][:24]}"
        cls = ev["dir"]
        if i in flows:
            src = events[flows[i]]
            x0 = x[(src["pid"], src["tid"])]
            y0 = y_of[flows[i]]
            parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x[lane]}" y2="{y}" '
                         'stroke="#555" marker-end="url(#arrow)"/>'
                         f'<text x="{(x0 + x[lane]) / 2:.0f}" y="{(y0 + y) / 2 - 3:.0f}" '
                         f'class="endpoint" text-anchor="middle">{_esc(src["endpoint"])}</text>')
        parts.append(f'<circle cx="{x[lane]}" cy="{y}" r="3" class="{cls}"/>'
                     f'<text x="{x[lane] + 6}" y="{y + 4}" class="{cls}" '
                     f'data-seq="{ev["seq"]}">{_esc(label)}</text>')
    parts += _pending_arrows(report, lanes, x, 50 + row * len(events) + row * 3 // 2, row)
    stop = report.get("stop") or {}
    if stop.get("signal"):
        lane = (stop["pid"], stop["tid"])
        y = 50 + row * len(events)
        parts.append(f'<text x="{x[lane] - 20}" y="{y + 4}" class="crash" id="crash">'
                     f'✖ {_esc(stop["signal"])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html(report):
    """One self-contained page: nothing is loaded from anywhere."""
    rec, stop, prog = report["recorder"], report.get("stop") or {}, report["program"]
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
           # The page may hold secrets (payloads): forbid it to load or send anything.
           "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
           "style-src 'unsafe-inline'\">",
           f"<title>Tracer report {_esc(report.get('key'))}</title>",
           f"<style>{_STYLE}</style></head><body>",
           f"<h1>{_esc(prog.get('path'))} (pid {prog.get('pid')})</h1>",
           f"<p class='meta'>stopped by {_esc(stop.get('reason'))}"
           + (f" <span class='warn'>{_esc(stop['signal'])}</span>" if stop.get("signal") else "")
           + (f", exit status {stop['status']}" if stop.get("status") is not None else "")
           + f" in {stop.get('pid')}/{stop.get('tid')}; {_esc(report.get('debugger'))}</p>",
           f"<p class='meta' id='recorder'>cap {rec['cap']}, budget {rec['budget']}, "
           f"payload {rec['payload']}: {rec['count']} recorded, "
           f"<span{' class=warn' if rec['dropped'] else ''}>{rec['dropped']} dropped</span>"
           + ("; <span class='warn'>OVERFLOW: the budget was reached, tracing stopped</span>"
              if rec["overflow"] else "") + "</p>",
           "<h2>Sequence</h2>", _diagram(report),
           "<h2>Events</h2><table id='events'><tr><th>seq</th><th>t_us</th><th>pid/tid</th>"
           "<th>dir</th><th>fn</th><th>endpoint</th><th>len/ret</th><th>payload</th></tr>"]
    for ev in report["events"]:
        ret = ev["ret"] if ev["ret"] is not None else "…"
        out.append(f"<tr class='event' data-seq='{ev['seq']}'><td>{ev['seq']}</td>"
                   f"<td>{ev['t_us']}</td><td>{ev['pid']}/{ev['tid']}</td><td>{ev['dir']}</td>"
                   f"<td>{_esc(ev['fn'])}</td><td>{_esc(ev['endpoint'])}</td>"
                   f"<td>{ev['len']}/{ret}</td><td><code>{_esc(ev['data'])}</code></td></tr>")
    out.append("</table><h2>Processes</h2>")
    for proc in report.get("processes") or []:
        state = "alive" if proc["alive"] else "dead"
        if proc.get("exit_signal"):
            state += f" by {proc['exit_signal']}"
        out.append(f"<h3>process {proc['pid']}: {_esc(state)}</h3>")
        for th in proc.get("threads") or []:
            frames = "\n".join(
                f"#{i} {fr['pc']} {fr.get('function') or '??'}"
                + (f" at {fr['file']}:{fr['line']}" if fr.get("file") else "")
                for i, fr in enumerate(th.get("backtrace") or []))
            out.append(f"<p>thread {th['tid']}</p><code class='backtrace'>{_esc(frames)}</code>")
        boxes = proc.get("mailboxes") or []
        if boxes:
            out.append("<table class='mailboxes'><tr><th>fd</th><th>endpoint</th>"
                       "<th>pending (approx)</th><th>content</th></tr>")
            for mb in boxes:
                out.append(f"<tr><td>{mb['fd']}</td><td>{_esc(mb['endpoint'])}</td>"
                           f"<td>{mb['pending']}</td><td><code>"
                           f"{_esc(mb.get('data') or mb.get('error') or '')}</code></td></tr>")
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
