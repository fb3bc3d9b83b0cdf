/* bench_dwarf - how long the DWARF index takes to build and to answer pc lookups.
 *
 *   bench_dwarf [--dump] [--scan] [--runs N] [PATH]
 *
 * PATH defaults to this machine's libc: libdwarf follows its build-id to the separate debug
 * file under /usr/lib/debug when libc6-dbg is installed (the field notes measured ~0.5 s for
 * it). Without PATH and without that debug file, a small program is compiled with gcc -O2 -g
 * into a temporary directory and indexed instead. --dump prints the units, functions and call
 * sites (a debugging aid); --scan also times tr_dwarf_scan_calls() over PATH's code (for a
 * library whose DWARF lives in a separate file, PATH must be the library itself). Prints the median of N index builds (default 5), the counts, and
 * lookups per second over random pcs inside the indexed functions.
 *
 * Build: gcc -std=gnu11 -O2 -Icsrc -I/usr/include/libdwarf -o build/bench_dwarf \
 *            bench/bench_dwarf.c csrc/dwarf_index.c csrc/dwarf_walk.c csrc/dwarf_lines.c \
 *            csrc/elf_plt_scan.c csrc/x86_insn.c -ldwarf -lelf
 */
#define _GNU_SOURCE
#include "dwarf_index.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static const char fallback_src[] =
	"#include <pthread.h>\n#include <unistd.h>\n"
	"static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;\n"
	"static void *worker(void *arg) { char b[8]; pthread_mutex_lock(&mu);\n"
	"  pthread_mutex_unlock(&mu); return (void *)read(0, b, sizeof b); }\n"
	"int main(void) { pthread_t t; pthread_create(&t, 0, worker, 0);\n"
	"  write(1, \"x\", 1); pthread_join(t, 0); return 0; }\n";

/* Builds the fallback program; returns its path in `out` (a buffer of `size`). */
static int build_fallback(char *dir, char *out, size_t size)
{
	if (!mkdtemp(dir))
		return -errno;
	char src[256], cmd[1024];
	snprintf(src, sizeof(src), "%s/bench.c", dir);
	snprintf(out, size, "%s/bench-O2", dir);
	FILE *f = fopen(src, "w");
	if (!f)
		return -errno;
	fputs(fallback_src, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "gcc -O2 -g -o %s %s -lpthread", out, src);
	return system(cmd) == 0 ? 0 : -EIO;
}

static void dump(const struct tr_dwarf_index *ix)
{
	for (size_t i = 0; i < tr_dwarf_units(ix); i++) {
		const struct tr_dwarf_unit *u = tr_dwarf_unit(ix, i);
		printf("unit %zu: %s (v%u, %zu sites) path %s\n", i, u->name, u->version, u->nsites,
		       u->path ? u->path : "-");
	}
	for (size_t i = 0; i < tr_dwarf_functions(ix); i++) {
		const struct tr_dwarf_function *f = tr_dwarf_function(ix, i);
		printf("func %zu: %s [%#" PRIx64 ", %#" PRIx64 ") %u ranges, %s:%d unit %u\n", i,
		       f->name ? f->name : "?", f->low_pc, f->high_pc, f->nranges,
		       f->decl_file ? f->decl_file : "-", f->decl_line, f->unit);
	}
	size_t n;
	const struct tr_dwarf_site *s = tr_dwarf_sites(ix, &n);
	for (size_t i = 0; i < n; i++) {
		const struct tr_dwarf_function *f = tr_dwarf_function(ix, s[i].function);
		printf("site ret %#" PRIx64 " call %#" PRIx64 " -> %s in %s at %s:%d flags %#x\n",
		       s[i].return_pc, s[i].call_pc, s[i].callee ? s[i].callee : "(indirect)",
		       f && f->name ? f->name : "?", s[i].file ? s[i].file : "-", s[i].line,
		       s[i].flags);
	}
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	bool do_dump = false, do_scan = false;
	int runs = 5;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dump") == 0)
			do_dump = true;
		else if (strcmp(argv[i], "--scan") == 0)
			do_scan = true;
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else
			path = argv[i];
	}
	if (runs < 1 || runs > 100)
		runs = 5;
	char dir[] = "/tmp/bench_dwarf.XXXXXX";
	char built[512] = "";
	char err[512] = "";
	struct tr_dwarf_index *ix = NULL;
	if (!path) {
		path = "/lib/x86_64-linux-gnu/libc.so.6";
		if (tr_dwarf_open(path, &ix, err, sizeof(err)) != 0 || !tr_dwarf_has_debug_info(ix)) {
			tr_dwarf_close(ix);
			ix = NULL;
			int rc = build_fallback(dir, built, sizeof(built));
			if (rc) {
				fprintf(stderr, "bench_dwarf: cannot build the fallback program: %s\n",
					strerror(-rc));
				return 1;
			}
			path = built;
		}
		tr_dwarf_close(ix);
		ix = NULL;
	}

	double ms[100];
	for (int r = 0; r < runs; r++) {
		double t0 = now_ms();
		int rc = tr_dwarf_open(path, &ix, err, sizeof(err));
		ms[r] = now_ms() - t0;
		if (rc) {
			fprintf(stderr, "bench_dwarf: %s\n", err);
			return 1;
		}
		if (r + 1 < runs) {
			tr_dwarf_close(ix);
			ix = NULL;
		}
	}
	qsort(ms, (size_t)runs, sizeof(ms[0]), cmp_double);
	struct tr_dwarf_stats st = tr_dwarf_stats(ix);
	printf("file: %s\ndwarf from: %s\n", path, tr_dwarf_debug_path(ix) ? tr_dwarf_debug_path(ix) : "-");
	printf("index: %.1f ms median of %d (min %.1f, max %.1f)\n", ms[runs / 2], runs, ms[0],
	       ms[runs - 1]);
	printf("units %zu functions %zu call sites %zu line rows %zu sequences %zu "
	       "discarded %zu bad units %zu truncated %#x\n",
	       st.units, st.functions, st.sites, st.line_rows, st.sequences,
	       st.discarded_functions, st.bad_units, st.truncated);

	if (do_scan) {
		size_t added = 0;
		double t0 = now_ms();
		int rc = tr_dwarf_scan_calls(ix, path, NULL, &added, err, sizeof(err));
		double dt = now_ms() - t0;
		if (rc)
			printf("scan: %s\n", err);
		else
			printf("scan: %.1f ms, %zu call sites added from the code, %zu in all\n", dt,
			       added, tr_dwarf_stats(ix).sites);
	}

	size_t nf = tr_dwarf_functions(ix);
	if (nf) {
		enum { N = 1000000 };
		uint64_t *pcs = malloc(N * sizeof(*pcs));
		if (!pcs)
			return 1;
		uint64_t x = 0x9e3779b97f4a7c15ull;
		for (size_t i = 0; i < N; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			const struct tr_dwarf_function *f = tr_dwarf_function(ix, x % nf);
			uint64_t len = f->high_pc - f->low_pc;
			pcs[i] = f->low_pc + (len ? (x >> 20) % len : 0);
		}
		size_t hits = 0;
		double t0 = now_ms();
		for (size_t i = 0; i < N; i++) {
			const char *fn, *file;
			int line;
			hits += tr_dwarf_lookup_pc(ix, pcs[i], &fn, &file, &line) == 0 && line > 0;
		}
		double dt = now_ms() - t0;
		printf("lookup_pc: %.2f M lookups/s (%.0f ns each), %zu of %d with a line\n",
		       N / dt / 1e3, dt * 1e6 / N, hits, N);
		free(pcs);
	}
	if (do_dump)
		dump(ix);
	tr_dwarf_close(ix);
	if (built[0]) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_dwarf: could not remove %s\n", dir);
	}
	return 0;
}
