"""`tracer show`'s text: errno names, and columns that stay aligned whatever the cells hold
(wide characters, combining marks, long endpoints)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import show  # noqa: E402


def event(**kw):
    ev = {"t_us": 0, "pid": 10, "tid": 11, "dir": "recv", "fn": "recv", "fd": 3,
          "endpoint": "unix:[1]->[2]", "len": 16, "ret": 5, "errno": 0, "data": "hello",
          "truncated": False, "site": None}
    ev.update(kw)
    return ev


def test_errno_names():
    assert show.errno_name(11) == "EAGAIN"
    assert show.errno_name(32) == "EPIPE"
    assert show.errno_name(4000) == "e4000"
    assert show.errno_name(-1) == "errno ?"
    table = show.event_table([event(ret=-1, errno=11, data=""), event(ret=-1, errno=-1)])
    assert "-1 EAGAIN" in table and "-1 errno ?" in table
    assert " e11" not in table


def column_starts(line, header):
    """Display column where each header word of the first line starts."""
    return [show.display_width(line[:line.index(h)]) for h in header]


def test_columns_stay_aligned_with_wide_and_combining_characters():
    events = [event(endpoint="unix:/tmp/日本語.sock", t_us=1234567),
              event(endpoint="unix:/tmp/cafe\u0301", fn="recvmsg", pid=123456, tid=123457),
              event(endpoint="x" * 120, dir="send", fn="write", ret=None)]
    lines = show.event_table(events).splitlines()
    header = ["pid/tid", "dir", "fn", "endpoint", "len/ret"]
    want = column_starts(lines[0], header)
    for line, ev in zip(lines[1:], events):
        cells = [f"{ev['pid']}/{ev['tid']}", ev["dir"], ev["fn"], ev["endpoint"]]
        starts, at = [], 0
        for c in cells:                 # each cell after the one before it
            at = line.index(c, at)
            starts.append(show.display_width(line[:at]))
            at += len(c)
        assert starts == want[:4], (line, starts, want)
        assert not line.endswith(" ")


def test_display_width():
    assert show.display_width("abc") == 3
    assert show.display_width("日本") == 4
    assert show.display_width("e\u0301") == 1
