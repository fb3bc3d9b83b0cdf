/* module_mailbox.c - what tracerlib._core says about a live process's messages: the name of
 * an fd's endpoint, and the mailboxes (bytes still pending) read without consuming them. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>

#include "endpoint.h"
#include "mailbox.h"
#include "module.h"
#include "recorder.h"

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
		return tr_py_raise_errno(kind, "endpoint");
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
		tr_py_raise_errno(rc, "mailboxes");
		goto out;
	}
	for (Py_ssize_t i = 0; seq && i < PySequence_Fast_GET_SIZE(seq); i++) {
		long long id = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));

		if (id == -1 && PyErr_Occurred())
			goto out;
		rc = tr_mailbox_sysv(id, (size_t)preview, &set);
		if (rc < 0 && rc != -EINVAL && rc != -EIDRM) {
			tr_py_raise_errno(rc, "msgctl");
			goto out;
		}
	}
	result = mailboxes_to_list(&set);
out:
	tr_mailbox_set_free(&set);
	Py_XDECREF(seq);
	return result;
}

PyMethodDef tr_py_mailbox_methods[] = {
	{ "endpoint", mod_endpoint, METH_VARARGS, "endpoint(pid, fd) -> (kind, name)" },
	{ "mailboxes", (PyCFunction)(void (*)(void))mod_mailboxes, METH_VARARGS | METH_KEYWORDS,
	  mailboxes_doc },
	{ NULL },
};
