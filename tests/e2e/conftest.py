"""pytest set-up for the end-to-end tests: builds the fixtures (the `make fixtures` command,
run directly so that the tests also work from a fresh tree) and checks once that gdb can load
the tracer at all, so that a broken front end fails with one clear message."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def built_fixtures():
    return harness.build_all()


@pytest.fixture(scope="session")
def tracer():
    ok, why = harness.tracer_available()
    if not ok:
        pytest.fail(f"the gdb front end cannot be loaded: {why}", pytrace=False)
    return harness.TRACER_PY
