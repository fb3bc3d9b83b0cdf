/* module.c - tracerlib._core: the thin CPython binding of the recorder core. This file holds
 * the module itself (state, constants, the catalogue); each concern binds in its own file:
 * module_session.c (Session), module_report.c (render, store, load_report, escaping),
 * module_mailbox.c (endpoints, mailboxes), module_yield.c (YieldPolicy). The DWARF index is
 * another extension, tracerlib._dwarf (module_dwarf.c), so that libdwarf never loads into the
 * debugger: this one links neither libdwarf nor libelf.
 *
 * Module state instead of globals, types from specs, one exit label per function. Errors from
 * the core (negative errno) become Python exceptions in the binding, and only there. Nothing
 * here may abort: it runs inside the user's debugger. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>

#include "catalogue.h"
#include "module.h"
#include "recorder.h"
#include "report.h"
#include "session.h"

typedef struct {
	PyTypeObject *session_type;
} module_state;

static module_state *get_state(PyObject *module)
{
	return (module_state *)PyModule_GetState(module);
}

PyObject *tr_py_raise_errno(int neg_errno, const char *what)
{
	errno = -neg_errno;
	return PyErr_SetFromErrnoWithFilename(PyExc_OSError, what);
}

static PyObject *mod_catalogue(PyObject *m, PyObject *unused)
{
	PyObject *list = PyList_New((Py_ssize_t)tr_catalogue_len);

	if (!list)
		return NULL;
	for (size_t i = 0; i < tr_catalogue_len; i++) {
		const struct tr_call *c = &tr_catalogue[i];
		PyObject *row = Py_BuildValue("{s:s,s:s,s:z,s:O}", "name", c->name, "class",
					      tr_class_name(c->cls), "handle",
					      tr_handle_name(c->handle), "capture_return",
					      tr_call_records(c) ? Py_True : Py_False);

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
				    "unknown class in '%s': use send, recv, sync, proc, access", s);
	return PyLong_FromLong(mask);
}

static PyMethodDef module_methods[] = {
	{ "catalogue", mod_catalogue, METH_NOARGS,
	  "catalogue() -> [{name, class, handle, capture_return}], index = call id.\n"
	  "handle: what the first argument names ('fd', 'mqd', 'msqid') or None." },
	{ "parse_classes", mod_parse_classes, METH_O, "parse_classes('send,recv') -> class mask" },
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

	st->session_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &tr_py_session_spec, NULL);
	if (!st->session_type || PyModule_AddType(m, st->session_type) < 0)
		return -1;
	if (PyModule_AddFunctions(m, tr_py_report_methods) < 0 ||
	    PyModule_AddFunctions(m, tr_py_mailbox_methods) < 0 ||
	    PyModule_AddFunctions(m, tr_py_filter_methods) < 0)
		return -1;
	if (tr_py_add_yield(m) < 0 || tr_py_add_ring(m) < 0)
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
