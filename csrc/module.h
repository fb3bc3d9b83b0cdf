/* module.h - private to the tracerlib._core binding: what its files (module.c and the
 * module_*.c beside it) offer one another. module.c builds the module from these; no other
 * file of the core includes this header. */
#ifndef TRACER_MODULE_H
#define TRACER_MODULE_H

#include <Python.h>

struct tr_recorder;

/* Sets OSError from a negative errno value, naming `what`; returns NULL. */
PyObject *tr_py_raise_errno(int neg_errno, const char *what);

/* Creates a heap type from spec and adds it to the module; 0 or -1 with an exception set. */
int tr_py_add_type(PyObject *module, PyType_Spec *spec);

/* module_session.c: the Session type. */
extern PyType_Spec tr_py_session_spec;

/* module_report.c: store_put, store_put_path, load_report, escape, unescape; and the report
 * of a recorder as JSON text, from the meta dict Session.render() takes (a new str, or NULL
 * with an exception set). */
extern PyMethodDef tr_py_report_methods[];
PyObject *tr_py_render(const struct tr_recorder *rec, PyObject *meta);

/* module_mailbox.c: endpoint, mailboxes. */
extern PyMethodDef tr_py_mailbox_methods[];

/* module_yield.c: adds the YieldPolicy type; 0 or -1 with an exception set. */
int tr_py_add_yield(PyObject *module);

/* module_ring.c: adds the SharedRing type (agent mode); 0 or -1 with an exception set. */
int tr_py_add_ring(PyObject *module);

struct tr_event;
struct tr_session;
struct tr_filter;

/* module_filter.c: filter_check; and one part of a filter set from its text ("trace",
 * "status", "endpoint"): 0, or -1 with ValueError (the one-line reason) set. */
extern PyMethodDef tr_py_filter_methods[];
int tr_py_filter_set(struct tr_filter *f, const char *kind, const char *text);

/* module_session.c: one event as the dict Session.events() returns (and the report lists). */
PyObject *tr_py_event_dict(const struct tr_event *ev, uint64_t t_us, const uint8_t *data,
			   size_t data_len);
/* Session.absorb(ring): loads the shared ring's kept events into s (module_ring.c). 0 or -1
 * with an exception set. */
int tr_py_ring_absorb(PyObject *module, PyObject *ring, struct tr_session *s);

#endif
