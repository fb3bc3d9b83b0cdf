/* test_escape.c - payload and text escaping, exhaustively where the space allows. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "escape.h"

/* The rule, written independently of escape.c: what one byte must become. */
static const char *esc_expected(uint8_t c, char buf[5])
{
	switch (c) {
	case '\n': return "\\n";
	case '\t': return "\\t";
	case '\r': return "\\r";
	case '"': return "\\\"";
	case '\\': return "\\\\";
	}
	if (c >= 0x20 && c <= 0x7e) {
		buf[0] = (char)c;
		buf[1] = '\0';
	} else {
		snprintf(buf, 5, "\\x%02x", c);
	}
	return buf;
}

/* Independent well-formedness check of UTF-8 (RFC 3629), decoding code points. */
static bool esc_valid_utf8(const char *s, size_t n)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t k, j;

		if (u[i] < 0x80) {
			i++;
			continue;
		}
		if ((u[i] & 0xe0) == 0xc0) {
			k = 2;
			cp = u[i] & 0x1f;
		} else if ((u[i] & 0xf0) == 0xe0) {
			k = 3;
			cp = u[i] & 0x0f;
		} else if ((u[i] & 0xf8) == 0xf0) {
			k = 4;
			cp = u[i] & 0x07;
		} else {
			return false;
		}
		if (i + k > n)
			return false;
		for (j = 1; j < k; j++) {
			if ((u[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (u[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k;
	}
	return true;
}

Test(escape, every_byte_alone)
{
	char out[TR_ESCAPED_MAX(1) + 1], want[5];
	uint8_t back[4];
	int c;

	for (c = 0; c < 256; c++) {
		uint8_t b = (uint8_t)c;
		size_t n = tr_escape(&b, 1, out);
		const char *w = esc_expected(b, want);

		cr_assert_str_eq(out, w, "byte 0x%02x", c);
		cr_assert_eq(n, strlen(w));
		cr_assert_eq(tr_unescape(out, n, back), 1, "byte 0x%02x", c);
		cr_assert_eq(back[0], b);
	}
}

Test(escape, all_pairs_round_trip)
{
	char out[TR_ESCAPED_MAX(2) + 1];
	uint8_t in[2], back[8];
	int a, b;

	for (a = 0; a < 256; a++) {
		for (b = 0; b < 256; b++) {
			size_t n;
			long m;

			in[0] = (uint8_t)a;
			in[1] = (uint8_t)b;
			n = tr_escape(in, 2, out);
			cr_assert_eq(strlen(out), n);
			m = tr_unescape(out, n, back);
			cr_assert_eq(m, 2, "0x%02x 0x%02x", a, b);
			cr_assert(back[0] == a && back[1] == b);
		}
	}
}

Test(escape, output_is_printable_ascii)
{
	uint8_t in[256];
	char out[TR_ESCAPED_MAX(256) + 1];
	size_t n, i;

	for (i = 0; i < 256; i++)
		in[i] = (uint8_t)i;
	n = tr_escape(in, 256, out);
	for (i = 0; i < n; i++)
		cr_assert(out[i] >= 0x20 && out[i] <= 0x7e, "offset %zu", i);
	cr_assert_eq(out[n], '\0');
}

Test(escape, worst_case_size)
{
	uint8_t in[100];
	char out[TR_ESCAPED_MAX(100) + 1];

	memset(in, 0xff, sizeof(in));
	cr_assert_eq(tr_escape(in, 100, out), TR_ESCAPED_MAX(100));
	cr_assert_eq(out[400], '\0');
	cr_assert_eq(tr_escape(in, 0, out), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(tr_unescape("", 0, in), 0);
}

Test(escape, random_round_trip)
{
	uint8_t in[512], back[TR_ESCAPED_MAX(512)];
	char out[TR_ESCAPED_MAX(512) + 1];
	int round;
	size_t i;

	srand(12345);
	for (round = 0; round < 2000; round++) {
		size_t n = (size_t)rand() % sizeof(in), m;

		for (i = 0; i < n; i++)
			in[i] = (uint8_t)rand();
		m = tr_escape(in, n, out);
		cr_assert_eq(tr_unescape(out, m, back), (long)n);
		cr_assert_eq(memcmp(in, back, n), 0);
	}
}

Test(escape, malformed)
{
	static const char *const bad[] = {
		"\\", "a\\", "\\x", "\\x4", "\\x4g", "\\xg4", "\\q", "\\0", "\\a", "\\'",
		"\\X41", "\\xAB", "\\xFF", "\\xfF",   /* only lowercase hex is ever written */
		"\\x41", "\\x20", "\\x7e", "\\x0a", "\\x22", "\\x5c",   /* have shorter forms */
		"\"", "ab\"", "\n", "\t", "\x01", "\x7f", "\x80", "\xc3\xa9", "\xff",
	};
	uint8_t out[16];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(tr_unescape(bad[i], strlen(bad[i]), out), -EINVAL, "input #%zu", i);
	/* An embedded NUL is a byte like any other control byte: rejected. */
	cr_assert_eq(tr_unescape("a\0b", 3, out), -EINVAL);
	/* The length bounds the input: "\x4" cut from "\x41" is malformed, "ab" of "abc" fine. */
	cr_assert_eq(tr_unescape("\\x7f", 3, out), -EINVAL);
	cr_assert_eq(tr_unescape("abc", 2, out), 2);
}

/* One token per byte, taken from tr_escape itself: the language tr_unescape must accept is
 * exactly the concatenations of these. Indexed for speed: by the char (one-char tokens), by the
 * char after '\\' (two-char ones), by the two hex chars (\xHH ones). */
struct esc_tokens {
	bool one[256], two[256], hex[65536];
};

static void esc_tokens_init(struct esc_tokens *t)
{
	char tok[5];
	int c;

	memset(t, 0, sizeof(*t));
	for (c = 0; c < 256; c++) {
		uint8_t b = (uint8_t)c;

		switch (tr_escape(&b, 1, tok)) {
		case 1:
			t->one[(uint8_t)tok[0]] = true;
			break;
		case 2:
			cr_assert_eq(tok[0], '\\');
			t->two[(uint8_t)tok[1]] = true;
			break;
		case 4:
			cr_assert(tok[0] == '\\' && tok[1] == 'x');
			t->hex[(uint8_t)tok[2] << 8 | (uint8_t)tok[3]] = true;
			break;
		default:
			cr_assert_fail("token of byte 0x%02x: %s", c, tok);
		}
	}
	cr_assert(!t->two['x'], "\\x must not be a whole token: tokens are prefix-free");
}

/* Whether s[0..n) splits into tokens (they are prefix-free, so greedy is exact). */
static bool esc_is_tokens(const struct esc_tokens *t, const char *s, size_t n)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t i = 0;

	while (i < n) {
		if (u[i] != '\\') {
			if (!t->one[u[i]])
				return false;
			i += 1;
		} else if (i + 1 < n && u[i + 1] != 'x') {
			if (!t->two[u[i + 1]])
				return false;
			i += 2;
		} else if (i + 3 < n) {
			if (!t->hex[u[i + 2] << 8 | u[i + 3]])
				return false;
			i += 4;
		} else {
			return false;
		}
	}
	return true;
}

static void esc_check_string(const struct esc_tokens *t, const char *s, size_t n)
{
	uint8_t out[8];
	char again[TR_ESCAPED_MAX(8) + 1];
	long m = tr_unescape(s, n, out);
	bool want = esc_is_tokens(t, s, n);

	if (!want) {
		cr_assert_eq(m, -EINVAL, "accepted a non-escape of length %zu: %02x %02x %02x %02x %02x",
			     n, (uint8_t)s[0], n > 1 ? (uint8_t)s[1] : 0, n > 2 ? (uint8_t)s[2] : 0,
			     n > 3 ? (uint8_t)s[3] : 0, n > 4 ? (uint8_t)s[4] : 0);
		return;
	}
	cr_assert_geq(m, 0, "rejected an escape of length %zu", n);
	/* The exact inverse: re-escaping gives back the same spelling. */
	cr_assert_eq(tr_escape(out, (size_t)m, again), n);
	cr_assert_eq(memcmp(again, s, n), 0);
}

Test(escape, unescape_accepts_exactly_escapes_short_strings)
{
	static struct esc_tokens t;
	char s[2];
	int a, b;

	esc_tokens_init(&t);
	for (a = 0; a < 256; a++) {
		s[0] = (char)a;
		esc_check_string(&t, s, 1);
		for (b = 0; b < 256; b++) {
			s[1] = (char)b;
			esc_check_string(&t, s, 2);
		}
	}
}

Test(escape, unescape_accepts_exactly_escapes_longer_strings)
{
	/* Every character that matters to the grammar, and a few that must not. */
	static const char alpha[] = { '\\', 'x', 'n', 't', 'r', '"', '0', '7', '9', 'a', 'f', 'g',
				      'A', 'F', ' ', '~', 0x00, 0x1f, 0x7f, (char)0x80, (char)0xff };
	const size_t k = sizeof(alpha);
	static struct esc_tokens t;
	char s[5];
	size_t len, idx[5], total, i, j;

	esc_tokens_init(&t);
	for (len = 3; len <= 5; len++) {
		total = 1;
		for (i = 0; i < len; i++)
			total *= k;
		for (j = 0; j < total; j++) {
			size_t v = j;

			for (i = 0; i < len; i++) {
				idx[i] = v % k;
				v /= k;
				s[i] = alpha[idx[i]];
			}
			esc_check_string(&t, s, len);
		}
	}
}

Test(escape, text_keeps_readable_text)
{
	static const char *const same[] = {
		"", "plain", "/usr/bin/prog with spaces", "quote\"d", "caf\xc3\xa9",
		"\xe2\x82\xac 100", "\xf0\x9f\x98\x80", "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf",
		"\xc2\x80", "\xef\xbf\xbf",
	};
	char out[256];
	size_t i;

	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		size_t n = tr_escape_text(same[i], strlen(same[i]), out);

		cr_assert_str_eq(out, same[i], "#%zu", i);
		cr_assert_eq(n, strlen(same[i]));
	}
}

Test(escape, text_escapes_controls_backslash_and_bad_utf8)
{
	static const struct {
		const char *in;
		size_t n;
		const char *want;
	} cases[] = {
		{ "a\\b", 3, "a\\\\b" },
		{ "l1\nl2\tx\r", 8, "l1\\nl2\\tx\\r" },
		{ "nul\0x", 5, "nul\\x00x" },
		{ "\x01\x1f\x7f", 3, "\\x01\\x1f\\x7f" },
		{ "\xff", 1, "\\xff" },
		{ "\x80", 1, "\\x80" },                        /* lone continuation */
		{ "\xc0\x80", 2, "\\xc0\\x80" },               /* overlong NUL */
		{ "\xc1\xbf", 2, "\\xc1\\xbf" },               /* overlong */
		{ "\xe0\x80\xaf", 3, "\\xe0\\x80\\xaf" },      /* overlong '/' */
		{ "\xed\xa0\x80", 3, "\\xed\\xa0\\x80" },      /* surrogate */
		{ "\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80" }, /* above U+10FFFF */
		{ "\xf5\x80\x80\x80", 4, "\\xf5\\x80\\x80\\x80" },
		{ "\xe2\x82", 2, "\\xe2\\x82" },               /* cut short */
		{ "\xe2\x82" "A", 3, "\\xe2\\x82A" },
		{ "caf\xc3\xa9\xff", 6, "caf\xc3\xa9\\xff" },
		{ "\xc3\xc3\xa9", 3, "\\xc3\xc3\xa9" },
	};
	char out[64];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = tr_escape_text(cases[i].in, cases[i].n, out);

		cr_assert_str_eq(out, cases[i].want, "#%zu", i);
		cr_assert_eq(n, strlen(cases[i].want));
		cr_assert(esc_valid_utf8(out, n));
	}
}

Test(escape, text_round_trip_pairs_and_random)
{
	char in[600], out[TR_ESCAPED_MAX(600) + 1], back[TR_ESCAPED_MAX(600)];
	int a, b, round;
	size_t i;

	for (a = 0; a < 256; a++) {
		for (b = 0; b < 256; b++) {
			size_t n;

			in[0] = (char)a;
			in[1] = (char)b;
			n = tr_escape_text(in, 2, out);
			cr_assert(esc_valid_utf8(out, n));
			cr_assert_null(memchr(out, '\0', n));
			cr_assert_eq(tr_unescape_text(out, n, back), 2, "0x%02x 0x%02x", a, b);
			cr_assert(back[0] == in[0] && back[1] == in[1]);
		}
	}
	srand(777);
	for (round = 0; round < 3000; round++) {
		size_t n = (size_t)rand() % sizeof(in), m;

		/* Biased towards UTF-8 lead and continuation bytes, where the cases hide. */
		for (i = 0; i < n; i++)
			in[i] = (char)(rand() % 3 ? 0x80 + rand() % 0x80 : rand() % 0x100);
		m = tr_escape_text(in, n, out);
		cr_assert(esc_valid_utf8(out, m));
		cr_assert_eq(tr_unescape_text(out, m, back), (long)n);
		cr_assert_eq(memcmp(in, back, n), 0);
	}
}

Test(escape, text_unescape_malformed)
{
	static const char *const bad[] = {
		"\\", "\\x", "\\x4", "\\xg0", "\\xAB", "\\q",
		"\\\"",            /* '"' is written as itself in text */
		"\\x41",           /* has a literal form */
		"\\xc3\\xa9",      /* a whole UTF-8 sequence is written raw */
		"\xff", "\x80", "\xc3", "\xed\xa0\x80", "\x01", "\x7f", "a\nb",
	};
	static const char *const good[] = {
		"\\xc3", "\\xc3A", "\\xff\\xfe", "\\xe2\\x82", "\"", "caf\xc3\xa9", "\\\\", "\\n",
		"\\x00",
	};
	char out[32], again[TR_ESCAPED_MAX(32) + 1];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(tr_unescape_text(bad[i], strlen(bad[i]), out), -EINVAL, "bad #%zu", i);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		long m = tr_unescape_text(good[i], strlen(good[i]), out);

		cr_assert_geq(m, 0, "good #%zu", i);
		tr_escape_text(out, (size_t)m, again);
		cr_assert_str_eq(again, good[i]);
	}
}
