/* fuzz_report.c - the report reader (csrc/report_read.c) against hostile bytes.
 *
 * One target, two drivers:
 *   - built with -DTR_LIBFUZZER and clang -fsanitize=fuzzer,address,undefined, it is a
 *     libFuzzer target (coverage-guided; tests/fuzz/report.dict helps it find JSON);
 *   - otherwise it has its own main(): first a fixed list of hostile inputs (nesting bombs of
 *     arrays and objects, depth at and past the limit, too many values, every truncation of
 *     every seed, invalid UTF-8, huge numbers, comments, NULs), then random mutations of the
 *     seed reports (bit flips, truncations, insertions of bombs/numbers/bad UTF-8, splices of
 *     two seeds, deletions, duplications) until the time is up, with accepted mutants kept as
 *     new seeds. Built with ASan and UBSan, and deterministic for a given seed, which it prints:
 *       fuzz_report [--seconds N] [--seed S] [SEED_DIR...]
 *     (or TRACER_FUZZ_SECONDS, TRACER_FUZZ_SEED; defaults 20 s, a seed from the clock,
 *     tests/fuzz/seeds).
 *
 * The oracle, for every input: the reader returns 0 with a tree, or -EINVAL/-EFBIG/-ENOMEM
 * with no tree and a non-empty one-line message; an accepted tree validates again, is no
 * deeper than TR_REPORT_DEPTH_MAX, and is freed without a leak. The sanitizers do the rest. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>
#include "report_read.h"

static void die(const char *what, const uint8_t *data, size_t size)
{
	fprintf(stderr, "fuzz_report: FAILED: %s (input of %zu bytes: %.120s)\n", what, size,
		(const char *)data);
	abort();   /* a test harness: the sanitizers print where */
}

static size_t tree_depth(yajl_val v)
{
	size_t deepest = 0;

	if (YAJL_IS_ARRAY(v)) {
		for (size_t i = 0; i < v->u.array.len; i++) {
			size_t d = tree_depth(v->u.array.values[i]);

			deepest = d > deepest ? d : deepest;
		}
		return deepest + 1;
	}
	if (YAJL_IS_OBJECT(v)) {
		for (size_t i = 0; i < v->u.object.len; i++) {
			size_t d = tree_depth(v->u.object.values[i]);

			deepest = d > deepest ? d : deepest;
		}
		return deepest + 1;
	}
	return 0;
}

/* Returns 1 if accepted, 0 if refused; aborts when the oracle says no. */
static int check_one(const uint8_t *data, size_t size)
{
	char err[512];
	yajl_val tree = (yajl_val)&err;   /* must be overwritten either way */
	int rc;

	memset(err, 'x', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	rc = tr_report_parse((const char *)data, size, &tree, err, sizeof(err));
	if (rc == 0) {
		if (!tree)
			die("accepted without a tree", data, size);
		if (tr_report_validate(tree, err, sizeof(err)) != 0)
			die("accepted a tree that does not validate", data, size);
		if (tree_depth(tree) > TR_REPORT_DEPTH_MAX)
			die("accepted a tree deeper than the limit", data, size);
		yajl_tree_free(tree);
		return 1;
	}
	if (rc != -EINVAL && rc != -EFBIG && rc != -ENOMEM)
		die("an unexpected error code", data, size);
	if (tree)
		die("refused but left a tree", data, size);
	if (!err[0] || err[0] == 'x' || strchr(err, '\n'))
		die("refused without a one-line message", data, size);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_one(data, size);
	return 0;
}

#ifndef TR_LIBFUZZER

struct buf {
	uint8_t *p;
	size_t n;
};

struct corpus {
	struct buf *items;
	size_t n, alloc;
};

static uint64_t rng_state;

static uint64_t rnd(void)   /* splitmix64: reproducible everywhere */
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "fuzz_report: out of memory\n");
		exit(2);
	}
	return p;
}

static void corpus_add(struct corpus *c, const uint8_t *p, size_t n)
{
	if (c->n == c->alloc) {
		c->alloc = c->alloc ? c->alloc * 2 : 16;
		c->items = realloc(c->items, c->alloc * sizeof(*c->items));
		if (!c->items) {
			fprintf(stderr, "fuzz_report: out of memory\n");
			exit(2);
		}
	}
	c->items[c->n].p = xmalloc(n);
	memcpy(c->items[c->n].p, p, n);
	c->items[c->n].n = n;
	c->n++;
}

static int load_dir(struct corpus *c, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int count = 0;

	if (!d) {
		fprintf(stderr, "fuzz_report: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		char path[4096];
		FILE *f;
		long len;
		uint8_t *p;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "rb");
		if (!f)
			continue;
		if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && len < (1 << 20) &&
		    fseek(f, 0, SEEK_SET) == 0) {
			p = xmalloc((size_t)len);
			if (fread(p, 1, (size_t)len, f) == (size_t)len) {
				corpus_add(c, p, (size_t)len);
				count++;
			}
			free(p);
		}
		fclose(f);
	}
	closedir(d);
	return count;
}

/* ---- fixed hostile inputs ---- */

static unsigned long fixed_count;

static void fixed(const char *s, size_t n)
{
	/* a private copy, exactly n bytes long: ASan sees any read past the end */
	uint8_t *p = xmalloc(n);

	memcpy(p, s, n);
	check_one(p, n);
	free(p);
	fixed_count++;
}

static void fixed_str(const char *s)
{
	fixed(s, strlen(s));
}

static void fixed_repeat(const char *prefix, const char *unit, size_t times, const char *suffix)
{
	size_t lp = strlen(prefix), lu = strlen(unit), ls = strlen(suffix);
	size_t n = lp + lu * times + ls;
	char *p = xmalloc(n), *q = p;

	memcpy(q, prefix, lp);
	q += lp;
	for (size_t i = 0; i < times; i++, q += lu)
		memcpy(q, unit, lu);
	memcpy(q, suffix, ls);
	fixed(p, n);
	free(p);
}

static void run_fixed(const struct corpus *seeds)
{
	/* the bombs */
	fixed_repeat("", "[", 400000, "");
	fixed_repeat("{\"version\":1,\"x\":", "[", 400000, "");
	fixed_repeat("", "{\"a\":", 100000, "1");
	fixed_repeat("[", "[]", 200000, "]");     /* wide, not deep */
	/* at and past the depth limit, inside an otherwise fine document */
	for (size_t d = TR_REPORT_DEPTH_MAX - 2; d <= TR_REPORT_DEPTH_MAX + 2; d++) {
		char *open = xmalloc(d + 1), *close = xmalloc(d + 2);

		memset(open, '[', d);
		open[d] = '\0';
		memset(close, ']', d);
		close[d] = '}';
		close[d + 1] = '\0';
		{
			char *pre;

			if (asprintf(&pre, "{\"version\":1,\"x\":%s", open) < 0)
				exit(2);
			fixed_repeat(pre, "", 0, close);
			free(pre);
		}
		free(open);
		free(close);
	}
	/* too many values, once (8 MiB) */
	fixed_repeat("{\"version\":1,\"x\":[", "0,", TR_REPORT_VALUES_MAX, "0]}");
	/* small oddities */
	fixed_str("");
	fixed_str("{}");
	fixed_str("{\"version\":1}");
	fixed_str("{\"version\":1.0}");
	fixed_str("{\"version\":1e999}");
	fixed_str("{\"version\":99999999999999999999999999}");
	fixed_str("{\"version\":-1}");
	fixed_str("{\"version\":1}/*c*/");
	fixed_str("{\"version\":1,\"key\":\"\xff\xfe\"}");
	fixed_str("{\"version\":1,\"key\":\"\xed\xa0\x80\"}");   /* a UTF-16 surrogate */
	fixed_str("{\"version\":1,\"key\":\"\\ud800\"}");
	fixed_str("{\"version\":1,\"key\":\"\\u0000\"}");
	fixed("{\"version\":1}\0{}", 16);
	fixed_str("\xef\xbb\xbf{\"version\":1}");
	fixed_str("nul");
	fixed_str("[");
	fixed_str("\"");
	/* every truncation of every seed, and every seed whole */
	for (size_t s = 0; s < seeds->n; s++)
		for (size_t n = 0; n <= seeds->items[s].n; n++)
			fixed((const char *)seeds->items[s].p, n);
}

/* ---- random mutations ---- */

static const char *const tokens[] = {
	"[", "]", "{", "}", ",", ":", "\"", "null", "true", "false", "0", "-1", "1.5", "1e999",
	"-1e999", "18446744073709551615", "18446744073709551616", "9223372036854775808",
	"-9223372036854775809", "99999999999999999999999999999999999999", "\"\\x\"", "\"\\xff\"",
	"\"\\u0000\"", "\"\\ud800\"", "\xff", "\xc3\x28", "\xe2\x82", "\xf4\x90\x80\x80",
	"/*", "//", "\"version\":1", "\"events\":[]", "\"recorder\":{}", "\"pc\":\"0x0\"",
	"\"data\":\"\\\\x0\"", "\"signal\":\"SIG\"", "\"seed\":-0",
};

static void mutate(struct buf *b, const struct corpus *seeds, size_t limit)
{
	size_t rounds = 1 + below(6);

	for (size_t r = 0; r < rounds; r++) {
		size_t pos = below(b->n + 1), n, k;
		uint8_t *p;

		switch (below(10)) {
		case 0:   /* bit flip */
			if (b->n)
				b->p[below(b->n)] ^= (uint8_t)(1u << below(8));
			break;
		case 1:   /* truncate */
			b->n = pos;
			break;
		case 2:   /* delete a chunk */
			n = below(b->n - (pos < b->n ? pos : b->n) + 1);
			memmove(b->p + pos, b->p + pos + n, b->n - pos - n);
			b->n -= n;
			break;
		case 3:   /* overwrite a byte with something JSON cares about */
			if (b->n) {
				static const char bytes[] = "[]{}\",:0-.e\\ntfu\xff\x80";

				b->p[below(b->n)] = (uint8_t)bytes[below(sizeof(bytes) - 1)];
			}
			break;
		default: { /* insert: a token, a run of brackets, or a piece of another seed */
			const uint8_t *src;
			size_t len, reps = 1;
			const struct buf *other = &seeds->items[below(seeds->n)];

			k = below(10);
			if (k < 5) {
				src = (const uint8_t *)tokens[below(sizeof(tokens) / sizeof(*tokens))];
				len = strlen((const char *)src);
			} else if (k < 7) {
				src = (const uint8_t *)(below(2) ? "[" : "{\"a\":");
				len = strlen((const char *)src);
				reps = 1 + below(below(2) ? 80 : 5000);
			} else {
				size_t at = below(other->n);

				src = other->p + at;
				len = below(other->n - at + 1);
			}
			if (b->n + len * reps > limit)
				break;
			p = xmalloc(b->n + len * reps);
			memcpy(p, b->p, pos);
			for (size_t i = 0; i < reps; i++)
				memcpy(p + pos + i * len, src, len);
			memcpy(p + pos + len * reps, b->p + pos, b->n - pos);
			free(b->p);
			b->p = p;
			b->n += len * reps;
			break;
		}
		}
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every so often, the same bytes through a file: tr_report_load's own checks and read. */
static void through_file(const struct buf *b, const char *tmp)
{
	FILE *f = fopen(tmp, "wb");
	char err[512] = "";
	yajl_val tree = NULL;
	int rc;

	if (!f)
		return;
	if (b->n)
		fwrite(b->p, 1, b->n, f);
	fclose(f);
	rc = tr_report_load(tmp, &tree, err, sizeof(err));
	if ((rc == 0) != (tree != NULL) || (rc && (!err[0] || strchr(err, '\n'))))
		die("tr_report_load broke its contract", b->p, b->n);
	if (tree)
		yajl_tree_free(tree);
	unlink(tmp);
}

int main(int argc, char **argv)
{
	struct corpus seeds = { 0 };
	const char *env_s = getenv("TRACER_FUZZ_SECONDS"), *env_seed = getenv("TRACER_FUZZ_SEED");
	double seconds = env_s ? atof(env_s) : 20, start, end;
	uint64_t seed = env_seed ? strtoull(env_seed, NULL, 0) : 0;
	bool have_seed = env_seed != NULL;
	unsigned long runs = 0, accepted = 0;
	size_t first_seeds;
	char tmp[64];
	int dirs = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
			have_seed = true;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "usage: %s [--seconds N] [--seed S] [SEED_DIR...]\n", argv[0]);
			return 2;
		} else {
			if (load_dir(&seeds, argv[i]) < 0)
				return 2;
			dirs++;
		}
	}
	if (!dirs && load_dir(&seeds, "tests/fuzz/seeds") < 0)
		return 2;
	if (!seeds.n) {
		fprintf(stderr, "fuzz_report: no seed reports\n");
		return 2;
	}
	if (!have_seed)
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	rng_state = seed;
	snprintf(tmp, sizeof(tmp), "/tmp/fuzz_report.%ld.json", (long)getpid());
	printf("fuzz_report: seed %llu (replay: --seed %llu), %.0f s, %zu seed reports\n",
	       (unsigned long long)seed, (unsigned long long)seed, seconds, seeds.n);
	fflush(stdout);

	start = now();
	for (size_t s = 0; s < seeds.n; s++)
		if (!check_one(seeds.items[s].p, seeds.items[s].n))
			fprintf(stderr, "fuzz_report: note: seed %zu is refused\n", s);
	run_fixed(&seeds);
	first_seeds = seeds.n;
	end = start + seconds;
	while (now() < end) {
		for (int batch = 0; batch < 64; batch++) {
			const struct buf *from = &seeds.items[below(seeds.n)];
			struct buf b = { xmalloc(from->n), from->n };

			memcpy(b.p, from->p, from->n);
			mutate(&b, &seeds, 1 << 20);
			if (check_one(b.p, b.n)) {
				accepted++;
				/* keep a few valid mutants: they reach deeper into the schema check */
				if (seeds.n < first_seeds + 256)
					corpus_add(&seeds, b.p, b.n);
			}
			if (runs % 997 == 0)
				through_file(&b, tmp);
			free(b.p);
			runs++;
		}
	}
	printf("fuzz_report: %lu fixed hostile inputs, %lu mutants (%lu accepted) in %.1f s: "
	       "no failure (seed %llu)\n", fixed_count, runs, accepted, now() - start,
	       (unsigned long long)seed);
	for (size_t i = 0; i < seeds.n; i++)
		free(seeds.items[i].p);
	free(seeds.items);
	return 0;
}

#endif
