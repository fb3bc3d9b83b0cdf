/* module_report.c - the report side of tracerlib._core: the meta dict a render needs turned
 * into C (one arena per render), reports written to the store and read back, payload escaping.
 * Errors become Python exceptions here; nothing aborts. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "mailbox.h"
#include "module.h"
#include "recorder.h"
#include "report.h"
#include "report_read.h"
#include "store.h"

/* ---- a small arena: every C copy made while converting one Python object graph ---- */

struct arena {
	void **blocks;
	size_t n, alloc;
};

static void *arena_alloc(struct arena *a, size_t size)
{
	void *p;

	if (a->n == a->alloc) {
		size_t grown = a->alloc ? a->alloc * 2 : 32;
		void **b = PyMem_Realloc(a->blocks, grown * sizeof(*b));

		if (!b) {
			PyErr_NoMemory();
			return NULL;
		}
		a->blocks = b;
		a->alloc = grown;
	}
	p = PyMem_Calloc(1, size ? size : 1);
	if (!p) {
		PyErr_NoMemory();
		return NULL;
	}
	a->blocks[a->n++] = p;
	return p;
}

static void arena_free(struct arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		PyMem_Free(a->blocks[i]);
	PyMem_Free(a->blocks);
	memset(a, 0, sizeof(*a));
}

/* ---- reading fields of the meta dict; absent or None means "unknown" ---- */

static PyObject *field(PyObject *dict, const char *key)
{
	PyObject *v;

	if (!dict || dict == Py_None)
		return NULL;
	if (!PyDict_Check(dict)) {
		PyErr_Format(PyExc_TypeError, "expected a dict holding '%s'", key);
		return NULL;
	}
	v = PyDict_GetItemString(dict, key);   /* borrowed */
	return v == Py_None ? NULL : v;
}

/* Strings stay owned by the dict, which outlives the render. */
static int get_str(PyObject *dict, const char *key, const char **out)
{
	PyObject *v = field(dict, key);

	*out = NULL;
	if (PyErr_Occurred())
		return -1;
	if (!v)
		return 0;
	if (!PyUnicode_Check(v)) {
		PyErr_Format(PyExc_TypeError, "'%s' must be a str", key);
		return -1;
	}
	*out = PyUnicode_AsUTF8(v);
	return *out ? 0 : -1;
}

static int get_i64(PyObject *dict, const char *key, int64_t dflt, int64_t *out)
{
	PyObject *v = field(dict, key);

	*out = dflt;
	if (PyErr_Occurred())
		return -1;
	if (!v)
		return 0;
	if (!PyLong_Check(v)) {
		PyErr_Format(PyExc_TypeError, "'%s' must be an int", key);
		return -1;
	}
	*out = PyLong_AsLongLong(v);
	return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int get_int(PyObject *dict, const char *key, int dflt, int *out)
{
	int64_t v;

	if (get_i64(dict, key, dflt, &v) < 0)
		return -1;
	if (v < INT32_MIN || v > INT32_MAX) {
		PyErr_Format(PyExc_OverflowError, "'%s' out of range", key);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int get_u64(PyObject *dict, const char *key, uint64_t *out)
{
	PyObject *v = field(dict, key);

	*out = 0;
	if (PyErr_Occurred())
		return -1;
	if (!v)
		return 0;
	if (!PyLong_Check(v)) {
		PyErr_Format(PyExc_TypeError, "'%s' must be an int", key);
		return -1;
	}
	*out = PyLong_AsUnsignedLongLongMask(v);
	return PyErr_Occurred() ? -1 : 0;
}

static int get_bool(PyObject *dict, const char *key, bool *out)
{
	PyObject *v = field(dict, key);
	int t;

	*out = false;
	if (PyErr_Occurred())
		return -1;
	if (!v)
		return 0;
	t = PyObject_IsTrue(v);
	if (t < 0)
		return -1;
	*out = t;
	return 0;
}

static int get_bytes(PyObject *dict, const char *key, const uint8_t **data, size_t *len)
{
	PyObject *v = field(dict, key);

	*data = NULL;
	*len = 0;
	if (PyErr_Occurred())
		return -1;
	if (!v)
		return 0;
	if (!PyBytes_Check(v)) {
		PyErr_Format(PyExc_TypeError, "'%s' must be bytes", key);
		return -1;
	}
	*data = (const uint8_t *)PyBytes_AS_STRING(v);
	*len = (size_t)PyBytes_GET_SIZE(v);
	return 0;
}

/* A list field as a fast sequence (new reference, or NULL with no error when absent). */
static PyObject *get_list(PyObject *dict, const char *key)
{
	PyObject *v = field(dict, key);

	if (!v)
		return NULL;
	if (!PyList_Check(v) && !PyTuple_Check(v)) {
		PyErr_Format(PyExc_TypeError, "'%s' must be a list", key);
		return NULL;
	}
	return PySequence_Fast(v, key);
}

/* A list of str under key as a C array in the arena (none: NULL, 0). The strings stay owned
 * by the dict's list, which outlives the render. */
static int get_texts(PyObject *dict, const char *key, struct arena *a, const char *const **out,
		     size_t *n)
{
	PyObject *list = get_list(dict, key);
	const char **texts;
	int rc = -1;

	*out = NULL;
	*n = 0;
	if (!list)
		return PyErr_Occurred() ? -1 : 0;
	*n = (size_t)PySequence_Fast_GET_SIZE(list);
	texts = arena_alloc(a, *n * sizeof(*texts));
	if (!texts)
		goto out;
	for (size_t i = 0; i < *n; i++) {
		PyObject *item = PySequence_Fast_GET_ITEM(list, i);

		texts[i] = PyUnicode_Check(item) ? PyUnicode_AsUTF8(item) : NULL;
		if (!texts[i]) {
			if (!PyErr_Occurred())
				PyErr_Format(PyExc_TypeError, "'%s' must hold str", key);
			goto out;
		}
	}
	*out = texts;
	rc = 0;
out:
	Py_DECREF(list);
	return rc;
}

/* A list of int under key as a C array in the arena (none: NULL, 0). */
static int get_ints(PyObject *dict, const char *key, struct arena *a, const int64_t **out,
		    size_t *n)
{
	PyObject *list = get_list(dict, key);
	int64_t *ints;
	int rc = -1;

	*out = NULL;
	*n = 0;
	if (!list)
		return PyErr_Occurred() ? -1 : 0;
	*n = (size_t)PySequence_Fast_GET_SIZE(list);
	ints = arena_alloc(a, *n * sizeof(*ints) + 1);
	if (!ints)
		goto out;
	for (size_t i = 0; i < *n; i++) {
		ints[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(list, i));
		if (PyErr_Occurred())
			goto out;
	}
	*out = ints;
	rc = 0;
out:
	Py_DECREF(list);
	return rc;
}

/* Converts one dict of a list into the element at `out` (in the arena). 0 or -1. */
typedef int (*convert_fn)(PyObject *d, void *out, struct arena *a);

/* A list of dicts under key as a C array of `size`-byte elements in the arena, each filled by
 * convert (none: NULL, 0). */
static int get_objects(PyObject *dict, const char *key, struct arena *a, size_t size,
		       convert_fn convert, void **out, size_t *n)
{
	PyObject *list = get_list(dict, key);
	size_t count;
	char *items;
	int rc = -1;

	*out = NULL;
	*n = 0;
	if (!list)
		return PyErr_Occurred() ? -1 : 0;
	count = (size_t)PySequence_Fast_GET_SIZE(list);
	items = arena_alloc(a, count * size);
	if (!items)
		goto out;
	for (size_t i = 0; i < count; i++)
		if (convert(PySequence_Fast_GET_ITEM(list, i), items + i * size, a) < 0)
			goto out;
	*out = items;
	*n = count;
	rc = 0;
out:
	Py_DECREF(list);
	return rc;
}

static int convert_frame(PyObject *d, void *out, struct arena *a)
{
	struct tr_frame *f = out;

	return get_u64(d, "pc", &f->pc) || get_str(d, "function", &f->function) ||
	       get_str(d, "file", &f->file) || get_int(d, "line", 0, &f->line) ? -1 : 0;
}

static int convert_thread(PyObject *d, void *out, struct arena *a)
{
	struct tr_thread *t = out;
	void *frames;

	if (get_int(d, "tid", 0, &t->tid) || get_str(d, "name", &t->name) ||
	    get_objects(d, "backtrace", a, sizeof(struct tr_frame), convert_frame, &frames,
			&t->nframes))
		return -1;
	t->frames = frames;
	return 0;
}

static int convert_mailbox(PyObject *d, void *out, struct arena *a)
{
	struct tr_mailbox *m = out;

	return get_i64(d, "fd", -1, &m->fd) || get_str(d, "endpoint", &m->endpoint) ||
	       get_i64(d, "pending", -1, &m->pending) || get_i64(d, "messages", -1, &m->messages) ||
	       get_bytes(d, "data", &m->data, &m->data_len) ||
	       get_bool(d, "truncated", &m->truncated) || get_str(d, "error", &m->error) ? -1 : 0;
}

static int convert_process(PyObject *d, void *out, struct arena *a)
{
	struct tr_process *p = out;
	void *threads, *boxes;

	if (get_int(d, "pid", 0, &p->pid) || get_bool(d, "alive", &p->alive) ||
	    get_int(d, "exit_status", -1, &p->exit_status) ||
	    get_int(d, "exit_signal", 0, &p->exit_signal) ||
	    get_objects(d, "threads", a, sizeof(struct tr_thread), convert_thread, &threads,
			&p->nthreads) ||
	    get_objects(d, "mailboxes", a, sizeof(struct tr_mailbox), convert_mailbox, &boxes,
			&p->nmailboxes) ||
	    get_str(d, "mode", &p->mode))
		return -1;
	p->threads = threads;
	p->mailboxes = boxes;
	return 0;
}

static int convert_uncovered(PyObject *d, void *out, struct arena *a)
{
	struct tr_uncovered *u = out;

	return get_int(d, "pid", 0, &u->pid) || get_str(d, "exe", &u->exe) ||
	       get_str(d, "why", &u->why) ? -1 : 0;
}

/* Call sites: meta["sites"] maps pc -> {"function", "file", "line"}. */
struct site_ctx {
	PyObject *sites;   /* borrowed dict or NULL */
	bool failed;
};

static bool resolve_site(void *ctx, uint64_t pc, struct tr_frame *out)
{
	struct site_ctx *sc = ctx;
	PyObject *key, *v;

	if (!sc->sites || sc->failed)
		return false;
	key = PyLong_FromUnsignedLongLong(pc);
	if (!key) {
		sc->failed = true;
		return false;
	}
	v = PyDict_GetItemWithError(sc->sites, key);
	Py_DECREF(key);
	if (!v) {
		if (PyErr_Occurred())
			sc->failed = true;
		return false;
	}
	if (convert_frame(v, out, NULL) < 0) {
		sc->failed = true;
		return false;
	}
	out->pc = pc;
	return true;
}

static int convert_meta(PyObject *d, struct tr_report_meta *m, struct site_ctx *sc,
			struct arena *a)
{
	PyObject *stop, *yld, *sites, *filter;
	void *procs, *uncovered;
	int64_t backtrace;

	if (!PyDict_Check(d)) {
		PyErr_SetString(PyExc_TypeError, "meta must be a dict");
		return -1;
	}
	if (get_str(d, "key", &m->key) || get_str(d, "program", &m->program) ||
	    get_int(d, "pid", 0, &m->pid) || get_str(d, "started", &m->started) ||
	    get_str(d, "debugger", &m->debugger) || get_str(d, "mode", &m->mode) ||
	    get_i64(d, "backtrace", TR_BACKTRACE_DEFAULT, &backtrace))
		return -1;
	filter = field(d, "filter");
	if (PyErr_Occurred() ||
	    (filter && (get_str(filter, "trace", &m->filter.trace) ||
			get_str(filter, "status", &m->filter.status) ||
			get_str(filter, "endpoint", &m->filter.endpoint) ||
			get_i64(filter, "filtered", 0, &m->filter.filtered))))
		return -1;
	if (backtrace < 0 || backtrace > TR_BACKTRACE_MAX) {
		PyErr_Format(PyExc_ValueError, "backtrace must be 0..%d", TR_BACKTRACE_MAX);
		return -1;
	}
	m->backtrace_limit = (int)backtrace;
	if (!m->key) {
		PyErr_SetString(PyExc_ValueError, "meta needs a 'key'");
		return -1;
	}
	if (get_texts(d, "argv", a, &m->argv, &m->argc))
		return -1;
	stop = field(d, "stop");
	if (PyErr_Occurred() || get_str(stop, "reason", &m->stop.reason) ||
	    get_int(stop, "signal", 0, &m->stop.signal) ||
	    get_int(stop, "status", -1, &m->stop.status) || get_int(stop, "pid", 0, &m->stop.pid) ||
	    get_int(stop, "tid", 0, &m->stop.tid))
		return -1;
	yld = field(d, "yield");
	if (PyErr_Occurred() || get_bool(yld, "enabled", &m->yield.enabled) ||
	    get_u64(yld, "seed", &m->yield.seed) || get_str(yld, "strategy", &m->yield.strategy) ||
	    get_i64(yld, "sites", 0, &m->yield.sites) ||
	    get_i64(yld, "injected", 0, &m->yield.injected) ||
	    get_str(yld, "classes", &m->yield.classes) || get_str(yld, "module", &m->yield.module) ||
	    get_texts(yld, "functions", a, &m->yield.functions, &m->yield.nfunctions) ||
	    get_i64(yld, "access_sites", -1, &m->yield.access_sites) ||
	    get_i64(yld, "hot_sites_disabled", 0, &m->yield.hot_sites_disabled) ||
	    get_i64(yld, "library_sites", -1, &m->yield.library_sites) ||
	    get_i64(yld, "library_injected", 0, &m->yield.library_injected))
		return -1;
	m->yield.has_library = m->yield.library_sites >= 0;
	m->has_timeout = field(d, "timeout") != NULL;
	if (PyErr_Occurred() || get_i64(d, "timeout", 0, &m->timeout))
		return -1;
	m->yield.has_access = m->yield.access_sites >= 0;
	if (get_i64(yld, "depth", -1, &m->yield.depth) ||
	    get_i64(yld, "pct_steps", 0, &m->yield.pct_steps) ||
	    get_ints(yld, "change_points", a, &m->yield.change_points,
		     &m->yield.nchange_points) ||
	    get_i64(yld, "changes_taken", 0, &m->yield.changes_taken) ||
	    get_i64(yld, "steals", 0, &m->yield.steals))
		return -1;
	m->yield.has_pct = m->yield.depth >= 0;
	if (yld && field(yld, "probability")) {
		m->yield.probability = PyFloat_AsDouble(field(yld, "probability"));
		if (PyErr_Occurred())
			return -1;
	}
	if (get_objects(d, "processes", a, sizeof(struct tr_process), convert_process, &procs,
			&m->nprocesses))
		return -1;
	m->processes = procs;
	m->has_uncovered = field(d, "uncovered") != NULL;
	if (PyErr_Occurred() ||
	    get_objects(d, "uncovered", a, sizeof(struct tr_uncovered), convert_uncovered,
			&uncovered, &m->nuncovered))
		return -1;
	m->uncovered = uncovered;
	sites = field(d, "sites");
	if (PyErr_Occurred())
		return -1;
	if (sites && !PyDict_Check(sites)) {
		PyErr_SetString(PyExc_TypeError, "'sites' must be a dict of pc -> frame dict");
		return -1;
	}
	sc->sites = sites;
	m->resolve_site = resolve_site;
	m->resolve_ctx = sc;
	return 0;
}

PyObject *tr_py_render(const struct tr_recorder *rec, PyObject *meta_obj)
{
	struct tr_report_meta meta;
	struct site_ctx sc = { 0 };
	struct arena a = { 0 };
	PyObject *result = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	memset(&meta, 0, sizeof(meta));
	meta.stop.status = -1;
	if (convert_meta(meta_obj, &meta, &sc, &a) < 0)
		goto out;
	rc = tr_report_render(rec, &meta, &text, &len);
	if (sc.failed)
		goto out;
	if (rc < 0) {
		tr_py_raise_errno(rc, "render report");
		goto out;
	}
	result = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, "strict");
out:
	free(text);
	arena_free(&a);
	return result;
}

static PyObject *mod_store_put(PyObject *m, PyObject *args)
{
	const char *dir, *stem, *text;
	Py_ssize_t len;
	char path[4096];
	int rc;

	if (!PyArg_ParseTuple(args, "sss#:store_put", &dir, &stem, &text, &len))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = tr_store_put(dir, stem, text, (size_t)len, path, sizeof(path));
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return tr_py_raise_errno(rc, dir);
	return PyUnicode_DecodeFSDefault(path);
}

static PyObject *mod_store_put_path(PyObject *m, PyObject *args)
{
	const char *path, *text;
	Py_ssize_t len;
	int rc;

	if (!PyArg_ParseTuple(args, "ss#:store_put_path", &path, &text, &len))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = tr_store_put_path(path, text, (size_t)len);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return tr_py_raise_errno(rc, path);
	Py_RETURN_NONE;
}

/* yajl tree -> Python objects. */
static PyObject *from_yajl(yajl_val v)
{
	if (YAJL_IS_NULL(v))
		Py_RETURN_NONE;
	if (YAJL_IS_TRUE(v))
		Py_RETURN_TRUE;
	if (YAJL_IS_FALSE(v))
		Py_RETURN_FALSE;
	if (YAJL_IS_STRING(v))
		return PyUnicode_FromString(YAJL_GET_STRING(v));
	if (YAJL_IS_INTEGER(v))
		return PyLong_FromLongLong(YAJL_GET_INTEGER(v));
	/* past int64 (yield.seed is unsigned): keep it an int; the reader bounds the depth */
	if (YAJL_IS_NUMBER(v) && strlen(v->u.number.r) <= 20 && !strpbrk(v->u.number.r, ".eE"))
		return PyLong_FromString(v->u.number.r, NULL, 10);
	if (YAJL_IS_NUMBER(v))
		return PyFloat_FromDouble(YAJL_GET_DOUBLE(v));
	if (YAJL_IS_ARRAY(v)) {
		PyObject *list = PyList_New((Py_ssize_t)v->u.array.len);

		if (!list)
			return NULL;
		for (size_t i = 0; i < v->u.array.len; i++) {
			PyObject *item = from_yajl(v->u.array.values[i]);

			if (!item) {
				Py_DECREF(list);
				return NULL;
			}
			PyList_SET_ITEM(list, (Py_ssize_t)i, item);
		}
		return list;
	}
	if (YAJL_IS_OBJECT(v)) {
		PyObject *dict = PyDict_New();

		if (!dict)
			return NULL;
		for (size_t i = 0; i < v->u.object.len; i++) {
			PyObject *item = from_yajl(v->u.object.values[i]);

			if (!item || PyDict_SetItemString(dict, v->u.object.keys[i], item) < 0) {
				Py_XDECREF(item);
				Py_DECREF(dict);
				return NULL;
			}
			Py_DECREF(item);
		}
		return dict;
	}
	PyErr_SetString(PyExc_ValueError, "unexpected JSON value");
	return NULL;
}

PyDoc_STRVAR(load_report_doc, "load_report(path) -> dict\n\n"
	     "Parses a stored report. Payloads stay escaped strings: decode with unescape().");

static PyObject *mod_load_report(PyObject *m, PyObject *arg)
{
	PyObject *bytes_path = NULL, *result = NULL;
	yajl_val tree = NULL;
	char err[256] = "";
	int rc;

	if (!PyUnicode_FSConverter(arg, &bytes_path))
		return NULL;
	rc = tr_report_load(PyBytes_AS_STRING(bytes_path), &tree, err, sizeof(err));
	if (rc < 0) {
		if (rc == -EINVAL)
			PyErr_SetString(PyExc_ValueError, err[0] ? err : "not a tracer report");
		else
			tr_py_raise_errno(rc, PyBytes_AS_STRING(bytes_path));
		goto out;
	}
	result = from_yajl(tree);
out:
	if (tree)
		yajl_tree_free(tree);
	Py_XDECREF(bytes_path);
	return result;
}

static PyObject *mod_escape(PyObject *m, PyObject *arg)
{
	Py_buffer in;
	char *out;
	size_t n;
	PyObject *result;

	if (PyObject_GetBuffer(arg, &in, PyBUF_SIMPLE) < 0)
		return NULL;
	out = PyMem_Malloc(TR_ESCAPED_MAX((size_t)in.len) + 1);
	if (!out) {
		PyBuffer_Release(&in);
		return PyErr_NoMemory();
	}
	n = tr_escape(in.buf, (size_t)in.len, out);
	result = PyUnicode_FromStringAndSize(out, (Py_ssize_t)n);
	PyMem_Free(out);
	PyBuffer_Release(&in);
	return result;
}

static PyObject *mod_unescape(PyObject *m, PyObject *arg)
{
	const char *in;
	Py_ssize_t n;
	uint8_t *out;
	long got;
	PyObject *result;

	in = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, &n) : NULL;
	if (!in) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "unescape() takes a str");
		return NULL;
	}
	out = PyMem_Malloc((size_t)n + 1);
	if (!out)
		return PyErr_NoMemory();
	got = tr_unescape(in, (size_t)n, out);
	if (got < 0) {
		PyMem_Free(out);
		return PyErr_Format(PyExc_ValueError, "malformed escaped payload");
	}
	result = PyBytes_FromStringAndSize((const char *)out, got);
	PyMem_Free(out);
	return result;
}

PyMethodDef tr_py_report_methods[] = {
	{ "store_put", mod_store_put, METH_VARARGS,
	  "store_put(dir, stem, text) -> path: write a report into the store, never overwriting" },
	{ "store_put_path", mod_store_put_path, METH_VARARGS,
	  "store_put_path(path, text): write a report to exactly path; fails if it exists" },
	{ "load_report", mod_load_report, METH_O, load_report_doc },
	{ "escape", mod_escape, METH_O, "escape(bytes) -> str, the report's payload form" },
	{ "unescape", mod_unescape, METH_O, "unescape(str) -> bytes, inverse of escape" },
	{ NULL },
};
