/* test_filter.c - the trace / status / endpoint filters (csrc/filter.h): parsing, the
 * decisions, and the one-line errors. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include "catalogue.h"
#include "filter.h"

static int idx(const char *name)
{
	int i = tr_catalogue_find(name);

	cr_assert_geq(i, 0, "%s not in the catalogue", name);
	return i;
}

Test(filter, default_keeps_every_recorded_call_and_outcome)
{
	struct tr_filter f;

	tr_filter_init(&f);
	cr_assert(tr_filter_call(&f, idx("write")));
	cr_assert(tr_filter_call(&f, idx("recvmsg")));
	cr_assert_not(tr_filter_call(&f, idx("pthread_mutex_lock")), "a yield point records nothing");
	cr_assert_not(tr_filter_call(&f, -1));
	cr_assert_not(f.outcome_matters);
	cr_assert(tr_filter_outcome(&f, -1, EAGAIN));
	cr_assert(tr_filter_endpoint(&f, "unix:/x"));
}

Test(filter, trace_by_class_function_and_negation)
{
	struct tr_filter f;

	tr_filter_init(&f);
	cr_assert_eq(tr_filter_set_trace(&f, "send", NULL, 0), 0);
	cr_assert(tr_filter_call(&f, idx("write")));
	cr_assert(tr_filter_call(&f, idx("msgsnd")));
	cr_assert_not(tr_filter_call(&f, idx("read")));

	cr_assert_eq(tr_filter_set_trace(&f, "sendmsg,recvmsg", NULL, 0), 0);
	cr_assert(tr_filter_call(&f, idx("sendmsg")));
	cr_assert(tr_filter_call(&f, idx("recvmsg")));
	cr_assert_not(tr_filter_call(&f, idx("write")));

	cr_assert_eq(tr_filter_set_trace(&f, "!recv", NULL, 0), 0);
	cr_assert(tr_filter_call(&f, idx("write")));
	cr_assert_not(tr_filter_call(&f, idx("read")));

	cr_assert_eq(tr_filter_set_trace(&f, "recv,!read", NULL, 0), 0);
	cr_assert(tr_filter_call(&f, idx("recv")));
	cr_assert_not(tr_filter_call(&f, idx("read")));
	cr_assert_not(tr_filter_call(&f, idx("write")));

	cr_assert_eq(tr_filter_set_trace(&f, "send(),recvmsg()", NULL, 0), 0);
	cr_assert(tr_filter_call(&f, idx("send")), "send() is the function");
	cr_assert(tr_filter_call(&f, idx("recvmsg")));
	cr_assert_not(tr_filter_call(&f, idx("write")));

	cr_assert_eq(tr_filter_set_trace(&f, "all", NULL, 0), 0);
	cr_assert(tr_filter_call(&f, idx("read")));
	cr_assert_not(tr_filter_call(&f, idx("sem_post")));
}

Test(filter, trace_errors_are_one_line_and_leave_the_filter)
{
	struct tr_filter f;
	char err[TR_FILTER_ERR_MAX];

	tr_filter_init(&f);
	tr_filter_set_trace(&f, "send", NULL, 0);
	cr_assert_eq(tr_filter_set_trace(&f, "send,bogus", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "'bogus'"), "%s", err);
	cr_assert_null(strchr(err, '\n'));
	cr_assert_eq(tr_filter_set_trace(&f, "sem_post", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "yield point"), "%s", err);
	cr_assert_eq(tr_filter_set_trace(&f, "send,,recv", err, sizeof(err)), -EINVAL);
	cr_assert_eq(tr_filter_set_trace(&f, "sync", err, sizeof(err)), -EINVAL);
	cr_assert(tr_filter_call(&f, idx("write")), "unchanged after an error");
	cr_assert_not(tr_filter_call(&f, idx("read")));
}

Test(filter, status_outcomes_and_errnos)
{
	struct tr_filter f;

	tr_filter_init(&f);
	cr_assert_eq(tr_filter_set_status(&f, "!EAGAIN", NULL, 0), 0);
	cr_assert(f.outcome_matters);
	cr_assert(tr_filter_outcome(&f, 5, 0));
	cr_assert(tr_filter_outcome(&f, -1, EPIPE));
	cr_assert_not(tr_filter_outcome(&f, -1, EAGAIN));

	cr_assert_eq(tr_filter_set_status(&f, "successful", NULL, 0), 0);
	cr_assert(tr_filter_outcome(&f, 0, 0));
	cr_assert_not(tr_filter_outcome(&f, -1, EPIPE));

	cr_assert_eq(tr_filter_set_status(&f, "failed,!EWOULDBLOCK", NULL, 0), 0);
	cr_assert_not(tr_filter_outcome(&f, 3, 0));
	cr_assert(tr_filter_outcome(&f, -1, ECONNRESET));
	cr_assert_not(tr_filter_outcome(&f, -1, EAGAIN), "EWOULDBLOCK is EAGAIN");

	cr_assert_eq(tr_filter_set_status(&f, "successful,EPIPE", NULL, 0), 0);
	cr_assert(tr_filter_outcome(&f, 3, 0));
	cr_assert(tr_filter_outcome(&f, -1, EPIPE));
	cr_assert_not(tr_filter_outcome(&f, -1, EAGAIN));

	cr_assert_eq(tr_filter_set_status(&f, "11", NULL, 0), 0);
	cr_assert(tr_filter_outcome(&f, -1, EAGAIN));
	cr_assert_not(tr_filter_outcome(&f, 1, 0));

	cr_assert_eq(tr_filter_set_status(&f, "all", NULL, 0), 0);
	cr_assert_not(f.outcome_matters, "all: sends keep their slot at entry");
	cr_assert_eq(tr_filter_set_status(&f, "", NULL, 0), 0);
	cr_assert_not(f.outcome_matters);
}

Test(filter, status_errors)
{
	struct tr_filter f;
	char err[TR_FILTER_ERR_MAX];

	tr_filter_init(&f);
	cr_assert_eq(tr_filter_set_status(&f, "EFOO", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "'EFOO'"), "%s", err);
	cr_assert_eq(tr_filter_set_status(&f, "!", err, sizeof(err)), -EINVAL);
	cr_assert_eq(tr_filter_set_status(&f, "0", err, sizeof(err)), -EINVAL);
	cr_assert_eq(tr_filter_set_status(&f, "4096", err, sizeof(err)), -EINVAL);
	cr_assert_not(f.outcome_matters);
}

Test(filter, endpoint_globs)
{
	struct tr_filter f;

	tr_filter_init(&f);
	cr_assert_eq(tr_filter_set_endpoint(&f, "unix:*", NULL, 0), 0);
	cr_assert(tr_filter_endpoint(&f, "unix:/tmp/s->[7]"));
	cr_assert_not(tr_filter_endpoint(&f, "pipe:[12]"));

	cr_assert_eq(tr_filter_set_endpoint(&f, "tcp:*:8080,pipe:*", NULL, 0), 0);
	cr_assert(tr_filter_endpoint(&f, "tcp:127.0.0.1:40212->127.0.0.1:8080"));
	cr_assert(tr_filter_endpoint(&f, "pipe:[3]"));
	cr_assert_not(tr_filter_endpoint(&f, "tcp:127.0.0.1:8080->127.0.0.1:40212"));

	cr_assert_eq(tr_filter_set_endpoint(&f, "!pipe:*", NULL, 0), 0);
	cr_assert(tr_filter_endpoint(&f, "unix:x"));
	cr_assert_not(tr_filter_endpoint(&f, "pipe:[3]"));

	cr_assert_eq(tr_filter_set_endpoint(&f, "*", NULL, 0), 0);
	cr_assert(tr_filter_endpoint(&f, "anything"));
	cr_assert_eq(tr_filter_set_endpoint(&f, "a\\,b", NULL, 0), 0);
	cr_assert(tr_filter_endpoint(&f, "a,b"));
	cr_assert_not(tr_filter_endpoint(&f, "a"));
}

Test(filter, glob_syntax)
{
	cr_assert(tr_glob_match("*", ""));
	cr_assert(tr_glob_match("a*b*c", "axxbyyc"));
	cr_assert_not(tr_glob_match("a*b*c", "axxbyy"));
	cr_assert(tr_glob_match("?x", "ax"));
	cr_assert_not(tr_glob_match("?x", "x"));
	cr_assert(tr_glob_match("[a-c]1", "b1"));
	cr_assert_not(tr_glob_match("[!a-c]1", "b1"));
	cr_assert(tr_glob_match("[]]", "]"));
	cr_assert(tr_glob_match("\\*", "*"));
	cr_assert_not(tr_glob_match("\\*", "x"));
	cr_assert(tr_glob_match("[", "["), "an unclosed bracket is a character");
	cr_assert(tr_glob_match("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"));
}

Test(filter, errno_names)
{
	cr_assert_eq(tr_errno_parse("EAGAIN"), EAGAIN);
	cr_assert_eq(tr_errno_parse("EPIPE"), EPIPE);
	cr_assert_eq(tr_errno_parse("EWOULDBLOCK"), EAGAIN);
	cr_assert_eq(tr_errno_parse("eagain"), -1);
	cr_assert_eq(tr_errno_parse("12x"), -1);
	cr_assert_eq(tr_errno_parse(""), -1);
}
