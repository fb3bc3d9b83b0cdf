/* dwarf_walk.c - reads a file's DWARF with libdwarf: every unit, and in each the DIE tree
 * (functions and call sites, walked whole since call sites sit inside inlined subroutines),
 * after its line table (dwarf_lines.c), which the DIEs' file numbers refer to.
 *
 * Manners of a guest inside the user's debugger:
 *  - every libdwarf call gets a Dwarf_Error pointer AND the Dwarf_Debug gets an error handler:
 *    libdwarf abort()s when it has neither, and an abort here loses the user's session;
 *  - every DIE, attribute, error and range list we receive is deallocated as soon as we are
 *    done with it, so indexing a large library does not grow without bound;
 *  - everything is capped (TR_DWARF_MAX_*), and what was cut is reported, not hidden;
 *  - a unit whose DWARF is broken is skipped and counted, the rest of the file still indexed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dwarf_build.h"

/* libdwarf calls this only when an error has nowhere else to go; installing it is what keeps
 * libdwarf from calling abort() in that case. We always pass a Dwarf_Error pointer, so it
 * should never run. */
static void dw_errhand(Dwarf_Error e, Dwarf_Ptr arg)
{
	(void)e;
	(void)arg;
}

void tr_dwb_drop_err(Dwarf_Debug dbg, Dwarf_Error *e)
{
	if (*e) {
		dwarf_dealloc(dbg, *e, DW_DLA_ERROR);
		*e = NULL;
	}
}

/* Attribute readers. They return true when the attribute is there and readable; an attribute
 * libdwarf cannot decode is treated as absent (its error freed), since one odd attribute
 * should not cost the whole unit. */
bool tr_dwb_get_attr(struct builder *b, Dwarf_Die d, Dwarf_Half at, Dwarf_Attribute *out)
{
	Dwarf_Error e = NULL;
	int r = dwarf_attr(d, at, out, &e);
	if (r == DW_DLV_ERROR)
		tr_dwb_drop_err(b->dbg, &e);
	return r == DW_DLV_OK;
}

bool tr_dwb_attr_udata(struct builder *b, Dwarf_Die d, Dwarf_Half at, int64_t *v)
{
	Dwarf_Attribute a;
	if (!tr_dwb_get_attr(b, d, at, &a))
		return false;
	Dwarf_Error e = NULL;
	Dwarf_Unsigned u;
	Dwarf_Signed s;
	bool ok = false;
	if (dwarf_formudata(a, &u, &e) == DW_DLV_OK) {
		*v = (int64_t)u;
		ok = true;
	} else {
		/* gcc 12 writes decl_file/decl_line as DW_FORM_implicit_const when many DIEs share
		 * the value, and libdwarf 20210528's dwarf_formudata rejects that form. */
		tr_dwb_drop_err(b->dbg, &e);
		if (dwarf_formsdata(a, &s, &e) == DW_DLV_OK && s >= 0) {
			*v = s;
			ok = true;
		}
		tr_dwb_drop_err(b->dbg, &e);
	}
	dwarf_dealloc(b->dbg, a, DW_DLA_ATTR);
	return ok;
}

bool tr_dwb_attr_ref(struct builder *b, Dwarf_Die d, Dwarf_Half at, Dwarf_Off *off)
{
	Dwarf_Attribute a;
	if (!tr_dwb_get_attr(b, d, at, &a))
		return false;
	Dwarf_Error e = NULL;
	bool ok = dwarf_global_formref(a, off, &e) == DW_DLV_OK;
	tr_dwb_drop_err(b->dbg, &e);
	dwarf_dealloc(b->dbg, a, DW_DLA_ATTR);
	return ok;
}

static bool attr_addr(struct builder *b, Dwarf_Die d, Dwarf_Half at, uint64_t *addr)
{
	Dwarf_Attribute a;
	if (!tr_dwb_get_attr(b, d, at, &a))
		return false;
	Dwarf_Error e = NULL;
	Dwarf_Addr v;
	bool ok = dwarf_formaddr(a, &v, &e) == DW_DLV_OK;   /* also DW_FORM_addrx (clang) */
	tr_dwb_drop_err(b->dbg, &e);
	dwarf_dealloc(b->dbg, a, DW_DLA_ATTR);
	if (ok)
		*addr = v;
	return ok;
}

static bool has_attr(struct builder *b, Dwarf_Die d, Dwarf_Half at)
{
	Dwarf_Bool yes = 0;
	Dwarf_Error e = NULL;
	if (dwarf_hasattr(d, at, &yes, &e) != DW_DLV_OK) {
		tr_dwb_drop_err(b->dbg, &e);
		return false;
	}
	return yes != 0;
}

static const char *die_name(struct builder *b, Dwarf_Die d)
{
	char *name = NULL;
	Dwarf_Error e = NULL;
	int r = dwarf_diename(d, &name, &e);
	if (r == DW_DLV_ERROR)
		tr_dwb_drop_err(b->dbg, &e);
	/* The string points into .debug_str: not ours to free. */
	return r == DW_DLV_OK ? tr_dwi_intern(b->ix, name) : NULL;
}

static Dwarf_Off die_cu_off(struct builder *b, Dwarf_Die d)
{
	Dwarf_Off off = 0;
	Dwarf_Error e = NULL;
	if (dwarf_CU_dieoffset_given_die(d, &off, &e) != DW_DLV_OK) {
		tr_dwb_drop_err(b->dbg, &e);
		return 0;
	}
	return off;
}

/* Name and declaration of a DIE, following DW_AT_abstract_origin (an out-of-line copy of an
 * inlined function, whose name lives in the abstract instance) and DW_AT_specification (a
 * definition whose declaration holds the name), a few hops at most so that a reference cycle
 * in bad DWARF cannot loop. A decl_file is a file number in the file table of the unit that
 * holds the attribute, which may be another unit (LTO): then it is resolved after all units
 * are read (*decl_cu set to that unit's DIE offset). */
void tr_dwb_describe(struct builder *b, Dwarf_Die die, const char **name, int64_t *decl_file,
		     Dwarf_Off *decl_cu, int *decl_line)
{
	Dwarf_Die cur = die;
	*name = NULL;
	if (decl_file) {
		*decl_file = -1;
		*decl_cu = 0;
		*decl_line = 0;
	}
	for (int hop = 0; hop < 6; hop++) {
		if (!*name)
			*name = die_name(b, cur);
		if (decl_file && *decl_file < 0) {
			int64_t f, l;
			if (tr_dwb_attr_udata(b, cur, DW_AT_decl_file, &f)) {
				*decl_file = f;
				*decl_cu = die_cu_off(b, cur);
				if (tr_dwb_attr_udata(b, cur, DW_AT_decl_line, &l) && l > 0 && l < INT_MAX)
					*decl_line = (int)l;
			}
		}
		if (*name && (!decl_file || *decl_file >= 0))
			break;
		Dwarf_Off ref;
		if (!tr_dwb_attr_ref(b, cur, DW_AT_abstract_origin, &ref) &&
		    !tr_dwb_attr_ref(b, cur, DW_AT_specification, &ref))
			break;
		Dwarf_Die next = NULL;
		Dwarf_Error e = NULL;
		int r = dwarf_offdie_b(b->dbg, ref, 1, &next, &e);
		if (r == DW_DLV_ERROR)
			tr_dwb_drop_err(b->dbg, &e);
		if (r != DW_DLV_OK)
			break;
		if (cur != die)
			dwarf_dealloc(b->dbg, cur, DW_DLA_DIE);
		cur = next;
	}
	if (cur != die)
		dwarf_dealloc(b->dbg, cur, DW_DLA_DIE);
}

/* The name of the function a call site's DW_AT_call_origin / DW_AT_abstract_origin refers to.
 * A program calls the same few functions from many places, so names are cached by DIE offset:
 * resolving one costs a dwarf_offdie_b. */
static const char *callee_name(struct builder *b, Dwarf_Off off)
{
	if (b->ncache + 1 > b->cap_cache / 2) {
		size_t ncap = b->cap_cache ? b->cap_cache * 2 : 256;
		struct name_cache_ent *n = calloc(ncap, sizeof(*n));
		if (!n) {
			b->ix->nomem = true;
			return NULL;
		}
		for (size_t i = 0; i < b->cap_cache; i++) {
			if (!b->cache[i].off)
				continue;
			size_t j = (b->cache[i].off * 0x9e3779b97f4a7c15ull) >> 20 & (ncap - 1);
			while (n[j].off)
				j = (j + 1) & (ncap - 1);
			n[j] = b->cache[i];
		}
		free(b->cache);
		b->cache = n;
		b->cap_cache = ncap;
	}
	size_t j = (off * 0x9e3779b97f4a7c15ull) >> 20 & (b->cap_cache - 1);
	while (b->cache[j].off) {
		if (b->cache[j].off == off)
			return b->cache[j].name;
		j = (j + 1) & (b->cap_cache - 1);
	}
	const char *name = NULL;
	Dwarf_Die d = NULL;
	Dwarf_Error e = NULL;
	int r = dwarf_offdie_b(b->dbg, off, 1, &d, &e);
	if (r == DW_DLV_OK) {
		tr_dwb_describe(b, d, &name, NULL, NULL, NULL);
		dwarf_dealloc(b->dbg, d, DW_DLA_DIE);
	} else if (r == DW_DLV_ERROR) {
		tr_dwb_drop_err(b->dbg, &e);
	}
	if (off) {
		b->cache[j].off = off;
		b->cache[j].name = name;
		b->ncache++;
	}
	return name;
}

/* ---------------------------------------------------------------------------------------- */
/* Functions                                                                                 */

static int add_frange(struct tr_dwarf_index *ix, uint64_t lo, uint64_t hi, uint32_t func)
{
	if (tr_dwi_is_tombstone(lo) || hi <= lo)
		return 0;
	if (tr_dwi_grow(&ix->franges, &ix->cap_franges, ix->nfranges + 1, sizeof(*ix->franges))) {
		ix->nomem = true;
		return -ENOMEM;
	}
	ix->franges[ix->nfranges++] = (struct range){ lo, hi, func };
	return 0;
}

/* DW_AT_ranges of a function: DWARF 5 keeps them in .debug_rnglists (libdwarf "cooks" them to
 * addresses), DWARF 4 in .debug_ranges as raw pairs relative to the unit's base address. */
static int add_ranges(struct builder *b, Dwarf_Die die, uint32_t func)
{
	struct tr_dwarf_index *ix = b->ix;
	Dwarf_Attribute a;
	if (!tr_dwb_get_attr(b, die, DW_AT_ranges, &a))
		return 0;
	Dwarf_Error e = NULL;
	Dwarf_Half ver = 0, offsize = 0, form = 0;
	dwarf_get_version_of_die(die, &ver, &offsize);
	int rc = 0;
	if (dwarf_whatform(a, &form, &e) != DW_DLV_OK) {
		tr_dwb_drop_err(b->dbg, &e);
		goto out;
	}
	if (ver >= 5) {
		Dwarf_Unsigned val = 0, count = 0, goff = 0;
		Dwarf_Off off = 0;
		int r;
		if (form == DW_FORM_rnglistx) {
			r = dwarf_formudata(a, &val, &e);
		} else {
			r = dwarf_global_formref(a, &off, &e);
			val = off;
		}
		if (r != DW_DLV_OK) {
			tr_dwb_drop_err(b->dbg, &e);
			goto out;
		}
		Dwarf_Rnglists_Head head = NULL;
		if (dwarf_rnglists_get_rle_head(a, form, val, &head, &count, &goff, &e) !=
		    DW_DLV_OK) {
			tr_dwb_drop_err(b->dbg, &e);
			goto out;
		}
		for (Dwarf_Unsigned i = 0; i < count && rc == 0; i++) {
			unsigned len = 0, code = 0;
			Dwarf_Unsigned raw1, raw2, lo, hi;
			Dwarf_Bool unavailable = 0;
			if (dwarf_get_rnglists_entry_fields_a(head, i, &len, &code, &raw1, &raw2,
							      &unavailable, &lo, &hi, &e) !=
			    DW_DLV_OK) {
				tr_dwb_drop_err(b->dbg, &e);
				break;
			}
			if (unavailable)
				continue;
			switch (code) {
			case DW_RLE_offset_pair:
			case DW_RLE_startx_endx:
			case DW_RLE_startx_length:
			case DW_RLE_start_end:
			case DW_RLE_start_length:
				rc = add_frange(ix, lo, hi, func);
				break;
			default:                /* base addresses, end of list */
				break;
			}
		}
		dwarf_dealloc_rnglists_head(head);
	} else {
		Dwarf_Off off = 0, real = 0;
		if (dwarf_global_formref(a, &off, &e) != DW_DLV_OK) {
			tr_dwb_drop_err(b->dbg, &e);
			goto out;
		}
		Dwarf_Ranges *rs = NULL;
		Dwarf_Signed n = 0;
		Dwarf_Unsigned bytes = 0;
		if (dwarf_get_ranges_b(b->dbg, off, die, &real, &rs, &n, &bytes, &e) != DW_DLV_OK) {
			tr_dwb_drop_err(b->dbg, &e);
			goto out;
		}
		uint64_t base = b->cu_base;
		for (Dwarf_Signed i = 0; i < n && rc == 0; i++) {
			if (rs[i].dwr_type == DW_RANGES_ADDRESS_SELECTION)
				base = rs[i].dwr_addr2;
			else if (rs[i].dwr_type == DW_RANGES_ENTRY)
				rc = add_frange(ix, base + rs[i].dwr_addr1, base + rs[i].dwr_addr2, func);
			else
				break;
		}
		dwarf_ranges_dealloc(b->dbg, rs, n);
	}
out:
	dwarf_dealloc(b->dbg, a, DW_DLA_ATTR);
	return rc;
}

/* Records a DW_TAG_subprogram that has code. Returns its index, or TR_DWARF_NONE for a
 * declaration, an abstract instance (inline-only: its code exists only where it was inlined),
 * a function the linker discarded, or one past the cap. */
static uint32_t add_function(struct builder *b, Dwarf_Die die)
{
	struct tr_dwarf_index *ix = b->ix;
	if (has_attr(b, die, DW_AT_declaration))
		return TR_DWARF_NONE;
	Dwarf_Error e = NULL;
	Dwarf_Addr low = 0, high = 0;
	bool has_low = false, has_high = false;
	if (dwarf_lowpc(die, &low, &e) == DW_DLV_OK) {
		has_low = true;
		Dwarf_Half form = 0;
		enum Dwarf_Form_Class cls = DW_FORM_CLASS_UNKNOWN;
		if (dwarf_highpc_b(die, &high, &form, &cls, &e) == DW_DLV_OK) {
			has_high = true;
			/* Since DWARF 4 high_pc is usually a length (class constant), not an address. */
			if (cls == DW_FORM_CLASS_CONSTANT)
				high += low;
		}
	}
	tr_dwb_drop_err(b->dbg, &e);
	bool has_ranges = !(has_low && has_high) && has_attr(b, die, DW_AT_ranges);
	if (!(has_low && has_high) && !has_ranges)
		return TR_DWARF_NONE;
	if (has_low && has_high && tr_dwi_is_tombstone(low)) {
		ix->st.discarded_functions++;
		return TR_DWARF_NONE;
	}
	if (ix->nfuncs >= TR_DWARF_MAX_FUNCTIONS) {
		ix->st.truncated |= TR_DWARF_CUT_FUNCTIONS;
		return TR_DWARF_NONE;
	}
	if (tr_dwi_grow(&ix->funcs, &ix->cap_funcs, ix->nfuncs + 1, sizeof(*ix->funcs))) {
		ix->nomem = true;
		return TR_DWARF_NONE;
	}
	uint32_t fi = (uint32_t)ix->nfuncs;
	size_t first = ix->nfranges;
	if (has_ranges) {
		if (add_ranges(b, die, fi))
			return TR_DWARF_NONE;
	} else if (add_frange(ix, low, high, fi)) {
		return TR_DWARF_NONE;
	}
	if (ix->nfranges == first) {            /* every range discarded */
		ix->st.discarded_functions++;
		return TR_DWARF_NONE;
	}
	struct tr_dwarf_function *f = &ix->funcs[fi];
	memset(f, 0, sizeof(*f));
	/* The first range holds the entry: gcc lists the hot part of a hot/cold split first. */
	f->low_pc = ix->franges[first].lo;
	f->high_pc = ix->franges[first].hi;
	f->first_range = (uint32_t)first;
	f->nranges = (uint32_t)(ix->nfranges - first);
	f->unit = b->unit;
	int64_t decl_file;
	Dwarf_Off decl_cu;
	tr_dwb_describe(b, die, &f->name, &decl_file, &decl_cu, &f->decl_line);
	if (decl_file >= 0) {
		if (decl_cu == b->cu_die_off || decl_cu == 0) {
			f->decl_file = tr_dwi_unit_file(ix, b->unit, decl_file);
		} else if (!tr_dwi_grow(&b->pend, &b->cap_pend, b->npend + 1, sizeof(*b->pend))) {
			b->pend[b->npend++] = (struct pending_decl){ fi, decl_cu, decl_file };
		} else {
			ix->nomem = true;
		}
	}
	ix->nfuncs++;
	return fi;
}

/* ---------------------------------------------------------------------------------------- */
/* Call sites                                                                                */

static void add_site(struct builder *b, Dwarf_Die die, Dwarf_Half tag, uint32_t func, bool inl)
{
	struct tr_dwarf_index *ix = b->ix;
	struct tr_dwarf_site s = { .function = func, .unit = b->unit };
	if (tag == DW_TAG_GNU_call_site) {
		/* The DWARF 4 GNU extension: DW_AT_low_pc is the return address. */
		if (!attr_addr(b, die, DW_AT_low_pc, &s.return_pc))
			return;
	} else if (!attr_addr(b, die, DW_AT_call_return_pc, &s.return_pc)) {
		/* clang's tail calls have no return address, only the jump's own address. */
		if (!attr_addr(b, die, DW_AT_call_pc, &s.call_pc))
			return;
		s.flags |= TR_SITE_CALL_PC_ONLY;
	} else {
		attr_addr(b, die, DW_AT_call_pc, &s.call_pc);
	}
	if (tr_dwi_is_tombstone(s.return_pc ? s.return_pc : s.call_pc))
		return;
	if (ix->nsites >= TR_DWARF_MAX_SITES) {
		ix->st.truncated |= TR_DWARF_CUT_SITES;
		return;
	}
	if (has_attr(b, die, DW_AT_call_tail_call) || has_attr(b, die, DW_AT_GNU_tail_call))
		s.flags |= TR_SITE_TAIL;
	if (inl)
		s.flags |= TR_SITE_INLINED;
	Dwarf_Off ref;
	if (tr_dwb_attr_ref(b, die, DW_AT_call_origin, &ref) ||
	    tr_dwb_attr_ref(b, die, DW_AT_abstract_origin, &ref))
		s.callee = callee_name(b, ref);
	int64_t f, l;
	if (tr_dwb_attr_udata(b, die, DW_AT_call_line, &l) && l > 0 && l < INT_MAX) {
		s.line = (int)l;
		if (tr_dwb_attr_udata(b, die, DW_AT_call_file, &f))
			s.file = tr_dwi_unit_file(ix, b->unit, f);
	}
	/* Otherwise file:line come from the line table once all units are read. */
	if (tr_dwi_grow(&ix->sites, &ix->cap_sites, ix->nsites + 1, sizeof(*ix->sites))) {
		ix->nomem = true;
		return;
	}
	ix->sites[ix->nsites++] = s;
	ix->units[b->unit].nsites++;
}

/* ---------------------------------------------------------------------------------------- */
/* The DIE walk                                                                              */

static int walk_children(struct builder *b, Dwarf_Die parent, int depth, uint32_t func,
			 bool inl);

static int visit(struct builder *b, Dwarf_Die die, int depth, uint32_t func, bool inl)
{
	Dwarf_Half tag = 0;
	Dwarf_Error e = NULL;
	if (dwarf_tag(die, &tag, &e) != DW_DLV_OK) {
		tr_dwb_drop_err(b->dbg, &e);
		return -EBADMSG;
	}
	switch (tag) {
	case DW_TAG_subprogram: {
		uint32_t fi = add_function(b, die);
		if (b->ix->nomem)
			return -ENOMEM;
		/* Even an abstract instance (DW_AT_inline, no code) is walked: gcc 12 sometimes
		 * leaves call sites, with real return addresses, in its lexical blocks (seen in
		 * libc's __srandom). Their function is then found by pc at the end. */
		return walk_children(b, die, depth + 1, fi, false);
	}
	case DW_TAG_call_site:
	case DW_TAG_GNU_call_site:
		add_site(b, die, tag, func, inl);
		return b->ix->nomem ? -ENOMEM : 0;
	case DW_TAG_variable:
		/* Globals and statics (file or function scope), for the shared-access sites. */
		return tr_dwb_add_variable(b, die, func);
	case DW_TAG_inlined_subroutine:
		/* Call sites inside inlined code belong to the function it was inlined into. */
		return walk_children(b, die, depth + 1, func, true);
	case DW_TAG_lexical_block:
	case DW_TAG_try_block:
	case DW_TAG_catch_block:
	case DW_TAG_namespace:
	case DW_TAG_module:
		return walk_children(b, die, depth + 1, func, inl);
	default:
		/* Types, parameters: no code below. Not descending into them is most of
		 * what makes indexing fast. */
		return 0;
	}
}

static int walk_children(struct builder *b, Dwarf_Die parent, int depth, uint32_t func, bool inl)
{
	Dwarf_Die child = NULL;
	Dwarf_Error e = NULL;
	int r = dwarf_child(parent, &child, &e);
	if (r == DW_DLV_NO_ENTRY)
		return 0;
	if (r == DW_DLV_ERROR) {
		tr_dwb_drop_err(b->dbg, &e);
		return -EBADMSG;
	}
	if (depth >= TR_DWARF_MAX_DEPTH) {
		b->ix->st.truncated |= TR_DWARF_CUT_DEPTH;
		dwarf_dealloc(b->dbg, child, DW_DLA_DIE);
		return 0;
	}
	int rc = 0;
	while (child) {
		rc = visit(b, child, depth, func, inl);
		if (rc)
			break;
		Dwarf_Die sib = NULL;
		r = dwarf_siblingof_b(b->dbg, child, 1, &sib, &e);
		dwarf_dealloc(b->dbg, child, DW_DLA_DIE);
		child = NULL;
		if (r == DW_DLV_ERROR) {
			tr_dwb_drop_err(b->dbg, &e);
			rc = -EBADMSG;
		}
		if (r == DW_DLV_OK)
			child = sib;
	}
	if (child)
		dwarf_dealloc(b->dbg, child, DW_DLA_DIE);
	return rc;
}
/* ---------------------------------------------------------------------------------------- */
/* Units                                                                                     */

/* Reads one unit: its names, its line table (first, since DIEs refer to its file table), then
 * its DIEs. The caller has reserved room (reserve_units). Returns 1 when the unit cap is hit. */
static int read_unit(struct builder *b, Dwarf_Die cu_die, Dwarf_Half version)
{
	struct tr_dwarf_index *ix = b->ix;
	if (ix->nunits >= TR_DWARF_MAX_UNITS) {
		ix->st.truncated |= TR_DWARF_CUT_UNITS;
		return 1;                          /* stop */
	}
	uint32_t u = (uint32_t)ix->nunits;
	struct tr_dwarf_unit *un = &ix->units[u];
	struct unit_priv *up = &ix->upriv[u];
	memset(un, 0, sizeof(*un));
	memset(up, 0, sizeof(*up));
	up->cu_die_off = die_cu_off(b, cu_die);
	b->unit = u;
	b->cu_die_off = up->cu_die_off;
	b->cu_base = 0;
	un->version = version;
	un->name = die_name(b, cu_die);
	Dwarf_Attribute a;
	if (tr_dwb_get_attr(b, cu_die, DW_AT_comp_dir, &a)) {
		char *s = NULL;
		Dwarf_Error e = NULL;
		if (dwarf_formstring(a, &s, &e) == DW_DLV_OK)
			un->comp_dir = tr_dwi_intern(ix, s);
		tr_dwb_drop_err(b->dbg, &e);
		dwarf_dealloc(b->dbg, a, DW_DLA_ATTR);
	}
	un->path = tr_dwi_intern_path(ix, NULL, un->comp_dir, un->name);
	if (!un->name)
		un->name = tr_dwi_intern(ix, "");
	attr_addr(b, cu_die, DW_AT_low_pc, &b->cu_base);
	if (ix->nomem)
		return -ENOMEM;
	ix->nunits++;

	int rc = tr_dwb_read_lines(b, cu_die, un->comp_dir);
	if (rc == -EBADMSG)
		rc = 0;          /* no usable line table: the functions and sites are still worth having */
	if (rc == 0)
		rc = walk_children(b, cu_die, 1, TR_DWARF_NONE, false);
	return rc;
}

/* units[] and upriv[] are parallel arrays with one capacity: room is reserved in both
 * before a unit is added. */
static int reserve_units(struct tr_dwarf_index *ix)
{
	size_t need = ix->nunits + 1;
	if (need <= ix->cap_units)
		return 0;
	size_t ncap = ix->cap_units ? ix->cap_units * 2 : 64;
	struct tr_dwarf_unit *u = realloc(ix->units, ncap * sizeof(*u));
	if (!u)
		return -ENOMEM;
	ix->units = u;
	struct unit_priv *p = realloc(ix->upriv, ncap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	ix->upriv = p;
	ix->cap_units = ncap;
	return 0;
}

static int read_all_units(struct builder *b)
{
	struct tr_dwarf_index *ix = b->ix;
	for (;;) {
		Dwarf_Unsigned hdr_len = 0, typeoff = 0, next = 0;
		Dwarf_Half version = 0, addr_size = 0, len_size = 0, ext_size = 0, cu_type = 0;
		Dwarf_Off abbrev = 0;
		Dwarf_Sig8 sig;
		Dwarf_Error e = NULL;
		int r = dwarf_next_cu_header_d(b->dbg, 1, &hdr_len, &version, &abbrev, &addr_size,
					       &len_size, &ext_size, &sig, &typeoff, &next,
					       &cu_type, &e);
		if (r == DW_DLV_NO_ENTRY)
			return 0;
		if (r == DW_DLV_ERROR) {
			/* The header chain is broken: nothing after this point can be found. */
			tr_dwb_drop_err(b->dbg, &e);
			ix->st.truncated |= TR_DWARF_CUT_ERRORS;
			return 0;
		}
		Dwarf_Die cu_die = NULL;
		r = dwarf_siblingof_b(b->dbg, NULL, 1, &cu_die, &e);
		if (r != DW_DLV_OK) {
			tr_dwb_drop_err(b->dbg, &e);
			ix->st.bad_units++;
			continue;
		}
		Dwarf_Half tag = 0;
		if (dwarf_tag(cu_die, &tag, &e) != DW_DLV_OK) {
			tr_dwb_drop_err(b->dbg, &e);
			tag = 0;
		}
		int rc = 0;
		if (tag == DW_TAG_compile_unit || tag == DW_TAG_partial_unit) {
			if (reserve_units(ix)) {
				ix->nomem = true;
				rc = -ENOMEM;
			} else {
				rc = read_unit(b, cu_die, version);
			}
		}
		dwarf_dealloc(b->dbg, cu_die, DW_DLA_DIE);
		if (rc == -ENOMEM || ix->nomem)
			return -ENOMEM;
		if (rc == 1)
			return 0;
		if (rc < 0) {
			ix->st.bad_units++;
			ix->st.truncated |= TR_DWARF_CUT_ERRORS;
		}
	}
}
static void close_dbg(Dwarf_Debug dbg)
{
	Dwarf_Error e = NULL;
	if (dbg && dwarf_finish(dbg, &e) != DW_DLV_OK && e)
		dwarf_dealloc(NULL, e, DW_DLA_ERROR);
}

/* Resolves the decl_files that live in another unit's file table (LTO). */
static void resolve_pending(struct builder *b)
{
	struct tr_dwarf_index *ix = b->ix;
	for (size_t i = 0; i < b->npend; i++) {
		size_t lo = 0, hi = ix->nunits;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (ix->upriv[mid].cu_die_off < b->pend[i].cu_die_off)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < ix->nunits && ix->upriv[lo].cu_die_off == b->pend[i].cu_die_off)
			ix->funcs[b->pend[i].func].decl_file =
				tr_dwi_unit_file(ix, (uint32_t)lo, b->pend[i].fileno);
	}
}

int tr_dwi_read_dwarf(struct tr_dwarf_index *ix, const char *path, char *err, size_t err_size)
{
	/* A true-path buffer makes libdwarf follow .gnu_debuglink / build-id to a separate debug
	 * file when the file itself has no DWARF (Debian's -dbgsym packages). */
	char true_path[PATH_MAX];
	true_path[0] = '\0';
	Dwarf_Debug dbg = NULL;
	Dwarf_Error e = NULL;
	int r = dwarf_init_path(path, true_path, sizeof(true_path), DW_DLC_READ, DW_GROUPNUMBER_ANY,
				dw_errhand, NULL, &dbg, NULL, 0, NULL, &e);
	if (r == DW_DLV_NO_ENTRY) {
		/* An ELF file without DWARF: a valid, empty index. */
		return 0;
	}
	if (r == DW_DLV_ERROR) {
		/* libdwarf 20210528 may return an error without an error object (seen for an ELF
		 * header followed by garbage). */
		tr_dwi_set_err(err, err_size, "%s: cannot read DWARF: %s", path,
			e ? dwarf_errmsg(e) : "not a readable ELF object");
		if (e)
			dwarf_dealloc(dbg, e, DW_DLA_ERROR);
		close_dbg(dbg);
		return -EBADMSG;
	}
	ix->debug_path = strdup(true_path[0] ? true_path : path);
	if (!ix->debug_path) {
		close_dbg(dbg);
		tr_dwi_set_err(err, err_size, "out of memory");
		return -ENOMEM;
	}

	struct builder b = { .ix = ix, .dbg = dbg };
	int rc = read_all_units(&b);
	if (rc == 0 && !ix->nomem)
		resolve_pending(&b);
	free(b.cache);
	free(b.pend);
	close_dbg(dbg);
	if (rc == 0 && ix->nomem)
		rc = -ENOMEM;
	if (rc)
		tr_dwi_set_err(err, err_size, "%s: %s", path, strerror(-rc));
	return rc;
}
