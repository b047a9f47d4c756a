/* sbxmodule.h — what the files of inspect_sbx._sbx share: the module's one
 * loop and its in-flight count, the GIL hand-over, argument and error
 * helpers, the Session type, and the bookkeeping of a step libsbx runs
 * for an object (pending_*). sbxmodule.c is the core (loop, Session, Call,
 * local sandboxes) and the module; sbx_ec2.c, sbx_k8s.c and sbx_docker.c
 * each add one backend's functions and types (sbx_NAME_add). Not an API. */
#ifndef SBX_PY_SBXMODULE_H
#define SBX_PY_SBXMODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sbx.h"

extern sbx_loop *g_loop;           /* the process's one loop */
extern PyThreadState *g_released;  /* saved by run_once while it runs without the GIL */
extern long g_inflight;            /* steps and calls started and not yet done */
extern int g_running;              /* inside run_once or a close, without the GIL */
extern unsigned long g_owner;      /* the thread that uses libsbx */
extern PyObject *SbxError;

/* A libsbx callback takes the GIL for as long as it touches Python objects. */
PyThreadState *gil_take(void);
void gil_give(PyThreadState *ts);
/* 0 on the thread that owns libsbx (taking it over when nothing is in
 * flight); -1 with RuntimeError. */
int owner_check(void);
/* Raises SbxError for e; returns NULL. */
PyObject *raise_sbx(const sbx_error *e);
/* A str argument as UTF-8 (borrowed from obj), or NULL with TypeError. */
const char *c_str(PyObject *obj, const char *what);
/* A sequence of str as a NULL-ended array (PyMem_Free it), or NULL with an exception. */
const char **c_str_array(PyObject *seq, const char *what);
/* None for no error, else (status, errno, code, message). */
PyObject *err_tuple(const sbx_error *e);
/* Runs cb(*args) (stealing args), reporting an exception as unraisable. GIL held. */
void call_back(PyObject *cb, PyObject *args);

typedef struct {
	PyObject_HEAD
	sbx_session *s;
	PyObject *keep; /* an EC2 sandbox's: its AWS client reopens a dropped data channel */
} SessionObject;
extern PyTypeObject SessionType;
/* A Session owning s, or (s NULL) raise_sbx(err). */
PyObject *session_wrap(sbx_session *s, const sbx_error *err);

/* A step libsbx runs for self (an Ec2's up or down, a K8s's up, down or
 * reconnect), said once: begin holds cb in *slot, counts the step in
 * flight and keeps self alive (libsbx's reference); end, from the step's
 * libsbx callback with the GIL held, runs cb(*args) (args stolen; NULL:
 * building them failed, which is reported) and reverses all three; drop
 * reverses them without calling cb (a step libsbx abandoned). */
void pending_begin(PyObject *self, PyObject **slot, PyObject *cb);
void pending_end(PyObject *self, PyObject **slot, PyObject *args);
void pending_drop(PyObject *self, PyObject **slot);

/* Each backend's functions and types, added to the module m: 0 or -1. */
int sbx_docker_add(PyObject *m);
int sbx_ec2_add(PyObject *m);
int sbx_k8s_add(PyObject *m);

#endif
