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
#include "transfer.h"

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
	int64_t handle;           /* the event's fd (splice, tee: the end it is recorded on) */
	enum tr_dir dir;
	uint32_t nmsg;            /* sendmmsg: its messages' events, from seq on */
	struct tr_transfer xfer;  /* sendfile, splice, tee: where the bytes are read */
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

/* splice, tee: names both ends and plans the event (transfer.h): p->handle, dir, endpoint. */
static bool name_two_fds(struct tr_session *s, const struct tr_call *c, pid_t pid,
			 const struct tr_regs *regs, struct tr_pending *p)
{
	char name_out[TR_ENDPOINT_MAX];
	int fd_in = (int32_t)regs->arg[0], fd_out = (int32_t)regs->arg[c->buf_arg];
	int kind_in = tr_endpoint_resolve(s->endpoints, pid, fd_in, p->endpoint, TR_ENDPOINT_MAX,
					  NULL);
	int kind_out = tr_endpoint_resolve(s->endpoints, pid, fd_out, name_out, TR_ENDPOINT_MAX,
					   NULL);

	if (!tr_transfer_plan(&p->xfer, fd_in, kind_in, fd_out, kind_out))
		return false;
	p->handle = p->xfer.fd;
	p->dir = p->xfer.dir;
	if (p->handle == fd_out)
		memcpy(p->endpoint, name_out, TR_ENDPOINT_MAX);
	return true;
}

/* Names the call's endpoint; for the calls that move bytes between fds, plans where the bytes
 * are read. False when the call is not a message. */
static bool name_call(struct tr_session *s, const struct tr_call *c, pid_t pid,
		      const struct tr_regs *regs, struct tr_pending *p)
{
	if (tr_call_two_fds(c))
		return name_two_fds(s, c, pid, regs, p);
	if (!name_endpoint(s, c, pid, p->handle, p->endpoint))
		return false;
	if (c->buffer == TR_BUF_FILE)
		tr_transfer_plan_file(&p->xfer, (int)p->handle, (int32_t)regs->arg[c->buf_arg]);
	return true;
}

static bool moves_bytes(const struct tr_call *c)
{
	return c->buffer == TR_BUF_FILE || tr_call_two_fds(c);
}

/* Before a sendfile/splice/tee: the offset it will use, or the first bytes of its source
 * pipe into out (returns how many). */
static size_t transfer_before(const struct tr_call *c, struct tr_pending *p, size_t want,
			      uint8_t *out)
{
	const struct tr_regs *r = &p->entry;
	uint64_t at = 0;
	int64_t off = -1;

	if (c->buffer != TR_BUF_TEE)
		at = p->xfer.src_is_in && c->buffer == TR_BUF_SPLICE ? r->arg[1]
								     : r->arg[c->buf_arg + 1];
	if (at && tr_mem_read(p->pid, at, &off, sizeof(off)) != (ssize_t)sizeof(off))
		off = -1;
	if ((uint64_t)r->arg[c->len_arg] < want)
		want = (size_t)r->arg[c->len_arg];
	return tr_transfer_before(&p->xfer, p->pid, off, out, want);
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
	case TR_BUF_MMSG:
	case TR_BUF_FILE:
	case TR_BUF_SPLICE:
	case TR_BUF_TEE:
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
	ev->dir = p->dir;
	ev->fn = c->name;
	ev->fd = p->handle;
	ev->site = p->site;
	memcpy(ev->endpoint, p->endpoint, sizeof(ev->endpoint));
}

/* struct mmsghdr i of the vector at arg[buf_arg]. */
static bool read_mmsg(const struct tr_call *c, const struct tr_pending *p, size_t i,
		      struct mmsghdr *mm)
{
	uint64_t at = p->entry.arg[c->buf_arg] + i * sizeof(*mm);

	return tr_mem_read(p->pid, at, mm, sizeof(*mm)) == (ssize_t)sizeof(*mm);
}

static size_t mmsg_count(struct tr_session *s, const struct tr_call *c,
			 const struct tr_pending *p)
{
	size_t n = (uint32_t)p->entry.arg[c->len_arg];   /* unsigned int vlen */

	if (n > TR_MMSG_MAX) {
		s->unreadable++;        /* the messages past TR_MMSG_MAX are not recorded */
		n = TR_MMSG_MAX;
	}
	return n;
}

/* sendmmsg at entry: one send per message, pushed now; p->seq, p->nmsg say which. */
static enum tr_action mmsg_sends(struct tr_session *s, const struct tr_call *c,
				 struct tr_pending *p)
{
	uint8_t data[TR_PAYLOAD_MAX];
	size_t n = mmsg_count(s, c, p);
	enum tr_action act = TR_ACT_CONTINUE;
	struct tr_event ev;

	p->seq = s->rec.count;
	for (size_t i = 0; i < n && act != TR_ACT_DISARM; i++) {
		struct mmsghdr mm;
		int64_t total = 0;
		size_t got;

		if (!read_mmsg(c, p, i, &mm)) {
			s->unreadable++;
			break;
		}
		got = gather_iov(p->pid, (uint64_t)(uintptr_t)mm.msg_hdr.msg_iov,
				 mm.msg_hdr.msg_iovlen, s->rec.payload, data, &total);
		fill_event(&ev, c, p);
		ev.len = total;
		act = push(s, &ev, data, got, total);
	}
	p->nmsg = (uint32_t)(s->rec.count - p->seq);
	return act;
}

/* sendmmsg at return: message i's event gets the bytes it sent (msg_len), 0 for a message the
 * call did not get to, or the call's failure. */
static void mmsg_sent(struct tr_session *s, const struct tr_call *c, const struct tr_pending *p,
		      int64_t ret, int err)
{
	for (uint32_t i = 0; i < p->nmsg; i++) {
		struct mmsghdr mm;
		int64_t r = ret < 0 ? ret : 0;

		if (ret > (int64_t)i)
			r = read_mmsg(c, p, i, &mm) ? (int64_t)mm.msg_len : -1;
		tr_recorder_set_return(&s->rec, p->seq + i, r, ret < 0 ? err : 0);
	}
}

/* recvmmsg at return: one receive per message received; a call that received none is one
 * event offering the room of every message. */
static enum tr_action mmsg_received(struct tr_session *s, const struct tr_call *c,
				    const struct tr_pending *p, int64_t ret, int err)
{
	uint8_t data[TR_PAYLOAD_MAX];
	size_t n = mmsg_count(s, c, p);
	enum tr_action act = TR_ACT_CONTINUE;
	struct tr_event ev;
	struct mmsghdr mm;
	int64_t total, room = 0;

	fill_event(&ev, c, p);
	ev.returned = true;
	if (ret <= 0) {
		for (size_t i = 0; i < n && read_mmsg(c, p, i, &mm); i++) {
			gather_iov(p->pid, (uint64_t)(uintptr_t)mm.msg_hdr.msg_iov,
				   mm.msg_hdr.msg_iovlen, 0, data, &total);
			room += total;
		}
		ev.len = room;
		ev.ret = ret;
		ev.err = err;
		return push(s, &ev, data, 0, 0);
	}
	if ((uint64_t)ret < n)
		n = (size_t)ret;
	for (size_t i = 0; i < n && act != TR_ACT_DISARM; i++) {
		size_t got;

		if (!read_mmsg(c, p, i, &mm)) {
			s->unreadable++;
			break;
		}
		got = gather_iov(p->pid, (uint64_t)(uintptr_t)mm.msg_hdr.msg_iov,
				 mm.msg_hdr.msg_iovlen,
				 mm.msg_len < s->rec.payload ? mm.msg_len : s->rec.payload, data,
				 &total);
		ev.len = total;
		ev.ret = mm.msg_len;
		act = push(s, &ev, data, got, mm.msg_len);
	}
	return act;
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
	tmp.dir = c->cls == TR_CLASS_SEND ? TR_DIR_SEND : TR_DIR_RECV;
	if (!name_call(s, c, pid, regs, &tmp)) {
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

	/* With an outcome filter, a send is recorded at its return (deferred), when it is known
	 * whether it is kept: the caller's buffer is still there. */
	tmp.deferred = tmp.dir == TR_DIR_SEND && s->filter.outcome_matters;
	if (c->buffer == TR_BUF_MMSG && tmp.dir == TR_DIR_SEND) {
		if (tmp.deferred)
			goto pend;
		if (mmsg_sends(s, c, &tmp) == TR_ACT_DISARM)
			act = TR_ACT_DISARM;
		if (!tmp.nmsg)
			return act;
	} else if ((tmp.dir == TR_DIR_SEND && !tmp.deferred) || moves_bytes(c)) {
		int64_t asked = 0;
		size_t got;

		if (moves_bytes(c)) {
			/* the bytes read now are the source pipe's; the rest come at return */
			got = transfer_before(c, &tmp, s->rec.payload, data);
			asked = (int64_t)regs->arg[c->len_arg];
		} else {
			got = capture(c, pid, regs, -1, s->rec.payload, data, &asked);
		}
		if (tmp.dir == TR_DIR_SEND && !tmp.deferred) {
			fill_event(&ev, c, &tmp);
			ev.len = asked;
			tmp.seq = s->rec.count;
			if (push(s, &ev, data, got, moves_bytes(c) ? (int64_t)got : asked) ==
			    TR_ACT_DISARM)
				act = TR_ACT_DISARM;
			if (s->rec.count == tmp.seq)   /* not accepted: nothing to complete */
				return act;
		}
	}
pend:
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

/* The return of a sendfile/splice/tee recorded as a send: its preview becomes the bytes it
 * moved (a peeked pipe's cut to them, a file's read now). */
static void transfer_done(struct tr_session *s, const struct tr_pending *p, int64_t ret)
{
	uint8_t data[TR_PAYLOAD_MAX];
	int64_t moved = ret > 0 ? ret : 0;

	if (p->xfer.src == TR_XFER_PIPE)
		tr_recorder_set_data(&s->rec, p->seq, NULL, (size_t)moved, moved);
	else
		tr_recorder_set_data(&s->rec, p->seq, data,
				     tr_transfer_after(&p->xfer, p->pid, moved, data,
						       s->rec.payload), moved);
}

static enum tr_action complete(struct tr_session *s, struct tr_pending *p, int64_t ret, int err)
{
	const struct tr_call *c = &tr_catalogue[p->call];
	enum tr_action act = TR_ACT_CONTINUE;

	if (p->dir == TR_DIR_SEND && !p->deferred) {
		if (c->buffer == TR_BUF_MMSG) {
			mmsg_sent(s, c, p, ret, err);
		} else {
			tr_recorder_set_return(&s->rec, p->seq, ret, err);
			if (moves_bytes(c))
				transfer_done(s, p, ret);
		}
	} else if (!tr_filter_outcome(&s->filter, ret, err)) {
		s->filtered++;
	} else if (c->buffer == TR_BUF_MMSG) {
		if (p->dir == TR_DIR_SEND) {    /* deferred: the messages are still the caller's */
			act = mmsg_sends(s, c, p);
			mmsg_sent(s, c, p, ret, err);
		} else {
			act = mmsg_received(s, c, p, ret, err);
		}
	} else {
		uint8_t data[TR_PAYLOAD_MAX];
		struct tr_event ev;
		int64_t asked = 0, moved;
		size_t got = 0;

		if (moves_bytes(c)) {           /* a pipe source, deferred: its bytes are gone */
			asked = (int64_t)p->entry.arg[c->len_arg];
			got = tr_transfer_after(&p->xfer, p->pid, ret, data, s->rec.payload);
			moved = ret > 0 ? ret : 0;
		} else if (p->dir == TR_DIR_SEND) {     /* deferred: the buffer is still the caller's */
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
	if (tr_call_returns_int(&tr_catalogue[p->call]))
		ret = (int32_t)ret;
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
