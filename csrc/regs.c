/* regs.c - registers through ptrace, memory through process_vm_readv, errno through TLS. */
#define _GNU_SOURCE
#include "regs.h"

#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>

int tr_regs_ptrace(pid_t tid, struct tr_regs *out)
{
	struct user_regs_struct u;

	if (ptrace(PTRACE_GETREGS, tid, NULL, &u) != 0)
		return -errno;
	out->arg[0] = u.rdi;
	out->arg[1] = u.rsi;
	out->arg[2] = u.rdx;
	out->arg[3] = u.rcx;
	out->arg[4] = u.r8;
	out->arg[5] = u.r9;
	out->sp = u.rsp;
	out->ret = u.rax;
	out->pc = u.rip;
	out->fs_base = u.fs_base;
	return 0;
}

ssize_t tr_mem_read(pid_t pid, uint64_t addr, void *buf, size_t n)
{
	struct iovec local = { buf, n };
	struct iovec remote = { (void *)(uintptr_t)addr, n };
	ssize_t got;

	if (n == 0)
		return 0;
	got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	return got < 0 ? -errno : got;
}

/* glibc's __errno_location on x86_64 is `mov disp32(%rip),%rax; add %fs:0,%rax; ret`: the
 * GOT slot it loads holds errno's offset from the thread pointer. Decoding it once costs two
 * small reads and needs neither debug info nor an inferior call. */
int tr_errno_read(pid_t tid, uint64_t errno_location, uint64_t fs_base, int *err)
{
	static const uint8_t mov_rip_rax[3] = { 0x48, 0x8b, 0x05 };
	uint8_t code[7];
	int32_t disp;
	int64_t tls_offset;
	int value;

	if (tr_mem_read(tid, errno_location, code, sizeof(code)) != (ssize_t)sizeof(code))
		return -EFAULT;
	if (memcmp(code, mov_rip_rax, sizeof(mov_rip_rax)) != 0)
		return -ENOTSUP;
	memcpy(&disp, code + 3, sizeof(disp));
	if (tr_mem_read(tid, errno_location + 7 + (int64_t)disp, &tls_offset,
			sizeof(tls_offset)) != (ssize_t)sizeof(tls_offset))
		return -EFAULT;
	if (tr_mem_read(tid, fs_base + (uint64_t)tls_offset, &value, sizeof(value)) !=
	    (ssize_t)sizeof(value))
		return -EFAULT;
	*err = value;
	return 0;
}
