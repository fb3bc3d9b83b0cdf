#!/bin/sh
# bugs_shim.sh - how often each bug fixture fails, plain and under schedule perturbation,
# measured in one run without a debugger.
#
# The perturbation is tests/fixtures/bugs/perturb_shim.c, an LD_PRELOAD stand-in for
# `tracer yield on`: before each interesting call (mutex, condition variable, semaphore,
# thread and process calls, read/write/send/recv) it sleeps a random 1..US microseconds with
# probability P ("sleep" column) or calls sched_yield() instead ("yield" column). Run i uses
# seed i. A run fails when the program exits non-zero (1: the bug showed; 3: its watchdog
# caught a hang) or does not end within 20 s.
#
# Goal (issue 5): sleep fails at least 5x as often as plain, counting a plain 0 as 1.
# Exit status: 0 when every bug meets it, 1 otherwise, 2 on a build failure.
#
# Usage: bench/bugs_shim.sh [bug...]     (default: all five). Takes about 10 minutes, mostly
# spent in the fixtures' 1-2 s failure timeouts; YIELD=0 saves about 40 %.
# Environment: RUNS (100), P (0.5), US (1000), YIELD (1: also measure sched_yield; 0: skip),
#              OUT (build directory, default build/bugs).
set -u
cd "$(dirname "$0")/.." || exit 2
RUNS=${RUNS:-100}
P=${P:-0.5}
US=${US:-1000}
YIELD=${YIELD:-1}
OUT=${OUT:-build/bugs}
SRC=tests/fixtures/bugs
BUGS=${*:-lost_wakeup check_then_act interleaved_writers lock_order send_before_ready}

mkdir -p "$OUT" || exit 2
CFLAGS="-std=gnu11 -g -O0 -Wall -Wextra -Wno-unused-parameter -pthread"
gcc -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -fPIC -shared -pthread \
	-o "$OUT/perturb_shim.so" "$SRC/perturb_shim.c" -ldl || exit 2
for b in $BUGS; do
	# shellcheck disable=SC2086
	gcc $CFLAGS -o "$OUT/$b" "$SRC/$b.c" || exit 2
done
SHIM=$(cd "$OUT" && pwd)/perturb_shim.so

# failures BUG [MODE]: how many of RUNS runs fail; MODE is empty (plain), sleep or yield.
failures() {
	n=0
	i=1
	while [ "$i" -le "$RUNS" ]; do
		if [ -z "${2:-}" ]; then
			timeout 20 "$OUT/$1" >/dev/null 2>&1 || n=$((n + 1))
		else
			PERTURB_SEED=$i PERTURB_P=$P PERTURB_US=$US PERTURB_MODE=$2 LD_PRELOAD=$SHIM \
				timeout 20 "$OUT/$1" >/dev/null 2>&1 || n=$((n + 1))
		fi
		i=$((i + 1))
	done
	echo "$n"
}

echo "failures per $RUNS runs; perturbation before interesting calls with P=$P, sleep 1..${US} us"
printf '%-20s %6s %6s %9s %6s  %s\n' bug plain sleep ratio yield goal
status=0
for b in $BUGS; do
	plain=$(failures "$b")
	sleep_f=$(failures "$b" sleep)
	if [ "$YIELD" = 1 ]; then yield_f=$(failures "$b" yield); else yield_f=-; fi
	base=$plain
	[ "$base" -eq 0 ] && base=1
	ratio=$(awk -v s="$sleep_f" -v b="$base" 'BEGIN { printf "%.1fx", s / b }')
	if [ "$sleep_f" -ge $((5 * base)) ]; then goal=met; else goal=MISSED; status=1; fi
	[ "$plain" -eq 0 ] && ratio=">=$ratio"
	printf '%-20s %6s %6s %9s %6s  %s\n' "$b" "$plain" "$sleep_f" "$ratio" "$yield_f" "$goal"
done
exit $status
