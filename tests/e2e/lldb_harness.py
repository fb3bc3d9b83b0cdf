"""End-to-end harness for the lldb front end: run the real lldb-16 with lldb/tracer.py in batch
mode against a fixture and collect what it wrote, in the same GdbRun record harness.run_gdb
returns, so that harness's checks (validate, assert_events_match, assert_mailboxes_match...)
apply unchanged.

run_lldb() runs

    lldb-16 -b --no-lldbinit -o 'command script import lldb/tracer.py'
        -o 'tracer set store DIR' -o 'tracer set report always'
        [-o 'tracer set KEY VALUE' ...] [-o CMD ...] [-s SCRIPT] -o 'tracer run'
        [-o CMD ...] -- PROGRAM ARGS

in a fresh temporary directory with stdin /dev/null and lldb's stdout/stderr in regular files
there. Unlike gdb, lldb gives the program a pseudo-terminal for its stdio and copies what it
prints into lldb's own stdout (stderr included).
"""
import os
import shutil
import subprocess
import time
from pathlib import Path

import harness

LLDB = os.environ.get("TRACER_LLDB", "lldb-16")
TRACER_PY = harness.REPO / "lldb" / "tracer.py"


def lldb_available():
    """(True, '') when lldb-16 loads lldb/tracer.py and knows `help tracer`, else (False, why)."""
    if not shutil.which(LLDB):
        return False, f"{LLDB} is not installed"
    if not TRACER_PY.exists():
        return False, f"{TRACER_PY} does not exist yet"
    p = subprocess.run([LLDB, "-b", "--no-lldbinit", "-o", f"command script import {TRACER_PY}",
                        "-o", "help tracer run"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    if p.returncode != 0 or "Traceback" in p.stderr or "tracer run" not in p.stdout:
        return False, f"lldb could not load lldb/tracer.py:\n{p.stdout}{p.stderr}"
    return True, ""


def run_lldb(program, args=(), settings=None, commands=(), after=(), env=None, timeout=120,
             script=None, run_command="tracer run", report="always", store=None, tmp=None,
             lldb_args=(), keep=(), during=None):
    """Runs lldb-16 with the tracer in batch mode against `program` (a path, or None) and
    returns a harness.GdbRun (its gdb-named fields hold lldb's command line and output).

    settings: {key: value} -> -o 'tracer set KEY VALUE', after store and report.
    commands: extra -o commands before `script` and `run_command`.
    script:   text of lldb commands, written to tmp/script.lldb and run with
              `command source -e false` (so a failing command there does not end the batch).
    run_command: the command that runs the program ('tracer run'; None: none).
    after:    -o commands after run_command (lldb -b skips them if run_command failed).
    during:   called with (Popen, tmp) once lldb has started (e.g. to send it a signal).
    """
    tmp = harness.make_tmp(tmp)
    store = Path(store) if store else tmp / "store"
    e = harness.fixture_env(tmp, env)
    argv = [LLDB, "-b", "--no-lldbinit", *lldb_args,
            "-o", f"command script import {TRACER_PY}", "-o", f"tracer set store {store}"]
    if report is not None:
        argv += ["-o", f"tracer set report {report}"]
    for k, v in (settings or {}).items():
        argv += ["-o", f"tracer set {k} {v}"]
    for c in commands:
        argv += ["-o", c]
    if script is not None:
        sp = tmp / "script.lldb"
        sp.write_text(script)
        argv += ["-o", f"command source -e false {sp}"]
    if run_command:
        argv += ["-o", run_command]
    for c in after:
        argv += ["-o", c]
    if program is not None:
        argv += ["--", str(program), *[str(a) for a in args]]

    out_path, err_path = tmp / "lldb.stdout", tmp / "lldb.stderr"
    t0 = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, cwd=tmp, env=e, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        timed_out = False
        try:
            if during is not None:
                during(proc, tmp)
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            harness._kill_group(proc.pid)
            rc = proc.wait()
    duration = time.monotonic() - t0
    leftovers = harness.kill_leftovers(tmp, keep)
    run = collect(argv, rc, tmp, store, duration)
    run.leftovers = leftovers
    if timed_out:
        raise harness.GdbTimeout(f"lldb did not finish within {timeout} s and was killed\n"
                                 + run.describe())
    return run


def collect(argv, rc, tmp, store, duration=0.0):
    """harness.collect with lldb's output files."""
    for name in ("stdout", "stderr"):
        src = tmp / f"lldb.{name}"
        if src.exists():
            shutil.copyfile(src, tmp / f"gdb.{name}")   # what harness.collect reads
    return harness.collect(argv, rc, tmp, store, duration)


def assert_lldb_sane(run):
    """lldb did not crash, print a Python traceback, or report a Tracer internal error."""
    bad = ("Traceback (most recent", "PLEASE submit a bug report", "Stack dump:",
           "tracer: internal error", "error: python", "Segmentation fault (core dumped)")
    found = [b for b in bad if b in run.output]
    assert not found, f"lldb trouble ({found}):\n" + run.describe()
    assert run.returncode >= 0, f"lldb killed by signal {-run.returncode}\n" + run.describe()


def build_c(source, name, tmp, flags=("-g", "-O0")):
    """Compiles a small C program written by a test (fixture.h on the include path)."""
    src = Path(tmp) / f"{name}.c"
    src.write_text(source)
    out = Path(tmp) / name
    cmd = [harness.CC, *harness.CFLAGS, *flags, f"-I{harness.FIXTURE_SRC}", "-o", str(out),
           str(src), "-lpthread", "-lrt"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0 or p.stderr.strip():
        raise RuntimeError(f"building {name} failed or warned:\n$ {' '.join(cmd)}\n{p.stderr}")
    return out
