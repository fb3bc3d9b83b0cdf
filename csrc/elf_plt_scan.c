/* elf_plt_scan.c - finds calls in a program's machine code with libelf, for builds whose
 * DWARF has no call-site entries (gcc -O0, clang -O0): direct calls and jumps that land exactly
 * on a PLT stub or a known function's entry, and calls through an imported function's GOT
 * slot, walking instruction boundaries with the decoder of x86_insn.c. See
 * tr_dwarf_scan_calls() in dwarf_index.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gelf.h>
#include <libelf.h>

#include "dwarf_index_private.h"
#include "elf_img.h"
#include "x86_insn.h"

/* ---------------------------------------------------------------------------------------- */
/* Finding calls in the machine code (gcc -O0 has no call-site DIEs)                         */

void tr_elf_img_close(struct elf_img *im)
{
	free(im->xs);
	free(im->stubs);
	free(im->slots);
	free(im->syms);
	free(im->dynsyms);
	free(im->objs);
	free(im->entries);
	if (im->elf)
		elf_end(im->elf);
	if (im->fd >= 0)
		close(im->fd);
}

static int push_an(struct addr_name **v, size_t *n, size_t *cap, uint64_t addr, uint64_t size,
		   const char *name)
{
	if (tr_dwi_grow(v, cap, *n + 1, sizeof(**v)))
		return -ENOMEM;
	(*v)[(*n)++] = (struct addr_name){ addr, size, name };
	return 0;
}

/* GOT slots of imported functions, from the dynamic relocations: R_X86_64_JUMP_SLOT in
 * .rela.plt (lazy or -z now binding), R_X86_64_GLOB_DAT in .rela.dyn (functions whose address
 * is also taken, called through .plt.got, and -fno-plt calls). */
static int read_relocs(struct elf_img *im, Elf_Scn *scn, const GElf_Shdr *sh)
{
	Elf_Scn *symscn = elf_getscn(im->elf, sh->sh_link);
	GElf_Shdr symsh;
	if (!symscn || !gelf_getshdr(symscn, &symsh))
		return 0;
	Elf_Data *rd = elf_getdata(scn, NULL);
	Elf_Data *sd = elf_getdata(symscn, NULL);
	if (!rd || !sd || !sh->sh_entsize)
		return 0;
	size_t n = sh->sh_size / sh->sh_entsize;
	for (size_t i = 0; i < n; i++) {
		GElf_Rela rela;
		GElf_Sym sym;
		if (!gelf_getrela(rd, (int)i, &rela))
			break;
		unsigned type = (unsigned)GELF_R_TYPE(rela.r_info);
		if (type == R_X86_64_IRELATIVE) {
			/* A PLT slot filled by an IFUNC resolver inside this object (libc's strlen):
			 * no symbol names it, but a call through it is still a call. */
			if (push_an(&im->slots, &im->nslots, &im->cap_slots, rela.r_offset, 0, NULL))
				return -ENOMEM;
			continue;
		}
		if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
			continue;
		if (!gelf_getsym(sd, (int)GELF_R_SYM(rela.r_info), &sym))
			continue;
		if (GELF_ST_TYPE(sym.st_info) != STT_FUNC && GELF_ST_TYPE(sym.st_info) != STT_NOTYPE)
			continue;
		const char *name = elf_strptr(im->elf, symsh.sh_link, sym.st_name);
		if (!name || !name[0])
			continue;
		if (push_an(&im->slots, &im->nslots, &im->cap_slots, rela.r_offset, 0, name))
			return -ENOMEM;
	}
	return 0;
}

/* PLT stubs: each entry of .plt (classic lazy PLT), .plt.sec (the second PLT that -z ibt /
 * -fcf-protection binaries have: `endbr64; bnd jmp *slot(%rip)`) and .plt.got holds one
 * `jmp *slot(%rip)` (ff 25 disp32, maybe after endbr64/bnd prefixes). Decoding that jump and
 * matching the slot with the relocations works for every layout, without assuming which PLT
 * entry belongs to which relocation. PLT0 and the IBT .plt's lazy entries jump elsewhere and
 * simply match no slot. */
static int read_plt(struct elf_img *im, const GElf_Shdr *sh, Elf_Scn *scn)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	if (!d || !d->d_buf || d->d_size < 6)
		return 0;
	size_t ent = sh->sh_entsize >= 8 && sh->sh_entsize <= 32 ? sh->sh_entsize : 16;
	const uint8_t *p = d->d_buf;
	for (size_t off = 0; off + 6 <= d->d_size; off += ent) {
		size_t lim = off + ent <= d->d_size ? off + ent : d->d_size;
		for (size_t k = off; k + 6 <= lim; k++) {
			if (p[k] != 0xff || p[k + 1] != 0x25)
				continue;
			int32_t disp;
			memcpy(&disp, p + k + 2, 4);
			uint64_t slot = sh->sh_addr + k + 6 + (int64_t)disp;
			const struct addr_name *an = find_exact(im->slots, im->nslots, slot);
			if (an && push_an(&im->stubs, &im->nstubs, &im->cap_stubs,
					  sh->sh_addr + off, 0, an->name))
				return -ENOMEM;
			break;
		}
	}
	return 0;
}

/* Function symbols of .symtab (bounds to scan, and targets) or .dynsym (targets only: a
 * stripped library still names its exported functions there, but not its static ones, so
 * its bounds would leave code unscanned). */
static int read_symtab(struct elf_img *im, Elf_Scn *scn, const GElf_Shdr *sh, bool dyn)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	if (!d || !sh->sh_entsize)
		return 0;
	size_t n = sh->sh_size / sh->sh_entsize;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym sym;
		if (!gelf_getsym(d, (int)i, &sym))
			break;
		if (GELF_ST_TYPE(sym.st_info) == STT_OBJECT && !dyn && sym.st_shndx != SHN_UNDEF &&
		    sym.st_value && sym.st_size) {      /* data: what access_scan.c names */
			const char *name = elf_strptr(im->elf, sh->sh_link, sym.st_name);
			if (name && name[0] &&
			    push_an(&im->objs, &im->nobjs, &im->cap_objs, sym.st_value, sym.st_size,
				    name))
				return -ENOMEM;
			continue;
		}
		if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF ||
		    sym.st_value == 0)
			continue;
		const char *name = elf_strptr(im->elf, sh->sh_link, sym.st_name);
		if (!name || !name[0])
			continue;
		if (dyn ? push_an(&im->dynsyms, &im->ndynsyms, &im->cap_dynsyms, sym.st_value, 0, name)
			: push_an(&im->syms, &im->nsyms, &im->cap_syms, sym.st_value, sym.st_size, name))
			return -ENOMEM;
	}
	return 0;
}

int tr_elf_img_open(struct elf_img *im, const char *path, char *err, size_t err_size)
{
	memset(im, 0, sizeof(*im));
	im->fd = -1;
	if (elf_version(EV_CURRENT) == EV_NONE) {
		tr_dwi_set_err(err, err_size, "libelf: %s", elf_errmsg(-1));
		return -ENOTSUP;
	}
	im->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (im->fd < 0) {
		int rc = -errno;
		tr_dwi_set_err(err, err_size, "%s: %s", path, strerror(errno));
		return rc;
	}
	im->elf = elf_begin(im->fd, ELF_C_READ, NULL);
	if (!im->elf || elf_kind(im->elf) != ELF_K_ELF) {
		tr_dwi_set_err(err, err_size, "%s: not an ELF file", path);
		return -ENOEXEC;
	}
	GElf_Ehdr eh;
	if (!gelf_getehdr(im->elf, &eh)) {
		tr_dwi_set_err(err, err_size, "%s: %s", path, elf_errmsg(-1));
		return -ENOEXEC;
	}
	if (eh.e_machine != EM_X86_64 || gelf_getclass(im->elf) != ELFCLASS64) {
		tr_dwi_set_err(err, err_size, "%s: call scanning knows only x86-64 code", path);
		return -ENOTSUP;
	}
	size_t shstrndx;
	if (elf_getshdrstrndx(im->elf, &shstrndx) != 0) {
		tr_dwi_set_err(err, err_size, "%s: %s", path, elf_errmsg(-1));
		return -ENOEXEC;
	}
	Elf_Scn *plts[8];
	GElf_Shdr plt_sh[8];
	size_t nplts = 0;
	int rc = 0;
	for (Elf_Scn *scn = elf_nextscn(im->elf, NULL); scn && rc == 0;
	     scn = elf_nextscn(im->elf, scn)) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			continue;
		const char *name = elf_strptr(im->elf, shstrndx, sh.sh_name);
		if (!name)
			name = "";
		if (sh.sh_type == SHT_RELA && sh.sh_flags & SHF_ALLOC) {
			rc = read_relocs(im, scn, &sh);
		} else if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM) {
			rc = read_symtab(im, scn, &sh, sh.sh_type == SHT_DYNSYM);
		} else if (sh.sh_type == SHT_PROGBITS && (sh.sh_flags & SHF_EXECINSTR)) {
			bool is_plt = strncmp(name, ".plt", 4) == 0;
			if (is_plt && nplts < 8) {
				plts[nplts] = scn;
				plt_sh[nplts++] = sh;
			}
			Elf_Data *d = elf_getdata(scn, NULL);
			if (d && d->d_buf && d->d_size) {
				if (tr_dwi_grow(&im->xs, &im->cap_xs, im->nxs + 1, sizeof(*im->xs)))
					rc = -ENOMEM;
				else
					im->xs[im->nxs++] = (struct xsec){ sh.sh_addr, d->d_size,
									   d->d_buf, is_plt };
			}
		}
	}
	if (rc == 0 && im->nslots)
		qsort(im->slots, im->nslots, sizeof(*im->slots), cmp_addr_name);
	for (size_t i = 0; rc == 0 && i < nplts; i++)
		rc = read_plt(im, &plt_sh[i], plts[i]);
	if (rc == 0 && im->nstubs)
		qsort(im->stubs, im->nstubs, sizeof(*im->stubs), cmp_addr_name);
	if (rc == 0 && im->nsyms)
		qsort(im->syms, im->nsyms, sizeof(*im->syms), cmp_addr_name);
	if (rc == 0 && im->nobjs)
		qsort(im->objs, im->nobjs, sizeof(*im->objs), cmp_addr_name);
	if (rc == 0 && im->ndynsyms)
		qsort(im->dynsyms, im->ndynsyms, sizeof(*im->dynsyms), cmp_addr_name);
	if (rc)
		tr_dwi_set_err(err, err_size, "out of memory");
	return rc;
}

const uint8_t *tr_elf_code_at(const struct elf_img *im, uint64_t lo, uint64_t hi)
{
	for (size_t i = 0; i < im->nxs; i++)
		if (lo >= im->xs[i].addr && hi <= im->xs[i].addr + im->xs[i].size && lo <= hi)
			return im->xs[i].data + (lo - im->xs[i].addr);
	return NULL;
}

/* The existing site for a call found in the code, or NULL: sites[0 .. n) are sorted by key. */
static struct tr_dwarf_site *find_site(struct tr_dwarf_index *ix, size_t n, uint64_t call_pc,
				       uint64_t ret_pc)
{
	for (int pass = 0; pass < 2; pass++) {
		uint64_t key = pass == 0 ? ret_pc : call_pc;
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (tr_dwi_site_key(&ix->sites[mid]) < key)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < n && tr_dwi_site_key(&ix->sites[lo]) == key; lo++) {
			struct tr_dwarf_site *s = &ix->sites[lo];
			if (pass == 0 && s->return_pc == ret_pc)
				return s;
			if (pass == 1 && !s->return_pc && s->call_pc == call_pc)
				return s;
		}
	}
	return NULL;
}

struct scan_ctx {
	struct tr_dwarf_index *ix;
	struct elf_img *im;
	const struct tr_site_filter *f;
	size_t nsorted;          /* sites before the scan, sorted */
	size_t added;
};

static int found_call(struct scan_ctx *c, uint64_t call_pc, unsigned len, const char *callee,
		      bool tail, uint32_t func, uint32_t unit)
{
	struct tr_dwarf_index *ix = c->ix;
	uint64_t ret = call_pc + len;
	struct tr_dwarf_site *s = find_site(ix, c->nsorted, call_pc, ret);
	if (s) {                       /* DWARF knew it (or an earlier scan found it): complete it */
		if (!s->call_pc)
			s->call_pc = call_pc;
		if (!s->return_pc && !tail)
			s->return_pc = ret;
		return 0;
	}
	/* A new site needs a callee name (an IFUNC slot has none) that the filter accepts. */
	if (!callee || !tr_dwi_callee_matches(callee, c->f))
		return 0;
	if (ix->nsites >= TR_DWARF_MAX_SITES) {
		ix->st.truncated |= TR_DWARF_CUT_SITES;
		return 0;
	}
	if (tr_dwi_grow(&ix->sites, &ix->cap_sites, ix->nsites + 1, sizeof(*ix->sites)))
		return -ENOMEM;
	struct tr_dwarf_site n = {
		.return_pc = ret, .call_pc = call_pc, .callee = tr_dwi_intern(ix, callee),
		.function = func, .unit = unit,
		.flags = TR_SITE_FROM_CODE | (tail ? TR_SITE_TAIL : 0),
	};
	if (ix->nomem)
		return -ENOMEM;
	tr_dwi_line_at(ix, call_pc, &n.file, &n.line);
	ix->sites[ix->nsites++] = n;
	c->added++;
	return 0;
}

uint64_t tr_elf_next_entry(const struct elf_img *im, uint64_t addr)
{
	const struct addr_name *lists[3] = { im->entries, im->syms, im->dynsyms };
	size_t counts[3] = { im->nentries, im->nsyms, im->ndynsyms };
	uint64_t best = 0;

	for (int k = 0; k < 3; k++) {
		size_t lo = 0, hi = counts[k];
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (lists[k][mid].addr < addr)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < counts[k] && (!best || lists[k][lo].addr < best))
			best = lists[k][lo].addr;
	}
	return best;
}

/* Walks [lo, hi) instruction by instruction (x86_insn.c) and looks at
 *   call/jmp rel32 (a jmp is a tail call) whose target is exactly a PLT stub or a function's
 *   entry, and call/jmp *disp32(%rip) (gcc -fno-plt) whose slot is exactly an imported
 *   function's GOT slot.
 * Only instruction boundaries are looked at, so an e8 byte inside another instruction (an
 * immediate, a displacement) is never taken for a call: a breakpoint must never land inside
 * an instruction. When the decoder meets bytes it cannot size (data in the code, an opcode
 * it does not know), it does not guess: the scan resumes at the next known function entry
 * inside the range, if any, and the range is counted in stats.undecoded. */
static int scan_range(struct scan_ctx *c, uint64_t lo, uint64_t hi, uint32_t func, uint32_t unit)
{
	const struct elf_img *im = c->im;
	const uint8_t *p = tr_elf_code_at(im, lo, hi);
	if (!p)
		return 0;                  /* not in this file's code (e.g. NOBITS): nothing to scan */
	uint64_t n = hi - lo;
	bool stopped = false;
	for (uint64_t i = 0; i < n;) {
		struct tr_x86_insn in;
		unsigned len = tr_x86_decode(p + i, n - i, lo + i, &in);
		if (!len) {
			uint64_t next = tr_elf_next_entry(im, lo + i + 1);
			stopped = true;
			if (!next || next >= hi)
				break;
			i = next - lo;
			continue;
		}
		const struct addr_name *an = NULL;
		bool tail = in.kind == TR_X86_JMP_REL || in.kind == TR_X86_JMP_RIP;
		if (in.kind == TR_X86_CALL_REL || in.kind == TR_X86_JMP_REL) {
			an = find_exact(im->stubs, im->nstubs, in.target);
			if (!an)
				an = find_exact(im->entries, im->nentries, in.target);
			if (!an)
				an = find_exact(im->syms, im->nsyms, in.target);
			if (!an)
				an = find_exact(im->dynsyms, im->ndynsyms, in.target);
		} else if (in.kind == TR_X86_CALL_RIP || in.kind == TR_X86_JMP_RIP) {
			an = find_exact(im->slots, im->nslots, in.target);
		}
		if (an) {
			int rc = found_call(c, lo + i, len, an->name, tail, func, unit);
			if (rc)
				return rc;
		}
		i += len;
	}
	if (stopped)
		c->ix->st.undecoded++;
	return 0;
}

int tr_elf_dwarf_entries(struct elf_img *im, const struct tr_dwarf_index *ix)
{
	im->entries = malloc((ix->nfuncs ? ix->nfuncs : 1) * sizeof(*im->entries));
	if (!im->entries)
		return -ENOMEM;
	for (size_t i = 0; i < ix->nfuncs; i++)
		if (ix->funcs[i].name)
			im->entries[im->nentries++] =
				(struct addr_name){ ix->funcs[i].low_pc, 0, ix->funcs[i].name };
	if (im->nentries)
		qsort(im->entries, im->nentries, sizeof(*im->entries), cmp_addr_name);
	return 0;
}

int tr_dwarf_scan_calls(struct tr_dwarf_index *ix, const char *elf_path,
			const struct tr_site_filter *f, size_t *added, char *err, size_t err_size)
{
	if (added)
		*added = 0;
	if (!ix || !elf_path) {
		tr_dwi_set_err(err, err_size, "tr_dwarf_scan_calls: no index or path");
		return -EINVAL;
	}
	struct elf_img im;
	int rc = tr_elf_img_open(&im, elf_path, err, err_size);
	if (rc) {
		tr_elf_img_close(&im);
		return rc;
	}
	/* Function entries known to DWARF are call targets too (static functions have no PLT
	 * stub, and a stripped symbol table may lack them). */
	if (tr_elf_dwarf_entries(&im, ix)) {
		tr_elf_img_close(&im);
		tr_dwi_set_err(err, err_size, "out of memory");
		return -ENOMEM;
	}

	struct scan_ctx c = { .ix = ix, .im = &im, .f = f, .nsorted = ix->nsites };
	bool by_unit = f && f->by_unit;
	for (size_t fi = 0; rc == 0 && fi < ix->nfuncs; fi++) {
		const struct tr_dwarf_function *fn = &ix->funcs[fi];
		if (by_unit && fn->unit != f->unit)
			continue;
		for (uint32_t k = 0; rc == 0 && k < fn->nranges; k++) {
			const struct range *r = &ix->franges[fn->first_range + k];
			rc = scan_range(&c, r->lo, r->hi, (uint32_t)fi, fn->unit);
		}
	}
	if (!by_unit && im.nsyms) {
		/* Code DWARF does not describe (built without -g, or linked from objects that
		 * were): the symbol table still bounds its functions. */
		for (size_t i = 0; rc == 0 && i < im.nsyms; i++)
			if (im.syms[i].size && tr_dwarf_function_at(ix, im.syms[i].addr) == TR_DWARF_NONE)
				rc = scan_range(&c, im.syms[i].addr, im.syms[i].addr + im.syms[i].size,
						TR_DWARF_NONE, TR_DWARF_NONE);
	} else if (!by_unit && !ix->nfuncs) {
		/* Stripped: no bounds but the sections', so scan all code but the PLT itself, from
		 * each section's start (an instruction boundary); past bytes the decoder cannot
		 * size, from the next exported function's entry. */
		for (size_t i = 0; rc == 0 && i < im.nxs; i++)
			if (!im.xs[i].is_plt)
				rc = scan_range(&c, im.xs[i].addr, im.xs[i].addr + im.xs[i].size,
						TR_DWARF_NONE, TR_DWARF_NONE);
	}
	tr_elf_img_close(&im);
	if (ix->nsites > c.nsorted) {
		qsort(ix->sites, ix->nsites, sizeof(*ix->sites), tr_dwi_cmp_site);
		/* The same code indexed twice (one function described in two units) would add its
		 * calls twice: keep the first. */
		size_t w = 1;
		for (size_t i = 1; i < ix->nsites; i++) {
			const struct tr_dwarf_site *p = &ix->sites[w - 1], *s = &ix->sites[i];
			if (s->flags & TR_SITE_FROM_CODE && tr_dwi_site_key(p) == tr_dwi_site_key(s) &&
			    p->call_pc == s->call_pc) {
				c.added--;
				continue;
			}
			ix->sites[w++] = *s;
		}
		ix->nsites = w;
	}
	if (rc) {
		tr_dwi_set_err(err, err_size, "%s: %s", elf_path, strerror(-rc));
		return rc;
	}
	if (added)
		*added = c.added;
	return 0;
}
