/* test_yield.c - the yield policy: replay across runs with other tids, seeds, rates,
 * durations, bad configs, the strategy text, full tables, reset. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>  /* NAN, INFINITY only: the unit binary does not link libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "yield_policy.h"

static void yp_init(struct tr_yield_policy *p, uint64_t seed, double prob,
		    enum tr_yield_strategy strategy, uint32_t max_us)
{
	struct tr_yield_config cfg;

	tr_yield_config_default(&cfg);
	cfg.seed = seed;
	cfg.probability = prob;
	cfg.strategy = strategy;
	cfg.max_us = max_us;
	cr_assert_eq(tr_yield_policy_init(p, &cfg), 0);
}

/* One decision, which must succeed. */
static struct tr_yield_decision yp_decide(struct tr_yield_policy *p, int32_t pid, int32_t tid,
					  uint64_t site)
{
	struct tr_yield_decision d;

	cr_assert_eq(tr_yield_decide(p, pid, tid, site, &d), 0, "decide(%d, %d)", pid, tid);
	return d;
}

/* Two decision sequences are the same. */
static void yp_assert_same(const struct tr_yield_decision *a, const struct tr_yield_decision *b,
			   size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(a[i].yield, b[i].yield, "decision %zu", i);
		cr_assert_eq(a[i].us, b[i].us, "decision %zu", i);
		cr_assert_eq(a[i].point, b[i].point, "decision %zu", i);
	}
}

/* How many of n decisions of one thread differ between two policies with these seeds. */
static size_t yp_count_differences(uint64_t seed_a, uint64_t seed_b, size_t n)
{
	struct tr_yield_policy a, b;
	size_t diff = 0;

	yp_init(&a, seed_a, 0.5, TR_YIELD_SLEEP, 1000);
	yp_init(&b, seed_b, 0.5, TR_YIELD_SLEEP, 1000);
	for (size_t i = 0; i < n; i++) {
		struct tr_yield_decision da = yp_decide(&a, 10, 10, 0x1234);
		struct tr_yield_decision db = yp_decide(&b, 10, 10, 0x1234);

		diff += da.yield != db.yield || da.us != db.us;
	}
	tr_yield_policy_destroy(&a);
	tr_yield_policy_destroy(&b);
	return diff;
}

#define RUN_THREADS 4
#define RUN_POINTS 200

/* A "run": a parent process with RUN_THREADS threads and a forked child with one thread,
 * reaching their yield points interleaved in an order given by `order_seed` (the schedule,
 * which differs between runs). Decisions are stored per thread ordinal, in call order. */
static void yp_run(uint64_t seed, int32_t pid0, int32_t tid0, uint64_t order_seed,
		   struct tr_yield_decision out[RUN_THREADS + 1][RUN_POINTS])
{
	struct tr_yield_policy p;
	size_t done[RUN_THREADS + 1] = { 0 };
	size_t total = 0;

	yp_init(&p, seed, 0.5, TR_YIELD_SLEEP, 1000);
	/* The debugger announces the threads in creation order, then the fork. */
	for (int t = 0; t < RUN_THREADS; t++)
		cr_assert_eq(tr_yield_thread_seen(&p, pid0, tid0 + t), t);
	cr_assert_eq(tr_yield_thread_seen(&p, pid0 + 50, pid0 + 50), 0);
	while (total < (RUN_THREADS + 1) * RUN_POINTS) {
		int t = (int)(tr_splitmix64_next(&order_seed) % (RUN_THREADS + 1));
		struct tr_yield_decision d;
		uint64_t site = 0x1000 + 16 * done[t] % 64;  /* each thread cycles over 4 sites */

		if (done[t] == RUN_POINTS)
			continue;
		if (t < RUN_THREADS)
			d = yp_decide(&p, pid0, tid0 + t, site);
		else
			d = yp_decide(&p, pid0 + 50, pid0 + 50, site);
		cr_assert_eq(d.proc_ord, t < RUN_THREADS ? 0u : 1u);
		cr_assert_eq(d.thread_ord, t < RUN_THREADS ? (uint32_t)t : 0u);
		out[t][done[t]++] = d;
		total++;
	}
	tr_yield_policy_destroy(&p);
}

Test(yield_policy, same_seed_replays_with_other_tids_and_interleaving)
{
	static struct tr_yield_decision a[RUN_THREADS + 1][RUN_POINTS];
	static struct tr_yield_decision b[RUN_THREADS + 1][RUN_POINTS];

	yp_run(42, 1000, 1000, 1, a);
	yp_run(42, 31337, 31400, 99, b);
	for (int t = 0; t <= RUN_THREADS; t++)
		yp_assert_same(a[t], b[t], RUN_POINTS);
}

Test(yield_policy, threads_get_different_sequences)
{
	static struct tr_yield_decision a[RUN_THREADS + 1][RUN_POINTS];
	size_t diff = 0;

	yp_run(7, 500, 500, 3, a);
	for (size_t i = 0; i < RUN_POINTS; i++)
		diff += a[0][i].yield != a[1][i].yield;
	/* Independent fair coins differ about half the time. */
	cr_assert(diff > RUN_POINTS / 4 && diff < 3 * RUN_POINTS / 4, "diff %zu", diff);
}

Test(yield_policy, different_seeds_differ)
{
	size_t diff = yp_count_differences(1, 2, 1000);

	cr_assert(diff > 400, "only %zu of 1000 differ", diff);
	cr_assert_eq(yp_count_differences(5, 5, 1000), 0);
	/* Nearby and extreme seeds are not correlated either. */
	cr_assert(yp_count_differences(0, UINT64_MAX, 1000) > 400);
}

Test(yield_policy, site_is_part_of_the_key)
{
	struct tr_yield_policy a, b;
	size_t diff = 0;

	yp_init(&a, 3, 0.5, TR_YIELD_SCHED, 0);
	yp_init(&b, 3, 0.5, TR_YIELD_SCHED, 0);
	for (int i = 0; i < 1000; i++)
		diff += yp_decide(&a, 1, 1, 0x400100).yield != yp_decide(&b, 1, 1, 0x400200).yield;
	cr_assert(diff > 300, "diff %zu", diff);
	tr_yield_policy_destroy(&a);
	tr_yield_policy_destroy(&b);
}

Test(yield_policy, probability_zero_never_one_always)
{
	struct tr_yield_policy never, always;
	struct tr_yield_stats st;

	yp_init(&never, 9, 0.0, TR_YIELD_SLEEP, 1000);
	yp_init(&always, 9, 1.0, TR_YIELD_SLEEP, 1000);
	for (int i = 0; i < 20000; i++) {
		int32_t tid = 100 + i % 7;

		cr_assert_not(yp_decide(&never, 100, tid, (uint64_t)i).yield);
		cr_assert(yp_decide(&always, 100, tid, (uint64_t)i).yield);
	}
	tr_yield_policy_stats(&never, &st);
	cr_assert_eq(st.points, 20000);
	cr_assert_eq(st.yields, 0);
	cr_assert_eq(st.slept_us, 0);
	tr_yield_policy_stats(&always, &st);
	cr_assert_eq(st.points, 20000);
	cr_assert_eq(st.yields, 20000);
	cr_assert_eq(st.threads_seen, 7);
	cr_assert_eq(st.procs_seen, 1);
	tr_yield_policy_destroy(&never);
	tr_yield_policy_destroy(&always);
}

Test(yield_policy, empirical_rate_matches_probability)
{
	static const double probs[] = { 0.01, 0.1, 0.3, 0.5, 0.9 };

	for (size_t k = 0; k < sizeof(probs) / sizeof(probs[0]); k++) {
		struct tr_yield_policy p;
		struct tr_yield_stats st;
		const int n = 100000;
		double rate, dev;

		yp_init(&p, 1000 + k, probs[k], TR_YIELD_SCHED, 0);
		for (int i = 0; i < n; i++)
			(void)yp_decide(&p, 1 + i % 3, 10 + i % 11, 0);
		tr_yield_policy_stats(&p, &st);
		rate = (double)st.yields / n;
		dev = rate - probs[k];
		/* Within six standard deviations (compared squared, so no libm): a correct policy
		 * fails this about once in 10^9 runs. */
		cr_assert(dev * dev < 36 * probs[k] * (1 - probs[k]) / n, "p %.2f rate %.4f",
			  probs[k], rate);
		tr_yield_policy_destroy(&p);
	}
}

Test(yield_policy, sleep_durations_within_range)
{
	static const uint32_t maxes[] = { 1, 2, 500, 1000, 1000000 };

	for (size_t k = 0; k < sizeof(maxes) / sizeof(maxes[0]); k++) {
		struct tr_yield_policy p;
		struct tr_yield_stats st;
		uint32_t lo = UINT32_MAX, hi = 0;
		uint64_t sum = 0;
		const int n = 20000;

		yp_init(&p, 77, 1.0, TR_YIELD_SLEEP, maxes[k]);
		for (int i = 0; i < n; i++) {
			struct tr_yield_decision d = yp_decide(&p, 5, 5, (uint64_t)i);

			cr_assert(d.yield);
			cr_assert(d.us >= 1 && d.us <= maxes[k], "us %u max %u", d.us, maxes[k]);
			lo = d.us < lo ? d.us : lo;
			hi = d.us > hi ? d.us : hi;
			sum += d.us;
		}
		tr_yield_policy_stats(&p, &st);
		cr_assert_eq(st.slept_us, sum);
		/* Uniform: both ends reached (or nearly), mean near the middle. */
		cr_assert(lo <= 1 + maxes[k] / 1000, "lo %u", lo);
		cr_assert(hi >= maxes[k] - maxes[k] / 1000, "hi %u", hi);
		double mean_err = (double)sum / n - (1.0 + maxes[k]) / 2;

		cr_assert(mean_err < 0.02 * maxes[k] + 0.01 && -mean_err < 0.02 * maxes[k] + 0.01);
		tr_yield_policy_destroy(&p);
	}
}

Test(yield_policy, sched_strategy_has_no_duration)
{
	struct tr_yield_policy p;

	yp_init(&p, 1, 1.0, TR_YIELD_SCHED, 0);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(yp_decide(&p, 1, 1, 0).us, 0);
	cr_assert_eq(p.slept_us, 0);
	tr_yield_policy_destroy(&p);
}

Test(yield_policy, defaults)
{
	struct tr_yield_config cfg;
	struct tr_yield_policy p;

	tr_yield_config_default(&cfg);
	cr_assert_eq(tr_yield_config_validate(&cfg), 0);
	cr_assert_eq(cfg.strategy, TR_YIELD_SLEEP);
	cr_assert_eq(cfg.max_us, TR_YIELD_MAX_US_DEFAULT);
	/* NULL config and zeros mean the defaults. */
	cr_assert_eq(tr_yield_policy_init(&p, NULL), 0);
	cr_assert_eq(p.cfg.max_us, 1000);
	tr_yield_policy_destroy(&p);
	memset(&cfg, 0, sizeof(cfg));
	cfg.strategy = TR_YIELD_SLEEP;
	cr_assert_eq(tr_yield_policy_init(&p, &cfg), 0);
	cr_assert_eq(p.cfg.max_us, TR_YIELD_MAX_US_DEFAULT);
	cr_assert_eq(p.cfg.max_threads, TR_YIELD_THREADS_DEFAULT);
	cr_assert_eq(p.cfg.max_procs, TR_YIELD_PROCS_DEFAULT);
	tr_yield_policy_destroy(&p);
	tr_yield_policy_destroy(&p);  /* twice is harmless */
}

Test(yield_policy, invalid_configs_rejected)
{
	static const double bad_probs[] = { -0.0001, 1.0001, -1, 2, NAN, INFINITY, -INFINITY };
	struct tr_yield_config cfg;
	struct tr_yield_policy p;

	for (size_t i = 0; i < sizeof(bad_probs) / sizeof(bad_probs[0]); i++) {
		tr_yield_config_default(&cfg);
		cfg.probability = bad_probs[i];
		cr_assert_eq(tr_yield_config_validate(&cfg), -EINVAL, "p %g", bad_probs[i]);
		cr_assert_eq(tr_yield_policy_init(&p, &cfg), -EINVAL);
		tr_yield_policy_destroy(&p);  /* init leaves it destroyed */
	}
	tr_yield_config_default(&cfg);
	cfg.max_us = TR_YIELD_MAX_US_LIMIT + 1;
	cr_assert_eq(tr_yield_policy_init(&p, &cfg), -EINVAL);
	cfg.max_us = TR_YIELD_MAX_US_LIMIT;
	cr_assert_eq(tr_yield_config_validate(&cfg), 0);
	cfg.strategy = (enum tr_yield_strategy)7;
	cr_assert_eq(tr_yield_config_validate(&cfg), -EINVAL);
	tr_yield_config_default(&cfg);
	cfg.max_threads = TR_YIELD_THREADS_LIMIT + 1;
	cr_assert_eq(tr_yield_config_validate(&cfg), -EINVAL);
	tr_yield_config_default(&cfg);
	cfg.max_procs = TR_YIELD_PROCS_LIMIT + 1;
	cr_assert_eq(tr_yield_config_validate(&cfg), -EINVAL);
	cr_assert_eq(tr_yield_config_validate(NULL), -EINVAL);
	/* The bounds themselves are valid. */
	tr_yield_config_default(&cfg);
	cfg.probability = 0.0;
	cr_assert_eq(tr_yield_config_validate(&cfg), 0);
	cfg.probability = 1.0;
	cr_assert_eq(tr_yield_config_validate(&cfg), 0);
}

Test(yield_policy, bad_ids_rejected)
{
	struct tr_yield_policy p;
	struct tr_yield_decision d;

	yp_init(&p, 1, 1.0, TR_YIELD_SLEEP, 10);
	cr_assert_eq(tr_yield_decide(&p, 0, 5, 0, &d), -EINVAL);
	cr_assert_not(d.yield);
	cr_assert_eq(tr_yield_decide(&p, 5, -1, 0, &d), -EINVAL);
	cr_assert_eq(tr_yield_process_seen(&p, -3), -EINVAL);
	cr_assert_eq(tr_yield_thread_seen(&p, 1, 0), -EINVAL);
	cr_assert_eq(tr_yield_thread_gone(&p, 1, 1), -ENOENT);
	cr_assert_eq(tr_yield_process_gone(&p, 1), -ENOENT);
	cr_assert_eq(p.points, 0);
	tr_yield_policy_destroy(&p);
	/* A destroyed policy refuses politely. */
	cr_assert_eq(tr_yield_decide(&p, 1, 1, 0, &d), -EINVAL);
	cr_assert_eq(tr_yield_process_seen(&p, 1), -EINVAL);
}

Test(yield_policy, ordinals_in_order_of_first_appearance)
{
	struct tr_yield_policy p;

	yp_init(&p, 1, 0.5, TR_YIELD_SCHED, 0);
	cr_assert_eq(tr_yield_process_seen(&p, 900), 0);
	cr_assert_eq(tr_yield_process_seen(&p, 300), 1);
	cr_assert_eq(tr_yield_process_seen(&p, 900), 0);
	cr_assert_eq(tr_yield_thread_seen(&p, 300, 300), 0);
	cr_assert_eq(tr_yield_thread_seen(&p, 300, 305), 1);
	cr_assert_eq(tr_yield_thread_seen(&p, 900, 901), 0);
	cr_assert_eq(tr_yield_thread_seen(&p, 300, 305), 1);
	/* A thread first met at a decision is announced by it. */
	cr_assert_eq(yp_decide(&p, 700, 702, 0).proc_ord, 2);
	cr_assert_eq(tr_yield_thread_seen(&p, 700, 701), 1);
	cr_assert_eq(yp_decide(&p, 300, 301, 0).thread_ord, 2);
	/* A tid met again in another process: the old thread ended, this one is new. */
	cr_assert_eq(tr_yield_thread_seen(&p, 900, 305), 1);
	cr_assert_eq(tr_yield_thread_seen(&p, 300, 306), 3);
	cr_assert_eq(p.threads_live, 7);
	tr_yield_policy_destroy(&p);
}

Test(yield_policy, points_count_per_thread)
{
	struct tr_yield_policy p;

	yp_init(&p, 1, 0.5, TR_YIELD_SCHED, 0);
	for (uint64_t i = 0; i < 5; i++) {
		cr_assert_eq(yp_decide(&p, 1, 1, 0).point, i);
		cr_assert_eq(yp_decide(&p, 1, 2, 0).point, i);
	}
	cr_assert_eq(p.points, 10);
	tr_yield_policy_destroy(&p);
}

Test(yield_policy, thread_gone_then_tid_reused)
{
	struct tr_yield_policy p, q;
	struct tr_yield_decision first[50], again[50];

	yp_init(&p, 11, 0.5, TR_YIELD_SLEEP, 100);
	yp_init(&q, 11, 0.5, TR_YIELD_SLEEP, 100);
	cr_assert_eq(tr_yield_thread_seen(&p, 1, 1), 0);
	cr_assert_eq(tr_yield_thread_seen(&p, 1, 2), 1);
	for (int i = 0; i < 50; i++)
		first[i] = yp_decide(&p, 1, 2, 0);
	cr_assert_eq(tr_yield_thread_gone(&p, 1, 2), 0);
	cr_assert_eq(tr_yield_thread_gone(&p, 1, 2), -ENOENT);
	cr_assert_eq(tr_yield_thread_gone(&p, 7, 1), -ENOENT);  /* wrong process */
	/* The reused tid is a new thread: ordinal 2, points from 0. */
	cr_assert_eq(tr_yield_thread_seen(&p, 1, 2), 2);
	cr_assert_eq(yp_decide(&p, 1, 2, 0).point, 0);
	/* And the first thread's decisions replay in another run by ordinal alone. */
	cr_assert_eq(tr_yield_thread_seen(&q, 8, 8), 0);
	cr_assert_eq(tr_yield_thread_seen(&q, 8, 9), 1);
	for (int i = 0; i < 50; i++)
		again[i] = yp_decide(&q, 8, 9, 0);
	yp_assert_same(first, again, 50);
	tr_yield_policy_destroy(&p);
	tr_yield_policy_destroy(&q);
}

Test(yield_policy, thread_table_full)
{
	struct tr_yield_config cfg;
	struct tr_yield_policy p;
	struct tr_yield_decision d;
	struct tr_yield_stats st;

	tr_yield_config_default(&cfg);
	cfg.probability = 1.0;
	cfg.max_threads = 4;
	cr_assert_eq(tr_yield_policy_init(&p, &cfg), 0);
	for (int t = 1; t <= 4; t++)
		cr_assert_eq(tr_yield_thread_seen(&p, 1, t), t - 1);
	cr_assert_eq(tr_yield_thread_seen(&p, 1, 5), -ENOSPC);
	/* The thread that does not fit is never perturbed, and the refusal is counted. */
	cr_assert_eq(tr_yield_decide(&p, 1, 5, 0, &d), -ENOSPC);
	cr_assert_not(d.yield);
	cr_assert_eq(d.us, 0);
	/* Known threads carry on. */
	cr_assert(yp_decide(&p, 1, 4, 0).yield);
	tr_yield_policy_stats(&p, &st);
	cr_assert_eq(st.refused, 1);
	cr_assert_eq(st.points, 1);
	cr_assert_eq(st.yields, 1);
	cr_assert_eq(st.threads_live, 4);
	/* A thread that ends makes room; the newcomer still gets a fresh ordinal. */
	cr_assert_eq(tr_yield_thread_gone(&p, 1, 2), 0);
	cr_assert_eq(tr_yield_thread_seen(&p, 1, 5), 4);
	cr_assert_eq(tr_yield_thread_seen(&p, 1, 6), -ENOSPC);
	tr_yield_policy_destroy(&p);
}

Test(yield_policy, process_table_full)
{
	struct tr_yield_config cfg;
	struct tr_yield_policy p;
	struct tr_yield_decision d;

	tr_yield_config_default(&cfg);
	cfg.max_procs = 2;
	cr_assert_eq(tr_yield_policy_init(&p, &cfg), 0);
	cr_assert_eq(tr_yield_process_seen(&p, 10), 0);
	cr_assert_eq(tr_yield_thread_seen(&p, 20, 20), 0);
	cr_assert_eq(tr_yield_process_seen(&p, 30), -ENOSPC);
	cr_assert_eq(tr_yield_thread_seen(&p, 30, 31), -ENOSPC);
	cr_assert_eq(tr_yield_decide(&p, 30, 30, 0, &d), -ENOSPC);
	cr_assert_eq(p.refused, 1);
	cr_assert_eq(p.threads_live, 1);
	cr_assert_eq(tr_yield_process_gone(&p, 10), 0);
	cr_assert_eq(tr_yield_process_seen(&p, 30), 2);
	tr_yield_policy_destroy(&p);
}

Test(yield_policy, process_gone_forgets_its_threads)
{
	struct tr_yield_config cfg;
	struct tr_yield_policy p;
	uint64_t points[3000];

	tr_yield_config_default(&cfg);
	cfg.max_threads = 3000;
	cr_assert_eq(tr_yield_policy_init(&p, &cfg), 0);
	/* Three processes' threads share the table, so removal shifts other clusters. */
	for (int i = 0; i < 3000; i++) {
		int32_t pid = 1 + i % 3;

		cr_assert_eq(tr_yield_thread_seen(&p, pid, 10 + i), i / 3);
		points[i] = (uint64_t)(i % 5);
		for (uint64_t k = 0; k < points[i]; k++)
			(void)yp_decide(&p, pid, 10 + i, 0);
	}
	cr_assert_eq(tr_yield_process_gone(&p, 2), 0);
	cr_assert_eq(tr_yield_process_gone(&p, 2), -ENOENT);
	cr_assert_eq(p.threads_live, 2000);
	for (int i = 0; i < 3000; i++) {
		int32_t pid = 1 + i % 3;

		if (pid == 2) {
			cr_assert_eq(tr_yield_thread_gone(&p, 2, 10 + i), -ENOENT);
			continue;
		}
		/* Still there, with its ordinal and its count of points. */
		struct tr_yield_decision d = yp_decide(&p, pid, 10 + i, 0);

		cr_assert_eq(d.thread_ord, (uint32_t)(i / 3));
		cr_assert_eq(d.point, points[i], "tid %d", 10 + i);
	}
	/* The pid may come back as a new process with a new ordinal. */
	cr_assert_eq(tr_yield_process_seen(&p, 2), 3);
	tr_yield_policy_destroy(&p);
}

/* The thread table against a plain array, through random arrivals and departures. */
Test(yield_policy, thread_table_matches_a_model)
{
	enum { N = 600, CAP = 256 };
	struct tr_yield_config cfg;
	struct tr_yield_policy p;
	int64_t model_ord[N];       /* -1: not live */
	uint32_t next_ord = 0;
	uint32_t live = 0;
	uint64_t rng = 12345;

	tr_yield_config_default(&cfg);
	cfg.max_threads = CAP;
	cr_assert_eq(tr_yield_policy_init(&p, &cfg), 0);
	for (int i = 0; i < N; i++)
		model_ord[i] = -1;
	for (int step = 0; step < 200000; step++) {
		uint64_t r = tr_splitmix64_next(&rng);
		int tid = 1 + (int)(r % N);

		if ((r >> 32) % 3 == 0) {
			int rc = tr_yield_thread_gone(&p, 1, tid);

			cr_assert_eq(rc, model_ord[tid - 1] >= 0 ? 0 : -ENOENT);
			if (model_ord[tid - 1] >= 0)
				live--;
			model_ord[tid - 1] = -1;
		} else {
			int64_t got = tr_yield_thread_seen(&p, 1, tid);

			if (model_ord[tid - 1] >= 0) {
				cr_assert_eq(got, model_ord[tid - 1]);
			} else if (live == CAP) {
				cr_assert_eq(got, -ENOSPC);
			} else {
				cr_assert_eq(got, next_ord);
				model_ord[tid - 1] = next_ord++;
				live++;
			}
		}
		cr_assert_eq(p.threads_live, live);
	}
	tr_yield_policy_destroy(&p);
}

Test(yield_policy, reset_replays_and_reseed_changes)
{
	struct tr_yield_policy p;
	struct tr_yield_decision a[300], b[300], c[300];
	struct tr_yield_stats st;
	size_t diff = 0;

	yp_init(&p, 2024, 0.5, TR_YIELD_SLEEP, 1000);
	for (int i = 0; i < 300; i++)
		a[i] = yp_decide(&p, 40, 40 + i % 3, 0);
	tr_yield_policy_reset(&p);
	tr_yield_policy_stats(&p, &st);
	cr_assert_eq(st.points + st.yields + st.slept_us + st.refused, 0);
	cr_assert_eq(st.procs_seen + st.threads_seen + st.threads_live, 0);
	/* The next run: other pids, same seed, same decisions. */
	for (int i = 0; i < 300; i++)
		b[i] = yp_decide(&p, 77, 90 + i % 3, 0);
	yp_assert_same(a, b, 300);
	tr_yield_policy_reseed(&p, 2025);
	cr_assert_eq(p.cfg.seed, 2025);
	for (int i = 0; i < 300; i++) {
		c[i] = yp_decide(&p, 40, 40 + i % 3, 0);
		diff += c[i].yield != a[i].yield;
	}
	cr_assert(diff > 75, "diff %zu", diff);
	tr_yield_policy_reseed(&p, 2024);
	for (int i = 0; i < 300; i++)
		c[i] = yp_decide(&p, 40, 40 + i % 3, 0);
	yp_assert_same(a, c, 300);
	tr_yield_policy_destroy(&p);
}

Test(yield_policy, strategy_parse)
{
	enum tr_yield_strategy s;
	uint32_t us;

	cr_assert_eq(tr_yield_strategy_parse("yield", &s, &us), 0);
	cr_assert_eq(s, TR_YIELD_SCHED);
	cr_assert_eq(us, 0);
	cr_assert_eq(tr_yield_strategy_parse("sleep:500", &s, &us), 0);
	cr_assert_eq(s, TR_YIELD_SLEEP);
	cr_assert_eq(us, 500);
	cr_assert_eq(tr_yield_strategy_parse("sleep", &s, &us), 0);
	cr_assert_eq(us, TR_YIELD_MAX_US_DEFAULT);
	cr_assert_eq(tr_yield_strategy_parse("sleep:1", &s, &us), 0);
	cr_assert_eq(us, 1);
	cr_assert_eq(tr_yield_strategy_parse("sleep:1000000", &s, &us), 0);
	cr_assert_eq(us, 1000000);
	cr_assert_eq(tr_yield_strategy_parse("sleep:007", &s, &us), 0);
	cr_assert_eq(us, 7);
}

Test(yield_policy, strategy_parse_errors)
{
	static const char *const bad[] = {
		"", "Yield", "yield ", " yield", "sched", "nap", "sleep:", "sleep:0", "sleep:00",
		"sleep:abc", "sleep:-5", "sleep:+5", "sleep: 5", "sleep:5 ", "sleep:0x10",
		"sleep:1000001", "sleep:99999999999999999999999", "sleep=5", "sleep:5:6", "sleep5",
		"delay:", "delay:0", "delay5", "delay:1000001", "Delay:5", "delays",
		"taper:", "taper:0", "taper5", "taper:1000001", "tapers",
	};
	enum tr_yield_strategy s = (enum tr_yield_strategy)42;
	uint32_t us = 4242;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(tr_yield_strategy_parse(bad[i], &s, &us), -EINVAL, "'%s'", bad[i]);
		cr_assert_eq(us, 4242, "outputs untouched on '%s'", bad[i]);
		cr_assert_eq((int)s, 42);
	}
	cr_assert_eq(tr_yield_strategy_parse(NULL, &s, &us), -EINVAL);
	cr_assert_eq(tr_yield_strategy_parse("yield", NULL, &us), -EINVAL);
}

Test(yield_policy, strategy_format_round_trip)
{
	static const char *const texts[] = { "yield", "sleep:1", "sleep:500", "sleep:1000",
					     "sleep:1000000", "delay:1", "delay:20000",
					     "taper:20000" };
	char buf[TR_YIELD_STRATEGY_TEXT_MAX];

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		enum tr_yield_strategy s;
		uint32_t us;
		int n;

		cr_assert_eq(tr_yield_strategy_parse(texts[i], &s, &us), 0);
		n = tr_yield_strategy_format(s, us, buf, sizeof(buf));
		cr_assert_eq(n, (int)strlen(texts[i]));
		cr_assert_str_eq(buf, texts[i]);
	}
	/* max_us 0 is the default; yield ignores max_us. */
	cr_assert_eq(tr_yield_strategy_format(TR_YIELD_SLEEP, 0, buf, sizeof(buf)), 10);
	cr_assert_str_eq(buf, "sleep:1000");
	cr_assert_eq(tr_yield_strategy_format(TR_YIELD_SCHED, 77, buf, sizeof(buf)), 5);
	cr_assert_str_eq(buf, "yield");
	cr_assert_str_eq(tr_yield_strategy_name(TR_YIELD_SCHED), "yield");
	cr_assert_str_eq(tr_yield_strategy_name(TR_YIELD_SLEEP), "sleep");
	cr_assert_str_eq(tr_yield_strategy_name(TR_YIELD_DELAY), "delay");
	cr_assert_str_eq(tr_yield_strategy_name(TR_YIELD_TAPER), "taper");
	cr_assert_null(tr_yield_strategy_name((enum tr_yield_strategy)9));
}

/* delay: a site's decision is the run's, the same in every thread and process; a thread's
 * hold there is the site's length (in [3/4 max, max]) or, at about half the sites, a quarter
 * of it for about half the threads; a thread's points beyond 8 are taken at powers of two. */
Test(yield_policy, delay_decides_per_site_for_the_whole_run)
{
	struct tr_yield_config cfg;
	size_t chosen = 0, sites = 400, spread = 0, held[2] = { 0 };

	tr_yield_config_default(&cfg);
	cfg.strategy = TR_YIELD_DELAY;
	cfg.max_us = 20000;
	cfg.seed = 11;
	for (uint64_t site = 0; site < sites; site++) {
		struct tr_yield_decision first, d;
		uint32_t longest = 0;
		size_t quarters = 0;

		tr_yield_decide_keyed(&cfg, 0, 0, 0, site * 16, &first);
		chosen += first.yield;
		if (!first.yield)
			cr_assert_eq(first.us, 0);
		for (uint32_t proc = 0; proc < 3; proc++)
			for (uint32_t thread = 0; thread < 5; thread++) {
				tr_yield_decide_keyed(&cfg, proc, thread, 3, site * 16, &d);
				cr_assert_eq(d.yield, first.yield, "site %lu", (unsigned long)site);
				if (d.us > longest)
					longest = d.us;
			}
		if (!first.yield)
			continue;
		cr_assert(longest >= 15000 && longest <= 20000, "us %u", longest);
		for (uint32_t proc = 0; proc < 3; proc++)
			for (uint32_t thread = 0; thread < 5; thread++) {
				tr_yield_decide_keyed(&cfg, proc, thread, 3, site * 16, &d);
				cr_assert(d.us == longest || d.us == longest / 4, "hold %u of %u", d.us,
					  longest);
				quarters += d.us != longest;
				held[d.us != longest]++;
			}
		spread += quarters > 0;
	}
	cr_assert(chosen > sites * 4 / 10 && chosen < sites * 6 / 10, "%zu of %zu", chosen, sites);
	cr_assert(spread > chosen * 3 / 10 && spread < chosen * 7 / 10, "%zu of %zu spread", spread,
		  chosen);
	cr_assert(held[1] > spread * 15 * 3 / 10 && held[1] < spread * 15 * 7 / 10, "%zu of %zu",
		  held[1], spread * 15);
	for (uint64_t site = 0;; site += 16) {      /* a chosen site's later points decay */
		struct tr_yield_decision d;
		size_t taken = 0;

		tr_yield_decide_keyed(&cfg, 0, 0, 0, site, &d);
		if (!d.yield)
			continue;
		for (uint64_t point = 0; point < 1024; point++) {
			tr_yield_decide_keyed(&cfg, 0, 0, point, site, &d);
			taken += d.yield;
		}
		cr_assert_eq(taken, 8 + 7, "points 0-7 and 8, 16, ..., 512: %zu", taken);
		break;
	}
	cfg.seed = 12;                              /* another seed, another choice */
	for (uint64_t site = 0, same = 0;; site += 16) {
		struct tr_yield_decision a, b;

		tr_yield_decide_keyed(&cfg, 0, 0, 0, site, &a);
		cfg.seed = 11;
		tr_yield_decide_keyed(&cfg, 0, 0, 0, site, &b);
		cfg.seed = 12;
		same += a.yield == b.yield;
		if (site == 16 * 399) {
			cr_assert(same < 300, "%lu of 400 the same", (unsigned long)same);
			break;
		}
	}
}

Test(yield_policy, strategy_format_errors)
{
	char buf[8];

	cr_assert_eq(tr_yield_strategy_format((enum tr_yield_strategy)9, 0, buf, sizeof(buf)),
		     -EINVAL);
	cr_assert_eq(tr_yield_strategy_format(TR_YIELD_SLEEP, TR_YIELD_MAX_US_LIMIT + 1, buf,
					      sizeof(buf)), -EINVAL);
	cr_assert_eq(tr_yield_strategy_format(TR_YIELD_SLEEP, 1, NULL, 4), -EINVAL);
	/* Too small: truncated, terminated, and said so. */
	cr_assert_eq(tr_yield_strategy_format(TR_YIELD_SLEEP, 500, buf, sizeof(buf)), -ENOSPC);
	cr_assert_str_eq(buf, "sleep:5");
	cr_assert_eq(tr_yield_strategy_format(TR_YIELD_SCHED, 0, buf, 5), -ENOSPC);
	cr_assert_str_eq(buf, "yiel");
	cr_assert_eq(tr_yield_strategy_format(TR_YIELD_SCHED, 0, buf, 6), 5);
	cr_assert_eq(tr_yield_strategy_format(TR_YIELD_SCHED, 0, NULL, 0), -ENOSPC);
}

Test(yield_policy, splitmix64_reference_values)
{
	/* First outputs of Vigna's splitmix64.c seeded with 1234567. */
	static const uint64_t want[] = {
		6457827717110365317ull, 3203168211198807973ull, 9817491932198370423ull,
		4593380528125082431ull, 16408922859458223821ull,
	};
	uint64_t state = 1234567;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_eq(tr_splitmix64_next(&state), want[i], "output %zu", i);
	cr_assert_eq(tr_mix64(0), 0);  /* the finaliser is a bijection fixing 0 */
}

/* ---- PCT: the strategy text, priorities and change points ---- */

static struct tr_yield_config pct_cfg(uint64_t seed, uint32_t depth, uint32_t steps)
{
	struct tr_yield_config cfg;

	tr_yield_config_default(&cfg);
	cfg.seed = seed;
	cfg.strategy = TR_YIELD_PCT;
	cfg.depth = depth;
	cfg.steps = steps;
	return cfg;
}

Test(pct, strategy_parse)
{
	static const struct { const char *text; uint32_t depth, steps; } ok[] = {
		{ "pct", 3, 0 }, { "pct:1", 1, 0 }, { "pct:5", 5, 0 }, { "pct:32", 32, 0 },
		{ "pct:3:700", 3, 700 }, { "pct:2:1", 2, 1 }, { "pct:4:100000000", 4, 100000000 },
	};
	static const char *const bad[] = {
		"pct:0", "pct:x", "pct:", "pct:3:", "pct:3:0", "pct:33", "pctx", "pct:3:5:6",
		"pct:-1", "pct: 3", "pct:3x", "pct:3:100000001", "PCT", "pct:0x3",
	};
	struct tr_yield_config cfg;
	char buf[TR_YIELD_STRATEGY_TEXT_MAX];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		tr_yield_config_default(&cfg);
		cr_assert_eq(tr_yield_strategy_parse_config(ok[i].text, &cfg), 0, "%s", ok[i].text);
		cr_assert_eq(cfg.strategy, TR_YIELD_PCT, "%s", ok[i].text);
		cr_assert_eq(cfg.depth, ok[i].depth, "%s", ok[i].text);
		cr_assert_eq(cfg.steps, ok[i].steps, "%s", ok[i].text);
		cr_assert_eq(tr_yield_config_validate(&cfg), 0, "%s", ok[i].text);
		/* reports name the depth only: the steps are a key of their own */
		cr_assert_gt(tr_yield_config_strategy_format(&cfg, buf, sizeof(buf)), 0);
		cr_assert_eq(strncmp(buf, "pct:", 4), 0);
		cr_assert_eq((uint32_t)atoi(buf + 4), ok[i].depth, "%s -> %s", ok[i].text, buf);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tr_yield_config_default(&cfg);
		cr_assert_eq(tr_yield_strategy_parse_config(bad[i], &cfg), -EINVAL, "%s", bad[i]);
		cr_assert_eq(cfg.strategy, TR_YIELD_SLEEP, "%s left cfg changed", bad[i]);
	}
	/* the older strategies go through the same entry */
	cr_assert_eq(tr_yield_strategy_parse_config("sleep:20", &cfg), 0);
	cr_assert_eq(cfg.strategy, TR_YIELD_SLEEP);
	cr_assert_eq(cfg.max_us, 20);
	cr_assert_eq(tr_yield_config_strategy_format(&cfg, buf, sizeof(buf)), 8);
	cr_assert_str_eq(buf, "sleep:20");
	cfg = pct_cfg(0, 3, 0);
	cr_assert_eq(tr_yield_config_strategy_format(&cfg, buf, 4), -ENOSPC);
	cr_assert_str_eq(buf, "pct");
	cfg.depth = TR_PCT_DEPTH_LIMIT + 1;
	cr_assert_eq(tr_yield_config_validate(&cfg), -EINVAL);
	cr_assert_str_eq(tr_yield_strategy_name(TR_YIELD_PCT), "pct");
}

Test(pct, priorities_distinct_above_depth_and_seeded)
{
	enum { N = 4096 };
	static uint64_t a[N], b[N];
	struct tr_yield_config c1 = pct_cfg(42, 3, 0), c2 = pct_cfg(43, 3, 0);
	size_t same = 0, first_a = 0, first_b = 0;

	for (uint32_t t = 0; t < N; t++) {
		a[t] = tr_pct_priority(&c1, 0, t);
		b[t] = tr_pct_priority(&c2, 0, t);
		cr_assert_geq(a[t], 3, "priority %u below the depth", t);
		cr_assert_eq(a[t], tr_pct_priority(&c1, 0, t), "not a function of the seed");
		same += a[t] == b[t];
		if (a[t] > a[first_a])
			first_a = t;
		if (b[t] > b[first_b])
			first_b = t;
	}
	for (uint32_t i = 0; i < N; i++)
		for (uint32_t j = i + 1; j < N; j++)
			cr_assert_neq(a[i], a[j], "threads %u and %u tie", i, j);
	cr_assert_lt(same, 4, "another seed gave the same priorities");
	/* process ordinals are keyed too */
	cr_assert_neq(tr_pct_priority(&c1, 0, 1), tr_pct_priority(&c1, 1, 1));
	/* which of two threads goes first is a fair coin over seeds */
	size_t zero_first = 0;

	for (uint64_t seed = 0; seed < 2000; seed++) {
		struct tr_yield_config c = pct_cfg(seed, 3, 0);

		zero_first += tr_pct_priority(&c, 0, 0) > tr_pct_priority(&c, 0, 1);
	}
	cr_assert(zero_first > 900 && zero_first < 1100, "thread 0 first in %zu of 2000",
		  zero_first);
}

Test(pct, change_points_in_range_and_uniform)
{
	enum { SEEDS = 20000, STEPS = 100 };
	static unsigned hits[STEPS + 1];
	struct tr_yield_config c;

	for (uint64_t seed = 0; seed < SEEDS; seed++) {
		c = pct_cfg(seed, 4, STEPS);
		cr_assert_eq(tr_pct_change_point(&c, 0, 0), 0);
		cr_assert_eq(tr_pct_change_point(&c, 0, 4), 0, "depth 4 has 3 change points");
		for (uint32_t i = 1; i < 4; i++) {
			uint64_t k = tr_pct_change_point(&c, 0, i);

			cr_assert(k >= 1 && k <= STEPS, "change point %u = %lu", i, (unsigned long)k);
			cr_assert_eq(k, tr_pct_change_point(&c, 0, i));
			hits[k]++;
		}
	}
	/* 3 * SEEDS draws over STEPS values: about 600 each */
	for (uint32_t k = 1; k <= STEPS; k++)
		cr_assert(hits[k] > 450 && hits[k] < 750, "step %u drawn %u times", k, hits[k]);
	/* depth 1: no change point; steps 0 means the default estimate */
	c = pct_cfg(7, 1, 0);
	cr_assert_eq(tr_pct_change_point(&c, 0, 1), 0);
	c = pct_cfg(7, 2, 0);
	cr_assert_leq(tr_pct_change_point(&c, 0, 1), TR_PCT_STEPS_DEFAULT);
	/* another process has its own change points (most of the time) */
	size_t same = 0;

	for (uint64_t seed = 0; seed < 1000; seed++) {
		c = pct_cfg(seed, 2, 1000000);
		same += tr_pct_change_point(&c, 0, 1) == tr_pct_change_point(&c, 1, 1);
	}
	cr_assert_lt(same, 5);
}

/* taper: sleep's decision and duration at a thread's points 0..7 and at powers of two; no
 * sleep at its other points (a chatty thread's cost grows with the log of its calls). */
Test(yield_policy, taper_is_sleep_at_tapered_points)
{
	struct tr_yield_config sleep_cfg, taper_cfg;
	size_t taken = 0;

	tr_yield_config_default(&sleep_cfg);
	sleep_cfg.max_us = 20000;
	sleep_cfg.seed = 3;
	taper_cfg = sleep_cfg;
	taper_cfg.strategy = TR_YIELD_TAPER;
	cr_assert_eq(tr_yield_config_validate(&taper_cfg), 0);
	for (uint64_t point = 0; point < 4096; point++) {
		struct tr_yield_decision slept, tapered;
		bool tapered_point = point < 8 || (point & (point - 1)) == 0;

		tr_yield_decide_keyed(&sleep_cfg, 1, 2, point, 0x1234, &slept);
		tr_yield_decide_keyed(&taper_cfg, 1, 2, point, 0x1234, &tapered);
		if (tapered_point) {
			cr_assert_eq(tapered.yield, slept.yield, "point %lu", (unsigned long)point);
			cr_assert_eq(tapered.us, slept.us);
		} else {
			cr_assert(!tapered.yield && tapered.us == 0, "point %lu", (unsigned long)point);
		}
		taken += tapered.yield;
	}
	cr_assert(taken >= 2 && taken <= 8 + 4, "%zu sleeps in 4096 points", taken);
}
