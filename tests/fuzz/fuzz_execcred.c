/* fuzz_execcred.c — the ExecCredential parser (an exec plugin's JSON
 * answer, host/backends/k8s/execcred.c): it takes a credential or fails with a
 * message, and a failure changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "backends/k8s/kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sbx_k8s_exec_plugin x = {.api_version = "client.authentication.k8s.io/v1"};
	sbx_k8s_config c = {.exec = &x};
	char err[512] = "";
	if (sbx_k8s_exec_credential_parse(&c, (const char *)data, size, err, sizeof err) == 0) {
		FUZZ_ASSERT(c.token || (c.cert_pem && c.key_pem));
		FUZZ_ASSERT(c.expires >= 0);
	} else {
		FUZZ_ASSERT(err[0] != 0);
		FUZZ_ASSERT(!c.token && !c.cert_pem && !c.key_pem && !c.have_exec_credential);
	}
	free(c.token);
	free(c.cert_pem);
	free(c.key_pem);
	return 0;
}
