/* catalogue.c - the IPC catalogue rows. Argument positions are the C prototypes' (0-based). */
#include "catalogue.h"

#include <string.h>

#define SEND(n, h, b, ba, la) { n, TR_CLASS_SEND, h, b, ba, la }
#define RECV(n, h, b, ba, la) { n, TR_CLASS_RECV, h, b, ba, la }
#define HOOK(n, c)            { n, c, TR_HANDLE_NONE, TR_BUF_NONE, -1, -1 }

const struct tr_call tr_catalogue[] = {
	/* messages out: name, handle, buffer, buffer arg, length arg */
	SEND("write",           TR_HANDLE_FD,    TR_BUF_PLAIN,  1, 2),
	SEND("writev",          TR_HANDLE_FD,    TR_BUF_IOV,    1, 2),
	SEND("send",            TR_HANDLE_FD,    TR_BUF_PLAIN,  1, 2),
	SEND("sendto",          TR_HANDLE_FD,    TR_BUF_PLAIN,  1, 2),
	SEND("sendmsg",         TR_HANDLE_FD,    TR_BUF_MSGHDR, 1, -1),
	SEND("mq_send",         TR_HANDLE_MQD,   TR_BUF_PLAIN,  1, 2),
	SEND("mq_timedsend",    TR_HANDLE_MQD,   TR_BUF_PLAIN,  1, 2),
	SEND("msgsnd",          TR_HANDLE_MSQID, TR_BUF_SYSV,   1, 2),
	/* messages in: recorded at return, when the bytes exist */
	RECV("read",            TR_HANDLE_FD,    TR_BUF_PLAIN,  1, 2),
	RECV("readv",           TR_HANDLE_FD,    TR_BUF_IOV,    1, 2),
	RECV("recv",            TR_HANDLE_FD,    TR_BUF_PLAIN,  1, 2),
	RECV("recvfrom",        TR_HANDLE_FD,    TR_BUF_PLAIN,  1, 2),
	RECV("recvmsg",         TR_HANDLE_FD,    TR_BUF_MSGHDR, 1, -1),
	RECV("mq_receive",      TR_HANDLE_MQD,   TR_BUF_PLAIN,  1, 2),
	RECV("mq_timedreceive", TR_HANDLE_MQD,   TR_BUF_PLAIN,  1, 2),
	RECV("msgrcv",          TR_HANDLE_MSQID, TR_BUF_SYSV,   1, 2),
	/* shared-state synchronisation: yield points only */
	HOOK("pthread_mutex_lock",       TR_CLASS_SYNC),
	HOOK("pthread_mutex_trylock",    TR_CLASS_SYNC),
	HOOK("pthread_mutex_unlock",     TR_CLASS_SYNC),
	HOOK("pthread_rwlock_rdlock",    TR_CLASS_SYNC),
	HOOK("pthread_rwlock_wrlock",    TR_CLASS_SYNC),
	HOOK("pthread_rwlock_tryrdlock", TR_CLASS_SYNC),
	HOOK("pthread_rwlock_trywrlock", TR_CLASS_SYNC),
	HOOK("pthread_rwlock_unlock",    TR_CLASS_SYNC),
	HOOK("pthread_cond_wait",        TR_CLASS_SYNC),
	HOOK("pthread_cond_timedwait",   TR_CLASS_SYNC),
	HOOK("pthread_cond_signal",      TR_CLASS_SYNC),
	HOOK("pthread_cond_broadcast",   TR_CLASS_SYNC),
	HOOK("sem_wait",                 TR_CLASS_SYNC),
	HOOK("sem_trywait",              TR_CLASS_SYNC),
	HOOK("sem_timedwait",            TR_CLASS_SYNC),
	HOOK("sem_post",                 TR_CLASS_SYNC),
	/* processes and threads: yield points only */
	HOOK("fork",                     TR_CLASS_PROC),
	HOOK("pthread_create",           TR_CLASS_PROC),
	HOOK("pthread_join",             TR_CLASS_PROC),
	HOOK("waitpid",                  TR_CLASS_PROC),
	HOOK("kill",                     TR_CLASS_PROC),
	HOOK("usleep",                   TR_CLASS_PROC),
	HOOK("nanosleep",                TR_CLASS_PROC),
};

const size_t tr_catalogue_len = sizeof(tr_catalogue) / sizeof(tr_catalogue[0]);

int tr_catalogue_find(const char *name)
{
	for (size_t i = 0; i < tr_catalogue_len; i++)
		if (strcmp(tr_catalogue[i].name, name) == 0)
			return (int)i;
	return -1;
}

static const struct {
	const char *word;
	enum tr_class cls;
} class_names[] = {
	{ "send", TR_CLASS_SEND }, { "recv", TR_CLASS_RECV },
	{ "sync", TR_CLASS_SYNC }, { "proc", TR_CLASS_PROC },
	{ "access", TR_CLASS_ACCESS },
};

const char *tr_class_name(enum tr_class cls)
{
	for (size_t i = 0; i < sizeof(class_names) / sizeof(class_names[0]); i++)
		if (class_names[i].cls == cls)
			return class_names[i].word;
	return "?";
}

const char *tr_handle_name(enum tr_handle handle)
{
	switch (handle) {
	case TR_HANDLE_FD:
		return "fd";
	case TR_HANDLE_MQD:
		return "mqd";
	case TR_HANDLE_MSQID:
		return "msqid";
	case TR_HANDLE_NONE:
		break;
	}
	return NULL;
}

int tr_class_parse(const char *list)
{
	int mask = 0;
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ",");
		bool known = false;

		for (size_t i = 0; i < sizeof(class_names) / sizeof(class_names[0]); i++) {
			if (strlen(class_names[i].word) == n && strncmp(p, class_names[i].word, n) == 0) {
				mask |= class_names[i].cls;
				known = true;
			}
		}
		if (!known)
			return -1;
		p += n;
		if (*p == ',')
			p++;
	}
	return mask;
}
