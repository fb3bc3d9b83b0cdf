/* mailbox.c - the bytes still waiting in another process's pipes, sockets and queues, read
 * without consuming them.
 *
 *   pipe, FIFO   open /proc/PID/fd/N for reading (that works even when the process only holds
 *                the write end), FIONREAD, then tr_pipe_peek (transfer.h): tee(2) into a pipe
 *                of our own links the same buffers and leaves the source untouched.
 *   socket       pidfd_getfd(2) borrows the process's open socket; SIOCINQ and
 *                recv(MSG_PEEK | MSG_DONTWAIT) read its receive queue in place.
 *   POSIX queue  open /proc/PID/fd/N for reading; mq_getattr counts messages and read(2) of an
 *                mqueue file gives "QSIZE:<bytes>". Messages themselves cannot be peeked.
 *   SysV queue   msgctl(IPC_STAT) counts; msgrcv(MSG_COPY) copies the first message.
 *
 * Side effects, kept as small as the kernel allows: a pipe gains a reader for the moment our
 * fd is open (a writer blocked in open() on a FIFO with no reader at all would be released by
 * it); pidfd_getfd stamps the socket with our cgroup v1 net_cls/net_prio ids (a no-op under
 * cgroup v2). Nothing is ever consumed, nothing blocks (every call is non-blocking), every fd
 * we make is O_CLOEXEC and closed on every path. */
#define _GNU_SOURCE
#include "mailbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/sockios.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "endpoint.h"
#include "pidfd.h"
#include "transfer.h"


#define NAME_LEN 512   /* longer than any endpoint name (a FIFO's path may be long) */

/* One entry being built; append() turns it into an owned tr_mailbox. */
struct entry {
	int64_t fd;
	const char *endpoint;
	int64_t pending, messages;
	uint8_t *data;          /* malloc'd, handed over to the set */
	size_t data_len;
	bool truncated;
	char error[160];        /* "" when none */
};

/* Lazily opened pidfd for the scanned process, shared by all its sockets. */
struct pidfd_state {
	int fd;                 /* -1: not opened yet (or failed) */
	int err;                /* errno of a failed pidfd_open, 0 if none */
};

static void entry_init(struct entry *e, int64_t fd, const char *endpoint, int64_t messages)
{
	memset(e, 0, sizeof(*e));
	e->fd = fd;
	e->endpoint = endpoint;
	e->pending = -1;
	e->messages = messages;
}

/* Records why the kernel would not tell, as "what: strerror". */
static void entry_error(struct entry *e, const char *what, int err)
{
	snprintf(e->error, sizeof(e->error), "%s: %s", what, strerror(err));
}

/* Moves e into the set (which then owns its data). Frees e's data on failure too. */
static int append(struct tr_mailbox_set *set, struct entry *e)
{
	struct tr_mailbox *m;
	char *endpoint = NULL, *error = NULL;
	int err = 0;

	if (set->n == set->alloc) {
		size_t alloc = set->alloc ? set->alloc * 2 : 8;
		struct tr_mailbox *items = realloc(set->items, alloc * sizeof(*items));

		if (!items) {
			err = -ENOMEM;
			goto out;
		}
		set->items = items;
		set->alloc = alloc;
	}
	endpoint = strdup(e->endpoint);
	error = e->error[0] ? strdup(e->error) : NULL;
	if (!endpoint || (e->error[0] && !error)) {
		err = -ENOMEM;
		goto out;
	}
	m = &set->items[set->n++];
	*m = (struct tr_mailbox){
		.fd = e->fd,
		.endpoint = endpoint,
		.pending = e->pending,
		.messages = e->messages,
		.data = e->data,
		.data_len = e->data_len,
		.truncated = e->truncated,
		.error = error,
	};
	endpoint = error = NULL;
	e->data = NULL;
out:
	free(endpoint);
	free(error);
	free(e->data);
	e->data = NULL;
	return err;
}

static int scan_pipe(pid_t pid, int64_t fd, const char *name, size_t preview,
		     struct tr_mailbox_set *set)
{
	char path[64];
	int rfd = -1, avail = 0;
	struct entry e;
	size_t want;
	ssize_t n;
	int err = 0;

	entry_init(&e, fd, name, -1);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, (int)fd);
	/* O_NONBLOCK: opening a FIFO's read side must not wait for a writer */
	rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (rfd < 0) {
		if (errno == ENOENT)
			goto out;   /* closed since the listing */
		entry_error(&e, "open", errno);
		goto record;
	}
	if (ioctl(rfd, FIONREAD, &avail) < 0) {
		entry_error(&e, "ioctl(FIONREAD)", errno);
		goto record;
	}
	if (avail <= 0)
		goto out;
	e.pending = avail;
	if (!preview)
		goto record;
	want = preview < (size_t)avail ? preview : (size_t)avail;
	e.data = malloc(want);
	if (!e.data) {
		err = -ENOMEM;
		goto out;
	}
	/* 0 bytes: drained between FIONREAD and tee; the count stands, without bytes */
	n = tr_pipe_peek(rfd, 0, e.data, want);
	if (n < 0)
		entry_error(&e, "tee", (int)-n);
	e.data_len = n > 0 ? (size_t)n : 0;
	e.truncated = (int64_t)e.data_len < e.pending;
record:
	err = append(set, &e);
out:
	free(e.data);
	if (rfd >= 0)
		close(rfd);
	return err;
}

/* Borrows fd of pid into our process. Returns our fd, or -errno (with e->error filled
 * when the kernel refused rather than the fd having gone). */
static int borrow_fd(pid_t pid, int64_t fd, struct pidfd_state *pf, struct entry *e)
{
	int dup;

	if (pf->fd < 0 && !pf->err) {
		pf->fd = tr_pidfd_open(pid);
		pf->err = pf->fd < 0 ? -pf->fd : 0;
	}
	if (pf->err) {
		entry_error(e, "pidfd_open", pf->err);
		return -pf->err;
	}
	dup = tr_pidfd_getfd(pf->fd, (int)fd);
	if (dup < 0 && dup != -EBADF && dup != -ESRCH)  /* not closed / exited meanwhile */
		entry_error(e, "pidfd_getfd", -dup);
	return dup;
}

static int scan_socket(pid_t pid, int64_t fd, const char *name, size_t preview,
		       struct pidfd_state *pf, struct tr_mailbox_set *set)
{
	int sfd = -1, listening = 0, type = 0, avail = 0, flags = MSG_PEEK | MSG_DONTWAIT;
	socklen_t len;
	struct entry e;
	ssize_t n;
	int err = 0;

	entry_init(&e, fd, name, -1);
	sfd = borrow_fd(pid, fd, pf, &e);
	if (sfd < 0)
		goto record;
	len = sizeof(listening);
	if (getsockopt(sfd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening)
		goto out;   /* its queue holds connections, not bytes */
	len = sizeof(type);
	getsockopt(sfd, SOL_SOCKET, SO_TYPE, &type, &len);
	/* SIOCINQ means "bytes in the receive queue" for streams, but "size of the next
	 * datagram" for UDP and unix datagram/seqpacket sockets: the kernel keeps no byte count
	 * of a datagram queue (its rmem counts buffer overhead too), so that is what is
	 * reported as pending there, with messages unknown (-1). */
	if (ioctl(sfd, SIOCINQ, &avail) < 0) {
		if (errno == EINVAL || errno == ENOTTY || errno == EOPNOTSUPP)
			goto out;   /* a family without a byte queue (netlink, packet...) */
		entry_error(&e, "ioctl(SIOCINQ)", errno);
		goto record;
	}
	if (avail <= 0)
		goto out;
	e.pending = avail;
	if (!preview)
		goto record;
	e.data = malloc(preview);
	if (!e.data) {
		err = -ENOMEM;
		goto out;
	}
	/* MSG_TRUNC makes a datagram peek return the datagram's full length; on a stream it
	 * would mean "discard", so it is only ever added for datagrams */
	if (type == SOCK_DGRAM || type == SOCK_SEQPACKET)
		flags |= MSG_TRUNC;
	do
		n = recv(sfd, e.data, preview, flags);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		/* EAGAIN: drained meanwhile; the count stands, without bytes */
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			entry_error(&e, "recv(MSG_PEEK)", errno);
		free(e.data);
		e.data = NULL;
		goto record;
	}
	e.data_len = (size_t)n < preview ? (size_t)n : preview;
	e.truncated = (flags & MSG_TRUNC) ? (size_t)n > preview : (int64_t)e.data_len < e.pending;
record:
	if (sfd >= 0 || e.error[0])
		err = append(set, &e);
out:
	free(e.data);
	if (sfd >= 0)
		close(sfd);
	return err;
}

/* "QSIZE:123 NOTIFY:0 SIGNO:0 NOTIFY_PID:0": the bytes of all messages queued. */
static int mq_qsize(int mfd, int64_t *qsize)
{
	char buf[128];
	ssize_t n;
	long long v;

	/* pread: a borrowed fd shares its file offset with the program's */
	n = pread(mfd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (sscanf(buf, "QSIZE:%lld", &v) != 1)
		return -EPROTO;
	*qsize = v;
	return 0;
}

static int scan_mq(pid_t pid, int64_t fd, const char *name, struct pidfd_state *pf,
		   struct tr_mailbox_set *set)
{
	char path[64];
	struct mq_attr attr;
	struct entry e;
	int mfd, err = 0;

	entry_init(&e, fd, name, -1);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, (int)fd);
	/* Opening the queue afresh for reading works whatever mode the program opened it in —
	 * and the QSIZE text needs a readable file, which a borrowed write-only mqd_t is not.
	 * A queue keeps no count of its openers, so this open has no effect on it. */
	mfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (mfd < 0) {
		if (errno == ENOENT)
			goto out;
		mfd = borrow_fd(pid, fd, pf, &e);
		if (mfd < 0)
			goto record;
	}
	if (mq_getattr(mfd, &attr) < 0) {
		entry_error(&e, "mq_getattr", errno);
		goto record;
	}
	if (attr.mq_curmsgs <= 0)
		goto out;
	e.messages = attr.mq_curmsgs;
	err = mq_qsize(mfd, &e.pending);
	if (err) {
		entry_error(&e, "read QSIZE", -err);
		err = 0;
	}
record:
	if (e.messages > 0 || e.error[0])
		err = append(set, &e);
out:
	if (mfd >= 0)
		close(mfd);
	return err;
}

static int scan_fd(pid_t pid, int64_t fd, size_t preview, struct tr_endpoint_cache *cache,
		   struct pidfd_state *pf, struct tr_mailbox_set *set)
{
	char name[NAME_LEN];
	int kind = tr_endpoint_resolve(cache, pid, fd, name, sizeof(name), NULL);

	switch (kind) {
	case TR_EP_PIPE:
	case TR_EP_FIFO:
		return scan_pipe(pid, fd, name, preview, set);
	case TR_EP_UNIX:
	case TR_EP_TCP:
	case TR_EP_UDP:
	case TR_EP_SOCKET:
		return scan_socket(pid, fd, name, preview, pf, set);
	case TR_EP_MQ:
		return scan_mq(pid, fd, name, pf, set);
	default:
		return 0;   /* not IPC, or closed since the listing */
	}
}

/* Identities (device, inode) of the IPC objects a scan has already looked at: two fds on
 * one object (both ends of a pipe, a dup'd socket, a queue opened twice) share one queue of
 * bytes, which is listed once, under the lowest fd (/proc lists fds in ascending order). */
struct seen {
	struct { dev_t dev; ino_t ino; } *ids;
	size_t n, alloc;
};

/* true if (dev, ino) was seen before; records it otherwise. Without memory to record it,
 * says "not seen": a duplicate line beats a missing one. */
static bool seen_before(struct seen *s, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ids[i].dev == dev && s->ids[i].ino == ino)
			return true;
	if (s->n == s->alloc) {
		size_t alloc = s->alloc ? s->alloc * 2 : 32;
		void *ids = realloc(s->ids, alloc * sizeof(*s->ids));

		if (!ids)
			return false;
		s->ids = ids;
		s->alloc = alloc;
	}
	s->ids[s->n].dev = dev;
	s->ids[s->n].ino = ino;
	s->n++;
	return false;
}

int tr_mailbox_scan(pid_t pid, size_t preview, struct tr_mailbox_set *out)
{
	struct seen seen = { 0 };
	struct pidfd_state pf = { .fd = -1 };
	struct tr_endpoint_cache *cache = NULL;
	struct dirent *de;
	struct stat st;
	DIR *dir = NULL;
	char path[64];
	int dfd = -1, err = 0;

	if (!out)
		return -EINVAL;
	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		err = errno == ENOENT ? -ESRCH : -errno;
		goto out;
	}
	dir = fdopendir(dfd);
	if (!dir) {
		err = -errno;
		goto out;
	}
	dfd = -1;   /* owned by dir now */
	/* one scan's own cache: sockets are looked up once and the netlink socket reused;
	 * without memory for it, resolve still works uncached */
	cache = tr_endpoint_cache_new();
	for (;;) {
		char *end;
		long fd;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			if (errno)
				err = -errno;
			break;
		}
		fd = strtol(de->d_name, &end, 10);
		if (*end || end == de->d_name || fd < 0 || fd > INT_MAX)
			continue;   /* "." and ".." */
		/* stat follows the magic link to the object itself; failing, the fd is gone */
		if (fstatat(dirfd(dir), de->d_name, &st, 0) < 0 ||
		    seen_before(&seen, st.st_dev, st.st_ino))
			continue;
		err = scan_fd(pid, fd, preview, cache, &pf, out);
		if (err)
			break;   /* only -ENOMEM gets here: what was appended stays in the set */
	}
out:
	free(seen.ids);
	tr_endpoint_cache_free(cache);
	if (pf.fd >= 0)
		close(pf.fd);
	if (dir)
		closedir(dir);
	if (dfd >= 0)
		close(dfd);
	return err;
}

int tr_mailbox_sysv(int64_t msqid, size_t preview, struct tr_mailbox_set *out)
{
	struct msqid_ds ds;
	struct entry e;
	char name[64];
	struct {
		long mtype;
		uint8_t mtext[];
	} *msg = NULL;
	ssize_t n;
	int err = 0;

	if (!out)
		return -EINVAL;
	if (msqid < 0 || msqid > INT_MAX)
		return -EINVAL;
	tr_endpoint_sysv(msqid, name, sizeof(name));
	entry_init(&e, msqid, name, -1);
	/* the queue id is looked up in our IPC namespace, which is the program's unless it
	 * unshared one */
	if (msgctl((int)msqid, IPC_STAT, &ds) < 0) {
		err = -errno;
		goto out;
	}
	if (ds.msg_qnum == 0)
		goto out;
	e.messages = (int64_t)ds.msg_qnum;
	e.pending = (int64_t)ds.msg_cbytes;
	if (!preview)
		goto record;
	/* One byte more than the preview: a message that fills it all was cut (MSG_NOERROR
	 * truncates silently), one that does not was whole. */
	msg = malloc(sizeof(*msg) + preview + 1);
	if (!msg) {
		err = -ENOMEM;
		goto out;
	}
	/* MSG_COPY: msgtyp is an index, the message stays queued; it needs IPC_NOWAIT and a
	 * kernel with CONFIG_CHECKPOINT_RESTORE (else ENOSYS) */
	n = msgrcv((int)msqid, msg, preview + 1, 0, MSG_COPY | IPC_NOWAIT | MSG_NOERROR);
	if (n < 0) {
		if (errno == ENOMSG)
			goto record;   /* emptied meanwhile: keep the counts we read */
		entry_error(&e, "msgrcv(MSG_COPY)", errno);
		goto record;
	}
	e.data_len = (size_t)n < preview ? (size_t)n : preview;
	e.truncated = (size_t)n > preview;
	e.data = malloc(e.data_len ? e.data_len : 1);
	if (!e.data) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(e.data, msg->mtext, e.data_len);
record:
	err = append(out, &e);
out:
	free(e.data);
	free(msg);
	return err;
}

void tr_mailbox_set_free(struct tr_mailbox_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++) {
		free((void *)set->items[i].endpoint);
		free((void *)set->items[i].error);
		free((void *)set->items[i].data);
	}
	free(set->items);
	set->items = NULL;
	set->n = set->alloc = 0;
}
