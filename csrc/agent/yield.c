/* yield.c - yield injection inside the program, with the core's decision function.
 *
 * A decision is tr_yield_decide_keyed(seed, process ordinal, thread ordinal, this thread's
 * point count, site key): a pure function, so no table and no lock; the count is a
 * thread-local. The site key follows tracerlib/yields.py site_key():
 *   - with TRACER_YIELD_SITES: the call site's call_pc (a FILE address, as DWARF gives it).
 *     The file lists one site per line, "CALL_PC [RETURN_PC [KEY OBJECT]]" in hex ('#'
 *     starts a comment): a site in the program itself, or in the shared library whose file
 *     name is OBJECT, keyed by KEY (yields.py: its call_pc with the library's name above).
 *     A call is a point when its return address, made a file address of the object holding
 *     it (runtime minus the object's load bias), equals a listed RETURN_PC of that object, or
 *     lies 2, 3, 5, 6 or 7 bytes (the x86-64 call encodings) after one of its CALL_PCs.
 *     Other calls are not points.
 *   - without: every call of the selected classes is a point, keyed by crc32 of the callee's
 *     name (what yields.py uses for entry yields without DWARF).
 * Counters (points, injected, slept) go to the ring header. */
#define _GNU_SOURCE
#include "agent.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../catalogue.h"

#define SITES_MAX (1u << 20)
#define SITE_CACHE 512
#define OBJECTS_MAX 64          /* libraries named in the site list (tracerlib/objects.py) */
#define OBJECT_NONE UINT32_MAX  /* an object no site lists */

/* obj: 0 the program, i > 0 objects[i - 1] */
struct site { uint32_t obj; uint64_t call, ret, key; };

static char objects[OBJECTS_MAX][256];
static size_t nobjects;

static struct site *by_call, *by_ret;   /* sorted copies */
static size_t nsites;
static TR_TLS uint64_t points;

/* return address -> file address, cached; one writer at a time (others skip the cache) */
static struct { uintptr_t rt; uint64_t file; uint32_t obj; } cache[SITE_CACHE];
static atomic_flag cache_lock = ATOMIC_FLAG_INIT;

static int cmp_call(const void *a, const void *b)
{
	const struct site *x = a, *y = b;

	if (x->obj != y->obj)
		return x->obj < y->obj ? -1 : 1;
	return x->call < y->call ? -1 : x->call > y->call;
}

static int cmp_ret(const void *a, const void *b)
{
	const struct site *x = a, *y = b;

	if (x->obj != y->obj)
		return x->obj < y->obj ? -1 : 1;
	return x->ret < y->ret ? -1 : x->ret > y->ret;
}

/* The ordinal of the object named `name` (added when new), or OBJECT_NONE when full. */
static uint32_t object_ordinal(const char *name, size_t len)
{
	for (size_t i = 0; i < nobjects; i++)
		if (strlen(objects[i]) == len && !memcmp(objects[i], name, len))
			return (uint32_t)i + 1;
	if (nobjects == OBJECTS_MAX || len == 0 || len >= sizeof(objects[0]))
		return OBJECT_NONE;
	memcpy(objects[nobjects], name, len);
	objects[nobjects][len] = '\0';
	return (uint32_t)++nobjects;
}

/* "KEY OBJECT" after a site's addresses: fills key and obj (else the program's site). */
static void parse_object(char *p, struct site *s)
{
	char *end;
	unsigned long long key = strtoull(p, &end, 16);
	size_t len;

	s->key = s->call;
	s->obj = 0;
	if (end == p)
		return;
	p = end + strspn(end, " \t");
	len = strcspn(p, " \t\r");
	if (!len)
		return;
	s->key = key;
	s->obj = object_ordinal(p, len);
}

static int load_sites(const char *path)
{
	char buf[65536], line[512];   /* a library name is < 256 bytes */
	size_t cap = 0, ll = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	/* read() here is our own wrapper, passing straight through: tr_in_agent is set */
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n' && ll + 1 < sizeof(line)) {
				line[ll++] = buf[i];
				continue;
			}
			if (buf[i] != '\n')
				continue;   /* overlong line: its tail is dropped */
			line[ll] = '\0';
			ll = 0;
			char *p = line, *end;
			unsigned long long call, ret = 0;

			if (strchr(p, '#'))
				*strchr(p, '#') = '\0';
			call = strtoull(p, &end, 16);
			if (end == p)
				continue;
			p = end;
			ret = strtoull(p, &end, 16);
			if (end == p)
				ret = 0;
			if (nsites == cap) {
				size_t ncap = cap ? cap * 2 : 256;
				struct site *g;

				if (ncap > SITES_MAX)
					goto done;
				g = realloc(by_call, ncap * sizeof(*g));
				if (!g)
					goto done;
				by_call = g;
				cap = ncap;
			}
			by_call[nsites] = (struct site){ 0, call, ret, call };
			parse_object(end, &by_call[nsites]);
			if (by_call[nsites].obj != OBJECT_NONE)
				nsites++;
		}
	}
done:
	close(fd);
	if (!nsites)
		return 0;
	by_ret = malloc(nsites * sizeof(*by_ret));
	if (!by_ret) {
		nsites = 0;
		return -ENOMEM;
	}
	memcpy(by_ret, by_call, nsites * sizeof(*by_ret));
	qsort(by_call, nsites, sizeof(*by_call), cmp_call);
	qsort(by_ret, nsites, sizeof(*by_ret), cmp_ret);
	return 0;
}

static const struct site *find(const struct site *arr, uint32_t obj, uint64_t key, bool ret)
{
	size_t lo = 0, hi = nsites;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v = ret ? arr[mid].ret : arr[mid].call;

		if (arr[mid].obj == obj && v == key)
			return &arr[mid];
		if (arr[mid].obj < obj || (arr[mid].obj == obj && v < key))
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The site-list ordinal of the object lm is: 0 the program (its l_name is empty), the
 * listed library of the same file name, else OBJECT_NONE. */
static uint32_t object_of(const struct link_map *lm)
{
	const char *name = lm->l_name, *slash;

	if (!name || !*name)
		return 0;
	slash = strrchr(name, '/');
	name = slash ? slash + 1 : name;
	for (size_t i = 0; i < nobjects; i++)
		if (!strcmp(objects[i], name))
			return (uint32_t)i + 1;
	return OBJECT_NONE;
}

/* return address -> (object ordinal, file address within it) */
static uint64_t file_address(const void *rt, uint32_t *obj)
{
	uintptr_t a = (uintptr_t)rt;
	size_t i = (a >> 2) % SITE_CACHE;
	struct link_map *lm = NULL;
	Dl_info info;
	uint64_t file = a;
	bool locked = !atomic_flag_test_and_set_explicit(&cache_lock, memory_order_acquire);

	*obj = 0;
	if (locked && cache[i].rt == a) {
		file = cache[i].file;
		*obj = cache[i].obj;
		atomic_flag_clear_explicit(&cache_lock, memory_order_release);
		return file;
	}
	if (dladdr1(rt, &info, (void **)&lm, RTLD_DL_LINKMAP) && lm) {
		file = a - lm->l_addr;
		*obj = object_of(lm);
	}
	if (locked) {
		cache[i].rt = a;
		cache[i].file = file;
		cache[i].obj = *obj;
		atomic_flag_clear_explicit(&cache_lock, memory_order_release);
	}
	return file;
}

static const struct site *site_at(const void *rt)
{
	static const unsigned deltas[] = { 5, 6, 2, 3, 7 };
	uint32_t obj;
	uint64_t f = file_address(rt, &obj);
	const struct site *s;

	if (obj == OBJECT_NONE)
		return NULL;
	s = find(by_ret, obj, f, true);
	if (s)
		return s;
	for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
		s = find(by_call, obj, f - deltas[i], false);
		if (s && (!s->ret || s->ret == f))
			return s;
	}
	return NULL;
}

int tr_agent_yield_init(void)
{
	const char *spec = tr_agent_getenv("TRACER_YIELD");
	const char *classes = tr_agent_getenv("TRACER_YIELD_CLASSES");
	const char *sites = tr_agent_getenv("TRACER_YIELD_SITES");
	struct tr_yield_config cfg;
	char *end, *colon;
	int mask;

	if (!spec || !*spec)
		return 0;
	tr_yield_config_default(&cfg);
	cfg.seed = strtoull(spec, &end, 0);
	if (end == spec || *end != ':')
		return -EINVAL;
	cfg.probability = strtod(end + 1, &colon);
	if (colon == end + 1 || *colon != ':')
		return -EINVAL;
	if (tr_yield_strategy_parse_config(colon + 1, &cfg) < 0 ||
	    tr_yield_config_validate(&cfg) < 0)
		return -EINVAL;
	mask = tr_class_parse(classes && *classes ? classes : "sync,proc,send,recv");
	if (mask <= 0)
		return -EINVAL;
	if (sites && *sites) {
		int rc = load_sites(sites);

		if (rc < 0 || !nsites)
			return rc < 0 ? rc : -ENOENT;   /* a site list that names nothing: no yields */
	}
	tr_agent.ycfg = cfg;
	tr_agent.yield_classes = mask;
	tr_agent.nsites = nsites;
	tr_agent.yield_on = true;
	return tr_agent_pct_init();
}

typedef int (*nanosleep_fn)(const struct timespec *, struct timespec *);

void tr_agent_yield(enum tr_agent_fn fn, const void *ret_addr)
{
	struct tr_yield_decision d;
	struct tr_ring_header *h;
	int call = tr_agent_call[fn];
	const struct site *site = NULL;
	uint64_t key;

	if (!tr_agent.yield_on || call < 0 || !(tr_catalogue[call].cls & tr_agent.yield_classes))
		return;
	if (nsites) {
		site = site_at(ret_addr);
		if (!site)
			return;
		key = site->key;
	} else {
		key = tr_agent.name_key[call];
	}
	h = tr_agent.ring.hdr;
	if (tr_agent_pct_active()) {    /* a scheduling step instead of a decision */
		atomic_fetch_add_explicit(&h->yield_points, 1, memory_order_relaxed);
		tr_agent_pct_step();
		return;
	}
	tr_yield_decide_keyed(&tr_agent.ycfg, tr_agent.proc_ord, tr_agent_thread_ord(), points++,
			      key, &d);
	atomic_fetch_add_explicit(&h->yield_points, 1, memory_order_relaxed);
	if (!d.yield)
		return;
	atomic_fetch_add_explicit(&h->injected, 1, memory_order_relaxed);
	if (site && site->obj)
		atomic_fetch_add_explicit(&h->injected_lib, 1, memory_order_relaxed);
	if (d.us) {                     /* sleep:, delay: or taper: */
		struct timespec ts = { d.us / 1000000u, (long)(d.us % 1000000u) * 1000 };
		nanosleep_fn ns = (nanosleep_fn)tr_agent_real(FN_NANOSLEEP);

		atomic_fetch_add_explicit(&h->slept_us, d.us, memory_order_relaxed);
		if (ns)
			ns(&ts, NULL);
	} else {
		sched_yield();
	}
}
