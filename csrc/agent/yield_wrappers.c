/* yield_wrappers.c - the catalogue's sync and proc functions: yield points only, nothing is
 * recorded. Each wrapper asks yield.c before calling through; with yields off it costs one
 * load and a branch. pthread_create also hands the new thread its ordinal in creation order
 * (a trampoline), so a replay does not depend on which thread reaches a point first. */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline void point(enum tr_agent_fn fn, const void *site)
{
	int saved;

	if (__builtin_expect(!tr_agent.yield_on, 1) || tr_in_agent)
		return;
	saved = errno;
	tr_in_agent = 1;
	tr_agent_yield(fn, site);
	tr_in_agent = 0;
	errno = saved;
}

#define pct_off() (!tr_agent_pct_wanted())
#define pct_release() tr_agent_pct_guarded(tr_agent_pct_release)
#define pct_acquire() tr_agent_pct_guarded(tr_agent_pct_acquire)

/* A call that cannot block: a yield point, then the real call. */
#define WRAP(RT, NAME, FN, PARAMS, ARGS)                                            \
	typedef RT (*NAME##_fn) PARAMS;                                             \
	TR_AGENT_EXPORT RT NAME PARAMS                                              \
	{                                                                           \
		point(FN, __builtin_return_address(0));                             \
		return REAL(FN, NAME##_fn) ARGS;                                    \
	}

/* A call that may block: under PCT the token is given up while it runs. TRY, when not
 * NULL-like, is the non-blocking variant tried first while holding the token (0: done). */
#define WRAP_BLOCKING(RT, NAME, FN, PARAMS, ARGS, TRY)                              \
	typedef RT (*NAME##_fn) PARAMS;                                             \
	TR_AGENT_EXPORT RT NAME PARAMS                                              \
	{                                                                           \
		RT r;                                                               \
		point(FN, __builtin_return_address(0));                             \
		if (pct_off())                                                      \
			return REAL(FN, NAME##_fn) ARGS;                            \
		if (TRY)                                                            \
			return 0;                                                   \
		pct_release();                                                      \
		r = REAL(FN, NAME##_fn) ARGS;                                       \
		pct_acquire();                                                      \
		return r;                                                           \
	}

typedef int (*rwlock_fn)(pthread_rwlock_t *);
#define TRY_RD(l) (REAL(FN_RW_TRYRDLOCK, rwlock_fn)(l) == 0)
#define TRY_WR(l) (REAL(FN_RW_TRYWRLOCK, rwlock_fn)(l) == 0)
#define TRY_SEM(s) try_sem(s)

typedef int (*sem_try_fn)(sem_t *);

static inline bool try_sem(sem_t *s)
{
	int saved = errno;

	if (REAL(FN_SEM_TRYWAIT, sem_try_fn)(s) == 0)
		return true;
	errno = saved;
	return false;
}

/* Under PCT a mutex or semaphore that is taken does not put the thread to sleep in the
 * kernel at once: it stays runnable for the scheduler and tries again after another thread's
 * step (pct.c), so which thread goes next depends on priorities, not on wake-up latency.
 * After RETRY_NS of that it blocks for real (an error-checking mutex it owns, a semaphore
 * another process posts late). */
#define RETRY_NS 50000000ll

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

typedef int (*mutex_fn)(pthread_mutex_t *);
typedef int (*sem_fn)(sem_t *);

TR_AGENT_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
	int64_t t0 = 0;
	int rc;

	point(FN_MUTEX_LOCK, __builtin_return_address(0));
	if (pct_off())
		return REAL(FN_MUTEX_LOCK, mutex_fn)(m);
	while ((rc = REAL(FN_MUTEX_TRYLOCK, mutex_fn)(m)) == EBUSY) {
		if (!t0)
			t0 = mono_ns();
		else if (mono_ns() - t0 > RETRY_NS)
			break;
		tr_agent_pct_guarded(tr_agent_pct_blocked);
	}
	if (rc != EBUSY)
		return rc;      /* 0, or what the real lock would say (EOWNERDEAD...) */
	pct_release();
	rc = REAL(FN_MUTEX_LOCK, mutex_fn)(m);
	pct_acquire();
	return rc;
}

TR_AGENT_EXPORT int sem_wait(sem_t *s)
{
	int64_t t0 = 0;
	int rc, saved = errno;

	point(FN_SEM_WAIT, __builtin_return_address(0));
	if (pct_off())
		return REAL(FN_SEM_WAIT, sem_fn)(s);
	while ((rc = REAL(FN_SEM_TRYWAIT, sem_fn)(s)) != 0 && errno == EAGAIN) {
		if (!t0)
			t0 = mono_ns();
		else if (mono_ns() - t0 > RETRY_NS)
			break;
		tr_agent_pct_guarded(tr_agent_pct_blocked);
	}
	if (rc == 0) {
		errno = saved;
		return 0;
	}
	if (errno != EAGAIN)
		return rc;
	errno = saved;
	pct_release();
	rc = REAL(FN_SEM_WAIT, sem_fn)(s);
	pct_acquire();
	return rc;
}

WRAP(int, pthread_mutex_trylock, FN_MUTEX_TRYLOCK, (pthread_mutex_t *m), (m))
WRAP(int, pthread_mutex_unlock, FN_MUTEX_UNLOCK, (pthread_mutex_t *m), (m))
WRAP_BLOCKING(int, pthread_rwlock_rdlock, FN_RW_RDLOCK, (pthread_rwlock_t *l), (l), TRY_RD(l))
WRAP_BLOCKING(int, pthread_rwlock_wrlock, FN_RW_WRLOCK, (pthread_rwlock_t *l), (l), TRY_WR(l))
WRAP(int, pthread_rwlock_tryrdlock, FN_RW_TRYRDLOCK, (pthread_rwlock_t *l), (l))
WRAP(int, pthread_rwlock_trywrlock, FN_RW_TRYWRLOCK, (pthread_rwlock_t *l), (l))
WRAP(int, pthread_rwlock_unlock, FN_RW_UNLOCK, (pthread_rwlock_t *l), (l))
WRAP_BLOCKING(int, pthread_cond_wait, FN_COND_WAIT,
	      (pthread_cond_t *restrict c, pthread_mutex_t *restrict m), (c, m), false)
WRAP_BLOCKING(int, pthread_cond_timedwait, FN_COND_TIMEDWAIT,
	      (pthread_cond_t *restrict c, pthread_mutex_t *restrict m,
	       const struct timespec *restrict t), (c, m, t), false)
WRAP(int, pthread_cond_signal, FN_COND_SIGNAL, (pthread_cond_t *c), (c))
WRAP(int, pthread_cond_broadcast, FN_COND_BROADCAST, (pthread_cond_t *c), (c))
WRAP(int, sem_trywait, FN_SEM_TRYWAIT, (sem_t *s), (s))
WRAP_BLOCKING(int, sem_timedwait, FN_SEM_TIMEDWAIT,
	      (sem_t *restrict s, const struct timespec *restrict t), (s, t), TRY_SEM(s))
WRAP(int, sem_post, FN_SEM_POST, (sem_t *s), (s))
WRAP(pid_t, fork, FN_FORK, (void), ())
WRAP_BLOCKING(int, pthread_join, FN_PTHREAD_JOIN, (pthread_t t, void **ret), (t, ret), false)
typedef pid_t (*waitpid_fn)(pid_t, int *, int);
/* A yield point, and the deaths of children no debugger saw (deaths.c) */
TR_AGENT_EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
	bool pct = !pct_off() && !(options & WNOHANG);
	int st = 0;
	pid_t got;

	point(FN_WAITPID, __builtin_return_address(0));
	if (pct)
		pct_release();
	got = REAL(FN_WAITPID, waitpid_fn)(pid, &st, options);
	if (pct)
		pct_acquire();
	if (got > 0) {
		int saved = errno;

		tr_agent_reaped(got, st);
		errno = saved;
		if (status)
			*status = st;
	}
	return got;
}

/* wait, wait3, wait4: glibc reaches wait4 inside itself, never through waitpid: each is
 * wrapped for the deaths it reaps (no yield point: they are not in the catalogue). */
#define WRAP_REAP(NAME, FN, PARAMS, CALL, OPTIONS)                                  \
	typedef pid_t (*NAME##_fn) PARAMS;                                          \
	TR_AGENT_EXPORT pid_t NAME PARAMS                                           \
	{                                                                           \
		bool pct = !pct_off() && !((OPTIONS) & WNOHANG);                    \
		int st = 0;                                                         \
		pid_t got;                                                          \
		if (pct)                                                            \
			pct_release();                                              \
		got = REAL(FN, NAME##_fn) CALL;                                     \
		if (pct)                                                            \
			pct_acquire();                                              \
		if (got > 0) {                                                      \
			int saved = errno;                                          \
			tr_agent_reaped(got, st);                                   \
			errno = saved;                                              \
			if (status)                                                 \
				*status = st;                                       \
		}                                                                   \
		return got;                                                         \
	}
WRAP_REAP(wait, FN_WAIT, (int *status), (&st), 0)
WRAP_REAP(wait3, FN_WAIT3, (int *status, int options, struct rusage *ru),
	  (&st, options, ru), options)
WRAP_REAP(wait4, FN_WAIT4, (pid_t pid, int *status, int options, struct rusage *ru),
	  (pid, &st, options, ru), options)

typedef int (*waitid_fn)(idtype_t, id_t, siginfo_t *, int);
/* waitid says how a child ended in its siginfo; WNOWAIT leaves it to be reaped again. */
TR_AGENT_EXPORT int waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
	bool pct = !pct_off() && !(options & WNOHANG);
	int rc;

	if (pct)
		pct_release();
	rc = REAL(FN_WAITID, waitid_fn)(type, id, info, options);
	if (pct)
		pct_acquire();
	if (rc == 0 && info && !(options & WNOWAIT) && info->si_pid > 0 &&
	    (info->si_code == CLD_KILLED || info->si_code == CLD_DUMPED)) {
		int saved = errno;

		tr_agent_reaped_by(info->si_pid, info->si_status);
		errno = saved;
	}
	return rc;
}

WRAP(int, kill, FN_KILL, (pid_t pid, int sig), (pid, sig))
WRAP_BLOCKING(int, usleep, FN_USLEEP, (useconds_t us), (us), false)
WRAP_BLOCKING(int, nanosleep, FN_NANOSLEEP, (const struct timespec *req, struct timespec *rem),
	      (req, rem), false)

/* Blocking calls that are no yield point (point() finds no catalogue entry for them): PCT
 * only gives its token up around them, so that a barrier or a sleep is not a take-over. */
WRAP_BLOCKING(int, pthread_barrier_wait, FN_BARRIER_WAIT, (pthread_barrier_t *b), (b), false)
WRAP_BLOCKING(unsigned, sleep, FN_SLEEP, (unsigned s), (s), false)
WRAP_BLOCKING(int, poll, FN_POLL, (struct pollfd *fds, nfds_t n, int ms), (fds, n, ms), false)
WRAP_BLOCKING(int, accept, FN_ACCEPT, (int fd, struct sockaddr *a, socklen_t *len),
	      (fd, a, len), false)

typedef void (*pthread_exit_fn)(void *);
/* A thread leaving through pthread_exit gives the token up on its way out. */
TR_AGENT_EXPORT void pthread_exit(void *ret)
{
	if (!pct_off())
		pct_release();
	REAL(FN_PTHREAD_EXIT, pthread_exit_fn)(ret);
	__builtin_unreachable();
}

struct start {
	void *(*fn)(void *);
	void *arg;
	uint32_t ord;
};

static void *trampoline(void *p)
{
	struct start s = *(struct start *)p;

	void *ret;

	free(p);
	tr_agent_thread_start(s.ord);
	if (pct_off())
		return s.fn(s.arg);
	pct_acquire();
	ret = s.fn(s.arg);
	pct_release();
	return ret;
}

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

TR_AGENT_EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr,
				   void *(*fn)(void *), void *arg)
{
	pthread_create_fn real = REAL(FN_PTHREAD_CREATE, pthread_create_fn);
	struct start *s;
	int rc;

	point(FN_PTHREAD_CREATE, __builtin_return_address(0));
	if (!tr_agent.yield_on || tr_in_agent)
		return real(t, attr, fn, arg);
	s = malloc(sizeof(*s));
	if (!s)
		return real(t, attr, fn, arg);
	s->fn = fn;
	s->arg = arg;
	s->ord = tr_agent_thread_claim();
	if (!pct_off()) {
		tr_in_agent = 1;
		tr_agent_pct_expect(s->ord);
		tr_in_agent = 0;
	}
	rc = real(t, attr, trampoline, s);
	if (rc != 0) {
		if (!pct_off()) {
			tr_in_agent = 1;
			tr_agent_pct_unexpect(s->ord);
			tr_in_agent = 0;
		}
		free(s);
	}
	return rc;
}
