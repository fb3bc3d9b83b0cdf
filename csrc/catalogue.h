/* catalogue.h - the IPC catalogue: one row per function the tracer knows, holding only what
 * is needed to decode it. It is the one place that knows the functions: the front ends and
 * the driver learn them from tracerlib._core.catalogue() (name, class, handle kind...), never
 * from a list of their own.
 *
 * To add a function:
 *  1. a row in catalogue.c: class, what arg 0 names (handle), the buffer shape and the 0-based
 *     argument positions of the C prototype. tests/unit/test_catalogue.c checks every row
 *     against the rules of its shape; a new shape also needs capture() in session.c and a
 *     case in tests/unit/test_session.c;
 *  2. a fixture under tests/fixtures/ that makes the call and writes down, with fx_expect()
 *     (fixture.h), exactly what the tracer must report;
 *  3. a line naming that fixture in SCENARIOS of tests/e2e/test_both_debuggers.py, so that it
 *     runs under gdb and lldb alike;
 *  4. the name in the list of traced functions in docs/guide.md ("What is traced"). */
#ifndef TRACER_CATALOGUE_H
#define TRACER_CATALOGUE_H

#include <stdbool.h>
#include <stddef.h>

enum tr_class {
	TR_CLASS_SEND = 1 << 0,
	TR_CLASS_RECV = 1 << 1,
	TR_CLASS_SYNC = 1 << 2,   /* locks, condition variables, semaphores */
	TR_CLASS_PROC = 1 << 3,   /* processes and threads, sleeps */
	TR_CLASS_ACCESS = 1 << 4, /* no rows: loads and stores of shared data (tracerlib/access.py) */
};

enum tr_handle {            /* what the first argument names */
	TR_HANDLE_NONE,
	TR_HANDLE_FD,             /* a file descriptor: classified by endpoint.h */
	TR_HANDLE_MQD,            /* a POSIX mqd_t (an fd on Linux) */
	TR_HANDLE_MSQID,          /* a SysV queue id */
};

enum tr_buffer {            /* how the payload is described */
	TR_BUF_NONE,
	TR_BUF_PLAIN,             /* buf = arg[buf_arg], length = arg[len_arg] */
	TR_BUF_IOV,               /* iov = arg[buf_arg], iovcnt = arg[len_arg] */
	TR_BUF_MSGHDR,            /* struct msghdr * = arg[buf_arg] */
	TR_BUF_SYSV,              /* struct { long mtype; char mtext[]; } * = arg[buf_arg], len = arg[len_arg] */
};

struct tr_call {
	const char *name;
	enum tr_class cls;
	enum tr_handle handle;    /* in arg[0] when not NONE */
	enum tr_buffer buffer;
	signed char buf_arg, len_arg; /* -1 where the shape has none */
};

/* Sends and receives are recorded (a stop at entry, another at return); sync and proc rows
 * are yield points only. */
static inline bool tr_call_records(const struct tr_call *c)
{
	return (c->cls & (TR_CLASS_SEND | TR_CLASS_RECV)) != 0;
}

extern const struct tr_call tr_catalogue[];
extern const size_t tr_catalogue_len;

/* Index of `name` in the catalogue, or -1. */
int tr_catalogue_find(const char *name);
/* Parses "send,recv,sync,proc,access" into a mask of tr_class; -1 on an unknown word. */
int tr_class_parse(const char *list);
const char *tr_class_name(enum tr_class cls);
/* "fd", "mqd", "msqid", or NULL for TR_HANDLE_NONE. */
const char *tr_handle_name(enum tr_handle handle);

#endif
