"""Runs every test suite and ends with one line: 'tests: N passed, M failed'.

Suites: the Criterion unit tests (plain, then under AddressSanitizer + UBSan), the Python
tests of the binding, and the end-to-end tests that drive gdb (and lldb) against fixtures.
"""
import os
import re
import subprocess
import sys

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


def main():
    selected = set(sys.argv[1:]) or {"unit", "asan", "python", "e2e"}
    total_pass = total_fail = 0
    suites = [
        ("unit", lambda: criterion(os.path.join(ROOT, "build/unit_tests"))),
        ("asan", lambda: criterion(os.path.join(ROOT, "build/unit_tests_asan"),
                                   {"ASAN_OPTIONS": "detect_leaks=1",
                                    "LSAN_OPTIONS": "suppressions="
                                    + os.path.join(ROOT, "tests", "lsan.supp"),
                                    "UBSAN_OPTIONS": "print_stacktrace=1"})),
        ("python", lambda: pytest(["tests/python"])),
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
