/* module_filter.c - the filters (filter.h) seen from Python: checking a setting's text, and
 * the kept calls of a `trace` text (breakpoint mode places breakpoints on those alone). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "catalogue.h"
#include "filter.h"
#include "module.h"

int tr_py_filter_set(struct tr_filter *f, const char *kind, const char *text)
{
	char err[TR_FILTER_ERR_MAX];
	int rc;

	if (!strcmp(kind, "trace"))
		rc = tr_filter_set_trace(f, text, err, sizeof(err));
	else if (!strcmp(kind, "status"))
		rc = tr_filter_set_status(f, text, err, sizeof(err));
	else if (!strcmp(kind, "endpoint"))
		rc = tr_filter_set_endpoint(f, text, err, sizeof(err));
	else {
		PyErr_Format(PyExc_ValueError, "no filter '%s' (trace, status, endpoint)", kind);
		return -1;
	}
	if (rc < 0) {
		PyErr_SetString(PyExc_ValueError, err);
		return -1;
	}
	return 0;
}

static PyObject *mod_filter_check(PyObject *m, PyObject *args)
{
	const char *kind, *text;
	struct tr_filter f;
	PyObject *kept;

	if (!PyArg_ParseTuple(args, "ss:filter_check", &kind, &text))
		return NULL;
	tr_filter_init(&f);
	if (tr_py_filter_set(&f, kind, text) < 0)
		return NULL;
	kept = PyList_New(0);
	for (size_t i = 0; kept && i < tr_catalogue_len; i++) {
		PyObject *name;

		if (!tr_filter_call(&f, (int)i))
			continue;
		name = PyUnicode_FromString(tr_catalogue[i].name);
		if (!name || PyList_Append(kept, name) < 0)
			Py_CLEAR(kept);
		Py_XDECREF(name);
	}
	return kept;
}

PyMethodDef tr_py_filter_methods[] = {
	{ "filter_check", mod_filter_check, METH_VARARGS,
	  "filter_check(kind, text) -> [names of the recorded functions kept]\n\n"
	  "kind: 'trace', 'status' or 'endpoint' (see csrc/filter.h). ValueError with a one-line\n"
	  "reason when text is refused." },
	{ NULL },
};
