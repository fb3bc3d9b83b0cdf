/* dwarf_index.c - the index's storage, open/close and every query. The DWARF is read with
 * libdwarf (release 20210528, the old API) by dwarf_walk.c and dwarf_lines.c into plain
 * arrays, then libdwarf is let go: the index holds no libdwarf object after
 * tr_dwarf_open() returns, so lookups are cheap and libdwarf's memory is given back at once.
 *
 * The other files of the index: dwarf_walk.c (units, DIEs), dwarf_lines.c (line tables),
 * elf_plt_scan.c (calls found in the code); dwarf_index_private.h is what they share.
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

#include <elf.h>

#include "dwarf_index_private.h"

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                             */

void tr_dwi_set_err(char *err, size_t err_size, const char *fmt, ...)
{
	if (!err || err_size == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
}

/* Grows *arr so that it holds at least `need` elements. */
int tr_dwi_grow(void *arrp, size_t *cap, size_t need, size_t elem)
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
const char *tr_dwi_intern_n(struct tr_dwarf_index *ix, const char *s, size_t len)
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

const char *tr_dwi_intern(struct tr_dwarf_index *ix, const char *s)
{
	return s ? tr_dwi_intern_n(ix, s, strlen(s)) : NULL;
}

/* "dir" + "/" + "name", interned; name alone when absolute or dir unknown. */
const char *tr_dwi_intern_path(struct tr_dwarf_index *ix, const char *comp_dir, const char *dir,
			       const char *name)
{
	char buf[PATH_MAX * 2];
	if (!name)
		return NULL;
	if (name[0] == '/' || !dir || !dir[0])
		return tr_dwi_intern(ix, name);
	int n;
	if (dir[0] != '/' && comp_dir && comp_dir[0])
		n = snprintf(buf, sizeof(buf), "%s/%s/%s", comp_dir, dir, name);
	else
		n = snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return tr_dwi_intern(ix, name);
	return tr_dwi_intern_n(ix, buf, (size_t)n);
}

const char *tr_dwi_unit_file(const struct tr_dwarf_index *ix, uint32_t u, int64_t fileno)
{
	if (u >= ix->nunits)
		return NULL;
	const struct unit_priv *p = &ix->upriv[u];
	if (fileno < p->files_base || fileno - p->files_base >= (int64_t)p->files_count)
		return NULL;
	return ix->files[p->files_first + (fileno - p->files_base)];
}

/* ---------------------------------------------------------------------------------------- */
/* Finishing: sort what lookups search                                                      */

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->func < y->func ? -1 : x->func > y->func;
}

int tr_dwi_cmp_site(const void *a, const void *b)
{
	const struct tr_dwarf_site *x = a, *y = b;
	uint64_t kx = tr_dwi_site_key(x), ky = tr_dwi_site_key(y);
	if (kx != ky)
		return kx < ky ? -1 : 1;
	/* DWARF's sites before those found in the code, so deduplication keeps DWARF's. */
	return (int)(x->flags & TR_SITE_FROM_CODE) - (int)(y->flags & TR_SITE_FROM_CODE);
}

int tr_dwi_finish(struct tr_dwarf_index *ix)
{
	tr_dwi_lines_sort(ix);
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
			tr_dwi_line_at(ix, pc, &s->file, &s->line);
	}
	if (ix->nsites)
		qsort(ix->sites, ix->nsites, sizeof(*ix->sites), tr_dwi_cmp_site);
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
	free(ix->vars);
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
		tr_dwi_set_err(err, err_size, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (S_ISDIR(st.st_mode)) {
		tr_dwi_set_err(err, err_size, "%s: is a directory", path);
		return -EISDIR;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		tr_dwi_set_err(err, err_size, "%s: %s", path, strerror(errno));
		return rc;
	}
	unsigned char magic[4] = { 0 };
	ssize_t n = read(fd, magic, sizeof(magic));
	close(fd);
	if (n != (ssize_t)sizeof(magic) || memcmp(magic, ELFMAG, SELFMAG) != 0) {
		tr_dwi_set_err(err, err_size, "%s: not an ELF file", path);
		return -ENOEXEC;
	}
	return 0;
}

int tr_dwarf_open(const char *path, struct tr_dwarf_index **out, char *err, size_t err_size)
{
	if (!path || !out) {
		tr_dwi_set_err(err, err_size, "tr_dwarf_open: no path");
		return -EINVAL;
	}
	*out = NULL;
	int rc = check_elf(path, err, err_size);
	if (rc)
		return rc;
	struct tr_dwarf_index *ix = calloc(1, sizeof(*ix));
	if (!ix) {
		tr_dwi_set_err(err, err_size, "out of memory");
		return -ENOMEM;
	}
	ix->path = strdup(path);
	if (!ix->path) {
		tr_dwarf_close(ix);
		tr_dwi_set_err(err, err_size, "out of memory");
		return -ENOMEM;
	}
	rc = tr_dwi_read_dwarf(ix, path, err, err_size);
	if (rc) {
		tr_dwarf_close(ix);
		return rc;
	}
	if (!ix->debug_path) {          /* an ELF file without DWARF: a valid, empty index */
		*out = ix;
		return 0;
	}
	rc = tr_dwi_finish(ix);
	if (rc == 0 && ix->nomem)
		rc = -ENOMEM;
	if (rc) {
		tr_dwi_set_err(err, err_size, "%s: %s", path, strerror(-rc));
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

int tr_dwarf_lookup_pc(const struct tr_dwarf_index *ix, uint64_t pc, const char **function,
		       const char **file, int *line)
{
	const char *f = NULL, *fn = NULL;
	int l = 0;
	if (!ix)
		return -EINVAL;
	bool have_line = tr_dwi_line_at(ix, pc, &f, &l);
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

bool tr_dwi_callee_matches(const char *callee, const struct tr_site_filter *f)
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
	return tr_dwi_callee_matches(s->callee, f);
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

const struct tr_dwarf_variable *tr_dwarf_variables(const struct tr_dwarf_index *ix, size_t *count)
{
	*count = ix->nvars;
	return ix->vars;
}
