/* test_shared_ring.c - the ring in shared memory: layout checks, wrap-around, budget, freeze,
 * torn and busy slots, many writer threads and processes at once, and loading a snapshot
 * into the recorder. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "catalogue.h"
#include "recorder.h"
#include "shared_ring.h"
#include "yield_policy.h"

static char ring_path[128];

static void path_init(void)
{
	snprintf(ring_path, sizeof(ring_path), "/dev/shm/tracer-test-ring-%d-%ld", (int)getpid(),
		 (long)random());
}

static void path_fini(void)
{
	unlink(ring_path);
}

TestSuite(shared_ring, .init = path_init, .fini = path_fini);

/* Event n of writer w: every field and the payload derive from (w, n), so a mixed-up slot
 * shows. */
static void make_event(struct tr_ring_write *wr, char *ep, size_t epsize, uint8_t *buf,
		       size_t len, int w, int n)
{
	memset(wr, 0, sizeof(*wr));
	wr->pid = getpid();
	wr->tid = 1000 + w;
	wr->call = n % 2 ? tr_catalogue_find("read") : tr_catalogue_find("write");
	wr->dir = n % 2 ? TR_DIR_RECV : TR_DIR_SEND;
	wr->returned = true;
	wr->fd = w;
	wr->len = n;
	wr->ret = (int64_t)w * 1000000 + n;
	wr->site = 0x1000u + (uint64_t)n;
	snprintf(ep, epsize, "pipe:[%d.%d]", w, n);
	wr->endpoint = ep;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(w * 31 + n * 7 + (int)i);
	wr->data = buf;
	wr->data_len = len;
}

static void check_event(const struct tr_event *ev, const uint8_t *data, uint32_t dlen,
			size_t want_len)
{
	int w = (int)ev->fd;
	int n = (int)(ev->ret - (int64_t)w * 1000000);
	char ep[64];

	cr_assert_eq(ev->tid, 1000 + w);
	cr_assert_eq(ev->len, n, "len %lld vs n %d", (long long)ev->len, n);
	cr_assert_str_eq(ev->fn, n % 2 ? "read" : "write");
	cr_assert_eq(ev->dir, n % 2 ? TR_DIR_RECV : TR_DIR_SEND);
	cr_assert_eq(ev->site, 0x1000u + (uint64_t)n);
	snprintf(ep, sizeof(ep), "pipe:[%d.%d]", w, n);
	cr_assert_str_eq(ev->endpoint, ep);
	cr_assert_eq(dlen, want_len);
	for (size_t i = 0; i < dlen; i++)
		cr_assert_eq(data[i], (uint8_t)(w * 31 + n * 7 + (int)i), "payload byte %zu", i);
}

static int put_one(struct tr_shared_ring *r, int w, int n, size_t len)
{
	struct tr_ring_write wr;
	char ep[64];
	uint8_t buf[256];
	uint64_t seq;
	int rc = tr_shared_ring_claim(r, &seq);

	if (rc < 0)
		return rc;
	make_event(&wr, ep, sizeof(ep), buf, len, w, n);
	return tr_shared_ring_put(r, seq, tr_shared_ring_now_ns(), &wr);
}

Test(shared_ring, create_open_and_defaults)
{
	struct tr_shared_ring a, b;

	cr_assert_eq(tr_shared_ring_create(&a, ring_path, 0, 0, -1), 0);
	cr_assert_eq(a.hdr->cap, TR_CAP_DEFAULT);
	cr_assert_eq(a.hdr->budget, TR_BUDGET_DEFAULT);
	cr_assert_eq(a.hdr->payload, TR_PAYLOAD_DEFAULT);
	cr_assert_eq(tr_shared_ring_create(&b, ring_path, 4, 4, 4), -EEXIST);
	cr_assert_eq(tr_shared_ring_open(&b, ring_path), 0);
	cr_assert_eq(b.hdr->cap, TR_CAP_DEFAULT);
	cr_assert_eq(put_one(&b, 1, 2, 10), 0);
	cr_assert_eq(atomic_load(&a.hdr->next_seq), 1, "the two mappings share the ring");
	tr_shared_ring_close(&b);
	tr_shared_ring_close(&a);
	cr_assert_eq(tr_shared_ring_create(&a, "/dev/shm/x", TR_CAP_MAX + 1, 1, 1), -EINVAL);
	cr_assert_eq(tr_shared_ring_create(&a, "/dev/shm/x", 1, 1, TR_PAYLOAD_MAX + 1), -EINVAL);
	cr_assert_eq(tr_shared_ring_open(&a, "/nonexistent/ring"), -ENOENT);
	cr_assert_eq(a.hdr, NULL);
}

Test(shared_ring, bad_files_are_refused)
{
	struct tr_shared_ring a, b;
	char junk[8192];
	int fd;

	/* not a ring at all */
	memset(junk, 'x', sizeof(junk));
	fd = open(ring_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	cr_assert_eq(tr_shared_ring_open(&b, ring_path), -EPROTO);
	/* too small */
	cr_assert_eq(ftruncate(fd, 16), 0);
	cr_assert_eq(tr_shared_ring_open(&b, ring_path), -EPROTO);
	close(fd);
	unlink(ring_path);

	/* a real ring, cut short, then with another version */
	cr_assert_eq(tr_shared_ring_create(&a, ring_path, 8, 100, 16), 0);
	cr_assert_eq(truncate(ring_path, (off_t)a.map_size - 64), 0);
	cr_assert_eq(tr_shared_ring_open(&b, ring_path), -EPROTO);
	cr_assert_eq(truncate(ring_path, (off_t)a.map_size), 0);
	cr_assert_eq(tr_shared_ring_open(&b, ring_path), 0);
	tr_shared_ring_close(&b);
	a.hdr->version = TR_RING_VERSION + 1;
	cr_assert_eq(tr_shared_ring_open(&b, ring_path), -EPROTO);
	a.hdr->version = TR_RING_VERSION;
	a.hdr->cap = 9;   /* sizes no longer add up */
	cr_assert_eq(tr_shared_ring_open(&b, ring_path), -EPROTO);
	a.hdr->cap = 8;
	tr_shared_ring_close(&a);
	/* a symlink is not followed */
	cr_assert_eq(symlink(ring_path, "/dev/shm/tracer-test-ring-link"), 0);
	cr_assert_eq(tr_shared_ring_open(&b, "/dev/shm/tracer-test-ring-link"), -ELOOP);
	unlink("/dev/shm/tracer-test-ring-link");
}

Test(shared_ring, wraps_around_keeping_the_last_cap)
{
	struct tr_shared_ring r;
	struct tr_ring_snapshot s;

	cr_assert_eq(tr_shared_ring_create(&r, ring_path, 8, 1000, 16), 0);
	for (int n = 0; n < 21; n++)
		cr_assert_eq(put_one(&r, 3, n, (size_t)n), 0);
	cr_assert_eq(tr_shared_ring_snapshot(&r, &s), 0);
	cr_assert_eq(s.count, 21);
	cr_assert_eq(s.n, 8);
	cr_assert_eq(s.dropped, 13);
	cr_assert_eq(s.torn, 0);
	cr_assert(!s.overflow && !s.frozen);
	cr_assert(s.first_ns > 0);
	for (size_t i = 0; i < s.n; i++) {
		cr_assert_eq(s.events[i].seq, 13 + i);
		check_event(&s.events[i], s.data + i * s.payload, s.data_len[i],
			    13 + i < 16 ? 13 + i : 16);
		cr_assert_eq(s.events[i].truncated, 13 + i > 16);
	}
	tr_ring_snapshot_free(&s);
	tr_shared_ring_close(&r);
}

Test(shared_ring, budget_sets_overflow_and_refuses_later_claims)
{
	struct tr_shared_ring r;
	struct tr_ring_snapshot s;
	uint64_t seq;

	cr_assert_eq(tr_shared_ring_create(&r, ring_path, 4, 5, 8), 0);
	for (int n = 0; n < 4; n++)
		cr_assert_eq(put_one(&r, 1, n, 4), 0);
	cr_assert_eq(atomic_load(&r.hdr->overflow), 0);
	cr_assert_eq(put_one(&r, 1, 4, 4), 0, "the event that reaches the budget is kept");
	cr_assert_eq(atomic_load(&r.hdr->overflow), 1);
	cr_assert_eq(tr_shared_ring_claim(&r, &seq), -ENOSPC);
	cr_assert_eq(atomic_load(&r.hdr->next_seq), 5, "refused without even claiming");
	cr_assert_eq(tr_shared_ring_snapshot(&r, &s), 0);
	cr_assert_eq(s.count, 5);
	cr_assert_eq(s.n, 4);
	cr_assert_eq(s.dropped, 1);
	cr_assert(s.overflow);
	cr_assert_eq(s.events[3].seq, 4);
	tr_ring_snapshot_free(&s);
	tr_shared_ring_close(&r);
}

Test(shared_ring, frozen_ring_takes_nothing)
{
	struct tr_shared_ring r;
	struct tr_ring_snapshot s;
	uint64_t seq;

	cr_assert_eq(tr_shared_ring_create(&r, ring_path, 4, 50, 8), 0);
	cr_assert_eq(tr_shared_ring_claim(&r, &seq), 0);
	{
		struct tr_ring_write wr;
		char ep[64];
		uint8_t buf[8];

		make_event(&wr, ep, sizeof(ep), buf, 8, 2, 0);
		wr.returned = false;
		cr_assert_eq(tr_shared_ring_put(&r, seq, 5, &wr), 0);
	}
	tr_shared_ring_freeze(&r);
	cr_assert_eq(tr_shared_ring_claim(&r, &seq), -ECANCELED);
	cr_assert_eq(tr_shared_ring_complete(&r, 0, getpid(), 8, 0, -1, NULL, 0, false), -ESTALE);
	cr_assert_eq(tr_shared_ring_snapshot(&r, &s), 0);
	cr_assert(s.frozen);
	cr_assert_eq(s.n, 1);
	cr_assert(!s.events[0].returned, "a call in flight at the freeze stays so");
	tr_ring_snapshot_free(&s);
	tr_shared_ring_close(&r);
}

Test(shared_ring, complete_patches_the_return_of_a_send)
{
	struct tr_shared_ring r;
	struct tr_ring_snapshot s;
	struct tr_ring_write wr;
	char ep[64];
	uint8_t buf[8];
	uint64_t seq;

	cr_assert_eq(tr_shared_ring_create(&r, ring_path, 2, 50, 8), 0);
	cr_assert_eq(tr_shared_ring_claim(&r, &seq), 0);
	make_event(&wr, ep, sizeof(ep), NULL, 0, 2, 0);
	wr.returned = false;
	wr.data = NULL;
	cr_assert_eq(tr_shared_ring_put(&r, seq, 5, &wr), 0);
	cr_assert_eq(tr_shared_ring_complete(&r, seq, getpid(), -1, EAGAIN, 77, "abcdefghij", 10,
					     false), 0);
	/* two laps later the slot holds another event: a late completion is dropped */
	cr_assert_eq(put_one(&r, 2, 1, 0), 0);
	cr_assert_eq(put_one(&r, 2, 2, 0), 0);
	cr_assert_eq(tr_shared_ring_complete(&r, seq, getpid(), 1, 0, -1, NULL, 0, false), -ESTALE);
	cr_assert_eq(tr_shared_ring_snapshot(&r, &s), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.events[0].seq, 1);
	tr_ring_snapshot_free(&s);
	tr_shared_ring_close(&r);
	unlink(ring_path);

	cr_assert_eq(tr_shared_ring_create(&r, ring_path, 2, 50, 8), 0);
	cr_assert_eq(tr_shared_ring_claim(&r, &seq), 0);
	cr_assert_eq(tr_shared_ring_put(&r, seq, 5, &wr), 0);
	(void)buf;
	cr_assert_eq(tr_shared_ring_complete(&r, seq, getpid(), -1, EAGAIN, 77, "abcdefghij", 10,
					     false), 0);
	cr_assert_eq(tr_shared_ring_snapshot(&r, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert(s.events[0].returned);
	cr_assert_eq(s.events[0].ret, -1);
	cr_assert_eq(s.events[0].err, EAGAIN);
	cr_assert_eq(s.events[0].len, 77);
	cr_assert_eq(s.data_len[0], 8);
	cr_assert(s.events[0].truncated);
	cr_assert_eq(memcmp(s.data, "abcdefgh", 8), 0);
	tr_ring_snapshot_free(&s);
	tr_shared_ring_close(&r);
}

/* A writer process claims seq 0, marks its slot busy and is SIGKILLed before committing. */
static pid_t killed_writer(struct tr_shared_ring *r, bool reap)
{
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		uint64_t seq;
		struct tr_ring_slot *slot;

		if (tr_shared_ring_claim(r, &seq) != 0)
			_exit(2);
		slot = tr_shared_ring_slot(r, seq);
		atomic_store(&slot->commit, ((uint64_t)getpid() << TR_RING_COMMIT_SEQ_BITS) |
						    (seq * 2 + 1));
		memset(slot->endpoint, 'Z', 10);   /* half-written */
		raise(SIGKILL);
		_exit(3);
	}
	if (reap) {
		int st;

		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	}
	return pid;
}

Test(shared_ring, torn_slot_is_left_out_and_taken_over_once_its_writer_is_gone)
{
	struct tr_shared_ring r;
	struct tr_ring_snapshot s;

	cr_assert_eq(tr_shared_ring_create(&r, ring_path, 4, 100, 8), 0);
	killed_writer(&r, true);
	for (int n = 1; n < 4; n++)
		cr_assert_eq(put_one(&r, 5, n, 3), 0);
	cr_assert_eq(tr_shared_ring_snapshot(&r, &s), 0);
	cr_assert_eq(s.count, 4);
	cr_assert_eq(s.n, 3);
	cr_assert_eq(s.torn, 1);
	cr_assert_eq(s.dropped, 1);
	cr_assert_eq(s.events[0].seq, 1, "the torn seq 0 is not reported");
	tr_ring_snapshot_free(&s);
	/* seq 4 lands on the dead writer's slot: taken over */
	cr_assert_eq(put_one(&r, 5, 4, 3), 0);
	cr_assert_eq(tr_shared_ring_snapshot(&r, &s), 0);
	cr_assert_eq(s.n, 4);
	cr_assert_eq(s.torn, 0);
	cr_assert_eq(s.events[3].seq, 4);
	check_event(&s.events[3], s.data + 3 * s.payload, s.data_len[3], 3);
	tr_ring_snapshot_free(&s);
	tr_shared_ring_close(&r);
}

Test(shared_ring, busy_slot_of_a_live_writer_is_never_torn)
{
	struct tr_shared_ring r;
	struct tr_ring_snapshot s;
	struct tr_ring_slot *slot;
	pid_t sleeper = fork();

	cr_assert(sleeper >= 0);
	if (sleeper == 0) {
		pause();
		_exit(0);
	}
	cr_assert_eq(tr_shared_ring_create(&r, ring_path, 2, 100, 8), 0);
	/* seq 0 claimed by the (live) sleeper, which "is still writing" */
	cr_assert_eq(atomic_fetch_add(&r.hdr->next_seq, 1), 0);
	slot = tr_shared_ring_slot(&r, 0);
	atomic_store(&slot->commit, ((uint64_t)sleeper << TR_RING_COMMIT_SEQ_BITS) | 1);
	cr_assert_eq(put_one(&r, 6, 1, 2), 0);
	cr_assert_eq(put_one(&r, 6, 2, 2), -EBUSY, "seq 2 maps onto the live writer's slot");
	cr_assert_eq(atomic_load(&r.hdr->busy_skips), 1);
	cr_assert_eq(tr_shared_ring_snapshot(&r, &s), 0);
	cr_assert_eq(s.count, 3);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(s.events[0].seq, 1);
	tr_ring_snapshot_free(&s);
	kill(sleeper, SIGKILL);
	waitpid(sleeper, NULL, 0);
	tr_shared_ring_close(&r);
}

/* ---- many writers ---- */

#define THREADS 4
#define PROCS 2
#define PER_WRITER 20000

struct writer_arg {
	struct tr_shared_ring *r;
	int w;
	int busy;
};

static void *writer_thread(void *p)
{
	struct writer_arg *a = p;

	for (int n = 0; n < PER_WRITER; n++)
		if (put_one(a->r, a->w, n, (size_t)(n % 40)) == -EBUSY)
			a->busy++;
	return NULL;
}

static void check_snapshot(const struct tr_ring_snapshot *s)
{
	for (size_t i = 0; i < s->n; i++) {
		int n = (int)s->events[i].len;

		if (i)
			cr_assert(s->events[i].seq > s->events[i - 1].seq);
		check_event(&s->events[i], s->data + i * s->payload, s->data_len[i],
			    (size_t)(n % 40) < s->payload ? (size_t)(n % 40) : s->payload);
	}
}

Test(shared_ring, many_threads_and_processes_write_at_once, .timeout = 60)
{
	struct tr_shared_ring r;
	struct tr_ring_snapshot s;
	pthread_t th[THREADS];
	struct writer_arg args[THREADS];
	pid_t kids[PROCS];
	uint64_t total = (uint64_t)(THREADS + PROCS) * PER_WRITER;

	cr_assert_eq(tr_shared_ring_create(&r, ring_path, 256, TR_BUDGET_MAX, 32), 0);
	for (int p = 0; p < PROCS; p++) {
		kids[p] = fork();
		cr_assert(kids[p] >= 0);
		if (kids[p] == 0) {
			struct tr_shared_ring mine;
			struct writer_arg a = { &mine, 100 + p, 0 };

			if (tr_shared_ring_open(&mine, ring_path) != 0)
				_exit(2);
			writer_thread(&a);
			_exit(0);
		}
	}
	for (int t = 0; t < THREADS; t++) {
		args[t] = (struct writer_arg){ &r, t, 0 };
		cr_assert_eq(pthread_create(&th[t], NULL, writer_thread, &args[t]), 0);
	}
	/* snapshots taken while everyone writes must be consistent too */
	for (int k = 0; k < 20; k++) {
		cr_assert_eq(tr_shared_ring_snapshot(&r, &s), 0);
		check_snapshot(&s);
		tr_ring_snapshot_free(&s);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	for (int p = 0; p < PROCS; p++) {
		int st;

		cr_assert_eq(waitpid(kids[p], &st, 0), kids[p]);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	cr_assert_eq(tr_shared_ring_snapshot(&r, &s), 0);
	cr_assert_eq(s.count, total, "every call counted once: %llu",
		     (unsigned long long)s.count);
	cr_assert_eq(s.n + s.dropped, total);
	cr_assert_eq(s.n + s.torn, 256, "every seq of the last lap is kept or counted torn");
	cr_assert(s.events[s.n - 1].seq >= total - 256);
	check_snapshot(&s);
	tr_ring_snapshot_free(&s);
	tr_shared_ring_close(&r);
}

Test(shared_ring, process_ordinals_follow_claims_and_survive_exec)
{
	struct tr_shared_ring r;
	uint32_t a, b;

	cr_assert_eq(tr_shared_ring_create(&r, ring_path, 2, 10, 0), 0);
	cr_assert_eq(tr_shared_ring_proc_find(&r, 42), -ENOENT);
	a = tr_shared_ring_proc_claim(&r);
	b = tr_shared_ring_proc_claim(&r);
	cr_assert_eq(a, 0);
	cr_assert_eq(b, 1);
	tr_shared_ring_proc_publish(&r, a, 42);
	tr_shared_ring_proc_publish(&r, b, 43);
	cr_assert_eq(tr_shared_ring_proc_find(&r, 43), 1);
	tr_shared_ring_proc_publish(&r, tr_shared_ring_proc_claim(&r), 42);
	cr_assert_eq(tr_shared_ring_proc_find(&r, 42), 2, "a reused pid: the newest wins");
	tr_shared_ring_close(&r);
}

Test(shared_ring, snapshot_loads_into_the_recorder)
{
	struct tr_shared_ring r;
	struct tr_ring_snapshot s;
	struct tr_recorder rec;
	struct tr_recorder_config cfg = { .cap = 4, .budget = 100, .payload = 4 };
	const uint8_t *data;
	size_t len;

	cr_assert_eq(tr_shared_ring_create(&r, ring_path, 8, 100, 16), 0);
	for (int n = 0; n < 11; n++)
		cr_assert_eq(put_one(&r, 7, n, 6), 0);
	cr_assert_eq(tr_shared_ring_snapshot(&r, &s), 0);
	cr_assert_eq(tr_recorder_init(&rec, NULL), 0);
	cr_assert_eq(tr_recorder_load(&rec, &cfg, s.events, s.data, s.payload, s.data_len, s.n,
				      s.count, s.first_ns, s.overflow), 0);
	cr_assert_eq(rec.cap, 4);
	cr_assert_eq(tr_recorder_len(&rec), 4, "only the last cap of the 8 kept");
	cr_assert_eq(rec.count, 11);
	cr_assert_eq(rec.dropped, 7);
	cr_assert(rec.frozen);
	cr_assert_eq(rec.first_ns, s.first_ns);
	for (size_t i = 0; i < 4; i++) {
		const struct tr_event *ev = tr_recorder_at(&rec, i, &data, &len);

		cr_assert_eq(ev->seq, 7 + i);
		cr_assert_eq(len, 4);
		cr_assert(ev->truncated, "6 bytes cut to 4");
		cr_assert_eq(data[0], (uint8_t)(7 * 31 + (int)(7 + i) * 7));
	}
	/* out of order, or fewer accepted than kept: refused, recorder unchanged */
	cr_assert_eq(tr_recorder_load(&rec, &cfg, s.events, s.data, s.payload, s.data_len, s.n,
				      2, s.first_ns, false), -EINVAL);
	cr_assert_eq(rec.count, 11);
	tr_recorder_destroy(&rec);
	tr_ring_snapshot_free(&s);
	tr_shared_ring_close(&r);
}

Test(shared_ring, keyed_decision_is_the_policy_decision)
{
	struct tr_yield_config cfg;
	struct tr_yield_policy p;
	struct tr_yield_decision a, b;

	tr_yield_config_default(&cfg);
	cfg.seed = 99;
	cfg.probability = 0.3;
	cr_assert_eq(tr_yield_policy_init(&p, &cfg), 0);
	tr_yield_process_seen(&p, 10);
	tr_yield_thread_seen(&p, 10, 10);
	tr_yield_thread_seen(&p, 10, 11);
	for (uint64_t k = 0; k < 200; k++) {
		int tid = 10 + (int)(k % 2);

		cr_assert_eq(tr_yield_decide(&p, 10, tid, 0x1234 + k % 3, &a), 0);
		tr_yield_decide_keyed(&p.cfg, 0, (uint32_t)(k % 2), k / 2, 0x1234 + k % 3, &b);
		cr_assert_eq(a.yield, b.yield);
		cr_assert_eq(a.us, b.us);
		cr_assert_eq(a.point, b.point);
	}
	tr_yield_policy_destroy(&p);
}

Test(shared_ring, deaths_are_kept_in_order_up_to_the_table_size)
{
	struct tr_shared_ring w, r;
	struct tr_ring_death d[TR_RING_DEATHS + 4];

	cr_assert_eq(tr_shared_ring_create(&r, ring_path, 4, 50, 8), 0);
	cr_assert_eq(tr_shared_ring_deaths(&r, d, TR_RING_DEATHS), 0, "a new ring has none");
	cr_assert_eq(tr_shared_ring_open(&w, ring_path), 0);
	uint64_t frames[TR_RING_FRAMES + 3] = { 0x1234, 0x5678, 0x9abc };

	cr_assert_eq(tr_shared_ring_death(&w, TR_DEATH_HANDLER, 41, 42, SIGSEGV, 0x1234, 0x8,
					  frames, TR_RING_FRAMES + 3), 0, "more frames: cut");
	cr_assert_eq(tr_shared_ring_death(&w, TR_DEATH_REAPED, 43, 0, SIGKILL, 0, 0, NULL, 0), 0);
	/* a writer that died between claiming and completing: left out, never half read */
	atomic_fetch_add(&r.hdr->next_death, 1);
	cr_assert_eq(tr_shared_ring_deaths(&r, d, 1), 1, "max is honoured");
	cr_assert_eq(tr_shared_ring_deaths(&r, d, TR_RING_DEATHS), 2);
	cr_assert_eq(d[0].how, TR_DEATH_HANDLER);
	cr_assert(d[0].pid == 41 && d[0].tid == 42 && d[0].sig == SIGSEGV);
	cr_assert(d[0].pc == 0x1234 && d[0].addr == 0x8 && d[0].t_ns > 0);
	cr_assert(d[0].nframes == TR_RING_FRAMES && d[0].frames[1] == 0x5678);
	cr_assert(d[1].how == TR_DEATH_REAPED && d[1].pid == 43 && d[1].sig == SIGKILL);
	cr_assert_eq(d[1].nframes, 0);
	while (atomic_load(&r.hdr->next_death) < TR_RING_DEATHS)
		cr_assert_eq(tr_shared_ring_death(&w, TR_DEATH_REAPED, 50, 0, SIGTERM, 0, 0,
						  NULL, 0), 0);
	cr_assert_eq(tr_shared_ring_death(&w, TR_DEATH_REAPED, 51, 0, SIGTERM, 0, 0, NULL, 0),
		     -ENOSPC);
	cr_assert_eq(tr_shared_ring_deaths(&r, d, TR_RING_DEATHS + 4), TR_RING_DEATHS - 1);
	tr_shared_ring_close(&w);
	tr_shared_ring_close(&r);
}

Test(shared_ring, notes_are_kept_in_order_withdrawn_ones_left_out)
{
	struct tr_shared_ring w, r;
	struct tr_ring_note n[TR_RING_NOTES + 2];
	char long_exe[300];
	int idx;

	memset(long_exe, 'x', sizeof(long_exe) - 1);
	long_exe[sizeof(long_exe) - 1] = '\0';
	cr_assert_eq(tr_shared_ring_create(&r, ring_path, 4, 50, 8), 0);
	cr_assert_eq(tr_shared_ring_notes(&r, n, TR_RING_NOTES), 0, "a new ring has none");
	cr_assert_eq(tr_shared_ring_open(&w, ring_path), 0);
	cr_assert_eq(tr_shared_ring_note(&w, TR_NOTE_AGENT, 10, 1, "/bin/parent"), 0);
	idx = tr_shared_ring_note(&w, TR_NOTE_STATIC, 10, 1, "/missing/helper");
	cr_assert_eq(idx, 1);
	tr_shared_ring_note_withdraw(&w, idx);         /* the exec failed */
	cr_assert_eq(tr_shared_ring_note(&w, TR_NOTE_NO_PRELOAD, 11, 10, long_exe), 2);
	cr_assert_eq(tr_shared_ring_notes(&r, n, TR_RING_NOTES), 2);
	cr_assert(n[0].what == TR_NOTE_AGENT && n[0].pid == 10 && n[0].ppid == 1);
	cr_assert_str_eq(n[0].exe, "/bin/parent");
	cr_assert(n[0].t_ns > 0);
	cr_assert(n[1].what == TR_NOTE_NO_PRELOAD && n[1].pid == 11);
	cr_assert_eq(strlen(n[1].exe), TR_RING_EXE_MAX - 1, "a long path is cut");
	while (atomic_load(&r.hdr->next_note) < TR_RING_NOTES)
		cr_assert_geq(tr_shared_ring_note(&w, TR_NOTE_AGENT, 12, 1, NULL), 0);
	cr_assert_eq(tr_shared_ring_note(&w, TR_NOTE_AGENT, 13, 1, "x"), -ENOSPC);
	cr_assert_eq(tr_shared_ring_notes(&r, n, TR_RING_NOTES + 2), TR_RING_NOTES - 1);
	tr_shared_ring_close(&w);
	tr_shared_ring_close(&r);
}
