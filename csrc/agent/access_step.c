/* access_step.c - PCT's scheduling point at a shared-access site.
 *
 * A load or store is no call the agent can wrap: the debugger stops the thread at the
 * site's breakpoint, saves the caller-saved general registers, makes the thread call
 * tracer_agent_access_step() and restores them when it is back at the site (as it inserts
 * usleep() for the other strategies: tracerlib/yield_breakpoints.py). The step may hold the
 * thread here, without the debugger, until PCT's priorities let it run.
 *
 * The thread was stopped between two arbitrary instructions, so everything the program may
 * keep in a register the debugger does not restore is kept here: errno, and the SSE/AVX
 * state (the step's /proc reads go through libc, whose string functions use vector
 * registers). This function itself touches general registers only, and saves the vector
 * state before anything else runs. */
#define _GNU_SOURCE
#include "agent.h"

#include <cpuid.h>
#include <stdatomic.h>

#define XSAVE_SSE_AVX 0x6       /* XCR0 bits 1 and 2: XMM and the upper halves of YMM */
#define XSAVE_AREA 1024         /* legacy 512 + header 64 + AVX 256, rounded up */

/* XSAVE enabled by the kernel (CPUID.1:ECX.OSXSAVE); else FXSAVE, which every x86-64 has. */
__attribute__((target("general-regs-only")))
static bool have_xsave(void)
{
	static int known;               /* 0: not asked yet, 1: no, 2: yes */
	unsigned int a, b, c, d;

	if (!known)
		known = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE) ? 2 : 1;
	return known == 2;
}

TR_AGENT_EXPORT __attribute__((target("general-regs-only,xsave,fxsr"), noinline))
void tracer_agent_access_step(void)
{
	unsigned char area[XSAVE_AREA] __attribute__((aligned(64)));
	volatile uint64_t *header = (volatile uint64_t *)(area + 512);
	bool xsave = have_xsave();

	if (!tr_agent.yield_on || tr_in_agent || !tr_agent_pct_active())
		return;
	for (int i = 0; i < 8; i++)     /* XRSTOR faults on a header it did not write */
		header[i] = 0;
	if (xsave)
		__builtin_ia32_xsave64(area, XSAVE_SSE_AVX);
	else
		__builtin_ia32_fxsave64(area);
	atomic_fetch_add_explicit(&tr_agent.ring.hdr->yield_points, 1, memory_order_relaxed);
	tr_agent_pct_guarded(tr_agent_pct_step);       /* (keeps errno) */
	if (xsave)
		__builtin_ia32_xrstor64(area, XSAVE_SSE_AVX);
	else
		__builtin_ia32_fxrstor64(area);
}
