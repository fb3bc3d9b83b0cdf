/* test_catalogue.c - every row of the IPC catalogue obeys the rules of its class and buffer
 * shape: the checks a new row (catalogue.h, "To add a function") must pass. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "catalogue.h"
#include "session.h"

static bool one_class(enum tr_class c)
{
	return c == TR_CLASS_SEND || c == TR_CLASS_RECV || c == TR_CLASS_SYNC ||
	       c == TR_CLASS_PROC;
}

static bool is_arg(int a)
{
	return a >= 1 && a < 6;             /* arg 0 is the handle; 6 register arguments */
}

Test(catalogue, every_row_is_consistent)
{
	cr_assert_gt(tr_catalogue_len, 0);
	for (size_t i = 0; i < tr_catalogue_len; i++) {
		const struct tr_call *c = &tr_catalogue[i];

		cr_assert_not_null(c->name, "row %zu has no name", i);
		cr_expect_gt(strlen(c->name), 0, "row %zu", i);
		for (size_t j = 0; j < i; j++)
			cr_expect_str_neq(tr_catalogue[j].name, c->name, "%s listed twice", c->name);
		cr_expect_eq(tr_catalogue_find(c->name), (int)i, "%s: find", c->name);
		cr_expect(one_class(c->cls), "%s: class %d is not exactly one class", c->name,
			  c->cls);
		cr_expect_eq(tr_class_parse(tr_class_name(c->cls)), (int)c->cls, "%s", c->name);

		if (!tr_call_records(c)) {      /* yield points: nothing to decode */
			cr_expect_eq(c->handle, TR_HANDLE_NONE, "%s: a hook names no handle", c->name);
			cr_expect_eq(c->buffer, TR_BUF_NONE, "%s: a hook has no buffer", c->name);
			cr_expect(c->buf_arg == -1 && c->len_arg == -1, "%s: hook args", c->name);
			cr_expect_null(tr_handle_name(c->handle));
			continue;
		}
		cr_expect_neq(c->handle, TR_HANDLE_NONE, "%s: a message needs a handle", c->name);
		cr_expect_not_null(tr_handle_name(c->handle), "%s", c->name);
		cr_expect_eq(c->handle == TR_HANDLE_MSQID, c->buffer == TR_BUF_SYSV,
			     "%s: SysV buffers go with queue ids, and only them", c->name);
		cr_expect(is_arg(c->buf_arg), "%s: buf_arg %d", c->name, c->buf_arg);
		switch (c->buffer) {
		case TR_BUF_PLAIN:
		case TR_BUF_IOV:
		case TR_BUF_SYSV:
			cr_expect(is_arg(c->len_arg) && c->len_arg != c->buf_arg,
				  "%s: len_arg %d with buf_arg %d", c->name, c->len_arg, c->buf_arg);
			break;
		case TR_BUF_MSGHDR:
			cr_expect_eq(c->len_arg, -1, "%s: a msghdr carries its own lengths", c->name);
			break;
		case TR_BUF_NONE:
			cr_expect_fail("%s: a message without a buffer", c->name);
			break;
		}
	}
}

Test(catalogue, lookups_and_class_words)
{
	cr_expect_eq(tr_catalogue_find("no_such_function"), -1);
	cr_expect_eq(tr_class_parse("send,recv"), TR_CLASS_SEND | TR_CLASS_RECV);
	cr_expect_eq(tr_class_parse(""), 0);
	cr_expect_eq(tr_class_parse("send,bogus"), -1);
	cr_expect_eq(tr_class_parse("access,sync"), TR_CLASS_ACCESS | TR_CLASS_SYNC);
	cr_expect_str_eq(tr_class_name(TR_CLASS_SYNC), "sync");
	cr_expect_str_eq(tr_handle_name(TR_HANDLE_MSQID), "msqid");
}

/* capture_return (catalogue()) is what the session does: a recorded call asks for its return
 * stop, a hook never does. */
Test(catalogue, recorded_rows_ask_for_their_return)
{
	struct tr_recorder_config cfg = { .cap = 8, .budget = 1000, .payload = 8 };
	struct tr_session s;
	int fds[2];
	uint64_t stack[8] = { 0 };
	char buf[8] = "payload";
	pid_t me = getpid();

	cr_assert_eq(pipe(fds), 0);
	stack[4] = 0x401000;
	for (size_t i = 0; i < tr_catalogue_len; i++) {
		const struct tr_call *c = &tr_catalogue[i];
		struct tr_regs r = { .sp = (uint64_t)(uintptr_t)&stack[4] };
		uint64_t ret_pc = 0;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

		cr_assert_eq(tr_session_init(&s, &cfg), 0);
		r.arg[0] = c->handle == TR_HANDLE_MSQID ? 77 : (uint64_t)fds[1];
		if (c->buf_arg >= 0)
			r.arg[c->buf_arg] = c->buffer == TR_BUF_IOV ? (uint64_t)(uintptr_t)&iov
					  : c->buffer == TR_BUF_MSGHDR ? (uint64_t)(uintptr_t)&mh
					  : (uint64_t)(uintptr_t)buf;
		if (c->len_arg >= 0)
			r.arg[c->len_arg] = c->buffer == TR_BUF_IOV ? 1 : 4;
		enum tr_action act = tr_session_entry(&s, (int)i, me, me, &r, &ret_pc);
		cr_expect_eq(act, tr_call_records(c) ? TR_ACT_CATCH_RETURN : TR_ACT_CONTINUE,
			     "%s: action %d", c->name, act);
		cr_expect_eq(s.npending, tr_call_records(c) ? 1u : 0u, "%s", c->name);
		cr_expect_eq(tr_recorder_len(&s.rec), c->cls == TR_CLASS_SEND ? 1u : 0u, "%s",
			     c->name);
		tr_session_destroy(&s);
	}
	close(fds[0]);
	close(fds[1]);
}
