/* filter.c - the trace / status / endpoint filters (see filter.h). */
#define _GNU_SOURCE
#include "filter.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"

#define ITEM_MAX 256   /* one list item: a name or a glob */

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

void tr_filter_init(struct tr_filter *f)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < tr_catalogue_len && i < TR_FILTER_CALLS; i++)
		f->call[i] = tr_call_records(&tr_catalogue[i]);
	f->keep_ok = f->keep_failed = true;
}

/* Walks a comma list: copies the next item (unescaped commas end it; `\,` stays as it is
 * for the glob matcher) into item and returns the rest, or NULL at the end. -1 in *len: the
 * item is too long. */
static const char *next_item(const char *p, char *item, int *len)
{
	int n = 0;

	if (!p)
		return NULL;
	while (*p && *p != ',') {
		if (*p == '\\' && p[1]) {
			if (n < ITEM_MAX - 2)
				item[n++] = *p;
			p++;
		}
		if (n < ITEM_MAX - 1)
			item[n++] = *p;
		else
			n = ITEM_MAX;
		p++;
	}
	*len = n >= ITEM_MAX - 1 ? -1 : n;
	item[n < ITEM_MAX ? n : ITEM_MAX - 1] = '\0';
	return *p == ',' ? p + 1 : p;
}

static bool blank(const char *text)
{
	return !text || !*text;
}

/* Catalogue index of "name" or "name()", -1 when none. */
static int function_named(const char *word)
{
	char name[ITEM_MAX];
	size_t n = strlen(word);

	if (n > 2 && n < sizeof(name) && !strcmp(word + n - 2, "()")) {
		memcpy(name, word, n - 2);
		name[n - 2] = '\0';
		return tr_catalogue_find(name);
	}
	return tr_catalogue_find(word);
}

int tr_filter_set_trace(struct tr_filter *f, const char *text, char *err, size_t errlen)
{
	uint8_t pos[TR_FILTER_CALLS] = { 0 }, neg[TR_FILTER_CALLS] = { 0 };
	bool any_pos = false;
	char item[ITEM_MAX];
	const char *p = text;
	int len;

	if (tr_catalogue_len > TR_FILTER_CALLS)
		return fail(err, errlen, "the catalogue outgrew the filter (%d rows)", TR_FILTER_CALLS);
	while (!blank(p) && (p = next_item(p, item, &len)) != NULL) {
		bool no = item[0] == '!';
		const char *word = item + no;
		uint8_t *set = no ? neg : pos;
		int call, cls;

		if (len < 0)
			return fail(err, errlen, "trace: an item is longer than %d bytes", ITEM_MAX - 2);
		if (!*word)
			return fail(err, errlen, "trace: an empty item in '%s'", text);
		any_pos |= !no;
		if (!strcmp(word, "all")) {
			for (size_t i = 0; i < tr_catalogue_len; i++)
				set[i] |= tr_call_records(&tr_catalogue[i]);
			continue;
		}
		/* send and recv are classes first; the functions alone are send() and recv() */
		cls = strchr(word, ',') ? -1 : tr_class_parse(word);
		if (cls == TR_CLASS_SEND || cls == TR_CLASS_RECV) {
			for (size_t i = 0; i < tr_catalogue_len; i++)
				set[i] |= (tr_catalogue[i].cls & cls) != 0;
			continue;
		}
		call = function_named(word);
		if (call >= 0) {
			if (!tr_call_records(&tr_catalogue[call]))
				return fail(err, errlen, "trace: %s is a yield point, not a recorded "
					    "call (classes send, recv)", word);
			set[call] = 1;
			continue;
		}
		return fail(err, errlen, "trace: '%s' is neither a class (send, recv, all) nor a "
			    "recorded function (write, sendmsg, send()...)", word);
	}
	for (size_t i = 0; i < TR_FILTER_CALLS; i++) {
		bool recorded = i < tr_catalogue_len && tr_call_records(&tr_catalogue[i]);

		f->call[i] = recorded && (!any_pos || pos[i]) && !neg[i];
	}
	return 0;
}

int tr_errno_parse(const char *name)
{
	char *end;
	long n;

	if (!name || !*name)
		return -1;
	if (name[0] >= '0' && name[0] <= '9') {
		n = strtol(name, &end, 10);
		return *end || n < 1 || n > 4095 ? -1 : (int)n;
	}
	if (!strcmp(name, "EWOULDBLOCK"))
		return EAGAIN;
	for (int e = 1; e < 4096; e++) {
		const char *known = strerrorname_np(e);

		if (known && !strcmp(known, name))
			return e;
	}
	return -1;
}

int tr_filter_set_status(struct tr_filter *f, const char *text, char *err, size_t errlen)
{
	bool pos_ok = false, pos_failed = false, neg_ok = false, neg_failed = false;
	bool any_pos = false;
	struct tr_filter next = *f;
	char item[ITEM_MAX];
	const char *p = text;
	int len;

	next.nerr = 0;
	while (!blank(p) && (p = next_item(p, item, &len)) != NULL) {
		bool no = item[0] == '!';
		const char *word = item + no;
		int e;

		if (len < 0 || !*word)
			return fail(err, errlen, "status: an empty or overlong item in '%.64s'", text);
		any_pos |= !no;
		if (!strcmp(word, "all")) {
			if (no)
				neg_ok = neg_failed = true;
			else
				pos_ok = pos_failed = true;
			continue;
		}
		if (!strcmp(word, "successful") || !strcmp(word, "failed")) {
			bool ok = word[0] == 's';

			*(no ? (ok ? &neg_ok : &neg_failed) : (ok ? &pos_ok : &pos_failed)) = true;
			continue;
		}
		e = tr_errno_parse(word);
		if (e < 0)
			return fail(err, errlen, "status: '%s' is not successful, failed, all or an "
				    "errno name like EAGAIN", word);
		if (next.nerr == TR_FILTER_ERRNOS)
			return fail(err, errlen, "status: at most %d errnos", TR_FILTER_ERRNOS);
		/* a later item about the same errno replaces the earlier one */
		for (uint8_t i = 0; i < next.nerr; i++)
			if (next.err[i] == e)
				next.err[i] = next.err[--next.nerr];
		next.err[next.nerr] = e;
		next.err_keep[next.nerr++] = !no;
	}
	next.keep_ok = (!any_pos || pos_ok) && !neg_ok;
	next.keep_failed = (!any_pos || pos_failed) && !neg_failed;
	/* an errno kept while failures are left out is a positive exception; a negative errno
	 * also loses to `!failed` (nothing failed is kept then) */
	for (uint8_t i = 0; i < next.nerr; i++)
		if (neg_failed)
			next.err_keep[i] = false;
	next.outcome_matters = !(next.keep_ok && next.keep_failed && next.nerr == 0);
	if (next.outcome_matters && next.keep_ok && next.keep_failed) {
		bool any_out = false;

		for (uint8_t i = 0; i < next.nerr; i++)
			any_out |= !next.err_keep[i];
		next.outcome_matters = any_out;
	}
	*f = next;
	return 0;
}

bool tr_filter_outcome(const struct tr_filter *f, int64_t ret, int32_t err)
{
	if (!f->outcome_matters)
		return true;
	if (ret >= 0)
		return f->keep_ok;
	for (uint8_t i = 0; i < f->nerr; i++)
		if (f->err[i] == err)
			return f->err_keep[i];
	return f->keep_failed;
}

int tr_filter_set_endpoint(struct tr_filter *f, const char *text, char *err, size_t errlen)
{
	struct tr_filter next = *f;
	char item[ITEM_MAX];
	const char *p = text;
	size_t used = 0;
	int len;

	next.nglob = 0;
	next.any_positive_glob = false;
	if (!blank(text) && strlen(text) >= TR_FILTER_TEXT_MAX)
		return fail(err, errlen, "endpoint: longer than %d bytes", TR_FILTER_TEXT_MAX - 1);
	while (!blank(p) && (p = next_item(p, item, &len)) != NULL) {
		bool no = item[0] == '!';
		const char *glob = item + no;
		size_t n = strlen(glob) + 1;

		if (len < 0 || !*glob)
			return fail(err, errlen, "endpoint: an empty or overlong glob in '%.64s'", text);
		if (next.nglob == TR_FILTER_GLOBS)
			return fail(err, errlen, "endpoint: at most %d globs", TR_FILTER_GLOBS);
		if (!strcmp(glob, "*") && !no)
			continue;   /* everything: the same as no positive glob */
		memcpy(next.globs + used, glob, n);
		next.glob_at[next.nglob] = (uint16_t)used;
		next.glob_keep[next.nglob++] = !no;
		next.any_positive_glob |= !no;
		used += n;
	}
	*f = next;
	return 0;
}

bool tr_filter_endpoint(const struct tr_filter *f, const char *name)
{
	bool hit = false;

	for (uint8_t i = 0; i < f->nglob; i++) {
		bool match = tr_glob_match(f->globs + f->glob_at[i], name);

		if (match && !f->glob_keep[i])
			return false;
		hit |= match && f->glob_keep[i];
	}
	return hit || !f->any_positive_glob;
}

/* One bracket expression at *pp ("[abc]", "[a-z]", "[!x]"); advances *pp past it. -1: not
 * closed (then `[` is an ordinary character). */
static int bracket(const char **pp, char c)
{
	const char *p = *pp + 1;
	bool negate = *p == '!' || *p == '^', match = false;

	if (negate)
		p++;
	for (bool first = true; *p && (first || *p != ']'); first = false) {
		char lo = *p == '\\' && p[1] ? *++p : *p, hi = lo;

		p++;
		if (*p == '-' && p[1] && p[1] != ']') {
			hi = p[1] == '\\' && p[2] ? p[2] : p[1];
			p += p[1] == '\\' && p[2] ? 3 : 2;
		}
		match |= c >= lo && c <= hi;
	}
	if (*p != ']')
		return -1;
	*pp = p + 1;
	return match != negate;
}

/* Iterative, with one backtrack point (the last `*`): linear in practice, no recursion. */
bool tr_glob_match(const char *glob, const char *text)
{
	const char *star = NULL, *resume = NULL;

	while (*text) {
		const char *g = glob;
		int b;

		if (*g == '*') {
			star = ++glob;
			resume = text;
			continue;
		}
		if (*g == '[' && (b = bracket(&g, *text)) >= 0) {
			if (b) {
				glob = g;
				text++;
				continue;
			}
		} else if (*g == '?' || (*g == '\\' && g[1] ? g[1] == *text : *g == *text)) {
			glob = g + (*g == '\\' && g[1] ? 2 : 1);
			text++;
			continue;
		}
		if (!star)
			return false;
		glob = star;
		text = ++resume;
	}
	while (*glob == '*')
		glob++;
	return !*glob;
}
