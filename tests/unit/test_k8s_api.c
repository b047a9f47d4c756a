/* test_k8s_api.c — the Kubernetes API client (host/backends/k8s/api.c) against the
 * emulator: pods listed and fetched by label, the API server's errors,
 * events, watches (initial state, changes, timeouts, bad selectors,
 * cancel from a callback) and the diagnosis of pods that are not ready. */
#include "backends/k8s/api.h"
#include "net_util.h"

static char certs[256], root[256], server[100];
static char *ca_pem;
static net_peer emu;
static sbx_loop *loop;
static sbx_k8s_api *api;
static const char *TOKEN = "api-test-token";

typedef struct result {
	int done;
	json_t *obj;
	sbx_error err;
} result;

static void keep(void *ud, json_t *obj, const sbx_error *err)
{
	result *r = ud;
	r->done = 1;
	r->obj = obj ? json_incref(obj) : NULL;
	if (err)
		r->err = *err;
}

static int wait_result(result *r)
{
	return it_run_until(loop, &r->done, 20);
}

/* Sorted, space-separated names of a list's items. */
static void names_of(json_t *list, char *out, size_t len)
{
	out[0] = 0;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(list, "items"), i, p)
	{
		size_t n = strlen(out);
		snprintf(out + n, len - n, "%s%s", n ? " " : "", json_string_value(json_object_get(json_object_get(p, "metadata"), "name")));
	}
}

static void test_list_pods_by_label(void)
{
	result r = {0};
	sbx_error err;
	CHECK(sbx_k8s_list_pods(api, "ns1", "app=web", keep, &r, &err) == 0);
	CHECK(wait_result(&r) == 0);
	CHECKF(r.obj, "%s", r.err.message);
	char names[256];
	names_of(r.obj, names, sizeof names);
	json_decref(r.obj);
	CHECK_EQ_STR(names, "web-1 web-2");
	r = (result){0};
	CHECK(sbx_k8s_list_pods(api, NULL, "app=web", keep, &r, &err) == 0);
	CHECK(wait_result(&r) == 0 && r.obj);
	names_of(r.obj, names, sizeof names);
	json_decref(r.obj);
	CHECK_EQ_STR(names, "web-1 web-2 web-3");
}

static void test_get_pod_and_not_found(void)
{
	result r = {0};
	sbx_error err;
	CHECK(sbx_k8s_get_pod(api, "ns1", "web-1", keep, &r, &err) == 0);
	CHECK(wait_result(&r) == 0 && r.obj);
	json_t *meta = json_object_get(r.obj, "metadata");
	CHECK(json_string_value(json_object_get(meta, "uid")) != NULL);
	CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(meta, "labels"), "app")), "web");
	json_decref(r.obj);
	r = (result){0};
	CHECK(sbx_k8s_get_pod(api, "ns1", "nope", keep, &r, &err) == 0);
	CHECK(wait_result(&r) == 0);
	CHECK(r.obj == NULL);
	CHECK_ERR(r.err, SBX_E_REMOTE, "not_found");
	CHECKF(strstr(r.err.message, "pods \"nope\" not found") && strstr(r.err.message, "/pods/nope") &&
	       strstr(r.err.message, "404"), "%s", r.err.message);
}

static void test_wrong_token_is_denied(void)
{
	sbx_k8s_conn k = {.server = server, .ca_pem = ca_pem, .token = "wrong"};
	sbx_error err;
	sbx_k8s_api *bad = sbx_k8s_api_new(loop, &k, &err);
	CHECK(bad);
	result r = {0};
	CHECK(sbx_k8s_list_pods(bad, "ns1", NULL, keep, &r, &err) == 0);
	CHECK(wait_result(&r) == 0);
	sbx_k8s_api_free(bad);
	CHECK_ERR(r.err, SBX_E_CONN, "denied");
	CHECKF(strstr(r.err.message, "Unauthorized"), "%s", r.err.message);
	sbx_k8s_conn none = {0};
	CHECK(sbx_k8s_api_new(loop, &none, &err) == NULL);
	CHECK(err.status == SBX_E_INVALID);
}

static void diagnose(const char *name, char *out, size_t len)
{
	result pod = {0}, ev = {0};
	sbx_error err;
	out[0] = 0;
	if (sbx_k8s_get_pod(api, "ns1", name, keep, &pod, &err) < 0 ||
	    sbx_k8s_list_events(api, "ns1", name, keep, &ev, &err) < 0 || wait_result(&pod) < 0 || wait_result(&ev) < 0)
		return;
	sbx_k8s_pod_diagnosis(pod.obj, ev.obj, out, len);
	json_decref(pod.obj);
	json_decref(ev.obj);
}

static void test_events_and_diagnosis(void)
{
	result ev = {0};
	sbx_error err;
	CHECK(sbx_k8s_list_events(api, "ns1", "web-1", keep, &ev, &err) == 0);
	CHECK(wait_result(&ev) == 0 && ev.obj);
	size_t n = json_array_size(json_object_get(ev.obj, "items"));
	json_decref(ev.obj);
	CHECK_EQ_INT(n, 4); /* Scheduled, Pulled, Created, Started */
	char d[500];
	diagnose("web-1", d, sizeof d);
	CHECK_EQ_STR(d, ""); /* running and ready: nothing to say */
	diagnose("stuck", d, sizeof d);
	CHECKF(strstr(d, "pod ns1/stuck is Pending") && strstr(d, "not scheduled: Unschedulable") &&
	       strstr(d, "events: FailedScheduling"), "%s", d);
	diagnose("pull-fail", d, sizeof d);
	CHECKF(strstr(d, "container main is waiting: ImagePullBackOff (Back-off pulling image") &&
	       strstr(d, "BackOff: Back-off pulling image"), "%s", d);
}

static void test_diagnosis_of_crash_loop(void)
{
	json_t *pod = json_loads("{\"metadata\":{\"name\":\"c\",\"namespace\":\"n\"},\"status\":{\"phase\":\"Running\","
				 "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}],\"containerStatuses\":[{"
				 "\"name\":\"app\",\"ready\":false,\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\","
				 "\"message\":\"back-off 40s restarting failed container\"}},\"lastState\":{\"terminated\":"
				 "{\"exitCode\":137,\"reason\":\"OOMKilled\"}}}]}}",
				 0, NULL);
	CHECK(pod);
	char d[512];
	sbx_k8s_pod_diagnosis(pod, NULL, d, sizeof d);
	json_decref(pod);
	CHECK_EQ_STR(d, "pod n/c is Running but not ready; container app is waiting: CrashLoopBackOff "
			"(back-off 40s restarting failed container), last exit code 137");
	sbx_k8s_pod_diagnosis(NULL, NULL, d, sizeof d); /* nothing known: still a sentence */
	CHECK(strstr(d, "is in no phase"));
}

typedef struct watching {
	char log[512];
	int events, ended, cancel_on_delete;
	sbx_error err;
	int had_err;
	sbx_k8s_watch *w;
} watching;

static void on_event(void *ud, const char *type, json_t *obj)
{
	watching *st = ud;
	const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	size_t n = strlen(st->log);
	snprintf(st->log + n, sizeof st->log - n, "%s %s|", type, name ? name : "?");
	st->events++;
	if (st->cancel_on_delete && strcmp(type, "DELETED") == 0)
		sbx_k8s_watch_cancel(st->w);
}

static void on_end(void *ud, const sbx_error *err)
{
	watching *st = ud;
	st->ended = 1;
	if (err) {
		st->had_err = 1;
		st->err = *err;
	}
}

static int api_call(const char *method, const char *path, const char *body)
{
	sbx_http *h = sbx_http_new(loop);
	char url[300], auth[100];
	snprintf(url, sizeof url, "%s%s", server, path);
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", TOKEN);
	const char *hdrs[] = {auth, "Content-Type: application/json", NULL};
	sbx_http_request rq = {.method = method, .url = url, .headers = hdrs, .body = body,
			       .body_len = body ? strlen(body) : 0, .tls = {.ca_pem = ca_pem}};
	sbx_http_response r;
	int rc = sbx_http_sync(h, &rq, &r);
	long status = r.status;
	sbx_http_response_free(&r);
	sbx_http_free(h);
	return rc == 0 && status >= 200 && status < 300 ? 0 : -1;
}

static int wait_events(watching *st, int n)
{
	uint64_t end = sbx_now_ms() + 20000;
	while (st->events < n && !st->ended && sbx_now_ms() < end)
		sbx_loop_run_once(loop, 50);
	return st->events >= n ? 0 : -1;
}

static void test_watch_pods(void)
{
	watching st = {.cancel_on_delete = 1};
	sbx_error err;
	sbx_k8s_watch_opts o = {.ns = "ns1", .selector = "app=watched", .on_event = on_event, .on_end = on_end,
				.ud = &st};
	st.w = sbx_k8s_watch_pods(api, &o, &err);
	CHECKF(st.w, "%s", err.message);
	CHECK(wait_events(&st, 1) == 0);
	CHECK_EQ_STR(st.log, "ADDED w-1|");
	CHECK(api_call("POST", "/api/v1/namespaces/ns1/pods",
		       "{\"metadata\":{\"name\":\"w-2\",\"labels\":{\"app\":\"watched\"}}}") == 0);
	CHECK(api_call("POST", "/api/v1/namespaces/ns1/pods",
		       "{\"metadata\":{\"name\":\"unwatched\",\"labels\":{\"app\":\"other\"}}}") == 0);
	CHECK(api_call("DELETE", "/api/v1/namespaces/ns1/pods/w-1", NULL) == 0);
	CHECK(wait_events(&st, 3) == 0);
	CHECK_EQ_STR(st.log, "ADDED w-1|ADDED w-2|DELETED w-1|");
	it_run_for(loop, 300); /* cancelled inside on_event: nothing more, no on_end */
	CHECK_EQ_INT(st.events, 3);
	CHECK(!st.ended);
}

static void test_watch_ends_and_fails_cleanly(void)
{
	watching st = {0};
	sbx_error err;
	sbx_k8s_watch_opts o = {.ns = "ns1", .selector = "app=none", .timeout_s = 1, .on_event = on_event,
				.on_end = on_end, .ud = &st};
	CHECK(sbx_k8s_watch_pods(api, &o, &err));
	CHECK(it_run_until(loop, &st.ended, 20) == 0);
	CHECKF(!st.had_err, "%s", st.err.message);
	CHECK_EQ_INT(st.events, 0);
	watching bad = {0};
	o.selector = "app in (a,b)";
	o.ud = &bad;
	CHECK(sbx_k8s_watch_pods(api, &o, &err));
	CHECK(it_run_until(loop, &bad.ended, 20) == 0);
	CHECK(bad.had_err);
	CHECKF(strstr(bad.err.message, "400") && strstr(bad.err.message, "set-based selectors"), "%s",
	       bad.err.message);
}

static void test_free_with_calls_in_flight(void)
{
	sbx_k8s_conn k = {.server = server, .ca_pem = ca_pem, .token = TOKEN};
	sbx_error err;
	sbx_k8s_api *a = sbx_k8s_api_new(loop, &k, &err);
	CHECK(a);
	result r = {0};
	watching st = {0};
	sbx_k8s_watch_opts o = {.ns = "ns1", .on_event = on_event, .on_end = on_end, .ud = &st};
	CHECK(sbx_k8s_list_pods(a, "ns1", NULL, keep, &r, &err) == 0);
	CHECK(sbx_k8s_watch_pods(a, &o, &err));
	sbx_k8s_api_free(a);
	it_run_for(loop, 300);
	CHECK(!r.done && !st.ended && st.events == 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (!net_have_python() || net_make_certs(certs, sizeof certs) < 0) {
		printf("FAIL test_k8s_api: python3 with ssl and openssl are needed\n");
		return 1;
	}
	it_tmpdir(root, sizeof root, "k8sapi");
	ca_pem = net_read_pem(certs, "ca.pem");
	const char *argv[] = {"python3", "tests/k8s/emulator.py", "--tls", certs, "--root", root, "--token", TOKEN,
			      "--pod", "ns1/web-1:app=web", "--pod", "ns1/web-2:app=web", "--pod", "ns2/web-3:app=web",
			      "--pod", "ns1/db:app=db", "--pod", "ns1/w-1:app=watched",
			      "--pod", "ns1/stuck:ann.emulator.sbx/phase=Pending",
			      "--pod", "ns1/pull-fail:ann.emulator.sbx/waiting=ImagePullBackOff", NULL};
	if (net_peer_start(&emu, argv) < 0) {
		printf("FAIL test_k8s_api: the emulator did not start\n");
		return 1;
	}
	snprintf(server, sizeof server, "https://127.0.0.1:%d/", emu.port); /* a trailing slash is fine */
	loop = sbx_loop_new();
	sbx_k8s_conn k = {.server = server, .ca_pem = ca_pem, .token = TOKEN};
	sbx_error err;
	api = sbx_k8s_api_new(loop, &k, &err);
	server[strlen(server) - 1] = 0;
	IT_RUN(test_list_pods_by_label);
	IT_RUN(test_get_pod_and_not_found);
	IT_RUN(test_wrong_token_is_denied);
	IT_RUN(test_events_and_diagnosis);
	IT_RUN(test_diagnosis_of_crash_loop);
	IT_RUN(test_watch_pods);
	IT_RUN(test_watch_ends_and_fails_cleanly);
	IT_RUN(test_free_with_calls_in_flight);
	sbx_k8s_api_free(api);
	sbx_loop_free(loop);
	net_peer_stop(&emu);
	free(ca_pem);
	it_rm_rf(certs);
	it_rm_rf(root);
	return test_summary();
}
