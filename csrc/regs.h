/* regs.h - the few registers the decoder needs from a stopped thread (x86_64 SysV ABI),
 * and reading the tracee's memory without the debugger's help. */
#ifndef TRACER_REGS_H
#define TRACER_REGS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tr_regs {
	uint64_t arg[6];   /* rdi rsi rdx rcx r8 r9 */
	uint64_t sp;       /* rsp: at function entry, [sp] is the return address */
	uint64_t ret;      /* rax */
	uint64_t pc;
	uint64_t fs_base;  /* thread pointer: where errno lives */
};

/* Reads a stopped thread's registers with PTRACE_GETREGS. Works only from the thread that
 * ptrace-attached it (gdb's native target runs Python on that thread). Returns 0 or -errno. */
int tr_regs_ptrace(pid_t tid, struct tr_regs *out);

/* process_vm_readv of up to n bytes; returns the bytes read (possibly short) or -errno. */
ssize_t tr_mem_read(pid_t pid, uint64_t addr, void *buf, size_t n);

/* Reads thread tid's errno, given the runtime address of glibc's __errno_location and the
 * thread's fs_base. Returns 0, -ENOTSUP (unexpected code there) or -EFAULT. */
int tr_errno_read(pid_t tid, uint64_t errno_location, uint64_t fs_base, int *err);

#endif
