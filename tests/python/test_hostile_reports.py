"""Reports as untrusted input, from Python: `tracer show FILE` and `tracer export --from FILE`
get either a well-typed dict or one ValueError/OSError with a one-line message, and the views
(show.report_text, export.chrome, export.html) never raise on a report the reader accepted.
Exports are written as reports are: 0600, never over a file, never through a symlink.
"""
import copy
import json
import os
import random
import stat
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import _core, export, show  # noqa: E402
from tracerlib.run import TracerError  # noqa: E402

SEEDS = os.path.join(ROOT, "tests", "fuzz", "seeds")
SEED_FILES = sorted(os.path.join(SEEDS, f) for f in os.listdir(SEEDS) if f.endswith(".json"))


def views(report):
    """Everything a user can ask of a loaded report; must not raise."""
    show.report_text(report)
    show.report_text(report, last=1)
    json.dumps(export.chrome(report))
    export.html(report)


def load_or_error(path):
    try:
        return _core.load_report(str(path))
    except (ValueError, OSError) as e:
        assert "\n" not in str(e), str(e)
        return None


@pytest.mark.parametrize("seed", SEED_FILES, ids=os.path.basename)
def test_seed_reports_load_and_render(seed):
    views(_core.load_report(seed))


@pytest.mark.parametrize("body, message", [
    ("[" * 400000, "nested deeper than 64 levels"),
    ('{"version":1,"x":' + "[" * 400000 + "]" * 400000 + "}", "nested deeper"),
    ('{"version":1}', '"key" is missing'),
    ('{"version":2}', "report version 2"),
    ("", "empty"),
    ("{/* */}", "comment"),
])
def test_hostile_files_give_one_value_error(tmp_path, body, message):
    path = tmp_path / "r.json"
    path.write_text(body)
    with pytest.raises(ValueError) as info:
        _core.load_report(str(path))
    text = str(info.value)
    assert message in text and "\n" not in text
    assert text.startswith(str(path) + ": ") and text.count(str(path)) == 1


def _valid():
    with open(os.path.join(SEEDS, "glance.json")) as f:
        return json.load(f)


WRONG_TYPES = [
    ("recorder", "x", '"recorder" must be an object'),
    ("recorder.cap", 1.5, '"recorder.cap" must be an integer'),
    ("recorder.overflow", 0, '"recorder.overflow" must be true or false'),
    ("events.0.ret", "3", '"events[0].ret" must be an integer or null'),
    ("events.0.site", None, '"events[0].site" must be an object'),
    ("processes.0.threads", {}, '"processes[0].threads" must be an array'),
    ("stop.pid", None, '"stop.pid" must be an integer'),
    ("yield.seed", 2 ** 64, '"yield.seed" must be an unsigned 64-bit integer'),
]


def _set(doc, dotted, value):
    *parents, last = dotted.split(".")
    for p in parents:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    if isinstance(doc, list):
        doc[int(last)] = value
    else:
        doc[last] = value


@pytest.mark.parametrize("where, value, message", WRONG_TYPES)
def test_wrong_types_are_refused_by_name(tmp_path, where, value, message):
    doc = _valid()
    _set(doc, where, value)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _core.load_report(str(path))


def test_big_seed_stays_an_int(tmp_path):
    report = _core.load_report(os.path.join(SEEDS, "glance.json"))
    assert report["yield"]["seed"] == 2 ** 64 - 1 and isinstance(report["yield"]["seed"], int)


def _random_text(rng):
    return rng.choice(["", "x", "caf\u00e9", "\u202e", "a" * 300, "<b>&amp;", "\\x00", "{}"])


def _random_valid(rng):
    """A report the schema accepts, nulls and odd values where it allows them."""
    doc = copy.deepcopy(_valid())
    nul = lambda v: None if rng.random() < 0.5 else v  # noqa: E731
    doc["program"]["path"] = nul(_random_text(rng))
    doc["started"], doc["debugger"] = nul(_random_text(rng)), nul(_random_text(rng))
    doc["stop"].update(reason=nul(_random_text(rng)), signal=nul(rng.choice(["SIG34", "SIGX"])),
                       status=nul(rng.randrange(0, 256)), pid=rng.randrange(-5, 5))
    for ev in doc["events"]:
        ev.update(fn=nul(_random_text(rng)), endpoint=_random_text(rng),
                  ret=nul(rng.randrange(-2 ** 63, 2 ** 63)), len=rng.randrange(-9, 9),
                  pid=rng.randrange(-3, 3), tid=rng.randrange(-3, 3),
                  dir=rng.choice(["send", "recv"]), data=rng.choice(["", "\\n\\x00", "a"]))
        ev["site"].update(function=nul("f"), file=nul(_random_text(rng)), line=nul(1))
    for proc in doc["processes"]:
        proc.update(exit_status=nul(0), exit_signal=nul("SIGKILL"), alive=rng.random() < .5)
        for th in proc["threads"]:
            th["name"] = nul(_random_text(rng))
            for fr in th["backtrace"]:
                fr.update(function=nul("g"), file=nul(_random_text(rng)), line=nul(9))
        for mb in proc["mailboxes"]:
            mb.update(endpoint=nul(_random_text(rng)), pending=nul(3), messages=nul(1),
                      data=nul("\\xff"), error=nul(_random_text(rng)))
    doc["yield"].update(strategy=nul(_random_text(rng)), probability=nul(rng.random()),
                        enabled=rng.random() < 0.5)
    if rng.random() < 0.3:
        doc["events"] = []
    if rng.random() < 0.3:
        doc["future_key"] = [[{"deep": [1e300]}]]
    return doc


def test_views_never_raise_on_what_the_reader_accepts(tmp_path):
    seed = int(os.environ.get("TRACER_TEST_SEED", "12"))
    rng = random.Random(seed)
    path = tmp_path / "r.json"
    for i in range(200):
        path.write_text(json.dumps(_random_valid(rng)))
        report = _core.load_report(str(path))
        try:
            views(report)
        except Exception as e:  # pragma: no cover - the message is the point
            raise AssertionError(f"seed {seed} iteration {i}: {e!r}") from e


def test_mutated_seeds_load_or_fail_in_one_line(tmp_path):
    """A small, deterministic cousin of tests/fuzz (which runs the C reader for longer)."""
    rng = random.Random(int(os.environ.get("TRACER_TEST_SEED", "12")))
    blobs = [open(f, "rb").read() for f in SEED_FILES]
    path = tmp_path / "r.json"
    accepted = 0
    for _ in range(600):
        data = bytearray(rng.choice(blobs))
        for _ in range(rng.randrange(1, 4)):
            op = rng.randrange(4)
            pos = rng.randrange(len(data))
            if op == 0:
                data[pos] ^= 1 << rng.randrange(8)
            elif op == 1:
                del data[pos:]
            elif op == 2:
                data[pos:pos] = rng.choice([b"[" * 100, b"{}", b"1e999", b"\xff", b'"', b"null"])
            else:
                data[pos] = rng.choice(b'0 -."nt{}[]')
            if not data:
                data = bytearray(b"{")
        path.write_bytes(bytes(data))
        report = load_or_error(path)
        if report is not None:
            accepted += 1
            views(report)
    assert accepted > 0   # some mutations keep a valid report: the views were exercised


# ---------------------------------------------------------------------------- exports

def test_export_is_0600_and_never_overwrites(tmp_path):
    out = tmp_path / "trace.json"
    line = export.export(f"{out} --from {os.path.join(SEEDS, 'glance.json')}", None)
    assert line.startswith("tracer: 2 events exported")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert json.loads(out.read_text())["traceEvents"]
    page = tmp_path / "page.html"
    export.export(f"{page} --format html --from {os.path.join(SEEDS, 'glance.json')}", None)
    assert stat.S_IMODE(os.stat(page).st_mode) == 0o600
    before = out.read_bytes()
    with pytest.raises(TracerError, match="File exists"):
        export.export(f"{out} --from {os.path.join(SEEDS, 'nulls.json')}", None)
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["page.html", "trace.json"]   # no temp left


def test_export_refuses_symlinks(tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep")
    os.symlink(target, tmp_path / "link.json")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling.json")
    for name in ("link.json", "dangling.json"):
        with pytest.raises(TracerError, match="File exists"):
            export.export(f"{tmp_path / name} --from {os.path.join(SEEDS, 'glance.json')}",
                          None)
    assert target.read_text() == "keep" and not (tmp_path / "nowhere").exists()


def test_export_of_a_hostile_report_is_one_error(tmp_path):
    bomb = tmp_path / "bomb.json"
    bomb.write_text("[" * 400000)
    with pytest.raises(TracerError, match="nested deeper") as info:
        export.export(f"{tmp_path / 'out.json'} --from {bomb}", None)
    assert str(info.value) == f"cannot read report {bomb}: nested deeper than 64 levels"
    assert not (tmp_path / "out.json").exists()
    with pytest.raises(TracerError) as info:
        export.export(f"{tmp_path / 'out.json'} --from {tmp_path / 'missing.json'}", None)
    assert str(info.value) == (f"cannot read report {tmp_path / 'missing.json'}: "
                               "No such file or directory")
