/* escape.c - strace-style escaping of payload bytes and of text, and the exact inverses.
 *
 * The decoders accept only what the encoders write (lowercase hex, \xHH only where no shorter
 * form exists): one spelling per byte string, so a decoded report re-encodes to itself. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include "escape.h"

static const char hex_digits[] = "0123456789abcdef";

/* The short escape letter for c, or 0. */
static char short_escape(uint8_t c)
{
	switch (c) {
	case '\n': return 'n';
	case '\t': return 't';
	case '\r': return 'r';
	case '\\': return '\\';
	default: return 0;
	}
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;   /* uppercase is never written, so never read */
}

static size_t put_hex(char *out, uint8_t c)
{
	out[0] = '\\';
	out[1] = 'x';
	out[2] = hex_digits[c >> 4];
	out[3] = hex_digits[c & 15];
	return 4;
}

/* Length (2..4) of the well-formed UTF-8 sequence at s (Unicode table 3-7: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_seq_len(const uint8_t *s, size_t n)
{
	uint8_t c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

size_t tr_escape(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0, i;

	for (i = 0; i < n; i++) {
		uint8_t c = in[i];
		char s;

		if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\') {
			out[o++] = (char)c;
		} else if ((s = short_escape(c)) || c == '"') {
			out[o++] = '\\';
			out[o++] = s ? s : '"';
		} else {
			o += put_hex(out + o, c);
		}
	}
	out[o] = '\0';
	return o;
}

/* Decodes the escape starting at in[*i] == '\\' into *byte; false when malformed. */
static bool read_escape(const char *in, size_t n, size_t *i, uint8_t *byte)
{
	int h, l;

	if (*i + 1 >= n)
		return false;
	switch (in[*i + 1]) {
	case 'n': *byte = '\n'; break;
	case 't': *byte = '\t'; break;
	case 'r': *byte = '\r'; break;
	case '\\': *byte = '\\'; break;
	case '"': *byte = '"'; break;
	case 'x':
		if (*i + 3 >= n)
			return false;
		h = hex_value(in[*i + 2]);
		l = hex_value(in[*i + 3]);
		if (h < 0 || l < 0)
			return false;
		*byte = (uint8_t)(h << 4 | l);
		*i += 4;
		return true;
	default:
		return false;
	}
	*i += 2;
	return true;
}

long tr_unescape(const char *in, size_t n, uint8_t *out)
{
	size_t i = 0, o = 0;

	while (i < n) {
		uint8_t c = (uint8_t)in[i];
		bool hex;

		if (c != '\\') {
			if (c < 0x20 || c > 0x7e || c == '"')
				return -EINVAL;
			out[o++] = c;
			i++;
			continue;
		}
		hex = i + 1 < n && in[i + 1] == 'x';
		if (!read_escape(in, n, &i, &c))
			return -EINVAL;
		/* \xHH only for bytes with no literal or short form. */
		if (hex && ((c >= 0x20 && c <= 0x7e) || short_escape(c)))
			return -EINVAL;
		out[o++] = c;
	}
	return (long)o;
}

/* Escapes the text unit at in[i] (one byte, or one whole UTF-8 sequence) into out; returns the
 * bytes written and advances *i. */
static size_t escape_text_unit(const uint8_t *in, size_t n, size_t *i, char *out)
{
	uint8_t c = in[*i];
	size_t k;
	char s;

	if (c >= 0x80 && (k = utf8_seq_len(in + *i, n - *i))) {
		memcpy(out, in + *i, k);
		*i += k;
		return k;
	}
	(*i)++;
	if (c >= 0x20 && c <= 0x7e && c != '\\') {
		out[0] = (char)c;
		return 1;
	}
	if ((s = short_escape(c))) {
		out[0] = '\\';
		out[1] = s;
		return 2;
	}
	return put_hex(out, c);
}

size_t tr_escape_text(const char *in, size_t n, char *out)
{
	const uint8_t *u = (const uint8_t *)in;
	size_t o = 0, i = 0;

	while (i < n)
		o += escape_text_unit(u, n, &i, out + o);
	out[o] = '\0';
	return o;
}

long tr_unescape_text(const char *in, size_t n, char *out)
{
	const uint8_t *u = (const uint8_t *)in;
	size_t i = 0, o = 0, j;
	char unit[4];

	while (i < n) {
		uint8_t c = u[i];
		size_t k;

		if (c == '\\') {
			if (i + 1 < n && in[i + 1] == '"')
				return -EINVAL;   /* '"' is written as itself */
			if (!read_escape(in, n, &i, &c))
				return -EINVAL;
			out[o++] = (char)c;
		} else if (c >= 0x80) {
			if (!(k = utf8_seq_len(u + i, n - i)))
				return -EINVAL;
			memcpy(out + o, in + i, k);
			o += k;
			i += k;
		} else if (c < 0x20 || c == 0x7f) {
			return -EINVAL;
		} else {
			out[o++] = (char)c;
			i++;
		}
	}
	/* Whether a \xHH was the one spelling depends on the bytes decoded after it (a lead byte
	 * followed by continuations is written raw), so check by re-encoding. */
	for (i = 0, j = 0; i < o;) {
		size_t w = escape_text_unit((const uint8_t *)out, o, &i, unit);

		if (j + w > n || memcmp(unit, in + j, w) != 0)
			return -EINVAL;
		j += w;
	}
	return j == n ? (long)o : -EINVAL;
}
