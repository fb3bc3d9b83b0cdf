/* filter.h - which recorded calls are kept: the `trace`, `status` and `endpoint` settings,
 * in the spirit of strace's -e trace=, -e status= and -P. One file compiled into both data
 * planes (the debugger's session, csrc/session.c, and the in-process agent,
 * csrc/agent/wrappers.c), so that the two decide alike.
 *
 * Each setting is a comma-separated list of items; an item with a leading `!` leaves out.
 * Kept = (no positive item, or one matches) and no negative item matches.
 *   trace     classes `send`, `recv`, or recorded catalogue functions (`sendmsg`); `all`.
 *             `send` and `recv` are the classes: the functions alone are `send()`, `recv()`
 *   status    `successful` (ret >= 0), `failed` (ret < 0), errno names (`EAGAIN`, or a
 *             number); `all`. A negative errno wins over a positive `failed`.
 *   endpoint  globs on the endpoint name (`*`, `?`, `[a-z]`, `[!x]`, `\` escapes one
 *             character, `\,` a comma); `*` keeps everything
 *
 * The decisions are taken before a ring slot is claimed, so that what is left out costs
 * nothing against cap and budget: trace at entry (breakpoint mode places no breakpoint on a
 * function left out), endpoint once the handle is named, status at return. A status filter
 * makes sends wait for their return before they take a slot (their outcome decides).
 *
 * No allocation, no globals: the agent parses its copy from the environment at start-up and
 * reads it on every call from every thread. */
#ifndef TRACER_FILTER_H
#define TRACER_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TR_FILTER_CALLS 128        /* catalogue rows a filter can name */
#define TR_FILTER_ERRNOS 32        /* errno items in one status list */
#define TR_FILTER_TEXT_MAX 512     /* bytes of one setting's text */
#define TR_FILTER_GLOBS 16         /* globs in one endpoint list */
#define TR_FILTER_ERR_MAX 200      /* room for a parse error message */

struct tr_filter {
	uint8_t call[TR_FILTER_CALLS];    /* by catalogue index: 1 = kept */
	bool outcome_matters;             /* status is not `all`: decide at return */
	bool keep_ok, keep_failed;        /* outcomes kept, errnos not listed below */
	uint8_t nerr;
	int32_t err[TR_FILTER_ERRNOS];    /* failures with these errnos ... */
	bool err_keep[TR_FILTER_ERRNOS];  /* ... are kept (true) or left out (false) */
	uint8_t nglob;
	bool any_positive_glob;
	bool glob_keep[TR_FILTER_GLOBS];  /* positive (true) or negative (false) glob */
	uint16_t glob_at[TR_FILTER_GLOBS];/* offset of each NUL-terminated glob in globs */
	char globs[TR_FILTER_TEXT_MAX];
};

/* Keeps everything. */
void tr_filter_init(struct tr_filter *f);
/* Each replaces its part of f from `text` (NULL or "" means `all` / `*`). 0, or -EINVAL
 * with a one-line reason in err (which may be NULL); f is unchanged on error. */
int tr_filter_set_trace(struct tr_filter *f, const char *text, char *err, size_t errlen);
int tr_filter_set_status(struct tr_filter *f, const char *text, char *err, size_t errlen);
int tr_filter_set_endpoint(struct tr_filter *f, const char *text, char *err, size_t errlen);

/* Is catalogue call `call` recorded at all? */
static inline bool tr_filter_call(const struct tr_filter *f, int call)
{
	return call >= 0 && call < TR_FILTER_CALLS && f->call[call];
}
/* Is a call on this endpoint kept? */
bool tr_filter_endpoint(const struct tr_filter *f, const char *name);
/* Is a call that returned ret (errno err when ret < 0) kept? */
bool tr_filter_outcome(const struct tr_filter *f, int64_t ret, int32_t err);

/* Does `glob` match all of `text`? (the endpoint syntax above; exposed for the tests) */
bool tr_glob_match(const char *glob, const char *text);
/* errno of "EAGAIN" (or of a decimal number 1..4095), -1 when unknown. */
int tr_errno_parse(const char *name);

#endif
