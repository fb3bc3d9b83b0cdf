/* report_read.h - parse a stored report back (for `tracer show FILE` and for tests).
 *
 * A report file is untrusted input: the reader bounds its size, its nesting depth and its
 * number of JSON values before building a tree, and checks the tree against the report schema
 * (docs/report.schema.json: every required key, with its type) so that a caller gets either a
 * well-typed tree or one error with a one-line message. */
#ifndef TRACER_REPORT_READ_H
#define TRACER_REPORT_READ_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

#define TR_REPORT_READ_MAX (64u << 20)    /* refuse files larger than this (bytes) */
#define TR_REPORT_DEPTH_MAX 64            /* arrays/objects nested deeper are refused */
#define TR_REPORT_VALUES_MAX (4u << 20)   /* JSON values in one file, at most */

/* Reads and parses path. On success *out is a tree to free with yajl_tree_free; payload
 * strings ("data") are still escaped: decode them with tr_unescape. Returns 0 or -errno
 * (-EINVAL for malformed JSON, a version this reader does not know, or a document that does
 * not match the schema; -EFBIG for a file over the size limit), with a one-line message that
 * starts with the path in err. */
int tr_report_load(const char *path, yajl_val *out, char *err, size_t err_size);

/* The same for a report already in memory (buf[0..len), need not be NUL-terminated); the
 * message in err does not name a file. */
int tr_report_parse(const char *buf, size_t len, yajl_val *out, char *err, size_t err_size);

/* Checks a parsed tree against the report schema. Keys the schema does not know are ignored
 * (their values stay in the tree); every key it requires must be there once, with its type.
 * Returns 0 or -EINVAL with a one-line message naming the first offending key, like
 * `"events[2].ret" must be an integer or null`. */
int tr_report_validate(yajl_val tree, char *err, size_t err_size);

#endif
