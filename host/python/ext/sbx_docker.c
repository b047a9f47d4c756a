/* sbx_docker.c — inspect_sbx._sbx's docker bindings: a docker sandbox's
 * containers and agents (host/backends/docker/sandbox.h), blocking, for a worker thread. */
#include <stdlib.h>
#include <string.h>

#include "backends/docker/restart.h"
#include "backends/docker/sandbox.h"
#include "sbx.h"

#include "sbxmodule.h"

/* docker_up(name, dir, services, values, image, agent) -> [container ids]:
 * a docker sandbox (host/backends/docker/sandbox.h), blocking without the GIL (it
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
 * (host/backends/docker/restart.h) and the new start time returned; None when it
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

static PyMethodDef docker_functions[] = {
	{"docker_revive", mod_docker_revive, METH_VARARGS,
	 "docker_revive(id, name, svc, run_dir, key_file, started_at) -> new start time or None (not restarted)"},
	{"docker_owned", mod_docker_owned, METH_O,
	 "docker_owned(owner) -> [names]: sandboxes labelled sbx.owner=owner (found without their directories)"},
	{"docker_up", mod_docker_up, METH_VARARGS,
	 "docker_up(name, dir, services, values, image, agent) -> [container ids]: a docker sandbox's containers "
	 "and agents (blocking: call it from a worker thread)"},
	{"docker_down", mod_docker_down, METH_O, "docker_down(name): remove a docker sandbox's containers"},
	{NULL, NULL, 0, NULL},
};

int sbx_docker_add(PyObject *m)
{
	return PyModule_AddFunctions(m, docker_functions);
}
