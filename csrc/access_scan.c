/* access_scan.c - what the code of a program's functions does with its data and its threads,
 * for the shared-access sites (tracerlib/access.py decides which are shared): every
 * instruction whose memory operand has an address the instruction alone gives (RIP-relative,
 * absolute) and that it reads or writes (x86_insn.c's table); every direct call between the
 * program's functions; every call to pthread_create with the function its third argument
 * holds; every function whose address is taken. See tr_dwarf_scan_code() in dwarf_index.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dwarf_index_private.h"
#include "elf_img.h"
#include "x86_insn.h"

#define RDX 2

struct fact_ctx {
	struct tr_code_facts *out;
	const struct elf_img *im;
	size_t cap;
	uint64_t regval[16];     /* a function's entry a register holds (0: unknown) */
};

static int add_fact(struct fact_ctx *c, uint8_t kind, uint64_t pc, uint64_t addr, uint32_t func,
		    unsigned access, bool indexed)
{
	struct tr_code_facts *o = c->out;
	if (o->nfacts >= TR_DWARF_MAX_FACTS) {
		o->truncated = true;
		return 0;
	}
	if (tr_dwi_grow(&o->facts, &c->cap, o->nfacts + 1, sizeof(*o->facts)))
		return -ENOMEM;
	o->facts[o->nfacts++] = (struct tr_code_fact){ .pc = pc, .addr = addr, .function = func,
						       .kind = kind, .access = (uint8_t)access,
						       .indexed = indexed };
	return 0;
}

static const char *called_name(const struct elf_img *im, const struct tr_x86_insn *in)
{
	const struct addr_name *an = NULL;
	if (in->kind == TR_X86_CALL_REL || in->kind == TR_X86_JMP_REL)
		an = find_exact(im->stubs, im->nstubs, in->target);
	else if (in->kind == TR_X86_CALL_RIP || in->kind == TR_X86_JMP_RIP)
		an = find_exact(im->slots, im->nslots, in->target);
	return an ? an->name : NULL;
}

static bool is_entry(const struct elf_img *im, uint64_t addr)
{
	return find_exact(im->entries, im->nentries, addr) != NULL;
}

/* Follows which registers hold a function's address, over the forms that put one there at
 * -O0 and -O2 (lea F(%rip), mov $F, a register copy); anything else that may write a
 * register forgets what it held, and a call forgets the caller-saved ones. The walk is in
 * address order, not along the control flow: enough to see the third argument of
 * pthread_create, approximately. When it is not seen, the fact says 0 and the caller falls
 * back on every function whose address is taken. */
static int track(struct fact_ctx *c, const struct tr_x86_insn *in, uint64_t pc, uint32_t func)
{
	uint64_t *rv = c->regval;
	uint8_t mod = in->modrm >> 6;
	unsigned reg = ((in->modrm >> 3) & 7) | (in->rex & 4 ? 8 : 0);
	unsigned rm = (in->modrm & 7) | (in->rex & 1 ? 8 : 0);
	uint64_t value = 0;

	if (in->map == 0 && in->op == 0x8d && mod != 3) {               /* lea */
		if (in->mem_known && !in->mem_indexed && is_entry(c->im, in->mem_addr))
			value = in->mem_addr;
		rv[reg] = value;
	} else if (in->map == 0 && (in->op >= 0xb8 && in->op <= 0xbf)) { /* mov $imm, %r */
		unsigned r = (in->op & 7) | (in->rex & 1 ? 8 : 0);
		value = is_entry(c->im, in->imm) ? in->imm : 0;
		rv[r] = value;
	} else if (in->map == 0 && in->op == 0xc7 && mod == 3) {
		value = is_entry(c->im, in->imm) ? in->imm : 0;
		rv[rm] = value;
	} else if (in->map == 0 && in->op == 0x89 && mod == 3) {         /* mov %src, %dst */
		rv[rm] = rv[reg];
	} else if (in->map == 0 && in->op == 0x8b && mod == 3) {
		rv[reg] = rv[rm];
	} else if (in->map == 0 && (in->op == 0x88 || in->op == 0x89 || in->op == 0xc6 ||
				    in->op == 0xc7) && mod != 3) {
		/* a store: no register changes */
	} else if (in->map == 0 && in->op >= 0x50 && in->op <= 0x57) {
		/* push */
	} else if (in->has_modrm) {
		/* In the group opcodes ModRM.reg extends the opcode: it names no register. */
		bool group = in->map == 0 && ((in->op >= 0x80 && in->op <= 0x83) || in->op == 0x8f ||
					      in->op == 0xc0 || in->op == 0xc1 || in->op == 0xc6 ||
					      in->op == 0xc7 || (in->op >= 0xd0 && in->op <= 0xd3) ||
					      in->op >= 0xf6);
		if (!group)
			rv[reg] = 0;
		if (mod == 3)
			rv[rm] = 0;
		if (group && (in->op == 0xf6 || in->op == 0xf7) && (in->modrm >> 3 & 7) >= 4)
			rv[0] = rv[RDX] = 0;         /* mul, imul, div, idiv write rax and rdx */
	} else if (!(in->map == 0 && (in->op == 0x90 || (in->op >= 0x70 && in->op <= 0x7f) ||
				      in->op == 0xeb || in->op == 0xc3))) {
		memset(rv, 0, sizeof(c->regval));    /* cqo, cpuid, rdtsc, pop...: forget all */
	}
	return value ? add_fact(c, TR_FACT_ADDR_TAKEN, pc, value, func, 0, false) : 0;
}

/* A call keeps rbx, rbp, r12-r15 (-O2 keeps a start function there across a loop of
 * pthread_create calls) and may change every other register. */
static void forget_caller_saved(uint64_t *rv)
{
	static const int kept[] = { 3, 5, 12, 13, 14, 15 };
	uint64_t save[6];

	for (int k = 0; k < 6; k++)
		save[k] = rv[kept[k]];
	memset(rv, 0, 16 * sizeof(*rv));
	for (int k = 0; k < 6; k++)
		rv[kept[k]] = save[k];
}

static int scan_function(struct fact_ctx *c, uint64_t lo, uint64_t hi, uint32_t func)
{
	const struct elf_img *im = c->im;
	const uint8_t *p = tr_elf_code_at(im, lo, hi);
	if (!p)
		return 0;
	memset(c->regval, 0, sizeof(c->regval));
	uint64_t n = hi - lo;
	for (uint64_t i = 0; i < n;) {
		struct tr_x86_insn in;
		uint64_t pc = lo + i;
		unsigned len = tr_x86_decode(p + i, n - i, pc, &in);
		int rc = 0;
		if (!len) {
			/* Bytes the decoder cannot size: the rest of this range is not looked at
			 * (a guess could put a breakpoint inside an instruction). */
			c->out->undecoded++;
			return 0;
		}
		if (in.kind != TR_X86_OTHER) {
			const char *name = called_name(im, &in);
			if (name && strcmp(name, "pthread_create") == 0)
				rc = add_fact(c, TR_FACT_THREAD, pc, c->regval[RDX], func, 0, false);
			else if ((in.kind == TR_X86_CALL_REL || in.kind == TR_X86_JMP_REL) &&
				 is_entry(im, in.target))
				rc = add_fact(c, TR_FACT_CALL, pc, in.target, func, 0, false);
			forget_caller_saved(c->regval);
		} else {
			unsigned access = tr_x86_mem_access(&in);
			if (access && in.mem_known)
				rc = add_fact(c, TR_FACT_ACCESS, pc, in.mem_addr, func, access,
					      in.mem_indexed);
			if (!rc)
				rc = track(c, &in, pc, func);
		}
		if (rc)
			return rc;
		i += len;
	}
	return 0;
}

int tr_dwarf_scan_code(struct tr_dwarf_index *ix, const char *elf_path,
		       struct tr_code_facts *out, char *err, size_t err_size)
{
	memset(out, 0, sizeof(*out));
	struct elf_img im;
	int rc = tr_elf_img_open(&im, elf_path, err, err_size);
	if (!rc)
		rc = tr_elf_dwarf_entries(&im, ix);
	if (!rc && im.nobjs) {
		/* The ELF's names go when it closes: keep interned copies. */
		out->objects = calloc(im.nobjs, sizeof(*out->objects));
		if (!out->objects)
			rc = -ENOMEM;
		for (size_t i = 0; !rc && i < im.nobjs; i++) {
			const char *name = tr_dwi_intern(ix, im.objs[i].name);
			if (!name) {
				rc = -ENOMEM;
				break;
			}
			out->objects[out->nobjects++] =
				(struct tr_data_object){ im.objs[i].addr, im.objs[i].size, name };
		}
	}
	struct fact_ctx c = { .out = out, .im = &im };
	for (size_t fi = 0; !rc && fi < ix->nfuncs; fi++) {
		const struct tr_dwarf_function *fn = &ix->funcs[fi];
		for (uint32_t k = 0; !rc && k < fn->nranges; k++) {
			const struct range *r = &ix->franges[fn->first_range + k];
			rc = scan_function(&c, r->lo, r->hi, (uint32_t)fi);
		}
	}
	tr_elf_img_close(&im);
	if (rc) {
		tr_code_facts_free(out);
		if (rc == -ENOMEM)
			tr_dwi_set_err(err, err_size, "out of memory");
	}
	return rc;
}

void tr_code_facts_free(struct tr_code_facts *f)
{
	free(f->facts);
	free(f->objects);
	memset(f, 0, sizeof(*f));
}
