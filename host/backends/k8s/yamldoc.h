/* yamldoc.h — a YAML file loaded into a libyaml document, and small readers
 * over it that keep the line numbers for error messages.
 *
 * Shared by the compose translator and the kubeconfig loader. Mappings are
 * read through ydoc_pairs(), which also applies YAML merge keys ("<<: *x"),
 * so anchors work the way users expect from docker compose and kubectl. */
#ifndef SBX_K8S_YAMLDOC_H
#define SBX_K8S_YAMLDOC_H

#include <stddef.h>
#include <yaml.h>

typedef struct ydoc {
	yaml_document_t doc;
	const char *path; /* for messages; not owned */
	int loaded;
} ydoc;

typedef struct ypair {
	yaml_node_t *key, *value;
} ypair;

/* Load the first document of PATH (at most max_bytes). An empty file is an
 * empty document (root NULL). 0, or -1 with "PATH:LINE:COL: why" in err. */
int ydoc_load(ydoc *d, const char *path, size_t max_bytes, char *err, size_t err_len);
/* The same from memory (path only names it in messages). */
int ydoc_load_string(ydoc *d, const char *path, const char *text, size_t len, char *err, size_t err_len);
void ydoc_free(ydoc *d);
yaml_node_t *ydoc_root(ydoc *d);

/* The pairs of a mapping in file order, merge keys applied (explicit keys
 * win; "<<" itself is not returned). Returns a malloc'd array (free it)
 * and its length in *n; NULL with *n = 0 for an empty mapping or a node
 * that is not a mapping. */
ypair *ydoc_pairs(ydoc *d, yaml_node_t *map, size_t *n);
/* The value of KEY in a mapping (merge keys applied), or NULL. */
yaml_node_t *ydoc_get(ydoc *d, yaml_node_t *map, const char *key);
/* Item i of a sequence, and the length of one (0 for non-sequences). */
yaml_node_t *ydoc_item(ydoc *d, yaml_node_t *seq, size_t i);
size_t ydoc_len(yaml_node_t *seq);

/* A scalar's text, or NULL when n is not a scalar. */
const char *ydoc_str(yaml_node_t *n);
/* n is absent, or a plain null: "", "~", "null" (YAML's null). */
int ydoc_is_null(yaml_node_t *n);
/* A plain scalar spelling true or false (YAML 1.1/1.2 spellings): 1 / 0,
 * or -1 when n is no boolean. */
int ydoc_bool(yaml_node_t *n);
/* "mapping", "list", "text", "null": what a node is, for messages. */
const char *ydoc_kind(yaml_node_t *n);
/* 1-based line and column of a node (0 for NULL). */
size_t ydoc_line(yaml_node_t *n);
size_t ydoc_col(yaml_node_t *n);

#endif
