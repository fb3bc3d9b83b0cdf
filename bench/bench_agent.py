#!/usr/bin/python3
"""Agent mode's cost: bench/pingpong (two processes, 64-byte messages over two pipes, 4 traced
calls a round) run untraced and under LD_PRELOAD=libtracer_agent.so with a ring, alternating,
in the same run. Prints µs per call for both, the agent's added µs per traced call and the
ratio (medians). Goal: the agent adds at most 1 µs per traced call. A last row records with
filters that keep every call (status !EAGAIN makes sends wait for their return, and an
endpoint glob is matched on each): what the filters themselves cost.

    make agent && build/pingpong exists (make bench builds it) ; bench/bench_agent.py [ROUNDS] [REPS]
"""
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tracerlib import _core  # noqa: E402

AGENT = os.path.join(ROOT, "tracerlib", "libtracer_agent.so")
PINGPONG = os.path.join(ROOT, "build", "pingpong")


def run_once(rounds, env):
    t0 = time.perf_counter()
    subprocess.run([PINGPONG, str(rounds)], env=env, check=True)
    return time.perf_counter() - t0


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    if not os.path.exists(PINGPONG):
        subprocess.run(["gcc", "-O2", "-o", PINGPONG, os.path.join(ROOT, "bench", "pingpong.c")],
                       check=True)
    calls = rounds * 4
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TRACER_")}
    base_env.pop("LD_PRELOAD", None)
    plain, agent, idle, filtered = [], [], [], []
    counts = []
    filters = {"TRACER_STATUS": "!EAGAIN", "TRACER_ENDPOINT": "pipe:*,!unix:*"}
    for i in range(reps):
        plain.append(run_once(rounds, base_env) / calls * 1e6)
        for extra, times in (({}, agent), (filters, filtered)):
            path = f"/dev/shm/tracer-bench-{os.getpid()}-{i}"
            ring = _core.SharedRing.create(path, cap=50, budget=_core.BUDGET_MAX, payload=64)
            try:
                times.append(run_once(rounds, dict(base_env, LD_PRELOAD=AGENT, TRACER_RING=path,
                                                   **extra)) / calls * 1e6)
                counts.append(ring.stats()["count"])
            finally:
                ring.unlink()
                ring.close()
        idle.append(run_once(rounds, dict(base_env, LD_PRELOAD=AGENT)) / calls * 1e6)
    p, a, n = statistics.median(plain), statistics.median(agent), statistics.median(idle)
    f = statistics.median(filtered)
    print(f"pingpong {rounds} rounds x {reps} reps, {calls} calls a run, medians:")
    print(f"  untraced                   {p:7.3f} us/call")
    print(f"  agent loaded, no ring      {n:7.3f} us/call  (+{n - p:.3f})")
    print(f"  agent recording            {a:7.3f} us/call  (+{a - p:.3f} us per traced call)")
    print(f"  ratio agent/untraced       {a / p:7.2f}x")
    print(f"  agent recording, filters   {f:7.3f} us/call  (+{f - a:.3f} over no filter)")
    print(f"  events counted per run     {sorted(set(counts))} (expected {calls})")
    return 0 if all(c == calls for c in counts) else 1


if __name__ == "__main__":
    sys.exit(main())
