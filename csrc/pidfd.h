/* pidfd.h - borrowing another process's open files: pidfd_open(2) + pidfd_getfd(2). The
 * copy shares the open file description (offsets, queued data) but closing it changes
 * nothing for the program. */
#ifndef TRACER_PIDFD_H
#define TRACER_PIDFD_H

#include <sys/types.h>

/* A pidfd for pid's thread group (pid may also be one of its threads' ids). Returns the
 * pidfd (close-on-exec) or -errno. */
int tr_pidfd_open(pid_t pid);
/* Our close-on-exec copy of fd from the process behind pidfd, or -errno (-EBADF: no such
 * fd, -ESRCH: the process is gone, -EPERM...). */
int tr_pidfd_getfd(int pidfd, int fd);

#endif
