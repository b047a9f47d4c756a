/* sbxmodule.c — inspect_sbx._sbx: libsbx for Python, driven from asyncio.
 *
 * The module owns the process's one sbx_loop. Python never blocks in it:
 * the asyncio side (inspect_sbx/loop.py) watches loop_fd() for readability,
 * wakes after next_timeout() and then calls run_once(), which runs one
 * non-blocking iteration with the GIL released. libsbx calls back into
 * Python (on_done, on_output) only from inside run_once or synchronously
 * from the call that started an operation; the callbacks take the GIL back
 * for as long as they touch Python objects.
 *
 * libsbx is single-threaded: one thread at a time may use it, the thread
 * running the asyncio loop. Another thread may take over only while no call
 * is in flight; otherwise it gets a RuntimeError rather than a data race.
 *
 * Objects: Session (one agent connection), Call (one exec or file
 * transfer in flight), Ec2 (one EC2 sandbox's launch and removal) and K8s (one Helm release's install, pods,
 * agents and removal). A Call holds a reference to itself while libsbx owns the operation, so it lives until
 * its on_done has run; Ec2 and K8s do the same while a step of theirs runs. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/ec2_sandbox.h"
#include "docker/restart.h"
#include "docker/sandbox.h"
#include "k8s/compose.h"
#include "k8s/sandbox.h"
#include "local/box.h"
#include "sbx.h"

static sbx_loop *g_loop;
/* The thread state saved by run_once while it runs without the GIL; a
 * callback restores it and saves it again before returning to libsbx. */
static PyThreadState *g_released;
static long g_inflight; /* calls started and not yet done */
static int g_running;   /* inside run_once or a close, without the GIL */
static unsigned long g_owner; /* the thread that uses libsbx */
static PyObject *SbxError;

static PyThreadState *gil_take(void)
{
	PyThreadState *ts = g_released;
	if (ts) {
		g_released = NULL;
		PyEval_RestoreThread(ts);
	}
	return ts;
}

static void gil_give(PyThreadState *ts)
{
	if (ts)
		g_released = PyEval_SaveThread();
}

/* 0 when the calling thread may use libsbx now, else -1 with RuntimeError. */
static int owner_check(void)
{
	unsigned long me = PyThread_get_thread_ident();
	if (me == g_owner)
		return 0;
	if (g_inflight == 0 && !g_running) {
		g_owner = me;
		return 0;
	}
	PyErr_SetString(PyExc_RuntimeError, "sbx: libsbx is in use by another thread (its calls are in flight); "
					    "drive all sbx calls from the thread running the asyncio loop");
	return -1;
}

/* SbxError(status, errno, code, message) */
static PyObject *raise_sbx(const sbx_error *e)
{
	PyObject *args = Py_BuildValue("(iiss)", (int)e->status, e->err_no, e->code, e->message);
	if (args) {
		PyErr_SetObject(SbxError, args);
		Py_DECREF(args);
	}
	return NULL;
}

/* A C string from a str (UTF-8) or bytes argument, without embedded NULs.
 * The pointer lives as long as obj. */
static const char *c_str(PyObject *obj, const char *what)
{
	const char *p;
	Py_ssize_t n;
	if (PyUnicode_Check(obj)) {
		p = PyUnicode_AsUTF8AndSize(obj, &n);
		if (!p)
			return NULL;
	} else if (PyBytes_Check(obj)) {
		p = PyBytes_AS_STRING(obj);
		n = PyBytes_GET_SIZE(obj);
	} else {
		PyErr_Format(PyExc_TypeError, "%s must be str or bytes, not %.80s", what, Py_TYPE(obj)->tp_name);
		return NULL;
	}
	if ((Py_ssize_t)strlen(p) != n) {
		PyErr_Format(PyExc_ValueError, "%s contains a NUL character", what);
		return NULL;
	}
	return p;
}

/* A NULL-terminated array of C strings from a list or tuple; free the array
 * (not the strings, owned by seq's items, which seq keeps alive) with
 * PyMem_Free. */
static const char **c_str_array(PyObject *seq, const char *what)
{
	if (!PyList_Check(seq) && !PyTuple_Check(seq)) {
		PyErr_Format(PyExc_TypeError, "expected a list of strings, not %.80s", Py_TYPE(seq)->tp_name);
		return NULL;
	}
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	const char **v = PyMem_Calloc((size_t)n + 1, sizeof *v);
	if (!v) {
		PyErr_NoMemory();
		return NULL;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		v[i] = c_str(PySequence_Fast_GET_ITEM(seq, i), what);
		if (!v[i]) {
			PyMem_Free(v);
			return NULL;
		}
	}
	return v;
}

/* ---------------------------------------------------------------- Session */

typedef struct {
	PyObject_HEAD
	sbx_session *s;
	PyObject *keep; /* an EC2 sandbox's: its AWS client reopens a dropped data channel */
} SessionObject;

static PyTypeObject SessionType;

static PyObject *session_wrap(sbx_session *s, const sbx_error *err)
{
	if (!s)
		return raise_sbx(err);
	SessionObject *so = PyObject_New(SessionObject, &SessionType);
	if (!so) {
		sbx_session_close(s);
		return NULL;
	}
	so->s = s;
	so->keep = NULL;
	return (PyObject *)so;
}

static int session_check(SessionObject *so)
{
	if (owner_check() < 0)
		return -1;
	if (!so->s) {
		PyErr_SetString(PyExc_ValueError, "the sbx session is closed");
		return -1;
	}
	return 0;
}

/* Closing waits a moment for a local agent to exit: without the GIL. The
 * pending calls complete (SBX_E_CANCELLED) through callbacks that take it. */
static void close_session(sbx_session *s)
{
	PyThreadState *outer = g_released; /* NULL: the caller holds the GIL */
	int was_running = g_running;
	g_running = 1;
	g_released = PyEval_SaveThread();
	sbx_session_close(s);
	PyEval_RestoreThread(g_released);
	g_released = outer;
	g_running = was_running;
}

static PyObject *session_close(SessionObject *so, PyObject *unused)
{
	(void)unused;
	if (so->s && owner_check() < 0)
		return NULL;
	sbx_session *s = so->s;
	so->s = NULL;
	if (s)
		close_session(s);
	Py_RETURN_NONE;
}

static void session_dealloc(SessionObject *so)
{
	if (so->s)
		close_session(so->s);
	Py_XDECREF(so->keep);
	PyObject_Free(so);
}

static PyObject *session_get_ready(SessionObject *so, void *c)
{
	(void)c;
	return PyBool_FromLong(so->s && sbx_session_ready(so->s));
}

static PyObject *session_get_failure(SessionObject *so, void *c)
{
	(void)c;
	if (!so->s)
		return Py_BuildValue("(iiss)", (int)SBX_E_CANCELLED, ECANCELED, "closed", "the session was closed");
	const sbx_error *e = sbx_session_failure(so->s);
	if (!e)
		Py_RETURN_NONE;
	return Py_BuildValue("(iiss)", (int)e->status, e->err_no, e->code, e->message);
}

static PyObject *session_get_boot_id(SessionObject *so, void *c)
{
	(void)c;
	if (!so->s || !sbx_session_ready(so->s))
		Py_RETURN_NONE;
	return PyUnicode_FromString(sbx_session_boot_id(so->s));
}

static PyObject *session_get_pending(SessionObject *so, void *c)
{
	(void)c;
	return PyLong_FromSize_t(so->s ? sbx_session_pending(so->s) : 0);
}

/* ---------------------------------------------------------------- Call */

typedef struct {
	PyObject_HEAD
	sbx_call *c;          /* NULL once done */
	PyObject *session;    /* keeps the session object alive */
	PyObject *on_done;
	PyObject *on_output;
	PyObject *keep;       /* bytes libsbx reads from while the call runs */
	PyObject *path;       /* bytes: the path libsbx keeps a pointer to */
	int stream_stdin;
} CallObject;

static PyTypeObject CallType;

static CallObject *call_new_obj(SessionObject *so, PyObject *on_done)
{
	CallObject *co = PyObject_GC_New(CallObject, &CallType);
	if (!co)
		return NULL;
	co->c = NULL;
	co->session = Py_NewRef((PyObject *)so);
	co->on_done = Py_NewRef(on_done);
	co->on_output = NULL;
	co->keep = NULL;
	co->path = NULL;
	co->stream_stdin = 0;
	PyObject_GC_Track(co);
	return co;
}

/* Runs on_done(*args) and drops libsbx's reference. GIL held. */
static void call_complete(CallObject *co, PyObject *args)
{
	co->c = NULL;
	g_inflight--;
	PyObject *cb = co->on_done;
	co->on_done = NULL;
	if (args && cb) {
		PyObject *r = PyObject_CallObject(cb, args);
		if (!r)
			PyErr_WriteUnraisable(cb);
		Py_XDECREF(r);
	} else if (!args) {
		PyErr_WriteUnraisable((PyObject *)co);
	}
	Py_XDECREF(args);
	Py_XDECREF(cb);
	Py_CLEAR(co->on_output);
	Py_CLEAR(co->keep);
	Py_CLEAR(co->path);
	Py_DECREF(co);
}

static PyObject *bytes_or_empty(const uint8_t *p, size_t n)
{
	return PyBytes_FromStringAndSize(p ? (const char *)p : "", p ? (Py_ssize_t)n : 0);
}

static void exec_on_done(void *ud, sbx_exec_result *r)
{
	PyThreadState *ts = gil_take();
	CallObject *co = ud;
	PyObject *out = bytes_or_empty(r->out, r->out_len);
	PyObject *err = bytes_or_empty(r->err, r->err_len);
	PyObject *args = out && err
				 ? Py_BuildValue("(iissiiiiOO)", (int)r->error.status, r->error.err_no, r->error.code,
						 r->error.message, r->exit_code, r->signal, r->timed_out, r->truncated, out, err)
				 : NULL;
	Py_XDECREF(out);
	Py_XDECREF(err);
	call_complete(co, args);
	gil_give(ts);
}

static void exec_on_output(void *ud, int fd, const uint8_t *p, size_t n)
{
	PyThreadState *ts = gil_take();
	CallObject *co = ud;
	if (co->on_output) {
		PyObject *r = PyObject_CallFunction(co->on_output, "iy#", fd, (const char *)p, (Py_ssize_t)n);
		if (!r)
			PyErr_WriteUnraisable(co->on_output);
		Py_XDECREF(r);
	}
	gil_give(ts);
}

static void file_on_done(void *ud, sbx_file_result *r)
{
	PyThreadState *ts = gil_take();
	CallObject *co = ud;
	PyObject *data = r->data ? bytes_or_empty(r->data, r->len) : Py_NewRef(Py_None);
	PyObject *args = data ? Py_BuildValue("(iissOK)", (int)r->error.status, r->error.err_no, r->error.code,
					      r->error.message, data, (unsigned long long)r->size)
			      : NULL;
	Py_XDECREF(data);
	call_complete(co, args);
	gil_give(ts);
}

static int call_check(CallObject *co)
{
	if (owner_check() < 0)
		return -1;
	if (!co->c) {
		PyErr_SetString(PyExc_ValueError, "the call has finished");
		return -1;
	}
	return 0;
}

static PyObject *call_write_stdin(CallObject *co, PyObject *arg)
{
	if (call_check(co) < 0)
		return NULL;
	Py_buffer b;
	if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
		return NULL;
	int rc = sbx_call_write_stdin(co->c, b.buf, (size_t)b.len);
	PyBuffer_Release(&b);
	if (rc < 0) {
		PyErr_SetString(PyExc_ValueError,
				co->stream_stdin ? "stdin is closed" : "the call was not started with stream_stdin");
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *call_close_stdin(CallObject *co, PyObject *unused)
{
	(void)unused;
	if (call_check(co) < 0)
		return NULL;
	if (sbx_call_close_stdin(co->c) < 0) {
		PyErr_SetString(PyExc_ValueError, "the call was not started with stream_stdin");
		return NULL;
	}
	Py_RETURN_NONE;
}

/* With manual_credit: n more output bytes were consumed; their credit goes
 * back to the agent. A finished call ignores it. */
static PyObject *call_consumed(CallObject *co, PyObject *arg)
{
	Py_ssize_t n = PyLong_AsSsize_t(arg);
	if (n == -1 && PyErr_Occurred())
		return NULL;
	if (n < 0) {
		PyErr_SetString(PyExc_ValueError, "consumed() wants a byte count >= 0");
		return NULL;
	}
	if (!co->c)
		Py_RETURN_NONE;
	if (owner_check() < 0)
		return NULL;
	if (sbx_call_consumed(co->c, (size_t)n) < 0) {
		PyErr_SetString(PyExc_ValueError, "the call was not started with manual_credit");
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *call_stdin_pending(CallObject *co, PyObject *unused)
{
	(void)unused;
	return PyLong_FromSize_t(co->c ? sbx_call_stdin_pending(co->c) : 0);
}

/* Returns False when the command has not started yet (no process to signal). */
static PyObject *call_signal(CallObject *co, PyObject *arg)
{
	if (call_check(co) < 0)
		return NULL;
	long signo = PyLong_AsLong(arg);
	if (signo == -1 && PyErr_Occurred())
		return NULL;
	if (signo <= 0 || signo >= 65) {
		PyErr_Format(PyExc_ValueError, "bad signal number %ld", signo);
		return NULL;
	}
	return PyBool_FromLong(sbx_call_signal(co->c, (int)signo) == 0);
}

/* A tty exec's new window size; False when the call is no tty exec, has
 * not started, or the agent cannot resize. */
static PyObject *call_resize(CallObject *co, PyObject *args)
{
	unsigned rows, cols;
	if (!PyArg_ParseTuple(args, "II", &rows, &cols))
		return NULL;
	if (rows < 1 || cols < 1 || rows > 65535 || cols > 65535) {
		PyErr_SetString(PyExc_ValueError, "rows and cols must be 1..65535");
		return NULL;
	}
	if (call_check(co) < 0)
		return NULL;
	return PyBool_FromLong(sbx_call_resize(co->c, rows, cols) == 0);
}

/* on_done still runs (with SBX_E_CANCELLED), now or from the loop. */
static PyObject *call_cancel(CallObject *co, PyObject *unused)
{
	(void)unused;
	if (co->c && owner_check() < 0)
		return NULL;
	if (co->c)
		sbx_call_cancel(co->c);
	Py_RETURN_NONE;
}

static PyObject *call_get_done(CallObject *co, void *c)
{
	(void)c;
	return PyBool_FromLong(co->c == NULL);
}

static int call_traverse(CallObject *co, visitproc visit, void *arg)
{
	Py_VISIT(co->session);
	Py_VISIT(co->on_done);
	Py_VISIT(co->on_output);
	return 0;
}

static int call_clear(CallObject *co)
{
	if (co->c) /* libsbx still holds a reference: cannot be garbage */
		return 0;
	Py_CLEAR(co->on_done);
	Py_CLEAR(co->on_output);
	return 0;
}

static void call_dealloc(CallObject *co)
{
	PyObject_GC_UnTrack(co);
	Py_CLEAR(co->session);
	Py_CLEAR(co->on_done);
	Py_CLEAR(co->on_output);
	Py_CLEAR(co->keep);
	Py_CLEAR(co->path);
	PyObject_GC_Del(co);
}

/* ---------------------------------------------------------------- operations */

static PyObject *session_exec(SessionObject *so, PyObject *args, PyObject *kw)
{
	static char *names[] = {"argv", "on_done", "input", "cwd", "env", "user", "timeout", "output_limit",
				"stream_stdin", "on_output", "accumulate", "manual_credit", "tty", "rows", "cols", NULL};
	PyObject *argv_obj, *on_done, *input = Py_None, *cwd = Py_None, *env = Py_None, *user = Py_None,
			   *on_output = Py_None;
	double timeout = 0;
	Py_ssize_t limit = 0;
	int stream_stdin = 0, accumulate = 1, manual_credit = 0, tty = 0;
	unsigned rows = 0, cols = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOOOdnpOpppII", names, &argv_obj, &on_done, &input, &cwd,
					 &env, &user, &timeout, &limit, &stream_stdin, &on_output, &accumulate,
					 &manual_credit, &tty, &rows, &cols))
		return NULL;
	if (rows > 65535 || cols > 65535) {
		PyErr_SetString(PyExc_ValueError, "rows and cols must be 1..65535 (0: 24 x 80)");
		return NULL;
	}
	if (session_check(so) < 0)
		return NULL;
	if (input != Py_None && !PyBytes_Check(input)) {
		PyErr_SetString(PyExc_TypeError, "input must be bytes or None");
		return NULL;
	}
	sbx_exec_opts o = {.timeout_s = timeout, .output_limit = (size_t)(limit > 0 ? limit : 0),
			   .stream_stdin = stream_stdin, .no_accumulate = !accumulate, .manual_credit = manual_credit,
			   .tty = tty, .rows = rows, .cols = cols};
	const char **argv = NULL, **envv = NULL;
	PyObject *result = NULL;
	CallObject *co = NULL;
	if (!(argv = c_str_array(argv_obj, "a command argument")))
		goto out;
	if (env != Py_None && !(envv = c_str_array(env, "an environment entry")))
		goto out;
	if ((cwd != Py_None && !(o.cwd = c_str(cwd, "cwd"))) || (user != Py_None && !(o.user = c_str(user, "user"))))
		goto out;
	if (!(co = call_new_obj(so, on_done)))
		goto out;
	o.argv = argv;
	o.env = envv;
	if (input != Py_None) {
		co->keep = Py_NewRef(input);
		o.input = PyBytes_AS_STRING(input);
		o.input_len = (size_t)PyBytes_GET_SIZE(input);
	}
	if (on_output != Py_None) {
		co->on_output = Py_NewRef(on_output);
		o.on_output = exec_on_output;
	}
	co->stream_stdin = stream_stdin;
	o.on_done = exec_on_done;
	o.ud = co;
	sbx_error err;
	/* Take the reference before starting: on_done may run inside sbx_exec. */
	Py_INCREF(co);
	g_inflight++;
	co->c = (sbx_call *)1; /* placeholder while starting */
	sbx_call *c = sbx_exec(so->s, &o, &err);
	if (!c) {
		co->c = NULL;
		g_inflight--;
		Py_DECREF(co);
		raise_sbx(&err);
		goto out;
	}
	if (co->c) /* not already completed from inside sbx_exec */
		co->c = c;
	result = Py_NewRef((PyObject *)co);
out:
	Py_XDECREF(co);
	PyMem_Free(argv);
	PyMem_Free(envv);
	return result;
}

static PyObject *start_file_call(SessionObject *so, CallObject *co, sbx_file_opts *o, int is_write)
{
	sbx_error err;
	Py_INCREF(co);
	g_inflight++;
	co->c = (sbx_call *)1;
	sbx_call *c = is_write ? sbx_write_file(so->s, o, &err) : sbx_read_file(so->s, o, &err);
	if (!c) {
		co->c = NULL;
		g_inflight--;
		Py_DECREF(co);
		return raise_sbx(&err);
	}
	if (co->c)
		co->c = c;
	return Py_NewRef((PyObject *)co);
}

static PyObject *session_write_file(SessionObject *so, PyObject *args, PyObject *kw)
{
	static char *names[] = {"path", "data", "on_done", "mode", "user", "durable", NULL};
	PyObject *path, *data, *on_done, *user = Py_None;
	int mode = -1, durable = 1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O!O|iOp", names, &PyBytes_Type, &path, &PyBytes_Type, &data,
					 &on_done, &mode, &user, &durable))
		return NULL;
	if (session_check(so) < 0)
		return NULL;
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	if (!(o.path = c_str(path, "path")) || (user != Py_None && !(o.user = c_str(user, "user"))))
		return NULL;
	CallObject *co = call_new_obj(so, on_done);
	if (!co)
		return NULL;
	co->path = Py_NewRef(path);
	co->keep = Py_NewRef(data);
	o.data = PyBytes_AS_STRING(data);
	o.len = (size_t)PyBytes_GET_SIZE(data);
	o.mode = mode;
	o.no_fsync = !durable;
	o.on_done = file_on_done;
	o.ud = co;
	PyObject *r = start_file_call(so, co, &o, 1);
	Py_DECREF(co);
	return r;
}

static PyObject *session_read_file(SessionObject *so, PyObject *args, PyObject *kw)
{
	static char *names[] = {"path", "on_done", "limit", NULL};
	PyObject *path, *on_done;
	unsigned long long limit = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O|K", names, &PyBytes_Type, &path, &on_done, &limit))
		return NULL;
	if (session_check(so) < 0)
		return NULL;
	sbx_file_opts o = SBX_FILE_OPTS_INIT;
	if (!(o.path = c_str(path, "path")))
		return NULL;
	CallObject *co = call_new_obj(so, on_done);
	if (!co)
		return NULL;
	co->path = Py_NewRef(path);
	o.limit = limit;
	o.on_done = file_on_done;
	o.ud = co;
	PyObject *r = start_file_call(so, co, &o, 0);
	Py_DECREF(co);
	return r;
}

/* ---------------------------------------------------------------- module functions */

static PyObject *mod_session_local(PyObject *m, PyObject *args, PyObject *kw)
{
	(void)m;
	if (owner_check() < 0)
		return NULL;
	static char *names[] = {"workdir", "isolate", "agent", "env", NULL};
	PyObject *workdir = Py_None, *agent = Py_None, *env = Py_None;
	int isolate = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|OpOO", names, &workdir, &isolate, &agent, &env))
		return NULL;
	sbx_local_opts lo = {.host = 1, .isolate = isolate}; /* the uncontained primitive; see session_box */
	const char **envv = NULL;
	if ((workdir != Py_None && !(lo.workdir = c_str(workdir, "workdir"))) ||
	    (agent != Py_None && !(lo.agent_path = c_str(agent, "agent"))) ||
	    (env != Py_None && !(envv = c_str_array(env, "an environment entry"))))
		return NULL;
	lo.env = envv;
	sbx_error err;
	sbx_session *s = sbx_session_local(g_loop, &lo, NULL, &err);
	PyMem_Free(envv);
	return session_wrap(s, &err);
}

/* session_box(bundle, agent=None, runtime=None, rootfs=None, memory=0, pids=0,
 * cpus=0.0, workdir=None, user=None, env=None, hostname=None): an agent in a
 * new container whose bundle is the new directory `bundle` (sbx_box_opts). */
static PyObject *mod_session_box(PyObject *m, PyObject *args, PyObject *kw)
{
	(void)m;
	if (owner_check() < 0)
		return NULL;
	static char *names[] = {"bundle", "agent", "runtime", "rootfs", "memory", "pids", "cpus",
				"workdir", "user", "env", "hostname", NULL};
	PyObject *bundle, *agent = Py_None, *runtime = Py_None, *rootfs = Py_None, *workdir = Py_None,
			  *user = Py_None, *env = Py_None, *hostname = Py_None;
	unsigned long long memory = 0;
	long pids = 0;
	double cpus = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOOKldOOOO", names, &bundle, &agent, &runtime, &rootfs,
					 &memory, &pids, &cpus, &workdir, &user, &env, &hostname))
		return NULL;
	sbx_box_opts bo = {.memory = memory, .pids = pids, .cpus = cpus};
	sbx_local_opts lo = {.box = &bo};
	const char **envv = NULL;
	if (!(lo.workdir = c_str(bundle, "bundle")) || (agent != Py_None && !(lo.agent_path = c_str(agent, "agent"))) ||
	    (runtime != Py_None && !(bo.runtime = c_str(runtime, "runtime"))) ||
	    (rootfs != Py_None && !(bo.rootfs = c_str(rootfs, "rootfs"))) ||
	    (workdir != Py_None && !(bo.workdir = c_str(workdir, "workdir"))) ||
	    (user != Py_None && !(bo.user = c_str(user, "user"))) ||
	    (hostname != Py_None && !(bo.hostname = c_str(hostname, "hostname"))) ||
	    (env != Py_None && !(envv = c_str_array(env, "an environment entry"))))
		return NULL;
	bo.env = envv;
	sbx_error err;
	sbx_session *s = sbx_session_local(g_loop, &lo, NULL, &err);
	PyMem_Free(envv);
	return session_wrap(s, &err);
}

/* box_service(path, service, is_default) -> dict: what a values or compose
 * file says about a service's box (image, workdir, user, env, memory, cpus). */
static PyObject *mod_box_service(PyObject *m, PyObject *args)
{
	(void)m;
	const char *path, *svc;
	int is_default;
	if (!PyArg_ParseTuple(args, "ssp", &path, &svc, &is_default))
		return NULL;
	sbx_box_service spec;
	char err[1024];
	if (sbx_box_service_read(path, svc, is_default, &spec, err, sizeof err) < 0) {
		PyErr_SetString(PyExc_ValueError, err);
		return NULL;
	}
	PyObject *env = PyList_New(0);
	for (size_t i = 0; env && i < spec.nenv; i++) {
		PyObject *e = PyUnicode_DecodeFSDefault(spec.env[i]);
		if (!e || PyList_Append(env, e) < 0) {
			Py_XDECREF(e);
			Py_CLEAR(env);
			break;
		}
		Py_DECREF(e);
	}
	PyObject *d = env ? Py_BuildValue("{s:s,s:s,s:s,s:N,s:K,s:d}", "image", spec.image, "workdir", spec.workdir,
					  "user", spec.user, "env", env, "memory", (unsigned long long)spec.memory,
					  "cpus", spec.cpus)
			  : NULL;
	sbx_box_service_free(&spec);
	return d;
}

/* box_destroy(bundle): kills every process of the container whose bundle
 * this is and removes it (what a killed run left). False: no box there. */
static PyObject *mod_box_destroy(PyObject *m, PyObject *arg)
{
	(void)m;
	const char *bundle = c_str(arg, "bundle");
	if (!bundle)
		return NULL;
	sbx_box b;
	if (sbx_box_load(&b, bundle) < 0)
		Py_RETURN_FALSE;
	Py_BEGIN_ALLOW_THREADS sbx_box_destroy(&b);
	Py_END_ALLOW_THREADS Py_RETURN_TRUE;
}

/* docker_up(name, dir, services, values, image, agent) -> [container ids]:
 * a docker sandbox (host/docker/sandbox.h), blocking without the GIL (it
 * uses a loop of its own, so call it from a worker thread). */
static PyObject *mod_docker_up(PyObject *m, PyObject *args)
{
	(void)m;
	const char *name, *dir, *values, *image, *agent;
	PyObject *list;
	if (!PyArg_ParseTuple(args, "ssO!zzz", &name, &dir, &PyList_Type, &list, &values, &image, &agent))
		return NULL;
	Py_ssize_t n = PyList_Size(list);
	if (n < 1 || n > 64) {
		PyErr_SetString(PyExc_ValueError, "docker_up: give 1 to 64 services");
		return NULL;
	}
	const char *services[65] = {0};
	for (Py_ssize_t i = 0; i < n; i++)
		if (!(services[i] = c_str(PyList_GetItem(list, i), "service")))
			return NULL;
	char (*ids)[128] = calloc((size_t)n, sizeof *ids);
	char err[8192] = "";
	int rc = -1;
	if (!ids)
		return PyErr_NoMemory();
	Py_BEGIN_ALLOW_THREADS sbx_docker d;
	sbx_docker_up_opts o = {.name = name, .dir = dir, .services = services, .values = values, .image = image,
				.agent = agent};
	if (sbx_docker_open(&d, err, sizeof err) == 0)
		rc = sbx_docker_up(&d, &o, ids, err, sizeof err);
	sbx_docker_close(&d);
	Py_END_ALLOW_THREADS PyObject *out = rc == 0 ? PyList_New(n) : NULL;
	for (Py_ssize_t i = 0; out && i < n; i++)
		PyList_SET_ITEM(out, i, PyUnicode_FromString(ids[i]));
	free(ids);
	if (rc < 0)
		PyErr_SetString(PyExc_RuntimeError, err);
	return out;
}

/* docker_down(name): removes the sandbox's containers (by label). */
static PyObject *mod_docker_down(PyObject *m, PyObject *arg)
{
	(void)m;
	const char *name = c_str(arg, "name");
	if (!name)
		return NULL;
	char err[4096] = "";
	int rc = -1;
	Py_BEGIN_ALLOW_THREADS sbx_docker d;
	if (sbx_docker_open(&d, err, sizeof err) == 0)
		rc = sbx_docker_down(&d, name, err, sizeof err);
	sbx_docker_close(&d);
	Py_END_ALLOW_THREADS if (rc < 0)
	{
		PyErr_SetString(PyExc_RuntimeError, err);
		return NULL;
	}
	Py_RETURN_NONE;
}

/* docker_revive(id, name, svc, run_dir, key_file, started_at) -> str | None:
 * when Docker restarted the container since started_at (an empty
 * started_at: just report the current one), its agent is started again
 * (host/docker/restart.h) and the new start time returned; None when it
 * was not restarted. */
static PyObject *mod_docker_revive(PyObject *m, PyObject *args)
{
	(void)m;
	const char *id, *name, *svc, *run, *key, *since;
	if (!PyArg_ParseTuple(args, "ssssss", &id, &name, &svc, &run, &key, &since))
		return NULL;
	char err[4096] = "", at[64];
	int rc = -1;
	snprintf(at, sizeof at, "%s", since);
	Py_BEGIN_ALLOW_THREADS sbx_docker d;
	if (sbx_docker_open(&d, err, sizeof err) == 0)
		rc = at[0] ? sbx_docker_revive(&d, id, name, svc, run, key, at, sizeof at, err, sizeof err)
			   : (sbx_docker_started_at(&d, id, at, sizeof at, err, sizeof err) == 0 ? 1 : -1);
	sbx_docker_close(&d);
	Py_END_ALLOW_THREADS if (rc < 0)
	{
		PyErr_SetString(PyExc_RuntimeError, err);
		return NULL;
	}
	if (rc == 0)
		Py_RETURN_NONE;
	return PyUnicode_FromString(at);
}

/* docker_owned(owner) -> [names]: the sandboxes whose containers, networks
 * or volumes carry the label sbx.owner=owner (their directory's parent). */
static PyObject *mod_docker_owned(PyObject *m, PyObject *arg)
{
	(void)m;
	const char *owner = c_str(arg, "owner");
	if (!owner)
		return NULL;
	char err[4096] = "", (*names)[64] = NULL;
	int n = -1;
	Py_BEGIN_ALLOW_THREADS sbx_docker d;
	if (sbx_docker_open(&d, err, sizeof err) == 0)
		n = sbx_docker_owned(&d, owner, &names, err, sizeof err);
	sbx_docker_close(&d);
	Py_END_ALLOW_THREADS PyObject *out = n >= 0 ? PyList_New(n) : NULL;
	for (int i = 0; out && i < n; i++)
		PyList_SET_ITEM(out, i, PyUnicode_FromString(names[i]));
	free(names);
	if (n < 0)
		PyErr_SetString(PyExc_RuntimeError, err);
	return out;
}

static PyObject *mod_session_command(PyObject *m, PyObject *arg)
{
	(void)m;
	if (owner_check() < 0)
		return NULL;
	const char **argv = c_str_array(arg, "a command argument");
	if (!argv)
		return NULL;
	if (!argv[0]) {
		PyMem_Free(argv);
		PyErr_SetString(PyExc_ValueError, "the agent command is empty");
		return NULL;
	}
	sbx_error err;
	sbx_session *s = sbx_session_command(g_loop, argv, NULL, &err);
	PyMem_Free(argv);
	return session_wrap(s, &err);
}

static PyObject *mod_session_connect(PyObject *m, PyObject *args)
{
	(void)m;
	if (owner_check() < 0)
		return NULL;
	const char *addr, *secret_file = NULL;
	if (!PyArg_ParseTuple(args, "s|z:session_connect", &addr, &secret_file))
		return NULL;
	sbx_session_opts so = {.reconnect = 1, .secret_file = secret_file};
	sbx_error err;
	return session_wrap(sbx_session_connect(g_loop, addr, &so, &err), &err);
}

static PyObject *mod_loop_fd(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return PyLong_FromLong(sbx_loop_fd(g_loop));
}

static PyObject *mod_next_timeout(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return PyLong_FromLong(sbx_loop_next_timeout(g_loop));
}

/* One non-blocking iteration; callbacks run inside it. */
static PyObject *mod_run_once(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	if (g_running && PyThread_get_thread_ident() == g_owner) {
		PyErr_SetString(PyExc_RuntimeError, "run_once is not reentrant (called from an sbx callback)");
		return NULL;
	}
	if (owner_check() < 0)
		return NULL;
	g_running = 1;
	g_released = PyEval_SaveThread();
	int n = sbx_loop_run_once(g_loop, 0);
	int saved_errno = errno;
	PyEval_RestoreThread(g_released);
	g_released = NULL;
	g_running = 0;
	if (n < 0) {
		errno = saved_errno;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	return PyLong_FromLong(n);
}

static PyObject *mod_inflight(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return PyLong_FromLong(g_inflight);
}

static PyObject *mod_default_chart(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return PyUnicode_DecodeFSDefault(sbx_default_chart_path());
}

static PyObject *mod_locate_tried(PyObject *m, PyObject *chart)
{
	(void)m;
	int yes = PyObject_IsTrue(chart);
	if (yes < 0)
		return NULL;
	return PyUnicode_DecodeFSDefault(sbx_locate_tried(yes));
}

static PyObject *mod_default_agent(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return PyUnicode_DecodeFSDefault(sbx_default_agent_path());
}

/* ---------------------------------------------------------------- EC2 */

/* settings dict -> sbx_ec2_config through sbx_ec2_config_load (code wins
 * over INSPECT_EC2_SANDBOX_*). placeholders: fill the launch-only settings
 * (cleanup needs just the region and bucket). 0, or -1 with ValueError. */
static int ec2_settings(PyObject *d, int placeholders, sbx_ec2_config *out)
{
	if (!PyDict_Check(d)) {
		PyErr_SetString(PyExc_TypeError, "EC2 settings must be a dict");
		return -1;
	}
	sbx_ec2_settings s = {0};
	struct {
		const char *key;
		const char **str;
		unsigned *num;
	} fields[] = {
		{"region", &s.region, NULL}, {"vpc_id", &s.vpc_id, NULL},
		{"security_group_id", &s.security_group_id, NULL}, {"subnet_id", &s.subnet_id, NULL},
		{"instance_profile", &s.instance_profile, NULL}, {"s3_bucket", &s.s3_bucket, NULL},
		{"s3_key_prefix", &s.s3_key_prefix, NULL}, {"ami_id", &s.ami_id, NULL},
		{"instance_type", &s.instance_type, NULL}, {"extra_tags_str", &s.extra_tags_str, NULL},
		{"volume_size", NULL, &s.volume_size_gib}, {"launch_timeout", NULL, &s.launch_timeout_s},
		{"online_timeout", NULL, &s.online_timeout_s}, {"session_timeout", NULL, &s.session_timeout_s},
		{"api_timeout", NULL, &s.api_timeout_s}, {"terminate_timeout", NULL, &s.terminate_timeout_s},
	};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		PyObject *v = PyDict_GetItemString(d, fields[i].key);
		if (!v || v == Py_None)
			continue;
		if (fields[i].str) {
			if (!(*fields[i].str = c_str(v, fields[i].key)))
				return -1;
		} else {
			long n = PyLong_AsLong(v);
			if (n < 0 || n > 1000000) {
				if (!PyErr_Occurred())
					PyErr_Format(PyExc_ValueError, "EC2 setting %s: %ld is out of range", fields[i].key, n);
				return -1;
			}
			*fields[i].num = (unsigned)n;
		}
	}
	PyObject *allow = PyDict_GetItemString(d, "allow_metadata");
	if (allow && allow != Py_None) {
		int yes = PyObject_IsTrue(allow);
		if (yes < 0)
			return -1;
		s.allow_metadata = yes ? 1 : -1;
	}
	sbx_ec2_tag tags[SBX_EC2_MAX_EXTRA_TAGS];
	PyObject *pairs = PyDict_GetItemString(d, "extra_tags");
	if (pairs && pairs != Py_None) {
		PyObject *seq = PySequence_Fast(pairs, "extra_tags must be a list of (key, value) pairs");
		if (!seq)
			return -1;
		Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
		if (n > SBX_EC2_MAX_EXTRA_TAGS) {
			Py_DECREF(seq);
			PyErr_Format(PyExc_ValueError, "extra_tags: at most %d tags", SBX_EC2_MAX_EXTRA_TAGS);
			return -1;
		}
		for (Py_ssize_t i = 0; i < n; i++) {
			const char *k, *v;
			if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ss;extra_tags: each a (key, value) pair",
					      &k, &v)) {
				Py_DECREF(seq);
				return -1;
			}
			if (!*k || strlen(k) >= sizeof tags[0].key || strlen(v) >= sizeof tags[0].value) {
				Py_DECREF(seq);
				PyErr_Format(PyExc_ValueError, "extra_tags: bad tag %R (key 1-128, value 0-256 characters)", k);
				return -1;
			}
			snprintf(tags[i].key, sizeof tags[i].key, "%s", k);
			snprintf(tags[i].value, sizeof tags[i].value, "%s", v);
		}
		Py_DECREF(seq);
		if (n > 0) { /* none: libsbx reads EXTRA_TAGS_STR from the environment or .env */
			s.extra_tags = tags;
			s.n_extra_tags = (size_t)n;
		}
	}
	if (placeholders) { /* not used by cleanup: anything well-formed */
		s.vpc_id = s.vpc_id ? s.vpc_id : "vpc-0";
		s.security_group_id = s.security_group_id ? s.security_group_id : "sg-0";
		s.subnet_id = s.subnet_id ? s.subnet_id : "subnet-0";
		s.instance_profile = s.instance_profile ? s.instance_profile : "-";
		s.ami_id = s.ami_id ? s.ami_id : "ami-0";
	}
	char why[1024];
	if (sbx_ec2_config_load(&s, out, why, sizeof why) < 0) {
		PyErr_SetString(PyExc_ValueError, why);
		return -1;
	}
	return 0;
}

/* The AWS client an EC2 operation runs on (one per operation: its region). */
typedef struct ec2_aws {
	sbx_http *http;
	aws_client *client;
} ec2_aws;

static int ec2_aws_open(ec2_aws *a, const sbx_ec2_config *cfg)
{
	a->http = sbx_http_new(g_loop);
	aws_client_opts o = {.region = cfg->region, .timeout_s = cfg->api_timeout_s, .max_retries = cfg->api_retries,
			     .max_retries_set = 1};
	sbx_error err;
	a->client = a->http ? aws_client_new(g_loop, a->http, &o, &err) : NULL;
	if (!a->client) {
		if (!a->http) {
			PyErr_SetString(PyExc_RuntimeError, "sbx: cannot set up the HTTP client");
			return -1;
		}
		sbx_http_free(a->http);
		a->http = NULL;
		raise_sbx(&err);
		return -1;
	}
	return 0;
}

static void ec2_aws_close(ec2_aws *a)
{
	if (a->client)
		aws_client_free(a->client);
	if (a->http)
		sbx_http_free(a->http);
	a->client = NULL;
	a->http = NULL;
}

static PyObject *err_tuple(const sbx_error *e)
{
	if (!e)
		Py_RETURN_NONE;
	return Py_BuildValue("(iiss)", (int)e->status, e->err_no, e->code, e->message);
}

/* Runs cb(*args) (stealing args), reporting an exception as unraisable. GIL held. */
static void call_back(PyObject *cb, PyObject *args)
{
	PyObject *r = args ? PyObject_CallObject(cb, args) : NULL;
	if (!r)
		PyErr_WriteUnraisable(cb);
	Py_XDECREF(r);
	Py_XDECREF(args);
}

typedef struct {
	PyObject_HEAD
	ec2_aws aws;
	sbx_ec2_sandbox *sb;
	PyObject *on_ready;   /* while up runs */
	PyObject *on_down;    /* while down runs */
	int busy;             /* up or down under way: libsbx holds a reference */
} Ec2Object;

static PyTypeObject Ec2Type;

static void ec2_on_ready(void *ud, sbx_ec2_sandbox *sb, const sbx_error *err)
{
	(void)sb;
	PyThreadState *ts = gil_take();
	Ec2Object *eo = ud;
	PyObject *cb = eo->on_ready;
	eo->on_ready = NULL;
	eo->busy = 0;
	g_inflight--;
	if (cb) {
		PyObject *e = err_tuple(err);
		call_back(cb, e ? Py_BuildValue("(N)", e) : NULL);
		Py_DECREF(cb);
	}
	Py_DECREF(eo);
	gil_give(ts);
}

static void ec2_on_progress(void *ud, const char *what)
{
	(void)ud;
	(void)what; /* Inspect shows no per-sandbox progress; the steps are in errors */
}

static void ec2_on_down(void *ud, const sbx_error *err)
{
	PyThreadState *ts = gil_take();
	Ec2Object *eo = ud;
	PyObject *cb = eo->on_down;
	eo->on_down = NULL;
	eo->busy = 0;
	g_inflight--;
	if (cb) {
		PyObject *e = err_tuple(err);
		call_back(cb, e ? Py_BuildValue("(N)", e) : NULL);
		Py_DECREF(cb);
	}
	Py_DECREF(eo);
	gil_give(ts);
}

/* ec2_check(settings): the settings as sbx_ec2_up would read them (code, then
 * INSPECT_EC2_SANDBOX_*, then a .env file in the working directory), or
 * ValueError naming what is missing or malformed. */
static PyObject *mod_ec2_check(PyObject *m, PyObject *settings)
{
	(void)m;
	sbx_ec2_config cfg;
	if (ec2_settings(settings, 0, &cfg) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *mod_ec2_up(PyObject *m, PyObject *args, PyObject *kw)
{
	(void)m;
	if (owner_check() < 0)
		return NULL;
	static char *names[] = {"settings", "task", "owner", "on_ready", "agent", "agent_port", "poll_ms", NULL};
	PyObject *settings, *on_ready, *agent = Py_None;
	const char *task, *owner;
	unsigned agent_port = 0, poll_ms = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OssO|OII", names, &settings, &task, &owner, &on_ready, &agent,
					 &agent_port, &poll_ms))
		return NULL;
	sbx_ec2_config cfg;
	const char *agent_path = NULL;
	if (ec2_settings(settings, 0, &cfg) < 0 || (agent != Py_None && !(agent_path = c_str(agent, "agent"))))
		return NULL;
	Ec2Object *eo = PyObject_New(Ec2Object, &Ec2Type);
	if (!eo)
		return NULL;
	eo->sb = NULL;
	eo->on_ready = NULL;
	eo->on_down = NULL;
	eo->busy = 0;
	eo->aws = (ec2_aws){0};
	if (ec2_aws_open(&eo->aws, &cfg) < 0) {
		Py_DECREF(eo);
		return NULL;
	}
	sbx_ec2_up_opts o = {.cfg = &cfg, .task = task, .owner = owner, .agent_path = agent_path,
			     .agent_port = agent_port, .poll_ms = poll_ms, .on_ready = ec2_on_ready,
			     .on_progress = ec2_on_progress, .ud = eo};
	sbx_error err;
	eo->sb = sbx_ec2_up(g_loop, eo->aws.client, &o, &err);
	if (!eo->sb) {
		Py_DECREF(eo);
		return raise_sbx(&err);
	}
	eo->on_ready = Py_NewRef(on_ready);
	eo->busy = 1;
	g_inflight++;
	Py_INCREF(eo); /* libsbx's, until on_ready */
	return (PyObject *)eo;
}

static PyObject *ec2_take_session(Ec2Object *eo, PyObject *unused)
{
	(void)unused;
	if (owner_check() < 0)
		return NULL;
	sbx_session *s = eo->sb ? sbx_ec2_take_session(eo->sb) : NULL;
	if (!s) {
		PyErr_SetString(PyExc_ValueError, "the EC2 sandbox has no session (not ready, or already taken)");
		return NULL;
	}
	PyObject *so = session_wrap(s, NULL);
	if (so)
		((SessionObject *)so)->keep = Py_NewRef((PyObject *)eo);
	return so;
}

static PyObject *ec2_down(Ec2Object *eo, PyObject *on_done)
{
	if (owner_check() < 0)
		return NULL;
	if (!eo->sb || eo->on_down) {
		PyErr_SetString(PyExc_ValueError, "the EC2 sandbox is already being removed");
		return NULL;
	}
	if (eo->on_ready) { /* up under way: libsbx drops it and reports through down instead */
		Py_CLEAR(eo->on_ready);
		g_inflight--;
		Py_DECREF(eo);
	}
	eo->on_down = Py_NewRef(on_done);
	eo->busy = 1;
	g_inflight++;
	Py_INCREF(eo);
	sbx_ec2_down(eo->sb, ec2_on_down, eo);
	Py_RETURN_NONE;
}

static PyObject *ec2_get_instance_id(Ec2Object *eo, void *c)
{
	(void)c;
	return PyUnicode_FromString(eo->sb ? sbx_ec2_instance_id(eo->sb) : "");
}

static PyObject *ec2_get_s3_key(Ec2Object *eo, void *c)
{
	(void)c;
	return PyUnicode_FromString(eo->sb ? sbx_ec2_s3_key(eo->sb) : "");
}

static void ec2_dealloc(Ec2Object *eo)
{
	/* only reached when libsbx holds no reference: no step is running */
	if (eo->sb)
		sbx_ec2_free(eo->sb);
	ec2_aws_close(&eo->aws);
	Py_XDECREF(eo->on_ready);
	Py_XDECREF(eo->on_down);
	PyObject_Free(eo);
}

/* cleanup: instances by owner tag, then objects under PREFIX/sbx/[OWNER/] */
typedef struct ec2_cleanup_ctx {
	ec2_aws aws;
	sbx_ec2_config cfg;
	char owner[128];
	int has_owner;
	PyObject *on_done;
	size_t instances;
	sbx_error err;
} ec2_cleanup_ctx;

static void ec2_cleanup_finish(ec2_cleanup_ctx *x, size_t objects)
{
	g_inflight--;
	PyObject *e = err_tuple(x->err.status == SBX_OK ? NULL : &x->err);
	call_back(x->on_done, e ? Py_BuildValue("(Nnn)", e, (Py_ssize_t)x->instances, (Py_ssize_t)objects) : NULL);
	Py_DECREF(x->on_done);
	ec2_aws_close(&x->aws);
	PyMem_Free(x);
}

static void ec2_cleanup_objects_done(void *ud, const sbx_error *err, size_t n)
{
	PyThreadState *ts = gil_take();
	ec2_cleanup_ctx *x = ud;
	if (err && x->err.status == SBX_OK)
		x->err = *err;
	ec2_cleanup_finish(x, n);
	gil_give(ts);
}

static void ec2_cleanup_instances_done(void *ud, const sbx_error *err, size_t n)
{
	ec2_cleanup_ctx *x = ud;
	x->instances = n;
	if (err)
		x->err = *err;
	sbx_error e;
	if (sbx_ec2_cleanup_objects(x->aws.client, x->cfg.s3_bucket, x->cfg.s3_key_prefix,
				    x->has_owner ? x->owner : NULL, ec2_cleanup_objects_done, x, &e) < 0)
		ec2_cleanup_objects_done(x, &e, 0);
}

static PyObject *mod_ec2_cleanup(PyObject *m, PyObject *args, PyObject *kw)
{
	(void)m;
	if (owner_check() < 0)
		return NULL;
	static char *names[] = {"settings", "owner", "on_done", NULL};
	PyObject *settings, *owner, *on_done;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO", names, &settings, &owner, &on_done))
		return NULL;
	ec2_cleanup_ctx *x = PyMem_Calloc(1, sizeof *x);
	if (!x)
		return PyErr_NoMemory();
	const char *own = owner == Py_None ? NULL : c_str(owner, "owner");
	if ((owner != Py_None && !own) || ec2_settings(settings, 1, &x->cfg) < 0 || ec2_aws_open(&x->aws, &x->cfg) < 0) {
		PyMem_Free(x);
		return NULL;
	}
	x->has_owner = own != NULL;
	snprintf(x->owner, sizeof x->owner, "%s", own ? own : "");
	x->on_done = Py_NewRef(on_done);
	g_inflight++;
	sbx_error e;
	if (sbx_ec2_cleanup(x->aws.client, x->has_owner ? x->owner : NULL, ec2_cleanup_instances_done, x, &e) < 0) {
		g_inflight--;
		Py_DECREF(x->on_done);
		ec2_aws_close(&x->aws);
		PyMem_Free(x);
		return raise_sbx(&e);
	}
	Py_RETURN_NONE;
}

static PyMethodDef ec2_methods[] = {
	{"take_session", (PyCFunction)ec2_take_session, METH_NOARGS, "The ready session to the agent (once)."},
	{"down", (PyCFunction)ec2_down, METH_O,
	 "down(on_done): terminate the instance and delete its object; on_done(None or error tuple)."},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef ec2_getset[] = {
	{"instance_id", (getter)ec2_get_instance_id, NULL, "the instance's id once launched", NULL},
	{"s3_key", (getter)ec2_get_s3_key, NULL, "the shipped agent's S3 key", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Ec2Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "inspect_sbx._sbx.Ec2",
	.tp_basicsize = sizeof(Ec2Object),
	.tp_dealloc = (destructor)ec2_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "One EC2 sandbox: launched by ec2_up, removed by down.",
	.tp_methods = ec2_methods,
	.tp_getset = ec2_getset,
};

/* ---------------------------------------------------------------- K8s */

typedef struct {
	PyObject_HEAD
	sbx_k8s_box *b;
	PyObject *on_ready;   /* while up runs */
	PyObject *on_down;    /* while down runs */
	PyObject *on_reconnect[SBX_K8S_MAX_SERVICES];
} K8sObject;

static PyTypeObject K8sType;

/* A step of libsbx's is over: its callback with args (stolen; NULL: building them failed, which
 * is reported), then libsbx's reference goes. */
static void k8s_step_done(K8sObject *ko, PyObject **slot, PyObject *args)
{
	PyObject *cb = *slot;
	*slot = NULL;
	g_inflight--;
	if (cb) {
		call_back(cb, args);
		Py_DECREF(cb);
	} else {
		Py_XDECREF(args);
	}
	Py_DECREF(ko);
}

static void k8s_on_ready(void *ud, sbx_k8s_box *b, const sbx_error *err)
{
	(void)b;
	PyThreadState *ts = gil_take();
	K8sObject *ko = ud;
	PyObject *e = err_tuple(err);
	k8s_step_done(ko, &ko->on_ready, e ? Py_BuildValue("(N)", e) : NULL);
	gil_give(ts);
}

static void k8s_on_down(void *ud, const sbx_error *err)
{
	PyThreadState *ts = gil_take();
	K8sObject *ko = ud;
	PyObject *e = err_tuple(err);
	k8s_step_done(ko, &ko->on_down, e ? Py_BuildValue("(N)", e) : NULL);
	gil_give(ts);
}

static K8sObject *k8s_new(void)
{
	K8sObject *ko = PyObject_New(K8sObject, &K8sType);
	if (!ko)
		return NULL;
	ko->b = NULL;
	ko->on_ready = NULL;
	ko->on_down = NULL;
	for (int i = 0; i < SBX_K8S_MAX_SERVICES; i++)
		ko->on_reconnect[i] = NULL;
	return ko;
}

/* An optional str argument: NULL for None. 0, or -1 with an exception. */
static int opt_str(PyObject *o, const char *what, const char **out)
{
	*out = NULL;
	if (o == Py_None)
		return 0;
	*out = c_str(o, what);
	return *out ? 0 : -1;
}

static PyObject *mod_k8s_up(PyObject *m, PyObject *args, PyObject *kw)
{
	(void)m;
	if (owner_check() < 0)
		return NULL;
	static char *names[] = {"release", "services", "on_ready", "values", "chart", "context", "kubeconfig",
				"namespace", "task", "agent", "timeout", "kubectl", NULL};
	const char *release;
	PyObject *services, *on_ready, *values = Py_None, *chart = Py_None, *context = Py_None,
		 *kubeconfig = Py_None, *ns = Py_None, *task = Py_None, *agent = Py_None;
	int timeout = 0, kubectl = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "sOO|OOOOOOOip", names, &release, &services, &on_ready, &values,
					 &chart, &context, &kubeconfig, &ns, &task, &agent, &timeout, &kubectl))
		return NULL;
	sbx_k8s_up_opts o = {.release = release, .timeout_s = timeout, .kubectl = kubectl, .connect = 1,
			     .on_ready = k8s_on_ready};
	if (opt_str(values, "values", &o.values) < 0 || opt_str(chart, "chart", &o.chart) < 0 ||
	    opt_str(context, "context", &o.context) < 0 || opt_str(kubeconfig, "kubeconfig", &o.kubeconfig) < 0 ||
	    opt_str(ns, "namespace", &o.ns) < 0 || opt_str(task, "task", &o.task) < 0 ||
	    opt_str(agent, "agent", &o.agent_path) < 0)
		return NULL;
	const char **svc = c_str_array(services, "service");
	if (!svc)
		return NULL;
	if (!svc[0] || PySequence_Fast_GET_SIZE(services) > SBX_K8S_MAX_SERVICES) {
		PyMem_Free(svc);
		PyErr_Format(PyExc_ValueError, "a k8s sandbox has 1 to %d services", SBX_K8S_MAX_SERVICES);
		return NULL;
	}
	o.services = svc;
	K8sObject *ko = k8s_new();
	if (!ko) {
		PyMem_Free(svc);
		return NULL;
	}
	o.ud = ko;
	sbx_error err;
	ko->b = sbx_k8s_start(g_loop, &o, &err);
	PyMem_Free(svc);
	if (!ko->b) {
		Py_DECREF(ko);
		return raise_sbx(&err);
	}
	ko->on_ready = Py_NewRef(on_ready);
	g_inflight++;
	Py_INCREF(ko); /* libsbx's, until on_ready */
	return (PyObject *)ko;
}

static PyObject *mod_k8s_attach(PyObject *m, PyObject *args, PyObject *kw)
{
	(void)m;
	if (owner_check() < 0)
		return NULL;
	static char *names[] = {"release", "namespace", "context", "kubeconfig", NULL};
	const char *release, *ns, *context = "", *kubeconfig = "";
	if (!PyArg_ParseTupleAndKeywords(args, kw, "ss|ss", names, &release, &ns, &context, &kubeconfig))
		return NULL;
	sbx_k8s_sandbox sb = {0};
	snprintf(sb.release, sizeof sb.release, "%s", release);
	snprintf(sb.ns, sizeof sb.ns, "%s", ns);
	snprintf(sb.context, sizeof sb.context, "%s", context);
	snprintf(sb.kubeconfig, sizeof sb.kubeconfig, "%s", kubeconfig);
	K8sObject *ko = k8s_new();
	if (ko)
		ko->b = sbx_k8s_attach(g_loop, &sb);
	return (PyObject *)ko;
}

static int k8s_index(K8sObject *ko, PyObject *arg)
{
	long i = PyLong_AsLong(arg);
	if (i == -1 && PyErr_Occurred())
		return -1;
	if (!ko->b || i < 0 || i >= sbx_k8s_info(ko->b)->nservices) {
		PyErr_Format(PyExc_IndexError, "no service number %ld in this k8s sandbox", i);
		return -1;
	}
	return (int)i;
}

static PyObject *k8s_take_session(K8sObject *ko, PyObject *arg)
{
	if (owner_check() < 0)
		return NULL;
	int i = k8s_index(ko, arg);
	if (i < 0)
		return NULL;
	sbx_session *s = sbx_k8s_take_session(ko->b, i);
	if (!s) {
		PyErr_SetString(PyExc_ValueError, "the k8s sandbox has no session there (not ready, or already taken)");
		return NULL;
	}
	return session_wrap(s, NULL);
}

typedef struct k8s_reconnect_ud {
	K8sObject *ko;
	int i;
} k8s_reconnect_ud;

static void k8s_on_reconnect(void *ud, sbx_session *s, const char *uid, const sbx_error *err)
{
	PyThreadState *ts = gil_take();
	k8s_reconnect_ud *r = ud;
	K8sObject *ko = r->ko;
	int i = r->i;
	PyMem_Free(r);
	PyObject *so = s ? session_wrap(s, NULL) : Py_NewRef(Py_None);
	PyObject *e = err_tuple(err);
	PyObject *args = so && e ? Py_BuildValue("(NsN)", so, uid, e) : NULL;
	if (!args) {
		Py_XDECREF(so);
		Py_XDECREF(e);
	}
	k8s_step_done(ko, &ko->on_reconnect[i], args);
	gil_give(ts);
}

static PyObject *k8s_reconnect(K8sObject *ko, PyObject *args)
{
	if (owner_check() < 0)
		return NULL;
	PyObject *index, *on_done;
	if (!PyArg_ParseTuple(args, "OO", &index, &on_done))
		return NULL;
	int i = k8s_index(ko, index);
	if (i < 0)
		return NULL;
	k8s_reconnect_ud *r = PyMem_Malloc(sizeof *r);
	if (!r)
		return PyErr_NoMemory();
	*r = (k8s_reconnect_ud){ko, i};
	sbx_error err;
	if (sbx_k8s_reconnect(ko->b, i, k8s_on_reconnect, r, &err) < 0) {
		PyMem_Free(r);
		return raise_sbx(&err);
	}
	ko->on_reconnect[i] = Py_NewRef(on_done);
	g_inflight++;
	Py_INCREF(ko);
	Py_RETURN_NONE;
}

static PyObject *k8s_down(K8sObject *ko, PyObject *on_done)
{
	if (owner_check() < 0)
		return NULL;
	if (!ko->b || ko->on_down) {
		PyErr_SetString(PyExc_ValueError, "the k8s sandbox is already being removed");
		return NULL;
	}
	if (ko->on_ready) { /* up under way: libsbx drops it and reports through down instead */
		Py_CLEAR(ko->on_ready);
		g_inflight--;
		Py_DECREF(ko);
	}
	ko->on_down = Py_NewRef(on_done);
	g_inflight++;
	Py_INCREF(ko);
	sbx_k8s_stop(ko->b, k8s_on_down, ko);
	Py_RETURN_NONE;
}

static PyObject *k8s_get_info(K8sObject *ko, void *c)
{
	(void)c;
	if (!ko->b)
		Py_RETURN_NONE;
	const sbx_k8s_sandbox *sb = sbx_k8s_info(ko->b);
	PyObject *services = PyList_New(0), *pods = PyList_New(0), *uids = PyList_New(0), *agents = PyList_New(0);
	for (int i = 0; services && pods && uids && agents && i < sb->nservices; i++) {
		PyObject *v[4] = {PyUnicode_FromString(sb->services[i]), PyUnicode_FromString(sb->pods[i]),
				  PyUnicode_FromString(sbx_k8s_pod_uid(ko->b, i)), PyUnicode_FromString(sb->agents[i])};
		PyObject *lists[4] = {services, pods, uids, agents};
		for (int k = 0; k < 4; k++) {
			if (!v[k] || PyList_Append(lists[k], v[k]) < 0)
				PyErr_Clear();
			Py_XDECREF(v[k]);
		}
	}
	if (!services || !pods || !uids || !agents) {
		Py_XDECREF(services);
		Py_XDECREF(pods);
		Py_XDECREF(uids);
		Py_XDECREF(agents);
		return NULL;
	}
	return Py_BuildValue("{s:s,s:s,s:s,s:s,s:N,s:N,s:N,s:N}", "release", sb->release, "namespace", sb->ns,
			     "context", sb->context, "kubeconfig", sb->kubeconfig, "services", services, "pods", pods,
			     "pod_uids", uids, "agents", agents);
}

static void k8s_dealloc(K8sObject *ko)
{
	/* only reached when libsbx holds no reference: no step is running */
	if (ko->b)
		sbx_k8s_free(ko->b);
	Py_XDECREF(ko->on_ready);
	Py_XDECREF(ko->on_down);
	for (int i = 0; i < SBX_K8S_MAX_SERVICES; i++)
		Py_XDECREF(ko->on_reconnect[i]);
	PyObject_Free(ko);
}

static PyMethodDef k8s_methods[] = {
	{"take_session", (PyCFunction)k8s_take_session, METH_O, "take_session(i): service i's ready session (once)."},
	{"reconnect", (PyCFunction)k8s_reconnect, METH_VARARGS,
	 "reconnect(i, on_done): a new session to service i's pod (the agent put back if missing); "
	 "on_done(Session or None, pod_uid, None or error tuple)."},
	{"down", (PyCFunction)k8s_down, METH_O, "down(on_done): helm uninstall; on_done(None or error tuple)."},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef k8s_getset[] = {
	{"info", (getter)k8s_get_info, NULL,
	 "{release, namespace, context, kubeconfig, services, pods, pod_uids, agents}", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject K8sType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "inspect_sbx._sbx.K8s",
	.tp_basicsize = sizeof(K8sObject),
	.tp_dealloc = (destructor)k8s_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "One Kubernetes sandbox (a Helm release): started by k8s_up, removed by down.",
	.tp_methods = k8s_methods,
	.tp_getset = k8s_getset,
};

/* ---------------------------------------------------------------- types */

static PyMethodDef session_methods[] = {
	{"exec", (PyCFunction)(void (*)(void))session_exec, METH_VARARGS | METH_KEYWORDS,
	 "exec(argv, on_done, input=None, cwd=None, env=None, user=None, timeout=0, output_limit=0,\n"
	 "     stream_stdin=False, on_output=None, accumulate=True, manual_credit=False, tty=False,\n"
	 "     rows=0, cols=0) -> Call\n"
	 "tty: run it on a pty of rows x cols (0: 24 x 80) in the sandbox; its output comes as stdout\n"
	 "manual_credit: output is credited back to the agent only through Call.consumed(n)\n"
	 "on_done(status, errno, code, message, exit_code, signal, timed_out, truncated, stdout, stderr)"},
	{"write_file", (PyCFunction)(void (*)(void))session_write_file, METH_VARARGS | METH_KEYWORDS,
	 "write_file(path: bytes, data: bytes, on_done, mode=-1, user=None, durable=True) -> Call\n"
	 "durable: done only once the agent fsynced the file and its directory\n"
	 "on_done(status, errno, code, message, None, size)"},
	{"read_file", (PyCFunction)(void (*)(void))session_read_file, METH_VARARGS | METH_KEYWORDS,
	 "read_file(path: bytes, on_done, limit=0) -> Call\non_done(status, errno, code, message, data, size)"},
	{"close", (PyCFunction)session_close, METH_NOARGS, "Fail the pending calls (cancelled) and close."},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef session_getset[] = {
	{"ready", (getter)session_get_ready, NULL, "the agent's HELLO arrived", NULL},
	{"failure", (getter)session_get_failure, NULL, "None, or (status, errno, code, message)", NULL},
	{"boot_id", (getter)session_get_boot_id, NULL, "the agent's boot id once ready", NULL},
	{"pending", (getter)session_get_pending, NULL, "calls in flight", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SessionType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "inspect_sbx._sbx.Session",
	.tp_basicsize = sizeof(SessionObject),
	.tp_dealloc = (destructor)session_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "One agent connection (create with session_local/command/connect).",
	.tp_methods = session_methods,
	.tp_getset = session_getset,
};

static PyMethodDef call_methods[] = {
	{"write_stdin", (PyCFunction)call_write_stdin, METH_O, "Queue bytes for the command's stdin."},
	{"close_stdin", (PyCFunction)call_close_stdin, METH_NOARGS, "Send EOF once queued stdin is sent."},
	{"stdin_pending", (PyCFunction)call_stdin_pending, METH_NOARGS, "Bytes of stdin not yet sent."},
	{"consumed", (PyCFunction)call_consumed, METH_O,
	 "manual_credit: n output bytes were consumed; grant the agent credit for them."},
	{"signal", (PyCFunction)call_signal, METH_O, "Send a signal to the command's process group."},
	{"resize", (PyCFunction)call_resize, METH_VARARGS,
	 "resize(rows, cols) -> bool: a tty exec's new window size (the command gets SIGWINCH)."},
	{"cancel", (PyCFunction)call_cancel, METH_NOARGS, "Give up: kill the command / drop the transfer."},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef call_getset[] = {
	{"done", (getter)call_get_done, NULL, "on_done has run", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CallType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "inspect_sbx._sbx.Call",
	.tp_basicsize = sizeof(CallObject),
	.tp_dealloc = (destructor)call_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "One exec or file transfer in flight.",
	.tp_traverse = (traverseproc)call_traverse,
	.tp_clear = (inquiry)call_clear,
	.tp_methods = call_methods,
	.tp_getset = call_getset,
};

static void compose_warning(void *ud, const char *msg)
{
	PyObject *s = PyUnicode_FromString(msg);
	if (!s || PyList_Append((PyObject *)ud, s) < 0)
		PyErr_Clear();
	Py_XDECREF(s);
}

/* compose_to_values(path) -> (values YAML, [warnings]); ValueError naming the file, line and fix. */
static PyObject *mod_compose_to_values(PyObject *m, PyObject *arg)
{
	(void)m;
	const char *path = c_str(arg, "path");
	if (!path)
		return NULL;
	PyObject *warnings = PyList_New(0);
	if (!warnings)
		return NULL;
	char err[2048];
	char *values = sbx_compose_to_values(path, compose_warning, warnings, err, sizeof err);
	if (!values) {
		Py_DECREF(warnings);
		PyErr_SetString(PyExc_ValueError, err);
		return NULL;
	}
	PyObject *r = Py_BuildValue("(sN)", values, warnings);
	free(values);
	return r;
}

static PyMethodDef module_methods[] = {
	{"session_box", (PyCFunction)(void (*)(void))mod_session_box, METH_VARARGS | METH_KEYWORDS,
	 "session_box(bundle, agent=None, runtime=None, rootfs=None, memory=0, pids=0, cpus=0.0, workdir=None, "
	 "user=None, env=None, hostname=None) -> Session: an agent in a new container (bundle: a new directory)"},
	{"box_service", mod_box_service, METH_VARARGS,
	 "box_service(path, service, is_default) -> dict: image, workdir, user, env, memory, cpus of a service"},
	{"docker_revive", mod_docker_revive, METH_VARARGS,
	 "docker_revive(id, name, svc, run_dir, key_file, started_at) -> new start time or None (not restarted)"},
	{"docker_owned", mod_docker_owned, METH_O,
	 "docker_owned(owner) -> [names]: sandboxes labelled sbx.owner=owner (found without their directories)"},
	{"docker_up", mod_docker_up, METH_VARARGS,
	 "docker_up(name, dir, services, values, image, agent) -> [container ids]: a docker sandbox's containers "
	 "and agents (blocking: call it from a worker thread)"},
	{"docker_down", mod_docker_down, METH_O, "docker_down(name): remove a docker sandbox's containers"},
	{"box_destroy", mod_box_destroy, METH_O,
	 "box_destroy(bundle) -> bool: kill and remove the container of a bundle directory"},
	{"session_local", (PyCFunction)(void (*)(void))mod_session_local, METH_VARARGS | METH_KEYWORDS,
	 "session_local(workdir=None, isolate=False, agent=None, env=None) -> Session: an agent child process"},
	{"session_command", mod_session_command, METH_O, "session_command(argv) -> Session: argv speaks to sbx-agent --stdio"},
	{"session_connect", mod_session_connect, METH_VARARGS,
	 "session_connect(addr, secret_file=None) -> Session: a listening agent (secret_file: its secret, "
	 "docs/agent-auth.md)"},
	{"loop_fd", mod_loop_fd, METH_NOARGS, "The loop's epoll fd: readable when run_once has work."},
	{"next_timeout", mod_next_timeout, METH_NOARGS, "Milliseconds until run_once is due anyway (-1: none)."},
	{"run_once", mod_run_once, METH_NOARGS, "Run one non-blocking loop iteration; returns callbacks run."},
	{"inflight", mod_inflight, METH_NOARGS, "Calls started and not yet done."},
	{"default_agent", mod_default_agent, METH_NOARGS, "The agent binary libsbx starts by default."},
	{"ec2_check", mod_ec2_check, METH_O, "Check EC2 settings as sbx_ec2_up reads them (also .env)."},
	{"default_chart", mod_default_chart, METH_NOARGS, "The agent-env chart libsbx uses by default."},
	{"locate_tried", mod_locate_tried, METH_O, "Where the last default_agent (False) / default_chart (True) looked."},
	{"ec2_up", (PyCFunction)(void (*)(void))mod_ec2_up, METH_VARARGS | METH_KEYWORDS,
	 "ec2_up(settings, task, owner, on_ready, agent=None, agent_port=0, poll_ms=0) -> Ec2; "
	 "on_ready(None or error tuple)"},
	{"ec2_cleanup", (PyCFunction)(void (*)(void))mod_ec2_cleanup, METH_VARARGS | METH_KEYWORDS,
	 "ec2_cleanup(settings, owner, on_done): terminate instances tagged sbx-owner (=owner, or any when "
	 "None) and delete their objects; on_done(error or None, instances, objects)"},
	{"k8s_up", (PyCFunction)(void (*)(void))mod_k8s_up, METH_VARARGS | METH_KEYWORDS,
	 "k8s_up(release, services, on_ready, values=None, chart=None, context=None, kubeconfig=None, "
	 "namespace=None, task=None, agent=None, timeout=0, kubectl=False) -> K8s; on_ready(None or error tuple); "
	 "kubectl: reach the pods through `kubectl exec -i` (the fallback transport)"},
	{"compose_to_values", mod_compose_to_values, METH_O,
	 "compose_to_values(path) -> (values_yaml, warnings): a compose file as agent-env chart values"},
	{"k8s_attach", (PyCFunction)(void (*)(void))mod_k8s_attach, METH_VARARGS | METH_KEYWORDS,
	 "k8s_attach(release, namespace, context='', kubeconfig='') -> K8s: an existing release, to remove"},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef sbx_module = {
	PyModuleDef_HEAD_INIT, "inspect_sbx._sbx", "libsbx bindings (see inspect_sbx.loop for the asyncio side).", -1,
	module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__sbx(void)
{
	if (PyType_Ready(&SessionType) < 0 || PyType_Ready(&CallType) < 0 || PyType_Ready(&Ec2Type) < 0 ||
	    PyType_Ready(&K8sType) < 0)
		return NULL;
	if (!g_loop) {
		g_loop = sbx_loop_new();
		if (!g_loop)
			return PyErr_SetFromErrno(PyExc_OSError);
	}
	PyObject *m = PyModule_Create(&sbx_module);
	if (!m)
		return NULL;
	SbxError = PyErr_NewException("inspect_sbx._sbx.SbxError", NULL, NULL);
	if (PyModule_AddObjectRef(m, "SbxError", SbxError) < 0 ||
	    PyModule_AddObjectRef(m, "Session", (PyObject *)&SessionType) < 0 ||
	    PyModule_AddObjectRef(m, "Call", (PyObject *)&CallType) < 0)
		return NULL;
	struct { const char *name; int value; } consts[] = {
		{"OK", SBX_OK}, {"E_REMOTE", SBX_E_REMOTE}, {"E_TIMEOUT", SBX_E_TIMEOUT}, {"E_LIMIT", SBX_E_LIMIT},
		{"E_CONN", SBX_E_CONN}, {"E_LOCAL", SBX_E_LOCAL}, {"E_CANCELLED", SBX_E_CANCELLED},
		{"E_INVALID", SBX_E_INVALID}, {"DEFAULT_OUTPUT_LIMIT", (int)SBX_DEFAULT_OUTPUT_LIMIT},
		{"DEFAULT_READ_LIMIT", (int)SBX_DEFAULT_READ_LIMIT},
	};
	for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++)
		if (PyModule_AddIntConstant(m, consts[i].name, consts[i].value) < 0)
			return NULL;
	return m;
}
