"""Runs every test suite and ends with one line: 'tests: N passed, M failed'.

Suites: the Criterion unit tests (plain, then under AddressSanitizer + UBSan), the Python
tests of the binding, the fuzzing of the report reader (bounded time: TRACER_FUZZ_SECONDS,
default 20, split between the plain driver and libFuzzer when clang built it; the seed is
printed and TRACER_FUZZ_SEED replays it), and the end-to-end tests that drive gdb (and lldb)
against fixtures.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"   # the interpreter gdb and lldb-16 embed


def criterion(binary, extra_env=None):
    env = dict(os.environ, **(extra_env or {}))
    proc = subprocess.run([binary, "--jobs=2", "--short-filename"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(proc.stdout)
    m = re.search(r"Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)",
                  proc.stdout)
    if not m:
        return 0, 1                       # it died before its summary: count it failed
    tested, passing, failing, crashing = map(int, m.groups())
    return passing, tested - passing + (1 if proc.returncode and tested == passing else 0)


def pytest(paths):
    proc = subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(proc.stdout)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", tail)) else 0
    failed = sum(int(x) for x in re.findall(r"(\d+) (?:failed|error)", tail))
    if proc.returncode not in (0, 5) and not failed:
        failed = 1
    return passed, failed


def fuzz():
    """The report reader under hostile bytes: each driver that ran to its time limit without
    a finding counts as one passed test."""
    seconds = float(os.environ.get("TRACER_FUZZ_SECONDS", "20"))
    seed = int(os.environ.get("TRACER_FUZZ_SEED") or time.time_ns() % 2 ** 31 or 1)
    plain = os.path.join(ROOT, "build", "fuzz_report")
    libfuzzer = os.path.join(ROOT, "build", "fuzz_report_libfuzzer")
    have_lf = os.access(libfuzzer, os.X_OK)
    share = seconds / 2 if have_lf else seconds
    seeds = os.path.join(ROOT, "tests", "fuzz", "seeds")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    print(f"fuzz seed {seed} (replay: TRACER_FUZZ_SEED={seed}), {seconds:g} s", flush=True)
    passed = failed = 0
    if not os.access(plain, os.X_OK):
        print(f"{plain} missing: run `make fuzz`")
        return 0, 1
    proc = subprocess.run([plain, "--seconds", f"{share:g}", "--seed", str(seed), seeds],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    sys.stdout.write(proc.stdout[-4000:])
    passed, failed = (passed + 1, failed) if proc.returncode == 0 else (passed, failed + 1)
    if have_lf:
        corpus = tempfile.mkdtemp(prefix="tracer-fuzz-")   # libFuzzer writes into the first
        try:
            proc = subprocess.run(
                [libfuzzer, f"-max_total_time={max(1, int(share))}", f"-seed={seed}",
                 "-max_len=65536", "-timeout=10", "-rss_limit_mb=2048",
                 "-dict=" + os.path.join(ROOT, "tests", "fuzz", "report.dict"),
                 "-artifact_prefix=" + os.path.join(ROOT, "build", "fuzz-"),
                 "-print_final_stats=1", corpus, seeds],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        finally:
            shutil.rmtree(corpus, ignore_errors=True)
        lines = proc.stdout.splitlines()
        if proc.returncode == 0:
            print("\n".join(ln for ln in lines if ln.startswith(("Done", "stat::", "INFO: Seed"))))
            passed += 1
        else:
            sys.stdout.write("\n".join(lines[-80:]) + "\n")
            failed += 1
    else:
        print("libFuzzer driver not built (no clang): the plain driver ran alone")
    return passed, failed


def main():
    selected = set(sys.argv[1:]) or {"unit", "asan", "python", "fuzz", "e2e"}
    total_pass = total_fail = 0
    suites = [
        ("unit", lambda: criterion(os.path.join(ROOT, "build/unit_tests"))),
        ("asan", lambda: criterion(os.path.join(ROOT, "build/unit_tests_asan"),
                                   {"ASAN_OPTIONS": "detect_leaks=1",
                                    "LSAN_OPTIONS": "suppressions="
                                    + os.path.join(ROOT, "tests", "lsan.supp"),
                                    "UBSAN_OPTIONS": "print_stacktrace=1"})),
        ("python", lambda: pytest(["tests/python"])),
        ("fuzz", fuzz),
        ("e2e", lambda: pytest(["tests/e2e"])),
    ]
    for name, run in suites:
        if name not in selected:
            continue
        print(f"== {name} ==", flush=True)
        passed, failed = run()
        print(f"== {name}: {passed} passed, {failed} failed ==", flush=True)
        total_pass += passed
        total_fail += failed
    print(f"tests: {total_pass} passed, {total_fail} failed")
    return 1 if total_fail or not total_pass else 0


if __name__ == "__main__":
    sys.exit(main())
