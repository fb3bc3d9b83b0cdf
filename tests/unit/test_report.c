/* test_report.c - the report writer's shape and values, its reader, and the schema. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>
#include "escape.h"
#include "recorder.h"
#include "report.h"
#include "report_read.h"
#include "store.h"

/* ---- helpers ---- */

static int rep_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static void rep_rm_rf(const char *dir)
{
	nftw(dir, rep_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Test dirs are removed by the suites' fini too, which runs even when an assertion fails. */
static char rep_dirs[4][64];
static int rep_ndirs;

static void rep_tmpdir(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/tr-report-XXXXXX");
	cr_assert_not_null(mkdtemp(buf));
	if (rep_ndirs < 4)
		snprintf(rep_dirs[rep_ndirs++], sizeof(rep_dirs[0]), "%s", buf);
}

static void rep_cleanup(void)
{
	while (rep_ndirs > 0)
		rep_rm_rf(rep_dirs[--rep_ndirs]);
}

TestSuite(report, .fini = rep_cleanup);
TestSuite(report_read, .fini = rep_cleanup);

static void rep_write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static yajl_val rep_get(yajl_val obj, const char *key)
{
	const char *path[] = { key, NULL };

	return yajl_tree_get(obj, path, yajl_t_any);
}

static yajl_val rep_parse(const char *buf)
{
	char err[256];
	yajl_val v = yajl_tree_parse(buf, err, sizeof(err));

	cr_assert_not_null(v, "invalid JSON: %s", err);
	return v;
}

enum {
	T_STR = 1, T_INT = 2, T_NULL = 4, T_BOOL = 8, T_ARR = 16, T_OBJ = 32, T_NUM = 64,
};

struct rep_field {
	const char *key;
	int types;
};

static bool rep_is(yajl_val v, int types)
{
	return ((types & T_STR) && YAJL_IS_STRING(v)) ||
	       ((types & T_INT) && YAJL_IS_INTEGER(v)) ||
	       ((types & T_NUM) && YAJL_IS_NUMBER(v)) ||
	       ((types & T_NULL) && YAJL_IS_NULL(v)) ||
	       ((types & T_BOOL) && (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))) ||
	       ((types & T_ARR) && YAJL_IS_ARRAY(v)) ||
	       ((types & T_OBJ) && YAJL_IS_OBJECT(v));
}

/* The object has exactly these keys, in this order, with these types. */
static void rep_check_obj(yajl_val obj, const struct rep_field *f, size_t n, const char *where)
{
	size_t i;

	cr_assert(YAJL_IS_OBJECT(obj), "%s: not an object", where);
	cr_assert_eq(obj->u.object.len, n, "%s: %zu keys, want %zu", where, obj->u.object.len, n);
	for (i = 0; i < n; i++) {
		cr_assert_str_eq(obj->u.object.keys[i], f[i].key, "%s: key #%zu", where, i);
		cr_assert(rep_is(obj->u.object.values[i], f[i].types), "%s.%s: wrong type", where,
			  f[i].key);
	}
}

#define REP_CHECK(obj, spec, where) rep_check_obj(obj, spec, sizeof(spec) / sizeof(spec[0]), where)

static const struct rep_field rep_root_spec[] = {
	{ "version", T_INT }, { "key", T_STR }, { "program", T_OBJ }, { "started", T_STR | T_NULL },
	{ "debugger", T_STR | T_NULL }, { "stop", T_OBJ }, { "recorder", T_OBJ },
	{ "events", T_ARR }, { "processes", T_ARR }, { "yield", T_OBJ },
};
static const struct rep_field rep_program_spec[] = {
	{ "path", T_STR | T_NULL }, { "argv", T_ARR }, { "pid", T_INT },
};
static const struct rep_field rep_stop_spec[] = {
	{ "reason", T_STR | T_NULL }, { "signal", T_STR | T_NULL }, { "status", T_INT | T_NULL },
	{ "pid", T_INT }, { "tid", T_INT },
};
static const struct rep_field rep_recorder_spec[] = {
	{ "cap", T_INT }, { "budget", T_INT }, { "payload", T_INT }, { "backtrace", T_INT },
	{ "count", T_INT }, { "dropped", T_INT }, { "overflow", T_BOOL }, { "frozen", T_BOOL },
};
static const struct rep_field rep_event_spec[] = {
	{ "seq", T_INT }, { "t_us", T_INT }, { "pid", T_INT }, { "tid", T_INT }, { "dir", T_STR },
	{ "fn", T_STR }, { "fd", T_INT }, { "endpoint", T_STR }, { "len", T_INT },
	{ "ret", T_INT | T_NULL }, { "errno", T_INT }, { "data", T_STR }, { "truncated", T_BOOL },
	{ "site", T_OBJ },
};
static const struct rep_field rep_frame_spec[] = {
	{ "pc", T_STR }, { "function", T_STR | T_NULL }, { "file", T_STR | T_NULL },
	{ "line", T_INT | T_NULL },
};
static const struct rep_field rep_process_spec[] = {
	{ "pid", T_INT }, { "alive", T_BOOL }, { "exit_status", T_INT | T_NULL },
	{ "exit_signal", T_STR | T_NULL }, { "threads", T_ARR }, { "mailboxes", T_ARR },
};
static const struct rep_field rep_thread_spec[] = {
	{ "tid", T_INT }, { "name", T_STR | T_NULL }, { "backtrace", T_ARR },
};
static const struct rep_field rep_mailbox_spec[] = {
	{ "fd", T_INT }, { "endpoint", T_STR | T_NULL }, { "pending", T_INT | T_NULL },
	{ "messages", T_INT | T_NULL }, { "data", T_STR | T_NULL }, { "truncated", T_BOOL },
	{ "approx", T_BOOL }, { "error", T_STR | T_NULL },
};
static const struct rep_field rep_yield_spec[] = {
	{ "enabled", T_BOOL }, { "seed", T_INT }, { "strategy", T_STR | T_NULL },
	{ "probability", T_NUM | T_NULL }, { "sites", T_INT }, { "injected", T_INT },
};

/* Every object of the document has its keys, in order, with their types. */
static void rep_check_shape(yajl_val doc)
{
	yajl_val events, procs, v;
	size_t i, j, k;

	REP_CHECK(doc, rep_root_spec, "root");
	REP_CHECK(rep_get(doc, "program"), rep_program_spec, "program");
	v = rep_get(rep_get(doc, "program"), "argv");
	for (i = 0; i < v->u.array.len; i++)
		cr_assert(YAJL_IS_STRING(v->u.array.values[i]), "argv[%zu]", i);
	REP_CHECK(rep_get(doc, "stop"), rep_stop_spec, "stop");
	REP_CHECK(rep_get(doc, "recorder"), rep_recorder_spec, "recorder");
	REP_CHECK(rep_get(doc, "yield"), rep_yield_spec, "yield");
	events = rep_get(doc, "events");
	for (i = 0; i < events->u.array.len; i++) {
		REP_CHECK(events->u.array.values[i], rep_event_spec, "event");
		REP_CHECK(rep_get(events->u.array.values[i], "site"), rep_frame_spec, "site");
	}
	procs = rep_get(doc, "processes");
	for (i = 0; i < procs->u.array.len; i++) {
		yajl_val p = procs->u.array.values[i], threads, mbs;

		REP_CHECK(p, rep_process_spec, "process");
		threads = rep_get(p, "threads");
		for (j = 0; j < threads->u.array.len; j++) {
			yajl_val bt;

			REP_CHECK(threads->u.array.values[j], rep_thread_spec, "thread");
			bt = rep_get(threads->u.array.values[j], "backtrace");
			for (k = 0; k < bt->u.array.len; k++)
				REP_CHECK(bt->u.array.values[k], rep_frame_spec, "frame");
		}
		mbs = rep_get(p, "mailboxes");
		for (j = 0; j < mbs->u.array.len; j++)
			REP_CHECK(mbs->u.array.values[j], rep_mailbox_spec, "mailbox");
	}
}

static const char *rep_str(yajl_val obj, const char *key)
{
	yajl_val v = rep_get(obj, key);

	cr_assert(v && YAJL_IS_STRING(v), "%s: not a string", key);
	return YAJL_GET_STRING(v);
}

static long long rep_int(yajl_val obj, const char *key)
{
	yajl_val v = rep_get(obj, key);

	cr_assert(v && YAJL_IS_INTEGER(v), "%s: not an integer", key);
	return YAJL_GET_INTEGER(v);
}

static bool rep_bool(yajl_val obj, const char *key)
{
	yajl_val v = rep_get(obj, key);

	cr_assert(v && (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)), "%s: not a bool", key);
	return YAJL_IS_TRUE(v);
}

static bool rep_null(yajl_val obj, const char *key)
{
	yajl_val v = rep_get(obj, key);

	cr_assert_not_null(v, "%s: missing", key);
	return YAJL_IS_NULL(v);
}

static yajl_val rep_at(yajl_val arr, size_t i)
{
	cr_assert(YAJL_IS_ARRAY(arr));
	cr_assert_lt(i, arr->u.array.len);
	return arr->u.array.values[i];
}

struct rep_clock {
	uint64_t now;
};

static uint64_t rep_clock_fn(void *ctx)
{
	struct rep_clock *c = ctx;

	c->now += 2500;   /* 2.5 us per event */
	return c->now;
}

static bool rep_resolver(void *ctx, uint64_t pc, struct tr_frame *out)
{
	int *calls = ctx;

	(*calls)++;
	if (pc == 0x401000) {
		out->function = "main";
		out->file = "prog.c";
		out->line = 42;
		return true;
	}
	if (pc == 0x401010) {
		out->function = "helper";
		return true;
	}
	return false;
}

/* A recorder with 6 events pushed into a cap-4 ring: seqs 2..5 remain. */
static void rep_recorder(struct tr_recorder *r, struct rep_clock *clk)
{
	struct tr_recorder_config cfg = { .cap = 4, .budget = 100, .payload = 8 };
	int i;

	cr_assert_eq(tr_recorder_init(r, &cfg), 0);
	clk->now = 1000000;
	tr_recorder_set_clock(r, rep_clock_fn, clk);
	for (i = 0; i < 6; i++) {
		struct tr_event ev = { 0 };

		ev.pid = 1000;
		ev.tid = 1000 + i % 2;
		ev.dir = i % 2 ? TR_DIR_RECV : TR_DIR_SEND;
		ev.fn = i % 2 ? "read" : "write";
		ev.fd = 3 + i % 2;
		ev.len = 10;
		ev.site = i == 2 ? 0x401000 : i == 3 ? 0x401010 : 0x402000;
		ev.returned = i != 5;
		ev.ret = i == 4 ? -1 : 10;
		ev.err = i == 4 ? EPIPE : 0;
		snprintf(ev.endpoint, sizeof(ev.endpoint), "pipe:[%d]", 777 + i % 2);
		tr_recorder_push(r, &ev, "hi\n\"\\\x01\xffxyz", 10);
	}
	tr_recorder_freeze(r);
}

static const struct tr_frame rep_frames[] = {
	{ 0x401000, "main", "prog.c", 42 },
	{ 0x7f0000001234, NULL, NULL, 0 },
	{ 0x401010, "helper", NULL, 0 },
	{ 0x401020, "deep", "deep.c", 7 },
};
static const struct tr_thread rep_threads[] = {
	{ 1000, "main", rep_frames, 4 },
	{ 1001, NULL, rep_frames + 1, 1 },
};
static const uint8_t rep_mb_bytes[] = { 'o', 'k', 0, '\n', 0x80 };
static const struct tr_mailbox rep_mailboxes[] = {
	{ 3, "pipe:[777]", 5, -1, rep_mb_bytes, 5, false, NULL },
	{ 4, "mq:/q", -1, -1, NULL, 0, false, "EPERM: pidfd_getfd" },
	{ 5, "unix:[9]", 0, 2, rep_mb_bytes, 0, true, NULL },
};
static const struct tr_process rep_processes[] = {
	{ 1000, true, -1, 0, rep_threads, 2, rep_mailboxes, 3, "agent" },
	{ 1002, false, -1, SIGABRT, NULL, 0, NULL, 0, NULL },
	{ 1003, false, 3, 0, NULL, 0, NULL, 0, "none" },
};
static const struct tr_uncovered rep_uncovered[] = {
	{ 1003, "/bin/static helper", "a static program" },
	{ 0, NULL, "more processes than recorded" },
};
static const char *const rep_argv[] = { "./prog", "--flag", "two words" };

static struct tr_report_meta rep_meta(int *resolver_calls)
{
	struct tr_report_meta m = { 0 };

	m.key = "prog-1000-20240101T000000Z-42";
	m.program = "/home/u/prog";
	m.argv = rep_argv;
	m.argc = 3;
	m.pid = 1000;
	m.started = "2024-01-01T00:00:00Z";
	m.debugger = "gdb 13.1";
	m.stop = (struct tr_stop){ "signal", SIGSEGV, -1, 1000, 1001 };
	m.processes = rep_processes;
	m.nprocesses = 3;
	m.has_uncovered = true;
	m.uncovered = rep_uncovered;
	m.nuncovered = 2;
	m.yield = (struct tr_yield_info){ .enabled = true, .seed = 42, .strategy = "sleep",
					  .probability = 0.25, .sites = 17, .injected = 5 };
	m.backtrace_limit = 3;
	m.resolve_site = rep_resolver;
	m.resolve_ctx = resolver_calls;
	return m;
}

static char *rep_render(const struct tr_recorder *r, const struct tr_report_meta *m,
			size_t *len_out)
{
	char *buf = NULL;
	size_t len = 0;

	cr_assert_eq(tr_report_render(r, m, &buf, &len), 0);
	cr_assert_not_null(buf);
	cr_assert_eq(strlen(buf), len, "length matches, no NUL inside");
	if (len_out)
		*len_out = len;
	return buf;
}

/* ---- the writer ---- */

Test(report, shape_has_every_key_in_order)
{
	struct tr_recorder r;
	struct rep_clock clk;
	int calls = 0;
	struct tr_report_meta m = rep_meta(&calls);
	struct tr_process plain[3];
	char *buf;
	yajl_val doc;

	/* version 1's keys; the optional ones (process mode, uncovered) are checked in values */
	memcpy(plain, rep_processes, sizeof(plain));
	for (size_t i = 0; i < 3; i++)
		plain[i].mode = NULL;
	m.processes = plain;
	m.has_uncovered = false;
	rep_recorder(&r, &clk);
	buf = rep_render(&r, &m, NULL);
	doc = rep_parse(buf);
	rep_check_shape(doc);
	cr_assert_eq(calls, 4, "the resolver is asked once per event");
	yajl_tree_free(doc);
	free(buf);
	tr_recorder_destroy(&r);
}

Test(report, values)
{
	struct tr_recorder r;
	struct rep_clock clk;
	int calls = 0;
	struct tr_report_meta m = rep_meta(&calls);
	char *buf;
	yajl_val doc, v, ev, site, procs, p, th, bt, mb;
	size_t i;

	rep_recorder(&r, &clk);
	buf = rep_render(&r, &m, NULL);
	doc = rep_parse(buf);

	cr_assert_eq(rep_int(doc, "version"), 1);
	cr_assert_str_eq(rep_str(doc, "key"), "prog-1000-20240101T000000Z-42");
	v = rep_get(doc, "program");
	cr_assert_str_eq(rep_str(v, "path"), "/home/u/prog");
	cr_assert_eq(rep_get(v, "argv")->u.array.len, 3);
	cr_assert_str_eq(YAJL_GET_STRING(rep_at(rep_get(v, "argv"), 2)), "two words");
	cr_assert_eq(rep_int(v, "pid"), 1000);
	cr_assert_str_eq(rep_str(doc, "started"), "2024-01-01T00:00:00Z");
	cr_assert_str_eq(rep_str(doc, "debugger"), "gdb 13.1");

	v = rep_get(doc, "stop");
	cr_assert_str_eq(rep_str(v, "reason"), "signal");
	cr_assert_str_eq(rep_str(v, "signal"), "SIGSEGV");
	cr_assert(rep_null(v, "status"));
	cr_assert_eq(rep_int(v, "pid"), 1000);
	cr_assert_eq(rep_int(v, "tid"), 1001);

	v = rep_get(doc, "recorder");
	cr_assert_eq(rep_int(v, "cap"), 4);
	cr_assert_eq(rep_int(v, "budget"), 100);
	cr_assert_eq(rep_int(v, "payload"), 8);
	cr_assert_eq(rep_int(v, "backtrace"), 3);
	cr_assert_eq(rep_int(v, "count"), 6);
	cr_assert_eq(rep_int(v, "dropped"), 2);
	cr_assert(!rep_bool(v, "overflow"));
	cr_assert(rep_bool(v, "frozen"));

	v = rep_get(doc, "events");
	cr_assert_eq(v->u.array.len, 4);
	for (i = 0; i < 4; i++) {
		int n = 2 + (int)i;

		ev = rep_at(v, i);
		cr_assert_eq(rep_int(ev, "seq"), n, "oldest first");
		/* The first event ever came at 1000000 + 2500; times relative to it. */
		cr_assert_eq(rep_int(ev, "t_us"), n * 2500 / 1000);
		cr_assert_eq(rep_int(ev, "pid"), 1000);
		cr_assert_eq(rep_int(ev, "tid"), 1000 + n % 2);
		cr_assert_str_eq(rep_str(ev, "dir"), n % 2 ? "recv" : "send");
		cr_assert_str_eq(rep_str(ev, "fn"), n % 2 ? "read" : "write");
		cr_assert_eq(rep_int(ev, "fd"), 3 + n % 2);
		cr_assert_str_eq(rep_str(ev, "endpoint"), n % 2 ? "pipe:[778]" : "pipe:[777]");
		cr_assert_eq(rep_int(ev, "len"), 10);
		if (n == 5)
			cr_assert(rep_null(ev, "ret"), "not returned: null");
		else
			cr_assert_eq(rep_int(ev, "ret"), n == 4 ? -1 : 10);
		cr_assert_eq(rep_int(ev, "errno"), n == 4 ? EPIPE : 0);
		/* 8 of the 10 bytes kept, escaped. */
		cr_assert_str_eq(rep_str(ev, "data"), "hi\\n\\\"\\\\\\x01\\xffx");
		cr_assert(rep_bool(ev, "truncated"));
		site = rep_get(ev, "site");
		if (n == 2) {
			cr_assert_str_eq(rep_str(site, "pc"), "0x401000");
			cr_assert_str_eq(rep_str(site, "function"), "main");
			cr_assert_str_eq(rep_str(site, "file"), "prog.c");
			cr_assert_eq(rep_int(site, "line"), 42);
		} else if (n == 3) {
			cr_assert_str_eq(rep_str(site, "pc"), "0x401010");
			cr_assert_str_eq(rep_str(site, "function"), "helper");
			cr_assert(rep_null(site, "file"));
			cr_assert(rep_null(site, "line"));
		} else {
			cr_assert_str_eq(rep_str(site, "pc"), "0x402000");
			cr_assert(rep_null(site, "function"));
			cr_assert(rep_null(site, "file"));
			cr_assert(rep_null(site, "line"));
		}
	}

	procs = rep_get(doc, "processes");
	cr_assert_eq(procs->u.array.len, 3);
	p = rep_at(procs, 0);
	cr_assert_eq(rep_int(p, "pid"), 1000);
	cr_assert_str_eq(rep_str(p, "mode"), "agent");
	cr_assert(!rep_get(rep_at(procs, 1), "mode"), "no mode: no key");
	cr_assert_str_eq(rep_str(rep_at(procs, 2), "mode"), "none");
	cr_assert_eq(rep_get(doc, "uncovered")->u.array.len, 2);
	cr_assert_eq(rep_int(rep_at(rep_get(doc, "uncovered"), 0), "pid"), 1003);
	cr_assert_str_eq(rep_str(rep_at(rep_get(doc, "uncovered"), 0), "exe"), "/bin/static helper");
	cr_assert(rep_null(rep_at(rep_get(doc, "uncovered"), 1), "exe"));
	cr_assert(rep_bool(p, "alive"));
	cr_assert(rep_null(p, "exit_status"));
	cr_assert(rep_null(p, "exit_signal"));
	cr_assert_eq(rep_get(p, "threads")->u.array.len, 2);
	th = rep_at(rep_get(p, "threads"), 0);
	cr_assert_eq(rep_int(th, "tid"), 1000);
	cr_assert_str_eq(rep_str(th, "name"), "main");
	bt = rep_get(th, "backtrace");
	cr_assert_eq(bt->u.array.len, 3, "cut at backtrace_limit");
	cr_assert_str_eq(rep_str(rep_at(bt, 0), "pc"), "0x401000");
	cr_assert_str_eq(rep_str(rep_at(bt, 0), "function"), "main");
	cr_assert_str_eq(rep_str(rep_at(bt, 0), "file"), "prog.c");
	cr_assert_eq(rep_int(rep_at(bt, 0), "line"), 42);
	cr_assert_str_eq(rep_str(rep_at(bt, 1), "pc"), "0x7f0000001234");
	cr_assert(rep_null(rep_at(bt, 1), "function"));
	cr_assert(rep_null(rep_at(bt, 1), "file"));
	cr_assert(rep_null(rep_at(bt, 1), "line"), "line 0 is unknown");
	cr_assert_str_eq(rep_str(rep_at(bt, 2), "function"), "helper");
	th = rep_at(rep_get(p, "threads"), 1);
	cr_assert(rep_null(th, "name"));
	cr_assert_eq(rep_get(th, "backtrace")->u.array.len, 1);

	mb = rep_at(rep_get(p, "mailboxes"), 0);
	cr_assert_eq(rep_int(mb, "fd"), 3);
	cr_assert_str_eq(rep_str(mb, "endpoint"), "pipe:[777]");
	cr_assert_eq(rep_int(mb, "pending"), 5);
	cr_assert(rep_null(mb, "messages"));
	cr_assert_str_eq(rep_str(mb, "data"), "ok\\x00\\n\\x80");
	cr_assert(!rep_bool(mb, "truncated"));
	cr_assert(rep_bool(mb, "approx"));
	cr_assert(rep_null(mb, "error"));
	mb = rep_at(rep_get(p, "mailboxes"), 1);
	cr_assert(rep_null(mb, "pending"));
	cr_assert(rep_null(mb, "data"), "no preview: null, not \"\"");
	cr_assert_str_eq(rep_str(mb, "error"), "EPERM: pidfd_getfd");
	cr_assert(rep_bool(mb, "approx"));
	mb = rep_at(rep_get(p, "mailboxes"), 2);
	cr_assert_eq(rep_int(mb, "pending"), 0);
	cr_assert_eq(rep_int(mb, "messages"), 2);
	cr_assert_str_eq(rep_str(mb, "data"), "", "an empty preview is \"\", not null");
	cr_assert(rep_bool(mb, "truncated"));

	p = rep_at(procs, 1);
	cr_assert(!rep_bool(p, "alive"));
	cr_assert(rep_null(p, "exit_status"));
	cr_assert_str_eq(rep_str(p, "exit_signal"), "SIGABRT");
	cr_assert_eq(rep_get(p, "threads")->u.array.len, 0);
	cr_assert_eq(rep_get(p, "mailboxes")->u.array.len, 0);
	p = rep_at(procs, 2);
	cr_assert_eq(rep_int(p, "exit_status"), 3);
	cr_assert(rep_null(p, "exit_signal"));

	v = rep_get(doc, "yield");
	cr_assert(rep_bool(v, "enabled"));
	cr_assert_eq(rep_int(v, "seed"), 42);
	cr_assert_str_eq(rep_str(v, "strategy"), "sleep");
	cr_assert(YAJL_IS_DOUBLE(rep_get(v, "probability")));
	cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(v, "probability")), "0.25");
	cr_assert_eq(rep_int(v, "sites"), 17);
	cr_assert_eq(rep_int(v, "injected"), 5);

	yajl_tree_free(doc);
	free(buf);
	tr_recorder_destroy(&r);
}

Test(report, nulls_when_absent)
{
	struct tr_recorder r;
	struct tr_report_meta m = { 0 };
	char *buf;
	yajl_val doc, v;

	cr_assert_eq(tr_recorder_init(&r, NULL), 0);
	m.key = "k";
	m.stop.status = -1;
	buf = rep_render(&r, &m, NULL);
	doc = rep_parse(buf);
	rep_check_shape(doc);
	cr_assert(rep_null(rep_get(doc, "program"), "path"));
	cr_assert_eq(rep_get(rep_get(doc, "program"), "argv")->u.array.len, 0);
	cr_assert(rep_null(doc, "started"));
	cr_assert(rep_null(doc, "debugger"));
	v = rep_get(doc, "stop");
	cr_assert(rep_null(v, "reason"));
	cr_assert(rep_null(v, "signal"));
	cr_assert(rep_null(v, "status"));
	cr_assert_eq(rep_get(doc, "events")->u.array.len, 0);
	cr_assert_eq(rep_get(doc, "processes")->u.array.len, 0);
	v = rep_get(doc, "recorder");
	cr_assert_eq(rep_int(v, "count"), 0);
	cr_assert_eq(rep_int(v, "backtrace"), 0, "the limit as given");
	cr_assert(!rep_bool(v, "frozen"));
	v = rep_get(doc, "yield");
	cr_assert(!rep_bool(v, "enabled"));
	cr_assert(rep_null(v, "strategy"));
	cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(v, "probability")), "0");
	yajl_tree_free(doc);
	free(buf);

	/* Exit status 0 is a status, not an absence. */
	m.stop.status = 0;
	m.stop.reason = "exit";
	buf = rep_render(&r, &m, NULL);
	doc = rep_parse(buf);
	cr_assert_eq(rep_int(rep_get(doc, "stop"), "status"), 0);
	yajl_tree_free(doc);
	free(buf);
	tr_recorder_destroy(&r);
}

Test(report, argv_ends_at_null_entry)
{
	struct tr_recorder r;
	struct tr_report_meta m = { 0 };
	const char *argv[] = { "a", NULL, "c" };
	char *buf;
	yajl_val doc;

	cr_assert_eq(tr_recorder_init(&r, NULL), 0);
	m.key = "k";
	m.argv = argv;
	m.argc = 3;
	buf = rep_render(&r, &m, NULL);
	doc = rep_parse(buf);
	cr_assert_eq(rep_get(rep_get(doc, "program"), "argv")->u.array.len, 1);
	yajl_tree_free(doc);
	free(buf);
	m.argv = NULL;   /* argc without argv: no crash, no entries */
	buf = rep_render(&r, &m, NULL);
	doc = rep_parse(buf);
	cr_assert_eq(rep_get(rep_get(doc, "program"), "argv")->u.array.len, 0);
	yajl_tree_free(doc);
	free(buf);
	tr_recorder_destroy(&r);
}

Test(report, signal_names)
{
	static const struct {
		int sig;
		const char *name;
	} cases[] = {
		{ SIGSEGV, "SIGSEGV" }, { SIGABRT, "SIGABRT" }, { SIGKILL, "SIGKILL" },
		{ SIGBUS, "SIGBUS" }, { SIGPIPE, "SIGPIPE" }, { 34, "SIG34" }, { 200, "SIG200" },
		{ -3, "SIG-3" },
	};
	struct tr_recorder r;
	struct tr_report_meta m = { 0 };
	struct tr_process proc = { .pid = 1 };
	size_t i;

	cr_assert_eq(tr_recorder_init(&r, NULL), 0);
	m.key = "k";
	m.processes = &proc;
	m.nprocesses = 1;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *buf;
		yajl_val doc;

		m.stop.signal = cases[i].sig;
		proc.exit_signal = cases[i].sig;
		buf = rep_render(&r, &m, NULL);
		doc = rep_parse(buf);
		cr_assert_str_eq(rep_str(rep_get(doc, "stop"), "signal"), cases[i].name);
		cr_assert_str_eq(rep_str(rep_at(rep_get(doc, "processes"), 0), "exit_signal"),
				 cases[i].name);
		yajl_tree_free(doc);
		free(buf);
	}
	tr_recorder_destroy(&r);
}

Test(report, addresses_are_hex_strings)
{
	static const struct {
		uint64_t pc;
		const char *s;
	} cases[] = {
		{ 0, "0x0" }, { 0x401000, "0x401000" }, { 0x7fffDEADBEEFull, "0x7fffdeadbeef" },
		{ UINT64_MAX, "0xffffffffffffffff" },
	};
	struct tr_recorder r;
	struct tr_recorder_config cfg = { .cap = 8, .payload = 0 };
	struct tr_report_meta m = { 0 };
	struct tr_frame frames[4];
	struct tr_thread th = { .tid = 1, .frames = frames, .nframes = 4 };
	struct tr_process proc = { .pid = 1, .threads = &th, .nthreads = 1 };
	yajl_val doc, bt;
	char *buf;
	size_t i;

	cr_assert_eq(tr_recorder_init(&r, &cfg), 0);
	for (i = 0; i < 4; i++) {
		struct tr_event ev = { .site = cases[i].pc, .fn = "write" };

		tr_recorder_push(&r, &ev, NULL, 0);
		frames[i] = (struct tr_frame){ .pc = cases[i].pc };
	}
	m.key = "k";
	m.processes = &proc;
	m.nprocesses = 1;
	m.backtrace_limit = 4;
	buf = rep_render(&r, &m, NULL);
	doc = rep_parse(buf);
	bt = rep_get(rep_at(rep_get(rep_at(rep_get(doc, "processes"), 0), "threads"), 0),
		     "backtrace");
	for (i = 0; i < 4; i++) {
		cr_assert_str_eq(rep_str(rep_get(rep_at(rep_get(doc, "events"), i), "site"), "pc"),
				 cases[i].s);
		cr_assert_str_eq(rep_str(rep_at(bt, i), "pc"), cases[i].s);
		cr_assert_str_eq(rep_str(rep_at(rep_get(doc, "events"), i), "data"), "",
				 "payload 0: empty previews");
	}
	yajl_tree_free(doc);
	free(buf);
	tr_recorder_destroy(&r);
}

Test(report, backtrace_limit)
{
	struct tr_recorder r;
	struct tr_report_meta m = { 0 };
	struct tr_frame frames[300];
	struct tr_thread th = { .tid = 1, .frames = frames, .nframes = 300 };
	struct tr_process proc = { .pid = 1, .threads = &th, .nthreads = 1 };
	static const struct {
		int limit, rendered;
	} cases[] = { { 1, 1 }, { 2, 2 }, { TR_BACKTRACE_DEFAULT, TR_BACKTRACE_DEFAULT },
		      { 256, 256 }, { 1000, TR_BACKTRACE_MAX }, { 0, 0 }, { -5, 0 } };
	size_t i;

	for (i = 0; i < 300; i++)
		frames[i] = (struct tr_frame){ .pc = 0x1000 + i, .line = (int)i };
	cr_assert_eq(tr_recorder_init(&r, NULL), 0);
	m.key = "k";
	m.processes = &proc;
	m.nprocesses = 1;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *buf;
		yajl_val doc, bt;

		m.backtrace_limit = cases[i].limit;
		buf = rep_render(&r, &m, NULL);
		doc = rep_parse(buf);
		cr_assert_eq(rep_int(rep_get(doc, "recorder"), "backtrace"), cases[i].rendered);
		bt = rep_get(rep_at(rep_get(rep_at(rep_get(doc, "processes"), 0), "threads"), 0),
			     "backtrace");
		cr_assert_eq(bt->u.array.len, (size_t)cases[i].rendered, "limit %d", cases[i].limit);
		if (cases[i].rendered)
			cr_assert_str_eq(rep_str(rep_at(bt, 0), "pc"), "0x1000", "innermost first");
		yajl_tree_free(doc);
		free(buf);
	}
	/* Fewer frames than the limit: all of them. */
	th.nframes = 2;
	m.backtrace_limit = 16;
	{
		char *buf = rep_render(&r, &m, NULL);
		yajl_val doc = rep_parse(buf);
		yajl_val bt = rep_get(rep_at(rep_get(rep_at(rep_get(doc, "processes"), 0),
						     "threads"), 0), "backtrace");

		cr_assert_eq(bt->u.array.len, 2);
		cr_assert(rep_null(rep_at(bt, 0), "line"), "line 0 is null");
		cr_assert_eq(rep_int(rep_at(bt, 1), "line"), 1);
		yajl_tree_free(doc);
		free(buf);
	}
	tr_recorder_destroy(&r);
}

Test(report, invalid_utf8_and_controls_in_text_stay_valid_json)
{
	struct tr_recorder r;
	struct tr_report_meta m = { 0 };
	struct tr_frame frame = { 0x10, "f\xc3", "/src/\xff\xfe.c", 3 };
	struct tr_thread th = { .tid = 7, .name = "w\xff\xfe\x01rk\xc3\xa9r\\", .frames = &frame,
				.nframes = 1 };
	struct tr_mailbox mbox = { .fd = 1, .endpoint = "unix:/tmp/\x80sock", .pending = -1,
				   .messages = -1, .error = "bad\nline" };
	struct tr_process proc = { .pid = 1, .threads = &th, .nthreads = 1, .mailboxes = &mbox,
				   .nmailboxes = 1 };
	const char *argv[] = { "\xed\xa0\x80", "tab\there" };
	struct tr_event ev = { .fn = "write" };
	char *buf, back[64];
	yajl_val doc, t;
	const char *name;
	long n;

	cr_assert_eq(tr_recorder_init(&r, NULL), 0);
	strcpy(ev.endpoint, "unix:/\xc0\xaf\x1b[31m");
	tr_recorder_push(&r, &ev, NULL, 0);
	m.key = "key\xff";
	m.program = "/bin/\xe2\x82\xac\xe2\x82";
	m.argv = argv;
	m.argc = 2;
	m.debugger = "gdb\x7f";
	m.processes = &proc;
	m.nprocesses = 1;
	m.yield.strategy = "\"quoted\"";
	m.backtrace_limit = 1;
	buf = rep_render(&r, &m, NULL);
	doc = rep_parse(buf);   /* yajl_tree_parse validates UTF-8 */
	rep_check_shape(doc);

	t = rep_at(rep_get(rep_at(rep_get(doc, "processes"), 0), "threads"), 0);
	name = rep_str(t, "name");
	cr_assert_str_eq(name, "w\\xff\\xfe\\x01rk\xc3\xa9r\\\\", "valid UTF-8 stays readable");
	n = tr_unescape_text(name, strlen(name), back);
	cr_assert_eq(n, (long)strlen(th.name));
	cr_assert_eq(memcmp(back, th.name, (size_t)n), 0, "and the bytes come back");
	cr_assert_str_eq(rep_str(doc, "key"), "key\\xff");
	cr_assert_str_eq(rep_str(rep_get(doc, "program"), "path"), "/bin/\xe2\x82\xac\\xe2\\x82");
	cr_assert_str_eq(YAJL_GET_STRING(rep_at(rep_get(rep_get(doc, "program"), "argv"), 0)),
			 "\\xed\\xa0\\x80");
	cr_assert_str_eq(YAJL_GET_STRING(rep_at(rep_get(rep_get(doc, "program"), "argv"), 1)),
			 "tab\\there");
	cr_assert_str_eq(rep_str(doc, "debugger"), "gdb\\x7f");
	cr_assert_str_eq(rep_str(rep_at(rep_get(doc, "events"), 0), "endpoint"),
			 "unix:/\\xc0\\xaf\\x1b[31m");
	cr_assert_str_eq(rep_str(rep_at(rep_get(t, "backtrace"), 0), "function"), "f\\xc3");
	cr_assert_str_eq(rep_str(rep_at(rep_get(t, "backtrace"), 0), "file"), "/src/\\xff\\xfe.c");
	t = rep_at(rep_get(rep_at(rep_get(doc, "processes"), 0), "mailboxes"), 0);
	cr_assert_str_eq(rep_str(t, "endpoint"), "unix:/tmp/\\x80sock");
	cr_assert_str_eq(rep_str(t, "error"), "bad\\nline");
	cr_assert_str_eq(rep_str(rep_get(doc, "yield"), "strategy"), "\"quoted\"");
	yajl_tree_free(doc);
	free(buf);
	tr_recorder_destroy(&r);
}

Test(report, endpoint_without_nul_is_bounded)
{
	struct tr_recorder r;
	struct tr_report_meta m = { .key = "k" };
	struct tr_event ev = { .fn = "write" };
	char *buf;
	yajl_val doc;

	cr_assert_eq(tr_recorder_init(&r, NULL), 0);
	memset(ev.endpoint, 'e', sizeof(ev.endpoint));   /* a decoder bug: no terminator */
	tr_recorder_push(&r, &ev, NULL, 0);
	buf = rep_render(&r, &m, NULL);
	doc = rep_parse(buf);
	cr_assert_eq(strlen(rep_str(rep_at(rep_get(doc, "events"), 0), "endpoint")),
		     TR_ENDPOINT_MAX);
	yajl_tree_free(doc);
	free(buf);
	tr_recorder_destroy(&r);
}

Test(report, numbers_exact)
{
	struct tr_recorder r;
	struct tr_report_meta m = { .key = "k" };
	static const struct {
		double p;
		const char *s;
	} probs[] = { { 0.1, "0.1" }, { 1, "1" }, { 0.3333333333333333, "0.3333333333333333" },
		      { 1e-300, "1e-300" }, { -2.5, "-2.5" } };
	char *buf;
	yajl_val doc;
	size_t i;

	cr_assert_eq(tr_recorder_init(&r, NULL), 0);
	m.yield.seed = UINT64_MAX;
	m.yield.sites = INT64_MAX;
	m.yield.injected = 0;
	for (i = 0; i < sizeof(probs) / sizeof(probs[0]); i++) {
		m.yield.probability = probs[i].p;
		buf = rep_render(&r, &m, NULL);
		doc = rep_parse(buf);
		cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(rep_get(doc, "yield"), "probability")),
				 probs[i].s);
		cr_assert_eq(strtod(probs[i].s, NULL), probs[i].p);
		/* Seeds are unsigned 64-bit: written in full, not wrapped to negative. */
		cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(rep_get(doc, "yield"), "seed")),
				 "18446744073709551615");
		cr_assert_eq(rep_int(rep_get(doc, "yield"), "sites"), INT64_MAX);
		yajl_tree_free(doc);
		free(buf);
	}
	/* Integers at the edges of int64, written by hand rather than by printf. */
	{
		struct tr_event ev = { .fn = "write", .fd = -1, .len = INT64_MAX, .ret = INT64_MIN,
				       .returned = true, .err = 0, .pid = -7 };
		yajl_val e;

		tr_recorder_push(&r, &ev, NULL, 0);
		m.yield.sites = INT64_MIN;
		m.yield.injected = 0;
		buf = rep_render(&r, &m, NULL);
		doc = rep_parse(buf);
		e = rep_at(rep_get(doc, "events"), 0);
		cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(e, "ret")), "-9223372036854775808");
		cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(e, "len")), "9223372036854775807");
		cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(e, "fd")), "-1");
		cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(e, "pid")), "-7");
		cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(e, "errno")), "0");
		cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(e, "seq")), "0");
		cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(rep_get(doc, "yield"), "sites")),
				 "-9223372036854775808");
		cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(rep_get(doc, "yield"), "injected")), "0");
		yajl_tree_free(doc);
		free(buf);
	}
	m.yield.probability = NAN;
	buf = rep_render(&r, &m, NULL);
	doc = rep_parse(buf);
	cr_assert(rep_null(rep_get(doc, "yield"), "probability"), "NaN is not JSON: null");
	yajl_tree_free(doc);
	free(buf);
	m.yield.probability = INFINITY;
	buf = rep_render(&r, &m, NULL);
	doc = rep_parse(buf);
	cr_assert(rep_null(rep_get(doc, "yield"), "probability"));
	yajl_tree_free(doc);
	free(buf);
	tr_recorder_destroy(&r);
}

/* gdb or Python may have switched LC_NUMERIC to a locale whose decimal point is ','. */
Test(report, numbers_ignore_host_locale)
{
	struct tr_recorder r;
	struct tr_report_meta m = { .key = "k" };
	char dir[64] = "", cmd[256], *buf;
	yajl_val doc;

	if (!setlocale(LC_NUMERIC, "de_DE.UTF-8")) {
		/* No such locale installed: compile one privately, if the tools are there. */
		if (access("/usr/bin/localedef", X_OK) != 0)
			cr_skip_test("no de_DE locale and no localedef");
		rep_tmpdir(dir, sizeof(dir));
		snprintf(cmd, sizeof(cmd),
			 "/usr/bin/localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1", dir);
		if (system(cmd) != 0) {
			rep_rm_rf(dir);
			cr_skip_test("localedef could not build de_DE.UTF-8");
		}
		setenv("LOCPATH", dir, 1);
		cr_assert_not_null(setlocale(LC_NUMERIC, "de_DE.UTF-8"));
	}
	snprintf(cmd, sizeof(cmd), "%.1f", 0.5);
	cr_assert_str_eq(cmd, "0,5", "the locale is in effect");

	cr_assert_eq(tr_recorder_init(&r, NULL), 0);
	m.yield.probability = 0.5;
	buf = rep_render(&r, &m, NULL);
	setlocale(LC_NUMERIC, "C");
	doc = rep_parse(buf);
	cr_assert_str_eq(YAJL_GET_NUMBER(rep_get(rep_get(doc, "yield"), "probability")), "0.5");
	yajl_tree_free(doc);
	free(buf);
	tr_recorder_destroy(&r);
	if (dir[0])
		rep_rm_rf(dir);
}

Test(report, bad_arguments)
{
	struct tr_recorder r;
	struct tr_report_meta m = { 0 };
	char *buf = (char *)1;
	size_t len = 99;

	cr_assert_eq(tr_recorder_init(&r, NULL), 0);
	cr_assert_eq(tr_report_render(&r, &m, &buf, &len), -EINVAL, "a report needs its key");
	cr_assert_null(buf);
	cr_assert_eq(len, 0);
	m.key = "k";
	cr_assert_eq(tr_report_render(NULL, &m, &buf, &len), -EINVAL);
	cr_assert_eq(tr_report_render(&r, NULL, &buf, &len), -EINVAL);
	cr_assert_eq(tr_report_render(&r, &m, NULL, &len), -EINVAL);
	cr_assert_eq(tr_report_render(&r, &m, &buf, NULL), 0, "out_len is optional");
	free(buf);
	tr_recorder_destroy(&r);
}

Test(report, render_leaves_recorder_alone)
{
	struct tr_recorder r, copy;
	struct rep_clock clk;
	int calls = 0;
	struct tr_report_meta m = rep_meta(&calls);
	char *a, *b;

	rep_recorder(&r, &clk);
	copy = r;
	a = rep_render(&r, &m, NULL);
	b = rep_render(&r, &m, NULL);
	cr_assert_str_eq(a, b, "rendering is deterministic");
	cr_assert_eq(memcmp(&copy, &r, sizeof(r)), 0);
	free(a);
	free(b);
	tr_recorder_destroy(&r);
}

Test(report, full_size_report)
{
	struct tr_recorder r;
	struct tr_recorder_config cfg = { .cap = 5000, .budget = 5000, .payload = 64 };
	struct tr_report_meta m = { .key = "big" };
	uint8_t payload[64];
	char *buf;
	size_t i, len;
	yajl_val doc;

	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 37);
	cr_assert_eq(tr_recorder_init(&r, &cfg), 0);
	for (i = 0; i < 5000; i++) {
		struct tr_event ev = { .fn = "send", .fd = 5, .len = 64, .site = i };

		strcpy(ev.endpoint, "tcp:127.0.0.1:5000->127.0.0.1:41234");
		tr_recorder_push(&r, &ev, payload, sizeof(payload));
	}
	cr_assert(r.overflow);
	tr_recorder_freeze(&r);
	buf = rep_render(&r, &m, &len);
	doc = rep_parse(buf);
	cr_assert_eq(rep_get(doc, "events")->u.array.len, 5000);
	cr_assert_eq(rep_int(rep_at(rep_get(doc, "events"), 4999), "seq"), 4999);
	cr_assert(rep_bool(rep_get(doc, "recorder"), "overflow"));
	yajl_tree_free(doc);
	free(buf);
	tr_recorder_destroy(&r);
}

/* ---- through the store and back ---- */

Test(report, every_byte_round_trips_through_store_and_load)
{
	struct tr_recorder r;
	struct tr_recorder_config cfg = { .cap = 300, .budget = 1000, .payload = 256 };
	struct tr_report_meta m = { .key = "all-bytes" };
	uint8_t all[256], back[256 * 4];
	struct tr_mailbox mbox = { .fd = 3, .endpoint = "pipe:[1]", .pending = 256, .messages = -1,
				   .data = all, .data_len = 256 };
	struct tr_process proc = { .pid = 1, .mailboxes = &mbox, .nmailboxes = 1 };
	char dir[64], path[256], err[256];
	char *buf;
	size_t i, len;
	yajl_val doc, events;
	long n;

	for (i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	cr_assert_eq(tr_recorder_init(&r, &cfg), 0);
	{
		struct tr_event ev = { .fn = "write", .len = 256 };

		tr_recorder_push(&r, &ev, all, 256);   /* all bytes in one message */
		for (i = 0; i < 256; i++)              /* and each byte alone */
			tr_recorder_push(&r, &ev, &all[i], 1);
	}
	m.processes = &proc;
	m.nprocesses = 1;
	buf = rep_render(&r, &m, &len);

	rep_tmpdir(dir, sizeof(dir));
	cr_assert_eq(tr_store_put(dir, m.key, buf, len, path, sizeof(path)), 0);
	cr_assert_eq(tr_report_load(path, &doc, err, sizeof(err)), 0, "%s", err);
	rep_check_shape(doc);

	events = rep_get(doc, "events");
	cr_assert_eq(events->u.array.len, 257);
	{
		const char *s = rep_str(rep_at(events, 0), "data");

		n = tr_unescape(s, strlen(s), back);
		cr_assert_eq(n, 256);
		cr_assert_eq(memcmp(back, all, 256), 0);
		cr_assert(!rep_bool(rep_at(events, 0), "truncated"));
	}
	for (i = 0; i < 256; i++) {
		const char *s = rep_str(rep_at(events, 1 + i), "data");

		n = tr_unescape(s, strlen(s), back);
		cr_assert_eq(n, 1, "byte 0x%02zx", i);
		cr_assert_eq(back[0], i, "byte 0x%02zx", i);
	}
	{
		yajl_val mb = rep_at(rep_get(rep_at(rep_get(doc, "processes"), 0), "mailboxes"), 0);
		const char *s = rep_str(mb, "data");

		n = tr_unescape(s, strlen(s), back);
		cr_assert_eq(n, 256);
		cr_assert_eq(memcmp(back, all, 256), 0);
	}
	yajl_tree_free(doc);
	free(buf);
	tr_recorder_destroy(&r);
	rep_rm_rf(dir);
}

/* ---- the reader ---- */

static void rep_expect_load_error(const char *path, int want, const char *what)
{
	char err[256] = "untouched";
	yajl_val doc = (yajl_val)1;

	cr_assert_eq(tr_report_load(path, &doc, err, sizeof(err)), want, "%s", what);
	cr_assert_null(doc);
	cr_assert_neq(err[0], '\0', "%s: a message", what);
	cr_assert_null(strchr(err, '\n'), "%s: one line: %s", what, err);
	cr_assert_neq(strcmp(err, "untouched"), 0);
}

Test(report_read, errors)
{
	static const struct {
		const char *body;
		size_t len;
		const char *what;
	} bad[] = {
		{ "{\"version\": 1,", 14, "cut short" },
		{ "{\"version\": 1} x", 16, "trailing garbage" },
		{ "{\"version\": 2}", 14, "unknown version" },
		{ "{\"version\": \"1\"}", 16, "version as a string" },
		{ "{\"version\": 1.0}", 16, "version not an integer" },
		{ "{}", 2, "no version" },
		{ "[1]", 3, "not an object" },
		{ "", 0, "empty" },
		{ "{\"version\": 1}\0", 15, "NUL byte" },
		{ "{\"version\": 1, \"x\": \"\xff\"}", 25, "invalid UTF-8" },
	};
	char dir[64], path[128];
	size_t i;

	rep_tmpdir(dir, sizeof(dir));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "%s/bad%zu.json", dir, i);
		rep_write_file(path, bad[i].body, bad[i].len);
		rep_expect_load_error(path, -EINVAL, bad[i].what);
	}
	snprintf(path, sizeof(path), "%s/missing.json", dir);
	rep_expect_load_error(path, -ENOENT, "missing");
	rep_expect_load_error(dir, -EISDIR, "a directory");
	snprintf(path, sizeof(path), "%s/fifo", dir);
	cr_assert_eq(mkfifo(path, 0600), 0);
	rep_expect_load_error(path, -EINVAL, "a FIFO (and it must not block)");
	rep_expect_load_error("/dev/null", -EINVAL, "a device");

	/* Larger than the limit: refused before reading (sparse, so cheap to make). */
	snprintf(path, sizeof(path), "%s/huge.json", dir);
	{
		int fd = open(path, O_CREAT | O_WRONLY, 0600);

		cr_assert_geq(fd, 0);
		cr_assert_eq(ftruncate(fd, (off_t)TR_REPORT_READ_MAX + 1), 0);
		close(fd);
	}
	rep_expect_load_error(path, -EFBIG, "too large");
	rep_rm_rf(dir);
}

Test(report_read, ok_and_optional_err)
{
	char dir[64], path[128];
	yajl_val doc;

	rep_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/ok.json", dir);
	{
		/* the smallest report the schema allows */
		static const char ok[] =
			"{\"version\":1,\"key\":\"k\",\"program\":{\"path\":null,\"argv\":[],"
			"\"pid\":1},\"started\":null,\"debugger\":null,\"stop\":{\"reason\":null,"
			"\"signal\":null,\"status\":null,\"pid\":1,\"tid\":1},\"recorder\":{"
			"\"cap\":1,\"budget\":1,\"payload\":0,\"backtrace\":0,\"count\":0,"
			"\"dropped\":0,\"overflow\":false,\"frozen\":true},\"events\":[],"
			"\"processes\":[],\"yield\":{\"enabled\":false,\"seed\":0,"
			"\"strategy\":null,\"probability\":null,\"sites\":0,\"injected\":0}}\n";

		rep_write_file(path, ok, sizeof(ok) - 1);
	}
	cr_assert_eq(tr_report_load(path, &doc, NULL, 0), 0);
	cr_assert_str_eq(rep_str(doc, "key"), "k");
	yajl_tree_free(doc);
	snprintf(path, sizeof(path), "%s/nope.json", dir);
	cr_assert_eq(tr_report_load(path, &doc, NULL, 0), -ENOENT, "err may be NULL");
	cr_assert_eq(tr_report_load(NULL, &doc, NULL, 0), -EINVAL);
	rep_rm_rf(dir);
}

/* ---- the schema ---- */

/* docs/report.schema.json from the repo root (the usual cwd), or next to this file. */
static bool rep_find_schema(char *out, size_t size)
{
	const char *env = getenv("TRACER_SCHEMA");
	const char *here = __FILE__, *tail = strstr(here, "tests/unit/");

	if (env && access(env, R_OK) == 0) {
		snprintf(out, size, "%s", env);
		return true;
	}
	if (access("docs/report.schema.json", R_OK) == 0) {
		snprintf(out, size, "docs/report.schema.json");
		return true;
	}
	if (tail) {
		snprintf(out, size, "%.*sdocs/report.schema.json", (int)(tail - here), here);
		return access(out, R_OK) == 0;
	}
	return false;
}

/* Validates each report against the schema, and checks the schema is strict: a report with an
 * extra key, a missing key, or a bad pc must fail. Exit 77: no jsonschema here. */
static const char rep_validator[] =
	"import copy, json, sys\n"
	"try:\n"
	"    import jsonschema\n"
	"except ImportError:\n"
	"    sys.exit(77)\n"
	"schema = json.load(open(sys.argv[1]))\n"
	"cls = jsonschema.validators.validator_for(schema)\n"
	"cls.check_schema(schema)\n"
	"v = cls(schema)\n"
	"docs = [json.load(open(p)) for p in sys.argv[2:]]\n"
	"for d in docs:\n"
	"    v.validate(d)\n"
	"d = docs[0]\n"
	"def bad(mutate, what):\n"
	"    x = copy.deepcopy(d)\n"
	"    mutate(x)\n"
	"    if v.is_valid(x):\n"
	"        print('schema accepts', what); sys.exit(1)\n"
	"bad(lambda x: x.update(extra=1), 'an extra root key')\n"
	"bad(lambda x: x.pop('yield'), 'a missing key')\n"
	"bad(lambda x: x.update(version=2), 'version 2')\n"
	"bad(lambda x: x['events'][0].update(extra=1), 'an extra event key')\n"
	"bad(lambda x: x['events'][0]['site'].update(pc='401000'), 'a pc without 0x')\n"
	"bad(lambda x: x['events'][0]['site'].update(pc='0x40100G'), 'a pc with a non-hex digit')\n"
	"bad(lambda x: x['events'][0].update(dir='both'), 'a bad dir')\n"
	"bad(lambda x: x['recorder'].pop('frozen'), 'a missing recorder key')\n"
	"bad(lambda x: x['stop'].update(signal='SEGV'), 'a signal without SIG')\n"
	"bad(lambda x: x['processes'][0]['threads'][0]['backtrace'][0].update(x=1), 'frame key')\n"
	"bad(lambda x: x['processes'][0]['mailboxes'][0].update(approx=False), 'approx false')\n"
	"bad(lambda x: x['processes'][0].update(threads={}), 'threads not an array')\n"
	"bad(lambda x: x['processes'][0].update(mode='both'), 'an unknown process mode')\n"
	"bad(lambda x: x['uncovered'][0].pop('why'), 'an uncovered process without why')\n"
	"bad(lambda x: x['program']['argv'].append(3), 'a number in argv')\n"
	"sys.exit(0)\n";

Test(report, reports_match_the_schema)
{
	struct tr_recorder r, empty, bytes;
	struct tr_recorder_config cfg = { .cap = 300, .budget = 300, .payload = 256 };
	struct rep_clock clk;
	int calls = 0, status;
	struct tr_report_meta m = rep_meta(&calls), minimal = { .key = "min" };
	char schema[512], dir[64], cmd[2048], paths[3][128], script[128];
	uint8_t all[256];
	size_t i, len;
	char *buf;

	if (!rep_find_schema(schema, sizeof(schema)))
		cr_skip_test("docs/report.schema.json not found (set TRACER_SCHEMA)");
	if (access("/usr/bin/python3", X_OK) != 0)
		cr_skip_test("no /usr/bin/python3");

	rep_recorder(&r, &clk);
	cr_assert_eq(tr_recorder_init(&empty, NULL), 0);
	cr_assert_eq(tr_recorder_init(&bytes, &cfg), 0);
	for (i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	for (i = 0; i < 300; i++) {
		struct tr_event ev = { .fn = "sendto", .dir = TR_DIR_SEND, .site = UINT64_MAX - i };

		tr_recorder_push(&bytes, &ev, all, i);
	}
	minimal.stop.status = -1;

	rep_tmpdir(dir, sizeof(dir));
	for (i = 0; i < 3; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/r%zu.json", dir, i);
		buf = rep_render(i == 0 ? &r : i == 1 ? &empty : &bytes, i == 1 ? &minimal : &m, &len);
		rep_write_file(paths[i], buf, len);
		free(buf);
	}
	snprintf(script, sizeof(script), "%s/validate.py", dir);
	rep_write_file(script, rep_validator, strlen(rep_validator));
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s '%s' %s %s %s", script, schema, paths[0],
		 paths[1], paths[2]);
	status = system(cmd);
	cr_assert(WIFEXITED(status), "validator did not run");
	if (WEXITSTATUS(status) == 77) {
		rep_rm_rf(dir);
		cr_skip_test("python3 has no jsonschema module");
	}
	cr_assert_eq(WEXITSTATUS(status), 0, "reports and schema disagree (see stdout)");
	rep_rm_rf(dir);
	tr_recorder_destroy(&r);
	tr_recorder_destroy(&empty);
	tr_recorder_destroy(&bytes);
}
