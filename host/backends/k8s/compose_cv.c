/* compose_cv.c — the compose translator's shared helpers (compose_cv.h):
 * messages with file, line and service, output nodes, sorting a mapping's
 * keys. compose.c and the compose_*.c extensions call these. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose_cv.h"

/* ---- messages ------------------------------------------------------------ */

static void where(cv *c, yaml_node_t *at, char *out, size_t len)
{
	int n = at ? snprintf(out, len, "%s:%zu:%zu: ", c->in.path, ydoc_line(at), ydoc_col(at))
		   : snprintf(out, len, "%s: ", c->in.path);
	if (c->svc && n >= 0 && (size_t)n < len)
		snprintf(out + n, len - (size_t)n, "service '%s': ", c->svc);
}

int cv_bad(cv *c, yaml_node_t *at, const char *fmt, ...)
{
	char pre[600];
	where(c, at, pre, sizeof pre);
	va_list ap;
	va_start(ap, fmt);
	char msg[1200];
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(c->err, c->err_len, "%s%s", pre, msg);
	return -1;
}

void cv_warn(cv *c, yaml_node_t *at, const char *fmt, ...)
{
	if (!c->warn)
		return;
	char pre[600], msg[1200], all[1800];
	where(c, at, pre, sizeof pre);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(all, sizeof all, "%s%s", pre, msg);
	c->warn(c->ud, all);
}

/* A message that only informs (nothing was dropped): "note: " first. */
void cv_note(cv *c, yaml_node_t *at, const char *fmt, ...)
{
	if (!c->warn)
		return;
	char pre[600], msg[1200], all[1900];
	where(c, at, pre, sizeof pre);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(all, sizeof all, "note: %s%s", pre, msg);
	c->warn(c->ud, all);
}

/* ---- the output document --------------------------------------------------- */

static int must(int id)
{
	if (!id)
		abort(); /* libyaml only fails here when out of memory */
	return id;
}

int cv_map(cv *c)
{
	return must(yaml_document_add_mapping(&c->out, NULL, YAML_BLOCK_MAPPING_STYLE));
}

int cv_seq(cv *c)
{
	return must(yaml_document_add_sequence(&c->out, NULL, YAML_BLOCK_SEQUENCE_STYLE));
}

/* Text from the user: always quoted, so "on", "1.10" or "null" stay text. */
int cv_str(cv *c, const char *s)
{
	return must(yaml_document_add_scalar(&c->out, NULL, (yaml_char_t *)s, -1, YAML_DOUBLE_QUOTED_SCALAR_STYLE));
}

/* Numbers, booleans and our own keys. */
int cv_plain(cv *c, const char *s)
{
	return must(yaml_document_add_scalar(&c->out, NULL, (yaml_char_t *)s, -1, YAML_PLAIN_SCALAR_STYLE));
}

int cv_int(cv *c, long v)
{
	char s[32];
	snprintf(s, sizeof s, "%ld", v);
	return cv_plain(c, s);
}

/* A number written plainly in the compose file (42, 0.5) stays a number, as
 * the k8s sandbox keeps it; anything else is text, and so is 010 (YAML 1.1
 * readers would take it for octal 8). */
int cv_plain_number(yaml_node_t *n)
{
	const char *s = ydoc_str(n);
	if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	size_t i = *s == '-';
	size_t digits = strspn(s + i, "0123456789");
	if (!digits || digits > 18 || (digits > 1 && s[i] == '0'))
		return 0;
	i += digits;
	if (s[i] == '.') {
		size_t frac = strspn(s + i + 1, "0123456789");
		if (!frac || frac > 18)
			return 0;
		i += 1 + frac;
	}
	return s[i] == 0;
}

int cv_like(cv *c, yaml_node_t *n)
{
	return cv_plain_number(n) ? cv_plain(c, ydoc_str(n)) : cv_str(c, ydoc_str(n));
}

/* The value of KEY in an output mapping, or 0. */
int cv_get(cv *c, int map, const char *key)
{
	yaml_node_t *m = yaml_document_get_node(&c->out, map);
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&c->out, p->key);
		if (!strcmp((const char *)k->data.scalar.value, key))
			return p->value;
	}
	return 0;
}

void cv_set(cv *c, int map, const char *key, int value)
{
	must(yaml_document_append_mapping_pair(&c->out, map, cv_plain(c, key), value));
}

/* A key that came from the user (a service, volume or network name). */
void cv_setq(cv *c, int map, const char *key, int value)
{
	must(yaml_document_append_mapping_pair(&c->out, map, cv_str(c, key), value));
}

void cv_push(cv *c, int seq, int value)
{
	must(yaml_document_append_sequence_item(&c->out, seq, value));
}

/* ---- sorting a mapping's keys ------------------------------------------------ */

/* Fills found[i] with the value of names[i] (NULL when absent). Keys in
 * ign get a warning, other "x-" extension keys are handled as ext says
 * (EXT_WARN, EXT_QUIET, EXT_REFUSE), and any other key is an error. */
int cv_sort_keys(cv *c, yaml_node_t *map, const char *what, const char *const *names, size_t nnames,
		     yaml_node_t **found, const ignored_key *ign, int ext)
{
	for (size_t i = 0; i < nnames; i++)
		found[i] = NULL;
	if (ydoc_is_null(map))
		return 0;
	if (map->type != YAML_MAPPING_NODE)
		return cv_bad(c, map, "%s must be a mapping, not %s", what, ydoc_kind(map));
	size_t n;
	ypair *ps = ydoc_pairs(&c->in, map, &n);
	int rc = 0;
	for (size_t p = 0; p < n && rc == 0; p++) {
		const char *k = ydoc_str(ps[p].key);
		if (!k) {
			rc = cv_bad(c, ps[p].key, "%s: keys must be text", what);
			break;
		}
		size_t i = 0;
		while (i < nnames && strcmp(names[i], k))
			i++;
		if (i < nnames) {
			found[i] = ps[p].value;
			continue;
		}
		const ignored_key *ig = ign;
		while (ig && ig->key && strcmp(ig->key, k))
			ig++;
		if (ig && ig->key) {
			cv_warn(c, ps[p].key, "'%s' ignored: %s", k, ig->why);
			continue;
		}
		if (!strncmp(k, "x-", 2) && ext != EXT_REFUSE) {
			if (ext == EXT_WARN)
				cv_warn(c, ps[p].key, "extension key '%s' ignored", k);
			continue;
		}
		char list[600] = "";
		for (size_t j = 0; j < nnames; j++) {
			size_t used = strlen(list);
			snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "", names[j]);
		}
		rc = cv_bad(c, ps[p].key,
			 "unsupported key '%s' in %s (sbx translates: %s). Remove it, or write a values.yaml "
			 "for the agent-env chart instead of a compose file",
			 k, what, list);
	}
	free(ps);
	return rc;
}
