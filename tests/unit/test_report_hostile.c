/* test_report_hostile.c - the report reader against hostile input: nesting bombs, too many
 * values, schema violations (missing keys, wrong types, out-of-range numbers), big numbers,
 * truncations. Each must come back as one error with a one-line message, never a crash. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_tree.h>
#include "report_read.h"

/* A valid report with every array non-empty (so every nested schema is exercised). */
static const char hos_valid[] =
	"{\"version\":1,\"key\":\"k\",\"program\":{\"path\":\"/p\",\"argv\":[\"p\"],\"pid\":1},"
	"\"started\":null,\"debugger\":\"gdb\","
	"\"stop\":{\"reason\":\"signal\",\"signal\":\"SIGSEGV\",\"status\":null,\"pid\":1,\"tid\":1},"
	"\"recorder\":{\"cap\":3,\"budget\":5000,\"payload\":16,\"backtrace\":16,\"count\":1,"
	"\"dropped\":0,\"overflow\":false,\"frozen\":true},"
	"\"events\":[{\"seq\":0,\"t_us\":0,\"pid\":1,\"tid\":1,\"dir\":\"send\",\"fn\":\"write\","
	"\"fd\":3,\"endpoint\":\"pipe:[1]\",\"len\":2,\"ret\":2,\"errno\":0,\"data\":\"a\\\\x00\","
	"\"truncated\":false,\"site\":{\"pc\":\"0x401000\",\"function\":null,\"file\":null,"
	"\"line\":null}}],"
	"\"processes\":[{\"pid\":1,\"alive\":true,\"exit_status\":null,\"exit_signal\":null,"
	"\"threads\":[{\"tid\":1,\"name\":null,\"backtrace\":[{\"pc\":\"0x1\",\"function\":\"f\","
	"\"file\":\"f.c\",\"line\":3}]}],"
	"\"mailboxes\":[{\"fd\":3,\"endpoint\":\"pipe:[1]\",\"pending\":1,\"messages\":null,"
	"\"data\":\"b\",\"truncated\":false,\"approx\":true,\"error\":null}]}],"
	"\"yield\":{\"enabled\":true,\"seed\":18446744073709551615,\"strategy\":\"yield\","
	"\"probability\":0.5,\"sites\":1,\"injected\":0}}";

/* hos_valid with the first occurrence of `from` replaced by `to`. */
static char *hos_edit(const char *from, const char *to)
{
	const char *at = strstr(hos_valid, from);
	char *out;

	cr_assert_not_null(at, "%s is in the sample", from);
	cr_assert_geq(asprintf(&out, "%.*s%s%s", (int)(at - hos_valid), hos_valid, to,
			       at + strlen(from)), 0);
	return out;
}

/* Parses buf; asserts an -EINVAL (or want) with a one-line message containing `has`. */
static void hos_refused(const char *buf, size_t len, int want, const char *has)
{
	char err[256] = "untouched";
	yajl_val doc = (yajl_val)1;
	int rc = tr_report_parse(buf, len, &doc, err, sizeof(err));

	cr_assert_eq(rc, want, "want %d, got %d (%s) for %.80s", want, rc, err, buf);
	cr_assert_null(doc);
	cr_assert_null(strchr(err, '\n'), "one line: %s", err);
	cr_assert_not_null(strstr(err, has), "'%s' in '%s'", has, err);
}

static void hos_refused_edit(const char *from, const char *to, const char *has)
{
	char *buf = hos_edit(from, to);

	hos_refused(buf, strlen(buf), -EINVAL, has);
	free(buf);
}

static void hos_accepted(const char *buf, size_t len)
{
	char err[256] = "";
	yajl_val doc = NULL;

	cr_assert_eq(tr_report_parse(buf, len, &doc, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(doc);
	yajl_tree_free(doc);
}

/* `{"version":1,"x":` + n '[' + n ']' + `}` when wrapped, else n '[' alone. */
static char *hos_nest(size_t n, bool wrapped, bool closed)
{
	char *buf = malloc(2 * n + 64), *p = buf;

	cr_assert_not_null(buf);
	if (wrapped)
		p += sprintf(p, "{\"version\":1,\"x\":");
	memset(p, '[', n);
	p += n;
	if (closed) {
		memset(p, ']', n);
		p += n;
	}
	if (wrapped)
		*p++ = '}';
	*p = '\0';
	return buf;
}

Test(report_hostile, the_sample_is_valid)
{
	hos_accepted(hos_valid, strlen(hos_valid));
}

Test(report_hostile, nesting_bombs_are_refused_quickly, .timeout = 20)
{
	/* The 400 KB of '[' (was: SIGSEGV in the debugger), then the same inside an
	 * object, closed and unclosed. */
	char *bomb = hos_nest(400000, false, false);

	hos_refused(bomb, strlen(bomb), -EINVAL, "nested deeper than 64 levels");
	free(bomb);
	bomb = hos_nest(400000, true, true);
	hos_refused(bomb, strlen(bomb), -EINVAL, "nested deeper than 64 levels");
	free(bomb);
	bomb = hos_nest(200000, true, false);
	hos_refused(bomb, strlen(bomb), -EINVAL, "nested deeper");
	free(bomb);
	{
		/* objects too */
		size_t n = 100000;
		char *b = malloc(n * 6 + 2), *p = b;

		for (size_t i = 0; i < n; i++)
			p += sprintf(p, "{\"a\":");
		*p = '\0';
		hos_refused(b, strlen(b), -EINVAL, "nested deeper");
		free(b);
	}
}

static char *hos_nested_key(size_t arrays)
{
	char inner[200], *p = inner;

	cr_assert_lt(2 * arrays + 16, sizeof(inner));
	p += sprintf(p, "\"x\":");
	memset(p, '[', arrays);
	p += arrays;
	memset(p, ']', arrays);
	p += arrays;
	sprintf(p, ",\"key\":");
	return hos_edit("\"key\":", inner);
}

Test(report_hostile, depth_limit_is_exact)
{
	/* The root object is level 1: 63 arrays below it reach 64 (allowed), 64 do not. */
	char *ok = hos_nested_key(TR_REPORT_DEPTH_MAX - 1);
	char *deep = hos_nested_key(TR_REPORT_DEPTH_MAX);

	hos_accepted(ok, strlen(ok));
	hos_refused(deep, strlen(deep), -EINVAL, "nested deeper than 64 levels");
	free(ok);
	free(deep);
}

Test(report_hostile, too_many_values, .timeout = 60)
{
	/* TR_REPORT_VALUES_MAX + 1 zeros in an unknown key: 8 MiB, under the size limit. */
	size_t n = TR_REPORT_VALUES_MAX + 1, len;
	char *buf = malloc(2 * n + 64), *p = buf;

	cr_assert_not_null(buf);
	p += sprintf(p, "{\"version\":1,\"x\":[");
	for (size_t i = 0; i < n; i++) {
		*p++ = '0';
		*p++ = ',';
	}
	p[-1] = ']';
	*p++ = '}';
	len = (size_t)(p - buf);
	hos_refused(buf, len, -EINVAL, "more than");
	free(buf);
}

Test(report_hostile, size_limit)
{
	/* refused on the length alone, before a byte is looked at */
	hos_refused("{}", (size_t)TR_REPORT_READ_MAX + 1, -EFBIG, "larger than");
}

Test(report_hostile, schema_errors_name_the_key)
{
	hos_refused("{\"version\":1}", 13, -EINVAL, "\"key\" is missing");
	hos_refused_edit("\"recorder\":{", "\"recorder\":\"x\",\"r\":{", "\"recorder\" must be an object");
	hos_refused_edit("\"cap\":3", "\"cap\":\"3\"", "\"recorder.cap\" must be an integer");
	hos_refused_edit("\"cap\":3", "\"cap\":0", "\"recorder.cap\" must be from 1 to 100000");
	hos_refused_edit("\"cap\":3", "\"cap\":1.5", "\"recorder.cap\" must be an integer");
	hos_refused_edit("\"count\":1", "\"count\":1e999", "\"recorder.count\" must be");
	hos_refused_edit("\"count\":1", "\"count\":99999999999999999999",
			 "\"recorder.count\" must be");
	hos_refused_edit("\"ret\":2", "\"ret\":\"2\"", "\"events[0].ret\" must be an integer or null");
	hos_refused_edit("\"dir\":\"send\"", "\"dir\":\"both\"", "\"events[0].dir\"");
	hos_refused_edit("\"data\":\"a\\\\x00\"", "\"data\":\"a\\\\x0\"", "\"events[0].data\"");
	hos_refused_edit("\"pc\":\"0x401000\"", "\"pc\":401000", "\"events[0].site.pc\"");
	hos_refused_edit("\"pc\":\"0x401000\"", "\"pc\":\"0x0401000\"", "\"events[0].site.pc\"");
	hos_refused_edit("\"events\":[{", "\"events\":[1,{", "\"events[0]\" must be an object");
	hos_refused_edit("\"events\":[", "\"events\":{},\"e\":[", "\"events\" must be an array");
	hos_refused_edit("\"argv\":[\"p\"]", "\"argv\":[\"p\",3]", "\"program.argv[1]\"");
	hos_refused_edit("\"signal\":\"SIGSEGV\"", "\"signal\":\"SEGV\"", "\"stop.signal\"");
	hos_refused_edit("\"approx\":true", "\"approx\":false",
			 "\"processes[0].mailboxes[0].approx\" must be true");
	hos_refused_edit("\"line\":3", "\"line\":0",
			 "\"processes[0].threads[0].backtrace[0].line\" must be at least 1");
	hos_refused_edit("\"seed\":18446744073709551615", "\"seed\":18446744073709551616",
			 "\"yield.seed\"");
	hos_refused_edit("\"seed\":18446744073709551615", "\"seed\":-1", "\"yield.seed\"");
	hos_refused_edit("\"probability\":0.5", "\"probability\":1e999", "\"yield.probability\"");
	hos_refused_edit("\"key\":\"k\"", "\"key\":\"k\",\"key\":\"j\"", "\"key\" appears more than once");
	hos_refused_edit("\"version\":1", "\"version\":2", "report version 2");
	hos_refused_edit("\"version\":1", "\"version\":1,\"version\":1", "version");
}

Test(report_hostile, optional_keys_checked_when_present)
{
	static const char filter[] = "\"debugger\":\"gdb\",\"mode\":\"agent\",\"filter\":"
		"{\"trace\":\"send\",\"status\":\"!EAGAIN\",\"endpoint\":\"*\",\"filtered\":3},";
	char *buf = hos_edit("\"debugger\":\"gdb\",", filter);

	hos_accepted(buf, strlen(buf));   /* and without them: the_sample_is_valid */
	free(buf);
	hos_refused_edit("\"debugger\":\"gdb\",", "\"debugger\":\"gdb\",\"mode\":1,",
			 "\"mode\" must be a string");
	hos_refused_edit("\"debugger\":\"gdb\",", "\"debugger\":\"gdb\",\"filter\":{\"trace\":"
			 "\"all\",\"status\":\"all\",\"endpoint\":\"*\",\"filtered\":-1},",
			 "\"filter.filtered\" must be at least 0");
	hos_refused_edit("\"debugger\":\"gdb\",", "\"debugger\":\"gdb\",\"filter\":{\"trace\":"
			 "\"all\",\"status\":\"all\",\"filtered\":0},", "\"filter.endpoint\" is missing");
}

Test(report_hostile, strict_json_only)
{
	/* yajl_tree would allow comments; a comment could hide brackets from a depth count */
	hos_refused_edit("\"key\":", "/* ] */\"key\":", "comment");
	hos_refused_edit("\"key\":\"k\"", "\"key\":\"\xc3\x28\"", "UTF8");
	hos_refused("{\"version\":1} {}", 16, -EINVAL, "parse error");
}

Test(report_hostile, unknown_keys_are_ignored_and_numbers_kept)
{
	char *buf = hos_edit("\"key\":", "\"future\":{\"a\":[1e999,-0,123456789012345678901234]},"
					"\"key\":");

	hos_accepted(buf, strlen(buf));
	free(buf);
}

Test(report_hostile, buffer_need_not_be_terminated)
{
	size_t len = strlen(hos_valid);
	char *buf = malloc(len);

	memcpy(buf, hos_valid, len);   /* no NUL after it: ASan would see a read past the end */
	hos_accepted(buf, len);
	free(buf);
}

Test(report_hostile, every_truncation_is_an_error, .timeout = 60)
{
	size_t len = strlen(hos_valid);

	for (size_t n = 0; n < len; n++) {
		char *buf = malloc(n ? n : 1);
		char err[256];
		yajl_val doc = (yajl_val)1;

		memcpy(buf, hos_valid, n);
		cr_assert_eq(tr_report_parse(buf, n, &doc, err, sizeof(err)), -EINVAL, "prefix %zu", n);
		cr_assert_null(doc);
		cr_assert_null(strchr(err, '\n'));
		free(buf);
	}
}
