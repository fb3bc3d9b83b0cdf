/* module_ring.c - tracerlib._core.SharedRing: the debugger side of agent mode.
 *
 *     ring = SharedRing.create(path, cap=50, budget=5000, payload=64)   # before launch
 *     ... run the program with LD_PRELOAD=libtracer_agent.so TRACER_RING=path ...
 *     ring.freeze(); session.absorb(ring); session.render(meta); ring.unlink()
 *
 * The ring itself (layout, protocol) is shared_ring.h; this file is object glue only. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>

#include "module.h"
#include "recorder.h"
#include "session.h"
#include "shared_ring.h"

typedef struct {
	PyObject_HEAD
	struct tr_shared_ring r;
	PyObject *path;     /* str */
	bool ready;
} RingObject;

static bool ready(RingObject *self)
{
	if (!self->ready)
		PyErr_SetString(PyExc_ValueError, "SharedRing is closed (or was never opened)");
	return self->ready;
}

static PyObject *make(PyTypeObject *type, PyObject *path, bool create, int64_t cap,
		      int64_t budget, int64_t payload)
{
	PyObject *bytes = NULL;
	RingObject *self;
	int rc;

	if (!PyUnicode_FSConverter(path, &bytes))
		return NULL;
	self = (RingObject *)type->tp_alloc(type, 0);
	if (!self) {
		Py_DECREF(bytes);
		return NULL;
	}
	self->r.fd = -1;
	Py_BEGIN_ALLOW_THREADS
	rc = create ? tr_shared_ring_create(&self->r, PyBytes_AS_STRING(bytes), cap, budget, payload)
		    : tr_shared_ring_open(&self->r, PyBytes_AS_STRING(bytes));
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		if (rc == -EPROTO)
			PyErr_Format(PyExc_ValueError, "%s: not a tracer ring of version %u",
				     PyBytes_AS_STRING(bytes), TR_RING_VERSION);
		else
			tr_py_raise_errno(rc, PyBytes_AS_STRING(bytes));
		Py_DECREF(bytes);
		Py_DECREF(self);
		return NULL;
	}
	Py_DECREF(bytes);
	self->path = Py_NewRef(path);
	self->ready = true;
	return (PyObject *)self;
}

PyDoc_STRVAR(create_doc, "SharedRing.create(path, cap=50, budget=5000, payload=64) -> ring\n\n"
	     "Creates the ring file (O_EXCL, mode 0600) for a run in agent mode.");

static PyObject *Ring_create(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "path", "cap", "budget", "payload", NULL };
	long long cap = TR_CAP_DEFAULT, budget = TR_BUDGET_DEFAULT, payload = TR_PAYLOAD_DEFAULT;
	PyObject *path;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|LLL:create", kwlist, &path, &cap, &budget,
					 &payload))
		return NULL;
	if (cap < 1 || cap > TR_CAP_MAX)
		return PyErr_Format(PyExc_ValueError, "cap must be 1..%d (got %lld)", TR_CAP_MAX, cap);
	if (budget < 1 || budget > TR_BUDGET_MAX)
		return PyErr_Format(PyExc_ValueError, "budget must be 1..%d (got %lld)",
				    TR_BUDGET_MAX, budget);
	if (payload < 0 || payload > TR_PAYLOAD_MAX)
		return PyErr_Format(PyExc_ValueError, "payload must be 0..%d bytes (got %lld)",
				    TR_PAYLOAD_MAX, payload);
	return make(type, path, true, cap, budget, payload);
}

static PyObject *Ring_open(PyTypeObject *type, PyObject *path)
{
	return make(type, path, false, 0, 0, 0);
}

static int Ring_traverse(RingObject *self, visitproc visit, void *arg)
{
	Py_VISIT(Py_TYPE(self));
	return 0;
}

static void Ring_dealloc(RingObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	PyObject_GC_UnTrack(self);
	if (self->ready)
		tr_shared_ring_close(&self->r);
	Py_XDECREF(self->path);
	tp->tp_free((PyObject *)self);
	Py_DECREF(tp);
}

static PyObject *Ring_close(RingObject *self, PyObject *unused)
{
	if (self->ready)
		tr_shared_ring_close(&self->r);
	self->ready = false;
	Py_RETURN_NONE;
}

static PyObject *Ring_unlink(RingObject *self, PyObject *unused)
{
	PyObject *bytes = NULL;
	int rc;

	if (!self->path)
		return PyErr_Format(PyExc_ValueError, "SharedRing has no path");
	if (!PyUnicode_FSConverter(self->path, &bytes))
		return NULL;
	rc = tr_shared_ring_unlink(PyBytes_AS_STRING(bytes));
	Py_DECREF(bytes);
	if (rc < 0 && rc != -ENOENT)
		return tr_py_raise_errno(rc, "unlink ring");
	Py_RETURN_NONE;
}

static PyObject *Ring_freeze(RingObject *self, PyObject *unused)
{
	if (!ready(self))
		return NULL;
	tr_shared_ring_freeze(&self->r);
	Py_RETURN_NONE;
}

static int snapshot(RingObject *self, struct tr_ring_snapshot *s)
{
	int rc;

	if (!ready(self))
		return -1;
	Py_BEGIN_ALLOW_THREADS
	rc = tr_shared_ring_snapshot(&self->r, s);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		tr_py_raise_errno(rc, "ring snapshot");
		return -1;
	}
	return 0;
}

static uint64_t t_us(const struct tr_ring_snapshot *s, const struct tr_event *ev)
{
	return ev->t_ns < s->first_ns ? 0 : (ev->t_ns - s->first_ns) / 1000;
}

PyDoc_STRVAR(events_doc, "events(last=None) -> list of dicts, oldest first\n\n"
	     "The kept events, with exactly the keys and values of Session.events(). A slot\n"
	     "being written (or torn by a killed writer) is left out, never half-reported.");

static PyObject *Ring_events(RingObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "last", NULL };
	PyObject *last_obj = Py_None, *list = NULL;
	struct tr_ring_snapshot s;
	Py_ssize_t last = -1;
	size_t from = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:events", kwlist, &last_obj))
		return NULL;
	if (last_obj != Py_None) {
		last = PyNumber_AsSsize_t(last_obj, PyExc_OverflowError);
		if (last == -1 && PyErr_Occurred())
			return NULL;
		if (last < 0)
			return PyErr_Format(PyExc_ValueError, "last must be 0 or more");
	}
	if (snapshot(self, &s) < 0)
		return NULL;
	if (last >= 0 && (size_t)last < s.n)
		from = s.n - (size_t)last;
	list = PyList_New(0);
	for (size_t i = from; list && i < s.n; i++) {
		PyObject *d = tr_py_event_dict(&s.events[i], t_us(&s, &s.events[i]),
					       s.data + i * s.payload, s.data_len[i]);

		if (!d || PyList_Append(list, d) < 0)
			Py_CLEAR(list);
		Py_XDECREF(d);
	}
	tr_ring_snapshot_free(&s);
	return list;
}

PyDoc_STRVAR(stats_doc, "stats() -> dict\n\n"
	     "count, kept, dropped, torn, overflow, frozen from one consistent snapshot, plus the\n"
	     "agents' counters: not_ipc, unreadable, busy_skips, nested, yield_points, injected,\n"
	     "slept_us, agents (process images that opened the ring), procs (ordinals given),\n"
	     "notes (process notes claimed: more than notes() holds when the table overflowed),\n"
	     "filtered (calls the status or endpoint filter left out).");

static PyObject *Ring_stats(RingObject *self, PyObject *unused)
{
	struct tr_ring_snapshot s;
	struct tr_ring_header *h;
	PyObject *d;

	if (snapshot(self, &s) < 0)
		return NULL;
	h = self->r.hdr;
	d = Py_BuildValue("{s:K,s:n,s:K,s:K,s:O,s:O,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:I,s:I,s:I,s:K}",
			  "count", (unsigned long long)s.count, "kept", (Py_ssize_t)s.n,
			  "dropped", (unsigned long long)s.dropped,
			  "torn", (unsigned long long)s.torn,
			  "overflow", s.overflow ? Py_True : Py_False,
			  "frozen", s.frozen ? Py_True : Py_False,
			  "not_ipc", (unsigned long long)atomic_load(&h->not_ipc),
			  "unreadable", (unsigned long long)atomic_load(&h->unreadable),
			  "busy_skips", (unsigned long long)atomic_load(&h->busy_skips),
			  "nested", (unsigned long long)atomic_load(&h->nested),
			  "yield_points", (unsigned long long)atomic_load(&h->yield_points),
			  "injected", (unsigned long long)atomic_load(&h->injected),
			  "slept_us", (unsigned long long)atomic_load(&h->slept_us),
			  "agents", (unsigned)atomic_load(&h->agents),
			  "procs", (unsigned)atomic_load(&h->next_proc_ord),
			  "notes", (unsigned)atomic_load(&h->next_note),
			  "filtered", (unsigned long long)atomic_load(&h->filtered));
	tr_ring_snapshot_free(&s);
	return d;
}

PyDoc_STRVAR(deaths_doc, "deaths() -> [dict]\n\n"
	     "The deaths the agents recorded (processes the debugger may not see), in order:\n"
	     "{pid, tid (0: unknown), signal (number), how ('signal' caught by the agent in the\n"
	     "dying process, or 'reaped' by its parent's wait), pc, addr (0: unknown),\n"
	     "frames: [pc, return addresses...] (empty: unknown)}.");

static PyObject *Ring_deaths(RingObject *self, PyObject *unused)
{
	struct tr_ring_death d[TR_RING_DEATHS];
	size_t n;
	PyObject *list;

	if (!ready(self))
		return NULL;
	n = tr_shared_ring_deaths(&self->r, d, TR_RING_DEATHS);
	list = PyList_New(0);
	for (size_t i = 0; list && i < n; i++) {
		PyObject *frames = PyList_New(0), *item = NULL;

		for (uint32_t k = 0; frames && k < d[i].nframes; k++) {
			PyObject *pc = PyLong_FromUnsignedLongLong(d[i].frames[k]);

			if (!pc || PyList_Append(frames, pc) < 0)
				Py_CLEAR(frames);
			Py_XDECREF(pc);
		}
		if (frames)
			item = Py_BuildValue(
				"{s:i,s:i,s:i,s:s,s:K,s:K,s:O}", "pid", d[i].pid, "tid", d[i].tid,
				"signal", d[i].sig,
				"how", d[i].how == TR_DEATH_HANDLER ? "signal" : "reaped",
				"pc", (unsigned long long)d[i].pc, "addr", (unsigned long long)d[i].addr,
				"frames", frames);
		Py_XDECREF(frames);
		if (!item || PyList_Append(list, item) < 0)
			Py_CLEAR(list);
		Py_XDECREF(item);
	}
	return list;
}

static const char *const note_what[] = {
	[TR_NOTE_AGENT] = "agent", [TR_NOTE_STATIC] = "static", [TR_NOTE_SETUID] = "setuid",
	[TR_NOTE_NO_PRELOAD] = "no-preload", [TR_NOTE_NO_RING] = "no-ring",
};

PyDoc_STRVAR(notes_doc, "notes() -> [dict]\n\n"
	     "What covers each process, as the agents noted it, oldest first: {what ('agent':\n"
	     "the agent runs in it; 'static', 'setuid', 'no-preload', 'no-ring': an exec the\n"
	     "agent saw it would not enter), pid, ppid, exe, t_ns}. The newest note of a pid wins.");

static PyObject *Ring_notes(RingObject *self, PyObject *unused)
{
	static struct tr_ring_note n[TR_RING_NOTES];   /* the GIL serialises callers */
	size_t count;
	PyObject *list;

	if (!ready(self))
		return NULL;
	count = tr_shared_ring_notes(&self->r, n, TR_RING_NOTES);
	list = PyList_New(0);
	for (size_t i = 0; list && i < count; i++) {
		const char *what = n[i].what < sizeof(note_what) / sizeof(note_what[0]) &&
				   note_what[n[i].what] ? note_what[n[i].what] : "unknown";
		PyObject *item = Py_BuildValue(
			"{s:s,s:i,s:i,s:N,s:K}", "what", what, "pid", n[i].pid, "ppid", n[i].ppid,
			"exe", PyUnicode_DecodeFSDefault(n[i].exe),
			"t_ns", (unsigned long long)n[i].t_ns);

		if (!item || PyList_Append(list, item) < 0)
			Py_CLEAR(list);
		Py_XDECREF(item);
	}
	return list;
}

int tr_py_ring_absorb(PyObject *module, PyObject *ring, struct tr_session *sess)
{
	PyObject *type = module ? PyObject_GetAttrString(module, "SharedRing") : NULL;
	struct tr_recorder_config cfg;
	struct tr_ring_snapshot s;
	RingObject *self = (RingObject *)ring;
	int ok, rc;

	if (!type)
		return -1;
	ok = PyObject_IsInstance(ring, type);
	Py_DECREF(type);
	if (ok <= 0) {
		if (ok == 0)
			PyErr_SetString(PyExc_TypeError, "absorb() takes a SharedRing");
		return -1;
	}
	if (snapshot(self, &s) < 0)
		return -1;
	cfg.cap = (int64_t)s.cap;
	cfg.budget = (int64_t)s.budget;
	cfg.payload = (int64_t)s.payload;
	rc = tr_recorder_load(&sess->rec, &cfg, s.events, s.data, s.payload, s.data_len, s.n,
			      s.count, s.first_ns, s.overflow);
	if (rc == 0) {
		sess->not_ipc += atomic_load(&self->r.hdr->not_ipc);
		sess->filtered += atomic_load(&self->r.hdr->filtered);
	}
	tr_ring_snapshot_free(&s);
	if (rc < 0) {
		tr_py_raise_errno(rc, "absorb ring");
		return -1;
	}
	return 0;
}

#define GETTER(name, expr) \
	static PyObject *Ring_get_##name(RingObject *self, void *c) \
	{ \
		if (!ready(self)) \
			return NULL; \
		return (expr); \
	}
GETTER(cap, PyLong_FromUnsignedLongLong(self->r.hdr->cap))
GETTER(budget, PyLong_FromUnsignedLongLong(self->r.hdr->budget))
GETTER(payload, PyLong_FromUnsignedLong(self->r.hdr->payload))
GETTER(overflow, PyBool_FromLong(atomic_load(&self->r.hdr->overflow)))
GETTER(frozen, PyBool_FromLong(atomic_load(&self->r.hdr->frozen)))
GETTER(injected, PyLong_FromUnsignedLongLong(atomic_load(&self->r.hdr->injected)))
GETTER(injected_lib, PyLong_FromUnsignedLongLong(atomic_load(&self->r.hdr->injected_lib)))
GETTER(not_ipc, PyLong_FromUnsignedLongLong(atomic_load(&self->r.hdr->not_ipc)))

static PyObject *Ring_get_pct(RingObject *self, void *c)
{
	struct tr_ring_header *h;

	if (!ready(self))
		return NULL;
	h = self->r.hdr;
	return Py_BuildValue("{s:K,s:K,s:I}",
			     "pct_steps", (unsigned long long)atomic_load(&h->pct_steps),
			     "pct_steals", (unsigned long long)atomic_load(&h->pct_steals),
			     "pct_changes", (unsigned)atomic_load(&h->pct_changes));
}

static PyObject *stat_field(RingObject *self, const char *key)
{
	PyObject *d = Ring_stats(self, NULL), *v;

	if (!d)
		return NULL;
	v = Py_XNewRef(PyDict_GetItemString(d, key));
	Py_DECREF(d);
	return v;
}

static PyObject *Ring_get_count(RingObject *self, void *c) { return stat_field(self, "count"); }
static PyObject *Ring_get_dropped(RingObject *self, void *c) { return stat_field(self, "dropped"); }
static PyObject *Ring_get_path(RingObject *self, void *c) { return Py_NewRef(self->path ? self->path : Py_None); }

static PyGetSetDef Ring_getset[] = {
	{ "path", (getter)Ring_get_path, NULL, "the ring file", NULL },
	{ "cap", (getter)Ring_get_cap, NULL, "events the ring keeps", NULL },
	{ "budget", (getter)Ring_get_budget, NULL, "events accepted before recording stops", NULL },
	{ "payload", (getter)Ring_get_payload, NULL, "payload preview bytes per event", NULL },
	{ "count", (getter)Ring_get_count, NULL, "events accepted", NULL },
	{ "dropped", (getter)Ring_get_dropped, NULL, "events accepted but not kept", NULL },
	{ "overflow", (getter)Ring_get_overflow, NULL, "the budget was reached", NULL },
	{ "frozen", (getter)Ring_get_frozen, NULL, "writers have stopped", NULL },
	{ "injected", (getter)Ring_get_injected, NULL, "yields the agents injected", NULL },
	{ "injected_lib", (getter)Ring_get_injected_lib, NULL,
	  "of those, yields at call sites inside a library (not the program)", NULL },
	{ "pct", (getter)Ring_get_pct, NULL,
	  "PCT counters of the agents: pct_steps, pct_steals, pct_changes", NULL },
	{ "not_ipc", (getter)Ring_get_not_ipc, NULL, "calls on files/terminals skipped", NULL },
	{ NULL },
};

static PyObject *Ring_enter(PyObject *self, PyObject *unused)
{
	return Py_NewRef(self);
}

static PyObject *Ring_exit(RingObject *self, PyObject *args)
{
	return Ring_close(self, NULL);
}

static PyMethodDef Ring_methods[] = {
	{ "create", (PyCFunction)(void (*)(void))Ring_create,
	  METH_VARARGS | METH_KEYWORDS | METH_CLASS, create_doc },
	{ "open", (PyCFunction)Ring_open, METH_O | METH_CLASS,
	  "SharedRing.open(path) -> ring: map an existing ring (ValueError if it is not one)" },
	{ "events", (PyCFunction)(void (*)(void))Ring_events, METH_VARARGS | METH_KEYWORDS,
	  events_doc },
	{ "stats", (PyCFunction)Ring_stats, METH_NOARGS, stats_doc },
	{ "deaths", (PyCFunction)Ring_deaths, METH_NOARGS, deaths_doc },
	{ "notes", (PyCFunction)Ring_notes, METH_NOARGS, notes_doc },
	{ "freeze", (PyCFunction)Ring_freeze, METH_NOARGS, "freeze(): the agents stop writing" },
	{ "unlink", (PyCFunction)Ring_unlink, METH_NOARGS,
	  "unlink(): remove the file (this mapping stays readable until close)" },
	{ "close", (PyCFunction)Ring_close, METH_NOARGS, "close(): unmap" },
	{ "__enter__", (PyCFunction)Ring_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)Ring_exit, METH_VARARGS, NULL },
	{ NULL },
};

static PyType_Slot Ring_slots[] = {
	{ Py_tp_doc, "SharedRing: the agent-mode ring in shared memory (create() or open())." },
	{ Py_tp_dealloc, Ring_dealloc },
	{ Py_tp_traverse, Ring_traverse },
	{ Py_tp_methods, Ring_methods },
	{ Py_tp_getset, Ring_getset },
	{ 0, NULL },
};

static PyType_Spec Ring_spec = {
	.name = "tracerlib._core.SharedRing",
	.basicsize = sizeof(RingObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC |
		 Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = Ring_slots,
};

int tr_py_add_ring(PyObject *module)
{
	if (tr_py_add_type(module, &Ring_spec) < 0)
		return -1;
	return PyModule_AddIntConstant(module, "RING_VERSION", TR_RING_VERSION);
}
