/* coverage.c - which process the agent covers, and which it can see it will not.
 *
 * Every process image the agent enters notes itself in the ring (pid, ppid, exe, time): at
 * start-up and in each fork child. Its exec and spawn wrappers look at the program about to
 * run and at the environment handed to it, and note beforehand an image the agent will not
 * enter: a static program (no PT_INTERP: no loader reads LD_PRELOAD), a setuid/setgid one
 * (the loader's secure mode drops a preload given by path), or an environment that lost the
 * agent from LD_PRELOAD or lost TRACER_RING. An exec that fails withdraws its note. The
 * debugger side (tracerlib/coverage.py) turns the newest note of each pid into its mode.
 *
 * The exec wrappers may run in a fork or vfork child of a threaded program: raw syscalls, stack
 * buffers and the environ array only (no malloc, no stdio, no locks). Not seen: fexecve,
 * execveat and raw syscalls; a program started by a covered process without the agent is
 * noted, its own children are not. */
#define _GNU_SOURCE
#include "agent.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

#define AGENT_NAME "libtracer_agent.so"
#define PHDRS_MAX 64                  /* program headers looked at */

static char my_exe[TR_RING_EXE_MAX];
static char my_ring[PATH_MAX];        /* TRACER_RING as this image got it */

static pid_t sys_getpid(void) { return (pid_t)syscall(SYS_getpid); }
static pid_t sys_getppid(void) { return (pid_t)syscall(SYS_getppid); }

void tr_agent_coverage_start(const char *ring_path)
{
	ssize_t n = syscall(SYS_readlink, "/proc/self/exe", my_exe, sizeof(my_exe) - 1);

	my_exe[n > 0 ? n : 0] = '\0';
	if (ring_path && strlen(ring_path) < sizeof(my_ring))
		strcpy(my_ring, ring_path);
	tr_agent_coverage_note_self();
}

void tr_agent_coverage_note_self(void)
{
	if (tr_agent.on)
		tr_shared_ring_note(&tr_agent.ring, TR_NOTE_AGENT, sys_getpid(), sys_getppid(),
				    my_exe);
}

/* The value of NAME= in env, or NULL. */
static const char *env_value(char *const env[], const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; env && env[i] && i < 100000; i++)
		if (!strncmp(env[i], name, len) && env[i][len] == '=')
			return env[i] + len + 1;
	return NULL;
}

/* Does LD_PRELOAD (entries split by ':' or ' ') name the agent? */
static bool preloads_agent(const char *preload)
{
	const char *p = preload;

	while (p && *p) {
		const char *end = p + strcspn(p, ": ");
		size_t len = (size_t)(end - p), name = sizeof(AGENT_NAME) - 1;

		if (len >= name && !memcmp(end - name, AGENT_NAME, name) &&
		    (len == name || end[-(long)name - 1] == '/'))
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

/* What the program at `path` is to the agent: 0 (it will enter it, or it cannot tell) or the
 * note of why not. `depth` follows one "#!" interpreter. */
static enum tr_note_what program_verdict(const char *path, int depth)
{
	unsigned char head[128];
	Elf64_Ehdr eh;
	Elf64_Phdr ph[PHDRS_MAX];
	struct stat st;
	enum tr_note_what what = 0;
	ssize_t n;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;                     /* the exec itself will say */
	if (syscall(SYS_fstat, fd, &st) == 0 &&
	    (((st.st_mode & S_ISUID) && st.st_uid != (uid_t)syscall(SYS_geteuid)) ||
	     ((st.st_mode & S_ISGID) && st.st_gid != (gid_t)syscall(SYS_getegid))))
		what = TR_NOTE_SETUID;
	n = syscall(SYS_pread64, fd, head, sizeof(head) - 1, 0);
	if (what || n < 4)
		goto out;
	if (head[0] == '#' && head[1] == '!' && depth == 0) {
		char interp[sizeof(head)];
		size_t i = 2, k = 0;

		head[n] = '\0';
		while (head[i] == ' ' || head[i] == '\t')
			i++;
		while (head[i] && head[i] != ' ' && head[i] != '\t' && head[i] != '\n')
			interp[k++] = (char)head[i++];
		interp[k] = '\0';
		if (k)
			what = program_verdict(interp, 1);
		goto out;
	}
	if (memcmp(head, ELFMAG, SELFMAG) || (size_t)n < sizeof(eh) || head[EI_CLASS] != ELFCLASS64)
		goto out;                     /* not ours to judge (a 32-bit loader ignores us too) */
	memcpy(&eh, head, sizeof(eh));
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0)
		goto out;
	{
		size_t count = eh.e_phnum < PHDRS_MAX ? eh.e_phnum : PHDRS_MAX;
		bool interp = false;

		n = syscall(SYS_pread64, fd, ph, count * sizeof(ph[0]), (off_t)eh.e_phoff);
		if (n < (ssize_t)(count * sizeof(ph[0])))
			goto out;
		for (size_t i = 0; i < count; i++)
			interp |= ph[i].p_type == PT_INTERP;
		if (!interp)
			what = TR_NOTE_STATIC;
	}
out:
	syscall(SYS_close, fd);
	return what;
}

/* The reason the image exec'd from `path` with `env` will not be covered, or 0. */
static enum tr_note_what exec_verdict(const char *path, char *const env[])
{
	const char *ring;
	enum tr_note_what what = program_verdict(path, 0);

	if (what)
		return what;
	if (!preloads_agent(env_value(env, "LD_PRELOAD")))
		return TR_NOTE_NO_PRELOAD;
	ring = env_value(env, "TRACER_RING");
	if (!ring || strcmp(ring, my_ring))
		return TR_NOTE_NO_RING;
	return 0;
}

/* execvp's search: the first executable PATH entry + file, into buf (else file itself). */
static const char *search_path(const char *file, char *buf, size_t size)
{
	const char *dirs = env_value(environ, "PATH");

	if (!file || strchr(file, '/') || !*file)
		return file;
	if (!dirs)
		dirs = "/bin:/usr/bin";
	for (const char *p = dirs;; p++) {
		const char *end = p + strcspn(p, ":");
		size_t dlen = (size_t)(end - p), flen = strlen(file);

		if (dlen + flen + 2 <= size) {
			memcpy(buf, dlen ? p : ".", dlen ? dlen : 1);
			dlen = dlen ? dlen : 1;
			buf[dlen] = '/';
			memcpy(buf + dlen + 1, file, flen + 1);
			if (syscall(SYS_faccessat, AT_FDCWD, buf, X_OK, 0) == 0)
				return buf;
		}
		if (!*end)
			break;
		p = end;
	}
	return file;
}

/* Before an exec: a note when the new image will not be covered. Its index, or -1. */
static int before_exec(const char *path, char *const env[])
{
	enum tr_note_what what;
	int saved = errno, idx = -1;

	if (!tr_agent.on || !path)
		return -1;
	what = exec_verdict(path, env);
	if (what)
		idx = tr_shared_ring_note(&tr_agent.ring, what, sys_getpid(), sys_getppid(), path);
	errno = saved;
	return idx;
}

/* The exec returned: it failed, the process goes on as it was. */
static void exec_failed(int idx)
{
	if (idx >= 0)
		tr_shared_ring_note_withdraw(&tr_agent.ring, idx);
}

#define REAL(fn, T) ((T)tr_agent_real(fn))
typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);

TR_AGENT_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	int idx = before_exec(path, envp), rc;

	rc = REAL(FN_EXECVE, execve_fn)(path, argv, envp);
	exec_failed(idx);
	return rc;
}

TR_AGENT_EXPORT int execv(const char *path, char *const argv[])
{
	int idx = before_exec(path, environ), rc;

	rc = REAL(FN_EXECV, execv_fn)(path, argv);
	exec_failed(idx);
	return rc;
}

TR_AGENT_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	char buf[PATH_MAX];
	int idx = before_exec(search_path(file, buf, sizeof(buf)), envp), rc;

	rc = REAL(FN_EXECVPE, execve_fn)(file, argv, envp);
	exec_failed(idx);
	return rc;
}

TR_AGENT_EXPORT int execvp(const char *file, char *const argv[])
{
	char buf[PATH_MAX];
	int idx = before_exec(search_path(file, buf, sizeof(buf)), environ), rc;

	rc = REAL(FN_EXECVP, execv_fn)(file, argv);
	exec_failed(idx);
	return rc;
}

/* execl, execlp, execle: the argument list gathered on the stack (as glibc does), then the
 * wrappers above. */
#define GATHER_ARGS(arg, argv, extra)                                               \
	va_list ap;                                                                 \
	size_t argc = 1;                                                            \
	va_start(ap, arg);                                                          \
	while (va_arg(ap, const char *))                                            \
		argc++;                                                             \
	va_end(ap);                                                                 \
	char *argv[argc + 1];                                                       \
	argv[0] = (char *)arg;                                                      \
	va_start(ap, arg);                                                          \
	for (size_t i = 1; i <= argc; i++)                                          \
		argv[i] = va_arg(ap, char *);                                       \
	extra;                                                                      \
	va_end(ap)

TR_AGENT_EXPORT int execl(const char *path, const char *arg, ...)
{
	GATHER_ARGS(arg, argv, (void)0);
	return execv(path, argv);
}

TR_AGENT_EXPORT int execlp(const char *file, const char *arg, ...)
{
	GATHER_ARGS(arg, argv, (void)0);
	return execvp(file, argv);
}

TR_AGENT_EXPORT int execle(const char *path, const char *arg, ...)
{
	char *const *envp;

	GATHER_ARGS(arg, argv, envp = va_arg(ap, char *const *));
	return execve(path, argv, envp);
}

typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			const posix_spawnattr_t *, char *const[], char *const[]);

/* posix_spawn: the child's pid is known only after the call. */
static int spawn(int fn, pid_t *pid, const char *file, const char *path,
		 const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
		 char *const argv[], char *const envp[])
{
	enum tr_note_what what = 0;
	pid_t child = 0;
	int rc, saved;

	if (tr_agent.on && path) {
		saved = errno;
		what = exec_verdict(path, envp);
		errno = saved;
	}
	rc = REAL(fn, spawn_fn)(&child, file, fa, attr, argv, envp);
	if (rc == 0 && what)
		tr_shared_ring_note(&tr_agent.ring, what, child, sys_getpid(), path);
	if (rc == 0 && pid)
		*pid = child;
	return rc;
}

TR_AGENT_EXPORT int posix_spawn(pid_t *pid, const char *path,
				const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
				char *const argv[], char *const envp[])
{
	return spawn(FN_POSIX_SPAWN, pid, path, path, fa, attr, argv, envp);
}

TR_AGENT_EXPORT int posix_spawnp(pid_t *pid, const char *file,
				 const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
				 char *const argv[], char *const envp[])
{
	char buf[PATH_MAX];

	return spawn(FN_POSIX_SPAWNP, pid, file, search_path(file, buf, sizeof(buf)), fa, attr,
		     argv, envp);
}
