"""A custom instrumenter from Python: a predicate chooses the sites, `insert` the strategy."""
from controller import run_gdb
from harness import REPO

BUGS = REPO / "build" / "bugs"


def test_custom_instrumenter_selects_sites_and_strategy(tmp_path, tracer):
    script = (
        "python\n"
        "import tracerlib.yields as y\n"
        "y.set_instrumenter(lambda module, function: function == 'pthread_mutex_lock',\n"
        "                   insert='sleep:300')\n"
        "end\n"
        "tracer yield on --probability 1 --seed 3\n"
        "tracer sites\n")
    run = run_gdb(BUGS / "lock_order", script=script, report="always", tmp=tmp_path,
                  timeout=120)
    assert "yields on at 2 call sites" in run.stdout, run.describe()
    assert "strategy sleep:300" in run.stdout, run.describe()
    table = [line.split() for line in run.stdout.splitlines() if line.startswith("transfer ")]
    assert {row[1] for row in table} == {"pthread_mutex_lock"}, run.describe()
    assert len(run.reports) == 1, [r["stop"] for r in run.reports]
    (report,) = run.reports
    assert report["yield"]["enabled"] and report["yield"]["strategy"] == "sleep:300"
    assert report["yield"]["sites"] == 2 and report["yield"]["injected"] >= 1
