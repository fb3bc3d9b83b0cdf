"""End-to-end harness, the debugger-free half: the fixture programs and the processes a run
leaves behind.

A fixture (tests/fixtures/NAME.c) appends one JSON line per IPC call it makes to the file named
by $TRACER_EXPECT (see tests/fixtures/fixture.h); a crashing fixture may also write the bytes it
leaves pending to $TRACER_EXPECT_PENDING. fixture_env() sets both in a run's directory and
read_jsonl() reads them back.

Running a debugger is controller.py's job (one controller for gdb and lldb); comparing what it
reported with what the fixture wrote down is checks.py's.
"""

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURE_SRC = REPO / "tests" / "fixtures"
BUILD = REPO / "build" / "fixtures"
CC = os.environ.get("CC", "gcc")
CFLAGS = ["-std=gnu11", "-g", "-Wall", "-Wextra", "-Wno-unused-parameter"]
OPTS = ("O0", "O2")


# --------------------------------------------------------------------------- fixtures

def fixture_path(name, opt="O0"):
    """build/fixtures/NAME for -O0, build/fixtures/NAME-O2 for -O2 (the Makefile's names)."""
    if opt not in OPTS:
        raise ValueError(f"opt must be one of {OPTS}, not {opt!r}")
    return BUILD / (name if opt == "O0" else f"{name}-O2")


def build_fixture(name, opt="O0"):
    """Compiles one fixture unless its binary is newer than its source and fixture.h (the same
    command as `make fixtures`). Returns the binary's path; raises with gcc's output on error."""
    src = FIXTURE_SRC / f"{name}.c"
    out = fixture_path(name, opt)
    deps = [src, FIXTURE_SRC / "fixture.h"]
    if out.exists() and all(out.stat().st_mtime >= d.stat().st_mtime for d in deps):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    cmd = [CC, *CFLAGS, f"-{opt}", "-o", str(tmp), str(src), "-lpthread", "-lrt"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0 or p.stderr.strip():
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"building fixture {name} (-{opt}) failed or warned:\n"
                           f"$ {' '.join(cmd)}\n{p.stderr}")
    os.replace(tmp, out)
    return out


def all_fixture_names():
    return sorted(p.stem for p in FIXTURE_SRC.glob("*.c"))


def build_all():
    return [build_fixture(n, o) for n in all_fixture_names() for o in OPTS]


def build_c(source, name, tmp, flags=("-g", "-O0")):
    """Compiles a small C program written by a test (fixture.h on the include path)."""
    src = Path(tmp) / f"{name}.c"
    src.write_text(source)
    out = Path(tmp) / name
    cmd = [CC, *CFLAGS, *flags, f"-I{FIXTURE_SRC}", "-o", str(out), str(src), "-lpthread",
           "-lrt"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0 or p.stderr.strip():
        raise RuntimeError(f"building {name} failed or warned:\n$ {' '.join(cmd)}\n{p.stderr}")
    return out


DELAYS_C = r"""
/* delays [OUT [N [FAIL_ABOVE_US]]]: N times (default 4), times one pthread_mutex_lock call
 * with CLOCK_MONOTONIC and writes the durations (microseconds, one a line) to OUT (default
 * delays.txt). Exit 1 when one took longer than FAIL_ABOVE_US (default 100000; 0: never).
 * One thread: its yield decisions depend on the seed alone, and an injected sleep shows as a
 * slow lock. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

static long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	FILE *out = fopen(argc > 1 ? argv[1] : "delays.txt", "w");
	int n = argc > 2 ? atoi(argv[2]) : 4, slow = 0;
	long limit = argc > 3 ? atol(argv[3]) : 100000;

	if (!out)
		return 2;
	for (int i = 0; i < n; i++) {
		long t0 = now_us(), d;

		pthread_mutex_lock(&m);
		d = now_us() - t0;
		pthread_mutex_unlock(&m);
		fprintf(out, "%ld\n", d);
		if (limit && d > limit)
			slow = 1;
	}
	fclose(out);
	return slow;
}
"""


BUG_SRC = FIXTURE_SRC / "bugs"
BUGS = REPO / "build" / "bugs"
BUG_CFLAGS = ["-std=gnu11", "-g", "-O0", "-Wall", "-Wextra", "-Wno-unused-parameter",
              "-pthread"]                                   # the Makefile's


def compile_c(out, sources, flags):
    """gcc FLAGS -o OUT SOURCES; fails the test with gcc's output on error."""
    cmd = ["gcc", *flags, "-o", str(out), *[str(s) for s in sources]]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, f"$ {' '.join(cmd)}\n{p.stderr}"
    return out


def bug(name):
    """build/bugs/NAME, rebuilt with the Makefile's command when missing or stale (the
    conftest builds tests/fixtures only)."""
    src, out = BUG_SRC / f"{name}.c", BUGS / name
    # a fixture may include the others' sources (watchdog.h, setters_checker.c)
    newest = max(f.stat().st_mtime for f in BUG_SRC.glob("*.[ch]"))
    if not out.exists() or out.stat().st_mtime < newest:
        BUGS.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{name}.tmp{os.getpid()}")
        compile_c(tmp, [src], BUG_CFLAGS)
        os.replace(tmp, out)
    return out


# --------------------------------------------------------------------------- processes

_FOUND = re.compile(r"hunt found a failure with seed (\d+) \(it failed again in (\d+) of "
                    r"(\d+) confirming runs\)")


def hunt_found(text, report_paths):
    """The find a hunt ended with, from its closing line in `text`: (seed, confirmed: it
    failed again in every confirming run, its report's path among report_paths, or None).
    None when the hunt found nothing."""
    m = _FOUND.search(text)
    if not m:
        return None
    seed = int(m.group(1))
    paths = [p for p in report_paths if str(p).endswith(f"-s{seed}.json")]
    return seed, m.group(2) == m.group(3), paths[0] if len(paths) == 1 else None


def make_tmp(tmp=None):
    if tmp is None:
        return Path(tempfile.mkdtemp(prefix="tracer-e2e-"))
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


def fixture_env(tmp, env=None):
    """The environment a fixture needs: TRACER_EXPECT and TRACER_EXPECT_PENDING in tmp."""
    e = dict(os.environ)
    e.pop("TRACER_EXPECT", None)
    e.pop("TRACER_EXPECT_PENDING", None)
    e["TRACER_EXPECT"] = str(tmp / "expect.jsonl")
    e["TRACER_EXPECT_PENDING"] = str(tmp / "pending.jsonl")
    e.setdefault("LC_ALL", "C")
    e.update(env or {})
    (tmp / "expect.jsonl").touch()
    return e


def read_jsonl(path):
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            raise AssertionError(f"{path}:{i}: torn or invalid expectation line "
                                 f"(a fixture bug): {exc}: {line!r}") from None
    return out


def processes_in(tmp):
    """Pids of live processes whose working directory is tmp: everything a run started
    (gdb, the program and its children all start there)."""
    tmp = os.path.realpath(tmp)
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            if os.readlink(f"/proc/{d}/cwd") == tmp:
                pids.append(int(d))
        except OSError:
            pass
    return pids


def kill_leftovers(tmp, keep=()):
    """SIGKILLs what is still running in tmp (a tracer that failed to kill a hung program, a
    gdb that hung), except the pids in keep. Returns the pids it killed."""
    killed = []
    for _ in range(3):
        pids = [p for p in processes_in(tmp) if p not in keep]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    return killed


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def start_program(program, args=(), tmp=None, env=None):
    """Starts a fixture outside any debugger (for attach tests), in tmp with the fixture
    environment and its output in tmp/program.stdout|stderr. Returns (Popen, tmp)."""
    tmp = make_tmp(tmp)
    e = fixture_env(tmp, env)
    out = open(tmp / "program.stdout", "wb")
    err = open(tmp / "program.stderr", "wb")
    p = subprocess.Popen([str(program), *[str(a) for a in args]], cwd=tmp, env=e,
                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    out.close()
    err.close()
    return p, tmp


def wait_for_lines(path, n, timeout=10.0):
    """Waits until the JSON-lines file at path holds at least n lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(path).exists() and len(Path(path).read_text().splitlines()) >= n:
            return True
        time.sleep(0.02)
    return False
