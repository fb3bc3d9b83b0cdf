/* yield_policy.h - the seeded decision maker for yield injection: at each yield point (an
 * interesting call about to run) it says whether to perturb the schedule and for how long.
 *
 * Replay. The same seed, the same program and the same inputs must make the same decisions
 * per thread and call order, although pids and tids differ from run to run. So a decision is
 * never drawn from a running PRNG stream shared by all threads (whose order depends on the
 * schedule being perturbed); it is a pure function (counter-based, like Random123)
 *
 *     h = mix(seed, process ordinal, thread ordinal, point, site)
 *
 * of a stable thread identity: the process ordinal (order of first appearance of the pid),
 * the thread ordinal within its process (order of first appearance of the tid in that pid)
 * and the thread's count of yield points reached so far. `site` is optional: pass the call
 * site's file address (module-relative, so ASLR does not change it) or 0; never a runtime
 * address of a PIE or a shared library, which would break replay.
 *
 * Mixing is splitmix64's finaliser (Steele, Lea, Flood 2014; the constants of Vigna's
 * splitmix64.c): a bijection on 64 bits with full avalanche, a few multiplies per call, no
 * state, no tables. It is not cryptographic and need not be: we want well-spread, cheap,
 * reproducible bits. tr_splitmix64_next() is the plain generator for callers that need a
 * stream (it is the same mix over a Weyl sequence).
 *
 * Ordinals stay stable when the front end announces processes and threads in an order that
 * does not depend on the perturbed schedule: the debugger sees new threads and forks in
 * creation order, which is the usual case (threads created by one thread, in a loop).
 * Threads created concurrently by several threads can swap ordinals between runs; a replay
 * then differs for those threads only.
 *
 * Bounds. At most `max_threads` live threads (TR_YIELD_THREADS_DEFAULT) and `max_procs` live
 * processes are tracked. A thread or process that does not fit is refused with -ENOSPC and
 * never perturbed (decide() says "no yield" and counts it in `refused`); tr_yield_thread_gone()
 * and tr_yield_process_gone() free slots for later threads, which still get fresh ordinals.
 *
 * Single-threaded by design, like the recorder: it lives in the debugger. No globals; errors
 * are negative errno values; nothing aborts. */
#ifndef TRACER_YIELD_POLICY_H
#define TRACER_YIELD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tr_yield_strategy {
	TR_YIELD_SCHED = 0,   /* sched_yield() before the call */
	TR_YIELD_SLEEP = 1,   /* usleep(1..max_us) before the call, uniform */
	TR_YIELD_PCT = 2,     /* PCT (agent mode): threads serialised, run by priority */
	TR_YIELD_DELAY = 3,   /* usleep(3/16..1 of max_us) at the sites chosen for the run */
	TR_YIELD_TAPER = 4,   /* as SLEEP at a thread's points 0..7, then 8, 16, 32, ... */
};

#define TR_YIELD_MAX_US_DEFAULT 1000u
#define TR_YIELD_MAX_US_LIMIT 1000000u
#define TR_YIELD_THREADS_DEFAULT 4096u
#define TR_YIELD_THREADS_LIMIT (1u << 20)
#define TR_YIELD_PROCS_DEFAULT 1024u
#define TR_YIELD_PROCS_LIMIT (1u << 16)
/* PCT: depth (1 + the number of priority change points) and the estimate of a run's
 * scheduling points the change points are drawn over. */
#define TR_PCT_DEPTH_DEFAULT 3u
#define TR_PCT_DEPTH_LIMIT 32u
#define TR_PCT_STEPS_DEFAULT 500u
#define TR_PCT_STEPS_LIMIT 100000000u
/* Room for any text tr_yield_strategy_format() writes, with its NUL ("pct:32:100000000"). */
#define TR_YIELD_STRATEGY_TEXT_MAX 24

struct tr_yield_config {
	uint64_t seed;
	double probability;              /* of a yield at each point, 0..1 */
	enum tr_yield_strategy strategy;
	uint32_t max_us;                 /* SLEEP, DELAY, TAPER: 1..TR_YIELD_MAX_US_LIMIT; 0 = default */
	uint32_t max_threads;            /* live threads tracked; 0 = TR_YIELD_THREADS_DEFAULT */
	uint32_t max_procs;              /* live processes tracked; 0 = TR_YIELD_PROCS_DEFAULT */
	uint32_t depth;                  /* TR_YIELD_PCT: 1..TR_PCT_DEPTH_LIMIT; 0 = default */
	uint32_t steps;                  /* TR_YIELD_PCT: 1..TR_PCT_STEPS_LIMIT; 0 = default */
};

/* seed 0, probability 0.5, TR_YIELD_SLEEP with max_us 1000, default table sizes. */
void tr_yield_config_default(struct tr_yield_config *cfg);
/* 0, or -EINVAL: probability NaN or outside [0, 1], an unknown strategy, max_us or a table
 * size over its limit. */
int tr_yield_config_validate(const struct tr_yield_config *cfg);

struct tr_yield_decision {
	bool yield;           /* perturb before this call */
	uint32_t us;          /* SLEEP or DELAY and yield: sleep this long, 1..max_us; else 0 */
	uint32_t proc_ord;    /* the stable identity the decision was keyed on */
	uint32_t thread_ord;
	uint64_t point;       /* this thread's yield points before this one */
};

struct tr_yield_stats {
	uint64_t points;      /* decisions made */
	uint64_t yields;      /* of which said yield */
	uint64_t slept_us;    /* sum of their durations (TR_YIELD_SLEEP) */
	uint64_t refused;     /* decisions refused because a table was full */
	uint32_t procs_seen;  /* ordinals handed out */
	uint32_t threads_seen;
	uint32_t threads_live;
};

struct tr_yield_thread;  /* private: slots of the thread table */
struct tr_yield_proc;

struct tr_yield_policy {
	struct tr_yield_config cfg;        /* validated, defaults resolved */
	struct tr_yield_thread *threads;   /* open addressing on tid, 2 * max_threads slots */
	uint32_t thread_slots;             /* a power of two */
	uint32_t threads_live;
	struct tr_yield_proc *procs;       /* max_procs slots, unordered */
	uint32_t procs_live;
	uint32_t next_proc_ord;
	uint32_t threads_seen;
	uint64_t points, yields, slept_us, refused;
};

/* 0, -EINVAL (tr_yield_config_validate), -ENOMEM. cfg NULL means tr_yield_config_default().
 * On failure *p is left destroyed (safe to destroy again). */
int tr_yield_policy_init(struct tr_yield_policy *p, const struct tr_yield_config *cfg);
void tr_yield_policy_destroy(struct tr_yield_policy *p);
/* A new run with the same seed: forgets every process and thread, zeroes ordinals and
 * counters. Decisions from here on repeat those made after init. */
void tr_yield_policy_reset(struct tr_yield_policy *p);
/* A new run with another seed (the hunt's S, S+1, ...): reset, then use `seed`. */
void tr_yield_policy_reseed(struct tr_yield_policy *p, uint64_t seed);

/* Announce a process (e.g. at a fork or the first stop) so it gets the next process ordinal.
 * Returns the ordinal (>= 0), or -ENOSPC (process table full), -EINVAL (pid <= 0).
 * Announcing a known pid returns its ordinal and changes nothing. */
int64_t tr_yield_process_seen(struct tr_yield_policy *p, int32_t pid);
/* Announce a thread of `pid`; announces the process first if needed. Returns the thread
 * ordinal within its process (>= 0), or -ENOSPC (a table full), -EINVAL (pid or tid <= 0).
 * A tid known under another pid is taken as a new thread (tids are unique among live
 * threads, so the old one must have ended unannounced): the old entry is forgotten. */
int64_t tr_yield_thread_seen(struct tr_yield_policy *p, int32_t pid, int32_t tid);
/* Forget a thread that exited (its tid may be reused for a new thread, which then gets a new
 * ordinal). -ENOENT if unknown. */
int tr_yield_thread_gone(struct tr_yield_policy *p, int32_t pid, int32_t tid);
/* Forget a process that exited and all its threads. -ENOENT if unknown. */
int tr_yield_process_gone(struct tr_yield_policy *p, int32_t pid);

/* The decision at one yield point of thread (pid, tid), announcing it first if needed.
 * Counts the point and, when the answer is yes, the injected yield. Returns 0, or the error
 * of tr_yield_thread_seen() with out->yield false (a refused point is not counted in the
 * thread's points). Announce threads when the debugger reports them (new-thread and fork
 * events) rather than relying on this: the first yield point each thread reaches depends on
 * the schedule being perturbed, the order of thread creation usually does not. */
int tr_yield_decide(struct tr_yield_policy *p, int32_t pid, int32_t tid, uint64_t site,
		    struct tr_yield_decision *out);

/* The pure decision under tr_yield_decide(), for callers that keep the stable identity
 * themselves (the in-process agent: one per-thread counter, no table, no lock): the same
 * seed, ordinals, point and site give the same answer as tr_yield_decide() would. cfg must
 * be validated (max_us 0 means the default). Fills out (yield, us, ords, point); 0. */
int tr_yield_decide_keyed(const struct tr_yield_config *cfg, uint32_t proc_ord,
			  uint32_t thread_ord, uint64_t point, uint64_t site,
			  struct tr_yield_decision *out);

void tr_yield_policy_stats(const struct tr_yield_policy *p, struct tr_yield_stats *out);

/* "yield" -> TR_YIELD_SCHED (max_us 0); "sleep" -> TR_YIELD_SLEEP with the default;
 * "sleep:N" -> TR_YIELD_SLEEP with max_us N (decimal digits only, 1..TR_YIELD_MAX_US_LIMIT);
 * "delay", "delay:N", "taper", "taper:N" -> TR_YIELD_DELAY, TR_YIELD_TAPER likewise.
 * 0 or -EINVAL, outputs untouched on error. */
int tr_yield_strategy_parse(const char *text, enum tr_yield_strategy *strategy, uint32_t *max_us);
/* Writes the text parse() reads back: "yield", "sleep:N", "delay:N" or "taper:N" (max_us 0:
 * default).
 * Returns the length written (without NUL), -EINVAL (unknown strategy, max_us over the
 * limit, buf NULL with size > 0) or -ENOSPC (truncated; buf still NUL-terminated). */
int tr_yield_strategy_format(enum tr_yield_strategy strategy, uint32_t max_us, char *buf,
			     size_t size);
/* The whole strategy text into cfg: what tr_yield_strategy_parse() reads, and
 * "pct[:DEPTH[:STEPS]]" -> TR_YIELD_PCT with depth 1..TR_PCT_DEPTH_LIMIT (default 3) and
 * steps 1..TR_PCT_STEPS_LIMIT (0 when not given: the caller's estimate or the default).
 * 0 or -EINVAL, cfg untouched on error. */
int tr_yield_strategy_parse_config(const char *text, struct tr_yield_config *cfg);
/* The strategy of cfg as text: as tr_yield_strategy_format(), and "pct:DEPTH" for PCT (the
 * steps estimate is a separate field of reports). Same returns. */
int tr_yield_config_strategy_format(const struct tr_yield_config *cfg, char *buf, size_t size);

/* PCT (Burckhardt et al., ASPLOS'10), as pure functions of the seed like the decisions above.
 * The priority of thread `thread_ord` of process `proc_ord`: distinct for distinct thread
 * ordinals below 2^20, always >= depth (change points lower a thread to 1..depth-1). */
uint64_t tr_pct_priority(const struct tr_yield_config *cfg, uint32_t proc_ord,
			 uint32_t thread_ord);
/* Change point i (1..depth-1) of process proc_ord: a step number in [1, steps]. When the
 * process's step count reaches it, the thread taking that step drops to priority i. 0 for i
 * out of range. */
uint64_t tr_pct_change_point(const struct tr_yield_config *cfg, uint32_t proc_ord, uint32_t i);

/* "yield" / "sleep" / "pct" / "delay" / "taper" / NULL: the strategy's name in reports. */
const char *tr_yield_strategy_name(enum tr_yield_strategy strategy);

/* splitmix64's finaliser: the mix described above. */
uint64_t tr_mix64(uint64_t x);
/* splitmix64: advance *state by the golden gamma, return its mix. */
uint64_t tr_splitmix64_next(uint64_t *state);

#endif
