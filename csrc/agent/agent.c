/* agent.c - start-up, identity and real functions of the in-process agent (see agent.h).
 *
 * Environment (read once, by the constructor of every process image):
 *   TRACER_RING=/path          the ring to write; absent or invalid: the agent does nothing
 *   TRACER_YIELD=SEED:P:STRAT  yield injection; STRAT is "yield", "sleep:MAX_US" or
 *                              "pct:DEPTH[:STEPS]" (pct.c)
 *   TRACER_YIELD_CLASSES=...   which catalogue classes are yield points (sync,proc,send,recv)
 *   TRACER_YIELD_SITES=/path   only these call sites (see yield.c)
 *   TRACER_TRACE, TRACER_STATUS, TRACER_ENDPOINT   the filters (../filter.h); the debugger
 *                              checked them, so a text refused here keeps everything */
#define _GNU_SOURCE
#include "agent.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../catalogue.h"

struct tr_agent_state tr_agent;
TR_TLS int tr_in_agent;

static TR_TLS int32_t my_tid;          /* 0: not known yet */
static TR_TLS uint32_t my_ord;         /* ordinal + 1; 0: not known yet */
static TR_TLS uint32_t child_ord;      /* claimed in the fork prepare handler */
static _Atomic uint32_t next_thread_ord;

const char *const tr_agent_fn_name[FN_COUNT] = {
	"write", "writev", "send", "sendto", "sendmsg", "mq_send", "mq_timedsend", "msgsnd",
	"read", "readv", "recv", "recvfrom", "recvmsg", "mq_receive", "mq_timedreceive", "msgrcv",
	"sendmmsg", "recvmmsg", "sendfile", "splice", "tee",
	"pthread_mutex_lock", "pthread_mutex_trylock", "pthread_mutex_unlock",
	"pthread_rwlock_rdlock", "pthread_rwlock_wrlock", "pthread_rwlock_tryrdlock",
	"pthread_rwlock_trywrlock", "pthread_rwlock_unlock", "pthread_cond_wait",
	"pthread_cond_timedwait", "pthread_cond_signal", "pthread_cond_broadcast", "sem_wait",
	"sem_trywait", "sem_timedwait", "sem_post",
	"fork", "pthread_create", "pthread_join", "waitpid", "kill", "usleep", "nanosleep",
	"connect",
	"pthread_barrier_wait", "sleep", "poll", "accept", "pthread_exit",
	"wait", "wait3", "wait4", "waitid",
	"execve", "execv", "execvpe", "execvp", "posix_spawn", "posix_spawnp",
};
int tr_agent_call[FN_COUNT];

static void *_Atomic real_fn[FN_COUNT];
/* Preloaded, the agent's wrappers come first in the global scope and the real functions are
 * the next definitions (RTLD_NEXT). Loaded by `tracer attach` (dlopen, RTLD_LOCAL), it is not in
 * the global scope at all: the global lookup (RTLD_DEFAULT) gives what the program binds to. */
static bool interposed = true;

/* pthread_cond_* exist twice in glibc; plain dlsym may hand out the 2.2.5 compatibility
 * version, whose condvar layout differs. Ask for the current one first. */
static void *lookup(int idx)
{
	const char *name = tr_agent_fn_name[idx];
	void *p = NULL;

	if (!strncmp(name, "pthread_cond_", 13))
		p = dlvsym(interposed ? RTLD_NEXT : RTLD_DEFAULT, name, "GLIBC_2.3.2");
	if (!p)
		p = dlsym(interposed ? RTLD_NEXT : RTLD_DEFAULT, name);
	return p;
}

void *tr_agent_real(int idx)
{
	void *p = atomic_load_explicit(&real_fn[idx], memory_order_relaxed);
	int saved;

	if (p)
		return p;
	/* Before our constructor (another library's constructor calling write...). glibc's
	 * dlsym does not call any function we wrap, so this cannot recurse. */
	saved = errno;
	p = lookup(idx);
	atomic_store_explicit(&real_fn[idx], p, memory_order_relaxed);
	errno = saved;
	return p;
}

int32_t tr_agent_tid(void)
{
	if (!my_tid)
		my_tid = (int32_t)syscall(SYS_gettid);
	return my_tid;
}

uint32_t tr_agent_thread_claim(void)
{
	return atomic_fetch_add_explicit(&next_thread_ord, 1, memory_order_relaxed);
}

void tr_agent_thread_start(uint32_t ord)
{
	my_tid = 0;
	my_ord = ord + 1;
}

uint32_t tr_agent_thread_ord(void)
{
	if (!my_ord)
		my_ord = tr_agent_thread_claim() + 1;
	return my_ord - 1;
}

/* ---- fork: the child is a new process with one thread, ordinal 0 ---- */

static void at_prepare(void)
{
	if (tr_agent.on)
		child_ord = tr_shared_ring_proc_claim(&tr_agent.ring);
}

static void at_child(void)
{
	tr_agent.pid = (int32_t)getpid();
	my_tid = 0;
	my_ord = 1;
	atomic_store_explicit(&next_thread_ord, 1, memory_order_relaxed);
	tr_in_agent = 0;
	if (tr_agent.on) {
		tr_agent.proc_ord = child_ord;
		tr_shared_ring_proc_publish(&tr_agent.ring, child_ord, tr_agent.pid);
		tr_in_agent = 1;
		tr_agent_coverage_note_self();
		tr_agent_deaths_arm();
		tr_agent_pct_forked();
		tr_in_agent = 0;
	}
}

/* ---- start-up ---- */

static uint32_t crc32_of(const char *s)
{
	uint32_t crc = 0xffffffffu;

	for (; *s; s++) {
		crc ^= (uint8_t)*s;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

static void filter_init(void)
{
	struct tr_filter *f = &tr_agent.filter;

	tr_filter_init(f);
	if (tr_filter_set_trace(f, tr_agent_getenv("TRACER_TRACE"), NULL, 0) < 0 ||
	    tr_filter_set_status(f, tr_agent_getenv("TRACER_STATUS"), NULL, 0) < 0 ||
	    tr_filter_set_endpoint(f, tr_agent_getenv("TRACER_ENDPOINT"), NULL, 0) < 0)
		tr_filter_init(f);
}

/* Opens the ring TRACER_RING names (environment, or the configuration `tracer attach` handed
 * over) and starts recording. 0, or -1 when there is no valid ring (the agent stays off). */
int tr_agent_start(void)
{
	static bool atfork_done;
	const char *path = tr_agent_getenv("TRACER_RING");
	int64_t ord;

	if (!path || !*path || tr_shared_ring_open(&tr_agent.ring, path) != 0)
		return -1;
	/* An exec'd image keeps the ordinal its pid already has. */
	ord = tr_shared_ring_proc_find(&tr_agent.ring, tr_agent.pid);
	if (ord < 0) {
		ord = tr_shared_ring_proc_claim(&tr_agent.ring);
		tr_shared_ring_proc_publish(&tr_agent.ring, (uint32_t)ord, tr_agent.pid);
	}
	tr_agent.proc_ord = (uint32_t)ord;
	my_ord = 1;
	atomic_store_explicit(&next_thread_ord, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&tr_agent.ring.hdr->agents, 1, memory_order_relaxed);
	if (!atfork_done && pthread_atfork(at_prepare, NULL, at_child) != 0) {
		tr_shared_ring_close(&tr_agent.ring);
		return -1;
	}
	atfork_done = true;
	tr_agent_yield_init();
	filter_init();
	tr_agent.on = true;
	tr_agent_coverage_start(path);
	tr_agent_deaths_arm();
	return 0;
}

__attribute__((constructor)) static void tr_agent_init(void)
{
	int saved = errno;

	tr_in_agent = 1;
	/* In the global scope (preloaded) the agent's own entry point is found there. */
	interposed = dlsym(RTLD_DEFAULT, "tracer_agent_attach") != NULL;
	for (int i = 0; i < FN_COUNT; i++) {
		tr_agent_call[i] = tr_catalogue_find(tr_agent_fn_name[i]);
		if (tr_agent_call[i] >= 0 && (size_t)tr_agent_call[i] < 64)
			tr_agent.name_key[tr_agent_call[i]] = crc32_of(tr_agent_fn_name[i]);
		tr_agent_real(i);
	}
	tr_agent.pid = (int32_t)getpid();
	if (interposed)                 /* else `tracer attach` starts it (attach.c) */
		tr_agent_start();
	tr_in_agent = 0;
	errno = saved;
}
