"""bin/tracer hunt's view of a hunt: a progress bar on a terminal (run i of N, failures,
elapsed, runs per second), plain lines otherwise, and a JUnit XML result for CI systems.

It reads the lines the driver's hunt prints (frontend.hunt): "hunt: run I of N, seed S:
passed (...)" or "...: FAILED - OUTCOME".
"""
import os
import re
import time
from xml.etree import ElementTree

RUN_LINE = re.compile(r"^hunt: run \d+ of \d+, (?P<seed>seed (?P<n>\d+)(?: \(\w+\))?): "
                      r"(?P<verdict>passed|FAILED)(?: - (?P<outcome>.*))?")
# A run the debugger itself failed under: not counted; bin/tracer goes on in a new debugger.
SPOILT_LINE = re.compile(r"^hunt: run \d+ of \d+, seed (\d+)(?: \(\w+\))?: not counted - ")
_REPORT = re.compile(r"report: (\S+)$")
BAR_WIDTH = 24


class View:
    def __init__(self, runs, out):
        self.runs, self.out = runs, out
        self.tty = out.isatty()
        self.started = time.monotonic()
        self.last = self.started
        self.done = []              # (seed, passed, seconds, outcome)
        self.spoilt = []            # seeds of runs the debugger failed under (not counted)
        self.bar_shown = False

    def line(self, text):
        """A line of the debugger's (None: another line is about to be written). True when
        it was taken here."""
        if text is None:
            self._clear()
            return False
        spoilt = SPOILT_LINE.match(text)
        if spoilt:
            self.spoilt.append(int(spoilt.group(1)))
            self._clear()
            self._write(text + "\n")
            return True
        m = RUN_LINE.match(text)
        if not m:
            return False
        now = time.monotonic()
        passed = m["verdict"] == "passed"
        self.done.append((int(m["n"]), passed, now - self.last, m["outcome"] or ""))
        self.last = now
        if not passed:
            self._clear()
            self._write(f"{text} ({self._numbers()})\n")
        elif self.tty:
            self._clear()
            self._write(self._bar())
            self.bar_shown = True
        else:
            self._write(f"hunt: run {self.made} of {self.runs}, {m['seed']}: "
                        f"passed ({self._numbers()})\n")
        return True

    @property
    def made(self):
        """Runs made so far, across debuggers, those not counted included."""
        return len(self.done) + len(self.spoilt)

    @property
    def failures(self):
        return sum(1 for _, passed, _, _ in self.done if not passed)

    def _numbers(self):
        elapsed = time.monotonic() - self.started
        rate = len(self.done) / elapsed if elapsed > 0 else 0.0
        return (f"{self.failures} failures, {elapsed:.1f} s, {rate:.2f} runs/s")

    def _bar(self):
        filled = BAR_WIDTH * len(self.done) // max(self.runs, 1)
        return (f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] run {len(self.done)} of "
                f"{self.runs}, {self._numbers()}")

    def _clear(self):
        if self.bar_shown:
            self._write("\r\033[K")
            self.bar_shown = False

    def _write(self, text):
        self.out.write(text)
        self.out.flush()

    def close(self):
        self._clear()


def write_junit(path, program, view, status, closing, report):
    """One test case per run (named by its seed), the failing one with the report's path and
    the command that replays it; Tracer's own error as an <error> case."""
    name = os.path.basename(program)
    total = sum(seconds for _, _, seconds, _ in view.done)
    suites = ElementTree.Element("testsuites")
    suite = ElementTree.SubElement(suites, "testsuite", name=f"tracer hunt {name}",
                                   tests=str(len(view.done) + (status == 2)),
                                   failures=str(view.failures), errors=str(int(status == 2)),
                                   time=f"{total:.3f}")
    for seed, passed, seconds, outcome in view.done:
        case = ElementTree.SubElement(suite, "testcase", classname=f"tracer.hunt.{name}",
                                      name=f"seed {seed}", time=f"{seconds:.3f}")
        if not passed:
            failure = ElementTree.SubElement(case, "failure",
                                             message=f"{outcome} (seed {seed})",
                                             type="program failure")
            own = _REPORT.search(outcome)   # (a find set aside kept its own report)
            kept = own.group(1) if own else report
            failure.text = (f"seed: {seed}\nreport: {kept}\n"
                            f"replay: bin/tracer replay {kept} --runs 10\n")
    if status == 2:
        case = ElementTree.SubElement(suite, "testcase", classname=f"tracer.hunt.{name}",
                                      name="tracer")
        ElementTree.SubElement(case, "error", message=closing, type="tracer error")
    ElementTree.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
