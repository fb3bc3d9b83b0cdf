/* recorder.h - the flight recorder: a ring of the last `cap` events under a hard `budget`.
 *
 * Single-threaded by design: it lives in the debugger, which serialises stops.
 * Invariants: len <= cap; count == dropped + len until the budget stops it; after freeze
 * nothing changes. */
#ifndef TRACER_RECORDER_H
#define TRACER_RECORDER_H

#include <stddef.h>
#include <stdint.h>
#include "event.h"

#define TR_CAP_DEFAULT 50
#define TR_CAP_MAX 100000
#define TR_BUDGET_DEFAULT 5000
#define TR_BUDGET_MAX 100000000

struct tr_recorder_config {
	int64_t cap;      /* <= 0: TR_CAP_DEFAULT */
	int64_t budget;   /* <= 0: TR_BUDGET_DEFAULT */
	int64_t payload;  /* < 0: TR_PAYLOAD_DEFAULT; 0 keeps no payload */
};

typedef uint64_t (*tr_clock_fn)(void *ctx);   /* nanoseconds, monotonic */

struct tr_recorder {
	struct tr_event *slots;  /* cap slots; oldest at `head` */
	uint8_t *arena;          /* cap * payload bytes of previews, slot-aligned */
	uint32_t *data_len;      /* preview length per slot */
	size_t cap, head, len;
	size_t payload;
	uint64_t budget, count, dropped;
	uint64_t first_ns;       /* t_ns of the first event ever accepted */
	bool overflow, frozen;
	tr_clock_fn clock;
	void *clock_ctx;
};

enum tr_push_result {
	TR_PUSH_OK = 0,
	TR_PUSH_DISARM = 1,  /* budget reached: caller must remove its breakpoints */
	TR_PUSH_FROZEN = 2,  /* recorder frozen: event ignored */
};

/* Returns 0 or -EINVAL (a value over its limit) / -ENOMEM. */
int tr_recorder_init(struct tr_recorder *r, const struct tr_recorder_config *cfg);
void tr_recorder_destroy(struct tr_recorder *r);
/* Tests inject a clock; default is CLOCK_MONOTONIC. */
void tr_recorder_set_clock(struct tr_recorder *r, tr_clock_fn clock, void *ctx);

/* Copies *ev (stamping seq, t_ns; ev->seq of the caller's copy is ignored) and up to `payload` bytes of data; sets truncated when
 * data_len exceeds the preview (data == NULL with data_len > 0: bytes unreadable, so
 * truncated; a truncated flag set by the caller is kept). The event that reaches the budget is kept and returns
 * TR_PUSH_DISARM; later ones are ignored and return TR_PUSH_DISARM too. */
enum tr_push_result tr_recorder_push(struct tr_recorder *r, const struct tr_event *ev,
				     const void *data, size_t data_len);
/* Fills in the return of a send pushed at entry, if event `seq` is still in the ring and the
 * recorder is not frozen. Returns true when it was updated. */
bool tr_recorder_set_return(struct tr_recorder *r, uint64_t seq, int64_t ret, int32_t err);
/* Replaces the preview of event `seq` (still in the ring, recorder not frozen) with the first
 * `payload` bytes of data[0..len); data NULL keeps the first len bytes it already holds. The
 * event is truncated when `moved` (the bytes the call moved) exceeds what is kept. Calls that
 * learn their bytes only at return (sendfile, splice) complete their send this way. */
bool tr_recorder_set_data(struct tr_recorder *r, uint64_t seq, const void *data, size_t len,
			  int64_t moved);
void tr_recorder_freeze(struct tr_recorder *r);

/* Replaces everything in r with events recorded elsewhere (the shared ring of agent mode):
 * the recorder is re-made with cfg's cap/budget/payload, then holds the n events (oldest
 * first, seq ascending; only the last cap are kept) with their seq, t_ns and flags as given;
 * event i's preview is data[i * stride .. + data_len[i]) (cut to the payload, then marked
 * truncated). count, first_ns and overflow are taken as given, dropped = count - kept, and
 * the recorder ends frozen. 0, or -EINVAL (cfg out of range, events out of order, count
 * below n) / -ENOMEM; on failure r is unchanged. */
int tr_recorder_load(struct tr_recorder *r, const struct tr_recorder_config *cfg,
		     const struct tr_event *events, const uint8_t *data, size_t stride,
		     const uint32_t *data_len, size_t n, uint64_t count, uint64_t first_ns,
		     bool overflow);

size_t tr_recorder_len(const struct tr_recorder *r);
/* i-th kept event, oldest first (i < len); its preview through *data / *data_len. */
const struct tr_event *tr_recorder_at(const struct tr_recorder *r, size_t i,
				      const uint8_t **data, size_t *data_len);
/* Microseconds since the first event. */
uint64_t tr_recorder_t_us(const struct tr_recorder *r, const struct tr_event *ev);

#endif
