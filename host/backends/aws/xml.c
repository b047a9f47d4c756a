/* xml.c — expat into a bounded element tree (see xml.h). */
#include "backends/aws/xml.h"

#include <expat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct builder {
	XML_Parser p;
	aws_xml *root, *cur;
	size_t depth, nodes;
	char *text;        /* character data of the current element */
	size_t textlen;
	int failed;
	char why[200];
} builder;

static void stop(builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void stop(builder *b, const char *fmt, ...)
{
	if (b->failed)
		return;
	b->failed = 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->why, sizeof b->why, fmt, ap);
	va_end(ap);
	XML_StopParser(b->p, XML_FALSE);
}

static const char *local_name(const char *name)
{
	const char *colon = strrchr(name, ':');
	return colon ? colon + 1 : name;
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	(void)attrs;
	builder *b = ud;
	if (b->failed)
		return;
	if (++b->depth > AWS_XML_MAX_DEPTH) {
		stop(b, "XML nested deeper than %d elements", AWS_XML_MAX_DEPTH);
		return;
	}
	if (++b->nodes > AWS_XML_MAX_NODES) {
		stop(b, "XML has more than %d elements", AWS_XML_MAX_NODES);
		return;
	}
	aws_xml *n = calloc(1, sizeof *n);
	if (!n || !(n->name = strdup(local_name(name)))) {
		free(n);
		stop(b, "out of memory parsing XML");
		return;
	}
	n->parent = b->cur;
	if (b->cur) {
		aws_xml **tail = &b->cur->child;
		while (*tail)
			tail = &(*tail)->next;
		*tail = n;
	} else {
		b->root = n;
	}
	b->cur = n;
	b->textlen = 0;
}

static char *trimmed(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t'))
		n--;
	return strndup(s, n);
}

static void on_end(void *ud, const XML_Char *name)
{
	(void)name;
	builder *b = ud;
	if (b->failed || !b->cur)
		return;
	b->cur->text = trimmed(b->text ? b->text : "", b->textlen);
	if (!b->cur->text)
		stop(b, "out of memory parsing XML");
	b->textlen = 0;
	b->cur = b->cur->parent;
	b->depth--;
}

static void on_text(void *ud, const XML_Char *s, int len)
{
	builder *b = ud;
	if (b->failed || !b->cur || len <= 0)
		return;
	char *t = realloc(b->text, b->textlen + (size_t)len + 1);
	if (!t) {
		stop(b, "out of memory parsing XML");
		return;
	}
	b->text = t;
	memcpy(b->text + b->textlen, s, (size_t)len);
	b->textlen += (size_t)len;
}

/* Entity declarations (the "billion laughs") are refused outright. */
static void on_entity_decl(void *ud, const XML_Char *name, int param, const XML_Char *value, int vlen,
			   const XML_Char *base, const XML_Char *sysid, const XML_Char *pubid,
			   const XML_Char *notation)
{
	(void)name, (void)param, (void)value, (void)vlen, (void)base, (void)sysid, (void)pubid, (void)notation;
	stop(ud, "XML with entity declarations is not accepted");
}

aws_xml *aws_xml_parse(const char *data, size_t n, char *why, size_t whylen)
{
	if (n > AWS_XML_MAX_BYTES) {
		snprintf(why, whylen, "XML document of %zu bytes is over the %u byte limit", n, AWS_XML_MAX_BYTES);
		return NULL;
	}
	builder b;
	memset(&b, 0, sizeof b);
	b.p = XML_ParserCreate("UTF-8");
	if (!b.p) {
		snprintf(why, whylen, "out of memory creating an XML parser");
		return NULL;
	}
	XML_SetUserData(b.p, &b);
	XML_SetElementHandler(b.p, on_start, on_end);
	XML_SetCharacterDataHandler(b.p, on_text);
	XML_SetEntityDeclHandler(b.p, on_entity_decl);
	if (XML_Parse(b.p, data, (int)n, XML_TRUE) == XML_STATUS_ERROR && !b.failed) {
		b.failed = 1;
		snprintf(b.why, sizeof b.why, "malformed XML at line %lu: %s",
			 (unsigned long)XML_GetCurrentLineNumber(b.p), XML_ErrorString(XML_GetErrorCode(b.p)));
	}
	if (!b.failed && !b.root) {
		b.failed = 1;
		snprintf(b.why, sizeof b.why, "empty XML document");
	}
	XML_ParserFree(b.p);
	free(b.text);
	if (b.failed) {
		snprintf(why, whylen, "%s", b.why);
		aws_xml_free(b.root);
		return NULL;
	}
	return b.root;
}

void aws_xml_free(aws_xml *node)
{
	/* Iterative, so a deep tree cannot exhaust the stack. */
	while (node) {
		if (node->child) {
			aws_xml *c = node->child;
			node->child = NULL;
			node = c;
			continue;
		}
		aws_xml *next = node->next, *parent = node->parent;
		free(node->name);
		free(node->text);
		free(node);
		node = next ? next : parent;
	}
}

const aws_xml *aws_xml_find(const aws_xml *node, const char *path)
{
	while (node && *path) {
		const char *slash = strchr(path, '/');
		size_t len = slash ? (size_t)(slash - path) : strlen(path);
		const aws_xml *c = node->child;
		while (c && !(strlen(c->name) == len && memcmp(c->name, path, len) == 0))
			c = c->next;
		node = c;
		path += len;
		if (*path == '/')
			path++;
	}
	return node;
}

const char *aws_xml_text(const aws_xml *node, const char *path)
{
	const aws_xml *n = aws_xml_find(node, path);
	return n && n->text ? n->text : NULL;
}

const aws_xml *aws_xml_next_same(const aws_xml *node)
{
	for (const aws_xml *s = node->next; s; s = s->next)
		if (strcmp(s->name, node->name) == 0)
			return s;
	return NULL;
}

static const aws_xml *find_named(const aws_xml *node, const char *name, int depth)
{
	for (const aws_xml *c = node; c && depth < 4; c = c->next) {
		if (strcmp(c->name, name) == 0)
			return c;
		const aws_xml *r = c->child ? find_named(c->child, name, depth + 1) : NULL;
		if (r)
			return r;
	}
	return NULL;
}

int aws_xml_error(const aws_xml *root, char *code, size_t codelen, char *msg, size_t msglen)
{
	const aws_xml *e = find_named(root, "Error", 0);
	if (!e)
		return 0;
	const char *c = aws_xml_text(e, "Code");
	const char *m = aws_xml_text(e, "Message");
	snprintf(code, codelen, "%s", c ? c : "UnknownError");
	snprintf(msg, msglen, "%s", m ? m : "");
	return 1;
}
