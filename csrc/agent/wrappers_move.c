/* wrappers_move.c - the catalogue calls that are not one buffer of the program's: sendmmsg and
 * recvmmsg (one event per message) and sendfile, splice, tee (bytes moved between two fds,
 * read where transfer.h says). Same rules as wrappers.c: a send is claimed at entry and
 * completed at return, a receive written at return; errno as the real call left it. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include "../catalogue.h"
#include "../endpoint.h"
#include "../transfer.h"

typedef ssize_t (*sendfile_fn)(int, int, off_t *, size_t);
typedef ssize_t (*splice_fn)(int, loff_t *, int, loff_t *, size_t, unsigned int);
typedef ssize_t (*tee_fn)(int, int, size_t, unsigned int);
typedef int (*sendmmsg_fn)(int, struct mmsghdr *, unsigned int, int);
typedef int (*recvmmsg_fn)(int, struct mmsghdr *, unsigned int, int, struct timespec *);

static size_t payload_room(void)
{
	return tr_agent.ring.hdr->payload;
}

/* ---- sendfile, splice, tee ---- */

struct move {
	int call;
	struct tr_transfer t;
	bool rec;                 /* a send claimed at entry */
	uint64_t seq;
	size_t got;               /* bytes peeked from a source pipe */
	char name[TR_ENDPOINT_MAX];
	uint8_t data[TR_PAYLOAD_MAX];
};

/* Entry: yield point; which event (plan), what the source holds; a send is claimed now.
 * two_fds: splice/tee, else sendfile. off_in, off_out: the call's offset pointers. */
static void move_begin(struct move *m, enum tr_agent_fn fn, int fd_in, int fd_out, bool two_fds,
		       const void *off_in, const void *off_out, size_t len, const void *site)
{
	struct tr_ring_write w;
	const void *off;
	int64_t off_arg = -1;
	size_t want;

	m->rec = false;
	m->call = tr_agent_call[fn];
	tr_in_agent = 1;
	tr_agent_yield(fn, site);
	if (m->call < 0 || !tr_filter_call(&tr_agent.filter, m->call)) {
		m->call = -1;
		goto out;
	}
	if (two_fds) {
		char other[TR_ENDPOINT_MAX];
		int kin = tr_agent_endpoint(m->call, fd_in, m->name);
		int kout = tr_agent_endpoint(m->call, fd_out, other);

		if (!tr_transfer_plan(&m->t, fd_in, kin, fd_out, kout)) {
			atomic_fetch_add_explicit(&tr_agent.ring.hdr->not_ipc, 1,
						  memory_order_relaxed);
			m->call = -1;
			goto out;
		}
		if (m->t.fd == fd_out)
			memcpy(m->name, other, sizeof(other));
		if (!tr_filter_endpoint(&tr_agent.filter, m->name)) {
			atomic_fetch_add_explicit(&tr_agent.ring.hdr->filtered, 1,
						  memory_order_relaxed);
			m->call = -1;
			goto out;
		}
	} else {
		if (!tr_agent_named(m->call, fd_out, m->name)) {
			m->call = -1;
			goto out;
		}
		tr_transfer_plan_file(&m->t, fd_out, fd_in);
	}
	off = m->t.src_is_in ? off_in : off_out;   /* where the bytes are read */
	if (off && tr_agent_copy_in(&off_arg, off, sizeof(off_arg), false) != sizeof(off_arg))
		off_arg = -1;
	want = payload_room() < len ? payload_room() : len;
	m->got = tr_transfer_before(&m->t, 0, off_arg, m->data, want);
	/* with an outcome filter a send is written whole at its return (the bytes are kept) */
	if (m->t.dir == TR_DIR_SEND && !tr_agent.filter.outcome_matters &&
	    tr_shared_ring_claim(&tr_agent.ring, &m->seq) == 0) {
		tr_agent_fill(&w, m->call, m->t.fd, site, m->name);
		w.dir = TR_DIR_SEND;
		w.len = (int64_t)len;
		w.data = m->data;
		w.data_len = m->got;
		m->rec = tr_shared_ring_put(&tr_agent.ring, m->seq, tr_shared_ring_now_ns(), &w) == 0;
	}
out:
	tr_in_agent = 0;
}

/* Return: a send gets the bytes it moved; a receive is written now. */
static void move_end(struct move *m, size_t len, int64_t ret, int err, const void *site)
{
	struct tr_ring_write w;
	int64_t moved = ret > 0 ? ret : 0;
	size_t n;
	uint64_t seq, t;

	bool deferred = m->t.dir == TR_DIR_SEND && tr_agent.filter.outcome_matters;

	if (m->call < 0 || (m->t.dir == TR_DIR_SEND && !m->rec && !deferred))
		return;
	tr_in_agent = 1;
	t = tr_shared_ring_now_ns();
	if (m->t.src == TR_XFER_PIPE)
		n = m->got < (uint64_t)moved ? m->got : (size_t)moved;
	else
		n = tr_transfer_after(&m->t, 0, moved, m->data, payload_room());
	if (m->t.dir == TR_DIR_SEND && !deferred) {
		tr_shared_ring_complete(&tr_agent.ring, m->seq, tr_agent.pid, ret, ret < 0 ? err : 0,
					-1, m->data, n, moved > (int64_t)n);
	} else if (tr_agent_outcome_kept(ret, err) &&
		   tr_shared_ring_claim(&tr_agent.ring, &seq) == 0) {
		tr_agent_fill(&w, m->call, m->t.fd, site, m->name);
		w.dir = m->t.dir;
		w.returned = true;
		w.ret = ret;
		w.err = ret < 0 ? err : 0;
		w.len = (int64_t)len;
		w.data = m->data;
		w.data_len = n;
		w.truncated = moved > (int64_t)n;
		tr_shared_ring_put(&tr_agent.ring, seq, t, &w);
	}
	tr_in_agent = 0;
}

#define MOVE_BODY(FN, IN, OUT, TWO, OFF_IN, OFF_OUT, LEN, CALL)                 \
	struct move m;                                                          \
	const void *site = __builtin_return_address(0);                         \
	int64_t r;                                                              \
	int e;                                                                  \
	if (!tr_agent_may_record())                                             \
		return CALL;                                                    \
	move_begin(&m, FN, IN, OUT, TWO, OFF_IN, OFF_OUT, LEN, site);          \
	CALL_REAL(r, e, CALL);                                                  \
	move_end(&m, LEN, r, e, site);                                          \
	errno = e;                                                              \
	return r

TR_AGENT_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	MOVE_BODY(FN_SENDFILE, in_fd, out_fd, false, offset, NULL, count,
		  REAL(FN_SENDFILE, sendfile_fn)(out_fd, in_fd, offset, count));
}

/* _FILE_OFFSET_BITS=64 programs call sendfile64: the same function on 64-bit Linux, recorded
 * as "sendfile" (one catalogue row, as breakpoint mode sees them: one address). */
TR_AGENT_EXPORT ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	MOVE_BODY(FN_SENDFILE, in_fd, out_fd, false, offset, NULL, count,
		  REAL(FN_SENDFILE, sendfile_fn)(out_fd, in_fd, offset, count));
}

TR_AGENT_EXPORT ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out,
			       size_t len, unsigned int flags)
{
	MOVE_BODY(FN_SPLICE, fd_in, fd_out, true, off_in, off_out, len,
		  REAL(FN_SPLICE, splice_fn)(fd_in, off_in, fd_out, off_out, len, flags));
}

TR_AGENT_EXPORT ssize_t tee(int fd_in, int fd_out, size_t len, unsigned int flags)
{
	MOVE_BODY(FN_TEE, fd_in, fd_out, true, NULL, NULL, len,
		  REAL(FN_TEE, tee_fn)(fd_in, fd_out, len, flags));
}

/* ---- sendmmsg, recvmmsg: one event per message ---- */

static size_t mmsg_count(unsigned int vlen)
{
	if (vlen <= TR_MMSG_MAX)
		return vlen;
	/* the messages past TR_MMSG_MAX are not recorded */
	atomic_fetch_add_explicit(&tr_agent.ring.hdr->unreadable, 1, memory_order_relaxed);
	return TR_MMSG_MAX;
}

/* Message i's total length and its first `want` bytes (received: no more than msg_len); ok: the
 * kernel has just read or written the vector. */
static size_t mmsg_capture(const struct mmsghdr *vec, size_t i, size_t want, uint8_t *out,
			   bool ok, bool received, int64_t *total, unsigned int *msg_len)
{
	struct mmsghdr mm;

	*total = 0;
	*msg_len = 0;
	if (tr_agent_copy_in(&mm, vec + i, sizeof(mm), ok) != sizeof(mm))
		return 0;
	*msg_len = mm.msg_len;
	if (received && mm.msg_len < want)
		want = mm.msg_len;
	return tr_agent_gather(mm.msg_hdr.msg_iov, mm.msg_hdr.msg_iovlen, want, out, ok, false,
			       total);
}

#define DEFERRED (UINT64_MAX - 1)   /* a message to claim at return (an outcome filter) */

TR_AGENT_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	const void *site = __builtin_return_address(0);
	uint64_t seqs[TR_MMSG_MAX];
	uint8_t data[TR_PAYLOAD_MAX];
	char name[TR_ENDPOINT_MAX];
	int call = tr_agent_call[FN_SENDMMSG];
	bool deferred = tr_agent.filter.outcome_matters;
	size_t n = 0, want;
	int r, e;

	if (!tr_agent_may_record())
		return REAL(FN_SENDMMSG, sendmmsg_fn)(fd, vec, vlen, flags);
	tr_in_agent = 1;
	tr_agent_yield(FN_SENDMMSG, site);
	if (call >= 0 && tr_filter_call(&tr_agent.filter, call) &&
	    tr_agent_named(call, fd, name)) {
		size_t want_n = mmsg_count(vlen);

		/* claimed now, in order; lengths and bytes at return, when known readable. With
		 * an outcome filter, claimed at return, if the call's outcome is kept. */
		for (; n < want_n && deferred; n++)
			seqs[n] = DEFERRED;
		for (; n < want_n; n++) {
			struct tr_ring_write w;

			if (tr_shared_ring_claim(&tr_agent.ring, &seqs[n]) != 0)
				break;
			tr_agent_fill(&w, call, fd, site, name);
			w.len = -1;
			if (tr_shared_ring_put(&tr_agent.ring, seqs[n], tr_shared_ring_now_ns(),
					       &w) != 0)
				seqs[n] = UINT64_MAX;
		}
	}
	tr_in_agent = 0;
	CALL_REAL(r, e, REAL(FN_SENDMMSG, sendmmsg_fn)(fd, vec, vlen, flags));
	tr_in_agent = 1;
	want = payload_room();
	if (n && deferred && !tr_agent_outcome_kept(r, e))
		n = 0;
	for (size_t i = 0; i < n; i++) {
		bool sent = r > (int)i;
		unsigned int msg_len;
		int64_t total;
		/* the bytes of a message are what its buffers held, as for sendmsg */
		size_t got = mmsg_capture(vec, i, want, data, sent, false, &total, &msg_len);
		int64_t ret = r < 0 ? r : sent ? (int64_t)msg_len : 0;

		if (seqs[i] == DEFERRED) {
			struct tr_ring_write w;
			uint64_t seq;

			if (tr_shared_ring_claim(&tr_agent.ring, &seq) != 0)
				break;
			tr_agent_fill(&w, call, fd, site, name);
			w.returned = true;
			w.ret = ret;
			w.err = r < 0 ? e : 0;
			w.len = total;
			w.data = data;
			w.data_len = got;
			w.truncated = total > (int64_t)got;
			tr_shared_ring_put(&tr_agent.ring, seq, tr_shared_ring_now_ns(), &w);
		} else if (seqs[i] != UINT64_MAX) {
			tr_shared_ring_complete(&tr_agent.ring, seqs[i], tr_agent.pid, ret,
						r < 0 ? e : 0, total, data, got, total > (int64_t)got);
		}
	}
	tr_in_agent = 0;
	errno = e;
	return r;
}

TR_AGENT_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
			     struct timespec *timeout)
{
	const void *site = __builtin_return_address(0);
	uint8_t data[TR_PAYLOAD_MAX];
	char name[TR_ENDPOINT_MAX];
	int call = tr_agent_call[FN_RECVMMSG];
	struct tr_ring_write w;
	unsigned int msg_len;
	int64_t total, room = 0;
	uint64_t seq, t;
	size_t n;
	int r, e;

	if (!tr_agent_may_record())
		return REAL(FN_RECVMMSG, recvmmsg_fn)(fd, vec, vlen, flags, timeout);
	tr_in_agent = 1;
	tr_agent_yield(FN_RECVMMSG, site);
	tr_in_agent = 0;
	CALL_REAL(r, e, REAL(FN_RECVMMSG, recvmmsg_fn)(fd, vec, vlen, flags, timeout));
	if (call < 0)
		return r;
	tr_in_agent = 1;
	t = tr_shared_ring_now_ns();
	if (!tr_filter_call(&tr_agent.filter, call) || !tr_agent_named(call, fd, name) ||
	    !tr_agent_outcome_kept(r, e))
		goto out;
	n = mmsg_count(vlen);
	if (r <= 0) {
		/* no message: one event, offering the room of them all */
		for (size_t i = 0; i < n; i++) {
			mmsg_capture(vec, i, 0, data, false, false, &total, &msg_len);
			room += total;
		}
		if (tr_shared_ring_claim(&tr_agent.ring, &seq) != 0)
			goto out;
		tr_agent_fill(&w, call, fd, site, name);
		w.returned = true;
		w.ret = r;
		w.err = r < 0 ? e : 0;
		w.len = room;
		tr_shared_ring_put(&tr_agent.ring, seq, t, &w);
		goto out;
	}
	if ((size_t)r < n)
		n = (size_t)r;
	for (size_t i = 0; i < n; i++) {
		size_t got = mmsg_capture(vec, i, payload_room(), data, true, true, &total,
					  &msg_len);

		if (tr_shared_ring_claim(&tr_agent.ring, &seq) != 0)
			break;
		tr_agent_fill(&w, call, fd, site, name);
		w.returned = true;
		w.ret = msg_len;
		w.len = total;
		w.data = data;
		w.data_len = got;
		w.truncated = msg_len > got;
		tr_shared_ring_put(&tr_agent.ring, seq, t, &w);
	}
out:
	tr_in_agent = 0;
	errno = e;
	return r;
}
