/* shared_ring.h - the flight recorder's ring in shared memory: the ONE layout compiled by the
 * in-process agent (csrc/agent/, the writers) and by the extension (the reader).
 *
 * A file (normally in /dev/shm) that the debugger side creates and every process of the
 * traced tree maps MAP_SHARED. Many writers in many threads and processes, no locks:
 *
 *   claim     seq = fetch_add(&hdr->next_seq, 1)        the event's order of acceptance
 *             seq <  budget: kept; seq == budget - 1 also sets `overflow`;
 *             seq >= budget: refused. Once `overflow` (or `frozen`) is set, writers see it
 *             with one relaxed load and do not even claim.
 *   slot      seq % cap; the slot's `commit` word says who owns it and whether it is whole:
 *               low 40 bits   0 empty | seq*2+1 being written | seq*2+2 committed
 *               high 24 bits  pid of the writer (who may be asked "are you alive?")
 *             A writer takes the slot with a CAS from an older committed (or empty) value to
 *             seq*2+1|pid (acquire), writes the fields and payload, then stores seq*2+2|pid
 *             (release). A slot found busy for an OLDER seq is taken over only when its
 *             writer process is gone (kill(pid, 0) says ESRCH: it was SIGKILLed mid-write);
 *             otherwise the newer event is left out (counted in `busy_skips`, so in
 *             `dropped`). A slot already holding a NEWER seq means this event was overtaken
 *             by a whole lap of the ring: it is left out too (it would be evicted anyway).
 *   reopen    tr_shared_ring_reopen()/tr_shared_ring_commit() let a writer patch an event it
 *             committed (a send recorded at entry gets its ret/errno at return) under the
 *             same protocol: CAS committed -> busy, patch, commit again. If the slot moved
 *             on meanwhile, the patch is dropped silently.
 *   read      A reader takes seq's slot only if commit == seq*2+2 before AND after copying it
 *             (a seqlock): a torn slot (writer killed mid-write, or overwritten while being
 *             read) is left out and counted, never reported.
 *
 * Counters in `dropped` = accepted - kept: evicted by later laps, torn, busy, overtaken.
 * Time stamps are CLOCK_MONOTONIC nanoseconds (one clock for all processes); `first_ns` is
 * set once, by the first writer that gets to it, and t_us of an event is measured from it.
 *
 * Nothing in shared memory is a pointer: the function is a catalogue index, the endpoint a
 * fixed char array, the payload inline after each slot. Every function returns 0 / a count
 * or a negative errno; nothing aborts; a file that fails validation is refused (the agent
 * then does nothing). x86-64 and other little-endian 64-bit Linux only; writers and reader
 * must agree on TR_RING_VERSION (checked at open). */
#ifndef TRACER_SHARED_RING_H
#define TRACER_SHARED_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "event.h"

#define TR_RING_MAGIC 0x31474e4952525254ull   /* "TRRRING1" little-endian */
#define TR_RING_VERSION 3u
#define TR_RING_PROCS 1024                     /* pid -> process ordinal table entries */
#define TR_RING_DEATHS 64                      /* deaths the agents can record */
#define TR_RING_FRAMES 16                      /* return addresses kept per death */
#define TR_RING_NOTES 1024                     /* process notes: entered / not covered */
#define TR_RING_EXE_MAX 112                    /* bytes of a note's program path, NUL included */

#define TR_RING_COMMIT_SEQ_BITS 40
#define TR_RING_COMMIT_SEQ_MASK ((1ull << TR_RING_COMMIT_SEQ_BITS) - 1)

/* One event as stored. Fixed size; `data_len` payload bytes follow it inline (the slot's
 * stride is sizeof(struct tr_ring_slot) + payload, rounded up to 64). */
struct tr_ring_slot {
	_Atomic uint64_t commit;  /* see above */
	uint64_t seq;
	uint64_t t_ns;            /* CLOCK_MONOTONIC when the call was made (sends: entry) */
	int32_t pid, tid;
	int32_t call;             /* index in tr_catalogue[] */
	uint8_t dir;              /* enum tr_dir */
	uint8_t returned;         /* 0: recorded at entry, the call had not returned (yet) */
	uint8_t truncated;
	uint8_t pad0;
	int64_t fd, len, ret;
	int32_t err;
	uint32_t data_len;        /* payload bytes that follow */
	uint64_t site;            /* runtime return address of the call (the caller's pc) */
	char endpoint[TR_ENDPOINT_MAX];
};

/* A death the agent saw in a process the debugger may not see (lldb follows no fork): a fatal
 * signal caught by the agent's handler in an untraced process, or a child of the tree that
 * its parent reaped with waitpid() as killed by a signal (SIGKILL included). `state`: 0 empty,
 * 1 being written, 2 whole (release). Written from a signal handler: plain stores only. */
enum tr_death_how { TR_DEATH_HANDLER = 1, TR_DEATH_REAPED = 2 };

struct tr_ring_death {
	_Atomic uint32_t state;
	uint32_t how;             /* enum tr_death_how */
	int32_t pid, tid;         /* tid 0: not known (reaped) */
	int32_t sig;
	int32_t pad;
	uint64_t t_ns;
	uint64_t pc, addr;        /* the faulting pc and si_addr; 0: not known */
	uint32_t nframes;         /* frames[0] = pc, then return addresses (frame pointers) */
	uint32_t pad2;
	uint64_t frames[TR_RING_FRAMES];
};

/* Which process each mode covers: the agent notes every process image it enters (at start-up
 * and in a fork child), and, in its exec and spawn wrappers, an image it can see it will not
 * enter. The newest note of a pid says what covers it. `state`: 0 empty, 1 being written,
 * 2 whole, 3 withdrawn (the exec it announced failed). Written after fork: stores only. */
enum tr_note_what {
	TR_NOTE_AGENT = 1,        /* the agent runs in this process image */
	TR_NOTE_STATIC = 2,       /* exec of a program with no dynamic loader (no PT_INTERP) */
	TR_NOTE_SETUID = 3,       /* exec of a setuid/setgid program: the loader drops LD_PRELOAD */
	TR_NOTE_NO_PRELOAD = 4,   /* exec with an environment without the agent in LD_PRELOAD */
	TR_NOTE_NO_RING = 5,      /* exec with an environment without TRACER_RING */
};

struct tr_ring_note {
	_Atomic uint32_t state;
	uint32_t what;            /* enum tr_note_what */
	int32_t pid, ppid;
	uint64_t t_ns;            /* CLOCK_MONOTONIC when noted */
	char exe[TR_RING_EXE_MAX];   /* the image's path (cut, NUL-terminated) */
};

struct tr_ring_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;     /* sizeof(struct tr_ring_header) */
	uint32_t slot_size;       /* stride of one slot, payload included */
	uint32_t payload;         /* preview bytes per slot */
	uint64_t cap;             /* slots */
	uint64_t budget;          /* events accepted before recording stops */
	uint64_t file_size;       /* header_size + cap * slot_size */
	uint64_t creator_pid;

	_Atomic uint64_t next_seq;   /* claims made (may pass budget by racing writers) */
	_Atomic uint64_t first_ns;   /* t_ns base: 0 until the first event */
	_Atomic uint32_t overflow;   /* budget reached */
	_Atomic uint32_t frozen;     /* the reader froze the ring: writers stop */
	/* counters the agent keeps (informational; the reader also reports torn/busy) */
	_Atomic uint64_t not_ipc;        /* read/write on files, ttys...: not messages */
	_Atomic uint64_t unreadable;     /* events whose endpoint could not be named */
	_Atomic uint64_t busy_skips;     /* events left out: their slot was busy or newer */
	_Atomic uint64_t nested;         /* catalogue calls made inside the agent: not recorded */
	_Atomic uint64_t yield_points;   /* yield decisions made */
	_Atomic uint64_t injected;       /* of which yielded */
	_Atomic uint64_t slept_us;       /* sum of their sleeps */
	_Atomic uint32_t next_proc_ord;  /* process ordinals handed out */
	_Atomic uint32_t agents;         /* processes that opened the ring as writers */
	/* pid of process ordinal i (the last writer wins on pid reuse); 0: none */
	_Atomic int32_t proc_pid[TR_RING_PROCS];
	_Atomic uint32_t next_death;     /* deaths claimed (may pass TR_RING_DEATHS: left out) */
	uint32_t pad1;
	struct tr_ring_death deaths[TR_RING_DEATHS];
	_Atomic uint64_t filtered;       /* message calls left out by status or endpoint */
	/* PCT (csrc/agent/pct.c), summed over processes: scheduling steps taken, change points
	 * reached, and token take-overs after a bounded wait (a holder spinning or gone) */
	_Atomic uint64_t pct_steps;
	_Atomic uint64_t pct_steals;
	_Atomic uint32_t pct_changes;
	uint32_t pad2;
	_Atomic uint64_t injected_lib;   /* of `injected`, those at a library's sites */
	_Atomic uint32_t next_note;      /* notes claimed (may pass TR_RING_NOTES: left out) */
	uint32_t pad3;
	struct tr_ring_note notes[TR_RING_NOTES];
	uint8_t reserved[24];
};

/* A mapping of a ring, reader or writer side. */
struct tr_shared_ring {
	struct tr_ring_header *hdr;
	uint8_t *slots;
	size_t map_size;
	int fd;                   /* -1 once closed; the mapping survives the fd */
};

/* Debugger side: creates `path` (O_CREAT|O_EXCL, mode 0600, never through a symlink), sizes
 * and initialises it, and maps it. cap 1..TR_CAP_MAX, budget 1..TR_BUDGET_MAX, payload
 * 0..TR_PAYLOAD_MAX (cap/budget <= 0 take the recorder defaults, payload < 0 too).
 * 0, or -EINVAL (a setting out of range), -EEXIST, or another -errno. */
int tr_shared_ring_create(struct tr_shared_ring *r, const char *path, int64_t cap,
			  int64_t budget, int64_t payload);
/* Writer side (or a second reader): maps an existing ring read-write after checking magic,
 * version, sizes and the file's size. 0, or -EPROTO (not a ring / another version / sizes
 * inconsistent), or another -errno. *r is left closed on failure. */
int tr_shared_ring_open(struct tr_shared_ring *r, const char *path);
void tr_shared_ring_close(struct tr_shared_ring *r);
/* Removes the file (the mappings stay valid). 0 or -errno. */
int tr_shared_ring_unlink(const char *path);

/* Writers stop at the next claim; a write already claimed may still complete. */
void tr_shared_ring_freeze(struct tr_shared_ring *r);

/* ---- writing (the agent) ---- */

/* What a writer fills; seq/t_ns are given by claim. */
struct tr_ring_write {
	int32_t pid, tid;
	int32_t call;
	enum tr_dir dir;
	bool returned;
	bool truncated;
	int64_t fd, len, ret;
	int32_t err;
	uint64_t site;
	const char *endpoint;     /* NUL-terminated, cut to TR_ENDPOINT_MAX - 1 */
	const void *data;         /* payload; at most hdr->payload bytes are kept */
	size_t data_len;
};

/* Claims the next seq: 0 and *seq set, or -ENOSPC (budget reached: overflow), -ECANCELED
 * (frozen). */
int tr_shared_ring_claim(struct tr_shared_ring *r, uint64_t *seq);
/* Writes and commits event `seq` (claimed) with time stamp t_ns. `pid` is the commit word's
 * owner. 0, or -EBUSY (slot busy with a live writer, or already newer: the event is left
 * out and counted in busy_skips). */
int tr_shared_ring_put(struct tr_shared_ring *r, uint64_t seq, uint64_t t_ns,
		       const struct tr_ring_write *w);
/* Patches the return of committed event `seq`: ret/err, returned = true, len (when >= 0)
 * and (if data is not NULL) the payload. 0, or -ESTALE (the slot moved on or the ring is
 * frozen). */
int tr_shared_ring_complete(struct tr_shared_ring *r, uint64_t seq, int32_t pid, int64_t ret,
			    int32_t err, int64_t len, const void *data, size_t data_len,
			    bool truncated);
/* The slot of `seq` (no check). */
struct tr_ring_slot *tr_shared_ring_slot(const struct tr_shared_ring *r, uint64_t seq);
/* Process ordinals, shared by the whole tree. claim() hands out the next one (a parent
 * claims its child's in its fork prepare handler, so they follow fork order); publish()
 * records which pid holds it, so an exec'd image finds its ordinal again with find()
 * (-ENOENT: none; the newest entry wins when a pid was reused). */
uint32_t tr_shared_ring_proc_claim(struct tr_shared_ring *r);
void tr_shared_ring_proc_publish(struct tr_shared_ring *r, uint32_t ord, int32_t pid);
int64_t tr_shared_ring_proc_find(const struct tr_shared_ring *r, int32_t pid);
uint64_t tr_shared_ring_now_ns(void);
/* Records a death (async-signal-safe: atomics and stores only; seq is claimed even when the
 * table is full). 0, or -ENOSPC (TR_RING_DEATHS recorded already). */
int tr_shared_ring_death(struct tr_shared_ring *r, enum tr_death_how how, int32_t pid,
			 int32_t tid, int32_t sig, uint64_t pc, uint64_t addr,
			 const uint64_t *frames, uint32_t nframes);
/* Notes what covers process `pid` (async-signal-safe: atomics and stores only). The note's
 * index (withdraw it with tr_shared_ring_note_withdraw), or -ENOSPC (TR_RING_NOTES taken). */
int tr_shared_ring_note(struct tr_shared_ring *r, enum tr_note_what what, int32_t pid,
			int32_t ppid, const char *exe);
void tr_shared_ring_note_withdraw(struct tr_shared_ring *r, int idx);

/* ---- reading (the debugger side) ---- */

struct tr_ring_snapshot {
	struct tr_event *events;  /* kept events, oldest first by seq (fn = a catalogue name) */
	uint8_t *data;            /* n * payload bytes: event i's preview at i * payload */
	uint32_t *data_len;
	size_t n;
	size_t payload;
	uint64_t cap, budget;
	uint64_t count;           /* events accepted: min(next_seq, budget) */
	uint64_t dropped;         /* count - n */
	uint64_t torn;            /* of the last min(count, cap) seqs, those not readable whole */
	uint64_t first_ns;
	bool overflow, frozen;
};

/* Copies the kept events out, in seq order, their times made non-decreasing in that order
 * (a writer stamps its time just after claiming its seq). 0, -ENOMEM. Free with
 * tr_ring_snapshot_free(). */
int tr_shared_ring_snapshot(const struct tr_shared_ring *r, struct tr_ring_snapshot *out);
void tr_ring_snapshot_free(struct tr_ring_snapshot *s);
/* Copies the whole death records out, in the order they were claimed, at most `max`.
 * Returns how many. */
size_t tr_shared_ring_deaths(const struct tr_shared_ring *r, struct tr_ring_death *out,
			     size_t max);
/* Copies the whole (not withdrawn) notes out, in the order they were claimed, at most `max`. */
size_t tr_shared_ring_notes(const struct tr_shared_ring *r, struct tr_ring_note *out,
			    size_t max);

#endif
