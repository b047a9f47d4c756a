/* services.c — the service names of a values.yaml or compose.yaml.
 *
 * Both formats keep their services under a top-level `services:` mapping.
 * The local backend runs one agent per service; the default service (named
 * "default", else marked `x-default: true`, else the first) comes first. */
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "cli.h"
#include "services.h"

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

static int is_true(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE &&
	       (strcmp((char *)n->data.scalar.value, "true") == 0 || strcmp((char *)n->data.scalar.value, "True") == 0);
}

int services_from_file(const char *path, char names[][64], int max, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, err_len, "cannot open %s: %m", path);
		return -1;
	}
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	int n = -1;
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, err_len, "%s:%zu:%zu: invalid YAML: %s", path, parser.problem_mark.line + 1,
			 parser.problem_mark.column + 1, parser.problem ? parser.problem : "parse error");
		goto out_parser;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	yaml_node_t *svcs = map_get(&doc, root, "services");
	if (!svcs || svcs->type != YAML_MAPPING_NODE || svcs->data.mapping.pairs.start == svcs->data.mapping.pairs.top) {
		snprintf(err, err_len, "%s: no 'services:' mapping with at least one service", path);
		goto out_doc;
	}
	n = 0;
	int dflt = -1;
	for (yaml_node_pair_t *p = svcs->data.mapping.pairs.start; p < svcs->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&doc, p->key);
		const char *name = k && k->type == YAML_SCALAR_NODE ? (char *)k->data.scalar.value : "";
		if (!cli_valid_name(name)) {
			snprintf(err, err_len, "%s:%zu: service name '%s' must be lowercase letters, digits and '-'",
				 path, k ? k->start_mark.line + 1 : 0, name);
			n = -1;
			goto out_doc;
		}
		if (n == max) {
			snprintf(err, err_len, "%s: more than %d services", path, max);
			n = -1;
			goto out_doc;
		}
		if (strcmp(name, "default") == 0 ||
		    (dflt < 0 && is_true(map_get(&doc, yaml_document_get_node(&doc, p->value), "x-default"))))
			dflt = n;
		snprintf(names[n++], 64, "%s", name);
	}
	if (dflt > 0) { /* the default service goes first */
		char tmp[64];
		memcpy(tmp, names[dflt], 64);
		memmove(names[1], names[0], (size_t)dflt * 64);
		memcpy(names[0], tmp, 64);
	}
out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	fclose(f);
	return n;
}
