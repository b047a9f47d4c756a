/* sbx_ec2.c — inspect_sbx._sbx's EC2 bindings: Ec2 (one EC2 sandbox's
 * launch and removal), ec2_check, ec2_up, ec2_cleanup. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/aws/ec2_sandbox.h"
#include "sbx.h"

#include "sbxmodule.h"

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
	eo->busy = 0;
	PyObject *e = err_tuple(err);
	pending_end((PyObject *)eo, &eo->on_ready, e ? Py_BuildValue("(N)", e) : NULL);
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
	eo->busy = 0;
	PyObject *e = err_tuple(err);
	pending_end((PyObject *)eo, &eo->on_down, e ? Py_BuildValue("(N)", e) : NULL);
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
	eo->busy = 1;
	pending_begin((PyObject *)eo, &eo->on_ready, on_ready); /* until ec2_on_ready */
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
	if (eo->on_ready) /* up under way: libsbx drops it and reports through down instead */
		pending_drop((PyObject *)eo, &eo->on_ready);
	eo->busy = 1;
	pending_begin((PyObject *)eo, &eo->on_down, on_done);
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

static PyMethodDef ec2_functions[] = {
	{"ec2_check", mod_ec2_check, METH_O, "Check EC2 settings as sbx_ec2_up reads them (also .env)."},
	{"ec2_up", (PyCFunction)(void (*)(void))mod_ec2_up, METH_VARARGS | METH_KEYWORDS,
	 "ec2_up(settings, task, owner, on_ready, agent=None, agent_port=0, poll_ms=0) -> Ec2; "
	 "on_ready(None or error tuple)"},
	{"ec2_cleanup", (PyCFunction)(void (*)(void))mod_ec2_cleanup, METH_VARARGS | METH_KEYWORDS,
	 "ec2_cleanup(settings, owner, on_done): terminate instances tagged sbx-owner (=owner, or any when "
	 "None) and delete their objects; on_done(error or None, instances, objects)"},
	{NULL, NULL, 0, NULL},
};

int sbx_ec2_add(PyObject *m)
{
	if (PyType_Ready(&Ec2Type) < 0)
		return -1;
	return PyModule_AddFunctions(m, ec2_functions);
}
