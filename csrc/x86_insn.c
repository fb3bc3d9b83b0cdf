/* x86_insn.c - an x86-64 instruction length decoder (see x86_insn.h). Tables follow the Intel
 * SDM's opcode maps (volume 2, appendix A) for 64-bit mode. */
#include "x86_insn.h"

#include <stdbool.h>
#include <string.h>

enum imm {                   /* immediate (or displacement-like operand) after ModRM */
	IMM_NONE,
	IMM_8,
	IMM_16,
	IMM_Z,                    /* 16 with a 66 prefix, else 32 (never 64) */
	IMM_V,                    /* mov r64, imm64 with REX.W, else as IMM_Z */
	IMM_16_8,                 /* enter: imm16, imm8 */
	IMM_MOFFS,                /* mov al/ax, moffs: 8 bytes, 4 with a 67 prefix */
	IMM_REL32,                /* rel32, whatever the prefixes */
	IMM_F6,                   /* test r/m8, imm8 when ModRM.reg is 0 or 1 */
	IMM_F7,                   /* test r/m, immZ when ModRM.reg is 0 or 1 */
	INVALID,
};

struct form {
	bool modrm;
	enum imm imm;
};

/* The one-byte map. */
static struct form map0(uint8_t op)
{
	if (op < 0x40) {
		switch (op & 7) {
		case 0: case 1: case 2: case 3:
			return (struct form){ true, IMM_NONE };
		case 4:
			return (struct form){ false, IMM_8 };
		case 5:
			return (struct form){ false, IMM_Z };
		default:                  /* push/pop seg, daa... (invalid); prefixes are eaten */
			return (struct form){ false, INVALID };
		}
	}
	if (op >= 0x50 && op <= 0x5f)                       /* push/pop r64 */
		return (struct form){ false, IMM_NONE };
	if (op >= 0x70 && op <= 0x7f)                       /* jcc rel8 */
		return (struct form){ false, IMM_8 };
	if (op >= 0x84 && op <= 0x8f)                       /* test, xchg, mov, lea, pop r/m */
		return (struct form){ true, IMM_NONE };
	if ((op >= 0x90 && op <= 0x99) || (op >= 0x9b && op <= 0x9f))
		return (struct form){ false, IMM_NONE };
	if (op >= 0xb0 && op <= 0xb7)
		return (struct form){ false, IMM_8 };
	if (op >= 0xb8 && op <= 0xbf)
		return (struct form){ false, IMM_V };
	if (op >= 0xd8 && op <= 0xdf)                       /* x87 */
		return (struct form){ true, IMM_NONE };
	switch (op) {
	case 0x63: return (struct form){ true, IMM_NONE };  /* movsxd */
	case 0x68: return (struct form){ false, IMM_Z };
	case 0x69: return (struct form){ true, IMM_Z };
	case 0x6a: return (struct form){ false, IMM_8 };
	case 0x6b: return (struct form){ true, IMM_8 };
	case 0x6c: case 0x6d: case 0x6e: case 0x6f:
		return (struct form){ false, IMM_NONE };
	case 0x80: case 0x83: case 0xc0: case 0xc1: case 0xc6:
		return (struct form){ true, IMM_8 };
	case 0x81: case 0xc7:
		return (struct form){ true, IMM_Z };
	case 0xa0: case 0xa1: case 0xa2: case 0xa3:
		return (struct form){ false, IMM_MOFFS };
	case 0xa4: case 0xa5: case 0xa6: case 0xa7:
	case 0xaa: case 0xab: case 0xac: case 0xad: case 0xae: case 0xaf:
		return (struct form){ false, IMM_NONE };
	case 0xa8: return (struct form){ false, IMM_8 };
	case 0xa9: return (struct form){ false, IMM_Z };
	case 0xc2: case 0xca:
		return (struct form){ false, IMM_16 };
	case 0xc3: case 0xc9: case 0xcb: case 0xcc: case 0xcf:
		return (struct form){ false, IMM_NONE };
	case 0xc8: return (struct form){ false, IMM_16_8 };
	case 0xcd: return (struct form){ false, IMM_8 };
	case 0xd0: case 0xd1: case 0xd2: case 0xd3:
		return (struct form){ true, IMM_NONE };
	case 0xd7: return (struct form){ false, IMM_NONE };
	case 0xe0: case 0xe1: case 0xe2: case 0xe3:         /* loop, jrcxz */
	case 0xe4: case 0xe5: case 0xe6: case 0xe7:         /* in, out imm8 */
	case 0xeb:
		return (struct form){ false, IMM_8 };
	case 0xe8: case 0xe9:
		return (struct form){ false, IMM_REL32 };
	case 0xec: case 0xed: case 0xee: case 0xef:
	case 0xf1: case 0xf4: case 0xf5:
	case 0xf8: case 0xf9: case 0xfa: case 0xfb: case 0xfc: case 0xfd:
		return (struct form){ false, IMM_NONE };
	case 0xf6: return (struct form){ true, IMM_F6 };
	case 0xf7: return (struct form){ true, IMM_F7 };
	case 0xfe: case 0xff:
		return (struct form){ true, IMM_NONE };
	default:                  /* 0x40-0x4f (a REX after a REX), 0x60-0x62, 0x9a, 0xce... */
		return (struct form){ false, INVALID };
	}
}

/* The 0F map, with or without VEX/EVEX (vex: only what those can encode). */
static struct form map1(uint8_t op, bool vex)
{
	if (vex)
		return (struct form){ op != 0x77, (op >= 0x70 && op <= 0x73) || op == 0xc2 ||
						   op == 0xc4 || op == 0xc5 || op == 0xc6
						   ? IMM_8 : IMM_NONE };
	if (op >= 0x80 && op <= 0x8f)                       /* jcc rel32 */
		return (struct form){ false, IMM_REL32 };
	if (op >= 0xc8 && op <= 0xcf)                       /* bswap */
		return (struct form){ false, IMM_NONE };
	switch (op) {
	case 0x05: case 0x06: case 0x07: case 0x08: case 0x09: case 0x0b: case 0x0e:
	case 0x30: case 0x31: case 0x32: case 0x33: case 0x34: case 0x35: case 0x37:
	case 0x77: case 0xa0: case 0xa1: case 0xa2: case 0xa8: case 0xa9: case 0xaa:
		return (struct form){ false, IMM_NONE };    /* syscall, rdtsc, cpuid, push fs... */
	case 0x04: case 0x0a: case 0x0c: case 0x0f:         /* 0F 0F: 3DNow!, not in our code */
	case 0x24: case 0x25: case 0x26: case 0x27: case 0x36:
	case 0x39: case 0x3b: case 0x3c: case 0x3d: case 0x3e: case 0x3f:
	case 0x7a: case 0x7b: case 0xa6: case 0xa7:
		return (struct form){ false, INVALID };
	case 0x70: case 0x71: case 0x72: case 0x73:
	case 0xa4: case 0xac: case 0xba: case 0xc2: case 0xc4: case 0xc5: case 0xc6:
		return (struct form){ true, IMM_8 };
	default:
		return (struct form){ true, IMM_NONE };
	}
}

static bool is_legacy_prefix(uint8_t b)
{
	switch (b) {
	case 0x66: case 0x67: case 0xf0: case 0xf2: case 0xf3:
	case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65:
		return true;
	default:
		return false;
	}
}

unsigned tr_x86_decode(const uint8_t *code, size_t avail, uint64_t pc, struct tr_x86_insn *out)
{
	size_t max = avail < TR_X86_MAX_LEN ? avail : TR_X86_MAX_LEN;
	size_t i = 0;
	bool opsize16 = false, addr32 = false, rex_w = false, vex = false, fsgs = false;
	int map = 0;
	uint8_t op, rex = 0;

	memset(out, 0, sizeof(*out));
	while (i < max && is_legacy_prefix(code[i])) {
		opsize16 |= code[i] == 0x66;
		addr32 |= code[i] == 0x67;
		fsgs |= code[i] == 0x64 || code[i] == 0x65;     /* thread-local: not an address */
		out->lock |= code[i] == 0xf0;
		out->rep |= code[i] == 0xf2 || code[i] == 0xf3;
		i++;
	}
	if (i < max && (code[i] & 0xf0) == 0x40) {          /* REX: last before the opcode */
		rex = code[i++];
		rex_w = rex & 0x08;
	}
	if (i >= max)
		return 0;
	op = code[i++];
	if (op == 0xc5 || op == 0xc4 || op == 0x62) {       /* VEX2, VEX3, EVEX (64-bit mode) */
		size_t payload = op == 0xc5 ? 1 : op == 0xc4 ? 2 : 3;

		if (i + payload >= max)
			return 0;
		map = op == 0xc5 ? 1 : op == 0xc4 ? (code[i] & 0x1f) : (code[i] & 0x07);
		if (op == 0xc4)
			rex_w = code[i + 1] & 0x80;
		if (map < 1 || map > 3)
			return 0;
		i += payload;
		op = code[i++];
		vex = true;
	} else if (op == 0x0f) {
		if (i >= max)
			return 0;
		op = code[i++];
		map = 1;
		if (op == 0x38 || op == 0x3a) {
			map = op == 0x38 ? 2 : 3;
			if (i >= max)
				return 0;
			op = code[i++];
		}
	}

	struct form f = map == 0 ? map0(op)
		      : map == 1 ? map1(op, vex)
		      : (struct form){ true, map == 3 ? IMM_8 : IMM_NONE };
	if (f.imm == INVALID)
		return 0;

	unsigned modrm_at = 0, disp = 0, imm = 0;
	uint8_t reg = 0;
	bool riprel = false, absolute = false;
	if (f.modrm) {
		if (i >= max)
			return 0;
		uint8_t m = code[i];
		uint8_t mod = m >> 6, rm = m & 7;

		modrm_at = (unsigned)i++;
		reg = (m >> 3) & 7;
		if (mod != 3) {
			if (rm == 4) {                      /* SIB */
				if (i >= max)
					return 0;
				if (mod == 0 && (code[i] & 7) == 5) {
					disp = 4;           /* no base: disp32 is an address */
					absolute = true;
					out->mem_indexed = ((code[i] >> 3) & 7) != 4 || (rex & 0x02);
				}
				i++;
			} else if (mod == 0 && rm == 5) {
				disp = 4;
				riprel = true;
			}
			if (mod == 1)
				disp = 1;
			else if (mod == 2)
				disp = 4;
		}
	}
	switch (f.imm) {
	case IMM_NONE: imm = 0; break;
	case IMM_8: imm = 1; break;
	case IMM_16: imm = 2; break;
	case IMM_Z: imm = opsize16 && !rex_w ? 2 : 4; break;
	case IMM_V: imm = rex_w ? 8 : opsize16 ? 2 : 4; break;
	case IMM_16_8: imm = 3; break;
	case IMM_MOFFS: imm = addr32 ? 4 : 8; break;
	case IMM_REL32: imm = 4; break;
	case IMM_F6: imm = reg <= 1 ? 1 : 0; break;
	case IMM_F7: imm = reg <= 1 ? (opsize16 && !rex_w ? 2 : 4) : 0; break;
	case INVALID: return 0;
	}
	if (i + disp + imm > max)
		return 0;
	out->len = (unsigned)(i + disp + imm);
	out->map = (uint8_t)map;
	out->op = op;
	out->rex = rex;
	out->vex = vex;
	out->opsize16 = opsize16;
	out->has_modrm = f.modrm;
	out->modrm = f.modrm ? code[modrm_at] : 0;
	if ((riprel || absolute) && !addr32 && !fsgs) {
		int32_t d;

		memcpy(&d, code + i, 4);
		out->mem_known = true;
		out->mem_addr = riprel ? pc + out->len + (uint64_t)(int64_t)d : (uint64_t)(int64_t)d;
	} else if (f.imm == IMM_MOFFS && !addr32 && !fsgs) {
		memcpy(&out->mem_addr, code + i, 8);
		out->mem_known = true;
	}
	if (map == 0 && ((op >= 0xb8 && op <= 0xbf) || (op == 0xc7 && (out->modrm >> 6) == 3))) {
		uint32_t v32 = 0;                               /* mov $imm, %reg */

		if (imm == 8)
			memcpy(&out->imm, code + i + disp, 8);
		else if (imm == 4)
			memcpy(&v32, code + i + disp, 4), out->imm = op == 0xc7 && rex_w
				? (uint64_t)(int64_t)(int32_t)v32 : v32;
	}

	if (map == 0 && (op == 0xe8 || op == 0xe9)) {
		int32_t rel;

		memcpy(&rel, code + out->len - 4, 4);
		out->kind = op == 0xe8 ? TR_X86_CALL_REL : TR_X86_JMP_REL;
		out->target = pc + out->len + (uint64_t)(int64_t)rel;
	} else if (map == 0 && op == 0xff && riprel && (reg == 2 || reg == 4)) {
		int32_t d;

		memcpy(&d, code + modrm_at + 1, 4);
		out->kind = reg == 2 ? TR_X86_CALL_RIP : TR_X86_JMP_RIP;
		out->target = pc + out->len + (uint64_t)(int64_t)d;
	}
	return out->len;
}

/* The one-byte map's forms with a ModRM memory operand (see tr_x86_mem_access). */
static unsigned map0_access(uint8_t op, uint8_t reg)
{
	const unsigned R = TR_X86_READ, W = TR_X86_WRITE, RW = R | W;

	if (op < 0x40 && (op & 7) <= 3)                     /* add, or, adc, sbb, and, sub, xor, cmp */
		return (op & 7) >= 2 ? R : (op >> 3) == 7 ? R : RW;
	switch (op) {
	case 0x63: case 0x69: case 0x6b:                    /* movsxd, imul r, r/m, imm */
	case 0x84: case 0x85:                               /* test */
	case 0x8a: case 0x8b:                               /* mov r, r/m */
		return R;
	case 0x80: case 0x81: case 0x83:                    /* ALU r/m, imm: /7 is cmp */
		return reg == 7 ? R : RW;
	case 0x86: case 0x87:                               /* xchg: locked even unprefixed */
	case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3:   /* shifts, rotates */
		return RW;
	case 0x88: case 0x89:                               /* mov r/m, r */
		return W;
	case 0xc6: case 0xc7:                               /* mov r/m, imm: only /0 */
		return reg == 0 ? W : 0;
	case 0xf6: case 0xf7:                               /* test; not, neg; mul, div... */
		return reg == 2 || reg == 3 ? RW : reg == 1 ? 0 : R;
	case 0xfe:                                          /* inc, dec */
		return reg <= 1 ? RW : 0;
	case 0xff:                                          /* inc, dec; call, jmp, push *r/m */
		return reg <= 1 ? RW : reg == 2 || reg == 4 || reg == 6 ? R : 0;
	default:                                            /* lea, x87, pop r/m, sreg movs... */
		return 0;
	}
}

/* The 0F map's forms (legacy-encoded; VEX forms are not looked at). */
static unsigned map1_access(uint8_t op)
{
	const unsigned R = TR_X86_READ, W = TR_X86_WRITE, RW = R | W;

	if (op >= 0x40 && op <= 0x4f)                       /* cmovcc r, r/m */
		return R;
	if (op >= 0x90 && op <= 0x9f)                       /* setcc r/m8 */
		return W;
	if (op >= 0x51 && op <= 0x5f)                       /* SSE arithmetic, conversions */
		return R;
	switch (op) {
	case 0x10: case 0x28: case 0x2a: case 0x2c: case 0x2d: case 0x2e: case 0x2f:
	case 0x6e: case 0x6f: case 0xaf: case 0xb6: case 0xb7: case 0xbe: case 0xbf:
		return R;                                   /* movs*, cvt*, ucomis*, movd/q, imul, movzx/sx */
	case 0x11: case 0x29: case 0x7e: case 0x7f: case 0xd6:
		return W;                                   /* movs* stores, movd/q stores */
	case 0xb0: case 0xb1: case 0xc0: case 0xc1:
		return RW;                                  /* cmpxchg, xadd */
	default:
		return 0;
	}
}

unsigned tr_x86_mem_access(const struct tr_x86_insn *in)
{
	if (in->len && in->map == 0 && in->op >= 0xa0 && in->op <= 0xa3 && in->mem_known)
		return in->op <= 0xa1 ? TR_X86_READ : TR_X86_WRITE;    /* mov with a moffs */
	if (!in->len || !in->has_modrm || (in->modrm >> 6) == 3 || in->vex)
		return 0;
	uint8_t reg = (in->modrm >> 3) & 7;
	if (in->map == 0)
		return map0_access(in->op, reg);
	if (in->map == 1) {
		/* f3 0f 7e is movq xmm, m64: a load; 66 0f 7e (movd r/m, xmm) a store. */
		if (in->op == 0x7e && in->rep)
			return TR_X86_READ;
		/* f3 0f b8/bc/bd (popcnt, tzcnt, lzcnt) are not in the table; f2/f3 change 0F 10/11
		 * only from packed to scalar, both plain loads and stores. */
		return map1_access(in->op);
	}
	return 0;
}
