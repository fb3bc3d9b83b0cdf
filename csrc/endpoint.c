/* endpoint.c - what an fd of another process is connected to.
 *
 * One resolve is on the hot path of every traced read/write, so the order of work is by cost:
 *   readlink(/proc/PID/fd/FD)     "pipe:[N]" is settled here;
 *   a path                        + stat (FIFO?) and, for regular files only, statfs (an
 *                                 mqueue inode is S_IFREG; f_type tells it apart) — once
 *                                 per filesystem when there is a cache;
 *   "socket:[N]"                  + the socket cache (by inode), and only on a miss:
 *     getxattr("system.sockprotoname") on the same /proc link names the protocol ("TCP",
 *     "UDPv6", "UNIX-STREAM"...) without touching the socket, so exactly one table is
 *     searched; then NETLINK_SOCK_DIAG.
 *
 * Why sock_diag netlink rather than parsing /proc/PID/net/{unix,tcp,tcp6,udp,udp6}: measured
 * with bench/bench_endpoint.c on the 2-core, 24 GB Debian 12 VM (kernel 6.18, a handful of
 * sockets), µs per lookup, medians of three noisy runs:
 *                       netlink                   /proc/PID/net parse
 *     unix (+ peer)     13-26 (2 exact lookups)   29-54, and /proc/net/unix has no peers
 *     tcp               290-320 (dump + match)    1,600-3,900
 *     udp               17-46                     23-37
 * unix_diag looks a socket up by inode; inet_diag has no inode lookup, so TCP/UDP dump the
 * protocol's table and match the inode. A TCP dump walks every bucket of the established
 * hash, which the kernel sizes by RAM (262,144 buckets here): that walk, not the sockets, is
 * the ~300 µs, and /proc/net/tcp walks it too and formats text on top. The cache makes it a
 * once-per-connection cost. (Borrowing the fd with pidfd_getfd + getsockname/getpeername
 * would take ~8 µs, but it installs the program's socket in our process — it is no longer
 * "without touching the program" — so it is left to the mailbox snapshot.)
 * For a resolve as a whole: pipe ~3, cached socket ~3, FIFO or plain file ~6 (readlink +
 * stat), uncached unix ~21, uncached udp ~23-48, uncached tcp ~250-600.
 *
 * /proc/PID/net stays as the fallback: it shows the *process's* network namespace, while our
 * netlink socket sees the debugger's. It is read only when netlink missed and the process's
 * namespace is not ours, so the common same-namespace case never pays for it. (In another
 * namespace a unix socket is named without its peer: /proc/net/unix does not list peers.)
 *
 * The cache maps socket inode -> (kind, name) for names that cannot change any more (connected,
 * with a peer, or listening); it also keeps the netlink socket open between lookups. Not
 * thread-safe: one cache per thread. */
#define _GNU_SOURCE
#include "endpoint.h"
#include "pidfd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stddef.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef MQUEUE_MAGIC
#define MQUEUE_MAGIC 0x19800202
#endif

#define NAME_MAX_LEN 256           /* longest name kept: "unix:" + 108 + "->" + 108 fits */
#define CACHE_SLOTS 4096           /* power of two */
#define CACHE_LIMIT (CACHE_SLOTS / 4 * 3)   /* open addressing degrades past 3/4 full */
#define NL_BUF_SIZE 32768          /* the kernel caps a netlink dump skb near 32 KiB */

/* sk_state of a listening socket, TCP or unix (include/net/tcp_states.h) */
enum { ST_LISTEN = 10 };

struct cache_slot {
	uint64_t inode;                 /* 0: empty */
	int kind;
	char name[NAME_MAX_LEN];
};

struct tr_endpoint_cache {
	struct cache_slot *slots;       /* NULL: a temporary context without a cache */
	size_t used;
	int nl;                         /* sock_diag socket, -1 until first needed */
	uint32_t seq;
	char *nlbuf;                    /* NL_BUF_SIZE, allocated with the socket */
	/* filesystems already known to be (or not be) the mqueue fs: a regular file's
	 * statfs is then skipped, which is a third of a plain file's resolve */
	struct { dev_t dev; bool mq; bool set; } fs[8];
	unsigned fs_next;
};

/* What a socket lookup learned. */
struct sock_info {
	int kind;
	bool found;
	bool complete;                  /* the name can no longer change: cacheable */
	char name[NAME_MAX_LEN];
};

struct tr_endpoint_cache *tr_endpoint_cache_new(void)
{
	struct tr_endpoint_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	/* calloc: the 1.1 MiB of slots is only touched (paged in) as it fills */
	c->slots = calloc(CACHE_SLOTS, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return NULL;
	}
	c->nl = -1;
	return c;
}

static void nl_close(struct tr_endpoint_cache *c)
{
	if (c->nl >= 0)
		close(c->nl);
	c->nl = -1;
	free(c->nlbuf);
	c->nlbuf = NULL;
}

void tr_endpoint_cache_free(struct tr_endpoint_cache *c)
{
	if (!c)
		return;
	nl_close(c);
	free(c->slots);
	free(c);
}

static size_t cache_hash(uint64_t inode)
{
	/* socket inodes are a sequential counter: spread them with a multiplicative hash */
	return (size_t)((inode * 0x9E3779B97F4A7C15ull) >> 52) & (CACHE_SLOTS - 1);
}

static const struct cache_slot *cache_get(const struct tr_endpoint_cache *c, uint64_t inode)
{
	if (!c || !c->slots || !inode)
		return NULL;
	/* cache_put keeps a quarter of the slots empty, so every probe ends at one */
	for (size_t i = cache_hash(inode);; i = (i + 1) & (CACHE_SLOTS - 1)) {
		if (c->slots[i].inode == inode)
			return &c->slots[i];
		if (!c->slots[i].inode)
			return NULL;
	}
}

static void cache_put(struct tr_endpoint_cache *c, uint64_t inode, int kind, const char *name)
{
	size_t i;

	if (!c || !c->slots || !inode)
		return;
	if (c->used >= CACHE_LIMIT) {
		/* Full: forget everything. Dead sockets' entries are never removed one by one (we
		 * do not see closes), so a reset is also how they go; live ones are re-learned. */
		memset(c->slots, 0, CACHE_SLOTS * sizeof(*c->slots));
		c->used = 0;
	}
	for (i = cache_hash(inode); c->slots[i].inode && c->slots[i].inode != inode;
	     i = (i + 1) & (CACHE_SLOTS - 1))
		;
	if (!c->slots[i].inode)
		c->used++;
	c->slots[i].inode = inode;
	c->slots[i].kind = kind;
	snprintf(c->slots[i].name, sizeof(c->slots[i].name), "%s", name);
}

/* Formats into the caller's buffer (which may be absent), cut to size. */
static void __attribute__((format(printf, 3, 4))) put_name(char *name, size_t size,
							   const char *fmt, ...)
{
	va_list ap;

	if (!name || !size)
		return;
	va_start(ap, fmt);
	vsnprintf(name, size, fmt, ap);
	va_end(ap);
}

/* Appends printf-style to a fixed buffer, cutting silently. */
static void __attribute__((format(printf, 3, 4))) add(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strnlen(buf, size);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* A unix address as ss(8) shows it: abstract names start with '@', embedded NULs become '@'. */
static void add_unix_addr(char *buf, size_t size, const char *path, size_t len)
{
	char tmp[NAME_MAX_LEN];
	size_t n = 0;

	if (len > 0 && path[0] != '\0')
		len = strnlen(path, len);   /* a path name's length counts its trailing NUL */
	for (size_t i = 0; i < len && n + 1 < sizeof(tmp); i++)
		tmp[n++] = path[i] ? path[i] : '@';
	tmp[n] = '\0';
	add(buf, size, "%s", tmp);
}

/* "127.0.0.1:5000" or "[::1]:5000"; addr is in network order (4 or 16 bytes). */
static void add_inet_addr(char *buf, size_t size, int family, const void *addr, uint16_t port)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(family, addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	if (family == AF_INET6)
		add(buf, size, "[%s]:%u", a, port);
	else
		add(buf, size, "%s:%u", a, port);
}

static bool addr_is_zero(const void *addr, size_t len)
{
	const uint8_t *p = addr;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* The name of an inet socket from its addresses; local->remote once a remote is known. */
static void inet_name(struct sock_info *si, int proto, int family, const void *src,
		      uint16_t sport, const void *dst, uint16_t dport, int state)
{
	size_t alen = family == AF_INET6 ? 16 : 4;
	bool remote = dport != 0 || !addr_is_zero(dst, alen);

	si->kind = proto == IPPROTO_TCP ? TR_EP_TCP : TR_EP_UDP;
	si->name[0] = '\0';
	add(si->name, sizeof(si->name), "%s:", proto == IPPROTO_TCP ? "tcp" : "udp");
	add_inet_addr(si->name, sizeof(si->name), family, src, sport);
	if (remote && state != ST_LISTEN) {
		add(si->name, sizeof(si->name), "->");
		add_inet_addr(si->name, sizeof(si->name), family, dst, dport);
	}
	/* A listening TCP socket never connects; a connected one keeps its ends. (A UDP socket
	 * may connect() elsewhere later; the cache then shows its first peer until it resets.) */
	si->complete = remote || (proto == IPPROTO_TCP && state == ST_LISTEN);
	si->found = true;
}

/* ---- sock_diag netlink ---------------------------------------------------------------- */

static int nl_get(struct tr_endpoint_cache *c)
{
	if (c->nl >= 0)
		return 0;
	c->nlbuf = malloc(NL_BUF_SIZE);
	if (!c->nlbuf)
		return -ENOMEM;
	c->nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (c->nl < 0) {
		int err = -errno;

		nl_close(c);
		return err;
	}
	return 0;
}

static int nl_send(struct tr_endpoint_cache *c, void *req, size_t len)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct nlmsghdr *h = req;

	h->nlmsg_len = (uint32_t)len;
	h->nlmsg_seq = ++c->seq;
	if (sendto(c->nl, req, len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	return 0;
}

/* Receives one datagram of replies. sock_diag answers synchronously inside sendto() and
 * queues each further dump part during the previous recv, so a reply is always waiting:
 * MSG_DONTWAIT never blocks the debugger, and EAGAIN means something went wrong. */
static ssize_t nl_recv(struct tr_endpoint_cache *c)
{
	ssize_t n;

	do
		n = recv(c->nl, c->nlbuf, NL_BUF_SIZE, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Exact unix_diag lookup of one inode. Returns 0 and fills the pointers, or -errno
 * (-ENOENT: no unix socket with that inode in our namespace). name points into nlbuf. */
static int unix_diag_one(struct tr_endpoint_cache *c, uint64_t ino, bool want_peer,
			 const char **name, size_t *name_len, uint32_t *peer, int *state)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req = {
		.h = { .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST },
		.r = {
			.sdiag_family = AF_UNIX,
			.udiag_states = ~0u,
			.udiag_ino = (uint32_t)ino,
			.udiag_show = UDIAG_SHOW_NAME | (want_peer ? UDIAG_SHOW_PEER : 0),
			.udiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE },
		},
	};
	int err;
	ssize_t n;

	*name = NULL;
	*name_len = 0;
	*peer = 0;
	*state = 0;
	if (ino > UINT32_MAX)   /* unix_diag takes a 32-bit inode */
		return -ENOENT;
	err = nl_send(c, &req, sizeof(req));
	if (err)
		return err;
	for (;;) {
		n = nl_recv(c);
		if (n < 0)
			return (int)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)c->nlbuf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != c->seq)
				continue;   /* left over from an earlier, abandoned request */
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error ? e->error : -ENOENT;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
				continue;
			struct unix_diag_msg *m = NLMSG_DATA(h);
			int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));

			*state = m->udiag_state;
			for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen);
			     a = RTA_NEXT(a, alen)) {
				if (a->rta_type == UNIX_DIAG_NAME) {
					*name = RTA_DATA(a);
					*name_len = RTA_PAYLOAD(a);
				} else if (a->rta_type == UNIX_DIAG_PEER &&
					   RTA_PAYLOAD(a) >= (int)sizeof(uint32_t)) {
					memcpy(peer, RTA_DATA(a), sizeof(*peer));
				}
			}
			return 0;
		}
	}
}

/* unix:OWN[->PEER], OWN and PEER each a bound path / @abstract name or [inode]. */
static int unix_lookup_netlink(struct tr_endpoint_cache *c, uint64_t ino, struct sock_info *si)
{
	const char *path;
	size_t len;
	uint32_t peer;
	int state, err;

	err = nl_get(c);
	if (err)
		goto out;
	err = unix_diag_one(c, ino, true, &path, &len, &peer, &state);
	if (err)
		goto out;
	si->kind = TR_EP_UNIX;
	si->name[0] = '\0';
	add(si->name, sizeof(si->name), "unix:");
	if (len)
		add_unix_addr(si->name, sizeof(si->name), path, len);
	else
		add(si->name, sizeof(si->name), "[%" PRIu64 "]", ino);
	si->found = true;
	si->complete = state == ST_LISTEN;
	if (!peer)
		goto out;
	add(si->name, sizeof(si->name), "->");
	/* the peer's own name needs a second lookup; if it is gone already, its inode will do */
	if (unix_diag_one(c, peer, false, &path, &len, &(uint32_t){ 0 }, &state) == 0 && len)
		add_unix_addr(si->name, sizeof(si->name), path, len);
	else
		add(si->name, sizeof(si->name), "[%" PRIu32 "]", peer);
	si->complete = true;
out:
	return err;
}

/* inet_diag cannot look up by inode: dump the protocol's table and match. The dump is read
 * to its end even after the match, so the reused socket holds nothing stale. */
static int inet_lookup_netlink(struct tr_endpoint_cache *c, uint64_t ino, int family, int proto,
			       struct sock_info *si)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req = {
		.h = { .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.r = { .sdiag_family = (uint8_t)family, .sdiag_protocol = (uint8_t)proto,
		       .idiag_states = ~0u },
	};
	int err;
	ssize_t n;

	err = nl_get(c);
	if (err)
		goto out;
	err = nl_send(c, &req, sizeof(req));
	if (err)
		goto out;
	for (;;) {
		n = nl_recv(c);
		if (n < 0) {
			err = (int)n;
			goto out;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)c->nlbuf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != c->seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				goto out;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				err = e->error ? e->error : -EIO;
				goto out;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || si->found)
				continue;
			struct inet_diag_msg *m = NLMSG_DATA(h);

			if (m->idiag_inode != ino)
				continue;
			inet_name(si, proto, m->idiag_family, m->id.idiag_src,
				  ntohs(m->id.idiag_sport), m->id.idiag_dst,
				  ntohs(m->id.idiag_dport), m->idiag_state);
		}
	}
out:
	if (err)
		nl_close(c);   /* a dump abandoned midway would leave parts queued */
	return err;
}

/* ---- /proc/PID/net parsing (the process's own network namespace) ------------------------ */

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* /proc/net/tcp prints each 32-bit word of the address as a host-order %08X of its
 * network-order value: read the words back as host integers to get the original bytes. */
static bool parse_proc_addr(const char *hex, size_t len, uint8_t *out)
{
	if (len != 8 && len != 32)
		return false;
	for (size_t w = 0; w < len / 8; w++) {
		uint32_t v = 0;

		for (size_t i = 0; i < 8; i++) {
			int d = hexval(hex[w * 8 + i]);

			if (d < 0)
				return false;
			v = v << 4 | (uint32_t)d;
		}
		memcpy(out + w * 4, &v, 4);
	}
	return true;
}

static int inet_lookup_proc(pid_t pid, uint64_t ino, int family, int proto, struct sock_info *si)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/%d/net/%s%s", (int)pid,
		 proto == IPPROTO_TCP ? "tcp" : "udp", family == AF_INET6 ? "6" : "");
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		goto out;
	}
	while (getline(&line, &cap, f) > 0) {
		char src[33], dst[33];
		unsigned sport, dport, state;
		unsigned long inode;
		uint8_t s[16], d[16];

		/* sl: local:port remote:port st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, " %*d: %32[0-9A-Fa-f]:%x %32[0-9A-Fa-f]:%x %x %*x:%*x %*x:%*x %*x %*u %*d %lu",
			   src, &sport, dst, &dport, &state, &inode) != 6 || inode != ino)
			continue;
		if (!parse_proc_addr(src, strlen(src), s) || !parse_proc_addr(dst, strlen(dst), d))
			continue;
		inet_name(si, proto, family, s, (uint16_t)sport, d, (uint16_t)dport, (int)state);
		break;
	}
out:
	free(line);
	if (f)
		fclose(f);
	return err;
}

/* /proc/net/unix has no peers: the name is the socket's own address only (never cached). */
static int unix_lookup_proc(pid_t pid, uint64_t ino, struct sock_info *si)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/%d/net/unix", (int)pid);
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		goto out;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		unsigned long inode;
		int end = 0;

		/* Num RefCount Protocol Flags Type St Inode [Path] */
		if (sscanf(line, "%*x: %*x %*x %*x %*x %*x %lu%n", &inode, &end) != 1 || inode != ino)
			continue;
		while (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		while (line[end] == ' ')
			end++;
		si->kind = TR_EP_UNIX;
		si->name[0] = '\0';
		if (line[end])   /* already '@'-prefixed when abstract */
			add(si->name, sizeof(si->name), "unix:%s", line + end);
		else
			add(si->name, sizeof(si->name), "unix:[%" PRIu64 "]", ino);
		si->found = true;
		break;
	}
out:
	free(line);
	if (f)
		fclose(f);
	return err;
}

/* ---- resolve ------------------------------------------------------------------------- */

/* Is pid in another network namespace than ours (or can we not tell)? Asked only when
 * netlink missed: a socket netlink cannot find in our own namespace is in no table at all
 * (unbound, never connected), and /proc/PID/net would be the same tables, walked slower. */
static bool other_netns(pid_t pid)
{
	char path[64];
	struct stat theirs, ours;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (stat(path, &theirs) != 0 || stat("/proc/self/ns/net", &ours) != 0)
		return true;
	return theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev;
}

/* A client connected to a listener that has not accept()ed yet: its peer is an embryo with
 * no inode, so sock_diag cannot name it. Borrow the fd and ask getpeername (~8 us, only
 * until the name is complete); nothing in the program's socket changes. */
static void unix_peer_by_borrowing(pid_t pid, const char *fdpath, struct sock_info *si)
{
	const char *slash = strrchr(fdpath, '/');
	struct sockaddr_un addr;
	socklen_t len = sizeof(addr);
	int pidfd, sock;

	if (!slash || strstr(si->name, "->"))
		return;
	pidfd = tr_pidfd_open(pid);
	if (pidfd < 0)
		return;
	sock = tr_pidfd_getfd(pidfd, atoi(slash + 1));
	close(pidfd);
	if (sock < 0)
		return;
	if (getpeername(sock, (struct sockaddr *)&addr, &len) == 0 &&
	    len > offsetof(struct sockaddr_un, sun_path)) {
		add(si->name, sizeof(si->name), "->");
		add_unix_addr(si->name, sizeof(si->name), addr.sun_path,
			      len - offsetof(struct sockaddr_un, sun_path));
	}
	close(sock);
}

static int socket_lookup(struct tr_endpoint_cache *c, pid_t pid, const char *fdpath, uint64_t ino,
			 struct sock_info *si)
{
	char proto[32];
	ssize_t n;
	int family = AF_INET, ipproto;

	si->found = si->complete = false;
	if (!ino) {
		/* a malformed link: never match an inode-less (time-wait) socket by accident */
		si->kind = TR_EP_SOCKET;
		snprintf(si->name, sizeof(si->name), "socket:[?]");
		return 0;
	}
	n = getxattr(fdpath, "system.sockprotoname", proto, sizeof(proto) - 1);
	if (n < 0 && (errno == ENOENT || errno == ESRCH))
		return -errno;   /* closed meanwhile: resolve() sorts out which */
	if (n <= 0) {
		/* unknown protocol: name it by inode, but do not cache a guess */
		si->kind = TR_EP_SOCKET;
		snprintf(si->name, sizeof(si->name), "socket:[%" PRIu64 "]", ino);
		return 0;
	}
	proto[n] = '\0';
	if (!strncmp(proto, "UNIX", 4)) {
		if ((unix_lookup_netlink(c, ino, si) != 0 || !si->found) && other_netns(pid))
			unix_lookup_proc(pid, ino, si);
		else if (si->found && !si->complete)
			unix_peer_by_borrowing(pid, fdpath, si);
		if (!si->found) {
			si->kind = TR_EP_UNIX;
			snprintf(si->name, sizeof(si->name), "unix:[%" PRIu64 "]", ino);
		}
		return 0;
	}
	if (!strcmp(proto, "TCP") || !strcmp(proto, "TCPv6"))
		ipproto = IPPROTO_TCP;
	else if (!strcmp(proto, "UDP") || !strcmp(proto, "UDPv6"))
		ipproto = IPPROTO_UDP;
	else {
		/* netlink, packet, raw, UDP-Lite, MPTCP...: named by inode; the kind never changes */
		si->kind = TR_EP_SOCKET;
		snprintf(si->name, sizeof(si->name), "socket:[%" PRIu64 "]", ino);
		si->complete = si->found = true;
		return 0;
	}
	if (strchr(proto, 'v'))
		family = AF_INET6;
	if ((inet_lookup_netlink(c, ino, family, ipproto, si) != 0 || !si->found) &&
	    other_netns(pid))
		inet_lookup_proc(pid, ino, family, ipproto, si);
	if (!si->found) {
		si->kind = ipproto == IPPROTO_TCP ? TR_EP_TCP : TR_EP_UDP;
		snprintf(si->name, sizeof(si->name), "%s:[%" PRIu64 "]",
			 ipproto == IPPROTO_TCP ? "tcp" : "udp", ino);
	}
	return 0;
}

/* Is the open file (a regular inode on device dev) a POSIX message queue? */
static bool is_mqueue(struct tr_endpoint_cache *c, const char *fdpath, dev_t dev)
{
	struct statfs sf;
	bool mq;

	for (size_t i = 0; c && i < sizeof(c->fs) / sizeof(c->fs[0]); i++)
		if (c->fs[i].set && c->fs[i].dev == dev)
			return c->fs[i].mq;
	if (statfs(fdpath, &sf) != 0)
		return false;   /* closed meanwhile: let the caller call it a file */
	mq = sf.f_type == MQUEUE_MAGIC;
	if (c) {
		/* a device number names one mounted filesystem for as long as it is mounted */
		c->fs[c->fs_next].dev = dev;
		c->fs[c->fs_next].mq = mq;
		c->fs[c->fs_next].set = true;
		c->fs_next = (c->fs_next + 1) % (sizeof(c->fs) / sizeof(c->fs[0]));
	}
	return mq;
}

/* readlink said ENOENT: is it the fd or the whole process that is missing? */
static int missing(pid_t pid, int err)
{
	char path[32];
	struct stat st;

	if (err != ENOENT)
		return -err;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return stat(path, &st) == 0 ? -EBADF : -ESRCH;
}

/* Parses the N of "pipe:[N]" / "socket:[N]"; 0 if malformed. */
static uint64_t link_inode(const char *p)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(p, &end, 10);
	return errno || *end != ']' ? 0 : (uint64_t)v;
}

int tr_endpoint_resolve(struct tr_endpoint_cache *c, pid_t pid, int64_t fd, char *name,
			size_t size, uint64_t *inode)
{
	struct tr_endpoint_cache tmp = { .nl = -1 };
	char fdpath[64], link[PATH_MAX + 32];
	struct sock_info si;
	struct stat st;
	uint64_t ino = 0;
	ssize_t n;
	int ret;

	put_name(name, size, "%s", "");
	if (pid <= 0) {
		ret = -ESRCH;
		goto out;
	}
	if (fd < 0 || fd > INT_MAX) {
		ret = -EBADF;
		goto out;
	}
	snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd/%d", (int)pid, (int)fd);
	n = readlink(fdpath, link, sizeof(link) - 1);
	if (n < 0) {
		ret = missing(pid, errno);
		goto out;
	}
	link[n] = '\0';

	if (!strncmp(link, "pipe:[", 6)) {
		ino = link_inode(link + 6);
		put_name(name, size, "%s", link);
		ret = TR_EP_PIPE;
		goto out;
	}
	if (!strncmp(link, "socket:[", 8)) {
		const struct cache_slot *hit;

		ino = link_inode(link + 8);
		hit = cache_get(c, ino);
		if (hit) {
			put_name(name, size, "%s", hit->name);
			ret = hit->kind;
			goto out;
		}
		ret = socket_lookup(c ? c : &tmp, pid, fdpath, ino, &si);
		if (ret < 0) {
			ret = missing(pid, -ret);
			goto out;
		}
		if (si.complete)
			cache_put(c, ino, si.kind, si.name);
		put_name(name, size, "%s", si.name);
		ret = si.kind;
		goto out;
	}

	/* A path or an anonymous inode: stat follows the /proc link to the open file itself. */
	if (stat(fdpath, &st) != 0) {
		ret = missing(pid, errno);
		goto out;
	}
	ino = st.st_ino;
	if (S_ISFIFO(st.st_mode) && link[0] == '/') {
		ret = TR_EP_FIFO;
		put_name(name, size, "fifo:%s", link);
		goto out;
	}
	/* POSIX queues are regular inodes of the (usually unmounted) mqueue fs, and readlink
	 * shows their name as "/name": only the filesystem type tells them from a plain file */
	if (S_ISREG(st.st_mode) && is_mqueue(c, fdpath, st.st_dev)) {
		ret = TR_EP_MQ;
		put_name(name, size, "mq:%s", link);
		goto out;
	}
	put_name(name, size, "%s", link);
	ret = TR_EP_NOT_IPC;
out:
	nl_close(&tmp);
	if (inode)
		*inode = ret >= 0 ? ino : 0;
	return ret;
}

void tr_endpoint_sysv(int64_t msqid, char *name, size_t size)
{
	if (name && size)
		snprintf(name, size, "sysv:%" PRId64, msqid);
}

const char *tr_endpoint_kind_name(enum tr_endpoint_kind kind)
{
	switch (kind) {
	case TR_EP_NOT_IPC: return "not-ipc";
	case TR_EP_PIPE: return "pipe";
	case TR_EP_FIFO: return "fifo";
	case TR_EP_UNIX: return "unix";
	case TR_EP_TCP: return "tcp";
	case TR_EP_UDP: return "udp";
	case TR_EP_SOCKET: return "socket";
	case TR_EP_MQ: return "mq";
	case TR_EP_SYSV: return "sysv";
	}
	return "unknown";
}
