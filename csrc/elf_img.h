/* elf_img.h - private to the machine-code scanners (elf_plt_scan.c: calls; access_scan.c:
 * shared-data accesses): one ELF file opened with libelf, its executable sections' bytes and
 * the addresses that name things (PLT stubs, GOT slots, function and data symbols). */
#ifndef TRACER_ELF_IMG_H
#define TRACER_ELF_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libelf.h>

struct addr_name {
	uint64_t addr;
	uint64_t size;           /* symbol table functions and objects only */
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
	struct addr_name *objs;  /* .symtab data objects with a size (globals, statics) */
	size_t nobjs, cap_objs;
	struct addr_name *dynsyms; /* .dynsym functions */
	size_t ndynsyms, cap_dynsyms;
	struct addr_name *entries; /* DWARF function entries (filled in by the scanner) */
	size_t nentries;
};

static inline int cmp_addr_name(const void *a, const void *b)
{
	const struct addr_name *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* The entry of v[0 .. n) (sorted by addr) at exactly addr, or NULL. */
static inline const struct addr_name *find_exact(const struct addr_name *v, size_t n,
						 uint64_t addr)
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

/* Opens an x86-64 ELF file: 0, or -errno with a message in err. Close it even on failure. */
int tr_elf_img_open(struct elf_img *im, const char *path, char *err, size_t err_size);
void tr_elf_img_close(struct elf_img *im);
/* The file's bytes for [lo, hi) when an executable section holds them all, else NULL. */
const uint8_t *tr_elf_code_at(const struct elf_img *im, uint64_t lo, uint64_t hi);
/* The first known function entry at or after addr (DWARF entries, .symtab, .dynsym), or 0. */
uint64_t tr_elf_next_entry(const struct elf_img *im, uint64_t addr);
/* im->entries from the index's DWARF functions, sorted: 0 or -ENOMEM. */
struct tr_dwarf_index;
int tr_elf_dwarf_entries(struct elf_img *im, const struct tr_dwarf_index *ix);

#endif
