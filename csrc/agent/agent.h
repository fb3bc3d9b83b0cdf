/* agent.h - the in-process agent's private interface (the files of csrc/agent).
 *
 * libtracer_agent.so is loaded with LD_PRELOAD (or dlopen'ed by `tracer attach`, attach.c). Its
 * constructor reads TRACER_RING (a ring made
 * by tr_shared_ring_create()); without it, or with a ring that fails validation, it stays off
 * and every wrapper only calls through. Per concern:
 *   agent.c           start-up, environment, process/thread identity, fork, real functions
 *   fdcache.c         fd -> (is it a message?, endpoint name), keyed by fd and (dev, ino)
 *   wrappers.c        the catalogue's send/recv functions -> events in the ring
 *   wrappers_move.c   sendmmsg/recvmmsg (an event per message), sendfile, splice, tee
 *   yield_wrappers.c  the sync/proc functions -> yield points (and the pthread_create
 *                     trampoline that hands out thread ordinals in creation order)
 *   yield.c           the in-process yield decisions (tr_yield_decide_keyed) and sites
 *   pct.c             PCT: threads serialised by a token, handed out by seeded priority
 *   deaths.c          crashes of processes no debugger traces, and reaped children
 *   attach.c          loaded by `tracer attach` (dlopen): its configuration, and the wrappers
 *                     bound into the loaded objects' GOTs (undone at detach)
 *   coverage.c        which processes the agent enters, and the execs it sees it will not
 *
 * Rules on every path: no malloc on the hot path, errno as the real call left it, and never a
 * call to a wrapped function except through its real pointer (tr_in_agent guards re-entry:
 * calls the agent makes itself, or a signal handler interrupting the agent, go straight
 * through unrecorded). */
#ifndef TRACER_AGENT_H
#define TRACER_AGENT_H

#include <stdatomic.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "../filter.h"
#include <sys/uio.h>
#include "../shared_ring.h"
#include "../yield_policy.h"

#define TR_AGENT_HIDDEN __attribute__((visibility("hidden")))
#define TR_AGENT_EXPORT __attribute__((visibility("default")))
#define TR_TLS __thread __attribute__((tls_model("initial-exec")))

struct tr_agent_state {
	bool on;                      /* the ring is mapped: record */
	bool yield_on;                /* TRACER_YIELD parsed */
	int yield_classes;            /* mask of tr_class (TRACER_YIELD_CLASSES) */
	struct tr_yield_config ycfg;
	uint64_t *site_call;          /* TRACER_YIELD_SITES: call pcs (file addresses) */
	uint64_t *site_ret;           /* their return pcs, 0 when unknown */
	size_t nsites;                /* 0: every call of yield_classes is a point */
	uint32_t name_key[64];        /* crc32 of each catalogue name: keys without sites */
	struct tr_filter filter;      /* TRACER_TRACE, TRACER_STATUS, TRACER_ENDPOINT */
	struct tr_shared_ring ring;
	int32_t pid;                  /* getpid(), refreshed in the fork child */
	uint32_t proc_ord;
};

extern struct tr_agent_state tr_agent TR_AGENT_HIDDEN;
extern TR_TLS int tr_in_agent TR_AGENT_HIDDEN;

/* This thread's tid (cached) and ordinal (order of first appearance, or of creation). */
int32_t tr_agent_tid(void) TR_AGENT_HIDDEN;
uint32_t tr_agent_thread_ord(void) TR_AGENT_HIDDEN;
void tr_agent_thread_start(uint32_t ord) TR_AGENT_HIDDEN;   /* trampoline side */
uint32_t tr_agent_thread_claim(void) TR_AGENT_HIDDEN;        /* creator side */

/* agent.c: start recording into the ring TRACER_RING names (0), or stay off (-1). */
int tr_agent_start(void) TR_AGENT_HIDDEN;
/* attach.c: a TRACER_* setting: from the configuration `tracer attach` handed over when there
 * is one (the environment cannot change after start), else from the environment. */
const char *tr_agent_getenv(const char *name) TR_AGENT_HIDDEN;
/* wrappers.c: the agent's own write(), whatever the global scope binds `write` to. */
ssize_t tr_agent_write_self(int fd, const void *buf, size_t n) TR_AGENT_HIDDEN;

/* Real functions: resolved in the constructor, or on first use. NULL only if libc has none. */
void *tr_agent_real(int idx) TR_AGENT_HIDDEN;

/* Catalogue index of each wrapped function, by name (set at start-up). */
enum tr_agent_fn {
	FN_WRITE, FN_WRITEV, FN_SEND, FN_SENDTO, FN_SENDMSG, FN_MQ_SEND, FN_MQ_TIMEDSEND,
	FN_MSGSND,
	FN_READ, FN_READV, FN_RECV, FN_RECVFROM, FN_RECVMSG, FN_MQ_RECEIVE, FN_MQ_TIMEDRECEIVE,
	FN_MSGRCV,
	FN_SENDMMSG, FN_RECVMMSG, FN_SENDFILE, FN_SPLICE, FN_TEE,
	FN_MUTEX_LOCK, FN_MUTEX_TRYLOCK, FN_MUTEX_UNLOCK, FN_RW_RDLOCK, FN_RW_WRLOCK,
	FN_RW_TRYRDLOCK, FN_RW_TRYWRLOCK, FN_RW_UNLOCK, FN_COND_WAIT, FN_COND_TIMEDWAIT,
	FN_COND_SIGNAL, FN_COND_BROADCAST, FN_SEM_WAIT, FN_SEM_TRYWAIT, FN_SEM_TIMEDWAIT,
	FN_SEM_POST,
	FN_FORK, FN_PTHREAD_CREATE, FN_PTHREAD_JOIN, FN_WAITPID, FN_KILL, FN_USLEEP, FN_NANOSLEEP,
	FN_CONNECT,             /* not recorded: a socket's name changes when it connects */
	/* not in the catalogue: blocking calls PCT gives its token up around (yield_wrappers.c) */
	FN_BARRIER_WAIT, FN_SLEEP, FN_POLL, FN_ACCEPT, FN_PTHREAD_EXIT,
	/* not in the catalogue: reaping children (deaths.c), exec and spawn (coverage.c) */
	FN_WAIT, FN_WAIT3, FN_WAIT4, FN_WAITID,
	FN_EXECVE, FN_EXECV, FN_EXECVPE, FN_EXECVP, FN_POSIX_SPAWN, FN_POSIX_SPAWNP,
	FN_COUNT
};
extern const char *const tr_agent_fn_name[FN_COUNT] TR_AGENT_HIDDEN;
extern int tr_agent_call[FN_COUNT] TR_AGENT_HIDDEN;   /* catalogue index, -1 unknown */

/* fdcache.c: names the handle of catalogue call `call`. Returns the endpoint kind (> 0: a
 * message endpoint, name filled), 0 (not a message: a file, a tty...), or < 0 (unknown fd). */
int tr_agent_endpoint(int call, int64_t handle, char *name) TR_AGENT_HIDDEN;
/* fdcache.c: fd's name is stale (it connected): name it afresh at its next message. */
void tr_agent_endpoint_forget(int fd) TR_AGENT_HIDDEN;

/* wrappers.c, for the wrappers of wrappers_move.c too. */
/* May this thread record? Counts calls made from inside the agent. */
static inline bool tr_agent_may_record(void)
{
	if (__builtin_expect(!tr_agent.on, 0))
		return false;
	if (tr_in_agent) {
		atomic_fetch_add_explicit(&tr_agent.ring.hdr->nested, 1, memory_order_relaxed);
		return false;
	}
	return true;
}
/* Copies n bytes of the program's memory; `trusted`: the kernel just read or wrote them, so
 * they are mapped (else process_vm_readv, which fails rather than faults). */
size_t tr_agent_copy_in(void *dst, const void *src, size_t n, bool trusted) TR_AGENT_HIDDEN;
/* Total length of an iovec array and up to `want` bytes of its contents into out. */
size_t tr_agent_gather(const struct iovec *iov_p, size_t cnt, size_t want, uint8_t *out,
		       bool arrays_ok, bool data_ok, int64_t *total) TR_AGENT_HIDDEN;
/* The common fields of an event of catalogue call `call` on `handle`. */
void tr_agent_fill(struct tr_ring_write *w, int call, int64_t handle, const void *site,
		   const char *endpoint) TR_AGENT_HIDDEN;
/* Names handle; false (counted) when it is not a message endpoint (not_ipc) or the endpoint
 * filter leaves it out (filtered). */
bool tr_agent_named(int call, int64_t handle, char *name) TR_AGENT_HIDDEN;
/* The status filter's verdict on a call's outcome (counted in filtered when it leaves it out). */
bool tr_agent_outcome_kept(int64_t ret, int err) TR_AGENT_HIDDEN;

/* yield.c: the yield point before catalogue call `fn`, called from `ret_addr`. */
void tr_agent_yield(enum tr_agent_fn fn, const void *ret_addr) TR_AGENT_HIDDEN;
int tr_agent_yield_init(void) TR_AGENT_HIDDEN;

/* pct.c: PCT scheduling (strategy pct). init after the yield config is read; forked in a
 * fork child; step at each scheduling point (from tr_agent_yield); release before a wrapped
 * call that may block and acquire after it, and at a thread's start and end. All do nothing
 * unless the strategy is pct. */
int tr_agent_pct_init(void) TR_AGENT_HIDDEN;
void tr_agent_pct_forked(void) TR_AGENT_HIDDEN;
bool tr_agent_pct_active(void) TR_AGENT_HIDDEN;
void tr_agent_pct_step(void) TR_AGENT_HIDDEN;
void tr_agent_pct_release(void) TR_AGENT_HIDDEN;
void tr_agent_pct_acquire(void) TR_AGENT_HIDDEN;
void tr_agent_pct_blocked(void) TR_AGENT_HIDDEN;          /* a try-lock failed: wait a step */
void tr_agent_pct_expect(uint32_t ord) TR_AGENT_HIDDEN;     /* creator side, before create */
void tr_agent_pct_unexpect(uint32_t ord) TR_AGENT_HIDDEN;   /* the create failed */

/* Around a wrapped call that may block (PCT gives the token up while it runs): whether to,
 * and a pct.c function called as the agent, errno kept. */
static inline bool tr_agent_pct_wanted(void)
{
	return __builtin_expect(tr_agent.yield_on, 0) && !tr_in_agent && tr_agent_pct_active();
}

static inline void tr_agent_pct_guarded(void (*fn)(void))
{
	int saved = errno;

	tr_in_agent = 1;
	fn();
	tr_in_agent = 0;
	errno = saved;
}

/* The real function behind a wrapper, as type T. */
#define REAL(fn, T) ((T)tr_agent_real(fn))

/* Calls the real function with the PCT token given up while it may block: R its result,
 * E the errno it left. */
#define CALL_REAL(R, E, CALL)                                                   \
	do {                                                                    \
		bool pct_ = tr_agent_pct_wanted();                              \
		if (pct_)                                                       \
			tr_agent_pct_guarded(tr_agent_pct_release);             \
		R = (CALL);                                                     \
		E = errno;                                                      \
		if (pct_)                                                       \
			tr_agent_pct_guarded(tr_agent_pct_acquire);             \
	} while (0)

/* deaths.c: in a process no debugger traces, record crash signals into the ring (call at
 * start-up and in a fork child); a child of the tree reaped as killed by a signal. */
void tr_agent_deaths_arm(void) TR_AGENT_HIDDEN;
void tr_agent_reaped(pid_t pid, int status) TR_AGENT_HIDDEN;   /* a wait status */
void tr_agent_reaped_by(pid_t pid, int sig) TR_AGENT_HIDDEN;    /* killed by sig */

/* coverage.c: at start-up (the ring open, tr_agent.on set): remember this image's path and
 * ring, and note that the agent covers it; note_self again in a fork child. */
void tr_agent_coverage_start(const char *ring_path) TR_AGENT_HIDDEN;
void tr_agent_coverage_note_self(void) TR_AGENT_HIDDEN;

#endif
