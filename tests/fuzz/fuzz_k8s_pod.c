/* fuzz_k8s_pod.c — what sbx reads out of the Kubernetes API's pod and
 * event objects (host/backends/k8s/ready.c, api.c): readiness, "stuck" reasons and
 * the diagnosis shown to the user. The input is a pod's JSON, a newline,
 * then an EventList's JSON; any shape of either is survivable. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "backends/k8s/api.h"
#include "backends/k8s/ready.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *nl = memchr(p, '\n', size);
	size_t pod_len = nl ? (size_t)(nl - p) : size;
	json_t *pod = json_loadb(p, pod_len, JSON_DECODE_ANY, NULL);
	json_t *events = nl ? json_loadb(nl + 1, size - pod_len - 1, JSON_DECODE_ANY, NULL) : NULL;
	if (pod) {
		char why[256] = "", diag[1024];
		int ready = sbx_k8s_pod_is_ready(pod);
		int stuck = sbx_k8s_pod_is_stuck(pod, why, sizeof why);
		FUZZ_ASSERT(memchr(why, 0, sizeof why));
		FUZZ_ASSERT(!stuck || why[0]);
		sbx_k8s_pod_diagnosis(pod, events, diag, sizeof diag);
		FUZZ_ASSERT(memchr(diag, 0, sizeof diag));
		(void)ready;
	}
	json_decref(pod);
	json_decref(events);
	return 0;
}
