/* deaths.c - the deaths a debugger does not see, recorded into the ring.
 *
 * lldb follows no fork: a forked child runs untraced, and when it crashes nobody but its
 * parent learns of it. So in a process that no debugger traces (TracerPid 0), the agent takes
 * the crash signals whose disposition is still the default, records {signal, pid, tid, pc,
 * address} into the ring's death table, and lets the signal kill the process as it would
 * have (SA_RESETHAND: the default action is back before the handler runs; a fault re-faults
 * on return, a sent signal is raised again). A traced process keeps its dispositions
 * untouched: its debugger stops it at the signal itself, and `tracer` reads a caught signal
 * as one the program handles. A signal no handler sees (SIGKILL) is recorded by the parent
 * instead, when its wait(), waitpid(), wait3(), wait4() or waitid() reaps a child of the tree
 * killed by a signal.
 *
 * The backtrace is a frame-pointer walk from the signal's context: every word is read with
 * process_vm_readv (a syscall: an unmapped address fails, never faults), the chain must go up
 * the stack from the faulting sp in steps under 16 MiB, and at most TR_RING_FRAMES are kept;
 * only syscalls and stores, so async-signal-safe, and it cannot fault inside the handler
 * (which would change the death). Code built without frame pointers ends the walk early (or
 * past its own frame: the caller's callers show). libgcc's unwinder is not used: it would
 * read through whatever a corrupt stack holds with plain loads.
 *
 * Not done: a crash on an overflowed stack (no alternate stack is installed: the kernel kills
 * the process). */
#define _GNU_SOURCE
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS };
#define NCRASH (sizeof(crash_signals) / sizeof(crash_signals[0]))

static bool traced(void)
{
	char buf[2048];
	const char *p;
	ssize_t n;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return true;                  /* cannot tell: leave the dispositions alone */
	n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	syscall(SYS_close, fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	p = strstr(buf, "\nTracerPid:");
	if (!p)
		return true;
	for (p += 11; *p == ' ' || *p == '\t'; p++)
		;
	return *p != '0';
}

#define FRAME_STEP_MAX (16ull << 20)   /* a caller's frame further up than this: garbage */

/* frames[0] = pc, then the return addresses of the frame-pointer chain. How many. */
static uint32_t walk_frames(const ucontext_t *uc, uint64_t *frames)
{
	uint64_t fp = (uint64_t)uc->uc_mcontext.gregs[REG_RBP];
	uint64_t sp = (uint64_t)uc->uc_mcontext.gregs[REG_RSP];
	uint32_t n = 0;

	frames[n++] = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
	while (n < TR_RING_FRAMES && fp >= sp && fp - sp < FRAME_STEP_MAX && !(fp & 7)) {
		uint64_t pair[2];    /* saved fp, return address */

		if (tr_agent_copy_in(pair, (const void *)(uintptr_t)fp, sizeof(pair), false) !=
		    sizeof(pair) || pair[1] < 4096)
			break;
		frames[n++] = pair[1];
		sp = fp + sizeof(pair);
		fp = pair[0];
	}
	return n;
}

static void on_crash(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	uint64_t pc = uc ? (uint64_t)uc->uc_mcontext.gregs[REG_RIP] : 0;
	bool fault = si && si->si_code > 0 && sig != SIGABRT && sig != SIGSYS;
	int saved = errno;
	uint64_t frames[TR_RING_FRAMES];
	uint32_t nframes = 0;

	if (tr_agent.on) {
		if (uc)
			nframes = walk_frames(uc, frames);
		tr_shared_ring_death(&tr_agent.ring, TR_DEATH_HANDLER, tr_agent.pid,
				     (int32_t)syscall(SYS_gettid), sig, pc,
				     fault ? (uint64_t)(uintptr_t)si->si_addr : 0, frames, nframes);
	}
	errno = saved;
	/* SA_RESETHAND put the default action back: a fault happens again on return; a sent
	 * signal (abort(), kill) is raised again and delivered when the handler returns */
	if (!fault)
		syscall(SYS_tgkill, tr_agent.pid, (pid_t)syscall(SYS_gettid), sig);
}

void tr_agent_deaths_arm(void)
{
	struct sigaction sa, old;
	bool untraced = !traced();

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_crash;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NCRASH; i++) {
		if (sigaction(crash_signals[i], NULL, &old) != 0)
			continue;
		bool ours = (old.sa_flags & SA_SIGINFO) && old.sa_sigaction == on_crash;

		if (untraced && !ours && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL)
			sigaction(crash_signals[i], &sa, NULL);
		else if (!untraced && ours)     /* a fork child that a debugger follows */
			signal(crash_signals[i], SIG_DFL);
	}
}

void tr_agent_reaped_by(pid_t pid, int sig)
{
	if (!tr_agent.on || pid <= 0 || sig <= 0)
		return;
	if (tr_shared_ring_proc_find(&tr_agent.ring, pid) < 0)
		return;                       /* not a process of the traced tree */
	tr_shared_ring_death(&tr_agent.ring, TR_DEATH_REAPED, pid, 0, sig, 0, 0, NULL, 0);
}

void tr_agent_reaped(pid_t pid, int status)
{
	if (WIFSIGNALED(status))
		tr_agent_reaped_by(pid, WTERMSIG(status));
}
