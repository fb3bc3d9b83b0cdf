/* module_dwarf.c - tracerlib._dwarf: the DWARF call-site index for Python, an extension of its
 * own. It links libdwarf and libelf, which must never load into gdb (elfutils' libdw exports
 * the same names: dwarf_tag, dwarf_attr... and inside gdb libdwarf's calls bind to libdw's),
 * so only tracerlib/dwarf_worker.py imports it, in a process of its own; tracerlib._core
 * links neither library. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>

#include "dwarf_index.h"

typedef struct {
	PyObject_HEAD
	struct tr_dwarf_index *ix;
} DwarfObject;

static PyObject *raise_dwarf(int neg_errno, const char *path, const char *msg)
{
	if (neg_errno == -ENOENT || neg_errno == -EACCES || neg_errno == -EISDIR) {
		errno = -neg_errno;
		return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
	}
	return PyErr_Format(PyExc_ValueError, "%s: %s", path,
			    msg && msg[0] ? msg : strerror(-neg_errno));
}

static int Dwarf_init(DwarfObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "path", NULL };
	PyObject *path_bytes = NULL;
	char err[256] = "";
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&:DwarfIndex", kwlist, PyUnicode_FSConverter,
					 &path_bytes))
		return -1;
	if (self->ix) {
		tr_dwarf_close(self->ix);
		self->ix = NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	rc = tr_dwarf_open(PyBytes_AS_STRING(path_bytes), &self->ix, err, sizeof(err));
	Py_END_ALLOW_THREADS
	if (rc < 0)
		raise_dwarf(rc, PyBytes_AS_STRING(path_bytes), err);
	Py_DECREF(path_bytes);
	return rc < 0 ? -1 : 0;
}

static void Dwarf_dealloc(DwarfObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	tr_dwarf_close(self->ix);
	tp->tp_free((PyObject *)self);
	Py_DECREF(tp);
}

static bool ready(DwarfObject *self)
{
	if (!self->ix)
		PyErr_SetString(PyExc_RuntimeError, "DwarfIndex not opened");
	return self->ix != NULL;
}

static PyObject *Dwarf_units(DwarfObject *self, PyObject *unused)
{
	PyObject *list;
	size_t n;

	if (!ready(self))
		return NULL;
	n = tr_dwarf_units(self->ix);
	list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list && i < n; i++) {
		const char *name = tr_dwarf_unit_name(self->ix, i);
		PyObject *s = PyUnicode_DecodeFSDefault(name ? name : "");

		if (!s) {
			Py_CLEAR(list);
			break;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, s);
	}
	return list;
}

/* functions: a sequence of callee names (None: any); module: a unit name or path suffix. */
struct filter_args {
	struct tr_site_filter f;
	const char **names;
};

static int build_filter(DwarfObject *self, PyObject *module, PyObject *functions,
			struct filter_args *fa)
{
	memset(fa, 0, sizeof(*fa));
	if (module && module != Py_None) {
		const char *name = PyUnicode_Check(module) ? PyUnicode_AsUTF8(module) : NULL;
		int rc;

		if (!name) {
			if (!PyErr_Occurred())
				PyErr_SetString(PyExc_TypeError, "module must be a str");
			return -1;
		}
		rc = tr_dwarf_find_unit(self->ix, name, &fa->f.unit);
		if (rc == -EEXIST) {
			PyErr_Format(PyExc_LookupError, "module '%s' is ambiguous: give more of its path",
				     name);
			return -1;
		}
		if (rc < 0) {
			PyErr_Format(PyExc_LookupError, "no module '%s' in the program's DWARF", name);
			return -1;
		}
		fa->f.by_unit = true;
	}
	if (functions && functions != Py_None) {
		PyObject *seq = PySequence_Fast(functions, "functions must be a sequence of str");
		Py_ssize_t n;

		if (!seq)
			return -1;
		n = PySequence_Fast_GET_SIZE(seq);
		fa->names = PyMem_Calloc((size_t)n + 1, sizeof(*fa->names));
		if (!fa->names) {
			Py_DECREF(seq);
			PyErr_NoMemory();
			return -1;
		}
		for (Py_ssize_t i = 0; i < n; i++) {
			PyObject *item = PySequence_Fast_GET_ITEM(seq, i);

			/* The strings stay owned by `functions`, which outlives this call. */
			fa->names[i] = PyUnicode_Check(item) ? PyUnicode_AsUTF8(item) : NULL;
			if (!fa->names[i]) {
				if (!PyErr_Occurred())
					PyErr_SetString(PyExc_TypeError, "functions must hold str");
				Py_DECREF(seq);
				PyMem_Free(fa->names);
				fa->names = NULL;
				return -1;
			}
		}
		Py_DECREF(seq);
		fa->f.names = fa->names;
	}
	return 0;
}

static PyObject *opt_str(const char *s)
{
	return s ? PyUnicode_DecodeFSDefault(s) : Py_NewRef(Py_None);
}

static PyObject *site_dict(DwarfObject *self, const struct tr_dwarf_site *s)
{
	const struct tr_dwarf_function *fn =
		s->function != TR_DWARF_NONE ? tr_dwarf_function(self->ix, s->function) : NULL;
	const char *unit = tr_dwarf_unit_name(self->ix, s->unit);

	return Py_BuildValue("{s:N,s:N,s:N,s:i,s:K,s:K,s:N,s:K,s:O,s:O,s:O}",
			     "caller", opt_str(fn ? fn->name : NULL), "callee", opt_str(s->callee),
			     "file", opt_str(s->file), "line", s->line,
			     "call_pc", (unsigned long long)s->call_pc,
			     "return_pc", (unsigned long long)s->return_pc,
			     "module", opt_str(unit),
			     "caller_low_pc", (unsigned long long)(fn ? fn->low_pc : 0),
			     "tail", (s->flags & TR_SITE_TAIL) ? Py_True : Py_False,
			     "from_code", (s->flags & TR_SITE_FROM_CODE) ? Py_True : Py_False,
			     "inlined", (s->flags & TR_SITE_INLINED) ? Py_True : Py_False);
}

PyDoc_STRVAR(sites_doc, "sites(module=None, functions=None, scan=None) -> list of dicts\n\n"
	     "Call sites, optionally of one module (compilation unit) and of the named callees.\n"
	     "scan: the program's ELF path, to also find calls in the code (gcc -O0 emits no\n"
	     "call-site DWARF). Each: caller, callee, file, line, call_pc, return_pc (file\n"
	     "addresses), module, caller_low_pc, tail, from_code, inlined.");

static PyObject *Dwarf_sites(DwarfObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "module", "functions", "scan", NULL };
	PyObject *module = Py_None, *functions = Py_None, *scan = NULL, *list = NULL;
	struct filter_args fa;
	const struct tr_dwarf_site *s;
	size_t cursor = 0, added = 0;
	char err[256] = "";

	if (!ready(self) ||
	    !PyArg_ParseTupleAndKeywords(args, kwds, "|OOO&:sites", kwlist, &module, &functions,
					 PyUnicode_FSConverter, &scan))
		return NULL;
	if (build_filter(self, module, functions, &fa) < 0)
		goto out;
	if (scan) {
		int rc;

		Py_BEGIN_ALLOW_THREADS
		rc = tr_dwarf_scan_calls(self->ix, PyBytes_AS_STRING(scan), &fa.f, &added, err,
					 sizeof(err));
		Py_END_ALLOW_THREADS
		if (rc < 0) {
			raise_dwarf(rc, PyBytes_AS_STRING(scan), err);
			goto out;
		}
	}
	list = PyList_New(0);
	while (list && (s = tr_dwarf_next_site(self->ix, &fa.f, &cursor)) != NULL) {
		PyObject *d = site_dict(self, s);

		if (!d || PyList_Append(list, d) < 0)
			Py_CLEAR(list);
		Py_XDECREF(d);
	}
out:
	PyMem_Free(fa.names);
	Py_XDECREF(scan);
	return list;
}

static PyObject *Dwarf_lookup(DwarfObject *self, PyObject *arg)
{
	unsigned long long pc = PyLong_AsUnsignedLongLongMask(arg);
	const char *function = NULL, *file = NULL;
	int line = 0;

	if (!ready(self) || PyErr_Occurred())
		return NULL;
	if (tr_dwarf_lookup_pc(self->ix, pc, &function, &file, &line) < 0)
		Py_RETURN_NONE;
	return Py_BuildValue("{s:N,s:N,s:O}", "function", opt_str(function), "file",
			     opt_str(file), "line", line ? PyLong_FromLong(line) : Py_None);
}

static PyObject *Dwarf_function(DwarfObject *self, PyObject *arg)
{
	const char *name = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
	uint32_t f;
	const struct tr_dwarf_function *fn;

	if (!ready(self))
		return NULL;
	if (!name) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "function() takes a name");
		return NULL;
	}
	f = tr_dwarf_find_function(self->ix, name);
	if (f == TR_DWARF_NONE)
		Py_RETURN_NONE;
	fn = tr_dwarf_function(self->ix, f);
	return Py_BuildValue("{s:K,s:K,s:N,s:i}", "low_pc", (unsigned long long)fn->low_pc,
			     "high_pc", (unsigned long long)fn->high_pc, "file",
			     opt_str(fn->decl_file), "line", fn->decl_line);
}

PyDoc_STRVAR(variables_doc, "variables() -> list of dicts\n\n"
	     "Variables at static addresses (globals, statics): name, addr (a file address), size\n"
	     "(0 when the type gives none), file, line, function (a function-scope static's).");

static PyObject *Dwarf_variables(DwarfObject *self, PyObject *unused)
{
	size_t n;
	const struct tr_dwarf_variable *v;
	PyObject *list;

	if (!ready(self))
		return NULL;
	v = tr_dwarf_variables(self->ix, &n);
	list = PyList_New(0);
	for (size_t i = 0; list && i < n; i++) {
		const struct tr_dwarf_function *fn = v[i].function != TR_DWARF_NONE
			? tr_dwarf_function(self->ix, v[i].function) : NULL;
		PyObject *d = Py_BuildValue("{s:N,s:K,s:K,s:N,s:i,s:N}", "name", opt_str(v[i].name),
					    "addr", (unsigned long long)v[i].addr,
					    "size", (unsigned long long)v[i].size,
					    "file", opt_str(v[i].decl_file), "line", v[i].decl_line,
					    "function", opt_str(fn ? fn->name : NULL));
		if (!d || PyList_Append(list, d) < 0)
			Py_CLEAR(list);
		Py_XDECREF(d);
	}
	return list;
}

static const char *const access_words[] = { "", "read", "write", "read+write" };

/* One fact as Python: an access as a dict naming its place, the others as tuples of
 * (caller's entry, pc, address). */
static PyObject *fact_object(DwarfObject *self, const struct tr_code_fact *f)
{
	const struct tr_dwarf_function *fn = tr_dwarf_function(self->ix, f->function);
	const char *file = NULL;
	int line = 0;

	if (f->kind != TR_FACT_ACCESS)
		return Py_BuildValue("(KKK)", (unsigned long long)fn->low_pc,
				     (unsigned long long)f->pc, (unsigned long long)f->addr);
	tr_dwarf_lookup_pc(self->ix, f->pc, NULL, &file, &line);
	return Py_BuildValue("{s:K,s:K,s:O,s:s,s:N,s:K,s:N,s:N,s:i}",
			     "pc", (unsigned long long)f->pc, "addr", (unsigned long long)f->addr,
			     "indexed", f->indexed ? Py_True : Py_False,
			     "access", access_words[f->access & 3], "caller", opt_str(fn->name),
			     "caller_low_pc", (unsigned long long)fn->low_pc,
			     "module", opt_str(tr_dwarf_unit_name(self->ix, fn->unit)),
			     "file", opt_str(file), "line", line);
}

PyDoc_STRVAR(code_doc, "code(path) -> dict\n\n"
	     "What the DWARF functions' machine code (in the ELF file at path) does with data and\n"
	     "threads: accesses (dicts: pc, addr, indexed, access, caller, caller_low_pc, module,\n"
	     "file, line), calls, threads (pthread_create calls; addr 0: the start function was not\n"
	     "seen), taken (function addresses loaded), each of those a list of (caller entry, pc,\n"
	     "addr); objects: the .symtab data symbols (addr, size, name); undecoded, truncated.");

static PyObject *Dwarf_code(DwarfObject *self, PyObject *args)
{
	static const char *const lists[] = { "accesses", "calls", "threads", "taken" };
	PyObject *path = NULL, *out = NULL, *l[4] = { NULL }, *objs = NULL;
	struct tr_code_facts facts;
	char err[256] = "";
	int rc;

	if (!ready(self) || !PyArg_ParseTuple(args, "O&:code", PyUnicode_FSConverter, &path))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = tr_dwarf_scan_code(self->ix, PyBytes_AS_STRING(path), &facts, err, sizeof(err));
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		raise_dwarf(rc, PyBytes_AS_STRING(path), err);
		goto done;
	}
	for (int k = 0; k < 4; k++)
		if (!(l[k] = PyList_New(0)))
			goto done;
	for (size_t i = 0; i < facts.nfacts; i++) {
		PyObject *o = fact_object(self, &facts.facts[i]);
		if (!o || PyList_Append(l[facts.facts[i].kind & 3], o) < 0) {
			Py_XDECREF(o);
			goto done;
		}
		Py_DECREF(o);
	}
	if (!(objs = PyList_New(0)))
		goto done;
	for (size_t i = 0; i < facts.nobjects; i++) {
		const struct tr_data_object *o = &facts.objects[i];
		PyObject *t = Py_BuildValue("(KKs)", (unsigned long long)o->addr,
					    (unsigned long long)o->size, o->name);
		if (!t || PyList_Append(objs, t) < 0) {
			Py_XDECREF(t);
			goto done;
		}
		Py_DECREF(t);
	}
	out = Py_BuildValue("{s:O,s:O,s:O,s:O,s:O,s:n,s:O}", lists[0], l[0], lists[1], l[1],
			    lists[2], l[2], lists[3], l[3], "objects", objs,
			    "undecoded", (Py_ssize_t)facts.undecoded,
			    "truncated", facts.truncated ? Py_True : Py_False);
done:
	for (int k = 0; k < 4; k++)
		Py_XDECREF(l[k]);
	Py_XDECREF(objs);
	tr_code_facts_free(&facts);
	Py_XDECREF(path);
	return out;
}

static PyObject *Dwarf_get_has_debug_info(DwarfObject *self, void *c)
{
	return ready(self) ? PyBool_FromLong(tr_dwarf_has_debug_info(self->ix)) : NULL;
}

static PyObject *Dwarf_get_debug_path(DwarfObject *self, void *c)
{
	return ready(self) ? opt_str(tr_dwarf_debug_path(self->ix)) : NULL;
}

static PyObject *Dwarf_get_stats(DwarfObject *self, void *c)
{
	struct tr_dwarf_stats st;

	if (!ready(self))
		return NULL;
	st = tr_dwarf_stats(self->ix);
	return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:n,s:I}", "units", (Py_ssize_t)st.units,
			     "functions", (Py_ssize_t)st.functions, "sites", (Py_ssize_t)st.sites,
			     "sites_from_code", (Py_ssize_t)st.sites_from_code, "bad_units",
			     (Py_ssize_t)st.bad_units, "undecoded", (Py_ssize_t)st.undecoded,
			     "truncated", st.truncated);
}

static PyMethodDef Dwarf_methods[] = {
	{ "units", (PyCFunction)Dwarf_units, METH_NOARGS, "units() -> compilation unit names" },
	{ "sites", (PyCFunction)(void (*)(void))Dwarf_sites, METH_VARARGS | METH_KEYWORDS,
	  sites_doc },
	{ "lookup", (PyCFunction)Dwarf_lookup, METH_O,
	  "lookup(file_pc) -> {function, file, line} or None" },
	{ "variables", (PyCFunction)Dwarf_variables, METH_NOARGS, variables_doc },
	{ "code", (PyCFunction)Dwarf_code, METH_VARARGS, code_doc },
	{ "function", (PyCFunction)Dwarf_function, METH_O,
	  "function(name) -> {low_pc, high_pc, file, line} or None" },
	{ NULL },
};

static PyGetSetDef Dwarf_getset[] = {
	{ "has_debug_info", (getter)Dwarf_get_has_debug_info, NULL, "the file has DWARF units",
	  NULL },
	{ "debug_path", (getter)Dwarf_get_debug_path, NULL,
	  "the file whose DWARF was read (a separate debug file, maybe)", NULL },
	{ "stats", (getter)Dwarf_get_stats, NULL, "counts, and what was cut or skipped", NULL },
	{ NULL },
};

static PyType_Slot Dwarf_slots[] = {
	{ Py_tp_doc, "DwarfIndex(path): compilation units, functions, call sites of an ELF file." },
	{ Py_tp_init, Dwarf_init },
	{ Py_tp_new, PyType_GenericNew },
	{ Py_tp_dealloc, Dwarf_dealloc },
	{ Py_tp_methods, Dwarf_methods },
	{ Py_tp_getset, Dwarf_getset },
	{ 0, NULL },
};

static PyType_Spec Dwarf_spec = {
	.name = "tracerlib._dwarf.DwarfIndex",
	.basicsize = sizeof(DwarfObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = Dwarf_slots,
};

static int module_exec(PyObject *m)
{
	PyObject *type = PyType_FromModuleAndSpec(m, &Dwarf_spec, NULL);
	int rc;

	if (!type)
		return -1;
	rc = PyModule_AddType(m, (PyTypeObject *)type);
	Py_DECREF(type);
	return rc;
}

static PyModuleDef_Slot module_slots[] = {
	{ Py_mod_exec, module_exec },
	{ 0, NULL },
};

static struct PyModuleDef dwarf_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "tracerlib._dwarf",
	.m_doc = "Tracer's DWARF index (libdwarf, libelf): import it only in a worker process, "
		 "never inside gdb or lldb.",
	.m_size = 0,
	.m_slots = module_slots,
};

PyMODINIT_FUNC PyInit__dwarf(void)
{
	return PyModuleDef_Init(&dwarf_module);
}
