/* pct.c - PCT scheduling inside the program (TRACER_YIELD strategy "pct:DEPTH[:STEPS]").
 *
 * The threads of one process are serialised by a token, as Hermit does: a thread runs the
 * program's code only while it holds the token. Every wrapped call that may block (a wait, a
 * join, a read, a sleep...) gives the token up before calling the real function and takes it
 * again when it returns; a call that cannot block keeps it, but first hands it to a waiting
 * thread of higher priority. A mutex or semaphore that is taken does not block in the kernel
 * at first: the thread stays a waiter, passed over until another thread takes a step, then
 * tries again (tr_agent_pct_blocked), so who runs next never depends on wake-up latency. A new thread takes the token in the pthread_create
 * trampoline and gives it up when its function returns. The token goes to the waiting thread
 * of highest priority: that is how one thread is held behind another for as long as the
 * priorities say, not for a random sleep.
 *
 * Priorities and change points are pure functions of the seed and the stable ordinals
 * (tr_pct_priority, tr_pct_change_point): the same seed gives the same schedule wherever
 * the program's calls are the only source of nondeterminism. Every scheduling point (a call
 * of the selected classes) is one step of the process; when the step count reaches change
 * point i, the thread taking that step drops to priority i.
 *
 * Never a deadlock of the program: a waiter that sees neither the token move nor its holder
 * take a step for PCT_WAIT_NS takes it over (counted in pct_steals) when the holder blocks in
 * a call we do not wrap, or spent that time on a CPU (it spins on a flag, or computes without
 * calls); a holder that is runnable but was not given a CPU (a loaded machine) is waited for,
 * up to PCT_WAIT_MAX_NS, since overtaking it would change the schedule the seed stands for
 * and a replay would not repeat it. Processes are scheduled independently
 * (the state is per process; a fork child starts afresh). Threads with ordinals past
 * PCT_THREADS run free. No malloc, no wrapped function (raw futex syscalls), errno kept by
 * the callers (yield_wrappers.c, wrappers.c). */
#define _GNU_SOURCE
#include "agent.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PCT_THREADS 256
#define PCT_WAIT_NS 4000000ll          /* token unmoved this long: may its holder be overtaken? */
#define PCT_WAIT_MAX_NS 100000000ll    /* token unmoved this long: take it over regardless */
#define PCT_NAP_NS 1000000ll           /* a waiter rechecks at least this often */
#define PCT_BLOCKED_NS 1000000ll       /* a blocked thread retries at least this often */

struct slot {
	_Atomic uint64_t prio;             /* 0: not set yet */
	_Atomic uint32_t waiting;
	/* blocked: its lock or semaphore was taken (tr_agent_pct_blocked). It is passed over
	 * until another thread takes a step (which may have freed it) or PCT_BLOCKED_NS pass. */
	_Atomic uint64_t blocked_steps;    /* steps + 1 when it blocked; 0: not blocked */
	_Atomic int64_t blocked_ns;
	_Atomic int32_t tid;               /* of the thread, once it held the token */
};

static struct slot slots[PCT_THREADS];
static _Atomic uint32_t holder;        /* slot + 1; 0: free */
static _Atomic uint32_t epoch;         /* bumped at every hand-over: the futex word */
static _Atomic uint32_t nwaiting;
static _Atomic uint32_t nslots;        /* slots in use: highest ordinal seen + 1 */
static _Atomic uint64_t steps;         /* this process's scheduling points */
static uint64_t change[TR_PCT_DEPTH_LIMIT];
static uint32_t depth;
static bool pct_on;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void futex_wait(_Atomic uint32_t *word, uint32_t seen, int64_t ns)
{
	struct timespec ts = { ns / 1000000000ll, ns % 1000000000ll };

	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
}

static void bump(void)
{
	atomic_fetch_add_explicit(&epoch, 1, memory_order_acq_rel);
	if (atomic_load_explicit(&nwaiting, memory_order_acquire))
		syscall(SYS_futex, &epoch, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* The slot of thread ordinal ord, its priority set on first use; -1: it runs free. */
static int slot_of(uint32_t ord)
{
	uint32_t n;

	if (ord >= PCT_THREADS)
		return -1;
	if (!atomic_load_explicit(&slots[ord].prio, memory_order_relaxed))
		atomic_store_explicit(&slots[ord].prio,
				      tr_pct_priority(&tr_agent.ycfg, tr_agent.proc_ord, ord),
				      memory_order_relaxed);
	n = atomic_load_explicit(&nslots, memory_order_relaxed);
	while (n <= ord && !atomic_compare_exchange_weak(&nslots, &n, ord + 1))
		;
	return (int)ord;
}

static int my_slot(void)
{
	return slot_of(tr_agent_thread_ord());
}

/* The waiting slot of highest priority, -1 when none waits. */
static int best_waiter(void)
{
	uint32_t n = atomic_load_explicit(&nslots, memory_order_acquire);
	uint64_t now_steps = atomic_load_explicit(&steps, memory_order_acquire) + 1;
	uint64_t best = 0;
	int64_t t = 0;
	int who = -1;

	for (uint32_t i = 0; i < n; i++) {
		if (!atomic_load_explicit(&slots[i].waiting, memory_order_acquire))
			continue;
		if (atomic_load_explicit(&slots[i].blocked_steps, memory_order_acquire) == now_steps) {
			if (!t)
				t = now_ns();
			if (t - atomic_load_explicit(&slots[i].blocked_ns, memory_order_relaxed) <
			    PCT_BLOCKED_NS)
				continue;       /* nothing happened that could free it */
		}
		uint64_t p = atomic_load_explicit(&slots[i].prio, memory_order_relaxed);

		if (p > best) {
			best = p;
			who = (int)i;
		}
	}
	return who;
}

/* The scheduler state of thread tid of this process ('R' runnable, 'S' sleeping, 't'
 * stopped by a debugger...), from /proc by raw syscalls (no wrapped call, no malloc); 0 when
 * it is gone or cannot be read. */
static char thread_state(int32_t tid)
{
	char path[48] = "/proc/self/task/", digits[12], buf[256], *close_paren = NULL;
	size_t n = strlen(path), k = 0;
	ssize_t got;
	int fd;

	do
		digits[k++] = (char)('0' + tid % 10);
	while ((tid /= 10) && k < sizeof(digits));
	while (k)
		path[n++] = digits[--k];
	memcpy(path + n, "/stat", 6);
	fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	got = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	syscall(SYS_close, fd);
	for (ssize_t i = 0; i < got; i++)   /* "pid (comm) S ...": comm may hold ')' */
		if (buf[i] == ')')
			close_paren = buf + i;
	return close_paren && close_paren + 2 < buf + got ? close_paren[2] : 0;
}

static int64_t thread_cpu_ns(int32_t tid)
{
	/* the kernel's per-thread CPU clock id (MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)) */
	clockid_t clock = (clockid_t)((~(unsigned)tid << 3) | 6u);
	struct timespec ts;

	if (syscall(SYS_clock_gettime, clock, &ts) != 0)
		return -1;
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* What a waiter saw of the holder at its last look. */
struct watch {
	int32_t tid;
	int64_t cpu_ns, at_ns;
};

/* Whether a holder silent for silent_ns (>= PCT_WAIT_NS) may be overtaken: it blocks in a call
 * we do not wrap or is gone, or it had a CPU for at least half the time since the last look
 * (the first look only measures), or it has been silent for PCT_WAIT_MAX_NS. */
static bool may_overtake(uint32_t holder_slot, int64_t now, int64_t silent_ns, struct watch *w)
{
	int32_t tid = atomic_load_explicit(&slots[holder_slot].tid, memory_order_acquire);
	int64_t cpu;
	char state;
	bool ran;

	if (silent_ns >= PCT_WAIT_MAX_NS || tid <= 0)
		return true;
	state = thread_state(tid);
	if (state != 'R' && state != 't')
		return true;
	cpu = thread_cpu_ns(tid);
	if (cpu < 0)
		return true;
	ran = w->tid == tid && (cpu - w->cpu_ns) * 2 >= now - w->at_ns;
	*w = (struct watch){ tid, cpu, now };
	return ran;
}

/* Changes whenever the token moves or its holder reaches a scheduling point: a waiter takes
 * the token over only when neither happened for PCT_WAIT_NS. */
static uint64_t progress(void)
{
	return atomic_load_explicit(&steps, memory_order_acquire) +
	       ((uint64_t)atomic_load_explicit(&epoch, memory_order_acquire) << 40);
}

static void acquire(int me)
{
	uint32_t mine = (uint32_t)me + 1;
	uint64_t last, now_progress;
	int64_t since;
	struct watch watch = { 0 };

	if (atomic_load_explicit(&holder, memory_order_acquire) == mine)
		return;
	if (!atomic_exchange_explicit(&slots[me].waiting, 1, memory_order_acq_rel))
		atomic_fetch_add_explicit(&nwaiting, 1, memory_order_acq_rel);
	last = progress();
	since = now_ns();
	for (;;) {
		uint32_t e = atomic_load_explicit(&epoch, memory_order_acquire);
		uint32_t none = 0, held;
		int64_t t;

		held = atomic_load_explicit(&holder, memory_order_acquire);
		if (held == 0 && best_waiter() == me &&
		    atomic_compare_exchange_strong(&holder, &none, mine))
			break;
		t = now_ns();
		now_progress = progress();
		if (now_progress != last) {     /* the token moved, or its holder took a step */
			last = now_progress;
			since = t;
		} else if (t - since >= PCT_WAIT_NS &&
			   (held ? may_overtake(held - 1, t, t - since, &watch)
				 : t - since >= PCT_WAIT_MAX_NS)) {
			atomic_store_explicit(&holder, mine, memory_order_release);
			atomic_fetch_add_explicit(&tr_agent.ring.hdr->pct_steals, 1,
						  memory_order_relaxed);
			bump();
			break;
		}
		futex_wait(&epoch, e, PCT_NAP_NS);
	}
	atomic_store_explicit(&slots[me].tid, tr_agent_tid(), memory_order_release);
	atomic_store_explicit(&slots[me].blocked_steps, 0, memory_order_relaxed);
	atomic_store_explicit(&slots[me].waiting, 0, memory_order_release);
	atomic_fetch_sub_explicit(&nwaiting, 1, memory_order_acq_rel);
}

static void release(int me)
{
	uint32_t mine = (uint32_t)me + 1;

	if (atomic_compare_exchange_strong(&holder, &mine, 0))
		bump();
}

int tr_agent_pct_init(void)
{
	pct_on = tr_agent.ycfg.strategy == TR_YIELD_PCT;
	if (!pct_on)
		return 0;
	depth = tr_agent.ycfg.depth ? tr_agent.ycfg.depth : TR_PCT_DEPTH_DEFAULT;
	for (uint32_t i = 1; i < depth; i++)
		change[i] = tr_pct_change_point(&tr_agent.ycfg, tr_agent.proc_ord, i);
	return 0;
}

void tr_agent_pct_forked(void)
{
	if (!pct_on)
		return;
	for (int i = 0; i < PCT_THREADS; i++) {
		atomic_store(&slots[i].prio, 0);
		atomic_store(&slots[i].waiting, 0);
		atomic_store(&slots[i].tid, 0);
	}
	atomic_store(&holder, 0);
	atomic_store(&nwaiting, 0);
	atomic_store(&nslots, 0);
	atomic_store(&steps, 0);
	tr_agent_pct_init();   /* the child's process ordinal: its own change points */
}

bool tr_agent_pct_active(void)
{
	return pct_on;
}

void tr_agent_pct_step(void)
{
	int me = my_slot();
	uint64_t s;
	int w;

	if (me < 0)
		return;
	acquire(me);
	s = atomic_fetch_add_explicit(&steps, 1, memory_order_relaxed) + 1;
	atomic_fetch_add_explicit(&tr_agent.ring.hdr->pct_steps, 1, memory_order_relaxed);
	for (uint32_t i = 1; i < depth; i++) {
		if (change[i] == s) {
			atomic_store_explicit(&slots[me].prio, i, memory_order_relaxed);
			atomic_fetch_add_explicit(&tr_agent.ring.hdr->pct_changes, 1,
						  memory_order_relaxed);
			break;
		}
	}
	w = best_waiter();
	if (w >= 0 && atomic_load_explicit(&slots[w].prio, memory_order_relaxed) >
		      atomic_load_explicit(&slots[me].prio, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&tr_agent.ring.hdr->injected, 1, memory_order_relaxed);
		release(me);
		acquire(me);
	}
}

/* The creator of a thread makes it a waiter before it exists: from its creation on it is
 * runnable, whatever time the kernel takes to start it (else a release made meanwhile would
 * pass it over, and the schedule would depend on that timing). */
void tr_agent_pct_expect(uint32_t ord)
{
	int s;

	if (!pct_on || (s = slot_of(ord)) < 0)
		return;
	if (!atomic_exchange_explicit(&slots[s].waiting, 1, memory_order_acq_rel))
		atomic_fetch_add_explicit(&nwaiting, 1, memory_order_acq_rel);
}

/* The thread expected was not created after all. */
void tr_agent_pct_unexpect(uint32_t ord)
{
	int s;

	if (!pct_on || (s = slot_of(ord)) < 0)
		return;
	if (atomic_exchange_explicit(&slots[s].waiting, 0, memory_order_acq_rel))
		atomic_fetch_sub_explicit(&nwaiting, 1, memory_order_acq_rel);
	bump();
}

/* The lock or semaphore this thread tried is taken: it stays runnable in the scheduler's
 * eyes (so the schedule does not depend on how fast the kernel wakes it) but gives the token
 * to others until one of them takes a step, then tries again. */
void tr_agent_pct_blocked(void)
{
	int me;

	if (!pct_on || (me = my_slot()) < 0)
		return;
	atomic_store_explicit(&slots[me].blocked_ns, now_ns(), memory_order_relaxed);
	atomic_store_explicit(&slots[me].blocked_steps,
			      atomic_load_explicit(&steps, memory_order_acquire) + 1,
			      memory_order_release);
	if (!atomic_exchange_explicit(&slots[me].waiting, 1, memory_order_acq_rel))
		atomic_fetch_add_explicit(&nwaiting, 1, memory_order_acq_rel);
	release(me);
	acquire(me);
}

void tr_agent_pct_release(void)
{
	int me;

	if (!pct_on || (me = my_slot()) < 0)
		return;
	release(me);
}

void tr_agent_pct_acquire(void)
{
	int me;

	if (!pct_on || (me = my_slot()) < 0)
		return;
	acquire(me);
}
