/* test_endpoint.c - endpoint names of real kernel objects held by another process.
 *
 * A forked child makes pipes, FIFOs, unix/TCP/UDP sockets, a POSIX queue and plain files,
 * computes the names the resolver should give them from getsockname/getpeername/fstat (not
 * with endpoint.c's code), sends (fd, kind, name, inode) rows to the parent and sleeps until
 * killed. The fini kills and reaps it, so a failed assertion never leaks a process. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <mqueue.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "endpoint.h"

#define EP_MAX_CASES 48

struct ep_case {
	int fd;
	int kind;
	bool check_name;        /* false: the name is not fully predictable, check kind only */
	uint64_t inode;
	char label[32];
	char name[320];
};

struct ep_report {
	int n;
	int status;             /* 0 ok, else the child's errno during setup */
	char where[64];         /* what failed in the child */
	struct ep_case c[EP_MAX_CASES];
};

static pid_t ep_child = -1;
static struct ep_report ep_rep;

static char *ep_path(char *buf, size_t size, const char *what, pid_t pid)
{
	snprintf(buf, size, "/tmp/tracer-test-ep-%d.%s", (int)pid, what);
	return buf;
}

static void ep_fini(void)
{
	char path[108];

	if (ep_child > 0) {
		kill(ep_child, SIGKILL);
		waitpid(ep_child, NULL, 0);
		unlink(ep_path(path, sizeof(path), "sock", ep_child));
		unlink(ep_path(path, sizeof(path), "fifo", ep_child));
		snprintf(path, sizeof(path), "/tracer-test-%d", (int)ep_child);
		mq_unlink(path);
	}
	ep_child = -1;
}

/* ---- the child's side: make objects, write down what they should be called ---------- */

static uint64_t ep_ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static struct ep_case *ep_add(struct ep_report *r, const char *label, int fd, int kind)
{
	struct ep_case *c = &r->c[r->n++];

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->kind = kind;
	c->check_name = true;
	c->inode = ep_ino(fd);
	snprintf(c->label, sizeof(c->label), "%s", label);
	return c;
}

/* A unix address the way the report shows it: path, "@abstract" or "[inode]". */
static void ep_unix_addr(char *buf, size_t size, const struct sockaddr_un *a, socklen_t len,
			 uint64_t ino)
{
	size_t n = len > offsetof(struct sockaddr_un, sun_path) ?
		   len - offsetof(struct sockaddr_un, sun_path) : 0;

	if (!n)
		snprintf(buf, size, "[%llu]", (unsigned long long)ino);
	else if (a->sun_path[0] == '\0')
		snprintf(buf, size, "@%.*s", (int)n - 1, a->sun_path + 1);
	else
		snprintf(buf, size, "%s", a->sun_path);
}

/* peer < 0: no peer (listening or unconnected) */
static void ep_add_unix(struct ep_report *r, const char *label, int fd, int peer)
{
	struct ep_case *c = ep_add(r, label, fd, TR_EP_UNIX);
	struct sockaddr_un a;
	socklen_t len = sizeof(a);
	char own[128], other[128];

	getsockname(fd, (struct sockaddr *)&a, &len);
	ep_unix_addr(own, sizeof(own), &a, len, c->inode);
	if (peer < 0) {
		snprintf(c->name, sizeof(c->name), "unix:%s", own);
		return;
	}
	len = sizeof(a);
	getpeername(fd, (struct sockaddr *)&a, &len);
	ep_unix_addr(other, sizeof(other), &a, len, ep_ino(peer));
	snprintf(c->name, sizeof(c->name), "unix:%s->%s", own, other);
}

static void ep_inet_addr(char *buf, size_t size, const struct sockaddr_storage *ss)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, size, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, size, "%s:%u", a, ntohs(s4->sin_port));
	}
}

static void ep_add_inet(struct ep_report *r, const char *label, int fd, int kind, bool connected)
{
	struct ep_case *c = ep_add(r, label, fd, kind);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char local[80], remote[80];
	const char *proto = kind == TR_EP_TCP ? "tcp" : "udp";

	getsockname(fd, (struct sockaddr *)&ss, &len);
	ep_inet_addr(local, sizeof(local), &ss);
	if (!connected) {
		snprintf(c->name, sizeof(c->name), "%s:%s", proto, local);
		return;
	}
	len = sizeof(ss);
	getpeername(fd, (struct sockaddr *)&ss, &len);
	ep_inet_addr(remote, sizeof(remote), &ss);
	snprintf(c->name, sizeof(c->name), "%s:%s->%s", proto, local, remote);
}

/* listener, client, accepted for family on its loopback; -1 on failure */
static int ep_tcp(int family, int *ls, int *cl, int *sv)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

	if (family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*ls = socket(family, SOCK_STREAM, 0);
	*cl = socket(family, SOCK_STREAM, 0);
	if (*ls < 0 || *cl < 0 || bind(*ls, (struct sockaddr *)&ss, len) || listen(*ls, 4) ||
	    getsockname(*ls, (struct sockaddr *)&ss, &len) ||
	    connect(*cl, (struct sockaddr *)&ss, len))
		return -1;
	*sv = accept(*ls, NULL, NULL);
	return *sv < 0 ? -1 : 0;
}

/* a bound unconnected UDP socket and a second one connected to it */
static int ep_udp(int family, int *bound, int *conn)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

	if (family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*bound = socket(family, SOCK_DGRAM, 0);
	*conn = socket(family, SOCK_DGRAM, 0);
	if (*bound < 0 || *conn < 0 || bind(*bound, (struct sockaddr *)&ss, len) ||
	    getsockname(*bound, (struct sockaddr *)&ss, &len) ||
	    connect(*conn, (struct sockaddr *)&ss, len))
		return -1;
	return 0;
}

static int ep_unix_server(const struct sockaddr_un *a, socklen_t len, int *ls, int *cl, int *sv)
{
	*ls = socket(AF_UNIX, SOCK_STREAM, 0);
	*cl = socket(AF_UNIX, SOCK_STREAM, 0);
	if (*ls < 0 || *cl < 0 || bind(*ls, (const struct sockaddr *)a, len) || listen(*ls, 4) ||
	    connect(*cl, (const struct sockaddr *)a, len))
		return -1;
	*sv = accept(*ls, NULL, NULL);
	return *sv < 0 ? -1 : 0;
}

#define EP_TRY(what, expr)                                                        \
	do {                                                                      \
		if ((expr) < 0) {                                                 \
			r->status = errno ? errno : EIO;                          \
			snprintf(r->where, sizeof(r->where), "%s", what);         \
			return;                                                   \
		}                                                                 \
	} while (0)

static void ep_make_objects(struct ep_report *r)
{
	char path[108];
	int p[2], sp[2], dp[2], ls, cl, sv, fd, b, c;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	socklen_t unlen;
	ssize_t n;

	EP_TRY("pipe", pipe(p));
	snprintf(ep_add(r, "pipe read end", p[0], TR_EP_PIPE)->name, 256, "pipe:[%llu]",
		 (unsigned long long)ep_ino(p[0]));
	snprintf(ep_add(r, "pipe write end", p[1], TR_EP_PIPE)->name, 256, "pipe:[%llu]",
		 (unsigned long long)ep_ino(p[1]));

	ep_path(path, sizeof(path), "fifo", getpid());
	EP_TRY("mkfifo", mkfifo(path, 0600));
	EP_TRY("open fifo", fd = open(path, O_RDWR));
	snprintf(ep_add(r, "fifo", fd, TR_EP_FIFO)->name, 256, "fifo:%s", path);

	EP_TRY("socketpair stream", socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
	ep_add_unix(r, "socketpair a", sp[0], sp[1]);
	ep_add_unix(r, "socketpair b", sp[1], sp[0]);
	EP_TRY("socketpair dgram", socketpair(AF_UNIX, SOCK_DGRAM, 0, dp));
	ep_add_unix(r, "dgram pair", dp[0], dp[1]);

	ep_path(un.sun_path, sizeof(un.sun_path), "sock", getpid());
	EP_TRY("unix server", ep_unix_server(&un, sizeof(un), &ls, &cl, &sv));
	ep_add_unix(r, "unix listener", ls, -1);
	ep_add_unix(r, "unix client", cl, sv);
	ep_add_unix(r, "unix accepted", sv, cl);

	memset(un.sun_path, 0, sizeof(un.sun_path));
	unlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			    (size_t)snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1,
					     "tracer-test-ep-%d", (int)getpid()));
	EP_TRY("abstract server", ep_unix_server(&un, unlen, &ls, &cl, &sv));
	ep_add_unix(r, "abstract listener", ls, -1);
	ep_add_unix(r, "abstract client", cl, sv);
	ep_add_unix(r, "abstract accepted", sv, cl);

	EP_TRY("unbound dgram", fd = socket(AF_UNIX, SOCK_DGRAM, 0));
	ep_add_unix(r, "unbound unix dgram", fd, -1);

	EP_TRY("tcp", ep_tcp(AF_INET, &ls, &cl, &sv));
	ep_add_inet(r, "tcp listener", ls, TR_EP_TCP, false);
	ep_add_inet(r, "tcp client", cl, TR_EP_TCP, true);
	ep_add_inet(r, "tcp accepted", sv, TR_EP_TCP, true);
	if (ep_tcp(AF_INET6, &ls, &cl, &sv) == 0) {   /* only where ::1 exists */
		ep_add_inet(r, "tcp6 listener", ls, TR_EP_TCP, false);
		ep_add_inet(r, "tcp6 client", cl, TR_EP_TCP, true);
		ep_add_inet(r, "tcp6 accepted", sv, TR_EP_TCP, true);
	}
	EP_TRY("fresh tcp", fd = socket(AF_INET, SOCK_STREAM, 0));
	ep_add(r, "unbound tcp", fd, TR_EP_TCP)->check_name = false;

	EP_TRY("udp", ep_udp(AF_INET, &b, &c));
	ep_add_inet(r, "udp bound", b, TR_EP_UDP, false);
	ep_add_inet(r, "udp connected", c, TR_EP_UDP, true);
	if (ep_udp(AF_INET6, &b, &c) == 0) {
		ep_add_inet(r, "udp6 bound", b, TR_EP_UDP, false);
		ep_add_inet(r, "udp6 connected", c, TR_EP_UDP, true);
	}

	EP_TRY("netlink", fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
	snprintf(ep_add(r, "netlink", fd, TR_EP_SOCKET)->name, 256, "socket:[%llu]",
		 (unsigned long long)ep_ino(fd));

	snprintf(path, sizeof(path), "/tracer-test-%d", (int)getpid());
	EP_TRY("mq_open", fd = mq_open(path, O_CREAT | O_RDWR, 0600, NULL));
	snprintf(ep_add(r, "posix mq", fd, TR_EP_MQ)->name, 256, "mq:%s", path);

	EP_TRY("regular file", fd = open("/proc/self/exe", O_RDONLY));
	EP_TRY("readlink", n = readlink("/proc/self/exe", path, sizeof(path) - 1));
	path[n] = '\0';
	snprintf(ep_add(r, "regular file", fd, TR_EP_NOT_IPC)->name, 256, "%s", path);
	EP_TRY("/dev/null", fd = open("/dev/null", O_WRONLY));
	snprintf(ep_add(r, "/dev/null", fd, TR_EP_NOT_IPC)->name, 256, "/dev/null");
	EP_TRY("eventfd", fd = eventfd(0, 0));
	snprintf(ep_add(r, "eventfd", fd, TR_EP_NOT_IPC)->name, 256, "anon_inode:[eventfd]");
}

/* Brings up lo in a fresh network namespace (root only). */
static int ep_netns(void)
{
	struct ifreq ifr = { 0 };
	int s, rc;

	if (unshare(CLONE_NEWNET) < 0)
		return -1;
	s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	rc = ioctl(s, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (rc == 0)
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
	return rc;
}

/* Objects in a namespace our netlink socket cannot see: /proc/PID/net must name them.
 * /proc/net/unix has no peers, so a unix socket there is named by itself alone. */
static void ep_make_netns_objects(struct ep_report *r)
{
	int ls, cl, sv, b, c, sp[2];

	EP_TRY("netns", ep_netns());
	EP_TRY("tcp", ep_tcp(AF_INET, &ls, &cl, &sv));
	ep_add_inet(r, "netns tcp listener", ls, TR_EP_TCP, false);
	ep_add_inet(r, "netns tcp client", cl, TR_EP_TCP, true);
	ep_add_inet(r, "netns tcp accepted", sv, TR_EP_TCP, true);
	EP_TRY("udp", ep_udp(AF_INET, &b, &c));
	ep_add_inet(r, "netns udp bound", b, TR_EP_UDP, false);
	ep_add_inet(r, "netns udp connected", c, TR_EP_UDP, true);
	EP_TRY("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
	ep_add_unix(r, "netns socketpair", sp[0], -1);
}

/* ---- the parent's side ------------------------------------------------------------- */

static int ep_read_all(int fd, void *buf, size_t len)
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

/* Forks the child running make(); fills ep_rep. Assertions only after ep_child is set, so
 * the fini reaps it whatever happens. */
static void ep_spawn(void (*make)(struct ep_report *))
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	ep_child = fork();
	cr_assert_geq(ep_child, 0);
	if (ep_child == 0) {
		static struct ep_report r;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		make(&r);
		if (write(p[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	memset(&ep_rep, 0, sizeof(ep_rep));
	cr_assert_eq(ep_read_all(p[0], &ep_rep, sizeof(ep_rep)), 0, "child did not report");
	close(p[0]);
}

static void ep_check_all(struct tr_endpoint_cache *cache)
{
	for (int i = 0; i < ep_rep.n; i++) {
		const struct ep_case *c = &ep_rep.c[i];
		char name[320];
		uint64_t ino = 1;
		int kind = tr_endpoint_resolve(cache, ep_child, c->fd, name, sizeof(name), &ino);

		cr_expect_eq(kind, c->kind, "%s (fd %d): kind %d, want %d (%s)", c->label, c->fd,
			     kind, c->kind, name);
		if (c->check_name)
			cr_expect_str_eq(name, c->name, "%s (fd %d)", c->label, c->fd);
		cr_expect_eq(ino, c->inode, "%s (fd %d): inode %llu, want %llu", c->label, c->fd,
			     (unsigned long long)ino, (unsigned long long)c->inode);
	}
}

Test(endpoint, names_of_kernel_objects, .fini = ep_fini, .timeout = 60)
{
	struct tr_endpoint_cache *cache = tr_endpoint_cache_new();

	ep_spawn(ep_make_objects);
	cr_assert_eq(ep_rep.status, 0, "child setup failed at %s: %s", ep_rep.where,
		     strerror(ep_rep.status));
	cr_assert_not_null(cache);
	ep_check_all(cache);       /* first pass: misses */
	ep_check_all(cache);       /* second pass: cache hits must say the same */
	ep_check_all(NULL);        /* and so must no cache at all */
	tr_endpoint_cache_free(cache);
}

Test(endpoint, other_network_namespace, .fini = ep_fini, .timeout = 60)
{
	struct tr_endpoint_cache *cache = tr_endpoint_cache_new();

	ep_spawn(ep_make_netns_objects);
	if (ep_rep.status == EPERM || ep_rep.status == ENOSYS || ep_rep.status == EINVAL) {
		tr_endpoint_cache_free(cache);
		cr_skip_test("cannot make a network namespace here: %s", strerror(ep_rep.status));
	}
	cr_assert_eq(ep_rep.status, 0, "child setup failed at %s: %s", ep_rep.where,
		     strerror(ep_rep.status));
	ep_check_all(cache);
	ep_check_all(cache);
	tr_endpoint_cache_free(cache);
}

Test(endpoint, missing_fd_and_process, .fini = ep_fini, .timeout = 30)
{
	char name[64] = "junk";
	uint64_t ino = 7;
	pid_t dead;

	cr_assert_eq(tr_endpoint_resolve(NULL, getpid(), 999999, name, sizeof(name), &ino), -EBADF);
	cr_expect_str_eq(name, "");
	cr_expect_eq(ino, 0);
	cr_assert_eq(tr_endpoint_resolve(NULL, getpid(), -1, name, sizeof(name), NULL), -EBADF);
	cr_assert_eq(tr_endpoint_resolve(NULL, 0, 0, name, sizeof(name), NULL), -ESRCH);
	cr_assert_eq(tr_endpoint_resolve(NULL, -5, 0, name, sizeof(name), NULL), -ESRCH);

	dead = fork();
	cr_assert_geq(dead, 0);
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	cr_assert_eq(tr_endpoint_resolve(NULL, dead, 0, name, sizeof(name), NULL), -ESRCH);
	cr_assert_eq(tr_endpoint_resolve(NULL, 0x7ffffff0, 1, name, sizeof(name), NULL), -ESRCH);
}

Test(endpoint, name_cut_to_size, .timeout = 30)
{
	struct tr_endpoint_cache *cache = tr_endpoint_cache_new();
	char name[8], full[64], sp_name[8];
	int p[2], sp[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	cr_assert_eq(tr_endpoint_resolve(cache, getpid(), p[0], full, sizeof(full), NULL), TR_EP_PIPE);
	cr_assert_eq(tr_endpoint_resolve(cache, getpid(), p[0], name, sizeof(name), NULL), TR_EP_PIPE);
	cr_expect_eq(strlen(name), sizeof(name) - 1);
	cr_expect_eq(strncmp(name, full, sizeof(name) - 1), 0);
	/* a short buffer must not shorten what the cache keeps */
	cr_assert_eq(tr_endpoint_resolve(cache, getpid(), sp[0], sp_name, sizeof(sp_name), NULL),
		     TR_EP_UNIX);
	cr_expect_eq(strlen(sp_name), sizeof(sp_name) - 1);
	cr_expect_eq(strncmp(sp_name, "unix:[", 6), 0, "%s", sp_name);
	cr_assert_eq(tr_endpoint_resolve(cache, getpid(), sp[0], full, sizeof(full), NULL), TR_EP_UNIX);
	cr_expect(strstr(full, "->[") != NULL, "%s", full);
	/* size 0 and NULL name are allowed */
	cr_assert_eq(tr_endpoint_resolve(cache, getpid(), p[1], NULL, 0, NULL), TR_EP_PIPE);
	close(p[0]);
	close(p[1]);
	close(sp[0]);
	close(sp[1]);
	tr_endpoint_cache_free(cache);
}

Test(endpoint, sysv_and_kind_names)
{
	char name[32];

	tr_endpoint_sysv(42, name, sizeof(name));
	cr_expect_str_eq(name, "sysv:42");
	tr_endpoint_sysv(123456, name, 6);
	cr_expect_str_eq(name, "sysv:");
	cr_expect_str_eq(tr_endpoint_kind_name(TR_EP_PIPE), "pipe");
	cr_expect_str_eq(tr_endpoint_kind_name(TR_EP_FIFO), "fifo");
	cr_expect_str_eq(tr_endpoint_kind_name(TR_EP_UNIX), "unix");
	cr_expect_str_eq(tr_endpoint_kind_name(TR_EP_TCP), "tcp");
	cr_expect_str_eq(tr_endpoint_kind_name(TR_EP_UDP), "udp");
	cr_expect_str_eq(tr_endpoint_kind_name(TR_EP_SOCKET), "socket");
	cr_expect_str_eq(tr_endpoint_kind_name(TR_EP_MQ), "mq");
	cr_expect_str_eq(tr_endpoint_kind_name(TR_EP_SYSV), "sysv");
	cr_expect_str_eq(tr_endpoint_kind_name(TR_EP_NOT_IPC), "not-ipc");
}

/* More sockets than the cache holds: it resets and keeps answering right. */
Test(endpoint, cache_survives_reset, .timeout = 60)
{
	enum { PAIRS = 1700 };   /* 3400 connected sockets: past the cache's 3072-entry limit */
	static int sp[PAIRS][2];
	struct tr_endpoint_cache *cache = tr_endpoint_cache_new();
	char name[64], want[64];
	struct rlimit rl;
	int made = 0;

	cr_assert_not_null(cache);
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2 * PAIRS + 64) {
		rl.rlim_cur = 2 * PAIRS + 64;
		if (rl.rlim_max < rl.rlim_cur || setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			tr_endpoint_cache_free(cache);
			cr_skip_test("needs %d fds", 2 * PAIRS + 64);
		}
	}
	for (; made < PAIRS; made++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp[made]) < 0)
			break;
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < made; i++)
			for (int j = 0; j < 2; j++) {
				struct stat a, b;

				fstat(sp[i][j], &a);
				fstat(sp[i][1 - j], &b);
				snprintf(want, sizeof(want), "unix:[%llu]->[%llu]",
					 (unsigned long long)a.st_ino, (unsigned long long)b.st_ino);
				cr_assert_eq(tr_endpoint_resolve(cache, getpid(), sp[i][j], name,
								 sizeof(name), NULL), TR_EP_UNIX);
				cr_assert_str_eq(name, want);
			}
	for (int i = 0; i < made; i++) {
		close(sp[i][0]);
		close(sp[i][1]);
	}
	tr_endpoint_cache_free(cache);
	cr_expect_eq(made, PAIRS, "only %d socket pairs could be made", made);
}
