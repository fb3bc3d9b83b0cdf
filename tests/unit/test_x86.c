/* test_x86.c - the x86-64 length decoder the -O0 call scanner walks code with: lengths of what
 * gcc and clang emit, the calls it reports, and bytes that only look like a call. */
#include <criterion/criterion.h>

#include <string.h>

#include "x86_insn.h"

struct sized {
	const char *what;
	unsigned len;
	uint8_t bytes[16];
};

static const struct sized common[] = {
	{ "endbr64", 4, { 0xf3, 0x0f, 0x1e, 0xfa } },
	{ "push %rbp", 1, { 0x55 } },
	{ "mov %rsp,%rbp", 3, { 0x48, 0x89, 0xe5 } },
	{ "sub $0x20,%rsp", 4, { 0x48, 0x83, 0xec, 0x20 } },
	{ "sub $0x1000,%rsp", 7, { 0x48, 0x81, 0xec, 0x00, 0x10, 0x00, 0x00 } },
	{ "mov %edi,-0x14(%rbp)", 3, { 0x89, 0x7d, 0xec } },
	{ "mov %fs:0x28,%rax", 9, { 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00 } },
	{ "lea 0x0(%rip),%rax", 7, { 0x48, 0x8d, 0x05, 0x00, 0x00, 0x00, 0x00 } },
	{ "movl $0x0,-0x4(%rbp)", 7, { 0xc7, 0x45, 0xfc, 0x00, 0x00, 0x00, 0x00 } },
	{ "movw $0x1,-0x6(%rbp)", 6, { 0x66, 0xc7, 0x45, 0xfa, 0x01, 0x00 } },
	{ "movabs $imm64,%rax", 10, { 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8 } },
	{ "mov $imm32,%eax", 5, { 0xb8, 1, 2, 3, 4 } },
	{ "testb $0x1,(%rax)", 3, { 0xf6, 0x00, 0x01 } },
	{ "notl (%rax)", 2, { 0xf7, 0x10 } },
	{ "testl $imm32,(%rax)", 6, { 0xf7, 0x00, 1, 2, 3, 4 } },
	{ "movzbl (%rax),%eax", 3, { 0x0f, 0xb6, 0x00 } },
	{ "je rel32", 6, { 0x0f, 0x84, 0, 0, 0, 0 } },
	{ "jne rel8", 2, { 0x75, 0x10 } },
	{ "cltq", 2, { 0x48, 0x98 } },
	{ "pxor %xmm0,%xmm0", 4, { 0x66, 0x0f, 0xef, 0xc0 } },
	{ "movss 0x10(%rip),%xmm0", 8, { 0xf3, 0x0f, 0x10, 0x05, 0x10, 0, 0, 0 } },
	{ "pshufd $0,%xmm0,%xmm1", 5, { 0x66, 0x0f, 0x70, 0xc8, 0x00 } },
	{ "pshufb %xmm1,%xmm0 (0f38)", 5, { 0x66, 0x0f, 0x38, 0x00, 0xc1 } },
	{ "palignr $8 (0f3a)", 6, { 0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x08 } },
	{ "vmovdqu (%rsi),%ymm0 (VEX2)", 4, { 0xc5, 0xfe, 0x6f, 0x06 } },
	{ "vpcmpeqb (%rdi),%ymm0,%ymm1 (VEX3)", 5, { 0xc4, 0xe2, 0x7d, 0x74, 0x0f } },
	{ "vzeroupper", 3, { 0xc5, 0xf8, 0x77 } },
	{ "vmovdqu64 (%rsi),%zmm16 (EVEX)", 6, { 0x62, 0xe1, 0xfe, 0x48, 0x6f, 0x06 } },
	{ "fldt 0x10(%rbp) (x87)", 3, { 0xdb, 0x6d, 0x10 } },
	{ "nopw 0x0(%rax,%rax,1)", 6, { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
	{ "cs nopw 0x0(%rax,%rax,1)", 11, { 0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 } },
	{ "rep stos %rax,(%rdi)", 3, { 0xf3, 0x48, 0xab } },
	{ "lea 0x0(,%rax,8),%rdx", 8, { 0x48, 0x8d, 0x14, 0xc5, 0, 0, 0, 0 } },
	{ "enter $16,$0", 4, { 0xc8, 0x10, 0x00, 0x00 } },
	{ "ret $8", 3, { 0xc2, 0x08, 0x00 } },
	{ "syscall", 2, { 0x0f, 0x05 } },
	{ "leave", 1, { 0xc9 } },
	{ "ret", 1, { 0xc3 } },
	{ "int3", 1, { 0xcc } },
};

Test(x86_insn, sizes_what_compilers_emit)
{
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
		struct tr_x86_insn in;
		unsigned len = tr_x86_decode(common[i].bytes, sizeof(common[i].bytes), 0x1000, &in);

		cr_expect_eq(len, common[i].len, "%s: %u bytes, expected %u", common[i].what, len,
			     common[i].len);
		cr_expect_eq(in.kind, TR_X86_OTHER, "%s is not a call", common[i].what);
	}
}

Test(x86_insn, calls_and_jumps)
{
	static const uint8_t call[] = { 0xe8, 0xfb, 0xff, 0xff, 0xff };      /* call .-0 */
	static const uint8_t jmp[] = { 0xe9, 0x10, 0x00, 0x00, 0x00 };
	static const uint8_t call_got[] = { 0xff, 0x15, 0x20, 0x00, 0x00, 0x00 };
	static const uint8_t jmp_got[] = { 0xff, 0x25, 0x20, 0x00, 0x00, 0x00 };
	static const uint8_t bnd_jmp_got[] = { 0xf2, 0xff, 0x25, 0x20, 0x00, 0x00, 0x00 };
	static const uint8_t call_reg[] = { 0xff, 0xd0 };                    /* call *%rax */
	struct tr_x86_insn in;

	cr_assert_eq(tr_x86_decode(call, sizeof(call), 0x1000, &in), 5);
	cr_expect_eq(in.kind, TR_X86_CALL_REL);
	cr_expect_eq(in.target, 0x1000);
	cr_assert_eq(tr_x86_decode(jmp, sizeof(jmp), 0x1000, &in), 5);
	cr_expect_eq(in.kind, TR_X86_JMP_REL);
	cr_expect_eq(in.target, 0x1015);
	cr_assert_eq(tr_x86_decode(call_got, sizeof(call_got), 0x1000, &in), 6);
	cr_expect_eq(in.kind, TR_X86_CALL_RIP);
	cr_expect_eq(in.target, 0x1026);
	cr_assert_eq(tr_x86_decode(jmp_got, sizeof(jmp_got), 0x1000, &in), 6);
	cr_expect_eq(in.kind, TR_X86_JMP_RIP);
	cr_assert_eq(tr_x86_decode(bnd_jmp_got, sizeof(bnd_jmp_got), 0x1000, &in), 7);
	cr_expect_eq(in.kind, TR_X86_JMP_RIP);
	cr_expect_eq(in.target, 0x1027);
	cr_assert_eq(tr_x86_decode(call_reg, sizeof(call_reg), 0x1000, &in), 2);
	cr_expect_eq(in.kind, TR_X86_OTHER);
}

/* The case the byte scanner got wrong: an e8 inside a movabs immediate, followed by four bytes
 * that are exactly the distance to a "PLT stub" at 0x2000. Walking instruction boundaries
 * reports the real call at 0x100c and nothing at 0x1002. */
Test(x86_insn, e8_inside_an_immediate_is_not_a_call)
{
	uint8_t code[32];
	size_t n = 0;
	const uint64_t base = 0x1000, stub = 0x2000;
	int32_t rel;

	code[n++] = 0x48;                                  /* movabs $imm64, %rax */
	code[n++] = 0xb8;
	code[n++] = 0xe8;                                  /* 0x1002: looks like call stub */
	rel = (int32_t)(stub - (base + 2 + 5));
	memcpy(code + n, &rel, 4);
	n += 4;
	code[n++] = 0;
	code[n++] = 0;
	code[n++] = 0;
	code[n++] = 0x90;                                  /* 0x100a: nop */
	code[n++] = 0x90;                                  /* 0x100b: nop */
	code[n++] = 0xe8;                                  /* 0x100c: call stub, for real */
	rel = (int32_t)(stub - (base + n + 4));
	memcpy(code + n, &rel, 4);
	n += 4;
	code[n++] = 0xc3;

	uint64_t calls[4];
	size_t ncalls = 0;
	for (size_t i = 0; i < n;) {
		struct tr_x86_insn in;
		unsigned len = tr_x86_decode(code + i, n - i, base + i, &in);

		cr_assert_gt(len, 0, "undecodable at +%zu", i);
		if (in.kind == TR_X86_CALL_REL && in.target == stub && ncalls < 4)
			calls[ncalls++] = base + i;
		i += len;
	}
	cr_assert_eq(ncalls, 1);
	cr_expect_eq(calls[0], 0x100c);
	/* ...where a byte match would also have taken 0x1002 */
	int32_t fake;
	memcpy(&fake, code + 3, 4);
	cr_expect_eq(base + 2 + 5 + (int64_t)fake, stub);
}

Test(x86_insn, refuses_what_it_cannot_size)
{
	static const uint8_t invalid[] = { 0x06 };                     /* push %es: not in 64-bit */
	static const uint8_t three_dnow[] = { 0x0f, 0x0f, 0xc0, 0x9e };
	static const uint8_t truncated[] = { 0x48, 0xb8, 1, 2, 3 };     /* movabs cut short */
	static const uint8_t prefixes_only[] = { 0x66, 0x66, 0x66 };
	static const uint8_t longest[15] = { 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
					    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x90 };
	static const uint8_t too_long[16] = { 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
					     0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x90 };
	struct tr_x86_insn in;

	cr_expect_eq(tr_x86_decode(invalid, sizeof(invalid), 0, &in), 0);
	cr_expect_eq(tr_x86_decode(three_dnow, sizeof(three_dnow), 0, &in), 0);
	cr_expect_eq(tr_x86_decode(truncated, sizeof(truncated), 0, &in), 0);
	cr_expect_eq(tr_x86_decode(prefixes_only, sizeof(prefixes_only), 0, &in), 0);
	cr_expect_eq(tr_x86_decode(longest, sizeof(longest), 0, &in), 15);
	cr_expect_eq(tr_x86_decode(too_long, sizeof(too_long), 0, &in), 0);
	cr_expect_eq(tr_x86_decode(too_long, 0, 0, &in), 0);
}

/* What the access scanner (access_scan.c) asks: the address of a RIP-relative or absolute
 * memory operand and whether it is read, written or both; 0 for what it must skip. */
struct accessed {
	const char *what;
	unsigned access;
	bool known;
	uint64_t addr;             /* at pc 0x1000 */
	uint8_t bytes[16];
};

static const struct accessed accesses[] = {
	{ "mov 0x10(%rip),%eax", TR_X86_READ, true, 0x1016, { 0x8b, 0x05, 0x10, 0, 0, 0 } },
	{ "movl $1,0x10(%rip)", TR_X86_WRITE, true, 0x101a,
	  { 0xc7, 0x05, 0x10, 0, 0, 0, 1, 0, 0, 0 } },
	{ "mov %rax,0x10(%rip)", TR_X86_WRITE, true, 0x1017, { 0x48, 0x89, 0x05, 0x10, 0, 0, 0 } },
	{ "addl $1,0x10(%rip)", TR_X86_READ | TR_X86_WRITE, true, 0x1017,
	  { 0x83, 0x05, 0x10, 0, 0, 0, 1 } },
	{ "cmpl $0,0x10(%rip)", TR_X86_READ, true, 0x1017, { 0x83, 0x3d, 0x10, 0, 0, 0, 0 } },
	{ "lock addl $1,0x10(%rip)", TR_X86_READ | TR_X86_WRITE, true, 0x1018,
	  { 0xf0, 0x83, 0x05, 0x10, 0, 0, 0, 1 } },
	{ "lock cmpxchg %edx,0x10(%rip)", TR_X86_READ | TR_X86_WRITE, true, 0x1018,
	  { 0xf0, 0x0f, 0xb1, 0x15, 0x10, 0, 0, 0 } },
	{ "lock xadd %eax,0x10(%rip)", TR_X86_READ | TR_X86_WRITE, true, 0x1018,
	  { 0xf0, 0x0f, 0xc1, 0x05, 0x10, 0, 0, 0 } },
	{ "xchg %eax,0x10(%rip)", TR_X86_READ | TR_X86_WRITE, true, 0x1016,
	  { 0x87, 0x05, 0x10, 0, 0, 0 } },
	{ "movzbl 0x10(%rip),%eax", TR_X86_READ, true, 0x1017, { 0x0f, 0xb6, 0x05, 0x10, 0, 0, 0 } },
	{ "movss 0x10(%rip),%xmm0", TR_X86_READ, true, 0x1018,
	  { 0xf3, 0x0f, 0x10, 0x05, 0x10, 0, 0, 0 } },
	{ "movsd %xmm0,0x10(%rip)", TR_X86_WRITE, true, 0x1018,
	  { 0xf2, 0x0f, 0x11, 0x05, 0x10, 0, 0, 0 } },
	{ "sete 0x10(%rip)", TR_X86_WRITE, true, 0x1017, { 0x0f, 0x94, 0x05, 0x10, 0, 0, 0 } },
	{ "incl 0x10(%rip)", TR_X86_READ | TR_X86_WRITE, true, 0x1016, { 0xff, 0x05, 0x10, 0, 0, 0 } },
	{ "mov 0x601040,%eax (absolute)", TR_X86_READ, true, 0x601040,
	  { 0x8b, 0x04, 0x25, 0x40, 0x10, 0x60, 0 } },
	{ "mov 0x601040(,%rax,4),%edx (indexed)", TR_X86_READ, true, 0x601040,
	  { 0x8b, 0x14, 0x85, 0x40, 0x10, 0x60, 0 } },
	{ "movabs 0x601040,%eax (moffs)", TR_X86_READ, true, 0x601040,
	  { 0xa1, 0x40, 0x10, 0x60, 0, 0, 0, 0, 0 } },
	/* Not a known address (thread-local, a stack slot), no memory, forms not in the table. */
	{ "lea 0x10(%rip),%rax", 0, true, 0x1017, { 0x48, 0x8d, 0x05, 0x10, 0, 0, 0 } },
	{ "mov %fs:0x28,%rax", TR_X86_READ, false, 0, { 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0 } },
	{ "mov %edi,-0x14(%rbp)", TR_X86_WRITE, false, 0, { 0x89, 0x7d, 0xec } },
	{ "mov %rsp,%rbp", 0, false, 0, { 0x48, 0x89, 0xe5 } },
	{ "vmovdqu 0x10(%rip),%ymm0", 0, true, 0x1018, { 0xc5, 0xfe, 0x6f, 0x05, 0x10, 0, 0, 0 } },
	{ "fldt 0x10(%rip) (x87)", 0, true, 0x1016, { 0xdb, 0x2d, 0x10, 0, 0, 0 } },
	{ "rep stos %rax,(%rdi)", 0, false, 0, { 0xf3, 0x48, 0xab } },
};

Test(x86_insn, memory_operands)
{
	for (size_t i = 0; i < sizeof(accesses) / sizeof(accesses[0]); i++) {
		const struct accessed *a = &accesses[i];
		struct tr_x86_insn in;

		cr_assert_neq(tr_x86_decode(a->bytes, sizeof(a->bytes), 0x1000, &in), 0, "%s", a->what);
		cr_expect_eq(tr_x86_mem_access(&in), a->access, "%s: access %u", a->what,
			     tr_x86_mem_access(&in));
		cr_expect_eq(in.mem_known, a->known, "%s: known", a->what);
		if (a->known)
			cr_expect_eq(in.mem_addr, a->addr, "%s: %#llx", a->what,
				     (unsigned long long)in.mem_addr);
	}
}

Test(x86_insn, mov_immediate_and_lock)
{
	const uint8_t mov_edx[] = { 0xba, 0x36, 0x11, 0x40, 0x00 };      /* mov $0x401136,%edx */
	const uint8_t lock_inc[] = { 0xf0, 0xff, 0x05, 0, 0, 0, 0 };
	struct tr_x86_insn in;

	cr_assert_eq(tr_x86_decode(mov_edx, sizeof(mov_edx), 0x1000, &in), 5);
	cr_expect_eq(in.imm, 0x401136);
	cr_expect_eq(in.op, 0xba);
	cr_assert_eq(tr_x86_decode(lock_inc, sizeof(lock_inc), 0x1000, &in), 7);
	cr_expect(in.lock);
}
