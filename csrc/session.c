/* session.c - entry and return of catalogue calls -> events.
 *
 * A send is pushed at entry (its order is when it was asked) and gets its return value at
 * return; a receive is pushed at return, when its bytes exist. Each thread has at most one
 * call waiting: a catalogue call made while another is waiting deeper in the same stack is
 * part of it (glibc's mq_receive calls mq_timedreceive) and is not recorded twice.
 *
 * The filter (filter.h) is applied before anything is pushed: the function at entry, the
 * endpoint once named, the outcome at return. With a status filter a send waits for its
 * return too (`deferred`), so that a call left out never takes a slot of cap or budget. */
#define _GNU_SOURCE
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "catalogue.h"
#include "endpoint.h"

#define TR_PENDING_MAX 4096   /* threads with a call in flight; more are not traced */
#define TR_IOV_MAX 64         /* iovecs read for a preview; the rest only count in len */

struct tr_pending {
	pid_t pid, tid;
	int call;
	uint64_t sp;              /* at entry; the return stop has sp + 8 */
	uint64_t site;
	uint64_t seq;             /* sends: the event to complete */
	bool deferred;            /* a send pushed at return, once its outcome is known */
	struct tr_regs entry;     /* receives: where the buffers are */
	int64_t ret;              /* set while waiting for errno */
	uint64_t fs_base;
	int64_t handle;
	char endpoint[TR_ENDPOINT_MAX];
};

int tr_session_init(struct tr_session *s, const struct tr_recorder_config *cfg)
{
	int rc;

	memset(s, 0, sizeof(*s));
	rc = tr_recorder_init(&s->rec, cfg);
	if (rc < 0)
		return rc;
	tr_filter_init(&s->filter);
	s->endpoints = tr_endpoint_cache_new();
	if (!s->endpoints) {
		tr_recorder_destroy(&s->rec);
		return -ENOMEM;
	}
	return 0;
}

void tr_session_destroy(struct tr_session *s)
{
	tr_endpoint_cache_free(s->endpoints);
	free(s->pending);
	tr_recorder_destroy(&s->rec);
	memset(s, 0, sizeof(*s));
}

static struct tr_pending *pending_find(struct tr_session *s, pid_t tid)
{
	for (size_t i = 0; i < s->npending; i++)
		if (s->pending[i].tid == tid)
			return &s->pending[i];
	return NULL;
}

static void pending_drop(struct tr_session *s, struct tr_pending *p)
{
	*p = s->pending[--s->npending];
}

static struct tr_pending *pending_add(struct tr_session *s)
{
	if (s->npending == s->pending_alloc) {
		size_t n = s->pending_alloc ? s->pending_alloc * 2 : 16;
		struct tr_pending *grown;

		if (n > TR_PENDING_MAX)
			return NULL;
		grown = realloc(s->pending, n * sizeof(*grown));
		if (!grown)
			return NULL;
		s->pending = grown;
		s->pending_alloc = n;
	}
	return &s->pending[s->npending++];
}

void tr_session_forget(struct tr_session *s, pid_t pid)
{
	for (size_t i = 0; i < s->npending;) {
		if (s->pending[i].pid == pid)
			pending_drop(s, &s->pending[i]);
		else
			i++;
	}
}

/* Names the handle in arg[0]; false when the call is not a message (a file, a tty). */
static bool name_endpoint(struct tr_session *s, const struct tr_call *c, pid_t pid,
			  int64_t handle, char *name)
{
	int kind;

	if (c->handle == TR_HANDLE_MSQID) {
		tr_endpoint_sysv(handle, name, TR_ENDPOINT_MAX);
		return true;
	}
	kind = tr_endpoint_resolve(s->endpoints, pid, handle, name, TR_ENDPOINT_MAX, NULL);
	return kind > TR_EP_NOT_IPC;
}

/* Copies up to `want` bytes scattered over the tracee's iovec array into out. */
static size_t gather_iov(pid_t pid, uint64_t iov_addr, uint64_t iovcnt, size_t want,
			 uint8_t *out, int64_t *total_len)
{
	struct iovec iov[TR_IOV_MAX];
	size_t n = iovcnt < TR_IOV_MAX ? (size_t)iovcnt : TR_IOV_MAX;
	size_t got = 0;
	ssize_t rd;

	*total_len = 0;
	rd = tr_mem_read(pid, iov_addr, iov, n * sizeof(iov[0]));
	if (rd < 0)
		return 0;
	n = (size_t)rd / sizeof(iov[0]);
	for (size_t i = 0; i < n; i++) {
		size_t take = iov[i].iov_len;

		*total_len += (int64_t)iov[i].iov_len;
		if (got < want) {
			if (take > want - got)
				take = want - got;
			rd = tr_mem_read(pid, (uint64_t)(uintptr_t)iov[i].iov_base, out + got, take);
			if (rd > 0)
				got += (size_t)rd;
		}
	}
	return got;
}

/* Reads the message of call c (arguments in regs) into out: at most `want` bytes of at most
 * `avail` (the bytes the call moved; -1: what it was asked). Sets *asked to the length the
 * caller asked for. Returns the bytes copied. */
static size_t capture(const struct tr_call *c, pid_t pid, const struct tr_regs *regs,
		      int64_t avail, size_t want, uint8_t *out, int64_t *asked)
{
	uint64_t buf = regs->arg[c->buf_arg];
	int64_t total = 0;
	size_t got = 0;
	ssize_t rd;

	switch (c->buffer) {
	case TR_BUF_PLAIN:
	case TR_BUF_SYSV:
		total = (int64_t)regs->arg[c->len_arg];
		if (c->buffer == TR_BUF_SYSV)
			buf += sizeof(long);   /* skip mtype */
		break;
	case TR_BUF_IOV:
	case TR_BUF_MSGHDR:
		break;
	case TR_BUF_NONE:
		*asked = 0;
		return 0;
	}
	if (avail >= 0 && (size_t)avail < want)
		want = (size_t)avail;
	if (c->buffer == TR_BUF_IOV) {
		got = gather_iov(pid, buf, regs->arg[c->len_arg], want, out, &total);
	} else if (c->buffer == TR_BUF_MSGHDR) {
		struct msghdr mh;

		if (tr_mem_read(pid, buf, &mh, sizeof(mh)) == (ssize_t)sizeof(mh))
			got = gather_iov(pid, (uint64_t)(uintptr_t)mh.msg_iov, mh.msg_iovlen,
					 want, out, &total);
	} else {
		if ((uint64_t)total < want)
			want = (size_t)total;
		rd = tr_mem_read(pid, buf, out, want);
		got = rd > 0 ? (size_t)rd : 0;
	}
	*asked = total;
	return got;
}

static enum tr_action push(struct tr_session *s, const struct tr_event *ev, const uint8_t *data,
			   size_t got, int64_t moved)
{
	struct tr_event e = *ev;

	/* The preview is complete only if it holds every byte the call moved. */
	e.truncated = moved > (int64_t)got;
	return tr_recorder_push(&s->rec, &e, data, got) == TR_PUSH_DISARM ? TR_ACT_DISARM
									  : TR_ACT_CONTINUE;
}

static void fill_event(struct tr_event *ev, const struct tr_call *c, const struct tr_pending *p)
{
	memset(ev, 0, sizeof(*ev));
	ev->pid = p->pid;
	ev->tid = p->tid;
	ev->dir = c->cls == TR_CLASS_SEND ? TR_DIR_SEND : TR_DIR_RECV;
	ev->fn = c->name;
	ev->fd = p->handle;
	ev->site = p->site;
	memcpy(ev->endpoint, p->endpoint, sizeof(ev->endpoint));
}

enum tr_action tr_session_entry(struct tr_session *s, int call, pid_t pid, pid_t tid,
				const struct tr_regs *regs, uint64_t *return_pc)
{
	const struct tr_call *c;
	struct tr_pending *p, tmp;
	uint8_t data[TR_PAYLOAD_MAX];
	struct tr_event ev;
	enum tr_action act = TR_ACT_CATCH_RETURN;

	if (call < 0 || (size_t)call >= tr_catalogue_len)
		return TR_ACT_CONTINUE;
	c = &tr_catalogue[call];
	if (!tr_call_records(c) || !tr_filter_call(&s->filter, call))
		return TR_ACT_CONTINUE;
	if (s->rec.overflow)
		return TR_ACT_DISARM;
	if (s->rec.frozen)
		return TR_ACT_CONTINUE;

	p = pending_find(s, tid);
	/* Deeper in the stack than the waiting call, or at the same depth but another function
	 * (a tail call: glibc's mq_send jumps to mq_timedsend): part of the waiting call. */
	if (p && (p->sp > regs->sp || (p->sp == regs->sp && p->call != call))) {
		s->nested++;
		return TR_ACT_CONTINUE;
	}
	/* The same call at the same depth again: gdb re-reports a breakpoint when a signal
	 * (SIGCHLD) lands while it steps the thread over it. The call has not run yet. */
	if (p && p->sp == regs->sp && memcmp(p->entry.arg, regs->arg, sizeof(regs->arg)) == 0) {
		s->rehits++;
		*return_pc = p->site;
		return TR_ACT_CATCH_RETURN;
	}
	if (p)                       /* stale: its return never came (longjmp, exec) */
		pending_drop(s, p);

	memset(&tmp, 0, sizeof(tmp));
	tmp.pid = pid;
	tmp.tid = tid;
	tmp.call = call;
	tmp.sp = regs->sp;
	tmp.entry = *regs;
	tmp.handle = (int32_t)regs->arg[0];   /* fd, mqd_t and msqid are all C ints */
	if (!name_endpoint(s, c, pid, tmp.handle, tmp.endpoint)) {
		s->not_ipc++;
		return TR_ACT_CONTINUE;
	}
	if (!tr_filter_endpoint(&s->filter, tmp.endpoint)) {
		s->filtered++;
		return TR_ACT_CONTINUE;
	}
	if (tr_mem_read(pid, regs->sp, &tmp.site, sizeof(tmp.site)) != (ssize_t)sizeof(tmp.site)) {
		s->unreadable++;
		return TR_ACT_CONTINUE;
	}

	tmp.deferred = c->cls == TR_CLASS_SEND && s->filter.outcome_matters;
	if (c->cls == TR_CLASS_SEND && !tmp.deferred) {
		int64_t asked = 0;
		size_t got = capture(c, pid, regs, -1, s->rec.payload, data, &asked);

		fill_event(&ev, c, &tmp);
		ev.len = asked;
		tmp.seq = s->rec.count;
		if (push(s, &ev, data, got, asked) == TR_ACT_DISARM)
			act = TR_ACT_DISARM;
		if (s->rec.count == tmp.seq)   /* not accepted: nothing to complete */
			return act;
	}
	p = pending_add(s);
	if (!p) {
		s->unreadable++;
		return act == TR_ACT_DISARM ? act : TR_ACT_CONTINUE;
	}
	*p = tmp;
	*return_pc = tmp.site;
	/* At the budget the front end removes every breakpoint, return stops included. */
	return act;
}

static enum tr_action complete(struct tr_session *s, struct tr_pending *p, int64_t ret, int err)
{
	const struct tr_call *c = &tr_catalogue[p->call];
	enum tr_action act = TR_ACT_CONTINUE;

	if (c->cls == TR_CLASS_SEND && !p->deferred) {
		tr_recorder_set_return(&s->rec, p->seq, ret, err);
	} else if (!tr_filter_outcome(&s->filter, ret, err)) {
		s->filtered++;
	} else {
		uint8_t data[TR_PAYLOAD_MAX];
		struct tr_event ev;
		int64_t asked = 0, moved;
		size_t got = 0;

		if (c->cls == TR_CLASS_SEND) {       /* deferred: the buffer is still the caller's */
			got = capture(c, p->pid, &p->entry, -1, s->rec.payload, data, &asked);
			moved = asked;
		} else if (ret > 0) {
			got = capture(c, p->pid, &p->entry, ret, s->rec.payload, data, &asked);
			moved = ret;
		} else {
			capture(c, p->pid, &p->entry, 0, 0, data, &asked);
			moved = 0;
		}
		fill_event(&ev, c, p);
		ev.len = asked;
		ev.ret = ret;
		ev.err = err;
		ev.returned = true;
		act = push(s, &ev, data, got, moved);
	}
	pending_drop(s, p);
	return act;
}

enum tr_action tr_session_return(struct tr_session *s, pid_t pid, pid_t tid,
				 const struct tr_regs *regs)
{
	struct tr_pending *p = pending_find(s, tid);
	int64_t ret = (int64_t)regs->ret;

	if (!p || regs->sp != p->sp + 8) {
		s->unmatched_returns++;
		return TR_ACT_CONTINUE;
	}
	if (ret == -1) {
		p->ret = ret;
		p->fs_base = regs->fs_base;
		return TR_ACT_NEED_ERRNO;
	}
	return complete(s, p, ret, 0);
}

enum tr_action tr_session_errno(struct tr_session *s, pid_t tid, int err)
{
	struct tr_pending *p = pending_find(s, tid);

	if (!p)
		return TR_ACT_CONTINUE;
	return complete(s, p, p->ret, err);
}

enum tr_action tr_session_errno_at(struct tr_session *s, pid_t tid, uint64_t errno_location)
{
	struct tr_pending *p = pending_find(s, tid);
	int err = -1;

	if (!p)
		return TR_ACT_CONTINUE;
	if (tr_errno_read(tid, errno_location, p->fs_base, &err) < 0)
		err = -1;
	return complete(s, p, p->ret, err);
}
