/* dwarf_index.c - reads one ELF file's DWARF with libdwarf (release 20210528, the old API) into
 * plain arrays, then lets go of libdwarf: the index holds no libdwarf object after
 * tr_dwarf_open() returns, so lookups are cheap and libdwarf's memory is given back at once.
 *
 * Manners of a guest inside the user's debugger:
 *  - every libdwarf call gets a Dwarf_Error pointer AND the Dwarf_Debug gets an error handler:
 *    libdwarf abort()s when it has neither, and an abort here loses the user's session;
 *  - every DIE, attribute, error, range list and line context we receive is deallocated as soon
 *    as we are done with it, so indexing a large library does not grow without bound;
 *  - everything is capped (TR_DWARF_MAX_*), and what was cut is reported, not hidden;
 *  - a unit whose DWARF is broken is skipped and counted, the rest of the file still indexed.
 */
#define _GNU_SOURCE
#include "dwarf_index.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dwarf.h>
#include <gelf.h>
#include <libdwarf.h>
#include <libelf.h>

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
	Dwarf_Off cu_die_off;    /* global offset of the unit's DIE: how other units refer to it */
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

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                             */

static void set_err(char *err, size_t err_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
	if (!err || err_size == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
}

/* Grows *arr so that it holds at least `need` elements. */
static int grow(void *arrp, size_t *cap, size_t need, size_t elem)
{
	void **arr = arrp;
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 16;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / elem)
			return -ENOMEM;
		ncap *= 2;
	}
	void *p = realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static char *arena_alloc(struct tr_dwarf_index *ix, size_t n)
{
	struct arena_block *b = ix->arena;
	if (!b || b->size - b->used < n) {
		size_t size = n > 60000 ? n : 65536 - sizeof(*b);
		b = malloc(sizeof(*b) + size);
		if (!b) {
			ix->nomem = true;
			return NULL;
		}
		b->size = size;
		b->used = 0;
		b->next = ix->arena;
		ix->arena = b;
	}
	char *p = b->data + b->used;
	b->used += n;
	return p;
}

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;     /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Returns the one stored copy of s[0..len): names and paths repeat a lot (every unit of libc
 * includes the same headers, thousands of sites call the same callee), so interning keeps the
 * index small and lets callers compare by pointer if they like. NULL on ENOMEM. */
static const char *intern_n(struct tr_dwarf_index *ix, const char *s, size_t len)
{
	if (ix->nstrs + 1 > ix->cap_strs / 2) {
		size_t ncap = ix->cap_strs ? ix->cap_strs * 2 : 1024;
		struct istr *n = calloc(ncap, sizeof(*n));
		if (!n) {
			ix->nomem = true;
			return NULL;
		}
		for (size_t i = 0; i < ix->cap_strs; i++) {
			if (!ix->strs[i].s)
				continue;
			size_t j = ix->strs[i].hash & (ncap - 1);
			while (n[j].s)
				j = (j + 1) & (ncap - 1);
			n[j] = ix->strs[i];
		}
		free(ix->strs);
		ix->strs = n;
		ix->cap_strs = ncap;
	}
	uint64_t h = hash_bytes(s, len);
	size_t j = h & (ix->cap_strs - 1);
	while (ix->strs[j].s) {
		if (ix->strs[j].hash == h && strncmp(ix->strs[j].s, s, len) == 0 &&
		    ix->strs[j].s[len] == '\0')
			return ix->strs[j].s;
		j = (j + 1) & (ix->cap_strs - 1);
	}
	char *p = arena_alloc(ix, len + 1);
	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	ix->strs[j].s = p;
	ix->strs[j].hash = h;
	ix->nstrs++;
	return p;
}

static const char *intern(struct tr_dwarf_index *ix, const char *s)
{
	return s ? intern_n(ix, s, strlen(s)) : NULL;
}

/* "dir" + "/" + "name", interned; name alone when absolute or dir unknown. */
static const char *intern_path(struct tr_dwarf_index *ix, const char *comp_dir, const char *dir,
			       const char *name)
{
	char buf[PATH_MAX * 2];
	if (!name)
		return NULL;
	if (name[0] == '/' || !dir || !dir[0])
		return intern(ix, name);
	int n;
	if (dir[0] != '/' && comp_dir && comp_dir[0])
		n = snprintf(buf, sizeof(buf), "%s/%s/%s", comp_dir, dir, name);
	else
		n = snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return intern(ix, name);
	return intern_n(ix, buf, (size_t)n);
}

/* Addresses that stand for "no code": the linker resolves references into discarded sections
 * (unused COMDAT copies, --gc-sections) to 0 or, with newer linkers, to -1/-2. */
static bool is_tombstone(uint64_t a)
{
	return a == 0 || a >= UINT64_MAX - 1;
}

/* ---------------------------------------------------------------------------------------- */
/* The builder: state that lives only while tr_dwarf_open() reads the file                  */

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

/* libdwarf calls this only when an error has nowhere else to go; installing it is what keeps
 * libdwarf from calling abort() in that case. We always pass a Dwarf_Error pointer, so it
 * should never run. */
static void dw_errhand(Dwarf_Error e, Dwarf_Ptr arg)
{
	(void)e;
	(void)arg;
}

static void drop_err(Dwarf_Debug dbg, Dwarf_Error *e)
{
	if (*e) {
		dwarf_dealloc(dbg, *e, DW_DLA_ERROR);
		*e = NULL;
	}
}

/* Attribute readers. They return true when the attribute is there and readable; an attribute
 * libdwarf cannot decode is treated as absent (its error freed), since one odd attribute
 * should not cost the whole unit. */
static bool get_attr(struct builder *b, Dwarf_Die d, Dwarf_Half at, Dwarf_Attribute *out)
{
	Dwarf_Error e = NULL;
	int r = dwarf_attr(d, at, out, &e);
	if (r == DW_DLV_ERROR)
		drop_err(b->dbg, &e);
	return r == DW_DLV_OK;
}

static bool attr_udata(struct builder *b, Dwarf_Die d, Dwarf_Half at, int64_t *v)
{
	Dwarf_Attribute a;
	if (!get_attr(b, d, at, &a))
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
		drop_err(b->dbg, &e);
		if (dwarf_formsdata(a, &s, &e) == DW_DLV_OK && s >= 0) {
			*v = s;
			ok = true;
		}
		drop_err(b->dbg, &e);
	}
	dwarf_dealloc(b->dbg, a, DW_DLA_ATTR);
	return ok;
}

static bool attr_ref(struct builder *b, Dwarf_Die d, Dwarf_Half at, Dwarf_Off *off)
{
	Dwarf_Attribute a;
	if (!get_attr(b, d, at, &a))
		return false;
	Dwarf_Error e = NULL;
	bool ok = dwarf_global_formref(a, off, &e) == DW_DLV_OK;
	drop_err(b->dbg, &e);
	dwarf_dealloc(b->dbg, a, DW_DLA_ATTR);
	return ok;
}

static bool attr_addr(struct builder *b, Dwarf_Die d, Dwarf_Half at, uint64_t *addr)
{
	Dwarf_Attribute a;
	if (!get_attr(b, d, at, &a))
		return false;
	Dwarf_Error e = NULL;
	Dwarf_Addr v;
	bool ok = dwarf_formaddr(a, &v, &e) == DW_DLV_OK;   /* also DW_FORM_addrx (clang) */
	drop_err(b->dbg, &e);
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
		drop_err(b->dbg, &e);
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
		drop_err(b->dbg, &e);
	/* The string points into .debug_str: not ours to free. */
	return r == DW_DLV_OK ? intern(b->ix, name) : NULL;
}

static Dwarf_Off die_cu_off(struct builder *b, Dwarf_Die d)
{
	Dwarf_Off off = 0;
	Dwarf_Error e = NULL;
	if (dwarf_CU_dieoffset_given_die(d, &off, &e) != DW_DLV_OK) {
		drop_err(b->dbg, &e);
		return 0;
	}
	return off;
}

static const char *unit_file(const struct tr_dwarf_index *ix, uint32_t u, int64_t fileno)
{
	if (u >= ix->nunits)
		return NULL;
	const struct unit_priv *p = &ix->upriv[u];
	if (fileno < p->files_base || fileno - p->files_base >= (int64_t)p->files_count)
		return NULL;
	return ix->files[p->files_first + (fileno - p->files_base)];
}

/* Name and declaration of a DIE, following DW_AT_abstract_origin (an out-of-line copy of an
 * inlined function, whose name lives in the abstract instance) and DW_AT_specification (a
 * definition whose declaration holds the name), a few hops at most so that a reference cycle
 * in bad DWARF cannot loop. A decl_file is a file number in the file table of the unit that
 * holds the attribute, which may be another unit (LTO): then it is resolved after all units
 * are read (*decl_cu set to that unit's DIE offset). */
static void describe(struct builder *b, Dwarf_Die die, const char **name, int64_t *decl_file,
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
			if (attr_udata(b, cur, DW_AT_decl_file, &f)) {
				*decl_file = f;
				*decl_cu = die_cu_off(b, cur);
				if (attr_udata(b, cur, DW_AT_decl_line, &l) && l > 0 && l < INT_MAX)
					*decl_line = (int)l;
			}
		}
		if (*name && (!decl_file || *decl_file >= 0))
			break;
		Dwarf_Off ref;
		if (!attr_ref(b, cur, DW_AT_abstract_origin, &ref) &&
		    !attr_ref(b, cur, DW_AT_specification, &ref))
			break;
		Dwarf_Die next = NULL;
		Dwarf_Error e = NULL;
		int r = dwarf_offdie_b(b->dbg, ref, 1, &next, &e);
		if (r == DW_DLV_ERROR)
			drop_err(b->dbg, &e);
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
		describe(b, d, &name, NULL, NULL, NULL);
		dwarf_dealloc(b->dbg, d, DW_DLA_DIE);
	} else if (r == DW_DLV_ERROR) {
		drop_err(b->dbg, &e);
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
	if (is_tombstone(lo) || hi <= lo)
		return 0;
	if (grow(&ix->franges, &ix->cap_franges, ix->nfranges + 1, sizeof(*ix->franges))) {
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
	if (!get_attr(b, die, DW_AT_ranges, &a))
		return 0;
	Dwarf_Error e = NULL;
	Dwarf_Half ver = 0, offsize = 0, form = 0;
	dwarf_get_version_of_die(die, &ver, &offsize);
	int rc = 0;
	if (dwarf_whatform(a, &form, &e) != DW_DLV_OK) {
		drop_err(b->dbg, &e);
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
			drop_err(b->dbg, &e);
			goto out;
		}
		Dwarf_Rnglists_Head head = NULL;
		if (dwarf_rnglists_get_rle_head(a, form, val, &head, &count, &goff, &e) !=
		    DW_DLV_OK) {
			drop_err(b->dbg, &e);
			goto out;
		}
		for (Dwarf_Unsigned i = 0; i < count && rc == 0; i++) {
			unsigned len = 0, code = 0;
			Dwarf_Unsigned raw1, raw2, lo, hi;
			Dwarf_Bool unavailable = 0;
			if (dwarf_get_rnglists_entry_fields_a(head, i, &len, &code, &raw1, &raw2,
							      &unavailable, &lo, &hi, &e) !=
			    DW_DLV_OK) {
				drop_err(b->dbg, &e);
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
			drop_err(b->dbg, &e);
			goto out;
		}
		Dwarf_Ranges *rs = NULL;
		Dwarf_Signed n = 0;
		Dwarf_Unsigned bytes = 0;
		if (dwarf_get_ranges_b(b->dbg, off, die, &real, &rs, &n, &bytes, &e) != DW_DLV_OK) {
			drop_err(b->dbg, &e);
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
	drop_err(b->dbg, &e);
	bool has_ranges = !(has_low && has_high) && has_attr(b, die, DW_AT_ranges);
	if (!(has_low && has_high) && !has_ranges)
		return TR_DWARF_NONE;
	if (has_low && has_high && is_tombstone(low)) {
		ix->st.discarded_functions++;
		return TR_DWARF_NONE;
	}
	if (ix->nfuncs >= TR_DWARF_MAX_FUNCTIONS) {
		ix->st.truncated |= TR_DWARF_CUT_FUNCTIONS;
		return TR_DWARF_NONE;
	}
	if (grow(&ix->funcs, &ix->cap_funcs, ix->nfuncs + 1, sizeof(*ix->funcs))) {
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
	describe(b, die, &f->name, &decl_file, &decl_cu, &f->decl_line);
	if (decl_file >= 0) {
		if (decl_cu == b->cu_die_off || decl_cu == 0) {
			f->decl_file = unit_file(ix, b->unit, decl_file);
		} else if (!grow(&b->pend, &b->cap_pend, b->npend + 1, sizeof(*b->pend))) {
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
	if (is_tombstone(s.return_pc ? s.return_pc : s.call_pc))
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
	if (attr_ref(b, die, DW_AT_call_origin, &ref) ||
	    attr_ref(b, die, DW_AT_abstract_origin, &ref))
		s.callee = callee_name(b, ref);
	int64_t f, l;
	if (attr_udata(b, die, DW_AT_call_line, &l) && l > 0 && l < INT_MAX) {
		s.line = (int)l;
		if (attr_udata(b, die, DW_AT_call_file, &f))
			s.file = unit_file(ix, b->unit, f);
	}
	/* Otherwise file:line come from the line table once all units are read. */
	if (grow(&ix->sites, &ix->cap_sites, ix->nsites + 1, sizeof(*ix->sites))) {
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
		drop_err(b->dbg, &e);
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
		/* Types, variables, parameters: no code below. Not descending into them is most of
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
		drop_err(b->dbg, &e);
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
			drop_err(b->dbg, &e);
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
/* Line tables                                                                               */

static int read_file_table(struct builder *b, Dwarf_Line_Context lc, const char *comp_dir)
{
	struct tr_dwarf_index *ix = b->ix;
	struct unit_priv *up = &ix->upriv[b->unit];
	Dwarf_Error e = NULL;
	Dwarf_Signed base = 0, count = 0, end = 0;
	if (dwarf_srclines_files_indexes(lc, &base, &count, &end, &e) != DW_DLV_OK) {
		drop_err(b->dbg, &e);
		return 0;
	}
	if (count <= 0 || count > 1000000)
		return 0;
	if (grow(&ix->files, &ix->cap_files, ix->nfiles + (size_t)count, sizeof(*ix->files))) {
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
			drop_err(b->dbg, &e);
			name = NULL;
		} else if (dwarf_srclines_include_dir_data(lc, (Dwarf_Signed)di, &dir, &e) !=
			   DW_DLV_OK) {
			drop_err(b->dbg, &e);
			dir = di == 0 ? comp_dir : NULL;
		}
		/* Directory 0 is the compilation directory already: prefixing comp_dir again would
		 * give "./csu/./csu/version.c" for a relative comp_dir like glibc's. */
		ix->files[ix->nfiles++] = intern_path(ix, di == 0 ? NULL : comp_dir, dir, name);
		if (ix->nomem)
			return -ENOMEM;
	}
	up->files_count = (uint32_t)(ix->nfiles - up->files_first);
	return 0;
}

static int add_seq(struct tr_dwarf_index *ix, uint64_t lo, uint64_t hi, size_t first)
{
	size_t count = ix->nrows - first;
	if (count == 0 || is_tombstone(lo) || hi <= lo) {
		ix->nrows = first;                 /* a discarded function's rows: drop them */
		return 0;
	}
	if (grow(&ix->seqs, &ix->cap_seqs, ix->nseqs + 1, sizeof(*ix->seqs))) {
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
	if (get_attr(b, cu_die, DW_AT_producer, &a)) {
		char *s = NULL;
		Dwarf_Error e = NULL;
		if (dwarf_formstring(a, &s, &e) == DW_DLV_OK)
			gnu = s && strncmp(s, "GNU ", 4) == 0;
		drop_err(b->dbg, &e);
		dwarf_dealloc(b->dbg, a, DW_DLA_ATTR);
	}
	return gnu;
}

static int read_lines(struct builder *b, Dwarf_Die cu_die, const char *comp_dir)
{
	struct tr_dwarf_index *ix = b->ix;
	Dwarf_Error e = NULL;
	Dwarf_Unsigned version = 0;
	Dwarf_Small tables = 0;
	Dwarf_Line_Context lc = NULL;
	int r = dwarf_srclines_b(cu_die, &version, &tables, &lc, &e);
	if (r == DW_DLV_ERROR) {
		drop_err(b->dbg, &e);
		return -EBADMSG;
	}
	if (r == DW_DLV_NO_ENTRY)
		return 0;
	int rc = read_file_table(b, lc, comp_dir);
	Dwarf_Line *lines = NULL;
	Dwarf_Signed n = 0;
	if (rc == 0 && tables > 0 &&
	    dwarf_srclines_from_linecontext(lc, &lines, &n, &e) != DW_DLV_OK) {
		drop_err(b->dbg, &e);
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
			drop_err(b->dbg, &e);
			continue;
		}
		if (end) {
			if (open)
				rc = add_seq(ix, lo, addr, first);
			open = false;
			continue;
		}
		if (dwarf_lineno(lines[i], &lineno, &e) != DW_DLV_OK)
			drop_err(b->dbg, &e);
		if (dwarf_line_srcfileno(lines[i], &fileno, &e) != DW_DLV_OK)
			drop_err(b->dbg, &e);
		if (dwarf_linebeginstatement(lines[i], &stmt, &e) != DW_DLV_OK)
			drop_err(b->dbg, &e);
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
		if (grow(&ix->rows, &ix->cap_rows, ix->nrows + 1, sizeof(*ix->rows))) {
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
	if (get_attr(b, cu_die, DW_AT_comp_dir, &a)) {
		char *s = NULL;
		Dwarf_Error e = NULL;
		if (dwarf_formstring(a, &s, &e) == DW_DLV_OK)
			un->comp_dir = intern(ix, s);
		drop_err(b->dbg, &e);
		dwarf_dealloc(b->dbg, a, DW_DLA_ATTR);
	}
	un->path = intern_path(ix, NULL, un->comp_dir, un->name);
	if (!un->name)
		un->name = intern(ix, "");
	attr_addr(b, cu_die, DW_AT_low_pc, &b->cu_base);
	if (ix->nomem)
		return -ENOMEM;
	ix->nunits++;

	int rc = read_lines(b, cu_die, un->comp_dir);
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
			drop_err(b->dbg, &e);
			ix->st.truncated |= TR_DWARF_CUT_ERRORS;
			return 0;
		}
		Dwarf_Die cu_die = NULL;
		r = dwarf_siblingof_b(b->dbg, NULL, 1, &cu_die, &e);
		if (r != DW_DLV_OK) {
			drop_err(b->dbg, &e);
			ix->st.bad_units++;
			continue;
		}
		Dwarf_Half tag = 0;
		if (dwarf_tag(cu_die, &tag, &e) != DW_DLV_OK) {
			drop_err(b->dbg, &e);
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

/* ---------------------------------------------------------------------------------------- */
/* Finishing: sort what lookups search                                                      */

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

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->func < y->func ? -1 : x->func > y->func;
}

static uint64_t site_key(const struct tr_dwarf_site *s)
{
	return s->return_pc ? s->return_pc : s->call_pc;
}

static int cmp_site(const void *a, const void *b)
{
	const struct tr_dwarf_site *x = a, *y = b;
	uint64_t kx = site_key(x), ky = site_key(y);
	if (kx != ky)
		return kx < ky ? -1 : 1;
	/* DWARF's sites before those found in the code, so deduplication keeps DWARF's. */
	return (int)(x->flags & TR_SITE_FROM_CODE) - (int)(y->flags & TR_SITE_FROM_CODE);
}

static bool line_at(const struct tr_dwarf_index *ix, uint64_t pc, const char **file, int *line);

static int finish(struct builder *b)
{
	struct tr_dwarf_index *ix = b->ix;
	/* decl_files that live in another unit's file table */
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
				unit_file(ix, (uint32_t)lo, b->pend[i].fileno);
	}
	/* Rows of a sequence are in address order by DWARF's rules; make sure, since the lookup
	 * depends on it and a producer bug should not turn into wrong answers. */
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
	if (ix->nfranges) {
		ix->by_pc = malloc(ix->nfranges * sizeof(*ix->by_pc));
		if (!ix->by_pc)
			return -ENOMEM;
		memcpy(ix->by_pc, ix->franges, ix->nfranges * sizeof(*ix->by_pc));
		qsort(ix->by_pc, ix->nfranges, sizeof(*ix->by_pc), cmp_range);
		ix->nby_pc = ix->nfranges;
	}
	for (size_t i = 0; i < ix->nsites; i++) {
		struct tr_dwarf_site *s = &ix->sites[i];
		/* The return address is the instruction after the call, maybe on another line (or
		 * in another function, after a noreturn call): the byte before it is the call's. */
		uint64_t pc = s->return_pc ? s->return_pc - 1 : s->call_pc;
		if (s->function == TR_DWARF_NONE)
			s->function = tr_dwarf_function_at(ix, pc);
		if (!s->line)
			line_at(ix, pc, &s->file, &s->line);
	}
	if (ix->nsites)
		qsort(ix->sites, ix->nsites, sizeof(*ix->sites), cmp_site);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Open / close                                                                              */

void tr_dwarf_close(struct tr_dwarf_index *ix)
{
	if (!ix)
		return;
	while (ix->arena) {
		struct arena_block *n = ix->arena->next;
		free(ix->arena);
		ix->arena = n;
	}
	free(ix->strs);
	free(ix->files);
	free(ix->seqs);
	free(ix->rows);
	free(ix->sites);
	free(ix->by_pc);
	free(ix->franges);
	free(ix->funcs);
	free(ix->upriv);
	free(ix->units);
	free(ix->debug_path);
	free(ix->path);
	free(ix);
}

/* -errno when the file cannot be read, -ENOEXEC when it is not ELF. libdwarf would report
 * both as "no DWARF" or a vague error; the user deserves to know which. */
static int check_elf(const char *path, char *err, size_t err_size)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		int rc = -errno;
		set_err(err, err_size, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (S_ISDIR(st.st_mode)) {
		set_err(err, err_size, "%s: is a directory", path);
		return -EISDIR;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		set_err(err, err_size, "%s: %s", path, strerror(errno));
		return rc;
	}
	unsigned char magic[4] = { 0 };
	ssize_t n = read(fd, magic, sizeof(magic));
	close(fd);
	if (n != (ssize_t)sizeof(magic) || memcmp(magic, ELFMAG, SELFMAG) != 0) {
		set_err(err, err_size, "%s: not an ELF file", path);
		return -ENOEXEC;
	}
	return 0;
}

static void close_dbg(Dwarf_Debug dbg)
{
	Dwarf_Error e = NULL;
	if (dbg && dwarf_finish(dbg, &e) != DW_DLV_OK && e)
		dwarf_dealloc(NULL, e, DW_DLA_ERROR);
}

int tr_dwarf_open(const char *path, struct tr_dwarf_index **out, char *err, size_t err_size)
{
	if (!path || !out) {
		set_err(err, err_size, "tr_dwarf_open: no path");
		return -EINVAL;
	}
	*out = NULL;
	int rc = check_elf(path, err, err_size);
	if (rc)
		return rc;
	struct tr_dwarf_index *ix = calloc(1, sizeof(*ix));
	if (!ix) {
		set_err(err, err_size, "out of memory");
		return -ENOMEM;
	}
	ix->path = strdup(path);
	if (!ix->path) {
		tr_dwarf_close(ix);
		set_err(err, err_size, "out of memory");
		return -ENOMEM;
	}

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
		*out = ix;
		return 0;
	}
	if (r == DW_DLV_ERROR) {
		/* libdwarf 20210528 may return an error without an error object (seen for an ELF
		 * header followed by garbage). */
		set_err(err, err_size, "%s: cannot read DWARF: %s", path,
			e ? dwarf_errmsg(e) : "not a readable ELF object");
		if (e)
			dwarf_dealloc(dbg, e, DW_DLA_ERROR);
		close_dbg(dbg);
		tr_dwarf_close(ix);
		return -EBADMSG;
	}
	ix->debug_path = strdup(true_path[0] ? true_path : path);
	if (!ix->debug_path) {
		close_dbg(dbg);
		tr_dwarf_close(ix);
		set_err(err, err_size, "out of memory");
		return -ENOMEM;
	}

	struct builder b = { .ix = ix, .dbg = dbg };
	rc = read_all_units(&b);
	if (rc == 0 && !ix->nomem)
		rc = finish(&b);
	free(b.cache);
	free(b.pend);
	close_dbg(dbg);
	if (rc == 0 && ix->nomem)
		rc = -ENOMEM;
	if (rc) {
		set_err(err, err_size, "%s: %s", path, strerror(-rc));
		tr_dwarf_close(ix);
		return rc;
	}
	if (ix->nunits == 0) {          /* libdwarf opened it, but there was nothing to read */
		free(ix->debug_path);
		ix->debug_path = NULL;
	}
	*out = ix;
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Queries                                                                                   */

bool tr_dwarf_has_debug_info(const struct tr_dwarf_index *ix)
{
	return ix && ix->nunits > 0;
}

const char *tr_dwarf_path(const struct tr_dwarf_index *ix)
{
	return ix ? ix->path : NULL;
}

const char *tr_dwarf_debug_path(const struct tr_dwarf_index *ix)
{
	return ix ? ix->debug_path : NULL;
}

struct tr_dwarf_stats tr_dwarf_stats(const struct tr_dwarf_index *ix)
{
	struct tr_dwarf_stats st = { 0 };
	if (!ix)
		return st;
	st = ix->st;
	st.units = ix->nunits;
	st.functions = ix->nfuncs;
	st.sites = ix->nsites;
	st.sites_from_code = 0;
	for (size_t i = 0; i < ix->nsites; i++)
		st.sites_from_code += (ix->sites[i].flags & TR_SITE_FROM_CODE) != 0;
	st.line_rows = ix->nrows;
	st.sequences = ix->nseqs;
	return st;
}

size_t tr_dwarf_units(const struct tr_dwarf_index *ix)
{
	return ix ? ix->nunits : 0;
}

const struct tr_dwarf_unit *tr_dwarf_unit(const struct tr_dwarf_index *ix, size_t i)
{
	return ix && i < ix->nunits ? &ix->units[i] : NULL;
}

const char *tr_dwarf_unit_name(const struct tr_dwarf_index *ix, size_t i)
{
	return ix && i < ix->nunits ? ix->units[i].name : NULL;
}

static bool ends_with_component(const char *path, const char *name)
{
	size_t lp = strlen(path), ln = strlen(name);
	return lp > ln && path[lp - ln - 1] == '/' && strcmp(path + lp - ln, name) == 0;
}

int tr_dwarf_find_unit(const struct tr_dwarf_index *ix, const char *name, uint32_t *out)
{
	if (!ix || !name || !name[0])
		return -EINVAL;
	for (size_t i = 0; i < ix->nunits; i++) {
		const struct tr_dwarf_unit *u = &ix->units[i];
		if (strcmp(u->name, name) == 0 || (u->path && strcmp(u->path, name) == 0)) {
			if (out)
				*out = (uint32_t)i;
			return 0;
		}
	}
	size_t found = SIZE_MAX;
	const char *found_path = NULL;
	for (size_t i = 0; i < ix->nunits; i++) {
		const char *p = ix->units[i].path ? ix->units[i].path : ix->units[i].name;
		if (!ends_with_component(p, name))
			continue;
		if (found == SIZE_MAX) {
			found = i;
			found_path = p;
		} else if (strcmp(found_path, p) != 0) {
			return -EEXIST;   /* "util.c" in two directories: the caller must say which */
		}
	}
	if (found == SIZE_MAX)
		return -ENOENT;
	if (out)
		*out = (uint32_t)found;
	return 0;
}

size_t tr_dwarf_functions(const struct tr_dwarf_index *ix)
{
	return ix ? ix->nfuncs : 0;
}

const struct tr_dwarf_function *tr_dwarf_function(const struct tr_dwarf_index *ix, size_t i)
{
	return ix && i < ix->nfuncs ? &ix->funcs[i] : NULL;
}

int tr_dwarf_function_range(const struct tr_dwarf_index *ix, size_t f, uint32_t k,
			    uint64_t *low, uint64_t *high)
{
	if (!ix || f >= ix->nfuncs || k >= ix->funcs[f].nranges)
		return -ENOENT;
	const struct range *r = &ix->franges[ix->funcs[f].first_range + k];
	if (low)
		*low = r->lo;
	if (high)
		*high = r->hi;
	return 0;
}

uint32_t tr_dwarf_find_function(const struct tr_dwarf_index *ix, const char *name)
{
	if (!ix || !name)
		return TR_DWARF_NONE;
	for (size_t i = 0; i < ix->nfuncs; i++)
		if (ix->funcs[i].name && strcmp(ix->funcs[i].name, name) == 0)
			return (uint32_t)i;
	return TR_DWARF_NONE;
}

uint32_t tr_dwarf_function_at(const struct tr_dwarf_index *ix, uint64_t pc)
{
	if (!ix || !ix->nby_pc)
		return TR_DWARF_NONE;
	size_t lo = 0, hi = ix->nby_pc;          /* first range with lo > pc */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ix->by_pc[mid].lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Ranges do not overlap in a sane file, but the same function compiled into two units
	 * (or bad DWARF) can overlap: look back a little rather than answer wrong. */
	for (size_t i = lo, n = 0; i > 0 && n < 8; i--, n++)
		if (pc < ix->by_pc[i - 1].hi)
			return ix->by_pc[i - 1].func;
	return TR_DWARF_NONE;
}

static bool line_at(const struct tr_dwarf_index *ix, uint64_t pc, const char **file, int *line)
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

int tr_dwarf_lookup_pc(const struct tr_dwarf_index *ix, uint64_t pc, const char **function,
		       const char **file, int *line)
{
	const char *f = NULL, *fn = NULL;
	int l = 0;
	if (!ix)
		return -EINVAL;
	bool have_line = line_at(ix, pc, &f, &l);
	uint32_t fi = tr_dwarf_function_at(ix, pc);
	if (fi != TR_DWARF_NONE)
		fn = ix->funcs[fi].name;
	if (function)
		*function = fn;
	if (file)
		*file = f;
	if (line)
		*line = l;
	return have_line || fi != TR_DWARF_NONE ? 0 : -ENOENT;
}

const struct tr_dwarf_site *tr_dwarf_sites(const struct tr_dwarf_index *ix, size_t *count)
{
	if (count)
		*count = ix ? ix->nsites : 0;
	return ix ? ix->sites : NULL;
}

static bool callee_matches(const char *callee, const struct tr_site_filter *f)
{
	if (!f || (!f->names && !f->pred))
		return true;
	if (!callee)
		return false;                        /* an indirect call has no name to match */
	if (f->names) {
		bool hit = false;
		for (const char *const *n = f->names; *n; n++) {
			if (strcmp(*n, callee) == 0) {
				hit = true;
				break;
			}
		}
		if (!hit)
			return false;
	}
	return !f->pred || f->pred(callee, f->pred_arg);
}

bool tr_dwarf_site_matches(const struct tr_dwarf_index *ix, const struct tr_dwarf_site *s,
			   const struct tr_site_filter *f)
{
	(void)ix;
	if (!s)
		return false;
	if (f && f->by_unit && s->unit != f->unit)
		return false;
	return callee_matches(s->callee, f);
}

const struct tr_dwarf_site *tr_dwarf_next_site(const struct tr_dwarf_index *ix,
					       const struct tr_site_filter *f, size_t *cursor)
{
	if (!ix || !cursor)
		return NULL;
	while (*cursor < ix->nsites) {
		const struct tr_dwarf_site *s = &ix->sites[(*cursor)++];
		if (tr_dwarf_site_matches(ix, s, f))
			return s;
	}
	return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Finding calls in the machine code (gcc -O0 has no call-site DIEs)                         */

struct addr_name {
	uint64_t addr;
	uint64_t size;           /* symbol table functions only */
	const char *name;        /* into the ELF image: valid while it is open; NULL for an
	                            IFUNC slot, which no symbol names */
};

struct xsec {                /* an executable section's bytes */
	uint64_t addr, size;
	const uint8_t *data;
	bool is_plt;
};

struct elf_img {
	int fd;
	Elf *elf;
	struct xsec *xs;
	size_t nxs, cap_xs;
	struct addr_name *stubs; /* PLT stub entry -> imported function */
	size_t nstubs, cap_stubs;
	struct addr_name *slots; /* GOT slot -> imported function */
	size_t nslots, cap_slots;
	struct addr_name *syms;  /* .symtab functions */
	size_t nsyms, cap_syms;
	struct addr_name *dynsyms; /* .dynsym functions */
	size_t ndynsyms, cap_dynsyms;
	struct addr_name *entries; /* DWARF function entries */
	size_t nentries;
};

static int cmp_addr_name(const void *a, const void *b)
{
	const struct addr_name *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static const struct addr_name *find_exact(const struct addr_name *v, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo].addr == addr ? &v[lo] : NULL;
}

static void elf_img_close(struct elf_img *im)
{
	free(im->xs);
	free(im->stubs);
	free(im->slots);
	free(im->syms);
	free(im->dynsyms);
	free(im->entries);
	if (im->elf)
		elf_end(im->elf);
	if (im->fd >= 0)
		close(im->fd);
}

static int push_an(struct addr_name **v, size_t *n, size_t *cap, uint64_t addr, uint64_t size,
		   const char *name)
{
	if (grow(v, cap, *n + 1, sizeof(**v)))
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

static int elf_img_open(struct elf_img *im, const char *path, char *err, size_t err_size)
{
	memset(im, 0, sizeof(*im));
	im->fd = -1;
	if (elf_version(EV_CURRENT) == EV_NONE) {
		set_err(err, err_size, "libelf: %s", elf_errmsg(-1));
		return -ENOTSUP;
	}
	im->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (im->fd < 0) {
		int rc = -errno;
		set_err(err, err_size, "%s: %s", path, strerror(errno));
		return rc;
	}
	im->elf = elf_begin(im->fd, ELF_C_READ, NULL);
	if (!im->elf || elf_kind(im->elf) != ELF_K_ELF) {
		set_err(err, err_size, "%s: not an ELF file", path);
		return -ENOEXEC;
	}
	GElf_Ehdr eh;
	if (!gelf_getehdr(im->elf, &eh)) {
		set_err(err, err_size, "%s: %s", path, elf_errmsg(-1));
		return -ENOEXEC;
	}
	if (eh.e_machine != EM_X86_64 || gelf_getclass(im->elf) != ELFCLASS64) {
		set_err(err, err_size, "%s: call scanning knows only x86-64 code", path);
		return -ENOTSUP;
	}
	size_t shstrndx;
	if (elf_getshdrstrndx(im->elf, &shstrndx) != 0) {
		set_err(err, err_size, "%s: %s", path, elf_errmsg(-1));
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
				if (grow(&im->xs, &im->cap_xs, im->nxs + 1, sizeof(*im->xs)))
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
	if (rc == 0 && im->ndynsyms)
		qsort(im->dynsyms, im->ndynsyms, sizeof(*im->dynsyms), cmp_addr_name);
	if (rc)
		set_err(err, err_size, "out of memory");
	return rc;
}

static const uint8_t *code_at(const struct elf_img *im, uint64_t lo, uint64_t hi)
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
			if (site_key(&ix->sites[mid]) < key)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < n && site_key(&ix->sites[lo]) == key; lo++) {
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
	if (!callee || !callee_matches(callee, c->f))
		return 0;
	if (ix->nsites >= TR_DWARF_MAX_SITES) {
		ix->st.truncated |= TR_DWARF_CUT_SITES;
		return 0;
	}
	if (grow(&ix->sites, &ix->cap_sites, ix->nsites + 1, sizeof(*ix->sites)))
		return -ENOMEM;
	struct tr_dwarf_site n = {
		.return_pc = ret, .call_pc = call_pc, .callee = intern(ix, callee),
		.function = func, .unit = unit,
		.flags = TR_SITE_FROM_CODE | (tail ? TR_SITE_TAIL : 0),
	};
	if (ix->nomem)
		return -ENOMEM;
	line_at(ix, call_pc, &n.file, &n.line);
	ix->sites[ix->nsites++] = n;
	c->added++;
	return 0;
}

/* Scans [lo, hi) for
 *   e8 rel32 (call) and e9 rel32 (jmp: a tail call) whose target is exactly a PLT stub or a
 *   function's entry, and ff 15 / ff 25 disp32 (call / jmp *slot(%rip), gcc -fno-plt) whose
 *   slot is exactly an imported function's GOT slot.
 * This is a linear byte scan, not a disassembly, so an e8 byte inside another instruction
 * (an immediate, a displacement, a ModRM byte) is also looked at. It is a heuristic, and good
 * enough because a false positive needs the four following bytes to form, by chance, exactly
 * the distance to one of the few hundred stub or entry addresses out of 2^32 possible values:
 * about one in ten million per stray e8 byte. The cost of a false hit is one wasted yield
 * point, never a wrong pc for a real call. Once a call is accepted its bytes are skipped, as
 * a real instruction cannot overlap the next. */
static int scan_range(struct scan_ctx *c, uint64_t lo, uint64_t hi, uint32_t func, uint32_t unit)
{
	const struct elf_img *im = c->im;
	const uint8_t *p = code_at(im, lo, hi);
	if (!p)
		return 0;                  /* not in this file's code (e.g. NOBITS): nothing to scan */
	uint64_t n = hi - lo;
	for (uint64_t i = 0; i + 5 <= n; i++) {
		int rc = 0;
		if (p[i] == 0xe8 || p[i] == 0xe9) {
			int32_t rel;
			memcpy(&rel, p + i + 1, 4);
			uint64_t target = lo + i + 5 + (int64_t)rel;
			const struct addr_name *an = find_exact(im->stubs, im->nstubs, target);
			if (!an)
				an = find_exact(im->entries, im->nentries, target);
			if (!an)
				an = find_exact(im->syms, im->nsyms, target);
			if (!an)
				an = find_exact(im->dynsyms, im->ndynsyms, target);
			if (an) {
				rc = found_call(c, lo + i, 5, an->name, p[i] == 0xe9, func, unit);
				i += 4;
			}
		} else if (p[i] == 0xff && i + 6 <= n && (p[i + 1] == 0x15 || p[i + 1] == 0x25)) {
			int32_t disp;
			memcpy(&disp, p + i + 2, 4);
			uint64_t slot = lo + i + 6 + (int64_t)disp;
			const struct addr_name *an = find_exact(im->slots, im->nslots, slot);
			if (an) {
				rc = found_call(c, lo + i, 6, an->name, p[i + 1] == 0x25, func, unit);
				i += 5;
			}
		}
		if (rc)
			return rc;
	}
	return 0;
}

int tr_dwarf_scan_calls(struct tr_dwarf_index *ix, const char *elf_path,
			const struct tr_site_filter *f, size_t *added, char *err, size_t err_size)
{
	if (added)
		*added = 0;
	if (!ix || !elf_path) {
		set_err(err, err_size, "tr_dwarf_scan_calls: no index or path");
		return -EINVAL;
	}
	struct elf_img im;
	int rc = elf_img_open(&im, elf_path, err, err_size);
	if (rc) {
		elf_img_close(&im);
		return rc;
	}
	/* Function entries known to DWARF are call targets too (static functions have no PLT
	 * stub, and a stripped symbol table may lack them). */
	im.entries = malloc((ix->nfuncs ? ix->nfuncs : 1) * sizeof(*im.entries));
	if (!im.entries) {
		elf_img_close(&im);
		set_err(err, err_size, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < ix->nfuncs; i++)
		if (ix->funcs[i].name)
			im.entries[im.nentries++] =
				(struct addr_name){ ix->funcs[i].low_pc, 0, ix->funcs[i].name };
	if (im.nentries)
		qsort(im.entries, im.nentries, sizeof(*im.entries), cmp_addr_name);

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
		/* Stripped: no bounds at all, so scan all code but the PLT itself. The exact-target
		 * rule above is what makes this safe; padding and data in .text add no false hits
		 * beyond the same one-in-ten-million odds. */
		for (size_t i = 0; rc == 0 && i < im.nxs; i++)
			if (!im.xs[i].is_plt)
				rc = scan_range(&c, im.xs[i].addr, im.xs[i].addr + im.xs[i].size,
						TR_DWARF_NONE, TR_DWARF_NONE);
	}
	elf_img_close(&im);
	if (ix->nsites > c.nsorted) {
		qsort(ix->sites, ix->nsites, sizeof(*ix->sites), cmp_site);
		/* The same code indexed twice (one function described in two units) would add its
		 * calls twice: keep the first. */
		size_t w = 1;
		for (size_t i = 1; i < ix->nsites; i++) {
			const struct tr_dwarf_site *p = &ix->sites[w - 1], *s = &ix->sites[i];
			if (s->flags & TR_SITE_FROM_CODE && site_key(p) == site_key(s) &&
			    p->call_pc == s->call_pc) {
				c.added--;
				continue;
			}
			ix->sites[w++] = *s;
		}
		ix->nsites = w;
	}
	if (rc) {
		set_err(err, err_size, "%s: %s", elf_path, strerror(-rc));
		return rc;
	}
	if (added)
		*added = c.added;
	return 0;
}
