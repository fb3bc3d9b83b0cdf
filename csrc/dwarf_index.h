/* dwarf_index.h - an index of one ELF file's DWARF: its compilation units ("modules"), its
 * functions, its call sites and its line table, read once with libdwarf and kept in plain
 * arrays so that the tracer can
 *   (a) list the "interesting" call sites where a yield may be injected, narrowed to one unit
 *       or to callees chosen by name or predicate, and
 *   (b) map a pc to function, file and line for events and backtraces.
 *
 * ADDRESSES. Every pc given to or returned by this module is a FILE address: the address as the
 * ELF file and its DWARF state it. For a PIE executable or a shared library the caller adds the
 * load bias (where the object was mapped minus its first PT_LOAD's p_vaddr) to turn it into a
 * run-time address, and subtracts it before a lookup.
 *
 * Debugger-neutral: no libdwarf, gdb or lldb type appears here. Errors are negative errno values
 * with a message in the caller's buffer; nothing here aborts or exits, because this code runs
 * inside the user's debugger. The index is immutable after tr_dwarf_open() except for
 * tr_dwarf_scan_calls(), which adds call sites; it is not thread-safe while that runs.
 */
#ifndef TRACER_DWARF_INDEX_H
#define TRACER_DWARF_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tr_dwarf_index;

/* "No such unit / function", wherever a uint32_t index is expected. */
#define TR_DWARF_NONE UINT32_MAX

/* Caps, so that a huge or hostile file cannot exhaust the debugger's memory. What is cut is
 * reported by tr_dwarf_stats().truncated (a mask of enum tr_dwarf_cut). */
#define TR_DWARF_MAX_UNITS     (1u << 17)
#define TR_DWARF_MAX_FUNCTIONS (1u << 22)
#define TR_DWARF_MAX_SITES     (1u << 22)
#define TR_DWARF_MAX_ROWS      (1u << 24)   /* line-table rows, 16 bytes each */
#define TR_DWARF_MAX_DEPTH     256          /* DIE nesting */

enum tr_dwarf_cut {
	TR_DWARF_CUT_UNITS     = 1 << 0,
	TR_DWARF_CUT_FUNCTIONS = 1 << 1,
	TR_DWARF_CUT_SITES     = 1 << 2,
	TR_DWARF_CUT_ROWS      = 1 << 3,
	TR_DWARF_CUT_DEPTH     = 1 << 4,
	TR_DWARF_CUT_ERRORS    = 1 << 5,    /* a unit was skipped (or the walk stopped) on a DWARF error */
};

struct tr_dwarf_unit {
	const char *name;       /* DW_AT_name as written by the compiler, often relative: "src/a.c" */
	const char *comp_dir;   /* DW_AT_comp_dir, or NULL */
	const char *path;       /* name made absolute with comp_dir when it was relative */
	unsigned version;       /* DWARF version of the unit: 2..5 */
	size_t nsites;          /* call sites found in this unit's DWARF (0 for gcc -O0 / clang -O0) */
};

struct tr_dwarf_function {
	const char *name;       /* NULL for an unnamed function */
	uint64_t low_pc;        /* [low_pc, high_pc): the range holding the entry point; a */
	uint64_t high_pc;       /* function split into hot and cold parts has more ranges, see below */
	const char *decl_file;  /* full path, or NULL */
	int decl_line;          /* 0 when unknown */
	uint32_t unit;
	uint32_t first_range;   /* its ranges: tr_dwarf_function_range(ix, f, 0 .. nranges-1) */
	uint32_t nranges;
};

enum tr_site_flags {
	TR_SITE_TAIL         = 1 << 0, /* a tail call (a jump): the callee returns to our caller */
	TR_SITE_CALL_PC_ONLY = 1 << 1, /* DWARF gave only the call instruction (clang tail calls) */
	TR_SITE_FROM_CODE    = 1 << 2, /* found by tr_dwarf_scan_calls() in the code, not in DWARF */
	TR_SITE_INLINED      = 1 << 3, /* inside code inlined into `function` */
};

struct tr_dwarf_site {
	uint64_t return_pc;     /* first byte after the call instruction; 0 when unknown */
	uint64_t call_pc;       /* the call instruction; 0 when unknown (tr_dwarf_scan_calls fills it
	                           in for direct and RIP-relative calls) */
	const char *callee;     /* the called function's name; NULL for an indirect call */
	const char *file;       /* where the call is written: full path, or NULL */
	int line;               /* 0 when unknown */
	uint32_t function;      /* the out-of-line function whose code holds the call, or TR_DWARF_NONE */
	uint32_t unit;
	unsigned flags;         /* enum tr_site_flags */
};

/* Which call sites to visit. A zeroed filter (or NULL) visits every site. */
struct tr_site_filter {
	bool by_unit;                     /* only sites in `unit` ("module"); false: all ("app") */
	uint32_t unit;
	const char *const *names;         /* NULL-terminated callee names, or NULL for any */
	bool (*pred)(const char *callee, void *arg);  /* also required to accept, or NULL */
	void *pred_arg;
};

struct tr_dwarf_stats {
	size_t units, functions, sites, sites_from_code, line_rows, sequences;
	size_t discarded_functions;       /* functions at address 0: code the linker threw away */
	size_t bad_units;                 /* units skipped on a DWARF error */
	size_t undecoded;                 /* code ranges whose scan stopped at bytes the x86 decoder
	                                     could not size (tr_dwarf_scan_calls) */
	unsigned truncated;               /* enum tr_dwarf_cut */
};

/* Reads the DWARF of the ELF file at `path`. When the file has no DWARF but names a separate
 * debug file (.gnu_debuglink or build-id under /usr/lib/debug) libdwarf's search finds that one:
 * tr_dwarf_debug_path() says which file was read.
 * A file without debug info (stripped, or built without -g) opens fine with zero units.
 * Returns 0, or -ENOENT/-EACCES/... when the file cannot be opened, -ENOEXEC when it is not
 * ELF, -EBADMSG when its DWARF cannot be read at all, -ENOMEM. */
int tr_dwarf_open(const char *path, struct tr_dwarf_index **out, char *err, size_t err_size);
void tr_dwarf_close(struct tr_dwarf_index *ix);

bool tr_dwarf_has_debug_info(const struct tr_dwarf_index *ix);
const char *tr_dwarf_path(const struct tr_dwarf_index *ix);        /* the path given to open */
/* The file the DWARF came from (path itself, or the separate debug file); NULL without DWARF. */
const char *tr_dwarf_debug_path(const struct tr_dwarf_index *ix);
struct tr_dwarf_stats tr_dwarf_stats(const struct tr_dwarf_index *ix);

size_t tr_dwarf_units(const struct tr_dwarf_index *ix);
const struct tr_dwarf_unit *tr_dwarf_unit(const struct tr_dwarf_index *ix, size_t i);
const char *tr_dwarf_unit_name(const struct tr_dwarf_index *ix, size_t i);
/* The (first) unit whose name or path is `name`, or else the one whose path ends in "/name"
 * (so "proj/a.c" finds "/src/proj/a.c"). 0 and *out, -ENOENT, or -EEXIST when that suffix
 * matches units of different paths. */
int tr_dwarf_find_unit(const struct tr_dwarf_index *ix, const char *name, uint32_t *out);

size_t tr_dwarf_functions(const struct tr_dwarf_index *ix);
const struct tr_dwarf_function *tr_dwarf_function(const struct tr_dwarf_index *ix, size_t i);
int tr_dwarf_function_range(const struct tr_dwarf_index *ix, size_t f, uint32_t k,
			    uint64_t *low, uint64_t *high);
/* The first function named `name` (its out-of-line copy), or TR_DWARF_NONE. */
uint32_t tr_dwarf_find_function(const struct tr_dwarf_index *ix, const char *name);
/* The function whose code holds `pc`, or TR_DWARF_NONE. */
uint32_t tr_dwarf_function_at(const struct tr_dwarf_index *ix, uint64_t pc);

/* Maps a file address to source: the line-table row with the greatest address <= pc within
 * the sequence holding pc, and the function holding pc. For a return address, pass pc - 1 to
 * get the line of the call. Outputs may be NULL; those not known are set to NULL / 0.
 * Returns 0 when a line or a function was found, -ENOENT when neither was. */
int tr_dwarf_lookup_pc(const struct tr_dwarf_index *ix, uint64_t pc, const char **function,
		       const char **file, int *line);

/* Every call site, sorted by pc (return_pc, or call_pc when only that is known). The pointer
 * is valid until tr_dwarf_scan_calls() or tr_dwarf_close(). */
const struct tr_dwarf_site *tr_dwarf_sites(const struct tr_dwarf_index *ix, size_t *count);
bool tr_dwarf_site_matches(const struct tr_dwarf_index *ix, const struct tr_dwarf_site *s,
			   const struct tr_site_filter *f);
/* Iterates the sites that `f` accepts:
 *     size_t cur = 0; const struct tr_dwarf_site *s;
 *     while ((s = tr_dwarf_next_site(ix, &f, &cur)) != NULL) ... */
const struct tr_dwarf_site *tr_dwarf_next_site(const struct tr_dwarf_index *ix,
					       const struct tr_site_filter *f, size_t *cursor);

/* Finds calls in the machine code of the ELF file at `elf_path` (the program itself, not a
 * separate debug file): for gcc -O0 / clang -O0 builds, whose DWARF has no call-site entries.
 * Scans the code of every DWARF function (of f->unit only, when f->by_unit); unless by_unit,
 * also the .symtab functions DWARF does not describe, and, when there are neither (stripped,
 * no -g), all executable sections but the PLT. It looks for direct calls and jumps whose
 * target is exactly a PLT stub or a known function's entry, and for RIP-relative calls and
 * jumps through an imported function's GOT slot (-fno-plt). It decodes instructions (the
 * x86-64 length decoder of x86_insn.c), so only real instructions are reported, never bytes
 * inside another one; a range holding bytes the decoder cannot size is scanned up to them
 * (then from the next known function entry) and counted in stats.undecoded.
 * A call that DWARF already lists only completes that site (call_pc); a new one whose callee
 * `f` accepts (f may be NULL) is added with TR_SITE_FROM_CODE. Calling it again adds nothing
 * new. x86-64 only (-ENOTSUP otherwise); -ENOENT, -ENOEXEC as tr_dwarf_open. *added (may be
 * NULL) counts the new sites. Invalidates pointers from tr_dwarf_sites/tr_dwarf_next_site. */
int tr_dwarf_scan_calls(struct tr_dwarf_index *ix, const char *elf_path,
			const struct tr_site_filter *f, size_t *added, char *err, size_t err_size);

/* ---- Variables at static addresses (globals, file and function statics) ---- */

#define TR_DWARF_MAX_VARIABLES (1u << 22)

struct tr_dwarf_variable {
	const char *name;
	uint64_t addr;           /* DW_OP_addr: a file address */
	uint64_t size;           /* bytes, from the type (0 when the type gives none) */
	const char *decl_file;   /* or NULL */
	int decl_line;
	uint32_t unit;
	uint32_t function;       /* a function-scope static's function, else TR_DWARF_NONE */
};

/* Every DW_TAG_variable whose location is a single DW_OP_addr (not a declaration, not
 * thread-local, not discarded by the linker). Valid until tr_dwarf_close(). */
const struct tr_dwarf_variable *tr_dwarf_variables(const struct tr_dwarf_index *ix, size_t *count);

/* ---- What the code does with data and threads (access_scan.c) ---- */

#define TR_DWARF_MAX_FACTS (1u << 22)

enum tr_fact_kind {
	TR_FACT_ACCESS,          /* pc reads/writes the memory at addr (access: enum tr_x86_access) */
	TR_FACT_CALL,            /* pc calls (or tail-jumps to) the function whose entry is addr */
	TR_FACT_THREAD,          /* pc calls pthread_create with the function at addr (0: not seen) */
	TR_FACT_ADDR_TAKEN,      /* pc loads the address of the function at addr into a register */
};

struct tr_code_fact {
	uint64_t pc, addr;       /* file addresses */
	uint32_t function;       /* the DWARF function whose code holds pc */
	uint8_t kind, access;
	bool indexed;            /* ACCESS: addr is an array's base, an index register added */
};

struct tr_data_object {      /* a .symtab data symbol: a global or static variable */
	uint64_t addr, size;
	const char *name;        /* interned in the index */
};

struct tr_code_facts {
	struct tr_code_fact *facts;
	size_t nfacts;
	struct tr_data_object *objects;   /* sorted by addr */
	size_t nobjects;
	size_t undecoded;        /* function ranges whose walk stopped at bytes it cannot size */
	bool truncated;          /* TR_DWARF_MAX_FACTS reached */
};

/* Walks the code of every DWARF function of the ELF file at elf_path (the program, not a
 * separate debug file) and reports, in pc order per function, its accesses to memory at
 * addresses the instruction gives (RIP-relative, absolute; thread-local and stack slots are
 * not), its direct calls to other DWARF functions, its calls to pthread_create and the
 * function addresses it loads; and the file's data symbols. x86-64 only. 0, or -errno with a
 * message in err; free *out with tr_code_facts_free either way. */
int tr_dwarf_scan_code(struct tr_dwarf_index *ix, const char *elf_path,
		       struct tr_code_facts *out, char *err, size_t err_size);
void tr_code_facts_free(struct tr_code_facts *f);

#endif
