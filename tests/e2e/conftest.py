"""pytest set-up for the end-to-end tests: builds the fixtures (the `make fixtures` command,
run directly so that the tests also work from a fresh tree), and gives tests their debugger.

A test that takes the argument `debugger` runs once per debugger (ids gdb, lldb); one that
takes `mode` once per data plane (controller.MODES). Either way the `debugger` value is a
controller.Debugger checked once per session: a debugger that is not installed skips (lldb-16:
scripts/install-deps installs it); one that is but cannot load its tracer port fails with one
clear message. Tests that only make sense under one debugger take `tracer` (gdb) or
`lldb_tracer` (lldb) instead.
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import controller  # noqa: E402
import harness  # noqa: E402

_checked = {}


def ready(name):
    """The Debugger called `name`, once it is known to load its tracer port."""
    dbg = controller.DEBUGGERS[name]
    if name not in _checked:
        _checked[name] = dbg.available()
    ok, why = _checked[name]
    if not ok:
        if "is not installed" in why:
            pytest.skip(f"{why} (scripts/install-deps installs it)")
        pytest.fail(f"the {name} front end cannot be loaded: {why}", pytrace=False)
    return dbg


def pytest_generate_tests(metafunc):
    if "debugger" in metafunc.fixturenames and not _parametrized(metafunc, "debugger"):
        metafunc.parametrize("debugger", sorted(controller.DEBUGGERS), indirect=True)
    if "mode" in metafunc.fixturenames and not _parametrized(metafunc, "mode"):
        metafunc.parametrize("mode", controller.MODES)


def _parametrized(metafunc, name):
    return any(name in m.args[0].replace(" ", "").split(",")
               for m in metafunc.definition.iter_markers("parametrize"))


@pytest.fixture
def debugger(request):
    return ready(request.param)


@pytest.fixture(scope="session", autouse=True)
def built_fixtures():
    return harness.build_all()


@pytest.fixture(scope="session")
def tracer():
    return ready("gdb")


@pytest.fixture(scope="session")
def lldb_tracer():
    return ready("lldb")
