/* dwarf_vars.c - variables at static addresses: a DW_TAG_variable whose DW_AT_location is one
 * DW_OP_addr (globals, file statics, function statics), with its size from DW_AT_type. What
 * the shared-access sites (access_scan.c, tracerlib/access.py) name an accessed address by.
 * Thread-locals (DW_OP_form_tls_address), locals and clang's DW_OP_addrx (DWARF 5, indexed
 * through .debug_addr) are not read here; the ELF symbol table stands in for the last. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "dwarf_build.h"

#define MAX_TYPE_HOPS 16

static Dwarf_Die die_at(struct builder *b, Dwarf_Off off)
{
	Dwarf_Die d = NULL;
	Dwarf_Error e = NULL;
	if (dwarf_offdie_b(b->dbg, off, 1, &d, &e) != DW_DLV_OK) {
		tr_dwb_drop_err(b->dbg, &e);
		return NULL;
	}
	return d;
}

static Dwarf_Half die_tag(struct builder *b, Dwarf_Die d)
{
	Dwarf_Half tag = 0;
	Dwarf_Error e = NULL;
	if (dwarf_tag(d, &tag, &e) != DW_DLV_OK)
		tr_dwb_drop_err(b->dbg, &e);
	return tag;
}

static uint64_t type_size(struct builder *b, Dwarf_Off off, int hops);

/* An array's size: its element's times each dimension's count (upper_bound + 1 in C). */
static uint64_t array_size(struct builder *b, Dwarf_Die arr, int hops)
{
	Dwarf_Off elem;
	uint64_t size = tr_dwb_attr_ref(b, arr, DW_AT_type, &elem) ? type_size(b, elem, hops + 1) : 0;
	Dwarf_Die child = NULL, sib = NULL;
	Dwarf_Error e = NULL;
	if (dwarf_child(arr, &child, &e) != DW_DLV_OK) {
		tr_dwb_drop_err(b->dbg, &e);
		return 0;
	}
	for (int k = 0; child && k < 64 && size; k++) {
		if (die_tag(b, child) == DW_TAG_subrange_type) {
			int64_t n = 0, ub;
			if (tr_dwb_attr_udata(b, child, DW_AT_count, &n) ||
			    (tr_dwb_attr_udata(b, child, DW_AT_upper_bound, &ub) && (n = ub + 1)))
				size = n > 0 && (uint64_t)n < (UINT64_MAX / size) ? size * (uint64_t)n : 0;
			else
				size = 0;           /* a flexible or variable-length dimension */
		}
		int r = dwarf_siblingof_b(b->dbg, child, 1, &sib, &e);
		dwarf_dealloc(b->dbg, child, DW_DLA_DIE);
		child = r == DW_DLV_OK ? sib : NULL;
		if (r == DW_DLV_ERROR)
			tr_dwb_drop_err(b->dbg, &e);
	}
	if (child)
		dwarf_dealloc(b->dbg, child, DW_DLA_DIE);
	return size;
}

/* DW_AT_byte_size, through typedefs and qualifiers; 0 when unknown. */
static uint64_t type_size(struct builder *b, Dwarf_Off off, int hops)
{
	if (hops > MAX_TYPE_HOPS)
		return 0;
	Dwarf_Die t = die_at(b, off);
	if (!t)
		return 0;
	int64_t size = 0;
	Dwarf_Off next;
	uint64_t result = 0;
	if (tr_dwb_attr_udata(b, t, DW_AT_byte_size, &size))
		result = size > 0 ? (uint64_t)size : 0;
	else if (die_tag(b, t) == DW_TAG_array_type)
		result = array_size(b, t, hops);
	else if (tr_dwb_attr_ref(b, t, DW_AT_type, &next))   /* typedef, const, volatile... */
		result = type_size(b, next, hops + 1);
	dwarf_dealloc(b->dbg, t, DW_DLA_DIE);
	return result;
}

/* The address of a location that is exactly one DW_OP_addr, or false. */
static bool static_address(struct builder *b, Dwarf_Die die, uint64_t *addr)
{
	Dwarf_Attribute a;
	if (!tr_dwb_get_attr(b, die, DW_AT_location, &a))
		return false;
	Dwarf_Error e = NULL;
	Dwarf_Half form = 0;
	const uint8_t *p = NULL;
	Dwarf_Unsigned len = 0;
	Dwarf_Block *blk = NULL;
	Dwarf_Ptr ptr = NULL;
	if (dwarf_whatform(a, &form, &e) != DW_DLV_OK) {
		tr_dwb_drop_err(b->dbg, &e);
	} else if (form == DW_FORM_exprloc) {
		if (dwarf_formexprloc(a, &len, &ptr, &e) == DW_DLV_OK)
			p = ptr;
		tr_dwb_drop_err(b->dbg, &e);
	} else if (form == DW_FORM_block1 || form == DW_FORM_block2 || form == DW_FORM_block4 ||
		   form == DW_FORM_block) {
		if (dwarf_formblock(a, &blk, &e) == DW_DLV_OK) {
			p = blk->bl_data;
			len = blk->bl_len;
		}
		tr_dwb_drop_err(b->dbg, &e);
	}
	bool ok = p && len == 9 && p[0] == DW_OP_addr;
	if (ok)
		memcpy(addr, p + 1, 8);
	if (blk)
		dwarf_dealloc(b->dbg, blk, DW_DLA_BLOCK);
	dwarf_dealloc(b->dbg, a, DW_DLA_ATTR);
	return ok && !tr_dwi_is_tombstone(*addr);
}

int tr_dwb_add_variable(struct builder *b, Dwarf_Die die, uint32_t func)
{
	struct tr_dwarf_index *ix = b->ix;
	uint64_t addr;
	if (!static_address(b, die, &addr))
		return 0;
	if (ix->nvars >= TR_DWARF_MAX_VARIABLES) {
		ix->st.truncated |= TR_DWARF_CUT_SITES;
		return 0;
	}
	if (tr_dwi_grow(&ix->vars, &ix->cap_vars, ix->nvars + 1, sizeof(*ix->vars)))
		return -ENOMEM;
	struct tr_dwarf_variable v = { .addr = addr, .unit = b->unit, .function = func };
	int64_t decl_file;
	Dwarf_Off decl_cu, type;
	tr_dwb_describe(b, die, &v.name, &decl_file, &decl_cu, &v.decl_line);
	if (decl_file >= 0 && (decl_cu == b->cu_die_off || decl_cu == 0))
		v.decl_file = tr_dwi_unit_file(ix, b->unit, decl_file);
	/* A definition after an extern declaration holds its type there (DW_AT_specification). */
	Dwarf_Die spec = NULL;
	Dwarf_Off ref;
	bool typed = tr_dwb_attr_ref(b, die, DW_AT_type, &type);
	if (!typed && tr_dwb_attr_ref(b, die, DW_AT_specification, &ref) && (spec = die_at(b, ref)))
		typed = tr_dwb_attr_ref(b, spec, DW_AT_type, &type);
	if (typed)
		v.size = type_size(b, type, 0);
	if (spec)
		dwarf_dealloc(b->dbg, spec, DW_DLA_DIE);
	if (!v.name || ix->nomem)
		return ix->nomem ? -ENOMEM : 0;
	ix->vars[ix->nvars++] = v;
	return 0;
}
