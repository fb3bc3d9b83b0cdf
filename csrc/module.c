/* module.c - tracerlib._core: the thin CPython binding of the recorder core.
 *
 * Module state instead of globals, the Session type from a spec, one exit label per
 * function. Errors from the core (negative errno) become Python exceptions here, and only
 * here. Nothing in this file may abort: it runs inside the user's debugger. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>
#include <sys/types.h>

#include "catalogue.h"
#include "endpoint.h"
#include "escape.h"
#include "mailbox.h"
#include "module.h"
#include "recorder.h"
#include "report.h"
#include "report_read.h"
#include "session.h"
#include "store.h"

typedef struct {
	PyTypeObject *session_type;
} module_state;

typedef struct {
	PyObject_HEAD
	struct tr_session s;
	bool ready;
} SessionObject;

static module_state *get_state(PyObject *module)
{
	return (module_state *)PyModule_GetState(module);
}

PyObject *tr_py_raise_errno(int neg_errno, const char *what)
{
	errno = -neg_errno;
	return PyErr_SetFromErrnoWithFilename(PyExc_OSError, what);
}

#define raise_errno tr_py_raise_errno

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

static int convert_frame(PyObject *d, struct tr_frame *f)
{
	return get_u64(d, "pc", &f->pc) || get_str(d, "function", &f->function) ||
	       get_str(d, "file", &f->file) || get_int(d, "line", 0, &f->line) ? -1 : 0;
}

static int convert_thread(PyObject *d, struct tr_thread *t, struct arena *a)
{
	PyObject *frames = NULL;
	struct tr_frame *fs;
	int rc = -1;

	if (get_int(d, "tid", 0, &t->tid) || get_str(d, "name", &t->name))
		goto out;
	frames = get_list(d, "backtrace");
	if (!frames) {
		rc = PyErr_Occurred() ? -1 : 0;
		goto out;
	}
	t->nframes = (size_t)PySequence_Fast_GET_SIZE(frames);
	fs = arena_alloc(a, t->nframes * sizeof(*fs));
	if (!fs)
		goto out;
	for (size_t i = 0; i < t->nframes; i++)
		if (convert_frame(PySequence_Fast_GET_ITEM(frames, i), &fs[i]) < 0)
			goto out;
	t->frames = fs;
	rc = 0;
out:
	Py_XDECREF(frames);
	return rc;
}

static int convert_mailbox(PyObject *d, struct tr_mailbox *m)
{
	return get_i64(d, "fd", -1, &m->fd) || get_str(d, "endpoint", &m->endpoint) ||
	       get_i64(d, "pending", -1, &m->pending) || get_i64(d, "messages", -1, &m->messages) ||
	       get_bytes(d, "data", &m->data, &m->data_len) ||
	       get_bool(d, "truncated", &m->truncated) || get_str(d, "error", &m->error) ? -1 : 0;
}

static int convert_process(PyObject *d, struct tr_process *p, struct arena *a)
{
	PyObject *threads = NULL, *boxes = NULL;
	struct tr_thread *ts;
	struct tr_mailbox *ms;
	int rc = -1;

	if (get_int(d, "pid", 0, &p->pid) || get_bool(d, "alive", &p->alive) ||
	    get_int(d, "exit_status", -1, &p->exit_status) ||
	    get_int(d, "exit_signal", 0, &p->exit_signal))
		goto out;
	threads = get_list(d, "threads");
	if (!threads && PyErr_Occurred())
		goto out;
	if (threads) {
		p->nthreads = (size_t)PySequence_Fast_GET_SIZE(threads);
		ts = arena_alloc(a, p->nthreads * sizeof(*ts));
		if (!ts)
			goto out;
		for (size_t i = 0; i < p->nthreads; i++)
			if (convert_thread(PySequence_Fast_GET_ITEM(threads, i), &ts[i], a) < 0)
				goto out;
		p->threads = ts;
	}
	boxes = get_list(d, "mailboxes");
	if (!boxes && PyErr_Occurred())
		goto out;
	if (boxes) {
		p->nmailboxes = (size_t)PySequence_Fast_GET_SIZE(boxes);
		ms = arena_alloc(a, p->nmailboxes * sizeof(*ms));
		if (!ms)
			goto out;
		for (size_t i = 0; i < p->nmailboxes; i++)
			if (convert_mailbox(PySequence_Fast_GET_ITEM(boxes, i), &ms[i]) < 0)
				goto out;
		p->mailboxes = ms;
	}
	rc = 0;
out:
	Py_XDECREF(threads);
	Py_XDECREF(boxes);
	return rc;
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
	if (convert_frame(v, out) < 0) {
		sc->failed = true;
		return false;
	}
	out->pc = pc;
	return true;
}

static int convert_meta(PyObject *d, struct tr_report_meta *m, struct site_ctx *sc,
			struct arena *a)
{
	PyObject *argv = NULL, *procs = NULL, *stop, *yld, *sites;
	const char **av;
	struct tr_process *ps;
	int64_t backtrace;
	int rc = -1;

	if (!PyDict_Check(d)) {
		PyErr_SetString(PyExc_TypeError, "meta must be a dict");
		return -1;
	}
	if (get_str(d, "key", &m->key) || get_str(d, "program", &m->program) ||
	    get_int(d, "pid", 0, &m->pid) || get_str(d, "started", &m->started) ||
	    get_str(d, "debugger", &m->debugger) ||
	    get_i64(d, "backtrace", TR_BACKTRACE_DEFAULT, &backtrace))
		goto out;
	if (backtrace < 0 || backtrace > TR_BACKTRACE_MAX) {
		PyErr_Format(PyExc_ValueError, "backtrace must be 0..%d", TR_BACKTRACE_MAX);
		goto out;
	}
	m->backtrace_limit = (int)backtrace;
	if (!m->key) {
		PyErr_SetString(PyExc_ValueError, "meta needs a 'key'");
		goto out;
	}
	argv = get_list(d, "argv");
	if (!argv && PyErr_Occurred())
		goto out;
	if (argv) {
		m->argc = (size_t)PySequence_Fast_GET_SIZE(argv);
		av = arena_alloc(a, m->argc * sizeof(*av));
		if (!av)
			goto out;
		for (size_t i = 0; i < m->argc; i++) {
			av[i] = PyUnicode_Check(PySequence_Fast_GET_ITEM(argv, i))
					? PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(argv, i)) : NULL;
			if (!av[i]) {
				if (!PyErr_Occurred())
					PyErr_SetString(PyExc_TypeError, "argv must hold str");
				goto out;
			}
		}
		m->argv = av;
	}
	stop = field(d, "stop");
	if (PyErr_Occurred() || get_str(stop, "reason", &m->stop.reason) ||
	    get_int(stop, "signal", 0, &m->stop.signal) ||
	    get_int(stop, "status", -1, &m->stop.status) || get_int(stop, "pid", 0, &m->stop.pid) ||
	    get_int(stop, "tid", 0, &m->stop.tid))
		goto out;
	yld = field(d, "yield");
	if (PyErr_Occurred() || get_bool(yld, "enabled", &m->yield.enabled) ||
	    get_u64(yld, "seed", &m->yield.seed) || get_str(yld, "strategy", &m->yield.strategy) ||
	    get_i64(yld, "sites", 0, &m->yield.sites) ||
	    get_i64(yld, "injected", 0, &m->yield.injected))
		goto out;
	if (yld && field(yld, "probability")) {
		m->yield.probability = PyFloat_AsDouble(field(yld, "probability"));
		if (PyErr_Occurred())
			goto out;
	}
	procs = get_list(d, "processes");
	if (!procs && PyErr_Occurred())
		goto out;
	if (procs) {
		m->nprocesses = (size_t)PySequence_Fast_GET_SIZE(procs);
		ps = arena_alloc(a, m->nprocesses * sizeof(*ps));
		if (!ps)
			goto out;
		for (size_t i = 0; i < m->nprocesses; i++)
			if (convert_process(PySequence_Fast_GET_ITEM(procs, i), &ps[i], a) < 0)
				goto out;
		m->processes = ps;
	}
	sites = field(d, "sites");
	if (PyErr_Occurred())
		goto out;
	if (sites && !PyDict_Check(sites)) {
		PyErr_SetString(PyExc_TypeError, "'sites' must be a dict of pc -> frame dict");
		goto out;
	}
	sc->sites = sites;
	m->resolve_site = resolve_site;
	m->resolve_ctx = sc;
	rc = 0;
out:
	Py_XDECREF(argv);
	Py_XDECREF(procs);
	return rc;
}

/* ---- Session ---- */

static int Session_init(SessionObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "cap", "budget", "payload", NULL };
	struct tr_recorder_config cfg = { .cap = 0, .budget = 0, .payload = -1 };
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|LLL:Session", kwlist, &cfg.cap,
					 &cfg.budget, &cfg.payload))
		return -1;
	if (cfg.cap > TR_CAP_MAX) {
		PyErr_Format(PyExc_ValueError, "cap must be at most %d (got %lld)", TR_CAP_MAX,
			     (long long)cfg.cap);
		return -1;
	}
	if (cfg.budget > TR_BUDGET_MAX) {
		PyErr_Format(PyExc_ValueError, "budget must be at most %d (got %lld)",
			     TR_BUDGET_MAX, (long long)cfg.budget);
		return -1;
	}
	if (cfg.payload > TR_PAYLOAD_MAX) {
		PyErr_Format(PyExc_ValueError, "payload must be at most %d bytes (got %lld)",
			     TR_PAYLOAD_MAX, (long long)cfg.payload);
		return -1;
	}
	if (self->ready) {
		tr_session_destroy(&self->s);
		self->ready = false;
	}
	rc = tr_session_init(&self->s, &cfg);
	if (rc < 0) {
		raise_errno(rc, "Session");
		return -1;
	}
	self->ready = true;
	return 0;
}

static void Session_dealloc(SessionObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	if (self->ready)
		tr_session_destroy(&self->s);
	tp->tp_free((PyObject *)self);
	Py_DECREF(tp);
}

static bool check_ready(SessionObject *self)
{
	if (!self->ready)
		PyErr_SetString(PyExc_RuntimeError, "Session not initialised");
	return self->ready;
}

/* regs: None (read them with ptrace) or a sequence of 10 ints in tr_regs order:
 * rdi rsi rdx rcx r8 r9 sp ret pc fs_base. */
static int get_regs(PyObject *obj, pid_t tid, struct tr_regs *r)
{
	PyObject *seq;
	uint64_t *dst[10] = { &r->arg[0], &r->arg[1], &r->arg[2], &r->arg[3], &r->arg[4],
			      &r->arg[5], &r->sp, &r->ret, &r->pc, &r->fs_base };
	int rc = -1;

	if (!obj || obj == Py_None) {
		int e = tr_regs_ptrace(tid, r);

		if (e < 0) {
			raise_errno(e, "ptrace(PTRACE_GETREGS)");
			return -1;
		}
		return 0;
	}
	seq = PySequence_Fast(obj, "regs must be a sequence of 10 ints");
	if (!seq)
		return -1;
	if (PySequence_Fast_GET_SIZE(seq) != 10) {
		PyErr_SetString(PyExc_ValueError,
				"regs must be (rdi, rsi, rdx, rcx, r8, r9, sp, ret, pc, fs_base)");
		goto out;
	}
	for (int i = 0; i < 10; i++) {
		*dst[i] = PyLong_AsUnsignedLongLongMask(PySequence_Fast_GET_ITEM(seq, i));
		if (PyErr_Occurred())
			goto out;
	}
	rc = 0;
out:
	Py_DECREF(seq);
	return rc;
}

PyDoc_STRVAR(entry_doc, "entry(call, pid, tid, regs=None) -> (action, return_pc)\n\n"
	     "A thread stopped at the entry of catalogue function `call`. regs=None reads them\n"
	     "with ptrace (gdb's native target). action: 0 continue, 1 stop at return_pc in\n"
	     "this thread, 2 budget reached (remove every tracer breakpoint).");

static PyObject *Session_entry(SessionObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "call", "pid", "tid", "regs", NULL };
	int call, pid, tid;
	PyObject *regs_obj = NULL;
	struct tr_regs regs;
	uint64_t return_pc = 0;
	enum tr_action act;

	if (!check_ready(self) ||
	    !PyArg_ParseTupleAndKeywords(args, kwds, "iii|O:entry", kwlist, &call, &pid, &tid,
					 &regs_obj))
		return NULL;
	if (call < 0 || (size_t)call >= tr_catalogue_len)
		return PyErr_Format(PyExc_ValueError, "no catalogue function %d", call);
	if (get_regs(regs_obj, tid, &regs) < 0)
		return NULL;
	act = tr_session_entry(&self->s, call, pid, tid, &regs, &return_pc);
	return Py_BuildValue("(iK)", (int)act, (unsigned long long)return_pc);
}

PyDoc_STRVAR(ret_doc, "ret(pid, tid, regs=None) -> action\n\n"
	     "A thread stopped at a return pc entry() asked for. action 3: the call failed;\n"
	     "complete it with errno().");

static PyObject *Session_ret(SessionObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "pid", "tid", "regs", NULL };
	int pid, tid;
	PyObject *regs_obj = NULL;
	struct tr_regs regs;

	if (!check_ready(self) ||
	    !PyArg_ParseTupleAndKeywords(args, kwds, "ii|O:ret", kwlist, &pid, &tid, &regs_obj))
		return NULL;
	if (get_regs(regs_obj, tid, &regs) < 0)
		return NULL;
	return PyLong_FromLong(tr_session_return(&self->s, pid, tid, &regs));
}

PyDoc_STRVAR(errno_doc, "errno(tid, value=None, location=None) -> action\n\n"
	     "Completes a failed call: with the errno value the debugger read, or with the\n"
	     "runtime address of glibc's __errno_location so the core reads it itself.");

static PyObject *Session_errno(SessionObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "tid", "value", "location", NULL };
	int tid;
	PyObject *value = Py_None, *location = Py_None;
	enum tr_action act;

	if (!check_ready(self) ||
	    !PyArg_ParseTupleAndKeywords(args, kwds, "i|OO:errno", kwlist, &tid, &value,
					 &location))
		return NULL;
	if (value != Py_None) {
		int err = PyLong_AsLong(value);

		if (err == -1 && PyErr_Occurred())
			return NULL;
		act = tr_session_errno(&self->s, tid, err);
	} else if (location != Py_None) {
		uint64_t at = PyLong_AsUnsignedLongLongMask(location);

		if (PyErr_Occurred())
			return NULL;
		act = tr_session_errno_at(&self->s, tid, at);
	} else {
		act = tr_session_errno(&self->s, tid, -1);
	}
	return PyLong_FromLong(act);
}

static PyObject *Session_forget(SessionObject *self, PyObject *arg)
{
	long pid = PyLong_AsLong(arg);

	if (!check_ready(self) || (pid == -1 && PyErr_Occurred()))
		return NULL;
	tr_session_forget(&self->s, (pid_t)pid);
	Py_RETURN_NONE;
}

static PyObject *Session_freeze(SessionObject *self, PyObject *unused)
{
	if (!check_ready(self))
		return NULL;
	tr_recorder_freeze(&self->s.rec);
	Py_RETURN_NONE;
}

PyDoc_STRVAR(push_doc, "push(fn, dir, pid=0, tid=0, fd=-1, endpoint='', len=0, ret=None,\n"
	     "     errno=0, data=b'', site=0) -> action\n\n"
	     "Records an event decoded elsewhere. fn must be a catalogue name.");

static PyObject *Session_push(SessionObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "fn", "dir", "pid", "tid", "fd", "endpoint", "len", "ret",
				  "errno", "data", "site", NULL };
	const char *fn, *dir, *endpoint = "";
	int pid = 0, tid = 0, err = 0, call;
	long long fd = -1, len = 0;
	unsigned long long site = 0;
	PyObject *ret = Py_None;
	Py_buffer data = { 0 };
	struct tr_event ev;
	enum tr_push_result res;

	if (!check_ready(self) ||
	    !PyArg_ParseTupleAndKeywords(args, kwds, "ss|iiLsLOiy*K:push", kwlist, &fn, &dir, &pid,
					 &tid, &fd, &endpoint, &len, &ret, &err, &data, &site))
		return NULL;
	memset(&ev, 0, sizeof(ev));
	call = tr_catalogue_find(fn);
	if (call < 0) {
		PyErr_Format(PyExc_ValueError, "'%s' is not in the IPC catalogue", fn);
		goto fail;
	}
	if (strcmp(dir, "send") == 0) {
		ev.dir = TR_DIR_SEND;
	} else if (strcmp(dir, "recv") == 0) {
		ev.dir = TR_DIR_RECV;
	} else {
		PyErr_Format(PyExc_ValueError, "dir must be 'send' or 'recv', not '%s'", dir);
		goto fail;
	}
	if (strlen(endpoint) >= TR_ENDPOINT_MAX) {
		PyErr_Format(PyExc_ValueError, "endpoint longer than %d bytes", TR_ENDPOINT_MAX - 1);
		goto fail;
	}
	ev.fn = tr_catalogue[call].name;
	ev.pid = pid;
	ev.tid = tid;
	ev.fd = fd;
	ev.len = len;
	ev.err = err;
	ev.site = site;
	if (ret != Py_None) {
		ev.ret = PyLong_AsLongLong(ret);
		if (ev.ret == -1 && PyErr_Occurred())
			goto fail;
		ev.returned = true;
	}
	strcpy(ev.endpoint, endpoint);
	res = tr_recorder_push(&self->s.rec, &ev, data.buf, (size_t)data.len);
	PyBuffer_Release(&data);
	return PyLong_FromLong(res == TR_PUSH_DISARM ? TR_ACT_DISARM : TR_ACT_CONTINUE);
fail:
	if (data.obj)
		PyBuffer_Release(&data);
	return NULL;
}

PyObject *tr_py_event_dict(const struct tr_event *ev, uint64_t t_us, const uint8_t *data,
			   size_t data_len)
{
	PyObject *ret = ev->returned ? PyLong_FromLongLong(ev->ret) : Py_NewRef(Py_None);
	PyObject *d;

	if (!ret)
		return NULL;
	d = Py_BuildValue("{s:K,s:K,s:i,s:i,s:s,s:s,s:L,s:s,s:L,s:N,s:i,s:y#,s:O,s:K}",
			  "seq", (unsigned long long)ev->seq,
			  "t_us", (unsigned long long)t_us,
			  "pid", ev->pid, "tid", ev->tid,
			  "dir", ev->dir == TR_DIR_SEND ? "send" : "recv",
			  "fn", ev->fn, "fd", (long long)ev->fd, "endpoint", ev->endpoint,
			  "len", (long long)ev->len, "ret", ret, "errno", ev->err,
			  "data", (const char *)data, (Py_ssize_t)data_len,
			  "truncated", ev->truncated ? Py_True : Py_False,
			  "site", (unsigned long long)ev->site);
	return d;
}

static PyObject *event_to_dict(const struct tr_session *s, const struct tr_event *ev,
			       const uint8_t *data, size_t data_len)
{
	return tr_py_event_dict(ev, tr_recorder_t_us(&s->rec, ev), data, data_len);
}

PyDoc_STRVAR(events_doc, "events(last=None) -> list of dicts, oldest first");

static PyObject *Session_events(SessionObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "last", NULL };
	PyObject *last_obj = Py_None, *list;
	Py_ssize_t last = -1;
	size_t n, from = 0;

	if (!check_ready(self) ||
	    !PyArg_ParseTupleAndKeywords(args, kwds, "|O:events", kwlist, &last_obj))
		return NULL;
	if (last_obj != Py_None) {      /* None: every kept event */
		last = PyNumber_AsSsize_t(last_obj, PyExc_OverflowError);
		if (last == -1 && PyErr_Occurred())
			return NULL;
		if (last < 0)
			return PyErr_Format(PyExc_ValueError, "last must be 0 or more");
	}
	n = tr_recorder_len(&self->s.rec);
	if (last >= 0 && (size_t)last < n)
		from = n - (size_t)last;
	list = PyList_New(0);
	if (!list)
		return NULL;
	for (size_t i = from; i < n; i++) {
		const uint8_t *data;
		size_t data_len;
		const struct tr_event *ev = tr_recorder_at(&self->s.rec, i, &data, &data_len);
		PyObject *d = event_to_dict(&self->s, ev, data, data_len);

		if (!d || PyList_Append(list, d) < 0) {
			Py_XDECREF(d);
			Py_DECREF(list);
			return NULL;
		}
		Py_DECREF(d);
	}
	return list;
}

PyDoc_STRVAR(render_doc, "render(meta) -> str\n\n"
	     "The report of this session as JSON text. meta: key, program, argv, pid, started,\n"
	     "debugger, backtrace, stop {reason, signal, status, pid, tid}, processes [...],\n"
	     "yield {...}, sites {pc: {function, file, line}}. See docs/report.md.");

static PyObject *Session_render(SessionObject *self, PyObject *meta_obj)
{
	struct tr_report_meta meta;
	struct site_ctx sc = { 0 };
	struct arena a = { 0 };
	PyObject *result = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (!check_ready(self))
		return NULL;
	memset(&meta, 0, sizeof(meta));
	meta.stop.status = -1;
	if (convert_meta(meta_obj, &meta, &sc, &a) < 0)
		goto out;
	rc = tr_report_render(&self->s.rec, &meta, &text, &len);
	if (sc.failed)
		goto out;
	if (rc < 0) {
		raise_errno(rc, "render report");
		goto out;
	}
	result = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, "strict");
out:
	free(text);
	arena_free(&a);
	return result;
}

PyDoc_STRVAR(absorb_doc, "absorb(ring) -> None\n\n"
	     "Agent mode: replaces this session's recorder with the kept events of a SharedRing\n"
	     "(seq, t, count, dropped, overflow preserved; cap/budget/payload become the ring's)\n"
	     "and freezes it, so render() reports them exactly as in breakpoint mode. The ring's\n"
	     "not_ipc count is added to this session's.");

static PyObject *Session_absorb(SessionObject *self, PyObject *ring)
{
	if (!check_ready(self))
		return NULL;
	if (tr_py_ring_absorb(PyType_GetModule(Py_TYPE(self)), ring, &self->s) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *get_u64_attr(uint64_t v)
{
	return PyLong_FromUnsignedLongLong(v);
}

#define GETTER(name, expr) \
	static PyObject *Session_get_##name(SessionObject *self, void *c) \
	{ \
		if (!check_ready(self)) \
			return NULL; \
		return (expr); \
	}
GETTER(cap, get_u64_attr(self->s.rec.cap))
GETTER(budget, get_u64_attr(self->s.rec.budget))
GETTER(payload, get_u64_attr(self->s.rec.payload))
GETTER(count, get_u64_attr(self->s.rec.count))
GETTER(dropped, get_u64_attr(self->s.rec.dropped))
GETTER(overflow, PyBool_FromLong(self->s.rec.overflow))
GETTER(frozen, PyBool_FromLong(self->s.rec.frozen))
GETTER(not_ipc, get_u64_attr(self->s.not_ipc))
GETTER(unmatched_returns, get_u64_attr(self->s.unmatched_returns))
GETTER(nested, get_u64_attr(self->s.nested))
GETTER(unreadable, get_u64_attr(self->s.unreadable))
GETTER(rehits, get_u64_attr(self->s.rehits))
GETTER(in_flight, get_u64_attr(self->s.npending))

static PyGetSetDef Session_getset[] = {
	{ "cap", (getter)Session_get_cap, NULL, "events the ring keeps", NULL },
	{ "budget", (getter)Session_get_budget, NULL, "events accepted before tracing stops", NULL },
	{ "payload", (getter)Session_get_payload, NULL, "payload preview bytes per event", NULL },
	{ "count", (getter)Session_get_count, NULL, "events accepted", NULL },
	{ "dropped", (getter)Session_get_dropped, NULL, "events evicted from the ring", NULL },
	{ "overflow", (getter)Session_get_overflow, NULL, "the budget was reached", NULL },
	{ "frozen", (getter)Session_get_frozen, NULL, "the ring no longer changes", NULL },
	{ "not_ipc", (getter)Session_get_not_ipc, NULL, "calls on files/terminals skipped", NULL },
	{ "unmatched_returns", (getter)Session_get_unmatched_returns, NULL,
	  "return stops with no call waiting", NULL },
	{ "nested", (getter)Session_get_nested, NULL, "calls inside another catalogue call", NULL },
	{ "unreadable", (getter)Session_get_unreadable, NULL,
	  "calls whose arguments could not be read", NULL },
	{ "rehits", (getter)Session_get_rehits, NULL,
	  "entries reported twice by the debugger (recorded once)", NULL },
	{ "in_flight", (getter)Session_get_in_flight, NULL, "calls waiting for their return", NULL },
	{ NULL },
};

static PyMethodDef Session_methods[] = {
	{ "entry", (PyCFunction)(void (*)(void))Session_entry, METH_VARARGS | METH_KEYWORDS, entry_doc },
	{ "ret", (PyCFunction)(void (*)(void))Session_ret, METH_VARARGS | METH_KEYWORDS, ret_doc },
	{ "errno", (PyCFunction)(void (*)(void))Session_errno, METH_VARARGS | METH_KEYWORDS, errno_doc },
	{ "forget", (PyCFunction)Session_forget, METH_O, "forget(pid): the process exited or exec'd" },
	{ "freeze", (PyCFunction)Session_freeze, METH_NOARGS, "freeze(): the ring stops changing" },
	{ "push", (PyCFunction)(void (*)(void))Session_push, METH_VARARGS | METH_KEYWORDS, push_doc },
	{ "events", (PyCFunction)(void (*)(void))Session_events, METH_VARARGS | METH_KEYWORDS, events_doc },
	{ "render", (PyCFunction)Session_render, METH_O, render_doc },
	{ "absorb", (PyCFunction)Session_absorb, METH_O, absorb_doc },
	{ NULL },
};

static PyType_Slot Session_slots[] = {
	{ Py_tp_doc, "Session(cap=50, budget=5000, payload=64): the recorder of one traced run." },
	{ Py_tp_init, Session_init },
	{ Py_tp_new, PyType_GenericNew },
	{ Py_tp_dealloc, Session_dealloc },
	{ Py_tp_methods, Session_methods },
	{ Py_tp_getset, Session_getset },
	{ 0, NULL },
};

static PyType_Spec Session_spec = {
	.name = "tracerlib._core.Session",
	.basicsize = sizeof(SessionObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = Session_slots,
};

/* ---- module functions ---- */

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
		return raise_errno(rc, dir);
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
		return raise_errno(rc, path);
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
			raise_errno(rc, PyBytes_AS_STRING(bytes_path));
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

static PyObject *mod_catalogue(PyObject *m, PyObject *unused)
{
	PyObject *list = PyList_New((Py_ssize_t)tr_catalogue_len);

	if (!list)
		return NULL;
	for (size_t i = 0; i < tr_catalogue_len; i++) {
		const struct tr_call *c = &tr_catalogue[i];
		PyObject *row = Py_BuildValue("{s:s,s:s,s:O}", "name", c->name, "class",
					      tr_class_name(c->cls), "capture_return",
					      c->capture_return ? Py_True : Py_False);

		if (!row) {
			Py_DECREF(list);
			return NULL;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, row);
	}
	return list;
}

static PyObject *mod_parse_classes(PyObject *m, PyObject *arg)
{
	const char *s = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
	int mask;

	if (!s) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "parse_classes() takes a str");
		return NULL;
	}
	mask = tr_class_parse(s);
	if (mask < 0)
		return PyErr_Format(PyExc_ValueError,
				    "unknown class in '%s': use send, recv, sync, proc", s);
	return PyLong_FromLong(mask);
}

static PyObject *mod_endpoint(PyObject *m, PyObject *args)
{
	int pid;
	long long fd;
	char name[TR_ENDPOINT_MAX];
	int kind;

	if (!PyArg_ParseTuple(args, "iL:endpoint", &pid, &fd))
		return NULL;
	kind = tr_endpoint_resolve(NULL, pid, fd, name, sizeof(name), NULL);
	if (kind < 0)
		return raise_errno(kind, "endpoint");
	return Py_BuildValue("(ss)", tr_endpoint_kind_name(kind), name);
}

static PyObject *mailboxes_to_list(const struct tr_mailbox_set *set)
{
	PyObject *list = PyList_New(0);

	if (!list)
		return NULL;
	for (size_t i = 0; i < set->n; i++) {
		const struct tr_mailbox *mb = &set->items[i];
		PyObject *data = mb->data ? PyBytes_FromStringAndSize((const char *)mb->data,
								      (Py_ssize_t)mb->data_len)
					  : Py_NewRef(Py_None);
		PyObject *d;

		if (!data) {
			Py_DECREF(list);
			return NULL;
		}
		d = Py_BuildValue("{s:L,s:s,s:L,s:L,s:N,s:O,s:z}", "fd", (long long)mb->fd,
				  "endpoint", mb->endpoint ? mb->endpoint : "",
				  "pending", (long long)mb->pending, "messages",
				  (long long)mb->messages, "data", data, "truncated",
				  mb->truncated ? Py_True : Py_False, "error", mb->error);
		if (!d || PyList_Append(list, d) < 0) {
			Py_XDECREF(d);
			Py_DECREF(list);
			return NULL;
		}
		Py_DECREF(d);
	}
	return list;
}

PyDoc_STRVAR(mailboxes_doc, "mailboxes(pid, preview=64, sysv=()) -> list of dicts\n\n"
	     "What is still pending in pid's pipes, sockets and queues (and in the SysV\n"
	     "queues listed), read without consuming it.");

static PyObject *mod_mailboxes(PyObject *m, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "pid", "preview", "sysv", NULL };
	int pid;
	Py_ssize_t preview = TR_PAYLOAD_DEFAULT;
	PyObject *sysv = NULL, *seq = NULL, *result = NULL;
	struct tr_mailbox_set set = { 0 };
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "i|nO:mailboxes", kwlist, &pid, &preview,
					 &sysv))
		return NULL;
	if (preview < 0 || preview > TR_PAYLOAD_MAX)
		return PyErr_Format(PyExc_ValueError, "preview must be 0..%d", TR_PAYLOAD_MAX);
	if (sysv) {
		seq = PySequence_Fast(sysv, "sysv must be a sequence of queue ids");
		if (!seq)
			return NULL;
	}
	rc = tr_mailbox_scan(pid, (size_t)preview, &set);
	if (rc < 0) {
		raise_errno(rc, "mailboxes");
		goto out;
	}
	for (Py_ssize_t i = 0; seq && i < PySequence_Fast_GET_SIZE(seq); i++) {
		long long id = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));

		if (id == -1 && PyErr_Occurred())
			goto out;
		rc = tr_mailbox_sysv(id, (size_t)preview, &set);
		if (rc < 0 && rc != -EINVAL && rc != -EIDRM) {
			raise_errno(rc, "msgctl");
			goto out;
		}
	}
	result = mailboxes_to_list(&set);
out:
	tr_mailbox_set_free(&set);
	Py_XDECREF(seq);
	return result;
}

static PyMethodDef module_methods[] = {
	{ "store_put", mod_store_put, METH_VARARGS,
	  "store_put(dir, stem, text) -> path: write a report into the store, never overwriting" },
	{ "store_put_path", mod_store_put_path, METH_VARARGS,
	  "store_put_path(path, text): write a report to exactly path; fails if it exists" },
	{ "load_report", mod_load_report, METH_O, load_report_doc },
	{ "escape", mod_escape, METH_O, "escape(bytes) -> str, the report's payload form" },
	{ "unescape", mod_unescape, METH_O, "unescape(str) -> bytes, inverse of escape" },
	{ "catalogue", mod_catalogue, METH_NOARGS,
	  "catalogue() -> [{name, class, capture_return}], index = call id" },
	{ "parse_classes", mod_parse_classes, METH_O, "parse_classes('send,recv') -> class mask" },
	{ "endpoint", mod_endpoint, METH_VARARGS, "endpoint(pid, fd) -> (kind, name)" },
	{ "mailboxes", (PyCFunction)(void (*)(void))mod_mailboxes, METH_VARARGS | METH_KEYWORDS,
	  mailboxes_doc },
	{ NULL },
};

int tr_py_add_type(PyObject *module, PyType_Spec *spec)
{
	PyObject *type = PyType_FromModuleAndSpec(module, spec, NULL);
	int rc;

	if (!type)
		return -1;
	rc = PyModule_AddType(module, (PyTypeObject *)type);
	Py_DECREF(type);
	return rc;
}

static int module_exec(PyObject *m)
{
	module_state *st = get_state(m);

	st->session_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Session_spec, NULL);
	if (!st->session_type || PyModule_AddType(m, st->session_type) < 0)
		return -1;
	if (tr_py_add_dwarf(m) < 0 || tr_py_add_yield(m) < 0 || tr_py_add_ring(m) < 0)
		return -1;
#define CONST(name, value) \
	if (PyModule_AddIntConstant(m, name, value) < 0) \
		return -1
	CONST("CONTINUE", TR_ACT_CONTINUE);
	CONST("CATCH_RETURN", TR_ACT_CATCH_RETURN);
	CONST("DISARM", TR_ACT_DISARM);
	CONST("NEED_ERRNO", TR_ACT_NEED_ERRNO);
	CONST("CAP_DEFAULT", TR_CAP_DEFAULT);
	CONST("CAP_MAX", TR_CAP_MAX);
	CONST("BUDGET_DEFAULT", TR_BUDGET_DEFAULT);
	CONST("BUDGET_MAX", TR_BUDGET_MAX);
	CONST("PAYLOAD_DEFAULT", TR_PAYLOAD_DEFAULT);
	CONST("PAYLOAD_MAX", TR_PAYLOAD_MAX);
	CONST("BACKTRACE_DEFAULT", TR_BACKTRACE_DEFAULT);
	CONST("BACKTRACE_MAX", TR_BACKTRACE_MAX);
	CONST("REPORT_VERSION", TR_REPORT_VERSION);
#undef CONST
	return 0;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
	Py_VISIT(get_state(m)->session_type);
	return 0;
}

static int module_clear(PyObject *m)
{
	Py_CLEAR(get_state(m)->session_type);
	return 0;
}

static void module_free(void *m)
{
	module_clear((PyObject *)m);
}

static PyModuleDef_Slot module_slots[] = {
	{ Py_mod_exec, module_exec },
	{ 0, NULL },
};

static struct PyModuleDef core_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "tracerlib._core",
	.m_doc = "Tracer's recorder core: events, ring, budget, endpoints, mailboxes, reports.",
	.m_size = sizeof(module_state),
	.m_methods = module_methods,
	.m_slots = module_slots,
	.m_traverse = module_traverse,
	.m_clear = module_clear,
	.m_free = module_free,
};

PyMODINIT_FUNC PyInit__core(void)
{
	return PyModuleDef_Init(&core_module);
}
