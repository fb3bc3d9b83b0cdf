#!/usr/bin/python3
"""What `tracer attach` costs a running program per traced call, by data plane: a program
sleeps for 5 s (the debugger attaches meanwhile), then makes ROUNDS write+read round
trips on a pipe and prints the ns each took. Run untraced, attached in agent mode and in
breakpoint mode, under gdb and lldb-16 (breakpoint mode gets fewer rounds: each call is a
debugger stop). Prints µs per traced call (2 calls a round) and what tracing adds.

    make && bench/bench_attach.py [ROUNDS] [BREAKPOINT_ROUNDS]
"""
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	int rounds = atoi(argv[1]), fds[2];
	char msg[32], buf[32];
	struct timespec t0, t1;
	if (pipe(fds)) return 2;
	fprintf(stderr, "ready\n");
	usleep(atoi(argv[2]) * 1000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < rounds; i++) {
		int n = snprintf(msg, sizeof msg, "msg %07d", i);
		if (write(fds[1], msg, (size_t)n) != n || read(fds[0], buf, sizeof buf) != n) return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.0f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / rounds);
	return 0;
}
"""
DEBUGGERS = {
    "gdb": lambda pid, store, mode: [
        "gdb", "-q", "-batch", "-nx", "-x", f"{ROOT}/gdb/tracer.py",
        "-ex", f"set tracer store {store}", "-ex", f"set tracer mode {mode}",
        "-ex", "set tracer budget 100000000", "-ex", f"tracer attach {pid}", "-ex", "tracer run"],
    "lldb": lambda pid, store, mode: [
        "lldb-16", "-b", "--no-lldbinit", "-o", f"command script import {ROOT}/lldb/tracer.py",
        "-o", f"tracer set store {store}", "-o", f"tracer set mode {mode}",
        "-o", "tracer set budget 100000000", "-o", f"tracer attach {pid}", "-o", "tracer run"],
}


def once(program, rounds, argv_of=None, mode=None):
    """ns per round trip of one run, attached by argv_of(pid, store, mode) unless None."""
    with tempfile.TemporaryDirectory() as tmp:
        err = open(os.path.join(tmp, "err"), "w+")
        proc = subprocess.Popen([program, str(rounds), "5000"], stdout=subprocess.PIPE,
                                stderr=err, text=True)
        while "ready" not in open(err.name).read():
            time.sleep(0.01)
        if argv_of:
            done = subprocess.run(argv_of(proc.pid, tmp, mode), capture_output=True,
                                  text=True, timeout=900)
            for line in done.stderr.splitlines():
                if "covers it" in line:           # the agent could not enter: say so
                    print("   ", line)
        out = proc.communicate(timeout=900)[0]
    return float(out.strip()) if re.fullmatch(r"\d+(\.\d+)?", out.strip()) else float("nan")


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    bp_rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    with tempfile.TemporaryDirectory() as tmp:
        program = os.path.join(tmp, "attach_pipe")
        subprocess.run(["gcc", "-O2", "-o", program, "-x", "c", "-"], input=SOURCE, text=True,
                       check=True)
        plain = once(program, rounds)
        print(f"write+read round trips on a pipe; us per traced call (2 a round), "
              f"untraced {plain / 2000:.3f}")
        for name, argv_of in DEBUGGERS.items():
            for mode, n in (("agent", rounds), ("breakpoint", bp_rounds)):
                ns = once(program, n, argv_of, mode)
                print(f"  {name:4s} attach, {mode:10s} ({n:6d} rounds) {ns / 2000:10.3f} "
                      f"(+{(ns - plain) / 2000:.3f})")


if __name__ == "__main__":
    main()
