"""Tracer's settings, declared once and mapped onto gdb parameters and lldb settings.

Every bound the recorder has is a setting here, with its default and its limit; the values in
force are written into every report.
"""
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from . import _core


class SettingError(ValueError):
    """A value a setting refuses; the message says what is allowed."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    doc: str
    low: Optional[int] = None       # ints: inclusive bounds
    high: Optional[int] = None
    choices: Tuple[str, ...] = ()   # enums
    check: Optional[Callable] = None  # strings: raises ValueError("NAME: why") on bad text

    @property
    def kind(self):
        if self.choices:
            return "enum"
        return "int" if isinstance(self.default, int) else "str"

    def parse(self, text):
        """Validates a user's text; returns the typed value or raises SettingError.

        ints: a whole number in decimal (or 0x hex), optionally signed, within [low, high];
        `1.5`, `1e3`, `1_000`, `abc` are refused, and every message names the range.
        strings and enums: one pair of matching quotes around the value is removed (gdb and
        lldb hand them over as typed), and an empty or blank value is refused."""
        if isinstance(text, bool):
            text = str(int(text))
        text = _unquote(str(text).strip())
        if self.kind == "int":
            value = _whole_number(text)
            if value is None:
                raise SettingError(f"tracer {self.name} takes a whole number "
                                   f"from {self.low} to {self.high}, not '{text}'")
            if not self.low <= value <= self.high:
                raise SettingError(f"tracer {self.name} must be from {self.low} to {self.high} "
                                   f"(got {value})")
            return value
        if self.kind == "enum":
            if text not in self.choices:
                raise SettingError(f"tracer {self.name} is one of {', '.join(self.choices)}, "
                                   f"not '{text}'")
            return text
        if not text.strip():
            raise SettingError(f"tracer {self.name} needs a value (not empty)")
        if any(ord(c) < 0x20 or c == "\x7f" for c in text):
            raise SettingError(f"tracer {self.name} may not contain control characters")
        if self.check is not None:
            try:
                self.check(text)
            except ValueError as e:
                raise SettingError(f"tracer {e}") from None
        return text


def _unquote(text):
    """'x' or "x" -> x (one pair, matching); anything else as it is."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _whole_number(text):
    """int of '42', '-1', '+7', '0x1f', '010' (decimal); None for anything else."""
    body = text[1:] if text[:1] in "+-" else text
    if body[:2].lower() == "0x":
        digits, base = body[2:], 16
        ok = digits and all(c in "0123456789abcdefABCDEF" for c in digits)
    else:
        digits, base = body, 10
        ok = digits and all(c in "0123456789" for c in digits)
    if not ok:
        return None
    value = int(digits, base)
    return -value if text[:1] == "-" else value


SETTINGS = (
    Setting("cap", _core.CAP_DEFAULT, "Events the ring keeps: the last CAP are reported.",
            1, _core.CAP_MAX),
    Setting("budget", _core.BUDGET_DEFAULT,
            "Events recorded in all before tracing stops (breakpoints removed, overflow set).",
            1, _core.BUDGET_MAX),
    Setting("payload", _core.PAYLOAD_DEFAULT,
            "Bytes of each message (and each mailbox) kept as a preview.", 0, _core.PAYLOAD_MAX),
    Setting("backtrace", _core.BACKTRACE_DEFAULT,
            "Frames kept per thread backtrace in a report.", 0, _core.BACKTRACE_MAX),
    Setting("store", "tracer-reports", "Directory the reports are written to."),
    Setting("report", "failure",
            "When a run writes a report: failure (fatal signal or non-zero exit), always, never.",
            choices=("failure", "always", "never")),
    Setting("timeout", 0,
            "Seconds a `tracer run` may take before it is interrupted, snapshotted and killed "
            "(0: no limit).", 0, 7 * 24 * 3600),
    Setting("mode", "auto",
            "How calls are recorded: agent (a library inside the program, no stop per call), "
            "breakpoint (a debugger stop per call), auto (agent where it can enter the program).",
            choices=("auto", "agent", "breakpoint")),
    Setting("trace", "all",
            "Which calls are recorded: classes send, recv, or functions (write, sendmsg; the "
            "functions send and recv alone are send(), recv()), comma-separated; !X leaves X "
            "out. Others get no breakpoint and cost nothing against cap and budget.",
            check=lambda text: _core.filter_check("trace", text)),
    Setting("status", "all",
            "Which outcomes are recorded: successful, failed, errno names (EAGAIN); !EAGAIN "
            "leaves those out. With a filter, sends take their slot at return.",
            check=lambda text: _core.filter_check("status", text)),
    Setting("endpoint", "*",
            "Which endpoints are recorded: globs on the endpoint name (unix:*, tcp:*:8080), "
            "comma-separated; !GLOB leaves those out.",
            check=lambda text: _core.filter_check("endpoint", text)),
)

FILTERS = ("trace", "status", "endpoint")

BY_NAME = {s.name: s for s in SETTINGS}


class Values:
    """The values in force; front ends write through set(), which validates."""

    def __init__(self):
        self._values = {s.name: s.default for s in SETTINGS}

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def set(self, name, text):
        setting = BY_NAME.get(name)
        if setting is None:
            raise SettingError(f"no setting 'tracer {name}': "
                               f"known are {', '.join(BY_NAME)}")
        self._values[name] = setting.parse(text)
        return self._values[name]

    def items(self):
        return list(self._values.items())

    def filters(self):
        """The filter texts in force, as Session.set_filter() and the report take them."""
        return {name: self._values[name] for name in FILTERS}
