/* sbxmodule.c — inspect_sbx._sbx: libsbx for Python, driven from asyncio.
 *
 * The module owns the process's one sbx_loop. Python never blocks in it:
 * the asyncio side (inspect_sbx/loop.py) watches loop_fd() for readability,
 * wakes at next_deadline() and then calls run_once(), which runs one
 * non-blocking iteration with the GIL released. libsbx calls back into
 * Python (on_done, on_output) only from inside run_once or synchronously
 * from the call that started an operation; the callbacks take the GIL back
 * for as long as they touch Python objects. An operation's on_done is a
 * callable run with the result as its arguments, or an asyncio future given
 * the result tuple (unless its await was cancelled first).
 *
 * libsbx is single-threaded: one thread at a time may use it, the thread
 * running the asyncio loop. Another thread may take over only while no call
 * is in flight; otherwise it gets a RuntimeError rather than a data race.
 *
 * Objects: Session (one agent connection), Call (one exec or file
 * transfer in flight); the backends' in sbx_ec2.c (Ec2), sbx_k8s.c (K8s) and
 * sbx_docker.c (sbxmodule.h says what they share). A Call holds a reference to itself while libsbx owns the
 * operation, so it lives until its on_done has run; Ec2 and K8s do the same while a step of theirs runs
 * (pending_begin/end). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/k8s/compose.h"
#include "backends/local/box.h"
#include "sbx.h"
#include "sbxmodule.h"

sbx_loop *g_loop;
/* The thread state saved by run_once while it runs without the GIL; a
 * callback restores it and saves it again before returning to libsbx. */
PyThreadState *g_released;
long g_inflight; /* calls started and not yet done */
int g_running;   /* inside run_once or a close, without the GIL */
unsigned long g_owner; /* the thread that uses libsbx */
PyObject *SbxError;

PyThreadState *gil_take(void)
{
	PyThreadState *ts = g_released;
	if (ts) {
		g_released = NULL;
		PyEval_RestoreThread(ts);
	}
	return ts;
}

void gil_give(PyThreadState *ts)
{
	if (ts)
		g_released = PyEval_SaveThread();
}

/* 0 when the calling thread may use libsbx now, else -1 with RuntimeError. */
int owner_check(void)
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
PyObject *raise_sbx(const sbx_error *e)
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
const char *c_str(PyObject *obj, const char *what)
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
const char **c_str_array(PyObject *seq, const char *what)
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

PyTypeObject SessionType;

PyObject *session_wrap(sbx_session *s, const sbx_error *err)
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
static PyObject *g_str_done, *g_str_set_result; /* interned method names */

/* on_done is a callable, run as on_done(*result), or an asyncio future, given the
 * result tuple (the driver's hot path: no Python frame per call). */
static int on_done_check(PyObject *on_done)
{
	if (PyCallable_Check(on_done) || PyObject_HasAttr(on_done, g_str_set_result))
		return 0;
	PyErr_SetString(PyExc_TypeError, "on_done must be a callable or an asyncio future");
	return -1;
}

static CallObject *call_new_obj(SessionObject *so, PyObject *on_done)
{
	if (on_done_check(on_done) < 0)
		return NULL;
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

/* Hands the result tuple to on_done: on_done(*args), or the future's
 * set_result(args) unless it is done already (its await was cancelled). */
static PyObject *deliver(PyObject *on_done, PyObject *args)
{
	if (PyCallable_Check(on_done))
		return PyObject_CallObject(on_done, args);
	PyObject *done = PyObject_CallMethodNoArgs(on_done, g_str_done);
	int is_done = done ? PyObject_IsTrue(done) : -1;
	Py_XDECREF(done);
	if (is_done < 0)
		return NULL;
	return is_done ? Py_NewRef(Py_None) : PyObject_CallMethodOneArg(on_done, g_str_set_result, args);
}

/* Delivers the result and drops libsbx's reference. GIL held. */
static void call_complete(CallObject *co, PyObject *args)
{
	co->c = NULL;
	g_inflight--;
	PyObject *cb = co->on_done;
	co->on_done = NULL;
	if (args && cb) {
		PyObject *r = deliver(cb, args);
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

/* When libsbx's next timer is due, in seconds on CLOCK_MONOTONIC (time.monotonic()'s
 * clock), or -1: none. Absolute, so the driver compares it with the wake-up it already
 * set without reading asyncio's clock on every call. */
static PyObject *mod_next_deadline(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	int ms = sbx_loop_next_timeout(g_loop);
	if (ms < 0)
		return PyFloat_FromDouble(-1.0);
	return PyFloat_FromDouble((double)(sbx_now_ms() + (uint64_t)ms) / 1000.0);
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

PyObject *err_tuple(const sbx_error *e)
{
	if (!e)
		Py_RETURN_NONE;
	return Py_BuildValue("(iiss)", (int)e->status, e->err_no, e->code, e->message);
}

/* Runs cb(*args) (stealing args), reporting an exception as unraisable. GIL held. */
void call_back(PyObject *cb, PyObject *args)
{
	PyObject *r = args ? PyObject_CallObject(cb, args) : NULL;
	if (!r)
		PyErr_WriteUnraisable(cb);
	Py_XDECREF(r);
	Py_XDECREF(args);
}

void pending_begin(PyObject *self, PyObject **slot, PyObject *cb)
{
	*slot = Py_NewRef(cb);
	g_inflight++;
	Py_INCREF(self);
}

void pending_end(PyObject *self, PyObject **slot, PyObject *args)
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
	Py_DECREF(self);
}

void pending_drop(PyObject *self, PyObject **slot)
{
	Py_CLEAR(*slot);
	g_inflight--;
	Py_DECREF(self);
}

/* ---------------------------------------------------------------- types */

static PyMethodDef session_methods[] = {
	{"exec", (PyCFunction)(void (*)(void))session_exec, METH_VARARGS | METH_KEYWORDS,
	 "exec(argv, on_done, input=None, cwd=None, env=None, user=None, timeout=0, output_limit=0,\n"
	 "     stream_stdin=False, on_output=None, accumulate=True, manual_credit=False, tty=False,\n"
	 "     rows=0, cols=0) -> Call\n"
	 "tty: run it on a pty of rows x cols (0: 24 x 80) in the sandbox; its output comes as stdout\n"
	 "manual_credit: output is credited back to the agent only through Call.consumed(n)\n"
	 "on_done(status, errno, code, message, exit_code, signal, timed_out, truncated, stdout, stderr),\n"
	 "or on_done an asyncio future: its result set to that tuple"},
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

PyTypeObject SessionType = {
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
	{"box_destroy", mod_box_destroy, METH_O,
	 "box_destroy(bundle) -> bool: kill and remove the container of a bundle directory"},
	{"session_local", (PyCFunction)(void (*)(void))mod_session_local, METH_VARARGS | METH_KEYWORDS,
	 "session_local(workdir=None, isolate=False, agent=None, env=None) -> Session: an agent child process"},
	{"session_command", mod_session_command, METH_O, "session_command(argv) -> Session: argv speaks to sbx-agent --stdio"},
	{"session_connect", mod_session_connect, METH_VARARGS,
	 "session_connect(addr, secret_file=None) -> Session: a listening agent (secret_file: its secret, "
	 "docs/agent-auth.md)"},
	{"loop_fd", mod_loop_fd, METH_NOARGS, "The loop's epoll fd: readable when run_once has work."},
	{"next_deadline", mod_next_deadline, METH_NOARGS,
	 "When run_once is due anyway, on time.monotonic()'s clock (-1: never)."},
	{"run_once", mod_run_once, METH_NOARGS, "Run one non-blocking loop iteration; returns callbacks run."},
	{"inflight", mod_inflight, METH_NOARGS, "Calls started and not yet done."},
	{"default_agent", mod_default_agent, METH_NOARGS, "The agent binary libsbx starts by default."},
	{"default_chart", mod_default_chart, METH_NOARGS, "The agent-env chart libsbx uses by default."},
	{"locate_tried", mod_locate_tried, METH_O, "Where the last default_agent (False) / default_chart (True) looked."},
	{"compose_to_values", mod_compose_to_values, METH_O,
	 "compose_to_values(path) -> (values_yaml, warnings): a compose file as agent-env chart values"},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef sbx_module = {
	PyModuleDef_HEAD_INIT, "inspect_sbx._sbx", "libsbx bindings (see inspect_sbx.loop for the asyncio side).", -1,
	module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__sbx(void)
{
	if (PyType_Ready(&SessionType) < 0 || PyType_Ready(&CallType) < 0)
		return NULL;
	if (!g_str_done && (!(g_str_done = PyUnicode_InternFromString("done")) ||
			    !(g_str_set_result = PyUnicode_InternFromString("set_result"))))
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
	    PyModule_AddObjectRef(m, "Call", (PyObject *)&CallType) < 0 || sbx_docker_add(m) < 0 ||
	    sbx_ec2_add(m) < 0 || sbx_k8s_add(m) < 0)
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
