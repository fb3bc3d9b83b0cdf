/* dwarf_build.h - private to the two libdwarf readers, dwarf_walk.c (units, DIEs) and
 * dwarf_lines.c (line tables): the state that lives only while tr_dwarf_open() reads a file. */
#ifndef TRACER_DWARF_BUILD_H
#define TRACER_DWARF_BUILD_H

#include <dwarf.h>
#include <libdwarf.h>

#include "dwarf_index_private.h"

struct name_cache_ent {
	Dwarf_Off off;           /* 0: empty (offset 0 is a unit header, never a DIE) */
	const char *name;
};

struct pending_decl {        /* a decl_file that names another unit's file table */
	uint32_t func;
	Dwarf_Off cu_die_off;
	int64_t fileno;
};

struct builder {
	struct tr_dwarf_index *ix;
	Dwarf_Debug dbg;
	uint32_t unit;
	Dwarf_Off cu_die_off;
	uint64_t cu_base;        /* the unit's base address, for DWARF 4 range lists */

	struct name_cache_ent *cache;   /* callee DIE offset -> name */
	size_t ncache, cap_cache;

	struct pending_decl *pend;
	size_t npend, cap_pend;
};


/* Frees *e, if any, and clears it. */
void tr_dwb_drop_err(Dwarf_Debug dbg, Dwarf_Error *e);
/* True when the attribute is there and readable (an unreadable one counts as absent). */
bool tr_dwb_get_attr(struct builder *b, Dwarf_Die d, Dwarf_Half at, Dwarf_Attribute *out);
/* Reads a unit's file table and line table into the index (dwarf_lines.c). 0, -EBADMSG when
 * the unit has no usable line table, -ENOMEM. */
int tr_dwb_read_lines(struct builder *b, Dwarf_Die cu_die, const char *comp_dir);
/* Attribute readers (dwarf_walk.c): true when the attribute is there and readable. */
bool tr_dwb_attr_udata(struct builder *b, Dwarf_Die d, Dwarf_Half at, int64_t *v);
bool tr_dwb_attr_ref(struct builder *b, Dwarf_Die d, Dwarf_Half at, Dwarf_Off *off);
/* Name and declaration of a DIE, through DW_AT_abstract_origin and DW_AT_specification. */
void tr_dwb_describe(struct builder *b, Dwarf_Die die, const char **name, int64_t *decl_file,
		     Dwarf_Off *decl_cu, int *decl_line);
/* Records a DW_TAG_variable with a static address (dwarf_vars.c): 0, or -ENOMEM. */
int tr_dwb_add_variable(struct builder *b, Dwarf_Die die, uint32_t func);

#endif
