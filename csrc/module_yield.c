/* module_yield.c - tracerlib._core.YieldPolicy: seeded, replayable yield decisions. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <string.h>

#include "module.h"
#include "yield_policy.h"

typedef struct {
	PyObject_HEAD
	struct tr_yield_policy p;
	bool ready;
} YieldObject;

static int Yield_init(YieldObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "seed", "probability", "strategy", NULL };
	struct tr_yield_config cfg;
	unsigned long long seed = 0;
	double probability = 0.5;
	const char *strategy = "sleep";
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|Kds:YieldPolicy", kwlist, &seed,
					 &probability, &strategy))
		return -1;
	tr_yield_config_default(&cfg);
	cfg.seed = seed;
	if (!(probability >= 0.0 && probability <= 1.0)) {
		PyErr_Format(PyExc_ValueError, "probability must be from 0 to 1 (got %R)",
			     PyTuple_Size(args) > 1 ? PyTuple_GET_ITEM(args, 1)
						    : PyDict_GetItemString(kwds, "probability"));
		return -1;
	}
	cfg.probability = probability;
	if (tr_yield_strategy_parse_config(strategy, &cfg) < 0) {
		PyErr_Format(PyExc_ValueError,
			     "strategy is 'yield', 'sleep:MAX_US', 'delay:MAX_US' or 'taper:MAX_US' (1..%u) or "
			     "'pct:DEPTH' (1..%u), not '%s'", TR_YIELD_MAX_US_LIMIT,
			     TR_PCT_DEPTH_LIMIT, strategy);
		return -1;
	}
	if (self->ready)
		tr_yield_policy_destroy(&self->p);
	rc = tr_yield_policy_init(&self->p, &cfg);
	if (rc < 0) {
		self->ready = false;
		PyErr_Format(PyExc_ValueError, "invalid yield policy (%s)", strerror(-rc));
		return -1;
	}
	self->ready = true;
	return 0;
}

static void Yield_dealloc(YieldObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	if (self->ready)
		tr_yield_policy_destroy(&self->p);
	tp->tp_free((PyObject *)self);
	Py_DECREF(tp);
}

static bool ready(YieldObject *self)
{
	if (!self->ready)
		PyErr_SetString(PyExc_RuntimeError, "YieldPolicy not initialised");
	return self->ready;
}

static PyObject *Yield_thread_seen(YieldObject *self, PyObject *args)
{
	int pid, tid;
	int64_t ord;

	if (!ready(self) || !PyArg_ParseTuple(args, "ii:thread_seen", &pid, &tid))
		return NULL;
	ord = tr_yield_thread_seen(&self->p, pid, tid);
	return PyLong_FromLongLong(ord);
}

static PyObject *Yield_thread_gone(YieldObject *self, PyObject *args)
{
	int pid, tid;

	if (!ready(self) || !PyArg_ParseTuple(args, "ii:thread_gone", &pid, &tid))
		return NULL;
	tr_yield_thread_gone(&self->p, pid, tid);
	Py_RETURN_NONE;
}

static PyObject *Yield_process_gone(YieldObject *self, PyObject *arg)
{
	long pid = PyLong_AsLong(arg);

	if (!ready(self) || (pid == -1 && PyErr_Occurred()))
		return NULL;
	tr_yield_process_gone(&self->p, (int32_t)pid);
	Py_RETURN_NONE;
}

PyDoc_STRVAR(decide_doc, "decide(pid, tid, site) -> microseconds to sleep, 0 for sched_yield,\n"
	     "or None for no perturbation. site: a file address (stable across runs).");

static PyObject *Yield_decide(YieldObject *self, PyObject *args)
{
	int pid, tid;
	unsigned long long site;
	struct tr_yield_decision d;

	if (!ready(self) || !PyArg_ParseTuple(args, "iiK:decide", &pid, &tid, &site))
		return NULL;
	if (tr_yield_decide(&self->p, pid, tid, site, &d) < 0 || !d.yield)
		Py_RETURN_NONE;
	return PyLong_FromUnsignedLong(d.us);
}

static PyObject *Yield_reseed(YieldObject *self, PyObject *arg)
{
	unsigned long long seed = PyLong_AsUnsignedLongLongMask(arg);

	if (!ready(self) || PyErr_Occurred())
		return NULL;
	tr_yield_policy_reseed(&self->p, seed);
	Py_RETURN_NONE;
}

static PyObject *Yield_get_info(YieldObject *self, void *c)
{
	struct tr_yield_stats st;
	char strategy[TR_YIELD_STRATEGY_TEXT_MAX];

	if (!ready(self))
		return NULL;
	tr_yield_policy_stats(&self->p, &st);
	if (tr_yield_config_strategy_format(&self->p.cfg, strategy, sizeof(strategy)) < 0)
		strcpy(strategy, "?");
	return Py_BuildValue("{s:K,s:d,s:s,s:I,s:I,s:K,s:K,s:K,s:K}", "seed",
			     (unsigned long long)self->p.cfg.seed, "probability",
			     self->p.cfg.probability, "strategy", strategy, "depth",
			     self->p.cfg.strategy == TR_YIELD_PCT
				     ? (self->p.cfg.depth ? self->p.cfg.depth : TR_PCT_DEPTH_DEFAULT) : 0u,
			     "steps", self->p.cfg.steps, "points",
			     (unsigned long long)st.points, "injected",
			     (unsigned long long)st.yields, "slept_us",
			     (unsigned long long)st.slept_us, "refused",
			     (unsigned long long)st.refused);
}

/* PCT: the change points of process ordinal 0 over `steps` scheduling points. */
static PyObject *Yield_change_points(YieldObject *self, PyObject *arg)
{
	struct tr_yield_config cfg;
	unsigned long long steps;
	PyObject *out;

	if (!ready(self))
		return NULL;
	steps = PyLong_AsUnsignedLongLong(arg);
	if (PyErr_Occurred())
		return NULL;
	cfg = self->p.cfg;
	cfg.steps = steps > TR_PCT_STEPS_LIMIT ? TR_PCT_STEPS_LIMIT : (uint32_t)steps;
	out = PyList_New(0);
	for (uint32_t i = 1; out && cfg.strategy == TR_YIELD_PCT && i < cfg.depth; i++) {
		PyObject *v = PyLong_FromUnsignedLongLong(tr_pct_change_point(&cfg, 0, i));

		if (!v || PyList_Append(out, v) < 0) {
			Py_XDECREF(v);
			Py_CLEAR(out);
			break;
		}
		Py_DECREF(v);
	}
	return out;
}

static PyMethodDef Yield_methods[] = {
	{ "change_points", (PyCFunction)Yield_change_points, METH_O,
	  "change_points(steps): PCT change points of process 0 over that many steps" },
	{ "thread_seen", (PyCFunction)Yield_thread_seen, METH_VARARGS,
	  "thread_seen(pid, tid) -> ordinal: announce threads as the debugger reports them" },
	{ "thread_gone", (PyCFunction)Yield_thread_gone, METH_VARARGS, "thread_gone(pid, tid)" },
	{ "process_gone", (PyCFunction)Yield_process_gone, METH_O, "process_gone(pid)" },
	{ "decide", (PyCFunction)Yield_decide, METH_VARARGS, decide_doc },
	{ "reseed", (PyCFunction)Yield_reseed, METH_O,
	  "reseed(seed): a new run (hunt: S, S+1, ...) with fresh ordinals and counts" },
	{ NULL },
};

static PyGetSetDef Yield_getset[] = {
	{ "info", (getter)Yield_get_info, NULL,
	  "{seed, probability, strategy, points, injected, slept_us, refused}", NULL },
	{ NULL },
};

static PyType_Slot Yield_slots[] = {
	{ Py_tp_doc, "YieldPolicy(seed=0, probability=0.5, strategy='sleep:1000')" },
	{ Py_tp_init, Yield_init },
	{ Py_tp_new, PyType_GenericNew },
	{ Py_tp_dealloc, Yield_dealloc },
	{ Py_tp_methods, Yield_methods },
	{ Py_tp_getset, Yield_getset },
	{ 0, NULL },
};

static PyType_Spec Yield_spec = {
	.name = "tracerlib._core.YieldPolicy",
	.basicsize = sizeof(YieldObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = Yield_slots,
};

int tr_py_add_yield(PyObject *module)
{
	return tr_py_add_type(module, &Yield_spec);
}
