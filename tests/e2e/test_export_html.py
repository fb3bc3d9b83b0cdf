"""`tracer export FILE --format html`: a self-contained page, rendered by headless Chromium
(Debian's chromium, installed by scripts/install-deps --tests) with the network blocked."""
import html.parser
import json
import re
import shutil
import subprocess

import pytest

from controller import run_gdb
from harness import fixture_path
from tracerlib import export

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND"]


class Rows(html.parser.HTMLParser):
    """The event table's rows (data-seq and cell texts) and every URL-bearing attribute."""

    def __init__(self):
        super().__init__()
        self.rows, self.urls, self.crash = [], [], False
        self._cells = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if key in attrs:
                self.urls.append(attrs[key])
        if attrs.get("id") == "crash":
            self.crash = True
        if tag == "tr" and attrs.get("class") == "event":
            self._cells = [int(attrs["data-seq"])]
        elif tag == "td" and self._cells is not None:
            self._cells.append("")

    def handle_data(self, data):
        if self._cells is not None and len(self._cells) > 1:
            self._cells[-1] += data

    def handle_endtag(self, tag):
        if tag == "tr" and self._cells is not None:
            self.rows.append(self._cells)
            self._cells = None


def chromium(*args, cwd):
    return subprocess.run([CHROMIUM, *FLAGS, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.skipif(not CHROMIUM, reason="chromium not installed (scripts/install-deps --tests)")
@pytest.mark.parametrize("name,args", [("crash_pending", []), ("threads_pipe", ["3"])])
def test_html_page_renders_every_event_in_order(name, args, tmp_path, tracer):
    page = tmp_path / "report.html"
    run = run_gdb(fixture_path(name), args, settings={"cap": 10000}, tmp=tmp_path,
                  after=[f"tracer export {page} --format html"])
    report = run.report
    text = page.read_text()
    assert "Content-Security-Policy" in text and not re.search(r"(src|href)=", text)
    shot = tmp_path / "page.png"
    proc = chromium(f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri(),
                    cwd=tmp_path)
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    dom = chromium("--dump-dom", page.as_uri(), cwd=tmp_path).stdout
    parsed = Rows()
    parsed.feed(dom)
    assert parsed.urls == []
    events = report["events"]
    assert [r[0] for r in parsed.rows] == [ev["seq"] for ev in events]
    for row, ev in zip(parsed.rows, events):
        assert row[4:8] == [ev["dir"], ev["fn"], ev["endpoint"],
                            f"{ev['len']}/{ev['ret'] if ev['ret'] is not None else '…'}"]
        assert row[8] == ev["data"] and row[3] == f"{ev['pid']}/{ev['tid']}"
    for ev in events:       # every event is also a mark on the sequence diagram
        assert f'data-seq="{ev["seq"]}"' in dom
    assert parsed.crash == bool(report["stop"].get("signal"))
    if report["recorder"]["overflow"]:
        assert "OVERFLOW" in dom


class Diagram(html.parser.HTMLParser):
    """The sequence diagram's texts by class: lifeline names, arrow labels (endpoint), and
    pending-mail groups (id -> label)."""

    def __init__(self):
        super().__init__()
        self.texts, self.pending, self._cls, self._group = {}, {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "g" and attrs.get("class") == "pending":
            self._group = attrs["id"]
        if tag == "text":
            self._cls = attrs.get("class")

    def handle_data(self, data):
        if self._cls:
            self.texts.setdefault(self._cls, []).append(data)
            if self._cls == "pending" and self._group:
                self.pending[self._group] = data

    def handle_endtag(self, tag):
        if tag == "text":
            self._cls = None
        elif tag == "g":
            self._group = None


def names_of(report):
    """The program name each pid should carry: the main thread's name in the snapshot, else
    the program's file name."""
    default = report["program"]["path"].rsplit("/", 1)[-1]
    names = {p["pid"]: th["name"] for p in report["processes"] for th in p["threads"]
             if th["tid"] == p["pid"] and th["name"]}
    return lambda pid: names.get(pid, default)


@pytest.mark.skipif(not CHROMIUM, reason="chromium not installed (scripts/install-deps --tests)")
@pytest.mark.parametrize("name,args", [("crash_pending", []), ("eagain_poll", ["3"])])
def test_lifelines_arrows_and_pending_mail_are_named(debugger, mode, name, args, tmp_path):
    """The page names each lifeline with its program and pid (`crash_pending 4242`), labels
    each matched arrow with its endpoint and draws each mailbox's pending bytes as an arrow
    that never arrives (labelled with endpoint and byte count); the Chrome trace names its
    process and thread tracks the same way. (Exported from the stored report by a second
    debugger: lldb's batch ends at the failed `tracer run` of a crash.)"""
    from controller import run
    page, trace = tmp_path / "report.html", tmp_path / "trace.json"
    r = run(debugger, fixture_path(name), args, settings={"cap": 10000}, tmp=tmp_path,
            mode=mode)
    report = r.report
    exported = run(debugger, None, run_command=None, report=None, tmp=tmp_path / "export",
                   commands=[f"tracer export {page} --format html --from {r.report_paths[0]}",
                             f"tracer export {trace} --format chrome --from {r.report_paths[0]}"])
    assert page.exists() and trace.exists(), exported.describe()
    program = names_of(report)
    dom = chromium("--dump-dom", page.as_uri(), cwd=tmp_path).stdout
    diagram = Diagram()
    diagram.feed(dom)
    lanes = {(e["pid"], e["tid"]) for e in report["events"]}
    want = {f"{program(pid)} {pid}" if tid == pid else f"{program(pid)} {pid}/{tid}"
            for pid, tid in lanes}
    got = set(diagram.texts.get("lifeline", []))
    assert all(any(g == w or g.startswith(w + " (") for g in got) for w in want), (want, got)

    flows = export.match_flows(report["events"])
    assert sorted(diagram.texts.get("endpoint", [])) == sorted(
        report["events"][s]["endpoint"] for s, _ in flows)
    if name == "eagain_poll":
        assert len(flows) == 3, report["events"]   # go, hello, bye

    pending = [(p["pid"], mb) for p in report["processes"] for mb in p["mailboxes"]
               if not mb["error"] and (mb["pending"] or 0) > 0]
    if name == "crash_pending":
        assert len(pending) == 2, report["processes"]    # the pipe's and the socket's
    assert set(diagram.pending) == {f"pending-{pid}-{mb['fd']}" for pid, mb in pending}
    for pid, mb in pending:
        label = diagram.pending[f"pending-{pid}-{mb['fd']}"]
        assert label.startswith(f"{mb['endpoint']}: {mb['pending']} bytes pending"), label

    doc = json.loads(trace.read_text())
    meta = {(e["name"], e["pid"], e["tid"]): e["args"]["name"] for e in doc["traceEvents"]
            if e["ph"] == "M"}
    for pid in {e["pid"] for e in report["events"]}:
        assert meta[("process_name", pid, pid)] == f"{program(pid)} {pid}", meta
    for pid, tid in lanes:
        assert meta[("thread_name", pid, tid)].startswith(
            f"{program(pid)} {pid}" + ("" if tid == pid else f"/{tid}")), meta
