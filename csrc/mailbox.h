/* mailbox.h - the bytes still pending in another process's pipes, sockets and queues, read
 * without consuming them: tee(2) on pipes, pidfd_getfd(2) + MSG_PEEK on sockets,
 * mq_getattr on POSIX queues, msgrcv(MSG_COPY) on SysV queues. Best effort: every entry is
 * approximate (the program may move on) and a refusal is recorded, not returned. */
#ifndef TRACER_MAILBOX_H
#define TRACER_MAILBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "report.h"

struct tr_mailbox_set {
	struct tr_mailbox *items;  /* strings and previews owned by the set */
	size_t n, alloc;
};

/* Appends one entry per IPC fd of pid with pending data (> 0 bytes) or an error, each with at
 * most `preview` bytes of content. Returns 0, or -errno when pid's fds cannot be listed. */
int tr_mailbox_scan(pid_t pid, size_t preview, struct tr_mailbox_set *out);
/* Appends the SysV queue msqid if it holds messages (fd = msqid). Returns 0 or -errno. */
int tr_mailbox_sysv(int64_t msqid, size_t preview, struct tr_mailbox_set *out);
void tr_mailbox_set_free(struct tr_mailbox_set *set);

#endif
