/* module.h - the parts of the tracerlib._core binding that live in their own files. */
#ifndef TRACER_MODULE_H
#define TRACER_MODULE_H

#include <Python.h>

/* Creates a heap type from spec and adds it to the module; 0 or -1 with an exception set. */
int tr_py_add_type(PyObject *module, PyType_Spec *spec);

/* Each adds its type to the module; 0 or -1 with an exception set. */
int tr_py_add_dwarf(PyObject *module);
int tr_py_add_yield(PyObject *module);

#endif
