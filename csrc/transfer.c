/* transfer.c - where the bytes of sendfile, splice and tee are read (see transfer.h). */
#define _GNU_SOURCE
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "endpoint.h"

static bool is_socket(int kind)
{
	return kind == TR_EP_UNIX || kind == TR_EP_TCP || kind == TR_EP_UDP ||
	       kind == TR_EP_SOCKET;
}

static bool is_pipe(int kind)
{
	return kind == TR_EP_PIPE || kind == TR_EP_FIFO;
}

/* What the other end is, seen as a source of bytes. */
static uint8_t source_of(int kind, uint8_t if_pipe)
{
	if (is_pipe(kind))
		return if_pipe;
	return kind == TR_EP_NOT_IPC ? TR_XFER_FILE : TR_XFER_UNKNOWN;
}

bool tr_transfer_plan(struct tr_transfer *t, int fd_in, int kind_in, int fd_out, int kind_out)
{
	memset(t, 0, sizeof(*t));
	if (is_socket(kind_out) || (!is_socket(kind_in) && is_pipe(kind_out))) {
		t->dir = TR_DIR_SEND;
		t->fd = fd_out;
		t->src_fd = fd_in;
		t->src_is_in = true;
		t->src = source_of(kind_in, TR_XFER_PIPE);
		return true;
	}
	if (is_socket(kind_in) || is_pipe(kind_in)) {
		t->dir = TR_DIR_RECV;
		t->fd = fd_in;
		t->src_fd = fd_out;   /* the bytes are found where they went */
		t->src = is_socket(kind_in) ? source_of(kind_out, TR_XFER_OUT_PIPE)
					    : kind_out == TR_EP_NOT_IPC ? TR_XFER_FILE
									: TR_XFER_UNKNOWN;
		return true;
	}
	return false;
}

void tr_transfer_plan_file(struct tr_transfer *t, int out_fd, int in_fd)
{
	memset(t, 0, sizeof(*t));
	t->dir = TR_DIR_SEND;
	t->fd = out_fd;
	t->src_fd = in_fd;
	t->src_is_in = true;
	t->src = TR_XFER_FILE;
}

/* Our own fd on fd of pid (0: this process), opened for reading: a pipe's write end gives a
 * read end this way. O_NONBLOCK: a FIFO's read side must not wait for a writer. */
static int open_fd(pid_t pid, int fd)
{
	char path[64];

	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	else
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
}

/* The fd to read t's source through: in this process an input fd is readable as it is (and
 * /proc costs microseconds); anything else is opened. *ours: close it after. */
static int source_fd(const struct tr_transfer *t, pid_t pid, bool *ours)
{
	*ours = !(pid <= 0 && t->src_is_in);
	return *ours ? open_fd(pid, t->src_fd) : t->src_fd;
}

static ssize_t raw_read(int fd, void *buf, size_t len)
{
	return syscall(SYS_read, fd, buf, len);
}

/* Reads up to len bytes from a non-blocking fd, however the kernel splits them. */
static size_t read_some(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = raw_read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

ssize_t tr_pipe_peek(int rfd, size_t skip, uint8_t *out, size_t want)
{
	int ours[2], size, err = 0;
	uint8_t scratch[1024];
	ssize_t n;
	size_t got = 0;

	if (skip > TR_PEEK_SKIP_MAX)
		return -E2BIG;
	if (!want)
		return 0;
	if (pipe2(ours, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	/* tee links whole buffers, one slot each: give our pipe at least as many slots as the
	 * source has, or a pipe full of small unmerged writes would be cut short */
	size = fcntl(rfd, F_GETPIPE_SZ);
	if (size > fcntl(ours[1], F_GETPIPE_SZ))
		fcntl(ours[1], F_SETPIPE_SZ, size);   /* best effort: the peek may come out short */
	n = syscall(SYS_tee, rfd, ours[1], skip + want, SPLICE_F_NONBLOCK);
	if (n < 0) {
		err = errno == EAGAIN ? 0 : -errno;   /* EAGAIN: an empty pipe */
		goto out;
	}
	while (skip) {
		size_t k = read_some(ours[0], scratch, skip < sizeof(scratch) ? skip : sizeof(scratch));

		if (!k)
			goto out;
		skip -= k;
	}
	got = read_some(ours[0], out, want);
out:
	close(ours[0]);
	close(ours[1]);
	return err ? err : (ssize_t)got;
}

/* The file position of fd of pid: "pos:" of /proc/PID/fdinfo/FD; -1 unknown. */
static int64_t position(pid_t pid, int fd)
{
	char path[64], text[256];
	long long pos;
	int f;
	size_t n;
	char *at;

	if (pid <= 0)
		return lseek(fd, 0, SEEK_CUR);
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	n = read_some(f, (uint8_t *)text, sizeof(text) - 1);
	close(f);
	text[n] = '\0';
	at = strstr(text, "pos:");
	if (!at || sscanf(at + 4, "%lld", &pos) != 1)
		return -1;
	return pos;
}

static int queued(pid_t pid, int fd)
{
	int f = open_fd(pid, fd), n = -1;

	if (f < 0)
		return -1;
	if (ioctl(f, FIONREAD, &n) < 0)
		n = -1;
	close(f);
	return n;
}

size_t tr_transfer_before(struct tr_transfer *t, pid_t pid, int64_t off_arg, uint8_t *out,
			  size_t want)
{
	ssize_t got = 0;
	bool ours;
	int f;

	switch (t->src) {
	case TR_XFER_FILE:
		t->off = off_arg >= 0 ? off_arg : position(pid, t->src_fd);
		if (t->off < 0)
			t->src = TR_XFER_UNKNOWN;
		break;
	case TR_XFER_OUT_PIPE:
		t->off = queued(pid, t->src_fd);
		if (t->off < 0 || t->off > TR_PEEK_SKIP_MAX)
			t->src = TR_XFER_UNKNOWN;
		break;
	case TR_XFER_PIPE:
		f = source_fd(t, pid, &ours);
		if (f < 0)
			return 0;
		got = tr_pipe_peek(f, 0, out, want);
		if (ours)
			close(f);
		break;
	}
	return got > 0 ? (size_t)got : 0;
}

size_t tr_transfer_after(const struct tr_transfer *t, pid_t pid, int64_t moved, uint8_t *out,
			 size_t want)
{
	ssize_t got = 0;
	bool ours;
	int f;

	if (moved <= 0 || (t->src != TR_XFER_FILE && t->src != TR_XFER_OUT_PIPE))
		return 0;
	if ((uint64_t)moved < want)
		want = (size_t)moved;
	f = source_fd(t, pid, &ours);
	if (f < 0)
		return 0;
	if (t->src == TR_XFER_FILE)
		got = pread(f, out, want, (off_t)t->off);
	else
		got = tr_pipe_peek(f, (size_t)t->off, out, want);
	if (ours)
		close(f);
	return got > 0 ? (size_t)got : 0;
}
