"""The CPython binding, from /usr/bin/python3: behaviour and misuse.

Every misuse must raise a Python exception with a message; nothing may crash the
interpreter (it is the user's debugger in real life).
"""
import json
import os
import stat
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import _core  # noqa: E402

SCHEMA = os.path.join(ROOT, "docs", "report.schema.json")

META = {"key": "prog-1-20260101T000000Z-s0", "program": "/bin/prog", "argv": ["prog", "x"],
        "pid": 1, "started": "2026-01-01T00:00:00Z", "debugger": "test",
        "stop": {"reason": "exit", "status": 3, "pid": 1, "tid": 1}}


def validate(text):
    import jsonschema
    with open(SCHEMA) as f:
        jsonschema.validate(json.loads(text), json.load(f))
    return json.loads(text)


def push(s, n, **kw):
    for i in range(n):
        s.push("write", "send", pid=1, tid=1, fd=4, endpoint="pipe:[7]", len=1, ret=1,
               data=bytes([i % 256]), **kw)


def test_defaults_and_limits_visible():
    s = _core.Session()
    assert (s.cap, s.budget, s.payload) == (50, 5000, 64)
    s = _core.Session(cap=0, budget=-1, payload=-1)        # non-positive: the default
    assert (s.cap, s.budget, s.payload) == (50, 5000, 64)
    report = validate(s.render(META))
    assert report["recorder"]["cap"] == 50 and report["recorder"]["budget"] == 5000
    assert report["recorder"]["payload"] == 64 and report["recorder"]["backtrace"] == 16


@pytest.mark.parametrize("kw", [{"cap": _core.CAP_MAX + 1}, {"budget": _core.BUDGET_MAX + 1},
                                {"payload": _core.PAYLOAD_MAX + 1}])
def test_out_of_range_settings_raise(kw):
    with pytest.raises(ValueError, match="at most"):
        _core.Session(**kw)


@pytest.mark.parametrize("kw", [{"cap": "x"}, {"budget": 1.5}, {"nope": 1}])
def test_wrong_types_raise(kw):
    with pytest.raises(TypeError):
        _core.Session(**kw)


def test_ring_keeps_last_cap_and_counts_dropped():
    s = _core.Session(cap=3)
    push(s, 5)
    events = s.events()
    assert [e["seq"] for e in events] == [2, 3, 4]
    assert [e["data"] for e in events] == [b"\x02", b"\x03", b"\x04"]
    assert (s.count, s.dropped) == (5, 2)
    assert [e["seq"] for e in s.events(last=2)] == [3, 4]
    assert len(s.events(last=None)) == 3 and s.events(last=0) == []
    with pytest.raises(ValueError):
        s.events(last=-1)
    with pytest.raises(TypeError):
        s.events(last="2")


def test_budget_disarms_and_ignores_later_events():
    s = _core.Session(budget=3)
    actions = [s.push("read", "recv", ret=1, data=b"x") for _ in range(5)]
    assert actions == [_core.CONTINUE, _core.CONTINUE, _core.DISARM, _core.DISARM,
                       _core.DISARM]
    assert s.count == 3 and s.overflow


def test_freeze_stops_changes():
    s = _core.Session()
    push(s, 1)
    s.freeze()
    s.freeze()
    push(s, 2)
    assert s.frozen and s.count == 1 and len(s.events()) == 1


def test_push_misuse():
    s = _core.Session()
    with pytest.raises(ValueError, match="not in the IPC catalogue"):
        s.push("fopen", "send")
    with pytest.raises(ValueError, match="dir must be"):
        s.push("write", "sideways")
    with pytest.raises(ValueError, match="endpoint longer"):
        s.push("write", "send", endpoint="x" * 500)
    with pytest.raises(TypeError):
        s.push("write", "send", data="not bytes")
    assert s.count == 0


def test_payload_truncation():
    s = _core.Session(payload=4)
    s.push("write", "send", len=10, ret=10, data=b"0123456789")
    ev = s.events()[0]
    assert ev["data"] == b"0123" and ev["truncated"]


def test_every_byte_round_trips_through_a_stored_report(tmp_path):
    s = _core.Session(payload=256)
    payload = bytes(range(256))
    s.push("send", "send", pid=1, tid=1, fd=3, endpoint="unix:[1]->[2]", len=256, ret=256,
           data=payload, site=0x401000)
    s.freeze()
    text = s.render(dict(META, sites={0x401000: {"function": "main", "file": "a.c",
                                                 "line": 7}}))
    validate(text)
    path = _core.store_put(str(tmp_path / "store"), META["key"], text)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    report = _core.load_report(path)
    ev = report["events"][0]
    assert _core.unescape(ev["data"]) == payload
    assert ev["site"] == {"pc": "0x401000", "function": "main", "file": "a.c", "line": 7}
    assert report["stop"]["status"] == 3 and report["program"]["argv"] == ["prog", "x"]


def test_escape_is_strace_style():
    assert _core.escape(b'a\n\t"\\\x00\xff') == 'a\\n\\t\\"\\\\\\x00\\xff'
    assert _core.unescape('a\\n\\x00') == b"a\n\x00"
    with pytest.raises(ValueError):
        _core.unescape("\\x4")


def test_store_never_overwrites_and_refuses_symlinks(tmp_path):
    store = str(tmp_path)
    first = _core.store_put(store, "k", "{}")
    second = _core.store_put(store, "k", "{}")
    assert first != second and os.path.exists(first) and os.path.exists(second)
    target = tmp_path / "target"
    target.write_text("precious")
    os.symlink(target, tmp_path / "link.json")
    with pytest.raises(FileExistsError):
        _core.store_put_path(str(tmp_path / "link.json"), "{}")
    assert target.read_text() == "precious"


def test_unwritable_store_raises_and_keeps_events(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    s = _core.Session()
    push(s, 2)
    with pytest.raises(OSError):
        _core.store_put(str(blocker / "store"), "k", s.render(META))
    assert s.count == 2 and len(s.events()) == 2


def test_render_misuse():
    s = _core.Session()
    with pytest.raises(TypeError):
        s.render("not a dict")
    with pytest.raises(ValueError, match="key"):
        s.render({})
    with pytest.raises(TypeError):
        s.render(dict(META, argv=[1, 2]))
    with pytest.raises(TypeError):
        s.render(dict(META, processes=[{"pid": "one"}]))
    with pytest.raises(ValueError, match="backtrace"):
        s.render(dict(META, backtrace=100000))


def test_render_processes_and_mailboxes():
    s = _core.Session()
    meta = dict(META, processes=[{
        "pid": 5, "alive": True, "threads": [{"tid": 5, "name": "w\xe9ird",
                                              "backtrace": [{"pc": 1, "function": "f"}]}],
        "mailboxes": [{"fd": 3, "endpoint": "pipe:[9]", "pending": 2, "data": b"\x00\x01"}]}])
    report = validate(s.render(meta))
    proc = report["processes"][0]
    assert proc["threads"][0]["backtrace"][0]["pc"] == "0x1"
    assert proc["mailboxes"][0]["approx"] is True
    assert proc["mailboxes"][0]["data"] == "\\x00\\x01"


def test_load_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        _core.load_report(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError):
        _core.load_report(str(bad))
    other = tmp_path / "v2.json"
    other.write_text('{"version": 2}')
    with pytest.raises(ValueError, match="version"):
        _core.load_report(str(other))


def test_entry_misuse():
    s = _core.Session()
    with pytest.raises(ValueError, match="catalogue"):
        s.entry(10000, 1, 1, regs=[0] * 10)
    with pytest.raises(ValueError, match="regs"):
        s.entry(0, 1, 1, regs=[0] * 3)
    with pytest.raises(OSError):          # not our tracee: ptrace refuses
        s.entry(0, os.getpid(), os.getpid())


def test_entry_with_given_registers_records_a_send_on_a_pipe():
    """The decoder reads this very process's memory: a write(fd, buf, 5) entry."""
    import ctypes
    r, w = os.pipe()
    try:
        buf = ctypes.create_string_buffer(b"hello")
        ret_slot = ctypes.c_uint64(0x1234)           # [sp] holds the return address
        sp = ctypes.addressof(ret_slot)
        call = [c["name"] for c in _core.catalogue()].index("write")
        s = _core.Session()
        regs = [w, ctypes.addressof(buf), 5, 0, 0, 0, sp, 0, 0, 0]
        action, return_pc = s.entry(call, os.getpid(), os.getpid(), regs=regs)
        assert (action, return_pc) == (_core.CATCH_RETURN, 0x1234)
        assert s.ret(os.getpid(), os.getpid(), regs=[0] * 6 + [sp + 8, 5, 0, 0]) == \
            _core.CONTINUE
        (ev,) = s.events()
        inode = os.fstat(w).st_ino
        assert (ev["dir"], ev["fn"], ev["fd"], ev["endpoint"]) == \
            ("send", "write", w, f"pipe:[{inode}]")
        assert (ev["len"], ev["ret"], ev["data"], ev["site"]) == (5, 5, b"hello", 0x1234)
    finally:
        os.close(r)
        os.close(w)


def test_write_to_regular_file_is_not_a_message(tmp_path):
    import ctypes
    with open(tmp_path / "f", "wb") as f:
        buf = ctypes.create_string_buffer(b"x")
        slot = ctypes.c_uint64(1)
        call = [c["name"] for c in _core.catalogue()].index("write")
        s = _core.Session()
        action, _ = s.entry(call, os.getpid(), os.getpid(),
                            regs=[f.fileno(), ctypes.addressof(buf), 1, 0, 0, 0,
                                  ctypes.addressof(slot), 0, 0, 0])
        assert action == _core.CONTINUE and s.count == 0 and s.not_ipc == 1


def test_catalogue_and_classes():
    names = [c["name"] for c in _core.catalogue()]
    for fn in ("write", "writev", "send", "sendto", "sendmsg", "read", "readv", "recv",
               "recvfrom", "recvmsg", "mq_send", "mq_timedsend", "mq_receive",
               "mq_timedreceive", "msgsnd", "msgrcv", "pthread_mutex_lock", "fork"):
        assert fn in names
    assert _core.parse_classes("send,recv") == 3
    with pytest.raises(ValueError, match="unknown class"):
        _core.parse_classes("send,bogus")


def test_catalogue_rows_say_what_the_driver_needs():
    """The driver learns from the rows, not from lists of names of its own: SysV queues are
    the calls whose handle is a msqid (run.py's mailbox snapshot)."""
    rows = _core.catalogue()
    assert {c["name"] for c in rows if c["handle"] == "msqid"} == {"msgsnd", "msgrcv"}
    assert {c["handle"] for c in rows} == {"fd", "mqd", "msqid", None}
    for c in rows:
        assert c["capture_return"] == (c["class"] in ("send", "recv"))
        assert (c["handle"] is None) == (c["class"] in ("sync", "proc"))


def test_endpoint_and_mailboxes_of_own_pipe():
    r, w = os.pipe()
    try:
        os.write(w, b"pending!")
        kind, name = _core.endpoint(os.getpid(), w)
        assert kind == "pipe" and name == f"pipe:[{os.fstat(w).st_ino}]"
        boxes = [b for b in _core.mailboxes(os.getpid(), preview=4) if b["fd"] == r]
        assert boxes and boxes[0]["pending"] == 8 and boxes[0]["data"] == b"pend"
        assert boxes[0]["truncated"]
        assert os.read(r, 100) == b"pending!"        # the snapshot consumed nothing
        with pytest.raises(OSError):
            _core.endpoint(os.getpid(), 987654)
        with pytest.raises(ValueError):
            _core.mailboxes(os.getpid(), preview=-1)
    finally:
        os.close(r)
        os.close(w)


def test_replay_keys_round_trip_and_are_checked(tmp_path):
    """The optional keys a replay needs (the run's timeout, the yield site selection) are
    written when given, read back, and the reader refuses them with a wrong type; a report
    without them still reads (they came after version 1)."""
    s = _core.Session()
    yld = {"enabled": True, "seed": 7, "strategy": "sleep:1000", "probability": 0.5,
           "sites": 3, "injected": 1, "classes": "sync", "module": None,
           "functions": ["pthread_mutex_lock", "sem_post"]}
    report = validate(s.render(dict(META, timeout=60, mode="agent", **{"yield": yld})))
    assert report["timeout"] == 60 and report["mode"] == "agent"
    assert {k: report["yield"][k] for k in ("classes", "module", "functions")} == \
        {"classes": "sync", "module": None, "functions": ["pthread_mutex_lock", "sem_post"]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    assert _core.load_report(str(path))["yield"]["functions"] == yld["functions"]
    plain = validate(s.render(META))
    assert "timeout" not in plain and "classes" not in plain["yield"]
    for key, bad in (("functions", "sem_post"), ("classes", 3), ("module", 1)):
        path.write_text(json.dumps(dict(report, **{"yield": dict(report["yield"], **{key: bad})})))
        with pytest.raises(ValueError, match=f"yield.{key}"):
            _core.load_report(str(path))
    path.write_text(json.dumps(dict(report, timeout=-1)))
    with pytest.raises(ValueError, match="timeout"):
        _core.load_report(str(path))
