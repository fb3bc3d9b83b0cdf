/* x86_insn.h - sizes one x86-64 instruction, so that a scan of machine code walks instruction
 * boundaries and never takes bytes inside another instruction (an immediate, a displacement)
 * for a call. It knows what gcc and clang emit in function bodies: the one-byte and 0F maps,
 * 0F38/0F3A, VEX and EVEX, x87; legacy and REX prefixes. What it cannot size it says so (0),
 * and the caller stops rather than guess. Pure: no libelf, no state. */
#ifndef TRACER_X86_INSN_H
#define TRACER_X86_INSN_H

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

struct tr_x86_insn {
	unsigned len;             /* bytes, prefixes included */
	enum tr_x86_kind kind;
	uint64_t target;          /* REL: the destination; RIP: the address of the slot read */
};

/* Decodes the instruction at code[0 .. avail), which sits at address pc. Returns its length
 * (1..15) with *out filled in, or 0 when it cannot be sized: an opcode it does not know or
 * that is invalid in 64-bit mode, or an instruction running past `avail`. */
unsigned tr_x86_decode(const uint8_t *code, size_t avail, uint64_t pc, struct tr_x86_insn *out);

#endif
