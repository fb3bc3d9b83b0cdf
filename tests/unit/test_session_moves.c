/* test_session_moves.c - breakpoint mode's decoding of the calls that are not one buffer:
 * sendfile, splice, tee (bytes read where transfer.h says) and sendmmsg/recvmmsg (an event
 * per message). As test_session.c: this process is the "tracee", the registers are given,
 * and between the entry and the return stop the real call is made, so every byte the session
 * reads comes from the kernel's pipes, sockets and files. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "catalogue.h"
#include "session.h"
#include "transfer.h"

#define SITE 0x401234ull

static struct tr_session s;
static pid_t me;
static int pipefd[2], sock[2], file;
static uint64_t stack[64];

static void setup(void)
{
	struct tr_recorder_config cfg = { .cap = 50, .budget = 100, .payload = 8 };
	char path[] = "/tmp/tracer-moves-XXXXXX";

	me = getpid();
	cr_assert_eq(pipe(pipefd), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, sock), 0);
	file = mkstemp(path);
	cr_assert_geq(file, 0);
	unlink(path);
	cr_assert_eq(write(file, "0123456789abcdef", 16), 16);
	cr_assert_eq(tr_session_init(&s, &cfg), 0);
	memset(stack, 0, sizeof(stack));
	stack[32] = SITE;
}

static void teardown(void)
{
	tr_session_destroy(&s);
	close(pipefd[0]);
	close(pipefd[1]);
	close(sock[0]);
	close(sock[1]);
	close(file);
}

TestSuite(moves, .init = setup, .fini = teardown);

static int call(const char *name)
{
	int c = tr_catalogue_find(name);

	cr_assert_geq(c, 0, "%s is not in the catalogue", name);
	return c;
}

static uint64_t addr(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* Stops at the entry of `name` with six arguments; asserts it wants its return. */
static void enter(const char *name, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		  uint64_t a4, uint64_t a5)
{
	struct tr_regs r = { .arg = { a0, a1, a2, a3, a4, a5 } };
	uint64_t ret_pc = 0;

	r.sp = addr(&stack[32]);
	cr_assert_eq(tr_session_entry(&s, call(name), me, me, &r, &ret_pc), TR_ACT_CATCH_RETURN,
		     "%s", name);
}

/* Stops at the return with `ret` (errno `err` when it is -1). */
static void leave(int64_t ret, int err)
{
	struct tr_regs r = { 0 };

	r.sp = addr(&stack[32]) + 8;
	r.ret = (uint64_t)ret;
	r.pc = SITE;
	if ((int32_t)ret == -1) {
		cr_assert_eq(tr_session_return(&s, me, me, &r), TR_ACT_NEED_ERRNO);
		tr_session_errno(&s, me, err);
	} else {
		cr_assert_eq(tr_session_return(&s, me, me, &r), TR_ACT_CONTINUE);
	}
	cr_expect_eq(s.npending, 0);
}

/* Event i: its fields and its preview. */
static void expect_event(size_t i, const char *fn, enum tr_dir dir, int fd, int64_t len,
			 int64_t ret, const char *data, bool truncated)
{
	const uint8_t *bytes;
	size_t n;

	cr_assert_lt(i, tr_recorder_len(&s.rec), "event %zu of %zu", i, tr_recorder_len(&s.rec));
	const struct tr_event *ev = tr_recorder_at(&s.rec, i, &bytes, &n);
	cr_expect_str_eq(ev->fn, fn, "event %zu", i);
	cr_expect_eq(ev->dir, dir, "event %zu: dir", i);
	cr_expect_eq(ev->fd, fd, "event %zu: fd %lld, expected %d", i, (long long)ev->fd, fd);
	cr_expect_eq(ev->len, len, "event %zu: len %lld, expected %lld", i, (long long)ev->len,
		     (long long)len);
	cr_expect(ev->returned, "event %zu returned", i);
	cr_expect_eq(ev->ret, ret, "event %zu: ret %lld, expected %lld", i, (long long)ev->ret,
		     (long long)ret);
	cr_expect_eq(n, strlen(data), "event %zu: %zu bytes, expected \"%s\"", i, n, data);
	cr_expect(n == strlen(data) && memcmp(bytes, data, n) == 0, "event %zu payload", i);
	cr_expect_eq(ev->truncated, truncated, "event %zu: truncated", i);
}

Test(moves, sendfile_at_its_offset_argument)
{
	off_t off = 3;

	enter("sendfile", (uint64_t)sock[0], (uint64_t)file, addr(&off), 5, 0, 0);
	cr_assert_eq(tr_recorder_len(&s.rec), 1, "a send is recorded when it is asked");
	cr_assert_eq(sendfile(sock[0], file, &off, 5), 5);
	leave(5, 0);
	expect_event(0, "sendfile", TR_DIR_SEND, sock[0], 5, 5, "34567", false);
	cr_expect_eq(strncmp(tr_recorder_at(&s.rec, 0, NULL, NULL)->endpoint, "unix:", 5), 0);
}

Test(moves, sendfile_at_the_file_position_cut_to_the_payload)
{
	cr_assert_eq(lseek(file, 4, SEEK_SET), 4);
	enter("sendfile", (uint64_t)sock[0], (uint64_t)file, 0, 100, 0, 0);
	cr_assert_eq(sendfile(sock[0], file, NULL, 100), 12);
	leave(12, 0);
	/* 12 bytes went (the file's end), the 8-byte preview holds the first 8 */
	expect_event(0, "sendfile", TR_DIR_SEND, sock[0], 100, 12, "456789ab", true);
}

Test(moves, sendfile_to_a_file_is_not_a_message)
{
	struct tr_regs r = { .arg = { (uint64_t)file, (uint64_t)file, 0, 4 } };
	uint64_t ret_pc;

	r.sp = addr(&stack[32]);
	cr_expect_eq(tr_session_entry(&s, call("sendfile"), me, me, &r, &ret_pc), TR_ACT_CONTINUE);
	cr_expect_eq(s.not_ipc, 1);
}

Test(moves, failed_sendfile_has_no_bytes)
{
	off_t off = 0;

	enter("sendfile", (uint64_t)sock[0], (uint64_t)file, addr(&off), 5, 0, 0);
	leave(-1, EAGAIN);
	expect_event(0, "sendfile", TR_DIR_SEND, sock[0], 5, -1, "", false);
	cr_expect_eq(tr_recorder_at(&s.rec, 0, NULL, NULL)->err, EAGAIN);
}

Test(moves, splice_pipe_to_socket_is_a_send_on_the_socket)
{
	cr_assert_eq(write(pipefd[1], "hello world", 11), 11);
	enter("splice", (uint64_t)pipefd[0], 0, (uint64_t)sock[0], 0, 5, 0);
	cr_assert_eq(splice(pipefd[0], NULL, sock[0], NULL, 5, 0), 5);
	leave(5, 0);
	expect_event(0, "splice", TR_DIR_SEND, sock[0], 5, 5, "hello", false);
}

Test(moves, splice_socket_to_pipe_is_a_receive_on_the_socket)
{
	char rest[8];

	cr_assert_eq(write(pipefd[1], "old", 3), 3);   /* queued before: not this call's */
	cr_assert_eq(send(sock[1], "datagram", 8, 0), 8);
	enter("splice", (uint64_t)sock[0], 0, (uint64_t)pipefd[1], 0, 64, 0);
	cr_expect_eq(tr_recorder_len(&s.rec), 0, "a receive waits for its bytes");
	cr_assert_eq(splice(sock[0], NULL, pipefd[1], NULL, 64, 0), 8);
	leave(8, 0);
	expect_event(0, "splice", TR_DIR_RECV, sock[0], 64, 8, "datagram", false);
	cr_assert_eq(read(pipefd[0], rest, 3), 3, "nothing consumed by the tracer");
	cr_expect_eq(memcmp(rest, "old", 3), 0);
}

Test(moves, splice_pipe_to_file_is_a_receive_on_the_pipe)
{
	loff_t off = 2;

	cr_assert_eq(write(pipefd[1], "XYZ", 3), 3);
	enter("splice", (uint64_t)pipefd[0], 0, (uint64_t)file, addr(&off), 3, 0);
	cr_assert_eq(splice(pipefd[0], NULL, file, &off, 3, 0), 3);
	leave(3, 0);
	expect_event(0, "splice", TR_DIR_RECV, pipefd[0], 3, 3, "XYZ", false);
}

Test(moves, tee_pipe_to_pipe_is_a_send_on_the_out_pipe)
{
	int other[2];

	cr_assert_eq(pipe(other), 0);
	cr_assert_eq(write(pipefd[1], "copy me", 7), 7);
	enter("tee", (uint64_t)pipefd[0], (uint64_t)other[1], 4, 0, 0, 0);
	cr_assert_eq(tee(pipefd[0], other[1], 4, 0), 4);
	leave(4, 0);
	expect_event(0, "tee", TR_DIR_SEND, other[1], 4, 4, "copy", false);
	close(other[0]);
	close(other[1]);
}

Test(moves, splice_that_waited_for_its_bytes_says_they_are_unknown)
{
	/* the pipe was empty at entry: the bytes the call then took were never seen */
	enter("splice", (uint64_t)pipefd[0], 0, (uint64_t)sock[0], 0, 5, 0);
	cr_assert_eq(write(pipefd[1], "late", 4), 4);
	cr_assert_eq(splice(pipefd[0], NULL, sock[0], NULL, 5, 0), 4);
	leave(4, 0);
	expect_event(0, "splice", TR_DIR_SEND, sock[0], 5, 4, "", true);
}

Test(moves, sendmmsg_one_event_per_message)
{
	struct iovec iov[3] = { { "first", 5 }, { "second!", 7 }, { "third", 5 } };
	struct mmsghdr vec[3];

	memset(vec, 0, sizeof(vec));
	for (int i = 0; i < 3; i++) {
		vec[i].msg_hdr.msg_iov = &iov[i];
		vec[i].msg_hdr.msg_iovlen = 1;
	}
	enter("sendmmsg", (uint64_t)sock[0], addr(vec), 3, 0, 0, 0);
	cr_assert_eq(tr_recorder_len(&s.rec), 3, "each message is a send, recorded when asked");
	/* two went: the third is an event the call did not get to (ret 0) */
	cr_assert_eq(sendmmsg(sock[0], vec, 2, 0), 2);
	leave(2, 0);
	expect_event(0, "sendmmsg", TR_DIR_SEND, sock[0], 5, 5, "first", false);
	expect_event(1, "sendmmsg", TR_DIR_SEND, sock[0], 7, 7, "second!", false);
	expect_event(2, "sendmmsg", TR_DIR_SEND, sock[0], 5, 0, "third", false);
}

Test(moves, recvmmsg_one_event_per_message_received)
{
	char a[16], b[16], c[4];
	struct iovec iov[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
	struct mmsghdr vec[3];

	memset(vec, 0, sizeof(vec));
	for (int i = 0; i < 3; i++) {
		vec[i].msg_hdr.msg_iov = &iov[i];
		vec[i].msg_hdr.msg_iovlen = 1;
	}
	cr_assert_eq(send(sock[1], "one", 3, 0), 3);
	cr_assert_eq(send(sock[1], "two and more", 12, 0), 12);
	enter("recvmmsg", (uint64_t)sock[0], addr(vec), 3, MSG_DONTWAIT, 0, 0);
	cr_assert_eq(recvmmsg(sock[0], vec, 3, MSG_DONTWAIT, NULL), 2);
	leave(2, 0);
	cr_assert_eq(tr_recorder_len(&s.rec), 2);
	expect_event(0, "recvmmsg", TR_DIR_RECV, sock[0], 16, 3, "one", false);
	expect_event(1, "recvmmsg", TR_DIR_RECV, sock[0], 16, 12, "two and ", true);

	/* nothing waiting: one failed event offering the room of every message; recvmmsg
	 * returns an int, so rax holds -1 in its low half only */
	enter("recvmmsg", (uint64_t)sock[0], addr(vec), 3, MSG_DONTWAIT, 0, 0);
	cr_assert_eq(recvmmsg(sock[0], vec, 3, MSG_DONTWAIT, NULL), -1);
	leave(0xffffffffll, errno);
	expect_event(2, "recvmmsg", TR_DIR_RECV, sock[0], 36, -1, "", false);
	cr_expect_eq(tr_recorder_at(&s.rec, 2, NULL, NULL)->err, EAGAIN);
}

Test(moves, pipe_peek_skips_and_consumes_nothing)
{
	uint8_t out[8];
	char all[16];

	cr_assert_eq(write(pipefd[1], "abc", 3), 3);
	cr_assert_eq(write(pipefd[1], "defgh", 5), 5);
	cr_expect_eq(tr_pipe_peek(pipefd[0], 2, out, 4), 4);
	cr_expect_eq(memcmp(out, "cdef", 4), 0);
	cr_expect_eq(tr_pipe_peek(pipefd[0], TR_PEEK_SKIP_MAX + 1, out, 4), -E2BIG);
	cr_expect_eq(read(pipefd[0], all, sizeof(all)), 8);
}
