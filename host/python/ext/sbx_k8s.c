/* sbx_k8s.c — inspect_sbx._sbx's Kubernetes bindings: K8s (one Helm
 * release's install, pods, agents and removal), k8s_up, k8s_attach. */
#include <stdlib.h>
#include <string.h>

#include "backends/k8s/sandbox.h"
#include "sbx.h"

#include "sbxmodule.h"

typedef struct {
	PyObject_HEAD
	sbx_k8s_box *b;
	PyObject *on_ready;   /* while up runs */
	PyObject *on_down;    /* while down runs */
	PyObject *on_reconnect[SBX_K8S_MAX_SERVICES];
} K8sObject;

static PyTypeObject K8sType;

static void k8s_on_ready(void *ud, sbx_k8s_box *b, const sbx_error *err)
{
	(void)b;
	PyThreadState *ts = gil_take();
	K8sObject *ko = ud;
	PyObject *e = err_tuple(err);
	pending_end((PyObject *)ko, &ko->on_ready, e ? Py_BuildValue("(N)", e) : NULL);
	gil_give(ts);
}

static void k8s_on_down(void *ud, const sbx_error *err)
{
	PyThreadState *ts = gil_take();
	K8sObject *ko = ud;
	PyObject *e = err_tuple(err);
	pending_end((PyObject *)ko, &ko->on_down, e ? Py_BuildValue("(N)", e) : NULL);
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
	pending_begin((PyObject *)ko, &ko->on_ready, on_ready); /* until k8s_on_ready */
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
	pending_end((PyObject *)ko, &ko->on_reconnect[i], args);
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
	pending_begin((PyObject *)ko, &ko->on_reconnect[i], on_done);
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
	if (ko->on_ready) /* up under way: libsbx drops it and reports through down instead */
		pending_drop((PyObject *)ko, &ko->on_ready);
	pending_begin((PyObject *)ko, &ko->on_down, on_done);
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

static PyMethodDef k8s_functions[] = {
	{"k8s_up", (PyCFunction)(void (*)(void))mod_k8s_up, METH_VARARGS | METH_KEYWORDS,
	 "k8s_up(release, services, on_ready, values=None, chart=None, context=None, kubeconfig=None, "
	 "namespace=None, task=None, agent=None, timeout=0, kubectl=False) -> K8s; on_ready(None or error tuple); "
	 "kubectl: reach the pods through `kubectl exec -i` (the fallback transport)"},
	{"k8s_attach", (PyCFunction)(void (*)(void))mod_k8s_attach, METH_VARARGS | METH_KEYWORDS,
	 "k8s_attach(release, namespace, context='', kubeconfig='') -> K8s: an existing release, to remove"},
	{NULL, NULL, 0, NULL},
};

int sbx_k8s_add(PyObject *m)
{
	if (PyType_Ready(&K8sType) < 0)
		return -1;
	return PyModule_AddFunctions(m, k8s_functions);
}
