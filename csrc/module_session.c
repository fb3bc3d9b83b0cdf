/* module_session.c - tracerlib._core.Session: the recorder of one traced run, fed by the
 * front end's breakpoint stops (entry, ret, errno) or by events decoded elsewhere (push). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>
#include <sys/types.h>

#include "catalogue.h"
#include "endpoint.h"
#include "module.h"
#include "recorder.h"
#include "session.h"

typedef struct {
	PyObject_HEAD
	struct tr_session s;
	bool ready;
} SessionObject;

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
		tr_py_raise_errno(rc, "Session");
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
			tr_py_raise_errno(e, "ptrace(PTRACE_GETREGS)");
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
	if (!check_ready(self))
		return NULL;
	return tr_py_render(&self->s.rec, meta_obj);
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
GETTER(filtered, get_u64_attr(self->s.filtered))

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
	{ "filtered", (getter)Session_get_filtered, NULL,
	  "message calls left out by the status or endpoint filter", NULL },
	{ NULL },
};

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

PyDoc_STRVAR(set_filter_doc, "set_filter(trace='all', status='all', endpoint='*') -> None\n\n"
	     "Which calls this session records from now on (csrc/filter.h). ValueError with a\n"
	     "one-line reason, the filter unchanged, when a text is refused.");

static PyObject *Session_set_filter(SessionObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "trace", "status", "endpoint", NULL };
	const char *text[3] = { "all", "all", "*" };
	struct tr_filter f;

	if (!check_ready(self))
		return NULL;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|sss:set_filter", kwlist, &text[0],
					 &text[1], &text[2]))
		return NULL;
	tr_filter_init(&f);
	for (int i = 0; i < 3; i++)
		if (tr_py_filter_set(&f, kwlist[i], text[i]) < 0)
			return NULL;
	self->s.filter = f;
	Py_RETURN_NONE;
}

static PyMethodDef Session_methods[] = {
	{ "set_filter", (PyCFunction)(void (*)(void))Session_set_filter, METH_VARARGS | METH_KEYWORDS,
	  set_filter_doc },
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

PyType_Spec tr_py_session_spec = {
	.name = "tracerlib._core.Session",
	.basicsize = sizeof(SessionObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = Session_slots,
};
