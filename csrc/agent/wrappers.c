/* wrappers.c - the catalogue's send and receive functions, recorded into the shared ring.
 *
 * A send is claimed and written at ENTRY (its seq and t are when it was asked, as in
 * breakpoint mode; a call blocked or in flight when the program dies shows with ret null),
 * then completed at return under the ring's commit protocol with ret, errno, len and the
 * payload. The payload is copied at return because only then is the buffer known to be
 * readable: bytes the kernel took are copied directly, anything else through
 * process_vm_readv on ourselves, which fails instead of faulting. A receive is written once,
 * at return, with the bytes received. The catalogue row decides how each call's buffer is
 * described (tr_catalogue[] is the one source of truth).
 *
 * The filter (../filter.h) is applied here, in send_begin/send_end/recv_done, before a slot
 * is claimed: the function first, the endpoint once named, the outcome at return. With a
 * status filter a send is written whole at its return (`deferred`), like a receive. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <mqueue.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../catalogue.h"
#include "../endpoint.h"

#define IOV_SCAN_MAX 1024   /* iovecs looked at for lengths and previews */

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef ssize_t (*sendto_fn)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);
typedef int (*mq_send_fn)(mqd_t, const char *, size_t, unsigned);
typedef int (*mq_timedsend_fn)(mqd_t, const char *, size_t, unsigned, const struct timespec *);
typedef int (*msgsnd_fn)(int, const void *, size_t, int);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*readv_fn)(int, const struct iovec *, int);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*recvfrom_fn)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef ssize_t (*mq_receive_fn)(mqd_t, char *, size_t, unsigned *);
typedef ssize_t (*mq_timedreceive_fn)(mqd_t, char *, size_t, unsigned *, const struct timespec *);
typedef ssize_t (*msgrcv_fn)(int, void *, size_t, long, int);

/* The buffer arguments of one call, as the catalogue row describes them. */
struct msg {
	const void *buf;            /* PLAIN / SYSV: the buffer (SYSV: the struct msgbuf) */
	size_t len;                 /* PLAIN / SYSV: its length; IOV: iovcnt */
	const struct iovec *iov;    /* IOV */
	const struct msghdr *mh;    /* MSGHDR */
};

struct pending {
	int call;
	uint64_t seq;
	bool rec;
	bool deferred;              /* written at return, if the status filter keeps it */
	char name[TR_ENDPOINT_MAX]; /* deferred: the endpoint, named at entry */
};

size_t tr_agent_copy_in(void *dst, const void *src, size_t n, bool trusted)
{
	struct iovec local = { dst, n }, remote = { (void *)src, n };
	ssize_t got;

	if (!n)
		return 0;
	if (trusted) {
		memcpy(dst, src, n);
		return n;
	}
	got = process_vm_readv(tr_agent.pid, &local, 1, &remote, 1, 0);
	return got > 0 ? (size_t)got : 0;
}

size_t tr_agent_gather(const struct iovec *iov_p, size_t cnt, size_t want, uint8_t *out,
		       bool arrays_ok, bool data_ok, int64_t *total)
{
	struct iovec iov[16];
	size_t got = 0;

	*total = 0;
	if (cnt > IOV_SCAN_MAX)
		cnt = IOV_SCAN_MAX;
	for (size_t base = 0; base < cnt; base += 16) {
		size_t k = cnt - base < 16 ? cnt - base : 16;
		size_t have = tr_agent_copy_in(iov, iov_p + base, k * sizeof(iov[0]), arrays_ok) /
			      sizeof(iov[0]);

		for (size_t i = 0; i < have; i++) {
			*total += (int64_t)iov[i].iov_len;
			if (got < want) {
				size_t take = iov[i].iov_len < want - got ? iov[i].iov_len : want - got;

				got += tr_agent_copy_in(out + got, iov[i].iov_base, take, data_ok);
			}
		}
		if (have < k)
			break;
	}
	return got;
}

/* The message's total length and its first `want` bytes. arrays_ok: iovec arrays and the
 * msghdr are readable; data_ok: the first `want` data bytes are. */
static size_t capture(const struct tr_call *c, const struct msg *m, size_t want, uint8_t *out,
		      bool arrays_ok, bool data_ok, int64_t *total)
{
	struct msghdr mh;

	switch (c->buffer) {
	case TR_BUF_PLAIN:
		*total = (int64_t)m->len;
		return tr_agent_copy_in(out, m->buf, want < m->len ? want : m->len, data_ok);
	case TR_BUF_SYSV:
		*total = (int64_t)m->len;
		return tr_agent_copy_in(out, (const char *)m->buf + sizeof(long),
			       want < m->len ? want : m->len, data_ok);
	case TR_BUF_IOV:
		return tr_agent_gather(m->iov, m->len, want, out, arrays_ok, data_ok, total);
	case TR_BUF_MSGHDR:
		if (tr_agent_copy_in(&mh, m->mh, sizeof(mh), arrays_ok) != sizeof(mh)) {
			*total = 0;
			return 0;
		}
		return tr_agent_gather(mh.msg_iov, mh.msg_iovlen, want, out, arrays_ok, data_ok, total);
	case TR_BUF_MMSG:          /* wrappers_move.c */
	case TR_BUF_FILE:
	case TR_BUF_SPLICE:
	case TR_BUF_TEE:
	case TR_BUF_NONE:
		break;
	}
	*total = 0;
	return 0;
}

void tr_agent_fill(struct tr_ring_write *w, int call, int64_t handle, const void *site,
		   const char *endpoint)
{
	memset(w, 0, sizeof(*w));
	w->pid = tr_agent.pid;
	w->tid = tr_agent_tid();
	w->call = call;
	w->dir = tr_catalogue[call].cls == TR_CLASS_SEND ? TR_DIR_SEND : TR_DIR_RECV;
	w->fd = (int32_t)handle;      /* fd, mqd_t and msqid are all C ints */
	w->site = (uint64_t)(uintptr_t)site;
	w->endpoint = endpoint;
}

/* Names the handle; false (counted) when it is not a message or the filter leaves its
 * endpoint out. */
bool tr_agent_named(int call, int64_t handle, char *name)
{
	int kind = tr_agent_endpoint(call, handle, name);

	if (kind <= TR_EP_NOT_IPC) {
		atomic_fetch_add_explicit(&tr_agent.ring.hdr->not_ipc, 1, memory_order_relaxed);
		return false;
	}
	if (!tr_filter_endpoint(&tr_agent.filter, name)) {
		atomic_fetch_add_explicit(&tr_agent.ring.hdr->filtered, 1, memory_order_relaxed);
		return false;
	}
	return true;
}

/* The status filter's verdict at return (counted when it leaves the call out). */
bool tr_agent_outcome_kept(int64_t ret, int err)
{
	if (tr_filter_outcome(&tr_agent.filter, ret, err))
		return true;
	atomic_fetch_add_explicit(&tr_agent.ring.hdr->filtered, 1, memory_order_relaxed);
	return false;
}

/* A call written whole at its return (receives, and deferred sends): claims its slot, fills
 * it with ret, errno and the first `want` bytes. */
static void put_whole(int call, int64_t handle, const struct msg *m, int64_t ret, int err,
		      const void *site, const char *name, uint64_t t, size_t want, bool data_ok,
		      int64_t moved)
{
	struct tr_ring_write w;
	uint8_t data[TR_PAYLOAD_MAX];
	int64_t total = 0;
	uint64_t seq;
	size_t got;

	if (tr_shared_ring_claim(&tr_agent.ring, &seq) != 0)
		return;
	got = capture(&tr_catalogue[call], m, want, data, ret >= 0, data_ok, &total);
	tr_agent_fill(&w, call, handle, site, name);
	w.returned = true;
	w.ret = ret;
	w.err = ret < 0 ? err : 0;
	w.len = total;
	w.data = data;
	w.data_len = got;
	w.truncated = (moved < 0 ? total : moved) > (int64_t)got;
	tr_shared_ring_put(&tr_agent.ring, seq, t, &w);
}

/* Entry of a send: yield point, then the event (ret not known yet). */
static void send_begin(struct pending *p, enum tr_agent_fn fn, int64_t handle, const void *site)
{
	struct tr_ring_write w;
	char name[TR_ENDPOINT_MAX];

	p->rec = p->deferred = false;
	p->call = tr_agent_call[fn];
	tr_in_agent = 1;
	tr_agent_yield(fn, site);
	if (!tr_filter_call(&tr_agent.filter, p->call) || !tr_agent_named(p->call, handle, name))
		goto out;
	if (tr_agent.filter.outcome_matters) {
		p->deferred = true;
		memcpy(p->name, name, sizeof(p->name));
		goto out;
	}
	if (tr_shared_ring_claim(&tr_agent.ring, &p->seq) == 0) {
		tr_agent_fill(&w, p->call, handle, site, name);
		w.len = -1;   /* set at return: an iovec's lengths are read once known readable */
		p->rec = tr_shared_ring_put(&tr_agent.ring, p->seq, tr_shared_ring_now_ns(), &w) == 0;
	}
out:
	tr_in_agent = 0;
}

static void send_end(const struct pending *p, const struct msg *m, int64_t ret, int err,
		     int64_t handle, const void *site)
{
	const struct tr_call *c;
	uint8_t data[TR_PAYLOAD_MAX];
	size_t want, got;
	int64_t total = 0;
	bool zero_ok, data_ok;

	if (!p->rec && !p->deferred)
		return;
	tr_in_agent = 1;
	c = &tr_catalogue[p->call];
	want = tr_agent.ring.hdr->payload;
	/* mq_send and msgsnd return 0 when the whole message went */
	zero_ok = c->handle != TR_HANDLE_FD;
	if (c->buffer == TR_BUF_PLAIN || c->buffer == TR_BUF_SYSV)
		want = want < m->len ? want : m->len;
	data_ok = ret >= 0 && (zero_ok || (uint64_t)ret >= want);
	if (p->deferred) {
		if (tr_agent_outcome_kept(ret, err))
			put_whole(p->call, handle, m, ret, err, site, p->name,
				  tr_shared_ring_now_ns(), want, data_ok, -1);
	} else {
		got = capture(c, m, want, data, ret >= 0, data_ok, &total);
		tr_shared_ring_complete(&tr_agent.ring, p->seq, tr_agent.pid, ret,
					ret < 0 ? err : 0, total, data, got, total > (int64_t)got);
	}
	tr_in_agent = 0;
}

/* Return of a receive: the event, with the bytes received. */
static void recv_done(enum tr_agent_fn fn, int64_t handle, const struct msg *m, int64_t ret,
		      int err, const void *site)
{
	char name[TR_ENDPOINT_MAX];
	int call = tr_agent_call[fn];
	uint64_t t;
	size_t want = 0;

	if (!tr_filter_call(&tr_agent.filter, call))
		return;
	tr_in_agent = 1;
	t = tr_shared_ring_now_ns();
	if (tr_agent_named(call, handle, name) && tr_agent_outcome_kept(ret, err)) {
		if (ret > 0)
			want = (uint64_t)ret < tr_agent.ring.hdr->payload ? (size_t)ret
									   : tr_agent.ring.hdr->payload;
		put_whole(call, handle, m, ret, err, site, name, t, want, ret > 0, ret > 0 ? ret : 0);
	}
	tr_in_agent = 0;
}

static inline void recv_yield(enum tr_agent_fn fn, const void *site)
{
	tr_in_agent = 1;
	tr_agent_yield(fn, site);
	tr_in_agent = 0;
}

/* ---- sends ---- */

#define SEND_BODY(FN, HANDLE, MSG, CALL)                                        \
	struct pending p;                                                       \
	struct msg m = MSG;                                                     \
	const void *site = __builtin_return_address(0);                         \
	int64_t r;                                                              \
	int e;                                                                  \
	if (!tr_agent_may_record())                                             \
		return CALL;                                                    \
	send_begin(&p, FN, HANDLE, site);                                       \
	CALL_REAL(r, e, CALL);                                                  \
	send_end(&p, &m, r, e, HANDLE, site);                                   \
	errno = e;                                                              \
	return r

TR_AGENT_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	SEND_BODY(FN_WRITE, fd, ((struct msg){ .buf = buf, .len = n }),
		  REAL(FN_WRITE, write_fn)(fd, buf, n));
}

ssize_t tr_agent_write_self(int fd, const void *buf, size_t n) __attribute__((alias("write")));

TR_AGENT_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	SEND_BODY(FN_WRITEV, fd, ((struct msg){ .iov = iov, .len = cnt > 0 ? (size_t)cnt : 0 }),
		  REAL(FN_WRITEV, writev_fn)(fd, iov, cnt));
}

TR_AGENT_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	SEND_BODY(FN_SEND, fd, ((struct msg){ .buf = buf, .len = n }),
		  REAL(FN_SEND, send_fn)(fd, buf, n, flags));
}

TR_AGENT_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			       const struct sockaddr *to, socklen_t tolen)
{
	SEND_BODY(FN_SENDTO, fd, ((struct msg){ .buf = buf, .len = n }),
		  REAL(FN_SENDTO, sendto_fn)(fd, buf, n, flags, to, tolen));
}

TR_AGENT_EXPORT ssize_t sendmsg(int fd, const struct msghdr *mh, int flags)
{
	SEND_BODY(FN_SENDMSG, fd, ((struct msg){ .mh = mh }),
		  REAL(FN_SENDMSG, sendmsg_fn)(fd, mh, flags));
}

TR_AGENT_EXPORT int mq_send(mqd_t q, const char *buf, size_t n, unsigned prio)
{
	SEND_BODY(FN_MQ_SEND, q, ((struct msg){ .buf = buf, .len = n }),
		  REAL(FN_MQ_SEND, mq_send_fn)(q, buf, n, prio));
}

TR_AGENT_EXPORT int mq_timedsend(mqd_t q, const char *buf, size_t n, unsigned prio,
				 const struct timespec *ts)
{
	SEND_BODY(FN_MQ_TIMEDSEND, q, ((struct msg){ .buf = buf, .len = n }),
		  REAL(FN_MQ_TIMEDSEND, mq_timedsend_fn)(q, buf, n, prio, ts));
}

TR_AGENT_EXPORT int msgsnd(int id, const void *buf, size_t n, int flags)
{
	SEND_BODY(FN_MSGSND, id, ((struct msg){ .buf = buf, .len = n }),
		  REAL(FN_MSGSND, msgsnd_fn)(id, buf, n, flags));
}

/* ---- receives ---- */

#define RECV_BODY(FN, HANDLE, MSG, CALL)                                        \
	struct msg m = MSG;                                                     \
	const void *site = __builtin_return_address(0);                         \
	int64_t r;                                                              \
	int e;                                                                  \
	if (!tr_agent_may_record())                                             \
		return CALL;                                                    \
	recv_yield(FN, site);                                                   \
	CALL_REAL(r, e, CALL);                                                  \
	recv_done(FN, HANDLE, &m, r, e, site);                                  \
	errno = e;                                                              \
	return r

TR_AGENT_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	RECV_BODY(FN_READ, fd, ((struct msg){ .buf = buf, .len = n }),
		  REAL(FN_READ, read_fn)(fd, buf, n));
}

TR_AGENT_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	RECV_BODY(FN_READV, fd, ((struct msg){ .iov = iov, .len = cnt > 0 ? (size_t)cnt : 0 }),
		  REAL(FN_READV, readv_fn)(fd, iov, cnt));
}

TR_AGENT_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	RECV_BODY(FN_RECV, fd, ((struct msg){ .buf = buf, .len = n }),
		  REAL(FN_RECV, recv_fn)(fd, buf, n, flags));
}

TR_AGENT_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
				 socklen_t *fromlen)
{
	RECV_BODY(FN_RECVFROM, fd, ((struct msg){ .buf = buf, .len = n }),
		  REAL(FN_RECVFROM, recvfrom_fn)(fd, buf, n, flags, from, fromlen));
}

TR_AGENT_EXPORT ssize_t recvmsg(int fd, struct msghdr *mh, int flags)
{
	RECV_BODY(FN_RECVMSG, fd, ((struct msg){ .mh = mh }),
		  REAL(FN_RECVMSG, recvmsg_fn)(fd, mh, flags));
}

TR_AGENT_EXPORT ssize_t mq_receive(mqd_t q, char *buf, size_t n, unsigned *prio)
{
	RECV_BODY(FN_MQ_RECEIVE, q, ((struct msg){ .buf = buf, .len = n }),
		  REAL(FN_MQ_RECEIVE, mq_receive_fn)(q, buf, n, prio));
}

TR_AGENT_EXPORT ssize_t mq_timedreceive(mqd_t q, char *buf, size_t n, unsigned *prio,
					const struct timespec *ts)
{
	RECV_BODY(FN_MQ_TIMEDRECEIVE, q, ((struct msg){ .buf = buf, .len = n }),
		  REAL(FN_MQ_TIMEDRECEIVE, mq_timedreceive_fn)(q, buf, n, prio, ts));
}

TR_AGENT_EXPORT ssize_t msgrcv(int id, void *buf, size_t n, long type, int flags)
{
	RECV_BODY(FN_MSGRCV, id, ((struct msg){ .buf = buf, .len = n }),
		  REAL(FN_MSGRCV, msgrcv_fn)(id, buf, n, type, flags));
}

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

/* Not a message: a socket that connects gets a new name (udp:A becomes udp:A->B). */
TR_AGENT_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	int r = REAL(FN_CONNECT, connect_fn)(fd, addr, len);
	int e = errno;

	tr_agent_endpoint_forget(fd);
	errno = e;
	return r;
}
