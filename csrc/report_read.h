/* report_read.h - parse a stored report back (for `tracer show FILE` and for tests). */
#ifndef TRACER_REPORT_READ_H
#define TRACER_REPORT_READ_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

#define TR_REPORT_READ_MAX (64u << 20)   /* refuse files larger than this */

/* Reads and parses path. On success *out is a tree to free with yajl_tree_free; payload
 * strings ("data") are still escaped: decode them with tr_unescape. Returns 0 or -errno
 * (-EINVAL for malformed JSON or a version this reader does not know, with a message in err). */
int tr_report_load(const char *path, yajl_val *out, char *err, size_t err_size);

#endif
