/* x86_insn.h - sizes one x86-64 instruction, so that a scan of machine code walks instruction
 * boundaries and never takes bytes inside another instruction (an immediate, a displacement)
 * for a call. It knows what gcc and clang emit in function bodies: the one-byte and 0F maps,
 * 0F38/0F3A, VEX and EVEX, x87; legacy and REX prefixes. What it cannot size it says so (0),
 * and the caller stops rather than guess. Pure: no libelf, no state. */
#ifndef TRACER_X86_INSN_H
#define TRACER_X86_INSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TR_X86_MAX_LEN 15

enum tr_x86_kind {
	TR_X86_OTHER,
	TR_X86_CALL_REL,          /* e8 rel32: call target */
	TR_X86_JMP_REL,           /* e9 rel32: jmp target (a tail call, maybe) */
	TR_X86_CALL_RIP,          /* ff /2 with disp32(%rip): call *slot */
	TR_X86_JMP_RIP,           /* ff /4 with disp32(%rip): jmp *slot */
};

/* What an instruction does to its memory operand (tr_x86_mem_access). */
enum tr_x86_access {
	TR_X86_READ  = 1 << 0,
	TR_X86_WRITE = 1 << 1,
};

struct tr_x86_insn {
	unsigned len;             /* bytes, prefixes included */
	enum tr_x86_kind kind;
	uint64_t target;          /* REL: the destination; RIP: the address of the slot read */
	/* The raw fields, for callers that look further than calls (access_scan.c). */
	uint8_t map;              /* 0: one-byte map, 1: 0F, 2: 0F38, 3: 0F3A */
	uint8_t op;               /* the opcode byte in that map */
	uint8_t rex;              /* the REX byte, or 0 */
	bool vex;                 /* VEX or EVEX encoded */
	bool lock, rep, opsize16; /* f0, f2/f3, 66 prefixes */
	bool has_modrm;
	uint8_t modrm;
	/* A memory operand whose address the instruction alone gives: disp32(%rip), an absolute
	 * disp32 (no base; with an index register when mem_indexed: an array's base), or a 64-bit
	 * moffs. mem_addr is that address. */
	bool mem_known, mem_indexed;
	uint64_t mem_addr;
	uint64_t imm;             /* the immediate of mov $imm, %reg (b8+r, c7 /0 with mod 3) */
};

/* Decodes the instruction at code[0 .. avail), which sits at address pc. Returns its length
 * (1..15) with *out filled in, or 0 when it cannot be sized: an opcode it does not know or
 * that is invalid in 64-bit mode, or an instruction running past `avail`. */
unsigned tr_x86_decode(const uint8_t *code, size_t avail, uint64_t pc, struct tr_x86_insn *out);

/* Whether a decoded instruction reads and/or writes its memory operand (enum tr_x86_access),
 * for the integer, SSE-scalar and atomic forms compilers emit for plain C data: mov loads and
 * stores, ALU ops with a memory destination (read+write), inc/dec/not/neg, shifts,
 * xchg/cmpxchg/xadd (lock-prefixed or not), movzx/movsx, cmov, setcc, movss/movsd...
 * 0 for no memory operand, lea, and every form it does not know (string ops, x87, VEX...):
 * such an instruction is skipped, never guessed at. */
unsigned tr_x86_mem_access(const struct tr_x86_insn *in);

#endif
