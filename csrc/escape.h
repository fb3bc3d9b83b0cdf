/* escape.h - payload bytes <-> always-valid-UTF-8 C-style strings, the way strace prints them:
 * \n \t \r \" \\ stay short, printable ASCII stays, every other byte becomes \xHH. */
#ifndef TRACER_ESCAPE_H
#define TRACER_ESCAPE_H

#include <stddef.h>
#include <stdint.h>

/* Worst case output size for n input bytes, without the NUL. */
#define TR_ESCAPED_MAX(n) ((n) * 4)

/* Writes the escaped form of in[0..n) to out (room for TR_ESCAPED_MAX(n)+1); returns its
 * length; out is NUL-terminated. */
size_t tr_escape(const uint8_t *in, size_t n, char *out);
/* Inverse of tr_escape. out needs n bytes. Returns decoded length or -EINVAL on a malformed
 * escape. Accepts only what tr_escape writes (lowercase hex; \xHH only for bytes without a
 * literal or short form), so every accepted string re-escapes to itself. */
long tr_unescape(const char *in, size_t n, uint8_t *out);

/* The same for text that should stay readable (paths, thread and function names): well-formed
 * UTF-8 and '"' stay as they are, '\\' doubles, \n \t \r stay short, and every other control
 * byte or byte of invalid UTF-8 becomes \xHH. Output is valid UTF-8 without NULs; out needs
 * room for TR_ESCAPED_MAX(n)+1. Returns its length. */
size_t tr_escape_text(const char *in, size_t n, char *out);
/* Inverse of tr_escape_text. out needs n bytes. Returns decoded length or -EINVAL. */
long tr_unescape_text(const char *in, size_t n, char *out);

#endif
