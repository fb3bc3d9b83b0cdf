/* bench_core.c - the recorder's hot path and the report path, against goals and a same-run
 * baseline (these machines are noisy: compare ratios taken in one run).
 *
 *   push:          ns per tr_recorder_push with a 64-byte payload into a cap-50 ring
 *   memcpy:        ns to copy one event plus 64 bytes into a ring slot (the floor for a push)
 *   render+store:  ms to render a 5000-event report and put it in the store (fsync included)
 *
 * Usage: bench_core [pushes]   (default 10000000) */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "recorder.h"
#include "report.h"
#include "store.h"

#define RUNS 5
#define PAYLOAD 64
#define RING 50
#define REPORT_EVENTS 5000
#define PUSH_GOAL_NS 100.0
#define REPORT_GOAL_MS 20.0

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static struct tr_event sample_event(void)
{
	struct tr_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.pid = 4242;
	ev.tid = 4243;
	ev.dir = TR_DIR_SEND;
	ev.fn = "send";
	ev.fd = 5;
	ev.len = PAYLOAD;
	ev.site = 0x55555555a1b2;
	snprintf(ev.endpoint, sizeof(ev.endpoint), "tcp:127.0.0.1:5000->127.0.0.1:41234");
	return ev;
}

/* ns per push; -1 on error. */
static double bench_push(long n, const uint8_t *payload)
{
	struct tr_recorder_config cfg = { .cap = RING, .budget = TR_BUDGET_MAX,
					  .payload = PAYLOAD };
	struct tr_event ev = sample_event();
	struct tr_recorder r;
	double t0, t1;
	long i;

	if (tr_recorder_init(&r, &cfg) != 0)
		return -1;
	t0 = now_s();
	for (i = 0; i < n; i++) {
		ev.len = i;   /* something changes per call, as in real use */
		if (tr_recorder_push(&r, &ev, payload, PAYLOAD) != TR_PUSH_OK) {
			tr_recorder_destroy(&r);
			return -1;
		}
	}
	t1 = now_s();
	if (r.count != (uint64_t)n || r.dropped != (uint64_t)(n > RING ? n - RING : 0)) {
		tr_recorder_destroy(&r);
		return -1;
	}
	tr_recorder_destroy(&r);
	return (t1 - t0) * 1e9 / (double)n;
}

struct raw_slot {
	struct tr_event ev;
	uint8_t data[PAYLOAD];
};

/* ns per bare copy of an event and its payload into a ring slot. */
static double bench_memcpy(long n, const uint8_t *payload)
{
	static struct raw_slot ring[RING];
	struct tr_event ev = sample_event();
	double t0, t1;
	size_t slot = 0;
	long i;

	t0 = now_s();
	for (i = 0; i < n; i++) {
		ev.len = i;
		memcpy(&ring[slot].ev, &ev, sizeof(ev));
		memcpy(ring[slot].data, payload, PAYLOAD);
		/* Keep the copies: the compiler may not prove them dead. */
		__asm__ volatile("" : : "r"(&ring[slot]) : "memory");
		slot = slot + 1 == RING ? 0 : slot + 1;
	}
	t1 = now_s();
	return (t1 - t0) * 1e9 / (double)n;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

/* ms for render + store of a 5000-event report; the parts and the size through pointers. */
static int bench_report(const char *dir, int run, double *total_ms, double *render_ms,
			double *store_ms, size_t *size)
{
	struct tr_recorder_config cfg = { .cap = REPORT_EVENTS, .budget = 1000000,
					  .payload = PAYLOAD };
	struct tr_report_meta meta = { 0 };
	const char *argv[] = { "./server", "--port", "5000" };
	struct tr_event ev = sample_event();
	struct tr_recorder r;
	uint8_t payload[PAYLOAD];
	char path[512], key[64], *buf = NULL;
	double t0, t1, t2;
	size_t len, i, j;
	int rc;

	rc = tr_recorder_init(&r, &cfg);
	if (rc)
		return rc;
	/* Realistic previews: mostly text, some binary framing. */
	for (i = 0; i < REPORT_EVENTS; i++) {
		for (j = 0; j < PAYLOAD; j++)
			payload[j] = j < 8 ? (uint8_t)(i >> (j % 4 * 8)) : (uint8_t)('a' + (i + j) % 26);
		ev.dir = i % 2 ? TR_DIR_RECV : TR_DIR_SEND;
		ev.fn = i % 2 ? "recv" : "send";
		ev.returned = true;
		ev.ret = PAYLOAD;
		tr_recorder_push(&r, &ev, payload, PAYLOAD);
	}
	tr_recorder_freeze(&r);
	snprintf(key, sizeof(key), "server-4242-20240101T000000Z-%d", run);
	meta.key = key;
	meta.program = "/usr/local/bin/server";
	meta.argv = argv;
	meta.argc = 3;
	meta.pid = 4242;
	meta.started = "2024-01-01T00:00:00Z";
	meta.debugger = "gdb 13.1";
	meta.stop = (struct tr_stop){ "signal", 11, -1, 4242, 4243 };
	meta.yield = (struct tr_yield_info){ true, 42, "sleep", 0.1, 30, 7 };

	t0 = now_s();
	rc = tr_report_render(&r, &meta, &buf, &len);
	t1 = now_s();
	if (!rc)
		rc = tr_store_put(dir, key, buf, len, path, sizeof(path));
	t2 = now_s();
	*render_ms = (t1 - t0) * 1e3;
	*store_ms = (t2 - t1) * 1e3;
	*total_ms = (t2 - t0) * 1e3;
	*size = len;
	free(buf);
	tr_recorder_destroy(&r);
	return rc;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000000;
	double push[RUNS], copy[RUNS], total[RUNS], render[RUNS], store[RUNS];
	double push_ns, copy_ns, total_ms;
	uint8_t payload[PAYLOAD];
	char dir[] = "/tmp/tr-bench-XXXXXX";
	size_t size = 0;
	int i, rc;

	if (n <= 0) {
		fprintf(stderr, "usage: %s [pushes]\n", argv[0]);
		return 2;
	}
	for (i = 0; i < PAYLOAD; i++)
		payload[i] = (uint8_t)(i * 31 + 7);

	/* Interleaved, so drift on a noisy machine hits both sides alike. */
	for (i = 0; i < RUNS; i++) {
		push[i] = bench_push(n, payload);
		copy[i] = bench_memcpy(n, payload);
		if (push[i] < 0) {
			fprintf(stderr, "push benchmark failed\n");
			return 1;
		}
	}
	push_ns = median(push, RUNS);
	copy_ns = median(copy, RUNS);

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	for (i = 0; i < RUNS; i++) {
		rc = bench_report(dir, i, &total[i], &render[i], &store[i], &size);
		if (rc) {
			fprintf(stderr, "report benchmark failed: %s\n", strerror(-rc));
			nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
			return 1;
		}
	}
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	total_ms = median(total, RUNS);

	printf("tr_recorder_push, %d-byte payload, cap %d, %ld pushes: %.1f ns/push (median of %d)\n",
	       PAYLOAD, RING, n, push_ns, RUNS);
	printf("  goal: \u2264 %.0f ns\n", PUSH_GOAL_NS);
	printf("  ratio to goal: %.2f\n", push_ns / PUSH_GOAL_NS);
	printf("baseline memcpy of event (%zu bytes) + %d bytes: %.1f ns (median of %d)\n",
	       sizeof(struct tr_event), PAYLOAD, copy_ns, RUNS);
	printf("  ratio push/memcpy: %.1f\n", push_ns / copy_ns);
	printf("render+store, %d events: %.2f ms (median of %d; render %.2f ms, store %.2f ms, "
	       "%.2f MB)\n", REPORT_EVENTS, total_ms, RUNS, median(render, RUNS),
	       median(store, RUNS), (double)size / 1e6);
	printf("  goal: \u2264 %.0f ms\n", REPORT_GOAL_MS);
	printf("  ratio to goal: %.2f\n", total_ms / REPORT_GOAL_MS);
	return 0;
}
