/* test_recorder.c - the ring: order, eviction, budget, freeze, time, payload previews. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "recorder.h"

struct fake_clock {
	uint64_t now, step;
};

static uint64_t fake_now(void *ctx)
{
	struct fake_clock *c = ctx;
	uint64_t t = c->now;

	c->now += c->step;
	return t;
}

static void rec_init(struct tr_recorder *r, int64_t cap, int64_t budget, int64_t payload)
{
	struct tr_recorder_config cfg = { .cap = cap, .budget = budget, .payload = payload };

	cr_assert_eq(tr_recorder_init(r, &cfg), 0);
}

/* An event whose fields all derive from n, so any slot can be checked for its origin. */
static struct tr_event rec_event(int n)
{
	struct tr_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.seq = 9999;
	ev.t_ns = 9999;
	ev.pid = 100 + n;
	ev.tid = 200 + n;
	ev.dir = n % 2 ? TR_DIR_RECV : TR_DIR_SEND;
	ev.fn = n % 2 ? "read" : "write";
	ev.fd = n;
	ev.len = 10 + n;
	ev.site = 0x400000u + (uint64_t)n;
	snprintf(ev.endpoint, sizeof(ev.endpoint), "pipe:[%d]", n);
	return ev;
}

/* Pushes event n with the payload "msg-<n>". */
static enum tr_push_result rec_push(struct tr_recorder *r, int n)
{
	struct tr_event ev = rec_event(n);
	char msg[32];
	int len = snprintf(msg, sizeof(msg), "msg-%d", n);

	return tr_recorder_push(r, &ev, msg, (size_t)len);
}

static void check_slot(const struct tr_recorder *r, size_t i, int n)
{
	const uint8_t *data;
	size_t len;
	char msg[32], ep[32];
	int mlen = snprintf(msg, sizeof(msg), "msg-%d", n);
	const struct tr_event *ev = tr_recorder_at(r, i, &data, &len);

	snprintf(ep, sizeof(ep), "pipe:[%d]", n);
	cr_assert_not_null(ev, "slot %zu", i);
	cr_assert_eq(ev->seq, (uint64_t)n, "slot %zu: seq %llu, want %d", i,
		     (unsigned long long)ev->seq, n);
	cr_assert_eq(ev->pid, 100 + n);
	cr_assert_eq(ev->tid, 200 + n);
	cr_assert_eq(ev->fd, n);
	cr_assert_eq(ev->len, 10 + n);
	cr_assert_eq(ev->site, 0x400000u + (uint64_t)n);
	cr_assert_str_eq(ev->endpoint, ep);
	cr_assert_eq(len, (size_t)mlen);
	cr_assert_eq(memcmp(data, msg, len), 0);
}

Test(recorder, defaults)
{
	struct tr_recorder r;
	struct tr_recorder_config zero = { 0 }, neg = { .cap = -5, .budget = -1, .payload = -1 };

	cr_assert_eq(tr_recorder_init(&r, &zero), 0);
	cr_assert_eq(r.cap, TR_CAP_DEFAULT);
	cr_assert_eq(r.budget, TR_BUDGET_DEFAULT);
	cr_assert_eq(r.payload, 0, "payload 0 means no previews, not the default");
	cr_assert_eq(tr_recorder_len(&r), 0);
	cr_assert(!r.overflow && !r.frozen);
	tr_recorder_destroy(&r);

	cr_assert_eq(tr_recorder_init(&r, &neg), 0);
	cr_assert_eq(r.cap, 50);
	cr_assert_eq(r.budget, 5000);
	cr_assert_eq(r.payload, 64);
	tr_recorder_destroy(&r);

	cr_assert_eq(tr_recorder_init(&r, NULL), 0);
	cr_assert_eq(r.cap, 50);
	cr_assert_eq(r.budget, 5000);
	cr_assert_eq(r.payload, 64);
	tr_recorder_destroy(&r);
	tr_recorder_destroy(&r);   /* twice: harmless */
}

Test(recorder, limits)
{
	struct tr_recorder r;
	struct tr_recorder_config ok = { .cap = TR_CAP_MAX, .budget = TR_BUDGET_MAX,
					 .payload = TR_PAYLOAD_MAX };
	struct tr_recorder_config bad[] = {
		{ .cap = TR_CAP_MAX + 1 },
		{ .budget = TR_BUDGET_MAX + 1 },
		{ .payload = TR_PAYLOAD_MAX + 1 },
		{ .cap = INT64_MAX, .budget = INT64_MAX, .payload = INT64_MAX },
	};
	size_t i;

	cr_assert_eq(tr_recorder_init(&r, &ok), 0);
	cr_assert_eq(r.cap, TR_CAP_MAX);
	cr_assert_eq(r.budget, TR_BUDGET_MAX);
	cr_assert_eq(r.payload, TR_PAYLOAD_MAX);
	cr_assert_eq(rec_push(&r, 0), TR_PUSH_OK);
	tr_recorder_destroy(&r);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(tr_recorder_init(&r, &bad[i]), -EINVAL, "config %zu", i);
		cr_assert_null(r.slots);
		tr_recorder_destroy(&r);   /* safe after a failed init */
	}
}

Test(recorder, order_before_wrap)
{
	struct tr_recorder r;
	int i;

	rec_init(&r, 8, 0, 0);
	tr_recorder_destroy(&r);
	rec_init(&r, 8, 100, -1);
	for (i = 0; i < 5; i++)
		cr_assert_eq(rec_push(&r, i), TR_PUSH_OK);
	cr_assert_eq(tr_recorder_len(&r), 5);
	cr_assert_eq(r.count, 5);
	cr_assert_eq(r.dropped, 0);
	for (i = 0; i < 5; i++)
		check_slot(&r, (size_t)i, i);
	cr_assert_null(tr_recorder_at(&r, 5, NULL, NULL));
	tr_recorder_destroy(&r);
}

Test(recorder, eviction_oldest_first_after_wrap)
{
	struct tr_recorder r;
	int i, total;

	rec_init(&r, 4, 1000, 16);
	/* Every wrap position: the ring must read oldest first whatever head is. */
	for (total = 1; total <= 13; total++) {
		tr_recorder_destroy(&r);
		rec_init(&r, 4, 1000, 16);
		for (i = 0; i < total; i++)
			cr_assert_eq(rec_push(&r, i), TR_PUSH_OK);
		size_t len = total < 4 ? (size_t)total : 4;

		cr_assert_eq(tr_recorder_len(&r), len);
		cr_assert_eq(r.count, (uint64_t)total);
		cr_assert_eq(r.dropped, (uint64_t)(total - (int)len));
		for (i = 0; i < (int)len; i++)
			check_slot(&r, (size_t)i, total - (int)len + i);
	}
	tr_recorder_destroy(&r);
}

Test(recorder, dropped_counts_evictions_only)
{
	struct tr_recorder r;
	int i;

	rec_init(&r, 3, 1000, 8);
	for (i = 0; i < 3; i++)
		rec_push(&r, i);
	cr_assert_eq(r.dropped, 0, "a full ring has evicted nothing yet");
	rec_push(&r, 3);
	cr_assert_eq(r.dropped, 1);
	tr_recorder_set_return(&r, 3, 5, 0);
	cr_assert_eq(r.dropped, 1, "set_return is not an eviction");
	for (i = 4; i < 100; i++) {
		rec_push(&r, i);
		cr_assert_eq(r.count, r.dropped + tr_recorder_len(&r));
	}
	cr_assert_eq(r.dropped, 97);
	tr_recorder_freeze(&r);
	rec_push(&r, 100);
	cr_assert_eq(r.dropped, 97, "an ignored push evicts nothing");
	tr_recorder_destroy(&r);
}

Test(recorder, budget_disarms_and_ignores_later_events)
{
	struct tr_recorder r;
	int i;

	rec_init(&r, 10, 5, 16);
	for (i = 0; i < 4; i++) {
		cr_assert_eq(rec_push(&r, i), TR_PUSH_OK);
		cr_assert(!r.overflow);
	}
	cr_assert_eq(rec_push(&r, 4), TR_PUSH_DISARM, "the event reaching the budget disarms");
	cr_assert(r.overflow);
	cr_assert_eq(r.count, 5);
	cr_assert_eq(tr_recorder_len(&r), 5);
	check_slot(&r, 4, 4);   /* and is kept */
	for (i = 5; i < 20; i++)
		cr_assert_eq(rec_push(&r, i), TR_PUSH_DISARM);
	cr_assert_eq(r.count, 5);
	cr_assert_eq(r.dropped, 0);
	cr_assert_eq(tr_recorder_len(&r), 5);
	for (i = 0; i < 5; i++)
		check_slot(&r, (size_t)i, i);
	cr_assert(!r.frozen, "the budget disarms; freezing is the stop's business");
	/* Not frozen: a return for the last send may still arrive. */
	cr_assert(tr_recorder_set_return(&r, 4, 3, 0));
	tr_recorder_destroy(&r);
}

Test(recorder, budget_with_evictions)
{
	struct tr_recorder r;
	int i;

	rec_init(&r, 3, 5, 16);
	for (i = 0; i < 4; i++)
		cr_assert_eq(rec_push(&r, i), TR_PUSH_OK);
	cr_assert_eq(rec_push(&r, 4), TR_PUSH_DISARM);
	cr_assert_eq(rec_push(&r, 5), TR_PUSH_DISARM);
	cr_assert(r.overflow);
	cr_assert_eq(r.count, 5);
	cr_assert_eq(r.dropped, 2);
	cr_assert_eq(tr_recorder_len(&r), 3);
	for (i = 0; i < 3; i++)
		check_slot(&r, (size_t)i, 2 + i);
	tr_recorder_destroy(&r);
}

Test(recorder, budget_of_one)
{
	struct tr_recorder r;

	rec_init(&r, 3, 1, 16);
	cr_assert_eq(rec_push(&r, 0), TR_PUSH_DISARM);
	cr_assert(r.overflow);
	cr_assert_eq(rec_push(&r, 1), TR_PUSH_DISARM);
	cr_assert_eq(r.count, 1);
	check_slot(&r, 0, 0);
	tr_recorder_destroy(&r);
}

Test(recorder, freeze)
{
	struct tr_recorder r;
	struct tr_event before;
	int i;

	rec_init(&r, 4, 100, 16);
	for (i = 0; i < 6; i++)
		rec_push(&r, i);
	tr_recorder_freeze(&r);
	cr_assert(r.frozen);
	before = *tr_recorder_at(&r, 3, NULL, NULL);
	cr_assert_eq(rec_push(&r, 6), TR_PUSH_FROZEN);
	cr_assert_eq(r.count, 6);
	cr_assert_eq(r.dropped, 2);
	cr_assert(!tr_recorder_set_return(&r, 5, 42, 0), "set_return after freeze is ignored");
	cr_assert_eq(memcmp(&before, tr_recorder_at(&r, 3, NULL, NULL), sizeof(before)), 0);
	tr_recorder_freeze(&r);   /* twice: harmless */
	cr_assert(r.frozen);
	cr_assert_eq(rec_push(&r, 7), TR_PUSH_FROZEN);
	for (i = 0; i < 4; i++)
		check_slot(&r, (size_t)i, 2 + i);
	cr_assert(!r.overflow, "frozen is not overflow");
	tr_recorder_destroy(&r);
}

Test(recorder, freeze_after_budget_reports_frozen)
{
	struct tr_recorder r;

	rec_init(&r, 4, 2, 16);
	rec_push(&r, 0);
	cr_assert_eq(rec_push(&r, 1), TR_PUSH_DISARM);
	tr_recorder_freeze(&r);
	cr_assert_eq(rec_push(&r, 2), TR_PUSH_FROZEN);
	cr_assert_eq(r.count, 2);
	tr_recorder_destroy(&r);
}

Test(recorder, set_return)
{
	struct tr_recorder r;
	const struct tr_event *ev;
	int i;

	rec_init(&r, 3, 100, 16);
	rec_push(&r, 0);
	ev = tr_recorder_at(&r, 0, NULL, NULL);
	cr_assert(!ev->returned);
	cr_assert(tr_recorder_set_return(&r, 0, -1, EPIPE));
	cr_assert(ev->returned);
	cr_assert_eq(ev->ret, -1);
	cr_assert_eq(ev->err, EPIPE);
	cr_assert(!tr_recorder_set_return(&r, 1, 5, 0), "not pushed yet");

	for (i = 1; i < 5; i++)
		rec_push(&r, i);   /* seqs 2, 3, 4 remain */
	cr_assert(!tr_recorder_set_return(&r, 0, 7, 0), "evicted");
	cr_assert(!tr_recorder_set_return(&r, 1, 7, 0), "evicted");
	cr_assert(!tr_recorder_set_return(&r, 5, 7, 0), "future");
	cr_assert(!tr_recorder_set_return(&r, UINT64_MAX, 7, 0));
	for (i = 2; i < 5; i++) {
		cr_assert(tr_recorder_set_return(&r, (uint64_t)i, 1000 + i, 0));
		ev = tr_recorder_at(&r, (size_t)(i - 2), NULL, NULL);
		cr_assert_eq(ev->seq, (uint64_t)i);
		cr_assert_eq(ev->ret, 1000 + i, "set_return found the wrong slot");
		cr_assert(ev->returned);
	}
	tr_recorder_destroy(&r);
}

Test(recorder, push_copies_and_stamps)
{
	struct tr_recorder r;
	struct tr_event ev = rec_event(1);
	const struct tr_event *got;
	char buf[8] = "abcdefg";

	rec_init(&r, 4, 100, 16);
	ev.seq = 77;
	ev.t_ns = 77;
	ev.returned = true;
	ev.ret = 7;
	tr_recorder_push(&r, &ev, buf, 7);
	memset(&ev, 0xee, sizeof(ev));   /* the caller's copies are its own */
	memset(buf, 'z', sizeof(buf));
	got = tr_recorder_at(&r, 0, NULL, NULL);
	cr_assert_eq(got->seq, 0, "the caller's seq is ignored");
	cr_assert_eq(got->pid, 101);
	cr_assert(got->returned);
	cr_assert_eq(got->ret, 7);
	cr_assert_str_eq(got->endpoint, "pipe:[1]");
	cr_assert_str_eq(got->fn, "read");
	const uint8_t *data;
	size_t len;

	tr_recorder_at(&r, 0, &data, &len);
	cr_assert_eq(len, 7);
	cr_assert_eq(memcmp(data, "abcdefg", 7), 0);
	tr_recorder_destroy(&r);
}

Test(recorder, fake_clock_exact_times)
{
	struct tr_recorder r;
	struct fake_clock clk = { .now = 5000000000ull, .step = 1500 };
	const struct tr_event *ev;
	int i;

	rec_init(&r, 4, 100, 16);
	tr_recorder_set_clock(&r, fake_now, &clk);
	for (i = 0; i < 10; i++)
		rec_push(&r, i);
	cr_assert_eq(r.first_ns, 5000000000ull);
	/* Events 6..9 remain; times stay relative to the first event ever, evicted or not. */
	for (i = 0; i < 4; i++) {
		uint64_t n = 6 + (uint64_t)i;

		ev = tr_recorder_at(&r, (size_t)i, NULL, NULL);
		cr_assert_eq(ev->t_ns, 5000000000ull + n * 1500);
		cr_assert_eq(tr_recorder_t_us(&r, ev), n * 1500 / 1000);
	}
	tr_recorder_destroy(&r);

	rec_init(&r, 4, 100, 16);
	clk.now = 123456789;
	clk.step = 999;
	tr_recorder_set_clock(&r, fake_now, &clk);
	rec_push(&r, 0);
	rec_push(&r, 1);
	cr_assert_eq(tr_recorder_t_us(&r, tr_recorder_at(&r, 0, NULL, NULL)), 0);
	cr_assert_eq(tr_recorder_t_us(&r, tr_recorder_at(&r, 1, NULL, NULL)), 0, "999 ns");
	rec_push(&r, 2);
	cr_assert_eq(tr_recorder_t_us(&r, tr_recorder_at(&r, 2, NULL, NULL)), 1, "1998 ns");
	tr_recorder_destroy(&r);
}

Test(recorder, clock_stepping_back_clamps)
{
	struct tr_recorder r;
	struct fake_clock clk = { .now = 1000000, .step = (uint64_t)-500000 };

	rec_init(&r, 4, 100, 16);
	tr_recorder_set_clock(&r, fake_now, &clk);
	rec_push(&r, 0);
	rec_push(&r, 1);
	cr_assert_eq(tr_recorder_t_us(&r, tr_recorder_at(&r, 1, NULL, NULL)), 0);
	tr_recorder_destroy(&r);
}

Test(recorder, real_clock_monotonic)
{
	struct tr_recorder r;
	uint64_t prev_ns = 0, prev_us = 0;
	int i;

	rec_init(&r, 1000, 0, 16);
	tr_recorder_set_clock(&r, NULL, NULL);   /* NULL restores the default */
	for (i = 0; i < 1000; i++)
		rec_push(&r, i);
	for (i = 0; i < 1000; i++) {
		const struct tr_event *ev = tr_recorder_at(&r, (size_t)i, NULL, NULL);
		uint64_t us = tr_recorder_t_us(&r, ev);

		if (i == 0) {
			cr_assert_eq(us, 0);
			cr_assert_eq(ev->t_ns, r.first_ns);
			cr_assert_gt(ev->t_ns, 0);
		}
		cr_assert_geq(ev->t_ns, prev_ns);
		cr_assert_geq(us, prev_us);
		prev_ns = ev->t_ns;
		prev_us = us;
	}
	/* A clock that ran ~0 ns for 1000 pushes would be a stub, not CLOCK_MONOTONIC. */
	cr_assert_gt(prev_ns, r.first_ns);
	tr_recorder_destroy(&r);
}

Test(recorder, payload_truncation)
{
	struct tr_recorder r;
	struct tr_event ev = rec_event(0);
	uint8_t big[100];
	const uint8_t *data;
	size_t len, i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	rec_init(&r, 8, 100, 8);
	tr_recorder_push(&r, &ev, big, 20);   /* longer than the preview */
	tr_recorder_push(&r, &ev, big, 8);    /* exactly the preview */
	tr_recorder_push(&r, &ev, big, 3);    /* shorter */
	ev.truncated = true;                  /* the caller knew of a cut already */
	tr_recorder_push(&r, &ev, big, 3);
	ev.truncated = false;
	tr_recorder_push(&r, &ev, NULL, 5);   /* bytes unreadable */
	tr_recorder_push(&r, &ev, NULL, 0);

	cr_assert(tr_recorder_at(&r, 0, &data, &len)->truncated);
	cr_assert_eq(len, 8, "only the preview's bytes are kept");
	cr_assert_eq(memcmp(data, big, 8), 0);
	cr_assert(!tr_recorder_at(&r, 1, &data, &len)->truncated);
	cr_assert_eq(len, 8);
	cr_assert_eq(memcmp(data, big, 8), 0);
	cr_assert(!tr_recorder_at(&r, 2, &data, &len)->truncated);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(data, big, 3), 0);
	cr_assert(tr_recorder_at(&r, 3, &data, &len)->truncated, "caller's flag kept");
	cr_assert_eq(len, 3);
	cr_assert(tr_recorder_at(&r, 4, &data, &len)->truncated);
	cr_assert_eq(len, 0);
	cr_assert(!tr_recorder_at(&r, 5, &data, &len)->truncated);
	cr_assert_eq(len, 0);
	tr_recorder_destroy(&r);
}

Test(recorder, payload_zero_keeps_no_bytes)
{
	struct tr_recorder r;
	struct tr_event ev = rec_event(0);
	const uint8_t *data;
	size_t len;

	rec_init(&r, 4, 100, 0);
	cr_assert_null(r.arena);
	tr_recorder_push(&r, &ev, "hello", 5);
	tr_recorder_push(&r, &ev, "", 0);
	cr_assert(tr_recorder_at(&r, 0, &data, &len)->truncated);
	cr_assert_eq(len, 0);
	cr_assert(!tr_recorder_at(&r, 1, &data, &len)->truncated);
	cr_assert_eq(len, 0);
	tr_recorder_destroy(&r);
}

Test(recorder, payload_slots_do_not_bleed)
{
	struct tr_recorder r;
	struct tr_event ev = rec_event(0);
	uint8_t buf[64];
	const uint8_t *data;
	size_t len;
	int i, j;

	rec_init(&r, 5, 1000, 64);
	for (i = 0; i < 23; i++) {
		memset(buf, i, sizeof(buf));
		tr_recorder_push(&r, &ev, buf, (size_t)(i % 2 ? 64 : 1 + i));
	}
	for (i = 0; i < 5; i++) {
		int n = 18 + i;

		tr_recorder_at(&r, (size_t)i, &data, &len);
		cr_assert_eq(len, (size_t)(n % 2 ? 64 : 1 + n));
		for (j = 0; j < (int)len; j++)
			cr_assert_eq(data[j], n, "slot %d byte %d", i, j);
	}
	tr_recorder_destroy(&r);
}
