/* store.c - atomic, non-clobbering report files.
 *
 * The bytes go to a private temporary file first (O_EXCL, 0600, fsync'd); the final name is then
 * made with linkat(), which fails with EEXIST on any existing entry - a file, a directory or a
 * symlink, dangling or not - so nothing is ever overwritten or written through a link. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "store.h"

#define STEM_MAX 200          /* leaves room for "-1000.json" and the temp decoration */
#define SUFFIX_MAX 1000

static unsigned int tmp_counter;

static void sanitize_stem(const char *stem, char *out, size_t size)
{
	size_t i, n = 0;

	for (i = 0; stem[i] && n + 1 < size; i++) {
		char c = stem[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';

		out[n++] = ok ? c : '_';
	}
	out[n] = '\0';
	if (n == 0)
		snprintf(out, size, "report");
	else if (out[0] == '.')
		out[0] = '_';   /* no hidden files, no "." or ".." */
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Creates and fills a temp file in dfd named after tag; its name goes to tmp. */
static int write_temp(int dfd, const char *tag, const char *buf, size_t len,
		      char *tmp, size_t tmp_size)
{
	int fd = -1, rc, tries;

	for (tries = 0; tries < 100; tries++) {
		unsigned int k = __atomic_fetch_add(&tmp_counter, 1, __ATOMIC_RELAXED);

		snprintf(tmp, tmp_size, ".%s.tmp.%ld.%u", tag, (long)getpid(), k);
		fd = openat(dfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
		/* EEXIST: a leftover of a crashed run with our pid; take the next name. */
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		tmp[0] = '\0';
		return -errno;
	}
	rc = write_all(fd, buf, len);
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (rc) {
		unlinkat(dfd, tmp, 0);
		tmp[0] = '\0';
	}
	return rc;
}

/* Gives the temp file the name `name` unless that exists. Returns 0, -EEXIST or -errno; on
 * success the temp name is gone. */
static int publish(int dfd, const char *tmp, const char *name)
{
	if (linkat(dfd, tmp, dfd, name, 0) == 0) {
		unlinkat(dfd, tmp, 0);
		return 0;
	}
	/* File systems without hard links: the same no-replace promise from renameat2. */
	if (errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS || errno == EMLINK) {
		int link_err = errno;

		if (renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE) == 0)
			return 0;
		/* No RENAME_NOREPLACE either: linkat's reason is the one to report. */
		return errno == EINVAL || errno == ENOSYS ? -link_err : -errno;
	}
	return -errno;
}

/* mkdir -p with mode 0700 for every directory it creates (existing ones are left as they
 * are). Returns 0 or the -errno of the first component that could not be made. */
static int make_dirs(const char *dir)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/')
			continue;   /* "a//b", or a trailing slash */
		buf[i] = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = dir[i];
	}
	return 0;
}

int tr_store_put(const char *dir, const char *stem, const char *buf, size_t len,
		 char *path_out, size_t path_size)
{
	char safe[STEM_MAX + 1], tmp[NAME_MAX + 1] = "", name[NAME_MAX + 1];
	int dfd = -1, rc, i;

	if (path_out && path_size)
		path_out[0] = '\0';
	if (!dir || !*dir || !stem || (!buf && len))
		return -EINVAL;
	sanitize_stem(stem, safe, sizeof(safe));
	/* Fail before writing if the longest name we might pick cannot be reported back. */
	if (path_out && path_size &&
	    strlen(dir) + 1 + strlen(safe) + sizeof("-1000.json") > path_size)
		return -ENAMETOOLONG;

	rc = make_dirs(dir);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		/* mkdir's reason is the better one, unless it only said the dir was there. */
		return rc ? rc : -errno;

	rc = write_temp(dfd, safe, buf, len, tmp, sizeof(tmp));
	if (rc)
		goto out;
	rc = -EEXIST;
	for (i = 0; i <= SUFFIX_MAX && rc == -EEXIST; i++) {
		if (i == 0)
			snprintf(name, sizeof(name), "%s.json", safe);
		else
			snprintf(name, sizeof(name), "%s-%d.json", safe, i);
		rc = publish(dfd, tmp, name);
	}
	if (rc)
		goto out;
	tmp[0] = '\0';
	/* The new directory entry is durable too; best effort, the file itself is synced. */
	fsync(dfd);
	if (path_out && path_size)
		snprintf(path_out, path_size, "%s%s%s", dir,
			 dir[strlen(dir) - 1] == '/' ? "" : "/", name);
out:
	if (tmp[0])
		unlinkat(dfd, tmp, 0);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

int tr_store_put_path(const char *path, const char *buf, size_t len)
{
	char dir[PATH_MAX], tag[STEM_MAX + 1], tmp[NAME_MAX + 1] = "";
	const char *slash, *base;
	int dfd = -1, rc;

	if (!path || !*path || (!buf && len))
		return -EINVAL;
	slash = strrchr(path, '/');
	base = slash ? slash + 1 : path;
	if (!*base)
		return -EISDIR;
	if (!strcmp(base, ".") || !strcmp(base, ".."))
		return -EINVAL;
	if (strlen(base) > NAME_MAX)
		return -ENAMETOOLONG;
	if (!slash) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == path) {
		snprintf(dir, sizeof(dir), "/");
	} else {
		if ((size_t)(slash - path) >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	sanitize_stem(base, tag, sizeof(tag));

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	rc = write_temp(dfd, tag, buf, len, tmp, sizeof(tmp));
	if (rc)
		goto out;
	rc = publish(dfd, tmp, base);
	if (rc)
		goto out;
	tmp[0] = '\0';
	fsync(dfd);
out:
	if (tmp[0])
		unlinkat(dfd, tmp, 0);
	if (dfd >= 0)
		close(dfd);
	return rc;
}
