/* store.h - putting a rendered report into the store directory: atomically (temp file, then
 * link into place), never over an existing file, never through a symlink, mode 0600. */
#ifndef TRACER_STORE_H
#define TRACER_STORE_H

#include <stddef.h>

/* Creates dir and its missing parents (each mode 0700; existing ones are left alone). Writes buf to dir/<stem>.json, or
 * dir/<stem>-N.json if taken. The chosen path goes to path_out. Returns 0 or -errno. */
int tr_store_put(const char *dir, const char *stem, const char *buf, size_t len,
		 char *path_out, size_t path_size);
/* Writes buf to exactly `path` (a user-chosen file): fails with -EEXIST if it exists,
 * never follows a symlink. */
int tr_store_put_path(const char *path, const char *buf, size_t len);

#endif
