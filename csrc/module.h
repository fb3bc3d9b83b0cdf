/* module.h - the parts of the tracerlib._core binding that live in their own files. */
#ifndef TRACER_MODULE_H
#define TRACER_MODULE_H

#include <Python.h>

/* Creates a heap type from spec and adds it to the module; 0 or -1 with an exception set. */
int tr_py_add_type(PyObject *module, PyType_Spec *spec);

/* Each adds its type to the module; 0 or -1 with an exception set. */
int tr_py_add_dwarf(PyObject *module);
int tr_py_add_yield(PyObject *module);
int tr_py_add_ring(PyObject *module);

struct tr_event;
struct tr_session;

/* A core error (negative errno) as OSError; returns NULL. The one place errors are turned
 * into exceptions. */
PyObject *tr_py_raise_errno(int neg_errno, const char *what);
/* One event as the dict Session.events() returns (and the report lists). */
PyObject *tr_py_event_dict(const struct tr_event *ev, uint64_t t_us, const uint8_t *data,
			   size_t data_len);
/* Session.absorb(ring): loads the shared ring's kept events into s (module_ring.c). 0 or -1
 * with an exception set. */
int tr_py_ring_absorb(PyObject *module, PyObject *ring, struct tr_session *s);

#endif
