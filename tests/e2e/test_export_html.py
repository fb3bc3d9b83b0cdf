"""`tracer export FILE --format html`: a self-contained page, rendered by headless Chromium
(Debian's chromium, installed by scripts/install-deps --tests) with the network blocked."""
import html.parser
import re
import shutil
import subprocess

import pytest

from controller import run_gdb
from harness import fixture_path

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
