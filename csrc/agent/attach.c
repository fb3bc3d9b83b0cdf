/* attach.c - the agent loaded into a running process by `tracer attach` (see agent.h).
 *
 * The debugger stops the process, makes one thread call dlopen(agent, RTLD_NOW) and then
 * tracer_agent_attach(config): config is what LD_PRELOAD's environment says at launch
 * (TRACER_RING, TRACER_TRACE...), as "NAME=VALUE\0...\0\0", since the process's environment
 * cannot change after it started. Loaded with RTLD_LOCAL, the agent's wrappers interpose on
 * nothing: tracer_agent_attach points the GOT entries (JUMP_SLOT and GLOB_DAT relocations) of
 * every loaded object that imports a wrapped function at the agent's wrapper, pages under
 * RELRO made writable for the write and read-only again. Threads already running call through
 * the GOT, so they are recorded from their next call; forked children inherit the rewritten
 * memory. Not bound: the agent itself, libc and the dynamic loader (their internal calls are
 * not the program's), objects loaded after the attach, images exec'd later.
 * tracer_agent_detach() puts every entry back and stops recording; the library stays mapped
 * (a thread may still be inside a wrapper) and so does the ring. */
#define _GNU_SOURCE
#include "agent.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CONFIG_MAX 16384        /* bytes of configuration handed over */
#define SLOTS_MAX 4096          /* GOT entries rewritten (a few per object in practice) */

static char config[CONFIG_MAX];
static bool configured;         /* attached: settings come from config, not the environment */

struct slot {
	void **at;
	void *old;                  /* what the loader had put there */
	void *ours;
	bool relro;                 /* on a page the loader made read-only */
};
static struct slot slots[SLOTS_MAX];
static size_t nslots;

const char *tr_agent_getenv(const char *name)
{
	size_t len = strlen(name);

	if (!configured)
		return getenv(name);
	for (const char *p = config; *p; p += strlen(p) + 1)
		if (!strncmp(p, name, len) && p[len] == '=')
			return p + len + 1;
	return NULL;
}

/* What one pass over the loaded objects needs. */
struct binding {
	void *wrapper[FN_COUNT];    /* the agent's own definitions, NULL when not wrapped */
	uintptr_t self_base;        /* the agent's load address: not bound */
	size_t skipped;             /* entries left out: the table is full */
};

static bool skipped_object(const char *name)
{
	const char *base = strrchr(name, '/');

	base = base ? base + 1 : name;
	return !strncmp(base, "libc.so", 7) || !strncmp(base, "ld-linux", 8) ||
	       !strncmp(base, "linux-vdso", 10);
}

/* The loader relocates these .dynamic pointers in place, except for objects whose dynamic
 * section is read-only: an address below the load base is still a file address. */
static uintptr_t dyn_ptr(uintptr_t base, uintptr_t value)
{
	return value < base ? value + base : value;
}

static int page_protect(void *at, bool writable)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)at & ~(uintptr_t)(page - 1);

	return mprotect((void *)start, (size_t)page, PROT_READ | (writable ? PROT_WRITE : 0));
}

/* Writes one GOT entry; false when its page could not be made writable. */
static bool got_write(void **at, void *value, bool relro)
{
	if (relro && page_protect(at, true) != 0)
		return false;
	__atomic_store_n(at, value, __ATOMIC_RELEASE);
	if (relro)
		page_protect(at, false);
	return true;
}

static void bind_relocs(struct binding *b, uintptr_t base, const ElfW(Rela) *rel, size_t size,
			const ElfW(Sym) *symtab, const char *strtab, uintptr_t relro_lo,
			uintptr_t relro_hi)
{
	for (size_t i = 0; i < size / sizeof(*rel); i++) {
		unsigned type = ELF64_R_TYPE(rel[i].r_info);
		const ElfW(Sym) *sym = &symtab[ELF64_R_SYM(rel[i].r_info)];
		const char *name = strtab + sym->st_name;
		void **at = (void **)(base + rel[i].r_offset);
		int fn;

		if ((type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) || !sym->st_name ||
		    sym->st_shndx != SHN_UNDEF)
			continue;
		for (fn = 0; fn < FN_COUNT; fn++)
			if (b->wrapper[fn] && !strcmp(name, tr_agent_fn_name[fn]))
				break;
		if (fn == FN_COUNT || *at == b->wrapper[fn])
			continue;
		if (nslots == SLOTS_MAX) {
			b->skipped++;
			continue;
		}
		slots[nslots] = (struct slot){ at, *at, b->wrapper[fn],
					       (uintptr_t)at >= relro_lo && (uintptr_t)at < relro_hi };
		if (got_write(at, b->wrapper[fn], slots[nslots].relro))
			nslots++;
	}
}

static int bind_object(struct dl_phdr_info *info, size_t size, void *data)
{
	struct binding *b = data;
	uintptr_t base = info->dlpi_addr, relro_lo = 0, relro_hi = 0;
	long page = sysconf(_SC_PAGESIZE);
	const ElfW(Dyn) *dyn = NULL;
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	const ElfW(Rela) *jmprel = NULL, *rela = NULL;
	size_t jmprel_size = 0, rela_size = 0;

	(void)size;
	if (base == b->self_base || (info->dlpi_name && skipped_object(info->dlpi_name)))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(base + ph->p_vaddr);
		else if (ph->p_type == PT_GNU_RELRO) {   /* as the loader protects it */
			relro_lo = (base + ph->p_vaddr) & ~(uintptr_t)(page - 1);
			relro_hi = (base + ph->p_vaddr + ph->p_memsz) & ~(uintptr_t)(page - 1);
		}
	}
	if (!dyn)
		return 0;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		switch (dyn->d_tag) {
		case DT_SYMTAB: symtab = (const void *)dyn_ptr(base, dyn->d_un.d_ptr); break;
		case DT_STRTAB: strtab = (const void *)dyn_ptr(base, dyn->d_un.d_ptr); break;
		case DT_JMPREL: jmprel = (const void *)dyn_ptr(base, dyn->d_un.d_ptr); break;
		case DT_PLTRELSZ: jmprel_size = dyn->d_un.d_val; break;
		case DT_RELA: rela = (const void *)dyn_ptr(base, dyn->d_un.d_ptr); break;
		case DT_RELASZ: rela_size = dyn->d_un.d_val; break;
		case DT_PLTREL:
			if (dyn->d_un.d_val != DT_RELA)
				return 0;
			break;
		default: break;
		}
	}
	if (!symtab || !strtab)
		return 0;
	if (jmprel)
		bind_relocs(b, base, jmprel, jmprel_size, symtab, strtab, relro_lo, relro_hi);
	if (rela)
		bind_relocs(b, base, rela, rela_size, symtab, strtab, relro_lo, relro_hi);
	return 0;
}

/* The agent's own definition of each wrapped name (its handle's first), NULL when the name
 * resolves outside the agent (not wrapped). */
static bool own_wrappers(struct binding *b)
{
	Dl_info self;
	void *handle;

	if (!dladdr((void *)tr_agent_write_self, &self) || !self.dli_fname)
		return false;
	b->self_base = (uintptr_t)self.dli_fbase;
	handle = dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD);
	if (!handle)
		return false;
	for (int fn = 0; fn < FN_COUNT; fn++) {
		void *p = dlsym(handle, tr_agent_fn_name[fn]);
		Dl_info where;

		b->wrapper[fn] = p && dladdr(p, &where) && where.dli_fbase == self.dli_fbase ? p
											  : NULL;
	}
	dlclose(handle);            /* the debugger's dlopen keeps it loaded */
	return true;
}

/* Called by the debugger (an inserted call). Returns the number of GOT entries bound (>= 0),
 * -1 when the ring cannot be opened (nothing changed), -2 when the agent is recording already
 * (preloaded), -3 for a configuration too long, -4 when the agent cannot find itself. */
TR_AGENT_EXPORT int tracer_agent_attach(const char *text)
{
	struct binding b;
	size_t len = 0;
	int saved = errno, rc = -1;

	if (tr_agent.on)
		return -2;
	while (len < CONFIG_MAX - 1 && (text[len] || text[len + 1]))
		len++;
	if (len >= CONFIG_MAX - 2)
		return -3;
	tr_in_agent = 1;
	memset(&b, 0, sizeof(b));
	if (!own_wrappers(&b)) {
		rc = -4;
		goto out;
	}
	memcpy(config, text, len + 1);
	config[len + 1] = '\0';
	configured = true;
	tr_agent.pid = (int32_t)getpid();
	if (tr_agent_start() != 0) {
		configured = false;
		goto out;
	}
	dl_iterate_phdr(bind_object, &b);
	rc = (int)nslots;
out:
	tr_in_agent = 0;
	errno = saved;
	return rc;
}

/* Called by the debugger before it lets the process go: every GOT entry back as the loader
 * left it (one changed since by someone else is left alone), and no more recording. Returns
 * the number of entries restored. */
TR_AGENT_EXPORT int tracer_agent_detach(void)
{
	int saved = errno, restored = 0;

	tr_agent.on = false;
	tr_agent.yield_on = false;
	while (nslots > 0) {
		struct slot *s = &slots[--nslots];

		if (*s->at == s->ours && got_write(s->at, s->old, s->relro))
			restored++;
	}
	errno = saved;
	return restored;
}
