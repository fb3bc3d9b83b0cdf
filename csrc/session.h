/* session.h - the hot path: turns a breakpoint hit on a catalogue function into an event.
 * Owns the recorder, the calls waiting for their return, and the endpoint cache.
 * Debugger-neutral: the front end supplies registers (or lets ptrace fetch them). */
#ifndef TRACER_SESSION_H
#define TRACER_SESSION_H

#include <stdint.h>
#include <sys/types.h>
#include "filter.h"
#include "recorder.h"
#include "regs.h"

enum tr_action {
	TR_ACT_CONTINUE = 0,       /* nothing more to do for this stop */
	TR_ACT_CATCH_RETURN = 1,   /* stop again at *return_pc in this thread */
	TR_ACT_DISARM = 2,         /* budget reached: remove every tracer breakpoint */
	TR_ACT_NEED_ERRNO = 3,     /* call failed: pass the thread's errno to tr_session_errno */
};

struct tr_pending;          /* one call per thread, waiting for its return */
struct tr_endpoint_cache;

struct tr_session {
	struct tr_recorder rec;
	struct tr_endpoint_cache *endpoints;
	struct tr_pending *pending;
	size_t npending, pending_alloc;
	uint64_t not_ipc;          /* calls skipped: fd was a file, a terminal... */
	uint64_t unmatched_returns; /* return stops with no call waiting in that thread */
	uint64_t nested;            /* catalogue calls made inside another (mq_receive -> ...) */
	uint64_t rehits;            /* the same entry reported twice (a signal during step-over) */
	uint64_t unreadable;        /* calls whose arguments could not be read */
	uint64_t filtered;          /* message calls left out by status or endpoint */
	struct tr_filter filter;    /* keeps everything after init; the front end sets it */
};

int tr_session_init(struct tr_session *s, const struct tr_recorder_config *cfg);
void tr_session_destroy(struct tr_session *s);

/* Entry of catalogue function `call` in thread tid of pid. Sends are pushed now (their
 * return value filled in at return); receives are pushed at return. */
enum tr_action tr_session_entry(struct tr_session *s, int call, pid_t pid, pid_t tid,
				const struct tr_regs *regs, uint64_t *return_pc);
/* Thread tid stopped at a return pc the session asked for. */
enum tr_action tr_session_return(struct tr_session *s, pid_t pid, pid_t tid,
				 const struct tr_regs *regs);
/* Completes a TR_ACT_NEED_ERRNO with the errno the front end read... */
enum tr_action tr_session_errno(struct tr_session *s, pid_t tid, int err);
/* ...or lets the session read it, given the runtime address of glibc's __errno_location in
 * that process (see tr_errno_read). Unreadable errno is recorded as -1. */
enum tr_action tr_session_errno_at(struct tr_session *s, pid_t tid, uint64_t errno_location);
/* pid exited or exec'd: forget its pending calls. */
void tr_session_forget(struct tr_session *s, pid_t pid);

#endif
