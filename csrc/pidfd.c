/* pidfd.c - pidfd_open + pidfd_getfd, through syscall(2): glibc 2.36 has no wrappers. */
#define _GNU_SOURCE
#include "pidfd.h"

#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* The thread group id of a thread id, from /proc/TID/status; -1 if unknown. */
static pid_t thread_group(pid_t tid)
{
	char path[64], line[128];
	FILE *f;
	int tgid = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

int tr_pidfd_open(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	int err = fd < 0 ? errno : 0;
	pid_t tgid;

	/* pid may be a thread's id (refused with EINVAL, since Linux 6.9 ENOENT): the fds
	 * belong to its thread group, whose leader's pidfd reaches them */
	if ((err == EINVAL || err == ENOENT) && (tgid = thread_group(pid)) > 0 && tgid != pid) {
		fd = (int)syscall(SYS_pidfd_open, tgid, 0);
		err = fd < 0 ? errno : 0;
	}
	return err ? -err : fd;
}

int tr_pidfd_getfd(int pidfd, int fd)
{
	int dup = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);

	return dup < 0 ? -errno : dup;
}
