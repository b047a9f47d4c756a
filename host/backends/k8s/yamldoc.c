/* yamldoc.c — loading YAML files with libyaml and reading the documents. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yamldoc.h"

#define MERGE_DEPTH 16 /* "<<" chains deeper than this are ignored (and cycles) */

static int load(ydoc *d, yaml_parser_t *p, char *err, size_t err_len)
{
	if (!yaml_parser_load(p, &d->doc)) {
		snprintf(err, err_len, "%s:%zu:%zu: invalid YAML: %s%s%s", d->path, p->problem_mark.line + 1,
			 p->problem_mark.column + 1, p->problem ? p->problem : "parse error",
			 p->context ? " " : "", p->context ? p->context : "");
		yaml_parser_delete(p);
		return -1;
	}
	yaml_parser_delete(p);
	d->loaded = 1;
	return 0;
}

int ydoc_load_string(ydoc *d, const char *path, const char *text, size_t len, char *err, size_t err_len)
{
	memset(d, 0, sizeof *d);
	d->path = path;
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p)) {
		snprintf(err, err_len, "%s: out of memory", path);
		return -1;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	return load(d, &p, err, err_len);
}

int ydoc_load(ydoc *d, const char *path, size_t max_bytes, char *err, size_t err_len)
{
	memset(d, 0, sizeof *d);
	d->path = path;
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	char *text = malloc(max_bytes + 1);
	size_t n = text ? fread(text, 1, max_bytes + 1, f) : 0;
	int bad = !text || ferror(f);
	fclose(f);
	if (bad) {
		snprintf(err, err_len, "cannot read %s: %s", path, text ? "read error" : "out of memory");
		free(text);
		return -1;
	}
	if (n > max_bytes) {
		snprintf(err, err_len, "%s: larger than %zu bytes; is it the right file?", path, max_bytes);
		free(text);
		return -1;
	}
	int rc = ydoc_load_string(d, path, text, n, err, err_len);
	free(text);
	return rc;
}

void ydoc_free(ydoc *d)
{
	if (d->loaded)
		yaml_document_delete(&d->doc);
	d->loaded = 0;
}

yaml_node_t *ydoc_root(ydoc *d)
{
	return d->loaded ? yaml_document_get_root_node(&d->doc) : NULL;
}

static int is_merge_key(yaml_node_t *k)
{
	return k && k->type == YAML_SCALAR_NODE && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       strcmp((char *)k->data.scalar.value, "<<") == 0;
}

static int has_key(const ypair *ps, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (ps[i].key->type == YAML_SCALAR_NODE && strcmp((char *)ps[i].key->data.scalar.value, key) == 0)
			return 1;
	return 0;
}

/* Appends the pairs of map not already in out (merge sources add only
 * missing keys); merges inside it are followed up to MERGE_DEPTH. */
static void collect(ydoc *d, yaml_node_t *map, ypair **out, size_t *n, size_t *cap, int depth)
{
	if (!map || map->type != YAML_MAPPING_NODE || depth > MERGE_DEPTH)
		return;
	yaml_node_pair_t *start = map->data.mapping.pairs.start, *top = map->data.mapping.pairs.top;
	for (yaml_node_pair_t *p = start; p < top; p++) {
		yaml_node_t *k = yaml_document_get_node(&d->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&d->doc, p->value);
		if (!k || !v || is_merge_key(k))
			continue;
		if (k->type == YAML_SCALAR_NODE && has_key(*out, *n, (char *)k->data.scalar.value))
			continue;
		if (*n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 16;
			ypair *grown = realloc(*out, ncap * sizeof **out);
			if (!grown)
				abort(); /* like sbx_loop_defer: out of memory is fatal here */
			*out = grown;
			*cap = ncap;
		}
		(*out)[(*n)++] = (ypair){k, v};
	}
	for (yaml_node_pair_t *p = start; p < top; p++) {
		yaml_node_t *k = yaml_document_get_node(&d->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&d->doc, p->value);
		if (!is_merge_key(k) || !v)
			continue;
		if (v->type == YAML_SEQUENCE_NODE)
			for (size_t i = 0; i < ydoc_len(v); i++)
				collect(d, ydoc_item(d, v, i), out, n, cap, depth + 1);
		else
			collect(d, v, out, n, cap, depth + 1);
	}
}

ypair *ydoc_pairs(ydoc *d, yaml_node_t *map, size_t *n)
{
	ypair *out = NULL;
	size_t cap = 0;
	*n = 0;
	collect(d, map, &out, n, &cap, 0);
	return out;
}

yaml_node_t *ydoc_get(ydoc *d, yaml_node_t *map, const char *key)
{
	size_t n;
	ypair *ps = ydoc_pairs(d, map, &n);
	yaml_node_t *v = NULL;
	for (size_t i = 0; i < n && !v; i++)
		if (ps[i].key->type == YAML_SCALAR_NODE && strcmp((char *)ps[i].key->data.scalar.value, key) == 0)
			v = ps[i].value;
	free(ps);
	return v;
}

yaml_node_t *ydoc_item(ydoc *d, yaml_node_t *seq, size_t i)
{
	if (i >= ydoc_len(seq))
		return NULL;
	return yaml_document_get_node(&d->doc, seq->data.sequence.items.start[i]);
}

size_t ydoc_len(yaml_node_t *seq)
{
	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return 0;
	return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

const char *ydoc_str(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int ydoc_is_null(yaml_node_t *n)
{
	if (!n)
		return 1;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	const char *s = (const char *)n->data.scalar.value;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

int ydoc_bool(yaml_node_t *n)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
	if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return -1;
	for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
		if (!strcmp((char *)n->data.scalar.value, yes[i]))
			return 1;
		if (!strcmp((char *)n->data.scalar.value, no[i]))
			return 0;
	}
	return -1;
}

const char *ydoc_kind(yaml_node_t *n)
{
	if (ydoc_is_null(n))
		return "null";
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	return "text";
}

size_t ydoc_line(yaml_node_t *n)
{
	return n ? n->start_mark.line + 1 : 0;
}

size_t ydoc_col(yaml_node_t *n)
{
	return n ? n->start_mark.column + 1 : 0;
}
