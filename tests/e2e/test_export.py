"""`tracer export FILE --format chrome`: trace-event JSON with what Perfetto needs, from the
live run and from a stored report, for fixture reports of every kind of channel."""
import json

import pytest

from controller import run_gdb
from harness import REPO, fixture_path


def check_chrome(doc, report):
    """The fields Perfetto / chrome://tracing read, and one slice per report event."""
    assert isinstance(doc["traceEvents"], list) and doc["displayTimeUnit"] in ("ms", "ns")
    slices = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert len(slices) == len(report["events"])
    for e, ev in zip(slices, report["events"]):
        assert (e["pid"], e["tid"], e["ts"], e["cat"]) == (ev["pid"], ev["tid"], ev["t_us"],
                                                            ev["dir"])
        assert e["name"] == f"{ev['fn']} {ev['endpoint']}" and e["dur"] >= 0
        assert e["args"]["data"] == ev["data"] and e["args"]["endpoint"] == ev["endpoint"]
    names = {(e["pid"], e["tid"]) for e in doc["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {(e["pid"], e["tid"]) for e in slices} <= names
    for e in doc["traceEvents"]:
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int) and "ph" in e
    starts = {e["id"]: e for e in doc["traceEvents"] if e["ph"] == "s"}
    ends = {e["id"]: e for e in doc["traceEvents"] if e["ph"] == "f"}
    assert starts.keys() == ends.keys()
    for i, s in starts.items():
        assert s["ts"] <= ends[i]["ts"] and (s["pid"], s["tid"]) != (ends[i]["pid"],
                                                                     ends[i]["tid"])
    return starts


@pytest.mark.parametrize("name,args,flows", [
    ("pipe_pingpong", ["2"], 4), ("socketpair_pingpong", [], 1), ("unix_stream", [], 1),
    ("tcp_loopback", [], 1), ("posix_mq", [], 1), ("sysv_msg", [], 1),
    # threads_pipe: which thread reads whose message is the scheduler's, and one that reads
    # its own draws no arrow (every thread did so in a CI run): no flow is promised
    ("threads_pipe", ["3"], 0), ("udp_loopback", [], 1), ("exec_child", [], 1),
    ("not_ipc", [], 0), ("chatty", ["10"], 0), ("exit_code", ["3"], 0),
    ("child_assert", [], 0), ("user_breakpoint", [], 0)])
def test_chrome_export_of_fixture_reports(name, args, flows, tmp_path, tracer):
    live, stored = tmp_path / "live.json", tmp_path / "stored.json"
    run = run_gdb(fixture_path(name), args, settings={"cap": 10000}, tmp=tmp_path,
                  after=[f"tracer export {live} --format chrome"])
    report = run.report
    doc = json.loads(live.read_text())
    assert len(check_chrome(doc, report)) >= flows, run.describe()
    again = run_gdb(None, tmp=tmp_path / "again", run_command=None,
                    commands=[f"tracer export {stored} --from {run.report_paths[0]}"])
    assert json.loads(stored.read_text()) == doc, again.describe()


def test_chrome_export_marks_the_crash(tmp_path, tracer):
    out = tmp_path / "crash.json"
    run = run_gdb(fixture_path("crash_pending"), tmp=tmp_path,
                  after=[f"tracer export {out}"])
    marks = [e for e in json.loads(out.read_text())["traceEvents"] if e.get("cat") == "crash"]
    assert [m["name"] for m in marks] == ["SIGSEGV"], run.describe()
    assert marks[0]["pid"] == run.report["stop"]["pid"]


def test_export_errors(tmp_path, tracer):
    existing = tmp_path / "exists.json"
    existing.write_text("{}")
    run = run_gdb(None, tmp=tmp_path, run_command=None, commands=[
        "tracer export", f"tracer export {tmp_path / 'a.json'} --format svg",
        f"tracer export {tmp_path / 'b.json'}", f"tracer export {existing} --from {existing}",
        f"tracer export {tmp_path / 'c.json'} --from {tmp_path / 'missing.json'}"])
    errors = [l for l in run.stderr.splitlines() if l.startswith("tracer")]
    assert len(errors) == 5, run.describe()
    assert "needs a FILE" in errors[0] and "unknown format 'svg'" in errors[1]
    assert "nothing traced yet" in errors[2]
    assert existing.read_text() == "{}"


def test_lldb_exports_a_stored_report_the_same_way(tmp_path, tracer):
    """Both front ends export through tracerlib.export: lldb writes the same documents."""
    import shutil
    import subprocess
    if not shutil.which("lldb-16"):
        pytest.skip("lldb-16 not installed (scripts/install-deps installs it)")
    run = run_gdb(fixture_path("pipe_pingpong"), ["2"], tmp=tmp_path,
                  after=[f"tracer export {tmp_path / 'gdb.json'} --format chrome",
                         f"tracer export {tmp_path / 'gdb.html'} --format html"])
    stored = run.report_paths[0]
    for fmt in ("chrome", "html"):
        out = tmp_path / f"lldb.{'json' if fmt == 'chrome' else 'html'}"
        proc = subprocess.run(
            ["lldb-16", "-b", "-o", f"command script import {REPO / 'lldb' / 'tracer.py'}", "-o", f"tracer export {out} --format {fmt} --from {stored}"],
            capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        theirs = (tmp_path / f"gdb.{'json' if fmt == 'chrome' else 'html'}").read_text()
        assert out.read_text() == theirs
