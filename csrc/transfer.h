/* transfer.h - the bytes of calls that move data between two descriptors without passing it
 * through the program's memory: sendfile(2), splice(2), tee(2). Used by both data planes:
 * the debugger side for another process (pid > 0, through /proc/PID/fd), the agent for its
 * own (pid 0, through /proc/self/fd). Every function here makes raw system calls only for
 * read(2) and tee(2) (the agent wraps both), never blocks, and consumes nothing.
 *
 * Which event a move is (tr_transfer_plan):
 *   a socket on either side   the event is on the socket, the pipe is the program's buffer:
 *                             pipe -> socket is a send, socket -> pipe a receive;
 *   otherwise                 a send on fd_out if it is a pipe or FIFO (pipe -> pipe, file ->
 *                             pipe, and every tee: the bytes now wait there for a reader),
 *                             else a receive on fd_in (pipe -> file).
 * Where its bytes are read:
 *   from a pipe               peeked before the call (tee(2) into a pipe of our own): the bytes
 *                             a blocking call waited for are not known;
 *   from a file               pread at the offset the call used (the offset argument, else the
 *                             file's position before the call), after the call;
 *   from a socket into a pipe after the call, from the pipe, past the bytes it held before.
 * Bytes that cannot be known leave the preview empty and the event truncated. */
#ifndef TRACER_TRANSFER_H
#define TRACER_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "event.h"

#define TR_PEEK_SKIP_MAX 65536  /* bytes queued ahead of a move's bytes that a peek passes over */

enum tr_transfer_src {
	TR_XFER_UNKNOWN = 0,      /* the bytes cannot be read */
	TR_XFER_PIPE,             /* src_fd is a pipe the call takes from: peeked before */
	TR_XFER_FILE,             /* src_fd is a file: pread at `off` after */
	TR_XFER_OUT_PIPE,         /* src_fd is the pipe the call fills: read past `off` bytes after */
};

struct tr_transfer {
	enum tr_dir dir;          /* of the event */
	int32_t fd;               /* the event's descriptor */
	int32_t src_fd;           /* where its bytes are read */
	bool src_is_in;           /* src_fd is the call's input (its offset is off_in) */
	uint8_t src;              /* enum tr_transfer_src */
	int64_t off;              /* FILE: the offset; OUT_PIPE: bytes queued before the call */
};

/* splice/tee from fd_in to fd_out, given their endpoint kinds (enum tr_endpoint_kind; < 0:
 * unknown). False: neither end is a message endpoint (nothing to record). */
bool tr_transfer_plan(struct tr_transfer *t, int fd_in, int kind_in, int fd_out, int kind_out);
/* sendfile(out_fd, in_fd, ...): a send on out_fd of in_fd's bytes. */
void tr_transfer_plan_file(struct tr_transfer *t, int out_fd, int in_fd);

/* Before the call. off_arg: the value of the offset argument of src_fd's side, or -1 when it
 * was NULL (the file's position is used). A pipe source's first `want` bytes go to out.
 * Returns the bytes peeked (0 for other sources). */
size_t tr_transfer_before(struct tr_transfer *t, pid_t pid, int64_t off_arg, uint8_t *out,
			  size_t want);
/* After a call that moved `moved` bytes: the first min(moved, want) of them into out, for
 * file and out-pipe sources. Returns the bytes read (0: not known). */
size_t tr_transfer_after(const struct tr_transfer *t, pid_t pid, int64_t moved, uint8_t *out,
			 size_t want);

/* Up to `want` bytes that follow the first `skip` queued in the pipe `rfd` (a read end),
 * without consuming them. Returns the bytes copied, or -errno (-E2BIG: skip too large). */
ssize_t tr_pipe_peek(int rfd, size_t skip, uint8_t *out, size_t want);

#endif
