/* test_mailbox.c - pending bytes of another process's pipes, sockets and queues, read without
 * consuming them.
 *
 * A forked child fills real kernel objects with known bytes and never reads them, sends the
 * parent (fd, what should be pending) rows, and waits. The parent scans; then it tells the
 * child to drain everything and send back what it read, which must be every byte written:
 * the scan consumed nothing. The fini kills and reaps the child whatever happened. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "endpoint.h"
#include "mailbox.h"

#define MB_MAX_CASES 40

enum mb_drain {
	MB_NONE,        /* nothing to give back */
	MB_READ,        /* the child read()s until EAGAIN */
	MB_RECV,        /* the child recv()s datagrams until EAGAIN */
	MB_MQ,          /* the child mq_receive()s until EAGAIN */
	MB_VIA_PROC,    /* the child holds only the write end: the parent reads via /proc */
};

struct mb_case {
	int fd;
	char label[32];
	bool listed;            /* the scan must report it */
	bool datagram;          /* pending is the next datagram's size */
	int64_t pending, messages;
	char first[64];         /* what a full preview shows */
	size_t first_len;
	enum mb_drain drain;
	char all[96];           /* everything queued: what draining must give back */
	size_t all_len;
};

struct mb_report {
	int n;
	int status;
	pid_t tid;              /* a second thread of the child */
	char where[64];
	struct mb_case c[MB_MAX_CASES];
};

struct mb_reply {
	size_t len[MB_MAX_CASES];
	char got[MB_MAX_CASES][128];
};

static pid_t mb_child = -1, mb_scanner = -1;
static int mb_cmd = -1, mb_back = -1;     /* parent -> child, child -> parent */
static int mb_msqid = -1;
static struct mb_report mb_rep;

static char *mb_path(char *buf, size_t size, const char *what, pid_t pid)
{
	snprintf(buf, size, "/tmp/tracer-test-mb-%d.%s", (int)pid, what);
	return buf;
}

static void mb_fini(void)
{
	char path[108];

	if (mb_scanner > 0) {
		kill(mb_scanner, SIGKILL);
		waitpid(mb_scanner, NULL, 0);
	}
	if (mb_child > 0) {
		kill(mb_child, SIGKILL);
		waitpid(mb_child, NULL, 0);
		unlink(mb_path(path, sizeof(path), "sock", mb_child));
		unlink(mb_path(path, sizeof(path), "fifo", mb_child));
		unlink(mb_path(path, sizeof(path), "file", mb_child));
		snprintf(path, sizeof(path), "/tracer-test-%d", (int)mb_child);
		mq_unlink(path);
	}
	if (mb_msqid >= 0)
		msgctl(mb_msqid, IPC_RMID, NULL);
	if (mb_cmd >= 0)
		close(mb_cmd);
	if (mb_back >= 0)
		close(mb_back);
	mb_child = mb_scanner = -1;
	mb_cmd = mb_back = mb_msqid = -1;
}

/* ---- the child's side ---------------------------------------------------------------- */

static struct mb_case *mb_add(struct mb_report *r, const char *label, int fd, bool listed,
			      enum mb_drain drain)
{
	struct mb_case *c = &r->c[r->n++];

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->listed = listed;
	c->drain = drain;
	c->messages = -1;
	snprintf(c->label, sizeof(c->label), "%s", label);
	return c;
}

/* a byte stream holding exactly `bytes` */
static void mb_stream(struct mb_case *c, const char *bytes)
{
	c->pending = (int64_t)strlen(bytes);
	c->first_len = c->all_len = strlen(bytes);
	memcpy(c->first, bytes, c->first_len);
	memcpy(c->all, bytes, c->all_len);
}

/* a datagram queue holding d1 then d2 */
static void mb_datagrams(struct mb_case *c, const char *d1, const char *d2)
{
	c->datagram = true;
	c->pending = (int64_t)strlen(d1);
	c->first_len = strlen(d1);
	memcpy(c->first, d1, c->first_len);
	c->all_len = (size_t)snprintf(c->all, sizeof(c->all), "%s%s", d1, d2);
}

/* Waits until the kernel shows `want` bytes queued on fd (loopback TCP/UDP deliver in
 * softirq context; normally at once). */
static int mb_wait_queued(int fd, int want)
{
	for (int i = 0; i < 2000; i++) {
		int n = 0;

		if (ioctl(fd, FIONREAD, &n) == 0 && n >= want)
			return 0;
		usleep(1000);
	}
	errno = ETIMEDOUT;
	return -1;
}

static int mb_send_all(int fd, const char *s)
{
	return write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
}

#define MB_TRY(what, expr)                                                        \
	do {                                                                      \
		if ((expr) < 0) {                                                 \
			r->status = errno ? errno : EIO;                          \
			snprintf(r->where, sizeof(r->where), "%s", what);         \
			return;                                                   \
		}                                                                 \
	} while (0)

static void mb_make_objects(struct mb_report *r)
{
	char path[108];
	int a[2], b[2], c[2], d[2], sp[2], dp[2], es[2], fd, ls, cl, sv, extra;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(in);
	struct mq_attr attr = { .mq_maxmsg = 4, .mq_msgsize = 64 };
	mqd_t q, qw;

	MB_TRY("pipe a", pipe2(a, O_NONBLOCK));
	MB_TRY("write a", mb_send_all(a[1], "pipe-data-0123456789"));
	mb_stream(mb_add(r, "pipe read end", a[0], true, MB_READ), "pipe-data-0123456789");
	/* the same pipe: listed once, under the lower fd */
	mb_add(r, "pipe write end", a[1], false, MB_NONE);

	MB_TRY("pipe b", pipe2(b, O_NONBLOCK));
	MB_TRY("write b", mb_send_all(b[1], "only-the-write-end"));
	close(b[0]);
	mb_stream(mb_add(r, "pipe, write end only", b[1], true, MB_VIA_PROC), "only-the-write-end");

	MB_TRY("pipe c", pipe2(c, O_NONBLOCK));
	mb_add(r, "empty pipe read end", c[0], false, MB_NONE);
	mb_add(r, "empty pipe write end", c[1], false, MB_NONE);

	mb_path(path, sizeof(path), "fifo", getpid());
	MB_TRY("mkfifo", mkfifo(path, 0600));
	MB_TRY("open fifo", fd = open(path, O_RDWR | O_NONBLOCK));
	MB_TRY("write fifo", mb_send_all(fd, "fifo bytes"));
	mb_stream(mb_add(r, "fifo", fd, true, MB_READ), "fifo bytes");

	/* three writes: the kernel queues three buffers, the preview must span them */
	MB_TRY("packet pipe", pipe2(d, O_NONBLOCK | O_DIRECT));
	MB_TRY("write packet", mb_send_all(d[1], "ab"));
	MB_TRY("write packet", mb_send_all(d[1], "cd"));
	MB_TRY("write packet", mb_send_all(d[1], "ef"));
	mb_stream(mb_add(r, "packet pipe read end", d[0], true, MB_READ), "abcdef");
	mb_add(r, "packet pipe write end", d[1], false, MB_NONE);

	MB_TRY("socketpair", socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp));
	MB_TRY("write socketpair", mb_send_all(sp[0], "stream "));
	MB_TRY("write socketpair", mb_send_all(sp[0], "pair bytes"));
	mb_add(r, "socketpair writer", sp[0], false, MB_NONE);
	mb_stream(mb_add(r, "socketpair reader", sp[1], true, MB_READ), "stream pair bytes");
	/* a dup of the reader: one receive queue, listed once */
	MB_TRY("dup", fd = dup(sp[1]));
	mb_add(r, "socketpair reader dup", fd, false, MB_NONE);

	MB_TRY("socketpair empty", socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, es));
	mb_add(r, "empty socketpair a", es[0], false, MB_NONE);
	mb_add(r, "empty socketpair b", es[1], false, MB_NONE);

	MB_TRY("dgram pair", socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, dp));
	MB_TRY("send one", mb_send_all(dp[0], "one"));
	MB_TRY("send three", mb_send_all(dp[0], "three"));
	mb_datagrams(mb_add(r, "unix dgram reader", dp[1], true, MB_RECV), "one", "three");

	mb_path(un.sun_path, sizeof(un.sun_path), "sock", getpid());
	MB_TRY("unix listen", ls = socket(AF_UNIX, SOCK_STREAM, 0));
	MB_TRY("unix bind", bind(ls, (struct sockaddr *)&un, sizeof(un)));
	MB_TRY("unix listen", listen(ls, 4));
	MB_TRY("unix client", cl = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
	MB_TRY("unix connect", connect(cl, (struct sockaddr *)&un, sizeof(un)));
	MB_TRY("unix accept", sv = accept4(ls, NULL, NULL, SOCK_NONBLOCK));
	/* a second connection never accepted: the listener's backlog is not a mailbox */
	MB_TRY("unix client 2", extra = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
	MB_TRY("unix connect 2", connect(extra, (struct sockaddr *)&un, sizeof(un)));
	MB_TRY("unix send", mb_send_all(cl, "to the server"));
	MB_TRY("unix reply", mb_send_all(sv, "to the client!"));
	mb_add(r, "unix listener", ls, false, MB_NONE);
	mb_stream(mb_add(r, "unix accepted", sv, true, MB_READ), "to the server");
	mb_stream(mb_add(r, "unix client", cl, true, MB_READ), "to the client!");

	MB_TRY("tcp listen", ls = socket(AF_INET, SOCK_STREAM, 0));
	MB_TRY("tcp bind", bind(ls, (struct sockaddr *)&in, sizeof(in)));
	MB_TRY("tcp listen", listen(ls, 4));
	MB_TRY("tcp name", getsockname(ls, (struct sockaddr *)&in, &len));
	MB_TRY("tcp client", cl = socket(AF_INET, SOCK_STREAM, 0));
	MB_TRY("tcp connect", connect(cl, (struct sockaddr *)&in, sizeof(in)));
	MB_TRY("tcp nonblock", fcntl(cl, F_SETFL, O_NONBLOCK));
	MB_TRY("tcp accept", sv = accept4(ls, NULL, NULL, SOCK_NONBLOCK));
	MB_TRY("tcp send", mb_send_all(cl, "tcp "));
	MB_TRY("tcp send", mb_send_all(cl, "payload"));
	MB_TRY("tcp reply", mb_send_all(sv, "reply"));
	MB_TRY("tcp arrival", mb_wait_queued(sv, 11));
	MB_TRY("tcp arrival", mb_wait_queued(cl, 5));
	mb_add(r, "tcp listener", ls, false, MB_NONE);
	mb_stream(mb_add(r, "tcp accepted", sv, true, MB_READ), "tcp payload");
	mb_stream(mb_add(r, "tcp client", cl, true, MB_READ), "reply");

	in.sin_port = 0;
	MB_TRY("udp", fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0));
	MB_TRY("udp bind", bind(fd, (struct sockaddr *)&in, sizeof(in)));
	len = sizeof(in);
	MB_TRY("udp name", getsockname(fd, (struct sockaddr *)&in, &len));
	MB_TRY("udp sender", extra = socket(AF_INET, SOCK_DGRAM, 0));
	MB_TRY("udp send", sendto(extra, "udp datagram", 12, 0, (struct sockaddr *)&in, sizeof(in)));
	MB_TRY("udp send", sendto(extra, "2nd", 3, 0, (struct sockaddr *)&in, sizeof(in)));
	MB_TRY("udp arrival", mb_wait_queued(fd, 12));
	mb_datagrams(mb_add(r, "udp receiver", fd, true, MB_RECV), "udp datagram", "2nd");
	mb_add(r, "udp sender", extra, false, MB_NONE);

	snprintf(path, sizeof(path), "/tracer-test-%d", (int)getpid());
	MB_TRY("mq_open", q = mq_open(path, O_CREAT | O_RDWR | O_NONBLOCK, 0600, &attr));
	MB_TRY("mq_open write-only", qw = mq_open(path, O_WRONLY));
	MB_TRY("mq_send", mq_send(q, "m1", 2, 0));
	MB_TRY("mq_send", mq_send(q, "message-2", 9, 0));
	{
		struct mb_case *m = mb_add(r, "posix mq", q, true, MB_MQ);

		m->pending = 11;
		m->messages = 2;
		m->all_len = (size_t)snprintf(m->all, sizeof(m->all), "m1message-2");
		/* the same queue opened twice: listed once */
		mb_add(r, "posix mq, write-only", qw, false, MB_NONE);
	}

	MB_TRY("file", fd = open(mb_path(path, sizeof(path), "file", getpid()),
				 O_RDWR | O_CREAT | O_TRUNC, 0600));
	MB_TRY("file write", mb_send_all(fd, "not a message"));
	MB_TRY("file seek", lseek(fd, 0, SEEK_SET));
	mb_add(r, "regular file", fd, false, MB_NONE);
	MB_TRY("/dev/null", fd = open("/dev/null", O_RDWR));
	mb_add(r, "/dev/null", fd, false, MB_NONE);
}

static void mb_drain(const struct mb_report *r, struct mb_reply *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < r->n; i++) {
		const struct mb_case *c = &r->c[i];
		char *buf = out->got[i];
		size_t room = sizeof(out->got[i]);
		ssize_t n;

		for (;;) {
			if (c->drain == MB_READ)
				n = read(c->fd, buf + out->len[i], room - out->len[i]);
			else if (c->drain == MB_RECV)
				n = recv(c->fd, buf + out->len[i], room - out->len[i], MSG_DONTWAIT);
			else if (c->drain == MB_MQ)
				n = mq_receive(c->fd, buf + out->len[i], room - out->len[i] < 64 ?
					       0 : room - out->len[i], NULL);
			else
				break;
			if (n <= 0)
				break;
			out->len[i] += (size_t)n;
		}
	}
}

/* A thread that only says who it is: the scan may be given a thread's id. */
static void *mb_thread(void *arg)
{
	__atomic_store_n((pid_t *)arg, gettid(), __ATOMIC_RELEASE);
	for (;;)
		pause();
	return NULL;
}

/* ---- the parent's side ------------------------------------------------------------- */

static int mb_read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 10000) <= 0)
			return -1;
		n = read(fd, (char *)buf + got, len - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void mb_spawn(void)
{
	int down[2], up[2];

	cr_assert_eq(pipe2(down, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(up, O_CLOEXEC), 0);
	mb_child = fork();
	cr_assert_geq(mb_child, 0);
	if (mb_child == 0) {
		static struct mb_report r;
		static struct mb_reply reply;
		pthread_t thread;
		char cmd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(down[1]);
		close(up[0]);
		mb_make_objects(&r);
		if (!r.status && pthread_create(&thread, NULL, mb_thread, &r.tid) == 0)
			while (!__atomic_load_n(&r.tid, __ATOMIC_ACQUIRE))
				usleep(1000);
		if (write(up[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(1);
		while (read(down[0], &cmd, 1) == 1) {
			if (cmd == 'R') {
				mb_drain(&r, &reply);
				if (write(up[1], &reply, sizeof(reply)) != (ssize_t)sizeof(reply))
					_exit(1);
			}
		}
		for (;;)
			pause();
	}
	close(down[0]);
	close(up[1]);
	mb_cmd = down[1];
	mb_back = up[0];
	memset(&mb_rep, 0, sizeof(mb_rep));
	cr_assert_eq(mb_read_all(mb_back, &mb_rep, sizeof(mb_rep)), 0, "child did not report");
	cr_assert_eq(mb_rep.status, 0, "child setup failed at %s: %s", mb_rep.where,
		     strerror(mb_rep.status));
}

static const struct tr_mailbox *mb_find(const struct tr_mailbox_set *set, int fd)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->items[i].fd == fd)
			return &set->items[i];
	return NULL;
}

/* Checks every case against a scan made with `preview`. */
static void mb_check_scan(const struct tr_mailbox_set *set, size_t preview)
{
	/* one entry per IPC object: no endpoint twice (pipe, socket and queue names are unique
	 * per object) */
	for (size_t i = 0; i < set->n; i++)
		for (size_t j = i + 1; j < set->n; j++)
			cr_expect(!set->items[i].endpoint || !set->items[j].endpoint ||
				  strcmp(set->items[i].endpoint, set->items[j].endpoint),
				  "%s listed twice (fds %lld and %lld)", set->items[i].endpoint,
				  (long long)set->items[i].fd, (long long)set->items[j].fd);

	for (int i = 0; i < mb_rep.n; i++) {
		const struct mb_case *c = &mb_rep.c[i];
		const struct tr_mailbox *m = mb_find(set, c->fd);

		if (!c->listed) {
			cr_expect_null(m, "%s (fd %d) listed: pending %lld, error %s", c->label,
				       c->fd, m ? (long long)m->pending : 0LL,
				       m && m->error ? m->error : "none");
			continue;
		}
		cr_expect_not_null(m, "%s (fd %d) not listed", c->label, c->fd);
		if (!m)
			continue;
		cr_expect_null(m->error, "%s: %s", c->label, m->error);
		cr_expect_not_null(m->endpoint, "%s", c->label);
		cr_expect_eq(m->pending, c->pending, "%s: pending %lld, want %lld", c->label,
			     (long long)m->pending, (long long)c->pending);
		cr_expect_eq(m->messages, c->messages, "%s: messages %lld, want %lld", c->label,
			     (long long)m->messages, (long long)c->messages);
		if (c->messages >= 0) {   /* a POSIX queue cannot be peeked */
			cr_expect_null(m->data, "%s", c->label);
			continue;
		}
		if (!preview) {
			cr_expect_null(m->data, "%s", c->label);
			cr_expect_eq(m->data_len, 0);
			cr_expect_not(m->truncated, "%s", c->label);
			continue;
		}
		size_t want = c->first_len < preview ? c->first_len : preview;

		cr_expect_eq(m->data_len, want, "%s: %zu preview bytes, want %zu", c->label,
			     m->data_len, want);
		cr_expect(m->data && !memcmp(m->data, c->first, want), "%s: preview %.*s",
			  c->label, (int)m->data_len, m->data ? (const char *)m->data : "");
		cr_expect_eq(m->truncated, c->first_len > preview, "%s: truncated %d", c->label,
			     m->truncated);
	}
}

/* The child drains everything: each byte written must still be there. */
static void mb_check_not_consumed(void)
{
	static struct mb_reply reply;

	cr_assert_eq(write(mb_cmd, "R", 1), 1);
	cr_assert_eq(mb_read_all(mb_back, &reply, sizeof(reply)), 0, "child did not drain");
	for (int i = 0; i < mb_rep.n; i++) {
		const struct mb_case *c = &mb_rep.c[i];
		char buf[128], path[64];
		size_t len = reply.len[i];
		const char *got = reply.got[i];

		if (c->drain == MB_NONE)
			continue;
		if (c->drain == MB_VIA_PROC) {
			int fd;
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)mb_child, c->fd);
			fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
			n = read(fd, buf, sizeof(buf));
			close(fd);
			len = n > 0 ? (size_t)n : 0;
			got = buf;
		}
		cr_expect_eq(len, c->all_len, "%s: drained %zu bytes, want %zu", c->label, len,
			     c->all_len);
		cr_expect(len == c->all_len && !memcmp(got, c->all, len), "%s: drained %.*s",
			  c->label, (int)len, got);
	}
}

static int mb_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

Test(mailbox, scan_peeks_without_consuming, .fini = mb_fini, .timeout = 60)
{
	struct tr_mailbox_set set = { 0 };
	int fds_before;

	mb_spawn();
	fds_before = mb_count_fds();
	cr_assert_eq(tr_mailbox_scan(mb_child, 64, &set), 0);
	cr_expect_eq(mb_count_fds(), fds_before, "the scan leaked fds");
	mb_check_scan(&set, 64);
	/* the names come from the resolver */
	for (size_t i = 0; i < set.n; i++) {
		char name[256];

		tr_endpoint_resolve(NULL, mb_child, set.items[i].fd, name, sizeof(name), NULL);
		cr_expect_str_eq(set.items[i].endpoint, name);
	}
	tr_mailbox_set_free(&set);
	cr_expect_eq(set.n, 0);
	cr_expect_null(set.items);

	/* twice: a scan leaves everything as it found it */
	cr_assert_eq(tr_mailbox_scan(mb_child, 64, &set), 0);
	mb_check_scan(&set, 64);
	tr_mailbox_set_free(&set);
	mb_check_not_consumed();
}

Test(mailbox, preview_is_cut_to_size, .fini = mb_fini, .timeout = 60)
{
	struct tr_mailbox_set set = { 0 };

	mb_spawn();
	cr_assert_eq(tr_mailbox_scan(mb_child, 4, &set), 0);
	mb_check_scan(&set, 4);
	tr_mailbox_set_free(&set);
	cr_assert_eq(tr_mailbox_scan(mb_child, 0, &set), 0);
	mb_check_scan(&set, 0);
	tr_mailbox_set_free(&set);
	mb_check_not_consumed();
}

Test(mailbox, scan_appends_to_a_set, .fini = mb_fini, .timeout = 60)
{
	struct tr_mailbox_set set = { 0 };
	size_t first;

	mb_spawn();
	cr_assert_eq(tr_mailbox_scan(mb_child, 16, &set), 0);
	first = set.n;
	cr_assert_gt(first, 0);
	cr_assert_eq(tr_mailbox_scan(mb_child, 16, &set), 0);
	cr_expect_eq(set.n, 2 * first);
	for (size_t i = 0; i < first; i++) {
		cr_expect_eq(set.items[i].fd, set.items[first + i].fd);
		cr_expect_str_eq(set.items[i].endpoint, set.items[first + i].endpoint);
	}
	tr_mailbox_set_free(&set);
}

/* A thread's id stands for its process: pidfd_open refuses thread ids, the scan must not. */
Test(mailbox, scan_by_thread_id, .fini = mb_fini, .timeout = 60)
{
	struct tr_mailbox_set set = { 0 };

	mb_spawn();
	cr_assert_gt(mb_rep.tid, 0);
	cr_assert_neq(mb_rep.tid, mb_child);
	cr_assert_eq(tr_mailbox_scan(mb_rep.tid, 64, &set), 0);
	mb_check_scan(&set, 64);
	tr_mailbox_set_free(&set);
}

Test(mailbox, dead_process, .timeout = 30)
{
	struct tr_mailbox_set set = { 0 };
	pid_t dead = fork();

	cr_assert_geq(dead, 0);
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	cr_expect_eq(tr_mailbox_scan(dead, 64, &set), -ESRCH);
	cr_expect_eq(tr_mailbox_scan(0, 64, &set), -ESRCH);
	cr_expect_eq(set.n, 0);
	tr_mailbox_set_free(&set);
}

/* ---- kernel refusals: a scanner whose pidfd calls a seccomp filter fails ---------------- */

static int mb_deny(long nr, int err)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

struct mb_refusal_row {
	int fd;
	int64_t pending;
	size_t data_len;
	char error[96];
};

/* Scans the child from a process where syscall nr fails with err; returns the rows. */
static int mb_scan_denied(long nr, int err, struct mb_refusal_row *rows, int max)
{
	int p[2], n = 0;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	mb_scanner = fork();
	cr_assert_geq(mb_scanner, 0);
	if (mb_scanner == 0) {
		static struct mb_refusal_row out[MB_MAX_CASES];
		struct tr_mailbox_set set = { 0 };
		int count = -1;

		close(p[0]);
		if (mb_deny(nr, err) == 0 && tr_mailbox_scan(mb_child, 64, &set) == 0) {
			count = 0;
			for (size_t i = 0; i < set.n && count < MB_MAX_CASES; i++, count++) {
				out[count].fd = (int)set.items[i].fd;
				out[count].pending = set.items[i].pending;
				out[count].data_len = set.items[i].data_len;
				snprintf(out[count].error, sizeof(out[count].error), "%s",
					 set.items[i].error ? set.items[i].error : "");
			}
		}
		tr_mailbox_set_free(&set);
		if (write(p[1], &count, sizeof(count)) != sizeof(count) ||
		    (count > 0 && write(p[1], out, sizeof(out[0]) * (size_t)count) < 0))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	if (mb_read_all(p[0], &n, sizeof(n)) < 0 || n < 0 || n > max ||
	    (n > 0 && mb_read_all(p[0], rows, sizeof(rows[0]) * (size_t)n) < 0))
		n = -1;
	close(p[0]);
	waitpid(mb_scanner, NULL, 0);
	mb_scanner = -1;
	return n;
}

static void mb_check_refused(const struct mb_refusal_row *rows, int n, const char *error)
{
	for (int i = 0; i < mb_rep.n; i++) {
		const struct mb_case *c = &mb_rep.c[i];
		const struct mb_refusal_row *row = NULL;
		bool socket_case = strstr(c->label, "socket") || strstr(c->label, "unix") ||
				   strstr(c->label, "tcp") || strstr(c->label, "udp");

		for (int j = 0; j < n; j++)
			if (rows[j].fd == c->fd)
				row = &rows[j];
		if (strstr(c->label, " dup")) {
			/* the object is listed under its first fd, refused or not */
			cr_expect_null(row, "%s listed twice", c->label);
			continue;
		}
		if (socket_case) {
			/* every socket is listed, with the refusal and no count: even the
			 * empty ones, since the scan could not tell they were empty */
			cr_expect_not_null(row, "%s not listed", c->label);
			if (!row)
				continue;
			cr_expect_str_eq(row->error, error, "%s", c->label);
			cr_expect_eq(row->pending, -1, "%s", c->label);
			cr_expect_eq(row->data_len, 0, "%s", c->label);
		} else if (c->listed) {
			/* pipes and queues do not need pidfd_getfd */
			cr_expect_not_null(row, "%s not listed", c->label);
			if (row)
				cr_expect_str_eq(row->error, "", "%s", c->label);
		}
	}
}

Test(mailbox, pidfd_refusals_are_recorded, .fini = mb_fini, .timeout = 60)
{
	static struct mb_refusal_row rows[MB_MAX_CASES];
	int n;

	mb_spawn();
	n = mb_scan_denied(SYS_pidfd_getfd, EPERM, rows, MB_MAX_CASES);
	cr_assert_geq(n, 0, "scanner failed");
	mb_check_refused(rows, n, "pidfd_getfd: Operation not permitted");
	n = mb_scan_denied(SYS_pidfd_open, ENOSYS, rows, MB_MAX_CASES);
	cr_assert_geq(n, 0, "scanner failed");
	mb_check_refused(rows, n, "pidfd_open: Function not implemented");
	mb_check_not_consumed();
}

/* ---- SysV queues ------------------------------------------------------------------------ */

struct mb_msg {
	long mtype;
	char mtext[64];
};

static void mb_msgsnd(int q, long type, const char *text)
{
	struct mb_msg m = { .mtype = type };

	snprintf(m.mtext, sizeof(m.mtext), "%s", text);
	cr_assert_eq(msgsnd(q, &m, strlen(text), IPC_NOWAIT), 0, "msgsnd: %s", strerror(errno));
}

Test(mailbox, sysv_queue_copied_not_taken, .fini = mb_fini)
{
	struct tr_mailbox_set set = { 0 };
	struct mb_msg m;
	char name[32];

	mb_msqid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	cr_assert_geq(mb_msqid, 0, "msgget: %s", strerror(errno));
	/* an empty queue has no mailbox entry */
	cr_assert_eq(tr_mailbox_sysv(mb_msqid, 64, &set), 0);
	cr_expect_eq(set.n, 0);

	mb_msgsnd(mb_msqid, 7, "first message");
	mb_msgsnd(mb_msqid, 2, "second");
	cr_assert_eq(tr_mailbox_sysv(mb_msqid, 64, &set), 0);
	cr_assert_eq(set.n, 1);
	snprintf(name, sizeof(name), "sysv:%d", mb_msqid);
	cr_expect_str_eq(set.items[0].endpoint, name);
	cr_expect_eq(set.items[0].fd, mb_msqid);
	cr_expect_eq(set.items[0].messages, 2);
	cr_expect_eq(set.items[0].pending, 19);
	if (set.items[0].error) {
		/* a kernel without CONFIG_CHECKPOINT_RESTORE: say so, show no bytes */
		cr_expect_null(set.items[0].data);
		cr_log_warn("MSG_COPY unavailable: %s", set.items[0].error);
	} else {
		cr_expect_eq(set.items[0].data_len, 13);
		cr_expect(set.items[0].data && !memcmp(set.items[0].data, "first message", 13));
		cr_expect_not(set.items[0].truncated);
	}

	/* a short preview is cut and says so; entries append */
	cr_assert_eq(tr_mailbox_sysv(mb_msqid, 5, &set), 0);
	cr_assert_eq(set.n, 2);
	if (!set.items[1].error) {
		cr_expect_eq(set.items[1].data_len, 5);
		cr_expect(set.items[1].data && !memcmp(set.items[1].data, "first", 5));
		cr_expect(set.items[1].truncated);
	}
	/* exactly the preview's length is whole, not cut */
	cr_assert_eq(tr_mailbox_sysv(mb_msqid, 13, &set), 0);
	cr_assert_eq(set.n, 3);
	if (!set.items[2].error) {
		cr_expect_eq(set.items[2].data_len, 13);
		cr_expect_not(set.items[2].truncated);
	}
	tr_mailbox_set_free(&set);

	/* both messages are still queued, in order */
	memset(&m, 0, sizeof(m));
	cr_assert_eq(msgrcv(mb_msqid, &m, sizeof(m.mtext), 0, IPC_NOWAIT), 13);
	cr_expect_eq(m.mtype, 7);
	cr_expect_eq(memcmp(m.mtext, "first message", 13), 0);
	memset(&m, 0, sizeof(m));
	cr_assert_eq(msgrcv(mb_msqid, &m, sizeof(m.mtext), 0, IPC_NOWAIT), 6);
	cr_expect_eq(memcmp(m.mtext, "second", 6), 0);
	cr_expect_eq(m.mtype, 2);

	/* a queue that is not there */
	cr_assert_eq(tr_mailbox_sysv(0x7ffffff0, 64, &set), -EINVAL);
	cr_assert_eq(tr_mailbox_sysv(-1, 64, &set), -EINVAL);
	cr_expect_eq(set.n, 0);
	tr_mailbox_set_free(&set);
}
