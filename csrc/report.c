/* report.c - the run's report as one JSON document, written with yajl_gen into memory.
 *
 * Every string reaches yajl as valid UTF-8 without NULs: payloads through tr_escape, other
 * text (paths, names, endpoints) through tr_escape_text. Errors are sticky in the context so
 * the writer reads as the document's shape; the first one is returned. */
#define _GNU_SOURCE
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include "escape.h"
#include "report.h"

struct out_buf {
	char *p;
	size_t len, alloc;
	bool oom;
};

struct render {
	yajl_gen g;
	struct out_buf out;
	char *scratch;          /* escaped strings on their way to yajl */
	size_t scratch_alloc;
	int err;                /* first error, sticky */
};

static void out_grow(struct out_buf *b, size_t n)
{
	size_t want = b->alloc ? b->alloc : 64 * 1024;
	char *p;

	while (want - b->len < n + 1) {
		if (want > SIZE_MAX / 2) {
			b->oom = true;
			return;
		}
		want *= 2;
	}
	p = realloc(b->p, want);
	if (!p) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->alloc = want;
}

/* yajl's own buffer does not check malloc; writing through this callback keeps OOM ours.
 * It is called for every token, most of them a few bytes long: keep the common case short. */
static void out_print(void *ctx, const char *s, size_t n)
{
	struct out_buf *b = ctx;
	char *d;
	size_t i;

	if (n >= b->alloc - b->len) {
		if (b->oom)
			return;
		out_grow(b, n);
		if (b->oom)
			return;
	}
	d = b->p + b->len;
	b->len += n;
	if (n > 16) {
		memcpy(d, s, n);
		return;
	}
	for (i = 0; i < n; i++)
		d[i] = s[i];
}

static void check(struct render *c, yajl_gen_status st)
{
	if (c->err || (st == yajl_gen_status_ok && !c->out.oom))
		return;
	/* Anything but OOM is a bug here (unbalanced calls, a string that escaped escaping). */
	c->err = c->out.oom ? -ENOMEM : -EINVAL;
}

static bool scratch_reserve(struct render *c, size_t n)
{
	size_t need;
	char *p;

	if (n > (SIZE_MAX - 1) / 4) {
		c->err = -ENOMEM;
		return false;
	}
	need = TR_ESCAPED_MAX(n) + 1;
	if (need <= c->scratch_alloc)
		return true;
	p = realloc(c->scratch, need);
	if (!p) {
		c->err = -ENOMEM;
		return false;
	}
	c->scratch = p;
	c->scratch_alloc = need;
	return true;
}

static void gen_null(struct render *c)
{
	if (!c->err)
		check(c, yajl_gen_null(c->g));
}

static void gen_bool(struct render *c, bool v)
{
	if (!c->err)
		check(c, yajl_gen_bool(c->g, v));
}

/* A string known to be plain ASCII: keys and our own constants. */
static void gen_lit(struct render *c, const char *s)
{
	if (!c->err)
		check(c, yajl_gen_string(c->g, (const unsigned char *)s, strlen(s)));
}

static void gen_key_n(struct render *c, const char *k, size_t n)
{
	if (!c->err)
		check(c, yajl_gen_string(c->g, (const unsigned char *)k, n));
}

/* Keys are literals: their length is known at compile time. */
#define gen_key(c, k) gen_key_n(c, "" k, sizeof(k) - 1)

/* Arbitrary bytes meant as text; NULL is null. */
static void gen_text_n(struct render *c, const char *s, size_t n)
{
	size_t i, len;

	if (c->err)
		return;
	if (!s) {
		gen_null(c);
		return;
	}
	/* Most names need no escaping: skip the copy. */
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch > 0x7e || ch == '\\')
			break;
	}
	if (i == n) {
		check(c, yajl_gen_string(c->g, (const unsigned char *)s, n));
		return;
	}
	if (!scratch_reserve(c, n))
		return;
	len = tr_escape_text(s, n, c->scratch);
	check(c, yajl_gen_string(c->g, (const unsigned char *)c->scratch, len));
}

static void gen_text(struct render *c, const char *s)
{
	gen_text_n(c, s, s ? strlen(s) : 0);
}

static void gen_data(struct render *c, const uint8_t *data, size_t n)
{
	size_t len;

	if (c->err || !scratch_reserve(c, n))
		return;
	len = data ? tr_escape(data, n, c->scratch) : 0;
	c->scratch[len] = '\0';
	check(c, yajl_gen_string(c->g, (const unsigned char *)c->scratch, len));
}

/* Decimal digits of v, right-aligned ending at end; returns the first. sprintf inside
 * yajl_gen_integer is a tenth of the render time, so numbers are formatted here. */
static char *fmt_u64(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

static void gen_u64(struct render *c, uint64_t v)
{
	char num[24], *end = num + sizeof(num), *p = fmt_u64(end, v);

	if (!c->err)
		check(c, yajl_gen_number(c->g, p, (size_t)(end - p)));
}

static void gen_i64(struct render *c, int64_t v)
{
	char num[24], *end = num + sizeof(num), *p;

	if (c->err)
		return;
	/* Negate in unsigned arithmetic: INT64_MIN has no positive twin. */
	p = fmt_u64(end, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
	if (v < 0)
		*--p = '-';
	check(c, yajl_gen_number(c->g, p, (size_t)(end - p)));
}

/* Negative means unknown. */
static void gen_i64_or_null(struct render *c, int64_t v)
{
	if (v < 0)
		gen_null(c);
	else
		gen_i64(c, v);
}

static void gen_addr(struct render *c, uint64_t pc)
{
	static const char digits[] = "0123456789abcdef";
	char s[20], *end = s + sizeof(s), *p = end;

	do {
		*--p = digits[pc & 15];
		pc >>= 4;
	} while (pc);
	*--p = 'x';
	*--p = '0';
	if (!c->err)
		check(c, yajl_gen_string(c->g, (const unsigned char *)p, (size_t)(end - p)));
}

static void gen_signal(struct render *c, int sig)
{
	const char *abbrev;
	char s[32];
	int n;

	if (sig == 0) {
		gen_null(c);
		return;
	}
	abbrev = sig > 0 ? sigabbrev_np(sig) : NULL;
	if (abbrev)
		n = snprintf(s, sizeof(s), "SIG%s", abbrev);
	else
		n = snprintf(s, sizeof(s), "SIG%d", sig);
	if (!c->err)
		check(c, yajl_gen_string(c->g, (const unsigned char *)s, (size_t)n));
}

/* Shortest decimal that reads back as the same double, in the C locale whatever the host
 * process (gdb, Python) set: yajl_gen_double prints 0.1 as 0.10000000000000000555. */
static void gen_double(struct render *c, double d)
{
	locale_t cloc, old = (locale_t)0;
	char s[40];
	int prec, n = 0;

	if (c->err)
		return;
	if (!isfinite(d)) {
		gen_null(c);
		return;
	}
	cloc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	if (cloc)
		old = uselocale(cloc);
	for (prec = 1; prec <= 17; prec++) {
		n = snprintf(s, sizeof(s), "%.*g", prec, d);
		if (strtod(s, NULL) == d)
			break;
	}
	if (cloc) {
		uselocale(old);
		freelocale(cloc);
	}
	/* Without a C locale object a ',' decimal point may have slipped in. */
	for (char *p = s; *p; p++)
		if (*p == ',')
			*p = '.';
	check(c, yajl_gen_number(c->g, s, (size_t)n));
}

static void gen_map_open(struct render *c)
{
	if (!c->err)
		check(c, yajl_gen_map_open(c->g));
}

static void gen_map_close(struct render *c)
{
	if (!c->err)
		check(c, yajl_gen_map_close(c->g));
}

static void gen_array_open(struct render *c)
{
	if (!c->err)
		check(c, yajl_gen_array_open(c->g));
}

static void gen_array_close(struct render *c)
{
	if (!c->err)
		check(c, yajl_gen_array_close(c->g));
}

/* function, file, line of a frame; pc is the caller's concern. */
static void gen_frame_where(struct render *c, const struct tr_frame *f)
{
	gen_key(c, "function");
	gen_text(c, f ? f->function : NULL);
	gen_key(c, "file");
	gen_text(c, f ? f->file : NULL);
	gen_key(c, "line");
	if (f && f->line > 0)
		gen_i64(c, f->line);
	else
		gen_null(c);
}

static void gen_program(struct render *c, const struct tr_report_meta *m)
{
	size_t i;

	gen_map_open(c);
	gen_key(c, "path");
	gen_text(c, m->program);
	gen_key(c, "argv");
	gen_array_open(c);
	/* A NULL entry ends argv, as it does in C. */
	for (i = 0; m->argv && i < m->argc && m->argv[i]; i++)
		gen_text(c, m->argv[i]);
	gen_array_close(c);
	gen_key(c, "pid");
	gen_i64(c, m->pid);
	gen_map_close(c);
}

static void gen_stop(struct render *c, const struct tr_stop *s)
{
	gen_map_open(c);
	gen_key(c, "reason");
	gen_text(c, s->reason);
	gen_key(c, "signal");
	gen_signal(c, s->signal);
	gen_key(c, "status");
	gen_i64_or_null(c, s->status);
	gen_key(c, "pid");
	gen_i64(c, s->pid);
	gen_key(c, "tid");
	gen_i64(c, s->tid);
	gen_map_close(c);
}

static void gen_recorder(struct render *c, const struct tr_recorder *r, int backtrace)
{
	gen_map_open(c);
	gen_key(c, "cap");
	gen_u64(c, r->cap);
	gen_key(c, "budget");
	gen_u64(c, r->budget);
	gen_key(c, "payload");
	gen_u64(c, r->payload);
	gen_key(c, "backtrace");
	gen_i64(c, backtrace);
	gen_key(c, "count");
	gen_u64(c, r->count);
	gen_key(c, "dropped");
	gen_u64(c, r->dropped);
	gen_key(c, "overflow");
	gen_bool(c, r->overflow);
	gen_key(c, "frozen");
	gen_bool(c, r->frozen);
	gen_map_close(c);
}

static void gen_event(struct render *c, const struct tr_recorder *r,
		      const struct tr_report_meta *m, size_t i)
{
	const uint8_t *data;
	size_t data_len;
	const struct tr_event *ev = tr_recorder_at(r, i, &data, &data_len);
	struct tr_frame site = { 0 };
	bool resolved;

	if (!ev)
		return;
	site.pc = ev->site;
	resolved = m->resolve_site && m->resolve_site(m->resolve_ctx, ev->site, &site);

	gen_map_open(c);
	gen_key(c, "seq");
	gen_u64(c, ev->seq);
	gen_key(c, "t_us");
	gen_u64(c, tr_recorder_t_us(r, ev));
	gen_key(c, "pid");
	gen_i64(c, ev->pid);
	gen_key(c, "tid");
	gen_i64(c, ev->tid);
	gen_key(c, "dir");
	gen_lit(c, ev->dir == TR_DIR_RECV ? "recv" : "send");
	gen_key(c, "fn");
	gen_text(c, ev->fn);
	gen_key(c, "fd");
	gen_i64(c, ev->fd);
	gen_key(c, "endpoint");
	gen_text_n(c, ev->endpoint, strnlen(ev->endpoint, sizeof(ev->endpoint)));
	gen_key(c, "len");
	gen_i64(c, ev->len);
	gen_key(c, "ret");
	if (ev->returned)
		gen_i64(c, ev->ret);
	else
		gen_null(c);
	gen_key(c, "errno");
	gen_i64(c, ev->err);
	gen_key(c, "data");
	gen_data(c, data, data_len);
	gen_key(c, "truncated");
	gen_bool(c, ev->truncated);
	gen_key(c, "site");
	gen_map_open(c);
	gen_key(c, "pc");
	gen_addr(c, ev->site);
	gen_frame_where(c, resolved ? &site : NULL);
	gen_map_close(c);
	gen_map_close(c);
}

static void gen_thread(struct render *c, const struct tr_thread *t, int backtrace)
{
	size_t i, n = t->frames ? t->nframes : 0;

	if (n > (size_t)backtrace)
		n = (size_t)backtrace;
	gen_map_open(c);
	gen_key(c, "tid");
	gen_i64(c, t->tid);
	gen_key(c, "name");
	gen_text(c, t->name);
	gen_key(c, "backtrace");
	gen_array_open(c);
	for (i = 0; i < n; i++) {
		gen_map_open(c);
		gen_key(c, "pc");
		gen_addr(c, t->frames[i].pc);
		gen_frame_where(c, &t->frames[i]);
		gen_map_close(c);
	}
	gen_array_close(c);
	gen_map_close(c);
}

static void gen_mailbox(struct render *c, const struct tr_mailbox *mb)
{
	gen_map_open(c);
	gen_key(c, "fd");
	gen_i64(c, mb->fd);
	gen_key(c, "endpoint");
	gen_text(c, mb->endpoint);
	gen_key(c, "pending");
	gen_i64_or_null(c, mb->pending);
	gen_key(c, "messages");
	gen_i64_or_null(c, mb->messages);
	gen_key(c, "data");
	if (mb->data)
		gen_data(c, mb->data, mb->data_len);
	else
		gen_null(c);
	gen_key(c, "truncated");
	gen_bool(c, mb->truncated);
	gen_key(c, "approx");
	gen_bool(c, true);
	gen_key(c, "error");
	gen_text(c, mb->error);
	gen_map_close(c);
}

static void gen_process(struct render *c, const struct tr_process *p, int backtrace)
{
	size_t i;

	gen_map_open(c);
	gen_key(c, "pid");
	gen_i64(c, p->pid);
	gen_key(c, "alive");
	gen_bool(c, p->alive);
	gen_key(c, "exit_status");
	gen_i64_or_null(c, p->exit_status);
	gen_key(c, "exit_signal");
	gen_signal(c, p->exit_signal);
	gen_key(c, "threads");
	gen_array_open(c);
	for (i = 0; p->threads && i < p->nthreads; i++)
		gen_thread(c, &p->threads[i], backtrace);
	gen_array_close(c);
	gen_key(c, "mailboxes");
	gen_array_open(c);
	for (i = 0; p->mailboxes && i < p->nmailboxes; i++)
		gen_mailbox(c, &p->mailboxes[i]);
	gen_array_close(c);
	if (p->mode) {
		gen_key(c, "mode");
		gen_text(c, p->mode);
	}
	gen_map_close(c);
}

static void gen_uncovered(struct render *c, const struct tr_uncovered *u)
{
	gen_map_open(c);
	gen_key(c, "pid");
	gen_i64(c, u->pid);
	gen_key(c, "exe");
	gen_text(c, u->exe);
	gen_key(c, "why");
	gen_text(c, u->why ? u->why : "");
	gen_map_close(c);
}

static void gen_yield(struct render *c, const struct tr_yield_info *y)
{
	gen_map_open(c);
	gen_key(c, "enabled");
	gen_bool(c, y->enabled);
	gen_key(c, "seed");
	gen_u64(c, y->seed);
	gen_key(c, "strategy");
	gen_text(c, y->strategy);
	gen_key(c, "probability");
	gen_double(c, y->probability);
	gen_key(c, "sites");
	gen_i64(c, y->sites);
	gen_key(c, "injected");
	gen_i64(c, y->injected);
	if (y->classes) {
		gen_key(c, "classes");
		gen_text(c, y->classes);
		gen_key(c, "module");
		gen_text(c, y->module);
		gen_key(c, "functions");
		gen_array_open(c);
		for (size_t i = 0; y->functions && i < y->nfunctions; i++)
			gen_text(c, y->functions[i]);
		gen_array_close(c);
	}
	if (y->has_access) {
		gen_key(c, "access_sites");
		gen_i64(c, y->access_sites);
		gen_key(c, "hot_sites_disabled");
		gen_i64(c, y->hot_sites_disabled);
	}
	if (y->has_library) {
		gen_key(c, "library_sites");
		gen_i64(c, y->library_sites);
		gen_key(c, "library_injected");
		gen_i64(c, y->library_injected);
	}
	if (y->has_pct) {
		gen_key(c, "depth");
		gen_i64(c, y->depth);
		gen_key(c, "pct_steps");
		gen_i64(c, y->pct_steps);
		gen_key(c, "change_points");
		gen_array_open(c);
		for (size_t i = 0; y->change_points && i < y->nchange_points; i++)
			gen_i64(c, y->change_points[i]);
		gen_array_close(c);
		gen_key(c, "changes_taken");
		gen_i64(c, y->changes_taken);
		gen_key(c, "steals");
		gen_i64(c, y->steals);
	}
	gen_map_close(c);
}

static void gen_filter(struct render *c, const struct tr_filter_info *f)
{
	gen_key(c, "filter");
	gen_map_open(c);
	gen_key(c, "trace");
	gen_text(c, f->trace ? f->trace : "all");
	gen_key(c, "status");
	gen_text(c, f->status ? f->status : "all");
	gen_key(c, "endpoint");
	gen_text(c, f->endpoint ? f->endpoint : "*");
	gen_key(c, "filtered");
	gen_i64(c, f->filtered < 0 ? 0 : f->filtered);
	gen_map_close(c);
}

int tr_report_render(const struct tr_recorder *r, const struct tr_report_meta *meta,
		     char **out, size_t *out_len)
{
	struct render c = { 0 };
	int backtrace;
	size_t i;

	if (out)
		*out = NULL;
	if (out_len)
		*out_len = 0;
	if (!r || !meta || !out || !meta->key)
		return -EINVAL;

	backtrace = meta->backtrace_limit;
	if (backtrace < 0)
		backtrace = 0;
	else if (backtrace > TR_BACKTRACE_MAX)
		backtrace = TR_BACKTRACE_MAX;

	/* Room for a typical report up front: ~350 bytes per event, a little for the rest. */
	out_grow(&c.out, 16 * 1024 + 512 * tr_recorder_len(r));
	if (c.out.oom)
		return -ENOMEM;
	c.g = yajl_gen_alloc(NULL);
	if (!c.g) {
		c.err = -ENOMEM;
		goto out;
	}
	/* Compact: a pretty-printed report is 30 % larger and 40 % slower to write, and
	 * `tracer show` or any JSON tool lays it out for reading. */
	if (/* A last guard: an unescaped byte fails the render instead of the reader. */
	    !yajl_gen_config(c.g, yajl_gen_validate_utf8, 1) ||
	    !yajl_gen_config(c.g, yajl_gen_print_callback, out_print, &c.out)) {
		c.err = -EINVAL;
		goto out;
	}

	gen_map_open(&c);
	gen_key(&c, "version");
	gen_i64(&c, TR_REPORT_VERSION);
	gen_key(&c, "key");
	gen_text(&c, meta->key);
	gen_key(&c, "program");
	gen_program(&c, meta);
	gen_key(&c, "started");
	gen_text(&c, meta->started);
	gen_key(&c, "debugger");
	gen_text(&c, meta->debugger);
	if (meta->mode) {
		gen_key(&c, "mode");
		gen_text(&c, meta->mode);
	}
	if (meta->has_timeout) {
		gen_key(&c, "timeout");
		gen_i64(&c, meta->timeout);
	}
	if (meta->filter.trace || meta->filter.status || meta->filter.endpoint)
		gen_filter(&c, &meta->filter);
	gen_key(&c, "stop");
	gen_stop(&c, &meta->stop);
	gen_key(&c, "recorder");
	gen_recorder(&c, r, backtrace);
	gen_key(&c, "events");
	gen_array_open(&c);
	for (i = 0; i < tr_recorder_len(r) && !c.err; i++)
		gen_event(&c, r, meta, i);
	gen_array_close(&c);
	gen_key(&c, "processes");
	gen_array_open(&c);
	for (i = 0; meta->processes && i < meta->nprocesses && !c.err; i++)
		gen_process(&c, &meta->processes[i], backtrace);
	gen_array_close(&c);
	if (meta->has_uncovered) {
		gen_key(&c, "uncovered");
		gen_array_open(&c);
		for (i = 0; meta->uncovered && i < meta->nuncovered && !c.err; i++)
			gen_uncovered(&c, &meta->uncovered[i]);
		gen_array_close(&c);
	}
	gen_key(&c, "yield");
	gen_yield(&c, &meta->yield);
	gen_map_close(&c);
	if (c.err)
		goto out;

	out_print(&c.out, "\n", 2);   /* a text file ends in a newline; the NUL not counted */
	if (c.out.oom) {
		c.err = -ENOMEM;
		goto out;
	}
	*out = c.out.p;
	if (out_len)
		*out_len = c.out.len - 1;
	c.out.p = NULL;
out:
	if (c.g)
		yajl_gen_free(c.g);   /* it does not take NULL */
	free(c.out.p);
	free(c.scratch);
	return c.err;
}
