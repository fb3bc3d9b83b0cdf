/* test_session.c - the hot path (session.c) with a fake register source and real memory.
 *
 * session.c takes registers from its caller and reads the tracee's memory with
 * process_vm_readv (regs.c). Here the "tracee" is this test process: its pid, buffers in its
 * own memory, a fake stack whose top holds the return address, and pipes, so that endpoint
 * names resolve for real. Registers are passed in explicitly, as lldb's front end does. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "catalogue.h"
#include "session.h"

#define SITE 0x401234ull            /* the caller's pc after the call */

static struct tr_session s;
static pid_t me;
static int fds[2];
static uint64_t stack[64];           /* stack[32] is the top at entry: the return address */

static void setup(void)
{
	struct tr_recorder_config cfg = { .cap = 50, .budget = 100, .payload = 64 };

	me = getpid();
	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(tr_session_init(&s, &cfg), 0);
	memset(stack, 0, sizeof(stack));
	stack[32] = SITE;
}

static void teardown(void)
{
	tr_session_destroy(&s);
	close(fds[0]);
	close(fds[1]);
}

TestSuite(session, .init = setup, .fini = teardown);

static int call(const char *name)
{
	int c = tr_catalogue_find(name);

	cr_assert_geq(c, 0, "%s is not in the catalogue", name);
	return c;
}

/* Registers at the entry of a function whose frame top is stack[top]. */
static struct tr_regs at_entry(int top, uint64_t a0, uint64_t a1, uint64_t a2)
{
	struct tr_regs r = { .arg = { a0, a1, a2 } };

	r.sp = (uint64_t)(uintptr_t)&stack[top];
	return r;
}

/* Registers at the return address: the return address popped, rax = ret. */
static struct tr_regs at_return(int top, int64_t ret)
{
	struct tr_regs r = { 0 };

	r.sp = (uint64_t)(uintptr_t)&stack[top] + 8;
	r.ret = (uint64_t)ret;
	r.pc = SITE;
	return r;
}

static uint64_t addr(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static const struct tr_event *event(size_t i, const uint8_t **data, size_t *len)
{
	cr_assert_lt(i, tr_recorder_len(&s.rec));
	return tr_recorder_at(&s.rec, i, data, len);
}

static void expect_data(size_t i, const char *want)
{
	const uint8_t *data;
	size_t len;

	event(i, &data, &len);
	cr_expect_eq(len, strlen(want), "event %zu: %zu bytes, expected %zu", i, len, strlen(want));
	cr_expect(len == strlen(want) && memcmp(data, want, len) == 0, "event %zu payload", i);
}

Test(session, send_pushed_at_entry_completed_at_return)
{
	static const char msg[] = "hello";
	uint64_t ret_pc = 0;
	struct tr_regs r = at_entry(32, (uint64_t)fds[1], addr(msg), 5);

	cr_assert_eq(tr_session_entry(&s, call("write"), me, me, &r, &ret_pc), TR_ACT_CATCH_RETURN);
	cr_expect_eq(ret_pc, SITE);
	cr_assert_eq(tr_recorder_len(&s.rec), 1, "a send is recorded when it is asked");
	const struct tr_event *ev = event(0, NULL, NULL);
	cr_expect_eq(ev->dir, TR_DIR_SEND);
	cr_expect_str_eq(ev->fn, "write");
	cr_expect_eq(ev->fd, fds[1]);
	cr_expect_eq(ev->len, 5);
	cr_expect_eq(ev->site, SITE);
	cr_expect_not(ev->returned);
	cr_expect_eq(strncmp(ev->endpoint, "pipe:[", 6), 0, "endpoint %s", ev->endpoint);
	expect_data(0, "hello");
	cr_expect_eq(s.npending, 1);

	r = at_return(32, 5);
	cr_assert_eq(tr_session_return(&s, me, me, &r), TR_ACT_CONTINUE);
	ev = event(0, NULL, NULL);
	cr_expect(ev->returned);
	cr_expect_eq(ev->ret, 5);
	cr_expect_eq(ev->err, 0);
	cr_expect_eq(tr_recorder_len(&s.rec), 1);
	cr_expect_eq(s.npending, 0);
}

Test(session, receive_pushed_at_return_with_its_bytes)
{
	char buf[16] = "";
	uint64_t ret_pc = 0;
	struct tr_regs r = at_entry(32, (uint64_t)fds[0], addr(buf), sizeof(buf));

	cr_assert_eq(tr_session_entry(&s, call("read"), me, me, &r, &ret_pc), TR_ACT_CATCH_RETURN);
	cr_expect_eq(tr_recorder_len(&s.rec), 0, "a receive waits for its bytes");
	memcpy(buf, "world", 5);               /* what the kernel wrote meanwhile */
	r = at_return(32, 5);
	cr_assert_eq(tr_session_return(&s, me, me, &r), TR_ACT_CONTINUE);
	cr_assert_eq(tr_recorder_len(&s.rec), 1);
	const struct tr_event *ev = event(0, NULL, NULL);
	cr_expect_eq(ev->dir, TR_DIR_RECV);
	cr_expect_eq(ev->len, 16, "len: the room offered");
	cr_expect_eq(ev->ret, 5);
	cr_expect(ev->returned);
	cr_expect_not(ev->truncated);
	expect_data(0, "world");
}

Test(session, preview_cut_to_the_payload_setting)
{
	struct tr_recorder_config cfg = { .cap = 4, .budget = 10, .payload = 4 };
	static const char msg[] = "0123456789";
	uint64_t ret_pc;

	tr_session_destroy(&s);
	cr_assert_eq(tr_session_init(&s, &cfg), 0);
	struct tr_regs r = at_entry(32, (uint64_t)fds[1], addr(msg), 10);
	tr_session_entry(&s, call("write"), me, me, &r, &ret_pc);
	expect_data(0, "0123");
	cr_expect(event(0, NULL, NULL)->truncated);
}

Test(session, nested_catalogue_call_is_part_of_the_outer_one)
{
	char buf[8] = "";
	uint64_t ret_pc;
	struct tr_regs outer = at_entry(32, (uint64_t)fds[0], addr(buf), sizeof(buf));
	struct tr_regs inner = at_entry(20, (uint64_t)fds[0], addr(buf), sizeof(buf));

	cr_assert_eq(tr_session_entry(&s, call("mq_receive"), me, me, &outer, &ret_pc),
		     TR_ACT_CATCH_RETURN);
	cr_expect_eq(tr_session_entry(&s, call("mq_timedreceive"), me, me, &inner, &ret_pc),
		     TR_ACT_CONTINUE, "deeper in the same thread: no second call");
	cr_expect_eq(s.nested, 1);
	memcpy(buf, "abc", 3);
	struct tr_regs r = at_return(32, 3);
	tr_session_return(&s, me, me, &r);
	cr_assert_eq(tr_recorder_len(&s.rec), 1);
	cr_expect_str_eq(event(0, NULL, NULL)->fn, "mq_receive");
	expect_data(0, "abc");
}

Test(session, tail_call_shares_the_frame)
{
	static const char msg[] = "tail";
	uint64_t ret_pc;
	struct tr_regs r = at_entry(32, (uint64_t)fds[1], addr(msg), 4);

	/* glibc's mq_send jumps to mq_timedsend: same sp, another function */
	cr_assert_eq(tr_session_entry(&s, call("mq_send"), me, me, &r, &ret_pc),
		     TR_ACT_CATCH_RETURN);
	cr_expect_eq(tr_session_entry(&s, call("mq_timedsend"), me, me, &r, &ret_pc),
		     TR_ACT_CONTINUE);
	cr_expect_eq(s.nested, 1);
	cr_expect_eq(tr_recorder_len(&s.rec), 1);
	struct tr_regs back = at_return(32, 0);
	cr_expect_eq(tr_session_return(&s, me, me, &back), TR_ACT_CONTINUE);
	cr_expect_str_eq(event(0, NULL, NULL)->fn, "mq_send");
	cr_expect(event(0, NULL, NULL)->returned);
	cr_expect_eq(s.npending, 0);
}

Test(session, rehit_of_the_same_entry_is_recorded_once)
{
	static const char msg[] = "once";
	uint64_t ret_pc = 0;
	struct tr_regs r = at_entry(32, (uint64_t)fds[1], addr(msg), 4);

	cr_assert_eq(tr_session_entry(&s, call("write"), me, me, &r, &ret_pc), TR_ACT_CATCH_RETURN);
	ret_pc = 0;
	/* gdb re-reports the breakpoint when a signal lands during its step-over */
	cr_expect_eq(tr_session_entry(&s, call("write"), me, me, &r, &ret_pc), TR_ACT_CATCH_RETURN);
	cr_expect_eq(ret_pc, SITE, "the return stop is still wanted");
	cr_expect_eq(s.rehits, 1);
	cr_expect_eq(tr_recorder_len(&s.rec), 1);
	cr_expect_eq(s.npending, 1);
}

Test(session, stale_pending_call_is_replaced)
{
	static const char a[] = "a", b[] = "bb";
	uint64_t ret_pc;
	struct tr_regs r1 = at_entry(32, (uint64_t)fds[1], addr(a), 1);
	struct tr_regs r2 = at_entry(32, (uint64_t)fds[1], addr(b), 2);

	tr_session_entry(&s, call("write"), me, me, &r1, &ret_pc);
	/* its return never came (longjmp): the next call at that depth starts afresh */
	tr_session_entry(&s, call("write"), me, me, &r2, &ret_pc);
	cr_expect_eq(tr_recorder_len(&s.rec), 2);
	cr_expect_eq(s.npending, 1);
	cr_expect_eq(s.rehits, 0);
}

Test(session, failed_call_asks_for_errno)
{
	static const char msg[] = "x";
	uint64_t ret_pc;
	struct tr_regs r = at_entry(32, (uint64_t)fds[1], addr(msg), 1);

	tr_session_entry(&s, call("write"), me, me, &r, &ret_pc);
	r = at_return(32, -1);
	cr_assert_eq(tr_session_return(&s, me, me, &r), TR_ACT_NEED_ERRNO);
	cr_expect_not(event(0, NULL, NULL)->returned, "not complete before errno");
	cr_assert_eq(tr_session_errno(&s, me, EPIPE), TR_ACT_CONTINUE);
	const struct tr_event *ev = event(0, NULL, NULL);
	cr_expect(ev->returned);
	cr_expect_eq(ev->ret, -1);
	cr_expect_eq(ev->err, EPIPE);
	cr_expect_eq(s.npending, 0);
	cr_expect_eq(tr_session_errno(&s, me, EPIPE), TR_ACT_CONTINUE, "nothing left to complete");
}

/* glibc's __errno_location: mov disp32(%rip),%rax; add %fs:0,%rax; ret. The GOT slot holds
 * errno's offset from the thread pointer. Built here in our own memory. */
Test(session, errno_read_through_errno_location)
{
	static uint8_t code[16];
	static int64_t slot;
	static int tls[4];
	char buf[4];
	uint64_t ret_pc;
	int32_t disp;

	tls[2] = ECONNRESET;
	slot = 2 * (int64_t)sizeof(int);
	code[0] = 0x48;
	code[1] = 0x8b;
	code[2] = 0x05;
	disp = (int32_t)(addr(&slot) - (addr(code) + 7));
	cr_assert_eq((int64_t)disp, (int64_t)(addr(&slot) - (addr(code) + 7)),
		     "slot too far for a disp32");
	memcpy(code + 3, &disp, 4);

	struct tr_regs r = at_entry(32, (uint64_t)fds[0], addr(buf), sizeof(buf));
	tr_session_entry(&s, call("read"), me, me, &r, &ret_pc);
	r = at_return(32, -1);
	r.fs_base = addr(tls);
	cr_assert_eq(tr_session_return(&s, me, me, &r), TR_ACT_NEED_ERRNO);
	cr_assert_eq(tr_session_errno_at(&s, me, addr(code)), TR_ACT_CONTINUE);
	cr_assert_eq(tr_recorder_len(&s.rec), 1);
	const struct tr_event *ev = event(0, NULL, NULL);
	cr_expect_eq(ev->dir, TR_DIR_RECV);
	cr_expect_eq(ev->ret, -1);
	cr_expect_eq(ev->err, ECONNRESET);
	const uint8_t *data;
	size_t len;
	event(0, &data, &len);
	cr_expect_eq(len, 0, "a failed receive has no bytes");
}

Test(session, iovec_capture)
{
	static const char a[] = "ab", b[] = "cde";
	struct iovec iov[2] = { { (void *)a, 2 }, { (void *)b, 3 } };
	uint64_t ret_pc;
	struct tr_regs r = at_entry(32, (uint64_t)fds[1], addr(iov), 2);

	tr_session_entry(&s, call("writev"), me, me, &r, &ret_pc);
	cr_expect_eq(event(0, NULL, NULL)->len, 5, "len: the iovecs' total");
	expect_data(0, "abcde");
	r = at_return(32, 5);
	tr_session_return(&s, me, me, &r);

	/* readv: only the bytes the call moved */
	char x[4] = "", y[4] = "";
	struct iovec in[2] = { { x, 4 }, { y, 4 } };
	r = at_entry(32, (uint64_t)fds[0], addr(in), 2);
	tr_session_entry(&s, call("readv"), me, me, &r, &ret_pc);
	memcpy(x, "1234", 4);
	memcpy(y, "56", 2);
	r = at_return(32, 6);
	tr_session_return(&s, me, me, &r);
	cr_assert_eq(tr_recorder_len(&s.rec), 2);
	cr_expect_eq(event(1, NULL, NULL)->len, 8);
	expect_data(1, "123456");
}

Test(session, msghdr_capture)
{
	int sv[2];
	static const char a[] = "hdr", b[] = "-msg";
	struct iovec iov[2] = { { (void *)a, 3 }, { (void *)b, 4 } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	uint64_t ret_pc;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct tr_regs r = at_entry(32, (uint64_t)sv[0], addr(&mh), 0);
	cr_assert_eq(tr_session_entry(&s, call("sendmsg"), me, me, &r, &ret_pc),
		     TR_ACT_CATCH_RETURN);
	cr_expect_eq(event(0, NULL, NULL)->len, 7);
	cr_expect_eq(strncmp(event(0, NULL, NULL)->endpoint, "unix:", 5), 0, "%s",
		     event(0, NULL, NULL)->endpoint);
	expect_data(0, "hdr-msg");
	close(sv[0]);
	close(sv[1]);
}

Test(session, sysv_capture_skips_mtype)
{
	struct {
		long mtype;
		char text[8];
	} msg = { 7, "queue" };
	uint64_t ret_pc;
	struct tr_regs r = at_entry(32, 1234, addr(&msg), 5);

	/* a queue id is not an fd: named, never looked up in /proc */
	cr_assert_eq(tr_session_entry(&s, call("msgsnd"), me, me, &r, &ret_pc),
		     TR_ACT_CATCH_RETURN);
	const struct tr_event *ev = event(0, NULL, NULL);
	cr_expect_str_eq(ev->endpoint, "sysv:1234");
	cr_expect_eq(ev->fd, 1234);
	cr_expect_eq(ev->len, 5);
	expect_data(0, "queue");
	r = at_return(32, 0);
	tr_session_return(&s, me, me, &r);

	struct {
		long mtype;
		char text[8];
	} in = { 0, "" };
	r = at_entry(32, 1234, addr(&in), sizeof(in.text));
	tr_session_entry(&s, call("msgrcv"), me, me, &r, &ret_pc);
	in.mtype = 7;
	memcpy(in.text, "reply", 5);
	r = at_return(32, 5);                   /* msgrcv returns the mtext bytes */
	tr_session_return(&s, me, me, &r);
	expect_data(1, "reply");
}

Test(session, budget_reached_disarms)
{
	struct tr_recorder_config cfg = { .cap = 10, .budget = 2, .payload = 8 };
	static const char msg[] = "b";
	uint64_t ret_pc;

	tr_session_destroy(&s);
	cr_assert_eq(tr_session_init(&s, &cfg), 0);
	struct tr_regs r = at_entry(32, (uint64_t)fds[1], addr(msg), 1);
	cr_expect_eq(tr_session_entry(&s, call("write"), me, me, &r, &ret_pc), TR_ACT_CATCH_RETURN);
	struct tr_regs back = at_return(32, 1);
	tr_session_return(&s, me, me, &back);
	/* the event that reaches the budget is kept, and says so */
	cr_expect_eq(tr_session_entry(&s, call("write"), me, me, &r, &ret_pc), TR_ACT_DISARM);
	cr_expect(s.rec.overflow);
	cr_expect_eq(tr_recorder_len(&s.rec), 2);
	/* after it nothing more is recorded, whatever the front end still reports */
	cr_expect_eq(tr_session_entry(&s, call("write"), me, me, &r, &ret_pc), TR_ACT_DISARM);
	cr_expect_eq(tr_recorder_len(&s.rec), 2);
}

Test(session, files_are_not_messages)
{
	static const char msg[] = "log";
	uint64_t ret_pc;
	int fd = open("/proc/self/stat", O_RDONLY);

	cr_assert_geq(fd, 0);
	struct tr_regs r = at_entry(32, (uint64_t)fd, addr(msg), 3);
	cr_expect_eq(tr_session_entry(&s, call("write"), me, me, &r, &ret_pc), TR_ACT_CONTINUE);
	cr_expect_eq(s.not_ipc, 1);
	cr_expect_eq(tr_recorder_len(&s.rec), 0);
	close(fd);
}

Test(session, hooks_unmatched_returns_and_forget)
{
	uint64_t ret_pc = 0;
	struct tr_regs r = at_entry(32, 0, 0, 0);

	/* sync/proc rows are yield points: no event, no return stop */
	cr_expect_eq(tr_session_entry(&s, call("pthread_mutex_lock"), me, me, &r, &ret_pc),
		     TR_ACT_CONTINUE);
	cr_expect_eq(tr_session_entry(&s, -1, me, me, &r, &ret_pc), TR_ACT_CONTINUE);
	cr_expect_eq(tr_session_entry(&s, (int)tr_catalogue_len, me, me, &r, &ret_pc),
		     TR_ACT_CONTINUE);
	struct tr_regs back = at_return(32, 0);
	cr_expect_eq(tr_session_return(&s, me, me, &back), TR_ACT_CONTINUE);
	cr_expect_eq(s.unmatched_returns, 1);

	char buf[4];
	r = at_entry(32, (uint64_t)fds[0], addr(buf), sizeof(buf));
	tr_session_entry(&s, call("read"), me, me, &r, &ret_pc);
	cr_expect_eq(s.npending, 1);
	tr_session_forget(&s, me);            /* the process exec'd */
	cr_expect_eq(s.npending, 0);
	cr_expect_eq(tr_session_return(&s, me, me, &back), TR_ACT_CONTINUE);
	cr_expect_eq(s.unmatched_returns, 2);
	cr_expect_eq(tr_recorder_len(&s.rec), 0);
}

Test(session, unreadable_stack_is_counted)
{
	char buf[4];
	uint64_t ret_pc;
	struct tr_regs r = at_entry(32, (uint64_t)fds[0], addr(buf), sizeof(buf));

	r.sp = 8;                               /* not mapped */
	cr_expect_eq(tr_session_entry(&s, call("read"), me, me, &r, &ret_pc), TR_ACT_CONTINUE);
	cr_expect_eq(s.unreadable, 1);
	cr_expect_eq(s.npending, 0);
}

/* ---- the filter (filter.h): decided before a slot is taken ---- */

Test(session, status_filter_defers_sends_and_leaves_failures_out)
{
	static const char msg[] = "hello";
	uint64_t ret_pc = 0;
	struct tr_regs r = at_entry(32, (uint64_t)fds[1], addr(msg), 5);

	cr_assert_eq(tr_filter_set_status(&s.filter, "!EAGAIN", NULL, 0), 0);
	cr_assert_eq(tr_session_entry(&s, call("write"), me, me, &r, &ret_pc), TR_ACT_CATCH_RETURN);
	cr_expect_eq(s.rec.count, 0, "with a status filter a send waits for its outcome");
	r = at_return(32, -1);
	cr_assert_eq(tr_session_return(&s, me, me, &r), TR_ACT_NEED_ERRNO);
	cr_assert_eq(tr_session_errno(&s, me, EAGAIN), TR_ACT_CONTINUE);
	cr_expect_eq(s.rec.count, 0, "an EAGAIN send took no slot");
	cr_expect_eq(s.filtered, 1);
	cr_expect_eq(s.npending, 0);

	r = at_entry(32, (uint64_t)fds[1], addr(msg), 5);
	tr_session_entry(&s, call("write"), me, me, &r, &ret_pc);
	r = at_return(32, 5);
	cr_assert_eq(tr_session_return(&s, me, me, &r), TR_ACT_CONTINUE);
	cr_assert_eq(s.rec.count, 1);
	const struct tr_event *ev = event(0, NULL, NULL);
	cr_expect_eq(ev->dir, TR_DIR_SEND);
	cr_expect(ev->returned);
	cr_expect_eq(ev->ret, 5);
	cr_expect_eq(ev->len, 5);
	cr_expect_not(ev->truncated);
	expect_data(0, "hello");

	char buf[8];
	r = at_entry(32, (uint64_t)fds[0], addr(buf), sizeof(buf));
	tr_session_entry(&s, call("read"), me, me, &r, &ret_pc);
	r = at_return(32, -1);
	cr_assert_eq(tr_session_return(&s, me, me, &r), TR_ACT_NEED_ERRNO);
	tr_session_errno(&s, me, EAGAIN);
	cr_expect_eq(s.rec.count, 1, "an EAGAIN receive took no slot");
	cr_expect_eq(s.filtered, 2);
}

Test(session, endpoint_filter_decides_at_entry)
{
	static const char msg[] = "x";
	uint64_t ret_pc = 0;
	struct tr_regs r = at_entry(32, (uint64_t)fds[1], addr(msg), 1);

	cr_assert_eq(tr_filter_set_endpoint(&s.filter, "unix:*", NULL, 0), 0);
	cr_expect_eq(tr_session_entry(&s, call("write"), me, me, &r, &ret_pc), TR_ACT_CONTINUE,
		     "a pipe left out: no return stop either");
	cr_expect_eq(s.npending, 0);
	cr_expect_eq(s.rec.count, 0);
	cr_expect_eq(s.filtered, 1);
	cr_assert_eq(tr_filter_set_endpoint(&s.filter, "pipe:*", NULL, 0), 0);
	cr_expect_eq(tr_session_entry(&s, call("write"), me, me, &r, &ret_pc), TR_ACT_CATCH_RETURN);
	cr_expect_eq(s.rec.count, 1);
}

Test(session, trace_filter_skips_the_function)
{
	static const char msg[] = "x";
	uint64_t ret_pc = 0;
	struct tr_regs r = at_entry(32, (uint64_t)fds[1], addr(msg), 1);

	cr_assert_eq(tr_filter_set_trace(&s.filter, "recv", NULL, 0), 0);
	cr_expect_eq(tr_session_entry(&s, call("write"), me, me, &r, &ret_pc), TR_ACT_CONTINUE);
	cr_expect_eq(s.npending, 0);
	cr_expect_eq(s.rec.count, 0);
	cr_expect_eq(s.filtered, 0, "trace= calls are not seen, so not counted");
}
