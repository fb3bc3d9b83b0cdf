/* bench_endpoint.c - what one tr_endpoint_resolve costs, by kind, and what the two ways of
 * looking a socket up (sock_diag netlink, /proc/PID/net parsing) cost side by side.
 *
 * Standalone: it includes endpoint.c itself to reach the two lookups directly.
 *   gcc -std=gnu11 -O2 -Icsrc -o build/bench_endpoint bench/bench_endpoint.c
 *   build/bench_endpoint [extra_sockets]
 * extra_sockets (default 0) opens that many more TCP and UDP sockets first, to show how the
 * table dumps grow with the namespace's socket count. Prints µs per call, the median of 7
 * rounds; the fds resolved are our own (/proc/self costs what /proc/PID costs). */
#include "endpoint.c"
#include "event.h"

#include <mqueue.h>
#include <sys/un.h>
#include <time.h>

#define ROUNDS 7

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

enum how { VIA_RESOLVE, VIA_RESOLVE_NOCACHE, VIA_RESOLVE_FLUSH, VIA_NETLINK, VIA_PROC };

struct target {
	const char *label;
	int fd;
	enum how how;
	int family, proto;   /* for the direct lookups; proto 0: unix */
};

/* Drops one entry (the bench's caches hold a handful, so probe chains do not matter). */
static void forget(struct tr_endpoint_cache *c, uint64_t ino)
{
	struct cache_slot *slot = (struct cache_slot *)cache_get(c, ino);

	if (slot) {
		slot->inode = 0;
		c->used--;
	}
}

static double measure(struct tr_endpoint_cache *c, const struct target *t, int iters)
{
	double rounds[ROUNDS];
	char name[TR_ENDPOINT_MAX];
	uint64_t ino = 0;
	pid_t pid = getpid();

	tr_endpoint_resolve(NULL, pid, t->fd, name, sizeof(name), &ino);
	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_us();

		for (int i = 0; i < iters; i++) {
			struct sock_info si = { 0 };

			switch (t->how) {
			case VIA_RESOLVE:
				tr_endpoint_resolve(c, pid, t->fd, name, sizeof(name), NULL);
				break;
			case VIA_RESOLVE_NOCACHE:
				tr_endpoint_resolve(NULL, pid, t->fd, name, sizeof(name), NULL);
				break;
			case VIA_RESOLVE_FLUSH:
				/* a miss each time, but the netlink socket stays open as in real use */
				forget(c, ino);
				tr_endpoint_resolve(c, pid, t->fd, name, sizeof(name), NULL);
				break;
			case VIA_NETLINK:
				if (t->proto)
					inet_lookup_netlink(c, ino, t->family, t->proto, &si);
				else
					unix_lookup_netlink(c, ino, &si);
				break;
			case VIA_PROC:
				if (t->proto)
					inet_lookup_proc(pid, ino, t->family, t->proto, &si);
				else
					unix_lookup_proc(pid, ino, &si);
				break;
			}
		}
		rounds[r] = (now_us() - t0) / iters;
	}
	qsort(rounds, ROUNDS, sizeof(rounds[0]), cmp_double);
	return rounds[ROUNDS / 2];
}

static int tcp_pair(int *cl, int *sv, int *ls)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);

	*ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*ls < 0 || *cl < 0 || bind(*ls, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(*ls, 4) || getsockname(*ls, (struct sockaddr *)&a, &len) ||
	    connect(*cl, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	*sv = accept4(*ls, NULL, NULL, SOCK_CLOEXEC);
	return *sv < 0 ? -1 : 0;
}

static int udp_pair(int *u1, int *u2)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);

	*u1 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	*u2 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (*u1 < 0 || *u2 < 0 || bind(*u1, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(*u1, (struct sockaddr *)&a, &len) ||
	    connect(*u2, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	return 0;
}

static int unix_pair(const char *path, int *cl, int *sv, int *ls)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	unlink(path);
	*ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*cl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*ls < 0 || *cl < 0 || bind(*ls, (struct sockaddr *)&a, sizeof(a)) || listen(*ls, 4) ||
	    connect(*cl, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	*sv = accept4(*ls, NULL, NULL, SOCK_CLOEXEC);
	return *sv < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	int extra = argc > 1 ? atoi(argv[1]) : 0;
	int p[2], tcl, tsv, tls, u1, u2, ucl, usv, uls, reg, fifo;
	char upath[64], fpath[64];
	struct tr_endpoint_cache *c = tr_endpoint_cache_new();
	int iters = 2000;

	snprintf(upath, sizeof(upath), "/tmp/bench-endpoint-%d.sock", (int)getpid());
	snprintf(fpath, sizeof(fpath), "/tmp/bench-endpoint-%d.fifo", (int)getpid());
	if (!c || pipe2(p, O_CLOEXEC) || tcp_pair(&tcl, &tsv, &tls) || udp_pair(&u1, &u2) ||
	    unix_pair(upath, &ucl, &usv, &uls) || mkfifo(fpath, 0600)) {
		perror("setup");
		return 1;
	}
	fifo = open(fpath, O_RDWR | O_CLOEXEC);
	reg = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < extra; i++) {
		int a, b, l;

		if (tcp_pair(&a, &b, &l) || udp_pair(&a, &b)) {
			perror("extra sockets");
			break;
		}
	}

	const struct target targets[] = {
		{ "pipe", p[0], VIA_RESOLVE, 0, 0 },
		{ "fifo", fifo, VIA_RESOLVE, 0, 0 },
		{ "regular file (not-ipc)", reg, VIA_RESOLVE, 0, 0 },
		{ "unix, cached", ucl, VIA_RESOLVE, 0, 0 },
		{ "tcp, cached", tcl, VIA_RESOLVE, 0, 0 },
		{ "unix, uncached", ucl, VIA_RESOLVE_FLUSH, 0, 0 },
		{ "tcp, uncached", tcl, VIA_RESOLVE_FLUSH, 0, 0 },
		{ "udp connected, uncached", u2, VIA_RESOLVE_FLUSH, 0, 0 },
		{ "unix, cache NULL", ucl, VIA_RESOLVE_NOCACHE, 0, 0 },
		{ "tcp, cache NULL", tcl, VIA_RESOLVE_NOCACHE, 0, 0 },
		{ "lookup unix: netlink", ucl, VIA_NETLINK, AF_UNIX, 0 },
		{ "lookup unix: /proc/net/unix", ucl, VIA_PROC, AF_UNIX, 0 },
		{ "lookup tcp: netlink", tcl, VIA_NETLINK, AF_INET, IPPROTO_TCP },
		{ "lookup tcp: /proc/net/tcp", tcl, VIA_PROC, AF_INET, IPPROTO_TCP },
		{ "lookup udp: netlink", u2, VIA_NETLINK, AF_INET, IPPROTO_UDP },
		{ "lookup udp: /proc/net/udp", u2, VIA_PROC, AF_INET, IPPROTO_UDP },
	};

	printf("endpoint resolve, µs per call (median of %d rounds; %d extra tcp+udp sockets)\n",
	       ROUNDS, extra);
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		char name[TR_ENDPOINT_MAX];

		tr_endpoint_resolve(c, getpid(), targets[i].fd, name, sizeof(name), NULL);
		printf("  %-30s %8.2f   %s\n", targets[i].label, measure(c, &targets[i], iters), name);
	}
	unlink(upath);
	unlink(fpath);
	tr_endpoint_cache_free(c);
	return 0;
}
