/* dwarf_lines.c - line tables: each unit's file table and rows read with libdwarf (every
 * line context deallocated at once), kept as 16-byte rows in sequences; and pc -> file:line. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dwarf_build.h"

/* ---------------------------------------------------------------------------------------- */
/* Line tables                                                                               */

static int read_file_table(struct builder *b, Dwarf_Line_Context lc, const char *comp_dir)
{
	struct tr_dwarf_index *ix = b->ix;
	struct unit_priv *up = &ix->upriv[b->unit];
	Dwarf_Error e = NULL;
	Dwarf_Signed base = 0, count = 0, end = 0;
	if (dwarf_srclines_files_indexes(lc, &base, &count, &end, &e) != DW_DLV_OK) {
		tr_dwb_drop_err(b->dbg, &e);
		return 0;
	}
	if (count <= 0 || count > 1000000)
		return 0;
	if (tr_dwi_grow(&ix->files, &ix->cap_files, ix->nfiles + (size_t)count, sizeof(*ix->files))) {
		ix->nomem = true;
		return -ENOMEM;
	}
	up->files_first = (uint32_t)ix->nfiles;
	up->files_base = base;
	for (Dwarf_Signed i = base; i < end; i++) {
		const char *name = NULL, *dir = NULL;
		Dwarf_Unsigned di = 0;
		/* File numbers are 0-based in DWARF 5 and 1-based before: `base` says which. In
		 * DWARF 5 directory 0 is the compilation directory itself; before, directory 0 means
		 * "the compilation directory" and has no entry of its own. */
		if (dwarf_srclines_files_data_b(lc, i, &name, &di, NULL, NULL, NULL, &e) != DW_DLV_OK) {
			tr_dwb_drop_err(b->dbg, &e);
			name = NULL;
		} else if (dwarf_srclines_include_dir_data(lc, (Dwarf_Signed)di, &dir, &e) !=
			   DW_DLV_OK) {
			tr_dwb_drop_err(b->dbg, &e);
			dir = di == 0 ? comp_dir : NULL;
		}
		/* Directory 0 is the compilation directory already: prefixing comp_dir again would
		 * give "./csu/./csu/version.c" for a relative comp_dir like glibc's. */
		ix->files[ix->nfiles++] = tr_dwi_intern_path(ix, di == 0 ? NULL : comp_dir, dir, name);
		if (ix->nomem)
			return -ENOMEM;
	}
	up->files_count = (uint32_t)(ix->nfiles - up->files_first);
	return 0;
}

static int add_seq(struct tr_dwarf_index *ix, uint64_t lo, uint64_t hi, size_t first)
{
	size_t count = ix->nrows - first;
	if (count == 0 || tr_dwi_is_tombstone(lo) || hi <= lo) {
		ix->nrows = first;                 /* a discarded function's rows: drop them */
		return 0;
	}
	if (tr_dwi_grow(&ix->seqs, &ix->cap_seqs, ix->nseqs + 1, sizeof(*ix->seqs))) {
		ix->nomem = true;
		return -ENOMEM;
	}
	ix->seqs[ix->nseqs++] = (struct seq){ lo, hi, (uint32_t)first, (uint32_t)count };
	return 0;
}

/* libdwarf 20210528 starts each DWARF 5 line-table sequence with the file register at 0,
 * where DWARF 5 (6.2.2, table 6.4) says 1, so a row that relies on the initial value is
 * reported in file 0. gcc's tables (written by gas) rely on it and never name file 0
 * themselves: for g++ -O0, every inline function from a header got the main source's name.
 * clang's tables set file 0 explicitly, where 0 is right. So for a GNU producer only, a
 * reported 0 means 1. */
static bool producer_is_gnu(struct builder *b, Dwarf_Die cu_die)
{
	Dwarf_Attribute a;
	bool gnu = false;
	if (tr_dwb_get_attr(b, cu_die, DW_AT_producer, &a)) {
		char *s = NULL;
		Dwarf_Error e = NULL;
		if (dwarf_formstring(a, &s, &e) == DW_DLV_OK)
			gnu = s && strncmp(s, "GNU ", 4) == 0;
		tr_dwb_drop_err(b->dbg, &e);
		dwarf_dealloc(b->dbg, a, DW_DLA_ATTR);
	}
	return gnu;
}

int tr_dwb_read_lines(struct builder *b, Dwarf_Die cu_die, const char *comp_dir)
{
	struct tr_dwarf_index *ix = b->ix;
	Dwarf_Error e = NULL;
	Dwarf_Unsigned version = 0;
	Dwarf_Small tables = 0;
	Dwarf_Line_Context lc = NULL;
	int r = dwarf_srclines_b(cu_die, &version, &tables, &lc, &e);
	if (r == DW_DLV_ERROR) {
		tr_dwb_drop_err(b->dbg, &e);
		return -EBADMSG;
	}
	if (r == DW_DLV_NO_ENTRY)
		return 0;
	int rc = read_file_table(b, lc, comp_dir);
	Dwarf_Line *lines = NULL;
	Dwarf_Signed n = 0;
	if (rc == 0 && tables > 0 &&
	    dwarf_srclines_from_linecontext(lc, &lines, &n, &e) != DW_DLV_OK) {
		tr_dwb_drop_err(b->dbg, &e);
		n = 0;
	}
	const struct unit_priv *up = &ix->upriv[b->unit];
	bool file0_is_1 = version == 5 && producer_is_gnu(b, cu_die);
	size_t first = ix->nrows;
	bool open = false;
	uint64_t lo = 0;
	for (Dwarf_Signed i = 0; rc == 0 && i < n; i++) {
		Dwarf_Addr addr = 0;
		Dwarf_Unsigned lineno = 0, fileno = 0;
		Dwarf_Bool end = 0, stmt = 0;
		if (dwarf_lineaddr(lines[i], &addr, &e) != DW_DLV_OK ||
		    dwarf_lineendsequence(lines[i], &end, &e) != DW_DLV_OK) {
			tr_dwb_drop_err(b->dbg, &e);
			continue;
		}
		if (end) {
			if (open)
				rc = add_seq(ix, lo, addr, first);
			open = false;
			continue;
		}
		if (dwarf_lineno(lines[i], &lineno, &e) != DW_DLV_OK)
			tr_dwb_drop_err(b->dbg, &e);
		if (dwarf_line_srcfileno(lines[i], &fileno, &e) != DW_DLV_OK)
			tr_dwb_drop_err(b->dbg, &e);
		if (dwarf_linebeginstatement(lines[i], &stmt, &e) != DW_DLV_OK)
			tr_dwb_drop_err(b->dbg, &e);
		if (!open) {
			open = true;
			lo = addr;
			first = ix->nrows;
		}
		if (ix->nrows >= TR_DWARF_MAX_ROWS) {
			ix->st.truncated |= TR_DWARF_CUT_ROWS;
			ix->nrows = first;
			open = false;
			break;
		}
		if (tr_dwi_grow(&ix->rows, &ix->cap_rows, ix->nrows + 1, sizeof(*ix->rows))) {
			ix->nomem = true;
			rc = -ENOMEM;
			break;
		}
		int64_t fno = fileno == 0 && file0_is_1 ? 1 : (int64_t)fileno;
		uint32_t file = UINT32_MAX;
		if (fno >= up->files_base && fno - up->files_base < (int64_t)up->files_count)
			file = up->files_first + (uint32_t)(fno - up->files_base);
		uint32_t line = lineno < ROW_STMT ? (uint32_t)lineno : 0;
		ix->rows[ix->nrows++] = (struct row){ addr, file, line | (stmt ? ROW_STMT : 0) };
	}
	if (open)                                  /* a sequence without its end: unusable */
		ix->nrows = first;
	dwarf_srclines_dealloc_b(lc);
	return rc;
}

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int cmp_seq(const void *a, const void *b)
{
	const struct seq *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Rows of a sequence are in address order by DWARF's rules; make sure, since the lookup
 * depends on it and a producer bug should not turn into wrong answers. */
void tr_dwi_lines_sort(struct tr_dwarf_index *ix)
{
	for (size_t i = 0; i < ix->nseqs; i++) {
		struct seq *s = &ix->seqs[i];
		for (uint32_t k = 1; k < s->count; k++) {
			if (ix->rows[s->first + k].addr < ix->rows[s->first + k - 1].addr) {
				qsort(ix->rows + s->first, s->count, sizeof(struct row), cmp_row);
				break;
			}
		}
	}
	if (ix->nseqs)
		qsort(ix->seqs, ix->nseqs, sizeof(*ix->seqs), cmp_seq);
}

bool tr_dwi_line_at(const struct tr_dwarf_index *ix, uint64_t pc, const char **file, int *line)
{
	*file = NULL;
	*line = 0;
	if (!ix->nseqs)
		return false;
	size_t lo = 0, hi = ix->nseqs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ix->seqs[mid].lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct seq *s = NULL;
	for (size_t i = lo, n = 0; i > 0 && n < 8; i--, n++) {
		if (pc < ix->seqs[i - 1].hi) {
			s = &ix->seqs[i - 1];
			break;
		}
	}
	if (!s)
		return false;
	const struct row *rows = ix->rows + s->first;
	size_t a = 0, z = s->count;              /* first row with addr > pc */
	while (a < z) {
		size_t mid = a + (z - a) / 2;
		if (rows[mid].addr <= pc)
			a = mid + 1;
		else
			z = mid;
	}
	if (a == 0)
		return false;
	/* Several rows may share an address: gcc's location views put the function's opening
	 * line, then its first statement, at one pc. The instruction's bytes belong to the last
	 * of them, the earlier ones being empty; when that last row is not a statement boundary,
	 * the last one at the same address that is wins. This is gdb's rule, so events and
	 * backtraces name the lines a gdb user sees. */
	size_t best = a - 1;
	if (!(rows[best].line & ROW_STMT)) {
		for (size_t i = a - 1, n = 0; i > 0 && n < 64; i--, n++) {
			if (rows[i - 1].addr != rows[a - 1].addr)
				break;
			if (rows[i - 1].line & ROW_STMT) {
				best = i - 1;
				break;
			}
		}
	}
	*line = (int)(rows[best].line & ~ROW_STMT);
	*file = rows[best].file < ix->nfiles ? ix->files[rows[best].file] : NULL;
	return true;
}

