/* recorder.c - the flight recorder's ring: fixed slots plus a payload arena, filled in place.
 *
 * Push is the hot path (one call per traced IPC call): no allocation, no formatting, one clock
 * read, two copies. Everything else (formatting, escaping) waits for report time. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "recorder.h"

static uint64_t monotonic_ns(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	/* CLOCK_MONOTONIC cannot fail with a valid pointer; 0 keeps t_us sane if it ever did. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int tr_recorder_init(struct tr_recorder *r, const struct tr_recorder_config *cfg)
{
	int64_t cap = cfg ? cfg->cap : 0;
	int64_t budget = cfg ? cfg->budget : 0;
	int64_t payload = cfg ? cfg->payload : -1;
	int rc = -ENOMEM;

	memset(r, 0, sizeof(*r));
	if (cap <= 0)
		cap = TR_CAP_DEFAULT;
	if (budget <= 0)
		budget = TR_BUDGET_DEFAULT;
	if (payload < 0)
		payload = TR_PAYLOAD_DEFAULT;
	if (cap > TR_CAP_MAX || budget > TR_BUDGET_MAX || payload > TR_PAYLOAD_MAX)
		return -EINVAL;

	r->cap = (size_t)cap;
	r->budget = (uint64_t)budget;
	r->payload = (size_t)payload;
	r->clock = monotonic_ns;
	r->slots = calloc(r->cap, sizeof(*r->slots));
	r->data_len = calloc(r->cap, sizeof(*r->data_len));
	if (!r->slots || !r->data_len)
		goto fail;
	if (r->payload) {
		/* malloc, not calloc: bytes past data_len[i] are never read, and untouched pages
		 * of a large arena stay unmapped. */
		r->arena = malloc(r->cap * r->payload);
		if (!r->arena)
			goto fail;
	}
	return 0;
fail:
	tr_recorder_destroy(r);
	return rc;
}

void tr_recorder_destroy(struct tr_recorder *r)
{
	free(r->slots);
	free(r->arena);
	free(r->data_len);
	memset(r, 0, sizeof(*r));
}

void tr_recorder_set_clock(struct tr_recorder *r, tr_clock_fn clock, void *ctx)
{
	r->clock = clock ? clock : monotonic_ns;
	r->clock_ctx = clock ? ctx : NULL;
}

enum tr_push_result tr_recorder_push(struct tr_recorder *r, const struct tr_event *ev,
				     const void *data, size_t data_len)
{
	struct tr_event *slot;
	uint64_t now;
	size_t idx, keep;

	if (r->frozen)
		return TR_PUSH_FROZEN;
	if (r->count >= r->budget)
		return TR_PUSH_DISARM;

	now = r->clock(r->clock_ctx);
	if (r->count == 0)
		r->first_ns = now;

	if (r->len == r->cap) {
		/* Full: the oldest slot is reused for the newest event. */
		idx = r->head;
		r->head = idx + 1 == r->cap ? 0 : idx + 1;
		r->dropped++;
	} else {
		idx = r->head + r->len;
		if (idx >= r->cap)
			idx -= r->cap;
		r->len++;
	}

	slot = &r->slots[idx];
	*slot = *ev;
	slot->seq = r->count;
	slot->t_ns = now;
	/* No bytes but a length: the caller could not read them, so the preview is incomplete. */
	keep = data ? (data_len < r->payload ? data_len : r->payload) : 0;
	if (keep)
		memcpy(r->arena + idx * r->payload, data, keep);
	r->data_len[idx] = (uint32_t)keep;
	slot->truncated = ev->truncated || data_len > keep;

	r->count++;
	if (r->count == r->budget) {
		r->overflow = true;
		return TR_PUSH_DISARM;
	}
	return TR_PUSH_OK;
}

/* Slot index of event `seq`, or cap when it is not (or no longer) in the ring. */
static size_t slot_of(const struct tr_recorder *r, uint64_t seq)
{
	uint64_t oldest = r->count - r->len;
	size_t idx;

	if (seq < oldest || seq >= r->count)
		return r->cap;
	idx = r->head + (size_t)(seq - oldest);
	return idx >= r->cap ? idx - r->cap : idx;
}

bool tr_recorder_set_return(struct tr_recorder *r, uint64_t seq, int64_t ret, int32_t err)
{
	size_t idx;

	if (r->frozen)
		return false;
	idx = slot_of(r, seq);
	if (idx >= r->cap)
		return false;
	r->slots[idx].ret = ret;
	r->slots[idx].err = err;
	r->slots[idx].returned = true;
	return true;
}

bool tr_recorder_set_data(struct tr_recorder *r, uint64_t seq, const void *data, size_t len,
			  int64_t moved)
{
	size_t idx, keep;

	if (r->frozen)
		return false;
	idx = slot_of(r, seq);
	if (idx >= r->cap)
		return false;
	keep = len < r->payload ? len : r->payload;
	if (!data && keep > r->data_len[idx])
		keep = r->data_len[idx];
	if (data && keep)
		memcpy(r->arena + idx * r->payload, data, keep);
	r->data_len[idx] = (uint32_t)keep;
	r->slots[idx].truncated = moved > (int64_t)keep;
	return true;
}

void tr_recorder_freeze(struct tr_recorder *r)
{
	r->frozen = true;
}

int tr_recorder_load(struct tr_recorder *r, const struct tr_recorder_config *cfg,
		     const struct tr_event *events, const uint8_t *data, size_t stride,
		     const uint32_t *data_len, size_t n, uint64_t count, uint64_t first_ns,
		     bool overflow)
{
	struct tr_recorder fresh;
	size_t from;
	int rc;

	if (count < n)
		return -EINVAL;
	for (size_t i = 1; i < n; i++)
		if (events[i].seq <= events[i - 1].seq)
			return -EINVAL;
	if (n && events[n - 1].seq >= count)
		return -EINVAL;
	rc = tr_recorder_init(&fresh, cfg);
	if (rc < 0)
		return rc;
	from = n > fresh.cap ? n - fresh.cap : 0;
	for (size_t i = from; i < n; i++) {
		size_t k = fresh.len++;
		size_t have = data && data_len ? data_len[i] : 0;
		size_t keep = have < fresh.payload ? have : fresh.payload;

		fresh.slots[k] = events[i];
		if (keep)
			memcpy(fresh.arena + k * fresh.payload, data + i * stride, keep);
		fresh.data_len[k] = (uint32_t)keep;
		fresh.slots[k].truncated = events[i].truncated || have > keep;
	}
	fresh.count = count;
	fresh.dropped = count - fresh.len;
	fresh.first_ns = first_ns;
	fresh.overflow = overflow;
	fresh.frozen = true;
	fresh.clock = r->clock ? r->clock : fresh.clock;
	fresh.clock_ctx = r->clock_ctx;
	tr_recorder_destroy(r);
	*r = fresh;
	return 0;
}

size_t tr_recorder_len(const struct tr_recorder *r)
{
	return r->len;
}

const struct tr_event *tr_recorder_at(const struct tr_recorder *r, size_t i,
				      const uint8_t **data, size_t *data_len)
{
	size_t idx;

	if (i >= r->len) {
		if (data)
			*data = NULL;
		if (data_len)
			*data_len = 0;
		return NULL;
	}
	idx = r->head + i;
	if (idx >= r->cap)
		idx -= r->cap;
	if (data)
		*data = r->arena ? r->arena + idx * r->payload : NULL;
	if (data_len)
		*data_len = r->data_len[idx];
	return &r->slots[idx];
}

uint64_t tr_recorder_t_us(const struct tr_recorder *r, const struct tr_event *ev)
{
	/* An injected clock may step back; clamp rather than wrap to 584 years. */
	if (ev->t_ns < r->first_ns)
		return 0;
	return (ev->t_ns - r->first_ns) / 1000;
}
