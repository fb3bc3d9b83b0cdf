/* fdcache.c - is this fd a message endpoint, and what is it called?
 *
 * One fstat per call (the fd number may have been closed and reused since: the entry is
 * trusted only when (fd, st_dev, st_ino) still match), then a table hit. A miss names the fd
 * with the core's tr_endpoint_resolve() on our own pid (readlink of /proc/PID/fd/N, sock_diag
 * for sockets: tens of µs, once per open file). Entries are seqlocked: many threads read,
 * one at a time refreshes (a thread that loses the race just does not cache).
 *
 * Limits: a socket's name is what it was when first used on that fd (an unconnected UDP
 * socket that connects later keeps its first name); fds past FD_SLOTS share entries. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "../catalogue.h"
#include "../endpoint.h"

#define FD_SLOTS 4096

struct fd_entry {
	_Atomic uint32_t ver;      /* odd: being written */
	int32_t fd;
	int32_t kind;              /* tr_endpoint_kind, or -1 empty */
	uint32_t pad;
	uint64_t dev, ino;
	char name[TR_ENDPOINT_MAX];
};

static struct fd_entry *_Atomic table;

static struct fd_entry *get_table(void)
{
	struct fd_entry *t = atomic_load_explicit(&table, memory_order_acquire);
	struct fd_entry *expected = NULL;
	void *m;

	if (t)
		return t;
	/* anonymous pages: zero, and only touched entries are ever paged in */
	m = mmap(NULL, FD_SLOTS * sizeof(struct fd_entry), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	if (!atomic_compare_exchange_strong(&table, &expected, (struct fd_entry *)m)) {
		munmap(m, FD_SLOTS * sizeof(struct fd_entry));
		return expected;
	}
	return m;
}

/* Copies a matching entry: its kind, or -1 on a miss. */
static int lookup(struct fd_entry *e, int fd, const struct stat *st, char *name)
{
	uint32_t v1 = atomic_load_explicit(&e->ver, memory_order_acquire);
	int kind;

	if ((v1 & 1) || v1 == 0)
		return -1;
	if (e->fd != fd || e->dev != (uint64_t)st->st_dev || e->ino != (uint64_t)st->st_ino)
		return -1;
	kind = e->kind;
	memcpy(name, e->name, TR_ENDPOINT_MAX);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&e->ver, memory_order_relaxed) != v1)
		return -1;
	name[TR_ENDPOINT_MAX - 1] = '\0';
	return kind;
}

static void store(struct fd_entry *e, int fd, const struct stat *st, int kind, const char *name)
{
	uint32_t v = atomic_load_explicit(&e->ver, memory_order_relaxed);

	if ((v & 1) || !atomic_compare_exchange_strong_explicit(&e->ver, &v, v + 1,
								memory_order_acq_rel,
								memory_order_relaxed))
		return;
	atomic_thread_fence(memory_order_release);
	e->fd = fd;
	e->kind = kind;
	e->dev = (uint64_t)st->st_dev;
	e->ino = (uint64_t)st->st_ino;
	memcpy(e->name, name, TR_ENDPOINT_MAX);
	atomic_store_explicit(&e->ver, v + 2, memory_order_release);
}

int tr_agent_endpoint(int call, int64_t handle, char *name)
{
	const struct tr_call *c = &tr_catalogue[call];
	struct fd_entry *t;
	struct stat st;
	int fd = (int)handle;
	int kind;

	name[0] = '\0';
	if (c->handle == TR_HANDLE_MSQID) {
		tr_endpoint_sysv((int32_t)handle, name, TR_ENDPOINT_MAX);
		return TR_EP_SYSV;
	}
	if (fd < 0 || fstat(fd, &st) != 0)
		return -1;
	/* read/write on a file, a terminal, a device: no message, no lookup (an mqueue fd is
	 * S_IFREG too, but only mq_* calls name it, with TR_HANDLE_MQD) */
	if (c->handle == TR_HANDLE_FD && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
		return 0;
	t = get_table();
	if (t) {
		kind = lookup(&t[fd & (FD_SLOTS - 1)], fd, &st, name);
		if (kind >= 0)
			return kind;
	}
	kind = tr_endpoint_resolve(NULL, tr_agent.pid, fd, name, TR_ENDPOINT_MAX, NULL);
	if (kind < 0)
		return kind;
	if (t)
		store(&t[fd & (FD_SLOTS - 1)], fd, &st, kind, name);
	return kind;
}

void tr_agent_endpoint_forget(int fd)
{
	struct fd_entry *t = atomic_load_explicit(&table, memory_order_acquire);
	struct fd_entry *e;
	uint32_t v;

	if (!t || fd < 0)
		return;
	e = &t[fd & (FD_SLOTS - 1)];
	v = atomic_load_explicit(&e->ver, memory_order_relaxed);
	/* a writer mid-store leaves its own (older) name: one stale lookup at worst */
	if (!(v & 1) && e->fd == fd)
		atomic_compare_exchange_strong_explicit(&e->ver, &v, 0, memory_order_acq_rel,
							memory_order_relaxed);
}
