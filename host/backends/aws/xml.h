/* xml.h — AWS XML responses as a small tree, parsed with expat.
 *
 * The EC2 Query API, STS and S3 answer in XML. aws_xml_parse builds a tree
 * of elements (namespace prefixes dropped, text of leaf elements kept) with
 * bounds on size, depth and element count, and lookups by a path of child
 * names. No DTDs and no entity expansion beyond XML's five. */
#ifndef SBX_AWS_XML_H
#define SBX_AWS_XML_H

#include <stddef.h>

typedef struct aws_xml {
	char *name;               /* local name, e.g. "instancesSet" */
	char *text;               /* character data ("" if none), whitespace-trimmed */
	struct aws_xml *parent;
	struct aws_xml *child;    /* first child */
	struct aws_xml *next;     /* next sibling */
} aws_xml;

#define AWS_XML_MAX_BYTES (64u * 1024 * 1024)
#define AWS_XML_MAX_DEPTH 64
#define AWS_XML_MAX_NODES 1000000

/* Parse n bytes. NULL with why on malformed or oversized input. */
aws_xml *aws_xml_parse(const char *data, size_t n, char *why, size_t whylen);
void aws_xml_free(aws_xml *root);

/* The first descendant along a '/'-separated path of child names, starting
 * at node (whose own name is not part of the path). NULL if absent. */
const aws_xml *aws_xml_find(const aws_xml *node, const char *path);
/* Its text, or NULL. */
const char *aws_xml_text(const aws_xml *node, const char *path);
/* The next sibling with the same name as node (for lists of <item>). */
const aws_xml *aws_xml_next_same(const aws_xml *node);

/* An AWS error document (<Error><Code>..<Message>.. anywhere in it, as in
 * <Response><Errors><Error> for EC2 and <ErrorResponse><Error> for STS):
 * 1 with code/message filled, 0 if the document is not an error. */
int aws_xml_error(const aws_xml *root, char *code, size_t codelen, char *msg, size_t msglen);

#endif
