/* report_read.c - load a stored report, treating the file as hostile.
 *
 *   1. a bounded read of a regular file (size limit, no FIFO, no device, no NUL byte);
 *   2. a first pass with yajl's event parser, which is iterative: it checks the syntax (strict
 *      JSON: no comments, no trailing garbage, valid UTF-8) and counts nesting depth and values,
 *      stopping at the first array or object past TR_REPORT_DEPTH_MAX and at the value past
 *      TR_REPORT_VALUES_MAX;
 *   3. only then yajl_tree_parse, whose tree (and yajl_tree_free, and any recursive walk of the
 *      tree, like the Python binding's) is now at most TR_REPORT_DEPTH_MAX deep;
 *   4. the schema check: required keys, their types, enums and bounds. It walks the schema,
 *      not the tree, so its own depth is fixed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_parse.h>
#include "escape.h"
#include "report.h"
#include "report_read.h"

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;
	char *p;

	if (!err || !err_size)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
	/* One line: yajl's messages span several, with a caret under the error. */
	for (p = err; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	while (p > err && p[-1] == ' ')
		*--p = '\0';
}

/* Reads all of fd (at most max bytes; more is -EFBIG) into a NUL-terminated buffer. */
static int read_all(int fd, size_t hint, size_t max, char **out, size_t *out_len)
{
	size_t alloc = (hint < 4096 ? 4096 : hint) + 2, len = 0;
	char *buf, *p;
	int rc = 0;

	/* Room for one byte past the size seen by fstat: EOF must be read to be believed. */
	if (alloc > max + 2)
		alloc = max + 2;
	buf = malloc(alloc);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len + 1 == alloc) {
			/* The file grew after fstat (or fstat did not know its size). */
			if (len > max) {
				rc = -EFBIG;
				goto out;
			}
			alloc = alloc > (max + 2) / 2 ? max + 2 : alloc * 2;
			p = realloc(buf, alloc);
			if (!p) {
				rc = -ENOMEM;
				goto out;
			}
			buf = p;
		}
		n = read(fd, buf + len, alloc - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		rc = -EFBIG;
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	buf = NULL;
out:
	free(buf);
	return rc;
}

/* ---- pass 1: syntax, depth and size, without building anything ---- */

struct scan {
	unsigned depth, values;
	bool too_deep, too_many;
};

static int scan_value(void *ctx)
{
	struct scan *s = ctx;

	if (++s->values > TR_REPORT_VALUES_MAX) {
		s->too_many = true;
		return 0;
	}
	return 1;
}

static int scan_null(void *ctx) { return scan_value(ctx); }
static int scan_bool(void *ctx, int b) { return scan_value(ctx); }
static int scan_number(void *ctx, const char *s, size_t n) { return scan_value(ctx); }
static int scan_string(void *ctx, const unsigned char *s, size_t n) { return scan_value(ctx); }
static int scan_key(void *ctx, const unsigned char *s, size_t n) { return 1; }

static int scan_open(void *ctx)
{
	struct scan *s = ctx;

	if (++s->depth > TR_REPORT_DEPTH_MAX) {
		s->too_deep = true;
		return 0;
	}
	return scan_value(ctx);
}

static int scan_close(void *ctx)
{
	((struct scan *)ctx)->depth--;
	return 1;
}

static const yajl_callbacks scan_callbacks = {
	.yajl_null = scan_null,
	.yajl_boolean = scan_bool,
	.yajl_number = scan_number,     /* raw text: no integer overflow errors in this pass */
	.yajl_string = scan_string,
	.yajl_start_map = scan_open,
	.yajl_map_key = scan_key,
	.yajl_end_map = scan_close,
	.yajl_start_array = scan_open,
	.yajl_end_array = scan_close,
};

static int prescan(const char *buf, size_t len, char *err, size_t err_size)
{
	struct scan s = { 0 };
	yajl_handle h = yajl_alloc(&scan_callbacks, NULL, &s);
	yajl_status st;
	int rc = 0;

	if (!h) {
		set_err(err, err_size, "out of memory");
		return -ENOMEM;
	}
	/* yajl's defaults are strict JSON: no comments, one value, nothing after it, UTF-8
	 * checked. (yajl_tree_parse would allow comments; none can be left for it.) */
	st = yajl_parse(h, (const unsigned char *)buf, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	if (st != yajl_status_ok) {
		rc = -EINVAL;
		if (s.too_deep) {
			set_err(err, err_size, "nested deeper than %d levels", TR_REPORT_DEPTH_MAX);
		} else if (s.too_many) {
			set_err(err, err_size, "more than %u JSON values", TR_REPORT_VALUES_MAX);
		} else {
			unsigned char *msg = yajl_get_error(h, 0, NULL, 0);

			set_err(err, err_size, "%s", msg ? (const char *)msg : "malformed JSON");
			if (msg)
				yajl_free_error(h, msg);
		}
	}
	yajl_free(h);
	return rc;
}

/* ---- the schema ---- */

enum kind {
	K_TEXT,        /* string */
	K_TEXT_NULL,   /* string or null */
	K_SIGNAL_NULL, /* "SIG..." or null */
	K_INT,         /* signed 64-bit integer (with bounds when has_min/has_max) */
	K_INT_NULL,
	K_U64,         /* unsigned 64-bit integer */
	K_BOOL,
	K_NUMBER_NULL, /* finite number or null */
	K_PAYLOAD,     /* an escaped payload that tr_unescape accepts */
	K_PAYLOAD_NULL,
	K_ADDRESS,     /* "0x" lowercase hex, no leading zeros, at most 16 digits */
	K_DIR,         /* "send" or "recv" */
	K_TRUE,        /* the constant true */
	K_OBJECT,      /* sub: its fields */
	K_TEXT_ARRAY,  /* array of strings */
	K_INT_ARRAY,   /* array of integers */
	K_OBJECT_ARRAY,/* array of objects, each with the fields in sub */
};

struct field {
	const char *key;
	enum kind kind;
	const struct field *sub;
	bool has_min, has_max;
	long long min, max;
	bool optional;          /* added after version 1 came out: may be absent */
};

#define F(k, kind) { k, kind, NULL, false, false, 0, 0, false }
#define FMIN(k, kind, lo) { k, kind, NULL, true, false, lo, 0, false }
#define FRANGE(k, kind, lo, hi) { k, kind, NULL, true, true, lo, hi, false }
#define FSUB(k, kind, sub) { k, kind, sub, false, false, 0, 0, false }
#define FOPT(k, kind, sub) { k, kind, sub, false, false, 0, 0, true }
#define FOPTMIN(k, kind, lo) { k, kind, NULL, true, false, lo, 0, true }
#define FEND { NULL, K_TEXT, NULL, false, false, 0, 0, false }

static const struct field frame_fields[] = {
	F("pc", K_ADDRESS), F("function", K_TEXT_NULL), F("file", K_TEXT_NULL),
	FMIN("line", K_INT_NULL, 1), FEND,
};
static const struct field program_fields[] = {
	F("path", K_TEXT_NULL), F("argv", K_TEXT_ARRAY), F("pid", K_INT), FEND,
};
static const struct field stop_fields[] = {
	F("reason", K_TEXT_NULL), F("signal", K_SIGNAL_NULL), FMIN("status", K_INT_NULL, 0),
	F("pid", K_INT), F("tid", K_INT), FEND,
};
static const struct field recorder_fields[] = {
	FRANGE("cap", K_INT, 1, 100000), FRANGE("budget", K_INT, 1, 100000000),
	FRANGE("payload", K_INT, 0, 4096), FRANGE("backtrace", K_INT, 0, 256),
	FMIN("count", K_INT, 0), FMIN("dropped", K_INT, 0), F("overflow", K_BOOL),
	F("frozen", K_BOOL), FEND,
};
static const struct field event_fields[] = {
	FMIN("seq", K_INT, 0), FMIN("t_us", K_INT, 0), F("pid", K_INT), F("tid", K_INT),
	F("dir", K_DIR), F("fn", K_TEXT_NULL), F("fd", K_INT), F("endpoint", K_TEXT),
	F("len", K_INT), F("ret", K_INT_NULL), F("errno", K_INT), F("data", K_PAYLOAD),
	F("truncated", K_BOOL), FSUB("site", K_OBJECT, frame_fields), FEND,
};
static const struct field thread_fields[] = {
	F("tid", K_INT), F("name", K_TEXT_NULL),
	FSUB("backtrace", K_OBJECT_ARRAY, frame_fields), FEND,
};
static const struct field mailbox_fields[] = {
	F("fd", K_INT), F("endpoint", K_TEXT_NULL), FMIN("pending", K_INT_NULL, 0),
	FMIN("messages", K_INT_NULL, 0), F("data", K_PAYLOAD_NULL), F("truncated", K_BOOL),
	F("approx", K_TRUE), F("error", K_TEXT_NULL), FEND,
};
static const struct field process_fields[] = {
	F("pid", K_INT), F("alive", K_BOOL), FMIN("exit_status", K_INT_NULL, 0),
	F("exit_signal", K_SIGNAL_NULL), FSUB("threads", K_OBJECT_ARRAY, thread_fields),
	FSUB("mailboxes", K_OBJECT_ARRAY, mailbox_fields), FOPT("mode", K_TEXT, NULL), FEND,
};
static const struct field uncovered_fields[] = {
	FMIN("pid", K_INT, 0), F("exe", K_TEXT_NULL), F("why", K_TEXT), FEND,
};
static const struct field yield_fields[] = {
	F("enabled", K_BOOL), F("seed", K_U64), F("strategy", K_TEXT_NULL),
	F("probability", K_NUMBER_NULL), F("sites", K_INT), F("injected", K_INT),
	FOPT("classes", K_TEXT, NULL), FOPT("module", K_TEXT_NULL, NULL),
	FOPT("functions", K_TEXT_ARRAY, NULL),
	FOPTMIN("depth", K_INT, 1), FOPTMIN("pct_steps", K_INT, 1),
	FOPT("change_points", K_INT_ARRAY, NULL), FOPTMIN("changes_taken", K_INT, 0),
	FOPTMIN("steals", K_INT, 0),
	FOPTMIN("library_sites", K_INT, 1), FOPTMIN("library_injected", K_INT, 0),
	FEND,
};
static const struct field filter_fields[] = {
	F("trace", K_TEXT), F("status", K_TEXT), F("endpoint", K_TEXT),
	FMIN("filtered", K_INT, 0), FEND,
};
static const struct field report_fields[] = {
	/* "version" is checked first, on its own, for a clearer message */
	F("key", K_TEXT), FSUB("program", K_OBJECT, program_fields), F("started", K_TEXT_NULL),
	F("debugger", K_TEXT_NULL), FOPT("mode", K_TEXT, NULL), FOPTMIN("timeout", K_INT, 0),
	FOPT("filter", K_OBJECT, filter_fields), FSUB("stop", K_OBJECT, stop_fields),
	FSUB("recorder", K_OBJECT, recorder_fields),
	FSUB("events", K_OBJECT_ARRAY, event_fields),
	FSUB("processes", K_OBJECT_ARRAY, process_fields),
	FOPT("uncovered", K_OBJECT_ARRAY, uncovered_fields),
	FSUB("yield", K_OBJECT, yield_fields), FEND,
};

static const char *const kind_text[] = {
	[K_TEXT] = "a string", [K_TEXT_NULL] = "a string or null",
	[K_SIGNAL_NULL] = "a signal name (\"SIGSEGV\") or null",
	[K_INT] = "an integer", [K_INT_NULL] = "an integer or null",
	[K_U64] = "an unsigned 64-bit integer", [K_BOOL] = "true or false",
	[K_NUMBER_NULL] = "a number or null", [K_PAYLOAD] = "an escaped payload string",
	[K_PAYLOAD_NULL] = "an escaped payload string or null",
	[K_ADDRESS] = "an address (\"0x\" and lowercase hex)",
	[K_DIR] = "\"send\" or \"recv\"", [K_TRUE] = "true",
	[K_OBJECT] = "an object", [K_TEXT_ARRAY] = "an array of strings",
	[K_INT_ARRAY] = "an array of integers",
	[K_OBJECT_ARRAY] = "an array of objects",
};

static bool is_u64(yajl_val v)
{
	const char *r = v->u.number.r, *p;
	unsigned long long x;
	char *end;

	if (!r || !*r || *r == '-')
		return false;
	for (p = r; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	errno = 0;
	x = strtoull(r, &end, 10);
	(void)x;
	return errno == 0 && !*end;
}

static bool is_address(const char *s)
{
	size_t n;

	if (s[0] != '0' || s[1] != 'x')
		return false;
	s += 2;
	n = strlen(s);
	if (n < 1 || n > 16 || (n > 1 && s[0] == '0'))
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static bool is_signal(const char *s)
{
	if (strncmp(s, "SIG", 3) != 0)
		return false;
	s += 3;
	if (*s >= 'A' && *s <= 'Z') {
		for (s++; *s; s++)
			if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
				return false;
		return true;
	}
	if (*s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool is_payload(const char *s)
{
	size_t n = strlen(s);
	uint8_t *tmp = malloc(n ? n : 1);
	bool ok;

	if (!tmp)
		return false;
	ok = tr_unescape(s, n, tmp) >= 0;
	free(tmp);
	return ok;
}

/* The value of key in obj; *dups says whether it appears more than once. */
static yajl_val lookup(yajl_val obj, const char *key, bool *dup)
{
	yajl_val found = NULL;

	*dup = false;
	for (size_t i = 0; i < obj->u.object.len; i++) {
		if (strcmp(obj->u.object.keys[i], key) != 0)
			continue;
		if (found)
			*dup = true;
		found = obj->u.object.values[i];
	}
	return found;
}

struct where {
	char path[160];
	char *err;
	size_t err_size;
};

static int fail(struct where *w, const char *what)
{
	set_err(w->err, w->err_size, "\"%s\" %s", w->path, what);
	return -EINVAL;
}

static int check_object(struct where *w, yajl_val obj, const struct field *fields);

/* Appends ".key" or "[i]" to w->path for the length of one check; returns the old length. */
static size_t path_push(struct where *w, const char *fmt, const char *key, size_t i)
{
	size_t old = strlen(w->path);

	if (fmt[0] == '.' && old == 0)
		fmt++;
	snprintf(w->path + old, sizeof(w->path) - old, fmt, key ? key : "", i);
	return old;
}

static int check_int(struct where *w, yajl_val v, const struct field *f)
{
	char msg[96];
	long long x;

	if (!YAJL_IS_INTEGER(v)) {
		snprintf(msg, sizeof(msg), "must be %s", kind_text[f->kind]);
		return fail(w, msg);
	}
	x = YAJL_GET_INTEGER(v);
	if ((f->has_min && x < f->min) || (f->has_max && x > f->max)) {
		if (f->has_max)
			snprintf(msg, sizeof(msg), "must be from %lld to %lld, not %lld", f->min,
				 f->max, x);
		else
			snprintf(msg, sizeof(msg), "must be at least %lld, not %lld", f->min, x);
		return fail(w, msg);
	}
	return 0;
}

static int check_value(struct where *w, yajl_val v, const struct field *f)
{
	const char *s;
	char msg[96];
	int rc = 0;

	snprintf(msg, sizeof(msg), "must be %s", kind_text[f->kind]);
	switch (f->kind) {
	case K_TEXT_NULL:
	case K_SIGNAL_NULL:
	case K_INT_NULL:
	case K_NUMBER_NULL:
	case K_PAYLOAD_NULL:
		if (YAJL_IS_NULL(v))
			return 0;
		break;
	default:
		break;
	}
	s = YAJL_IS_STRING(v) ? v->u.string : NULL;
	switch (f->kind) {
	case K_TEXT:
	case K_TEXT_NULL:
		return s ? 0 : fail(w, msg);
	case K_SIGNAL_NULL:
		return s && is_signal(s) ? 0 : fail(w, msg);
	case K_INT:
	case K_INT_NULL:
		return check_int(w, v, f);
	case K_U64:
		return YAJL_IS_NUMBER(v) && is_u64(v) ? 0 : fail(w, msg);
	case K_BOOL:
		return YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v) ? 0 : fail(w, msg);
	case K_NUMBER_NULL:
		return YAJL_IS_DOUBLE(v) ? 0 : fail(w, msg);
	case K_PAYLOAD:
	case K_PAYLOAD_NULL:
		return s && is_payload(s) ? 0 : fail(w, msg);
	case K_ADDRESS:
		return s && is_address(s) ? 0 : fail(w, msg);
	case K_DIR:
		return s && (!strcmp(s, "send") || !strcmp(s, "recv")) ? 0 : fail(w, msg);
	case K_TRUE:
		return YAJL_IS_TRUE(v) ? 0 : fail(w, msg);
	case K_OBJECT:
		return YAJL_IS_OBJECT(v) ? check_object(w, v, f->sub) : fail(w, msg);
	case K_TEXT_ARRAY:
	case K_INT_ARRAY:
	case K_OBJECT_ARRAY:
		if (!YAJL_IS_ARRAY(v))
			return fail(w, msg);
		for (size_t i = 0; i < v->u.array.len && !rc; i++) {
			yajl_val item = v->u.array.values[i];
			size_t old = path_push(w, "%s[%zu]", NULL, i);

			if (f->kind == K_TEXT_ARRAY)
				rc = YAJL_IS_STRING(item) ? 0 : fail(w, "must be a string");
			else if (f->kind == K_INT_ARRAY)
				rc = YAJL_IS_INTEGER(item) ? 0 : fail(w, "must be an integer");
			else
				rc = YAJL_IS_OBJECT(item) ? check_object(w, item, f->sub)
							  : fail(w, "must be an object");
			w->path[old] = '\0';
		}
		return rc;
	}
	return fail(w, "has an unknown type");
}

/* Depth of this recursion is the schema's (four levels), whatever the tree holds. */
static int check_object(struct where *w, yajl_val obj, const struct field *fields)
{
	for (const struct field *f = fields; f->key; f++) {
		size_t old = path_push(w, ".%s", f->key, 0);
		bool dup;
		yajl_val v = lookup(obj, f->key, &dup);
		int rc;

		if (!v)
			rc = f->optional ? 0 : fail(w, "is missing");
		else if (dup)
			rc = fail(w, "appears more than once");
		else
			rc = check_value(w, v, f);
		w->path[old] = '\0';
		if (rc)
			return rc;
	}
	return 0;
}

int tr_report_validate(yajl_val tree, char *err, size_t err_size)
{
	struct where w = { .path = "", .err = err, .err_size = err_size };
	yajl_val v;
	bool dup;

	if (!YAJL_IS_OBJECT(tree)) {
		set_err(err, err_size, "not a JSON object");
		return -EINVAL;
	}
	v = lookup(tree, "version", &dup);
	if (!v || !YAJL_IS_INTEGER(v) || dup) {
		set_err(err, err_size, "no integer \"version\"");
		return -EINVAL;
	}
	if (YAJL_GET_INTEGER(v) != TR_REPORT_VERSION) {
		set_err(err, err_size, "report version %lld, this reader knows %d",
			YAJL_GET_INTEGER(v), TR_REPORT_VERSION);
		return -EINVAL;
	}
	return check_object(&w, tree, report_fields);
}

/* terminated: buf[len] is a NUL byte that yajl_tree_parse may rely on. */
static int parse(const char *buf, size_t len, bool terminated, yajl_val *out, char *err,
		 size_t err_size)
{
	char yerr[512] = "", *copy = NULL;
	yajl_val tree = NULL;
	int rc;

	if (out)
		*out = NULL;
	if (err && err_size)
		err[0] = '\0';
	if (!out || (!buf && len)) {
		set_err(err, err_size, "no buffer");
		return -EINVAL;
	}
	if (len > TR_REPORT_READ_MAX) {
		set_err(err, err_size, "larger than %u bytes", TR_REPORT_READ_MAX);
		return -EFBIG;
	}
	/* yajl_tree_parse stops at a NUL: do not let it judge only a prefix. */
	if (len && memchr(buf, '\0', len)) {
		set_err(err, err_size, "NUL byte in file");
		return -EINVAL;
	}
	if (!len) {
		set_err(err, err_size, "empty file");
		return -EINVAL;
	}
	rc = prescan(buf, len, err, err_size);
	if (rc)
		return rc;
	if (!terminated) {
		copy = malloc(len + 1);
		if (!copy) {
			set_err(err, err_size, "out of memory");
			return -ENOMEM;
		}
		memcpy(copy, buf, len);
		copy[len] = '\0';
		buf = copy;
	}
	tree = yajl_tree_parse(buf, yerr, sizeof(yerr));
	free(copy);
	if (!tree) {
		/* the prescan accepted it: only memory can be missing now */
		set_err(err, err_size, "%s", yerr[0] ? yerr : "malformed JSON");
		return -EINVAL;
	}
	rc = tr_report_validate(tree, err, err_size);
	if (rc) {
		yajl_tree_free(tree);
		return rc;
	}
	*out = tree;
	return 0;
}

int tr_report_parse(const char *buf, size_t len, yajl_val *out, char *err, size_t err_size)
{
	return parse(buf, len, false, out, err, err_size);
}

int tr_report_load(const char *path, yajl_val *out, char *err, size_t err_size)
{
	char perr[400] = "";
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int fd = -1, rc;

	if (out)
		*out = NULL;
	if (err && err_size)
		err[0] = '\0';
	if (!path || !out) {
		set_err(err, err_size, "no path");
		return -EINVAL;
	}
	/* O_NONBLOCK: opening a FIFO by mistake must not hang the debugger. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		set_err(err, err_size, "%s: %s", path, strerror(-rc));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		set_err(err, err_size, "%s: %s", path, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		set_err(err, err_size, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > TR_REPORT_READ_MAX) {
		rc = -EFBIG;
		set_err(err, err_size, "%s: larger than %u bytes", path, TR_REPORT_READ_MAX);
		goto out;
	}
	rc = read_all(fd, (size_t)st.st_size, TR_REPORT_READ_MAX, &buf, &len);
	if (!rc && !buf)
		rc = -ENOMEM;   /* cannot happen; keeps the NULL out of strlen for analysers */
	if (rc) {
		set_err(err, err_size, "%s: %s", path,
			rc == -EFBIG ? "file grew past the size limit" : strerror(-rc));
		goto out;
	}
	rc = parse(buf, len, true, out, perr, sizeof(perr));
	if (rc)
		set_err(err, err_size, "%s: %s", path, perr);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}
