"""Exports of a report for people who would rather look at the conversation.

chrome: Chrome trace-event JSON (opens in Perfetto and chrome://tracing): one track per
process and thread, each send/receive a slice with its endpoint and payload, a flow arrow from
a send to the receive that got its bytes where they can be matched, the fatal signal marked.
"""
import json
import os

from . import _core
from .run import TracerError

FORMATS = ("chrome",)


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
    processes = {ev["pid"] for ev in report["events"]} | {
        p["pid"] for p in report.get("processes") or []}
    threads = {(ev["pid"], ev["tid"]) for ev in report["events"]}
    for pid in sorted(processes):
        out.append({"name": "process_name", "ph": "M", "pid": pid, "tid": pid,
                    "args": {"name": f"process {pid}"}})
    for pid, tid in sorted(threads):
        out.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                    "args": {"name": f"thread {tid}"}})
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
                              "usage: tracer export FILE [--format chrome] [--from REPORT]")
    if path is None:
        raise TracerError("tracer export needs a FILE to write")
    if fmt not in FORMATS:
        raise TracerError(f"tracer export: unknown format '{fmt}' (known: "
                          f"{', '.join(FORMATS)})")
    if source:
        try:
            report = _core.load_report(source)
        except (OSError, ValueError) as e:
            raise TracerError(f"cannot read report {source}: {e}") from None
    else:
        report = live_report()
    try:
        with open(path, "x") as f:
            json.dump(chrome(report), f)
    except OSError as e:
        raise TracerError(f"cannot write {path}: {e.strerror}") from None
    return f"tracer: {len(report['events'])} events exported to {path} ({fmt})"
