/* dwarf_index_private.h - private to the DWARF index (dwarf_index.c, dwarf_walk.c,
 * dwarf_lines.c, elf_plt_scan.c): the index's layout and the helpers they share. Nothing
 * outside those files includes it; no libdwarf or libelf type appears here.
 *
 *   dwarf_index.c   storage (arena, interned strings, arrays), open/close, every query
 *   dwarf_walk.c    libdwarf: units, the DIE walk, functions and call-site DIEs
 *   dwarf_lines.c   libdwarf: line tables and file tables read; pc -> file:line
 *   dwarf_vars.c    libdwarf: variables at static addresses, and their sizes
 *   elf_plt_scan.c  libelf: calls found in the machine code (PLT stubs, GOT slots)
 *   access_scan.c   libelf: data accesses, calls and thread starts in the machine code
 */
#ifndef TRACER_DWARF_INDEX_PRIVATE_H
#define TRACER_DWARF_INDEX_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dwarf_index.h"

/* ---------------------------------------------------------------------------------------- */
/* Private layout                                                                            */

struct row {                 /* one line-table row; 16 bytes because there may be millions */
	uint64_t addr;
	uint32_t file;           /* index into ix->files, or UINT32_MAX */
	uint32_t line;           /* bit 31: is_stmt */
};
#define ROW_STMT 0x80000000u

struct seq {                 /* one line-table sequence: rows[first .. first+count), [lo, hi) */
	uint64_t lo, hi;
	uint32_t first, count;
};

struct range {
	uint64_t lo, hi;
	uint32_t func;
};

struct unit_priv {
	uint64_t cu_die_off;     /* global offset of the unit's DIE: how other units refer to it */
	uint32_t files_first;    /* its file table: ix->files[files_first .. +files_count) holds */
	uint32_t files_count;    /* file numbers files_base .. (0 in DWARF 5, 1 before) */
	int64_t files_base;
};

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	char data[];
};

struct istr {                /* interned string: slot in an open-addressing table */
	const char *s;
	uint64_t hash;
};

struct tr_dwarf_index {
	char *path, *debug_path;

	struct tr_dwarf_unit *units;
	struct unit_priv *upriv;
	size_t nunits, cap_units;

	struct tr_dwarf_function *funcs;
	size_t nfuncs, cap_funcs;

	struct range *franges;   /* function ranges, in function order (first_range/nranges) */
	size_t nfranges, cap_franges;
	struct range *by_pc;     /* the same, sorted by lo, for pc -> function */
	size_t nby_pc;

	struct tr_dwarf_site *sites;
	size_t nsites, cap_sites;

	struct tr_dwarf_variable *vars;
	size_t nvars, cap_vars;

	struct row *rows;
	size_t nrows, cap_rows;
	struct seq *seqs;
	size_t nseqs, cap_seqs;

	const char **files;      /* every unit's file table, concatenated */
	size_t nfiles, cap_files;

	struct istr *strs;
	size_t nstrs, cap_strs;
	struct arena_block *arena;

	struct tr_dwarf_stats st;
	bool nomem;              /* an allocation failed somewhere: open fails with -ENOMEM */
};

/* ---- dwarf_index.c: storage ---- */

void tr_dwi_set_err(char *err, size_t err_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Grows *arr so that it holds at least `need` elements: 0 or -ENOMEM. */
int tr_dwi_grow(void *arrp, size_t *cap, size_t need, size_t elem);
/* The one stored copy of a string (NULL, and ix->nomem set, on ENOMEM). */
const char *tr_dwi_intern_n(struct tr_dwarf_index *ix, const char *s, size_t len);
const char *tr_dwi_intern(struct tr_dwarf_index *ix, const char *s);
/* "dir" + "/" + "name", interned; name alone when absolute or dir unknown. */
const char *tr_dwi_intern_path(struct tr_dwarf_index *ix, const char *comp_dir, const char *dir,
			       const char *name);
/* File number `fileno` of unit u's file table, or NULL. */
const char *tr_dwi_unit_file(const struct tr_dwarf_index *ix, uint32_t u, int64_t fileno);
/* Sorts what the lookups search and fills in what the walk could not know (a site's function
 * and line). Called once, after the DWARF was read. 0 or -ENOMEM. */
int tr_dwi_finish(struct tr_dwarf_index *ix);
int tr_dwi_cmp_site(const void *a, const void *b);   /* by tr_dwi_site_key, DWARF's first */
bool tr_dwi_callee_matches(const char *callee, const struct tr_site_filter *f);

/* Addresses that stand for "no code": the linker resolves references into discarded sections
 * (unused COMDAT copies, --gc-sections) to 0 or, with newer linkers, to -1/-2. */
static inline bool tr_dwi_is_tombstone(uint64_t a)
{
	return a == 0 || a >= UINT64_MAX - 1;
}

/* Sites are sorted by this: the return address, or the call's own when that is all we know. */
static inline uint64_t tr_dwi_site_key(const struct tr_dwarf_site *s)
{
	return s->return_pc ? s->return_pc : s->call_pc;
}

/* ---- dwarf_walk.c ---- */

/* Reads the DWARF of `path` (or of the separate debug file it names) into the empty index ix:
 * sets ix->debug_path when there is DWARF. 0 (also for a file without DWARF), -EBADMSG when
 * the DWARF cannot be read at all, -ENOMEM; a message in err. */
int tr_dwi_read_dwarf(struct tr_dwarf_index *ix, const char *path, char *err, size_t err_size);

/* ---- dwarf_lines.c ---- */

/* Sorts the line table for tr_dwi_line_at. */
void tr_dwi_lines_sort(struct tr_dwarf_index *ix);
/* The line-table row for pc (gdb's rule where rows share an address); false when none. */
bool tr_dwi_line_at(const struct tr_dwarf_index *ix, uint64_t pc, const char **file, int *line);

#endif
