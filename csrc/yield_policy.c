/* yield_policy.c - seeded, replayable yield decisions keyed on stable thread identities.
 *
 * Threads live in an open-addressing table on tid (linear probing, backward-shift deletion,
 * so no tombstones pile up as threads come and go); it has twice as many slots as threads
 * allowed, so probes stay short. Processes are few and looked up only when a thread first
 * appears: a plain array scanned linearly. decide() for a known thread is one hash probe and
 * three or four mixes: far below the cost of the debugger stop that calls it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "yield_policy.h"

struct tr_yield_thread {
	int32_t tid;          /* 0: empty slot */
	int32_t pid;
	uint32_t proc_ord, thread_ord;
	uint64_t points;
};

struct tr_yield_proc {
	int32_t pid;          /* 0: empty slot */
	uint32_t ord;
	uint32_t next_thread_ord;
};

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ull
/* Domain separators, so the yield bit and the duration come from unrelated words. */
#define KEY_SEED 0x7472616365722d79ull   /* "tracer-y" */
#define KEY_US 0x736c6565702d7573ull     /* "sleep-us" */
#define KEY_PRIO 0x7063742d7072696full   /* "pct-prio" */
#define KEY_CHANGE 0x7063742d63686e67ull /* "pct-chng" */
#define KEY_DELAY 0x64656c61792d7374ull  /* "delay-st" */
#define KEY_SPREAD 0x64656c61792d7370ull /* "delay-sp" */

uint64_t tr_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t tr_splitmix64_next(uint64_t *state)
{
	*state += GOLDEN_GAMMA;
	return tr_mix64(*state);
}

/* Folds one more input into a running hash; each input is mixed on its own first so that
 * nearby values (ordinals 0, 1, 2...) land far apart. */
static uint64_t combine(uint64_t h, uint64_t x)
{
	return tr_mix64(h ^ tr_mix64(x + GOLDEN_GAMMA));
}

void tr_yield_config_default(struct tr_yield_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->seed = 0;
	cfg->probability = 0.5;
	cfg->strategy = TR_YIELD_SLEEP;
	cfg->max_us = TR_YIELD_MAX_US_DEFAULT;
	cfg->max_threads = TR_YIELD_THREADS_DEFAULT;
	cfg->max_procs = TR_YIELD_PROCS_DEFAULT;
}

int tr_yield_config_validate(const struct tr_yield_config *cfg)
{
	if (!cfg)
		return -EINVAL;
	/* Written so that NaN fails too: every comparison with NaN is false. */
	if (!(cfg->probability >= 0.0 && cfg->probability <= 1.0))
		return -EINVAL;
	if (cfg->strategy != TR_YIELD_SCHED && cfg->strategy != TR_YIELD_SLEEP &&
	    cfg->strategy != TR_YIELD_PCT && cfg->strategy != TR_YIELD_DELAY &&
	    cfg->strategy != TR_YIELD_TAPER)
		return -EINVAL;
	if (cfg->depth > TR_PCT_DEPTH_LIMIT || cfg->steps > TR_PCT_STEPS_LIMIT)
		return -EINVAL;
	if (cfg->max_us > TR_YIELD_MAX_US_LIMIT)
		return -EINVAL;
	if (cfg->max_threads > TR_YIELD_THREADS_LIMIT || cfg->max_procs > TR_YIELD_PROCS_LIMIT)
		return -EINVAL;
	return 0;
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t v = 1;

	while (v < n)
		v <<= 1;
	return v;
}

int tr_yield_policy_init(struct tr_yield_policy *p, const struct tr_yield_config *cfg)
{
	struct tr_yield_config c;
	int rc;

	memset(p, 0, sizeof(*p));
	if (cfg)
		c = *cfg;
	else
		tr_yield_config_default(&c);
	rc = tr_yield_config_validate(&c);
	if (rc)
		return rc;
	if (c.max_us == 0)
		c.max_us = TR_YIELD_MAX_US_DEFAULT;
	if (c.max_threads == 0)
		c.max_threads = TR_YIELD_THREADS_DEFAULT;
	if (c.max_procs == 0)
		c.max_procs = TR_YIELD_PROCS_DEFAULT;
	p->cfg = c;
	p->thread_slots = pow2_at_least(2 * c.max_threads);
	p->threads = calloc(p->thread_slots, sizeof(*p->threads));
	p->procs = calloc(c.max_procs, sizeof(*p->procs));
	if (!p->threads || !p->procs) {
		tr_yield_policy_destroy(p);
		return -ENOMEM;
	}
	return 0;
}

void tr_yield_policy_destroy(struct tr_yield_policy *p)
{
	free(p->threads);
	free(p->procs);
	p->threads = NULL;
	p->procs = NULL;
	p->thread_slots = 0;
	p->threads_live = 0;
	p->procs_live = 0;
}

void tr_yield_policy_reset(struct tr_yield_policy *p)
{
	if (p->threads)
		memset(p->threads, 0, (size_t)p->thread_slots * sizeof(*p->threads));
	if (p->procs)
		memset(p->procs, 0, (size_t)p->cfg.max_procs * sizeof(*p->procs));
	p->threads_live = 0;
	p->procs_live = 0;
	p->next_proc_ord = 0;
	p->threads_seen = 0;
	p->points = p->yields = p->slept_us = p->refused = 0;
}

void tr_yield_policy_reseed(struct tr_yield_policy *p, uint64_t seed)
{
	tr_yield_policy_reset(p);
	p->cfg.seed = seed;
}

/* ---- processes ---- */

static struct tr_yield_proc *proc_find(struct tr_yield_policy *p, int32_t pid)
{
	for (uint32_t i = 0; i < p->cfg.max_procs; i++)
		if (p->procs[i].pid == pid)
			return &p->procs[i];
	return NULL;
}

static int proc_get(struct tr_yield_policy *p, int32_t pid, struct tr_yield_proc **out)
{
	struct tr_yield_proc *pr = proc_find(p, pid);

	if (!pr) {
		if (p->procs_live >= p->cfg.max_procs)
			return -ENOSPC;
		pr = proc_find(p, 0);  /* an empty slot exists since procs_live < max_procs */
		if (!pr)
			return -ENOSPC;
		pr->pid = pid;
		pr->ord = p->next_proc_ord++;
		pr->next_thread_ord = 0;
		p->procs_live++;
	}
	*out = pr;
	return 0;
}

int64_t tr_yield_process_seen(struct tr_yield_policy *p, int32_t pid)
{
	struct tr_yield_proc *pr;
	int rc;

	if (!p->procs || pid <= 0)
		return -EINVAL;
	rc = proc_get(p, pid, &pr);
	return rc ? rc : (int64_t)pr->ord;
}

/* ---- threads ---- */

static uint32_t thread_home(const struct tr_yield_policy *p, int32_t tid)
{
	return (uint32_t)tr_mix64((uint64_t)(uint32_t)tid) & (p->thread_slots - 1);
}

static struct tr_yield_thread *thread_find(struct tr_yield_policy *p, int32_t tid)
{
	uint32_t mask = p->thread_slots - 1;

	for (uint32_t i = thread_home(p, tid);; i = (i + 1) & mask) {
		if (p->threads[i].tid == tid)
			return &p->threads[i];
		if (p->threads[i].tid == 0)
			return NULL;  /* the table is never full: threads_live <= slots / 2 */
	}
}

/* Removes slot i and shifts later members of its cluster back so lookups still find them. */
static void thread_remove_at(struct tr_yield_policy *p, uint32_t i)
{
	uint32_t mask = p->thread_slots - 1;
	uint32_t hole = i;

	for (uint32_t j = (i + 1) & mask; p->threads[j].tid != 0; j = (j + 1) & mask) {
		uint32_t home = thread_home(p, p->threads[j].tid);

		/* j may move into the hole when its home is not cyclically in (hole, j]. */
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			p->threads[hole] = p->threads[j];
			hole = j;
		}
	}
	memset(&p->threads[hole], 0, sizeof(p->threads[hole]));
	p->threads_live--;
}

static int thread_get(struct tr_yield_policy *p, int32_t pid, int32_t tid,
		      struct tr_yield_thread **out)
{
	struct tr_yield_thread *t;
	struct tr_yield_proc *pr;
	uint32_t mask;
	int rc;

	if (!p->threads || pid <= 0 || tid <= 0)
		return -EINVAL;
	t = thread_find(p, tid);
	if (t && t->pid == pid) {
		*out = t;
		return 0;
	}
	if (t)  /* the tid's old thread, in another process, ended unannounced */
		thread_remove_at(p, (uint32_t)(t - p->threads));
	if (p->threads_live >= p->cfg.max_threads)
		return -ENOSPC;
	rc = proc_get(p, pid, &pr);
	if (rc)
		return rc;
	mask = p->thread_slots - 1;
	for (uint32_t i = thread_home(p, tid);; i = (i + 1) & mask) {
		if (p->threads[i].tid == 0) {
			t = &p->threads[i];
			break;
		}
	}
	t->tid = tid;
	t->pid = pid;
	t->proc_ord = pr->ord;
	t->thread_ord = pr->next_thread_ord++;
	t->points = 0;
	p->threads_live++;
	p->threads_seen++;
	*out = t;
	return 0;
}

int64_t tr_yield_thread_seen(struct tr_yield_policy *p, int32_t pid, int32_t tid)
{
	struct tr_yield_thread *t;
	int rc = thread_get(p, pid, tid, &t);

	return rc ? rc : (int64_t)t->thread_ord;
}

int tr_yield_thread_gone(struct tr_yield_policy *p, int32_t pid, int32_t tid)
{
	struct tr_yield_thread *t;

	if (!p->threads || tid <= 0)
		return -ENOENT;
	t = thread_find(p, tid);
	if (!t || t->pid != pid)
		return -ENOENT;
	thread_remove_at(p, (uint32_t)(t - p->threads));
	return 0;
}

int tr_yield_process_gone(struct tr_yield_policy *p, int32_t pid)
{
	struct tr_yield_proc *pr;

	if (!p->procs || pid <= 0)
		return -ENOENT;
	pr = proc_find(p, pid);
	if (!pr)
		return -ENOENT;
	/* After a removal slot i holds whatever shifted into it, so look at i again. Members
	 * shifted from the start of the table into its end were already kept once; seeing them
	 * twice is harmless. */
	for (uint32_t i = 0; i < p->thread_slots;) {
		if (p->threads[i].tid != 0 && p->threads[i].pid == pid)
			thread_remove_at(p, i);
		else
			i++;
	}
	memset(pr, 0, sizeof(*pr));
	p->procs_live--;
	return 0;
}

/* ---- decisions ---- */

/* The top 53 bits as a double in [0, 1): p = 0 never yields, p = 1 always does. */
static double unit_interval(uint64_t h)
{
	return (double)(h >> 11) * 0x1.0p-53;
}

/* 32 fresh bits scaled onto [0, n) by multiply-shift (Lemire): no division, bias below
 * n / 2^32. */
static uint32_t below(uint64_t h, uint32_t n)
{
	return (uint32_t)(((tr_mix64(h) >> 32) * n) >> 32);
}

/* A thread's points 0..7, then 8, 16, 32, ... (delay, taper): a site in a hot loop costs a
 * number of sleeps that grows with the log of its hits, not with them. */
static bool point_taken_tapered(uint64_t point)
{
	return point < 8 || (point & (point - 1)) == 0;
}

/* delay: one decision per site for the whole run, the same in every thread and process, so
 * a window between two steps of N threads opens in all of them at once (N setters delayed
 * before their second store). The site's length lies in [3/4, 1] of max_us; half the chosen
 * sites hold every thread that long, the other half hold each thread (by process and thread)
 * either that long or a quarter of it: one thread held across several steps of another that
 * runs the same code (a pop held while another thread pops twice and pushes). Two threads'
 * holds are alike or a factor of 3 or more apart, never a hair, and each at least 3/16 of
 * max_us, above the jitter of thread creation under a debugger: a replay orders the threads
 * as the run did. */
static void decide_delay(const struct tr_yield_config *cfg, uint32_t proc_ord,
			 uint32_t thread_ord, uint64_t point, uint64_t site,
			 struct tr_yield_decision *out)
{
	uint32_t max_us = cfg->max_us ? cfg->max_us : TR_YIELD_MAX_US_DEFAULT;
	uint64_t h = combine(tr_mix64(cfg->seed ^ KEY_DELAY), site);

	if (!(unit_interval(h) < cfg->probability) || !point_taken_tapered(point))
		return;
	out->yield = true;
	out->us = max_us - below(h ^ KEY_US, max_us / 4 + 1);
	/* At half the sites (spread) each thread is held either that long or a quarter. */
	if (below(h ^ KEY_SPREAD, 2) && below(combine(combine(h, proc_ord), thread_ord), 2))
		out->us = out->us / 4 ? out->us / 4 : 1;
}

int tr_yield_decide_keyed(const struct tr_yield_config *cfg, uint32_t proc_ord,
			  uint32_t thread_ord, uint64_t point, uint64_t site,
			  struct tr_yield_decision *out)
{
	uint64_t h;

	memset(out, 0, sizeof(*out));
	out->proc_ord = proc_ord;
	out->thread_ord = thread_ord;
	out->point = point;
	if (cfg->strategy == TR_YIELD_DELAY) {
		decide_delay(cfg, proc_ord, thread_ord, point, site, out);
		return 0;
	}
	h = combine(tr_mix64(cfg->seed ^ KEY_SEED), proc_ord);
	h = combine(h, thread_ord);
	h = combine(h, point);
	h = combine(h, site);
	if (!(unit_interval(h) < cfg->probability))
		return 0;
	if (cfg->strategy == TR_YIELD_TAPER && !point_taken_tapered(point))
		return 0;           /* long sleeps in a chatty thread: a few, not one per call */
	out->yield = true;
	if (cfg->strategy == TR_YIELD_SLEEP || cfg->strategy == TR_YIELD_TAPER)
		out->us = 1 + below(h ^ KEY_US, cfg->max_us ? cfg->max_us : TR_YIELD_MAX_US_DEFAULT);
	return 0;
}

int tr_yield_decide(struct tr_yield_policy *p, int32_t pid, int32_t tid, uint64_t site,
		    struct tr_yield_decision *out)
{
	struct tr_yield_thread *t;
	uint64_t point;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = thread_get(p, pid, tid, &t);
	if (rc) {
		if (rc == -ENOSPC)
			p->refused++;
		return rc;
	}
	point = t->points++;
	p->points++;
	tr_yield_decide_keyed(&p->cfg, t->proc_ord, t->thread_ord, point, site, out);
	if (out->yield) {
		p->yields++;
		p->slept_us += out->us;
	}
	return 0;
}

void tr_yield_policy_stats(const struct tr_yield_policy *p, struct tr_yield_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->points = p->points;
	out->yields = p->yields;
	out->slept_us = p->slept_us;
	out->refused = p->refused;
	out->procs_seen = p->next_proc_ord;
	out->threads_seen = p->threads_seen;
	out->threads_live = p->threads_live;
}

/* ---- the user's strategy text ---- */

/* Decimal digits only, 1..limit, up to `stop` (a char or NUL): strtoul would take spaces,
 * signs and "0x". Returns the value, or 0 for anything else; *end is left at the stop. */
static uint64_t parse_count(const char *s, char stop, uint64_t limit, const char **end)
{
	uint64_t v = 0;

	if (*s == '\0' || *s == stop)
		return 0;
	for (; *s && *s != stop; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > limit)
			return 0;
	}
	*end = s;
	return v;
}

int tr_yield_strategy_parse_config(const char *text, struct tr_yield_config *cfg)
{
	uint64_t depth = TR_PCT_DEPTH_DEFAULT, steps = 0;
	const char *end;

	if (!text || !cfg)
		return -EINVAL;
	if (strncmp(text, "pct", 3) != 0) {
		enum tr_yield_strategy st;
		uint32_t us;

		if (tr_yield_strategy_parse(text, &st, &us) < 0)
			return -EINVAL;
		cfg->strategy = st;
		cfg->max_us = us;
		return 0;
	}
	end = text + 3;
	if (*end == ':') {
		depth = parse_count(end + 1, ':', TR_PCT_DEPTH_LIMIT, &end);
		if (!depth)
			return -EINVAL;
		if (*end == ':') {
			steps = parse_count(end + 1, '\0', TR_PCT_STEPS_LIMIT, &end);
			if (!steps)
				return -EINVAL;
		}
	}
	if (*end != '\0')
		return -EINVAL;
	cfg->strategy = TR_YIELD_PCT;
	cfg->max_us = 0;
	cfg->depth = (uint32_t)depth;
	cfg->steps = (uint32_t)steps;
	return 0;
}

int tr_yield_config_strategy_format(const struct tr_yield_config *cfg, char *buf, size_t size)
{
	char tmp[TR_YIELD_STRATEGY_TEXT_MAX];
	uint32_t depth;
	int n;

	if (!cfg)
		return -EINVAL;
	if (cfg->strategy != TR_YIELD_PCT)
		return tr_yield_strategy_format(cfg->strategy, cfg->max_us, buf, size);
	depth = cfg->depth ? cfg->depth : TR_PCT_DEPTH_DEFAULT;
	if (depth > TR_PCT_DEPTH_LIMIT || (!buf && size > 0))
		return -EINVAL;
	n = snprintf(tmp, sizeof(tmp), "pct:%u", depth);
	if (size == 0)
		return -ENOSPC;
	snprintf(buf, size, "%s", tmp);
	return (size_t)n >= size ? -ENOSPC : n;
}

uint64_t tr_pct_priority(const struct tr_yield_config *cfg, uint32_t proc_ord,
			 uint32_t thread_ord)
{
	uint32_t depth = cfg->depth ? cfg->depth : TR_PCT_DEPTH_DEFAULT;
	uint64_t h = combine(combine(tr_mix64(cfg->seed ^ KEY_PRIO), proc_ord), thread_ord);

	/* 24 random bits above the ordinal's 20: a random order, never a tie */
	return depth + ((h >> 40) << 20) + (thread_ord & 0xfffffu);
}

uint64_t tr_pct_change_point(const struct tr_yield_config *cfg, uint32_t proc_ord, uint32_t i)
{
	uint32_t depth = cfg->depth ? cfg->depth : TR_PCT_DEPTH_DEFAULT;
	uint64_t steps = cfg->steps ? cfg->steps : TR_PCT_STEPS_DEFAULT;
	uint64_t h;

	if (i < 1 || i >= depth)
		return 0;
	h = combine(combine(tr_mix64(cfg->seed ^ KEY_CHANGE), proc_ord), i);
	return 1 + (((h >> 32) * steps) >> 32);
}

/* The strategies written NAME[:MAX_US]; each name is 5 letters. */
static const enum tr_yield_strategy TIMED[] = { TR_YIELD_SLEEP, TR_YIELD_DELAY, TR_YIELD_TAPER };

static bool is_timed(enum tr_yield_strategy strategy)
{
	for (size_t i = 0; i < sizeof(TIMED) / sizeof(TIMED[0]); i++)
		if (TIMED[i] == strategy)
			return true;
	return false;
}

int tr_yield_strategy_parse(const char *text, enum tr_yield_strategy *strategy, uint32_t *max_us)
{
	enum tr_yield_strategy kind = TR_YIELD_SCHED;
	const char *s = NULL;
	uint64_t v = 0;

	if (!text || !strategy || !max_us)
		return -EINVAL;
	if (strcmp(text, "yield") == 0) {
		*strategy = TR_YIELD_SCHED;
		*max_us = 0;
		return 0;
	}
	for (size_t i = 0; i < sizeof(TIMED) / sizeof(TIMED[0]) && !s; i++) {
		if (strncmp(text, tr_yield_strategy_name(TIMED[i]), 5) == 0) {
			kind = TIMED[i];
			s = text + 5;
		}
	}
	if (!s)
		return -EINVAL;
	if (*s == '\0') {
		*strategy = kind;
		*max_us = TR_YIELD_MAX_US_DEFAULT;
		return 0;
	}
	if (*s++ != ':')
		return -EINVAL;
	/* Digits only: strtoul would take spaces, signs and "0x". */
	if (*s == '\0')
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > TR_YIELD_MAX_US_LIMIT)
			return -EINVAL;
	}
	if (v == 0)
		return -EINVAL;
	*strategy = kind;
	*max_us = (uint32_t)v;
	return 0;
}

int tr_yield_strategy_format(enum tr_yield_strategy strategy, uint32_t max_us, char *buf,
			     size_t size)
{
	char tmp[TR_YIELD_STRATEGY_TEXT_MAX];
	size_t n;

	if (!buf && size > 0)
		return -EINVAL;
	if (strategy == TR_YIELD_SCHED) {
		memcpy(tmp, "yield", 6);
	} else if (is_timed(strategy)) {
		char digits[12];
		size_t k = 0;
		uint32_t v = max_us ? max_us : TR_YIELD_MAX_US_DEFAULT;

		if (max_us > TR_YIELD_MAX_US_LIMIT)
			return -EINVAL;
		do {
			digits[k++] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		memcpy(tmp, tr_yield_strategy_name(strategy), 5);  /* each name: 5 letters */
		tmp[5] = ':';
		for (size_t i = 0; i < k; i++)
			tmp[6 + i] = digits[k - 1 - i];
		tmp[6 + k] = '\0';
	} else {
		return -EINVAL;
	}
	n = strlen(tmp);
	if (size == 0)
		return -ENOSPC;
	if (n >= size) {
		memcpy(buf, tmp, size - 1);
		buf[size - 1] = '\0';
		return -ENOSPC;
	}
	memcpy(buf, tmp, n + 1);
	return (int)n;
}

const char *tr_yield_strategy_name(enum tr_yield_strategy strategy)
{
	switch (strategy) {
	case TR_YIELD_SCHED:
		return "yield";
	case TR_YIELD_SLEEP:
		return "sleep";
	case TR_YIELD_PCT:
		return "pct";
	case TR_YIELD_DELAY:
		return "delay";
	case TR_YIELD_TAPER:
		return "taper";
	}
	return NULL;
}
