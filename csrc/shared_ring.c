/* shared_ring.c - the ring in shared memory: create/open/validate, the writers' lock-free
 * claim/put/complete, and the reader's seqlock snapshot. Protocol: see shared_ring.h.
 *
 * Compiled into the agent (which runs inside the traced program: no malloc on the write path,
 * no call that the agent wraps) and into the extension (the reader). */
#define _GNU_SOURCE
#include "shared_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "catalogue.h"
#include "recorder.h"

#define BUSY(seq, pid) (((uint64_t)(uint32_t)(pid) << TR_RING_COMMIT_SEQ_BITS) | ((seq) * 2 + 1))
#define DONE(seq, pid) (((uint64_t)(uint32_t)(pid) << TR_RING_COMMIT_SEQ_BITS) | ((seq) * 2 + 2))
#define LOW(c) ((c) & TR_RING_COMMIT_SEQ_MASK)
#define OWNER(c) ((int32_t)((c) >> TR_RING_COMMIT_SEQ_BITS))

static size_t stride_of(size_t payload)
{
	return (sizeof(struct tr_ring_slot) + payload + 63) & ~(size_t)63;
}

static size_t header_room(void)
{
	return (sizeof(struct tr_ring_header) + 4095) & ~(size_t)4095;
}

uint64_t tr_shared_ring_now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct tr_ring_slot *tr_shared_ring_slot(const struct tr_shared_ring *r, uint64_t seq)
{
	return (struct tr_ring_slot *)(r->slots + (size_t)(seq % r->hdr->cap) * r->hdr->slot_size);
}

int tr_shared_ring_create(struct tr_shared_ring *r, const char *path, int64_t cap,
			  int64_t budget, int64_t payload)
{
	struct tr_ring_header *h;
	size_t size;
	void *map;
	int fd, err;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (cap <= 0)
		cap = TR_CAP_DEFAULT;
	if (budget <= 0)
		budget = TR_BUDGET_DEFAULT;
	if (payload < 0)
		payload = TR_PAYLOAD_DEFAULT;
	if (!path || cap > TR_CAP_MAX || budget > TR_BUDGET_MAX || payload > TR_PAYLOAD_MAX)
		return -EINVAL;
	size = header_room() + (size_t)cap * stride_of((size_t)payload);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) != 0) {
		err = -errno;
		goto fail;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	h = map;   /* ftruncate zeroed it: slots empty, counters 0 */
	h->version = TR_RING_VERSION;
	h->header_size = (uint32_t)header_room();
	h->slot_size = (uint32_t)stride_of((size_t)payload);
	h->payload = (uint32_t)payload;
	h->cap = (uint64_t)cap;
	h->budget = (uint64_t)budget;
	h->file_size = size;
	h->creator_pid = (uint64_t)getpid();
	/* The magic last: a writer that opens a half-made file refuses it. */
	atomic_thread_fence(memory_order_release);
	h->magic = TR_RING_MAGIC;
	r->hdr = h;
	r->slots = (uint8_t *)map + h->header_size;
	r->map_size = size;
	r->fd = fd;
	return 0;
fail:
	close(fd);
	unlink(path);
	return err;
}

int tr_shared_ring_open(struct tr_shared_ring *r, const char *path)
{
	struct tr_ring_header *h;
	struct stat st;
	void *map;
	int fd, err = -EPROTO;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (!path)
		return -EINVAL;
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		err = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size < header_room())
		goto fail;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	h = map;
	if (h->magic != TR_RING_MAGIC || h->version != TR_RING_VERSION ||
	    h->header_size != header_room() || h->payload > TR_PAYLOAD_MAX ||
	    h->cap == 0 || h->cap > TR_CAP_MAX || h->budget == 0 || h->budget > TR_BUDGET_MAX ||
	    h->slot_size != stride_of(h->payload) ||
	    h->file_size != header_room() + h->cap * h->slot_size ||
	    h->file_size != (uint64_t)st.st_size) {
		munmap(map, (size_t)st.st_size);
		goto fail;
	}
	r->hdr = h;
	r->slots = (uint8_t *)map + h->header_size;
	r->map_size = (size_t)st.st_size;
	r->fd = fd;
	return 0;
fail:
	close(fd);
	return err;
}

void tr_shared_ring_close(struct tr_shared_ring *r)
{
	if (r->hdr)
		munmap(r->hdr, r->map_size);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

int tr_shared_ring_unlink(const char *path)
{
	return unlink(path) == 0 ? 0 : -errno;
}

void tr_shared_ring_freeze(struct tr_shared_ring *r)
{
	atomic_store_explicit(&r->hdr->frozen, 1, memory_order_release);
}

/* ---- writers ---- */

int tr_shared_ring_claim(struct tr_shared_ring *r, uint64_t *seq)
{
	struct tr_ring_header *h = r->hdr;
	uint64_t s;

	if (atomic_load_explicit(&h->frozen, memory_order_relaxed))
		return -ECANCELED;
	if (atomic_load_explicit(&h->overflow, memory_order_relaxed))
		return -ENOSPC;
	s = atomic_fetch_add_explicit(&h->next_seq, 1, memory_order_relaxed);
	if (s >= h->budget) {
		atomic_store_explicit(&h->overflow, 1, memory_order_relaxed);
		return -ENOSPC;
	}
	if (s + 1 == h->budget)
		atomic_store_explicit(&h->overflow, 1, memory_order_relaxed);
	*seq = s;
	return 0;
}

/* Is the writer process `pid` still there? A zombie counts as there (not reaped yet). */
static bool writer_alive(int32_t pid)
{
	if (pid <= 0)
		return true;   /* unknown owner: never take its slot */
	/* the raw syscall: the agent wraps kill() */
	if (syscall(SYS_kill, (long)pid, 0L) == 0)
		return true;
	return errno != ESRCH;
}

/* Takes the slot of seq for writing: 0, or -EBUSY. */
static int take_slot(struct tr_shared_ring *r, struct tr_ring_slot *slot, uint64_t seq,
		     int32_t pid)
{
	uint64_t old = atomic_load_explicit(&slot->commit, memory_order_relaxed);

	for (int tries = 0; tries < 8; tries++) {
		uint64_t low = LOW(old);

		if (low >= seq * 2 + 1)
			break;   /* a newer event (or this one: impossible) holds it */
		/* An older writer still at it: do not tear its event. (Our own pid: another
		 * thread of ours, since a writer is never re-entered.) */
		if ((low & 1) && (OWNER(old) == pid || writer_alive(OWNER(old))))
			break;
		if (atomic_compare_exchange_weak_explicit(&slot->commit, &old, BUSY(seq, pid),
							  memory_order_acq_rel,
							  memory_order_relaxed)) {
			atomic_thread_fence(memory_order_release);
			return 0;
		}
	}
	atomic_fetch_add_explicit(&r->hdr->busy_skips, 1, memory_order_relaxed);
	return -EBUSY;
}

static void first_time(struct tr_ring_header *h, uint64_t t_ns)
{
	uint64_t cur = atomic_load_explicit(&h->first_ns, memory_order_relaxed);

	while ((cur == 0 || t_ns < cur) && t_ns != 0 &&
	       !atomic_compare_exchange_weak_explicit(&h->first_ns, &cur, t_ns,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

static size_t fill_payload(const struct tr_shared_ring *r, struct tr_ring_slot *slot,
			   const void *data, size_t data_len)
{
	size_t keep = data ? (data_len < r->hdr->payload ? data_len : r->hdr->payload) : 0;

	if (keep)
		memcpy(slot + 1, data, keep);
	slot->data_len = (uint32_t)keep;
	return keep;
}

int tr_shared_ring_put(struct tr_shared_ring *r, uint64_t seq, uint64_t t_ns,
		       const struct tr_ring_write *w)
{
	struct tr_ring_slot *slot = tr_shared_ring_slot(r, seq);
	size_t keep, n;

	if (take_slot(r, slot, seq, w->pid) < 0)
		return -EBUSY;
	first_time(r->hdr, t_ns);
	slot->seq = seq;
	slot->t_ns = t_ns;
	slot->pid = w->pid;
	slot->tid = w->tid;
	slot->call = w->call;
	slot->dir = (uint8_t)w->dir;
	slot->returned = w->returned;
	slot->fd = w->fd;
	slot->len = w->len;
	slot->ret = w->ret;
	slot->err = w->err;
	slot->site = w->site;
	n = w->endpoint ? strnlen(w->endpoint, TR_ENDPOINT_MAX - 1) : 0;
	memcpy(slot->endpoint, w->endpoint ? w->endpoint : "", n);
	slot->endpoint[n] = '\0';
	keep = fill_payload(r, slot, w->data, w->data_len);
	slot->truncated = w->truncated || w->data_len > keep;
	atomic_store_explicit(&slot->commit, DONE(seq, w->pid), memory_order_release);
	return 0;
}

int tr_shared_ring_complete(struct tr_shared_ring *r, uint64_t seq, int32_t pid, int64_t ret,
			    int32_t err, int64_t len, const void *data, size_t data_len,
			    bool truncated)
{
	struct tr_ring_slot *slot = tr_shared_ring_slot(r, seq);
	uint64_t old = atomic_load_explicit(&slot->commit, memory_order_relaxed);
	size_t keep;

	if (atomic_load_explicit(&r->hdr->frozen, memory_order_relaxed))
		return -ESTALE;
	if (LOW(old) != seq * 2 + 2 ||
	    !atomic_compare_exchange_strong_explicit(&slot->commit, &old, BUSY(seq, pid),
						     memory_order_acq_rel, memory_order_relaxed))
		return -ESTALE;
	atomic_thread_fence(memory_order_release);
	slot->ret = ret;
	slot->err = err;
	slot->returned = 1;
	if (len >= 0)
		slot->len = len;
	if (data) {
		keep = fill_payload(r, slot, data, data_len);
		slot->truncated = truncated || data_len > keep;
	}
	atomic_store_explicit(&slot->commit, DONE(seq, pid), memory_order_release);
	return 0;
}

uint32_t tr_shared_ring_proc_claim(struct tr_shared_ring *r)
{
	return atomic_fetch_add_explicit(&r->hdr->next_proc_ord, 1, memory_order_relaxed);
}

void tr_shared_ring_proc_publish(struct tr_shared_ring *r, uint32_t ord, int32_t pid)
{
	if (ord < TR_RING_PROCS)
		atomic_store_explicit(&r->hdr->proc_pid[ord], pid, memory_order_release);
}

int64_t tr_shared_ring_proc_find(const struct tr_shared_ring *r, int32_t pid)
{
	uint32_t n = atomic_load_explicit(&r->hdr->next_proc_ord, memory_order_acquire);

	if (n > TR_RING_PROCS)
		n = TR_RING_PROCS;
	while (n-- > 0)
		if (atomic_load_explicit(&r->hdr->proc_pid[n], memory_order_acquire) == pid)
			return n;
	return -ENOENT;
}

int tr_shared_ring_death(struct tr_shared_ring *r, enum tr_death_how how, int32_t pid,
			 int32_t tid, int32_t sig, uint64_t pc, uint64_t addr,
			 const uint64_t *frames, uint32_t nframes)
{
	uint32_t i = atomic_fetch_add_explicit(&r->hdr->next_death, 1, memory_order_relaxed);
	struct tr_ring_death *d;

	if (i >= TR_RING_DEATHS)
		return -ENOSPC;
	d = &r->hdr->deaths[i];
	atomic_store_explicit(&d->state, 1, memory_order_relaxed);
	d->how = (uint32_t)how;
	d->pid = pid;
	d->tid = tid;
	d->sig = sig;
	d->t_ns = tr_shared_ring_now_ns();
	d->pc = pc;
	d->addr = addr;
	if (nframes > TR_RING_FRAMES)
		nframes = TR_RING_FRAMES;
	for (uint32_t k = 0; k < nframes; k++)
		d->frames[k] = frames[k];
	d->nframes = nframes;
	atomic_store_explicit(&d->state, 2, memory_order_release);
	return 0;
}

int tr_shared_ring_note(struct tr_shared_ring *r, enum tr_note_what what, int32_t pid,
			int32_t ppid, const char *exe)
{
	uint32_t i = atomic_fetch_add_explicit(&r->hdr->next_note, 1, memory_order_relaxed);
	struct tr_ring_note *n;
	size_t k = 0;

	if (i >= TR_RING_NOTES)
		return -ENOSPC;
	n = &r->hdr->notes[i];
	atomic_store_explicit(&n->state, 1, memory_order_relaxed);
	n->what = (uint32_t)what;
	n->pid = pid;
	n->ppid = ppid;
	n->t_ns = tr_shared_ring_now_ns();
	for (; exe && exe[k] && k < TR_RING_EXE_MAX - 1; k++)   /* no strncpy: plain stores */
		n->exe[k] = exe[k];
	n->exe[k] = '\0';
	atomic_store_explicit(&n->state, 2, memory_order_release);
	return (int)i;
}

void tr_shared_ring_note_withdraw(struct tr_shared_ring *r, int idx)
{
	if (idx >= 0 && idx < TR_RING_NOTES)
		atomic_store_explicit(&r->hdr->notes[idx].state, 3, memory_order_release);
}

/* ---- the reader ---- */

size_t tr_shared_ring_deaths(const struct tr_shared_ring *r, struct tr_ring_death *out,
			     size_t max)
{
	uint32_t n = atomic_load_explicit(&r->hdr->next_death, memory_order_acquire);
	size_t got = 0;

	if (n > TR_RING_DEATHS)
		n = TR_RING_DEATHS;
	for (uint32_t i = 0; i < n && got < max; i++) {
		const struct tr_ring_death *d = &r->hdr->deaths[i];

		if (atomic_load_explicit(&d->state, memory_order_acquire) != 2)
			continue;
		out[got].state = 2;
		out[got].how = d->how;
		out[got].pid = d->pid;
		out[got].tid = d->tid;
		out[got].sig = d->sig;
		out[got].pad = 0;
		out[got].t_ns = d->t_ns;
		out[got].pc = d->pc;
		out[got].addr = d->addr;
		out[got].nframes = d->nframes > TR_RING_FRAMES ? TR_RING_FRAMES : d->nframes;
		out[got].pad2 = 0;
		memcpy(out[got].frames, d->frames, sizeof(d->frames));
		got++;
	}
	return got;
}

size_t tr_shared_ring_notes(const struct tr_shared_ring *r, struct tr_ring_note *out,
			    size_t max)
{
	uint32_t n = atomic_load_explicit(&r->hdr->next_note, memory_order_acquire);
	size_t got = 0;

	if (n > TR_RING_NOTES)
		n = TR_RING_NOTES;
	for (uint32_t i = 0; i < n && got < max; i++) {
		const struct tr_ring_note *note = &r->hdr->notes[i];

		if (atomic_load_explicit(&note->state, memory_order_acquire) != 2)
			continue;
		memcpy(&out[got], note, sizeof(*note));   /* the state word: plain copy of 2 */
		out[got].exe[TR_RING_EXE_MAX - 1] = '\0';
		got++;
	}
	return got;
}

void tr_ring_snapshot_free(struct tr_ring_snapshot *s)
{
	free(s->events);
	free(s->data);
	free(s->data_len);
	memset(s, 0, sizeof(*s));
}

int tr_shared_ring_snapshot(const struct tr_shared_ring *r, struct tr_ring_snapshot *out)
{
	const struct tr_ring_header *h = r->hdr;
	uint64_t claimed, lo;
	size_t want;

	memset(out, 0, sizeof(*out));
	claimed = atomic_load_explicit(&((struct tr_ring_header *)h)->next_seq,
				       memory_order_acquire);
	out->cap = h->cap;
	out->budget = h->budget;
	out->payload = h->payload;
	out->count = claimed < h->budget ? claimed : h->budget;
	out->overflow = atomic_load_explicit(&((struct tr_ring_header *)h)->overflow,
					     memory_order_relaxed) != 0;
	out->frozen = atomic_load_explicit(&((struct tr_ring_header *)h)->frozen,
					   memory_order_relaxed) != 0;
	lo = out->count > h->cap ? out->count - h->cap : 0;
	want = (size_t)(out->count - lo);
	out->events = calloc(want ? want : 1, sizeof(*out->events));
	out->data_len = calloc(want ? want : 1, sizeof(*out->data_len));
	out->data = malloc(want * h->payload + 1);
	if (!out->events || !out->data_len || !out->data) {
		tr_ring_snapshot_free(out);
		return -ENOMEM;
	}
	for (uint64_t seq = lo; seq < out->count; seq++) {
		struct tr_ring_slot *slot = tr_shared_ring_slot(r, seq);
		struct tr_event *ev = &out->events[out->n];
		uint8_t *data = out->data + out->n * h->payload;
		uint64_t c1 = LOW(atomic_load_explicit(&slot->commit, memory_order_acquire));
		uint64_t c2;
		int32_t call;
		uint32_t dlen;

		if (c1 != seq * 2 + 2) {
			out->torn++;
			continue;
		}
		memset(ev, 0, sizeof(*ev));
		ev->seq = slot->seq;
		ev->t_ns = slot->t_ns;
		ev->pid = slot->pid;
		ev->tid = slot->tid;
		call = slot->call;
		ev->dir = slot->dir ? TR_DIR_RECV : TR_DIR_SEND;
		ev->returned = slot->returned != 0;
		ev->truncated = slot->truncated != 0;
		ev->fd = slot->fd;
		ev->len = slot->len;
		ev->ret = slot->ret;
		ev->err = slot->err;
		ev->site = slot->site;
		memcpy(ev->endpoint, slot->endpoint, sizeof(ev->endpoint));
		dlen = slot->data_len;
		if (dlen <= h->payload)
			memcpy(data, slot + 1, dlen);
		atomic_thread_fence(memory_order_acquire);
		c2 = LOW(atomic_load_explicit(&slot->commit, memory_order_relaxed));
		/* Whole, and sane: a hostile or broken writer is not trusted either. */
		if (c2 != c1 || ev->seq != seq || call < 0 || (size_t)call >= tr_catalogue_len ||
		    dlen > h->payload) {
			out->torn++;
			continue;
		}
		ev->endpoint[sizeof(ev->endpoint) - 1] = '\0';
		ev->fn = tr_catalogue[call].name;
		out->data_len[out->n] = dlen;
		out->n++;
	}
	/* A writer claims its seq, then reads the clock: two racing writers can stamp out of
	 * seq order by that gap. seq is the order; times are made to agree with it. */
	for (size_t i = 1; i < out->n; i++)
		if (out->events[i].t_ns < out->events[i - 1].t_ns)
			out->events[i].t_ns = out->events[i - 1].t_ns;
	out->first_ns = atomic_load_explicit(&((struct tr_ring_header *)h)->first_ns,
					     memory_order_relaxed);
	out->dropped = out->count - out->n;
	return 0;
}
