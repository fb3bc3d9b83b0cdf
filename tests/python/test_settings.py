"""Setting.parse: what a user types for `set tracer NAME VALUE` (gdb) or
`settings set tracer.NAME VALUE` (lldb), before either debugger's own parsing matters."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tracerlib import _core  # noqa: E402
from tracerlib.settings import BY_NAME, SettingError, Values  # noqa: E402

CAP = BY_NAME["cap"]


@pytest.mark.parametrize("text, value", [
    ("1", 1), ("50", 50), (" 7 ", 7), ("+3", 3), ("010", 10), ("0x10", 16), ("0X1f", 31),
    (str(_core.CAP_MAX), _core.CAP_MAX), (12, 12),
])
def test_int_accepts_whole_numbers(text, value):
    assert CAP.parse(text) == value


@pytest.mark.parametrize("text", ["1.5", "1.0", "1e3", "1_000", "abc", "", " ", "0x", "--1",
                                  "5 6", "١٢", "inf", "nan", "0b11", "1,5"])
def test_int_refuses_anything_else_and_names_the_range(text):
    with pytest.raises(SettingError) as info:
        CAP.parse(text)
    msg = str(info.value)
    assert f"from 1 to {_core.CAP_MAX}" in msg and "whole number" in msg


@pytest.mark.parametrize("text", ["0", "-1", str(_core.CAP_MAX + 1), "0x7fffffffffffffffff"])
def test_int_out_of_range_names_the_range(text):
    with pytest.raises(SettingError, match=f"must be from 1 to {_core.CAP_MAX}"):
        CAP.parse(text)


def test_float_objects_are_refused():
    with pytest.raises(SettingError):
        CAP.parse(1.5)
    with pytest.raises(SettingError):
        CAP.parse(2.0)


def test_bounds_of_every_int_setting_are_in_their_messages():
    for s in BY_NAME.values():
        if s.kind != "int":
            continue
        assert s.parse(str(s.low)) == s.low and s.parse(str(s.high)) == s.high
        for bad in (str(s.low - 1), str(s.high + 1), "1.5", "x"):
            with pytest.raises(SettingError, match=f"{s.low} to {s.high}"):
                s.parse(bad)


@pytest.mark.parametrize("text", ["", "  ", "''", '""', "' '", "\t"])
def test_store_refuses_empty(text):
    with pytest.raises(SettingError, match="needs a value"):
        BY_NAME["store"].parse(text)


@pytest.mark.parametrize("text, value", [
    ("reports", "reports"), ("'my reports'", "my reports"), ('"/tmp/r"', "/tmp/r"),
    ("it's", "it's"), ("'a\"", "'a\""),
])
def test_store_unquotes_one_matching_pair(text, value):
    assert BY_NAME["store"].parse(text) == value


def test_store_refuses_control_characters():
    with pytest.raises(SettingError, match="control"):
        BY_NAME["store"].parse("a\nb")


def test_enum():
    assert BY_NAME["report"].parse("always") == "always"
    assert BY_NAME["report"].parse("'never'") == "never"
    with pytest.raises(SettingError, match="one of failure, always, never"):
        BY_NAME["report"].parse("sometimes")


def test_values_keep_the_old_value_on_error():
    v = Values()
    v.set("cap", "5")
    with pytest.raises(SettingError):
        v.set("cap", "1.5")
    assert v.cap == 5
    with pytest.raises(SettingError, match="no setting 'tracer nope'"):
        v.set("nope", "1")


@pytest.mark.parametrize("name, text", [
    ("trace", "send,recvmsg"), ("trace", "!recv"), ("trace", "send()"), ("trace", "'all'"),
    ("status", "!EAGAIN"), ("status", "successful"), ("status", "failed,!EINTR,EPIPE"),
    ("endpoint", "unix:*"), ("endpoint", "tcp:*:8080,!pipe:*"), ("endpoint", "a\\,b"),
])
def test_filters_accept_their_lists(name, text):
    assert BY_NAME[name].parse(text) == text.strip("'")


@pytest.mark.parametrize("name, text, why", [
    ("trace", "sendz", "'sendz' is neither a class"), ("trace", "sync", "'sync' is neither"),
    ("trace", "pthread_mutex_lock", "is a yield point"), ("trace", "send,,recv", "empty item"),
    ("status", "EAGAINX", "'EAGAINX' is not successful"), ("status", "!", "empty"),
    ("endpoint", ",".join(["x"] * 17), "at most 16 globs"), ("trace", "", "needs a value"),
])
def test_filters_refuse_with_one_line(name, text, why):
    values = Values()
    with pytest.raises(SettingError) as info:
        values.set(name, text)
    msg = str(info.value)
    assert why in msg and "\n" not in msg and msg.startswith(f"tracer {name}"), msg
    assert getattr(values, name) == BY_NAME[name].default, "a refused text changes nothing"
