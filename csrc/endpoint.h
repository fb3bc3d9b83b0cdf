/* endpoint.h - what an fd of another process is connected to, from /proc and sock_diag,
 * without touching the process. Decides whether a read/write is a message at all. */
#ifndef TRACER_ENDPOINT_H
#define TRACER_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum tr_endpoint_kind {
	TR_EP_NOT_IPC = 0,  /* regular file, terminal, device, eventfd...: not a message */
	TR_EP_PIPE,         /* pipe:[inode] */
	TR_EP_FIFO,         /* fifo:/path */
	TR_EP_UNIX,         /* unix:/path or unix:[inode], with ->peer when known */
	TR_EP_TCP,          /* tcp:127.0.0.1:5000->127.0.0.1:40212 (local->remote), [v6] too */
	TR_EP_UDP,          /* udp:local->remote, or udp:local when unconnected */
	TR_EP_SOCKET,       /* another socket family: socket:[inode] */
	TR_EP_MQ,           /* mq:/name */
	TR_EP_SYSV,         /* sysv:ID */
};

struct tr_endpoint_cache;   /* socket inode -> resolved name; opaque */

struct tr_endpoint_cache *tr_endpoint_cache_new(void);
void tr_endpoint_cache_free(struct tr_endpoint_cache *c);

/* Resolves fd of pid. Writes the endpoint name (NUL-terminated, cut to size) and returns
 * its kind (>= 0), or -errno (-EBADF: no such fd, -ESRCH: no such process). The cache may
 * be NULL. Cost: one readlink (+ stat for paths); sockets are looked up once per inode. */
int tr_endpoint_resolve(struct tr_endpoint_cache *c, pid_t pid, int64_t fd, char *name,
			size_t size, uint64_t *inode);
/* "sysv:ID" */
void tr_endpoint_sysv(int64_t msqid, char *name, size_t size);
const char *tr_endpoint_kind_name(enum tr_endpoint_kind kind);

#endif
