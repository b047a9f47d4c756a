/* fuzz_compose.c — the compose translator (host/backends/k8s/compose.c) on any
 * file contents: it returns a values document or fails with a message,
 * and what it returns is itself YAML that loads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "fuzz.h"
#include "backends/k8s/compose.h"

static void warn(void *ud, const char *msg)
{
	(void)ud;
	FUZZ_ASSERT(msg && msg[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512] = "";
	char *values = sbx_compose_string_to_values("fuzz.compose.yaml", (const char *)data, size, warn, NULL, err,
						    sizeof err);
	if (!values) {
		FUZZ_ASSERT(err[0] != 0);
		return 0;
	}
	yaml_parser_t p;
	yaml_document_t doc;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)values, strlen(values));
	int ok = yaml_parser_load(&p, &doc);
	FUZZ_ASSERT(ok);
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	free(values);
	return 0;
}
