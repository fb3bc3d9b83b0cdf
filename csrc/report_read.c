/* report_read.c - load a stored report: bounded read of a regular file, then yajl_tree. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "report.h"
#include "report_read.h"

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;
	char *p;

	if (!err || !err_size)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
	/* One line: yajl's messages span several, with a caret under the error. */
	for (p = err; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	while (p > err && p[-1] == ' ')
		*--p = '\0';
}

/* Reads all of fd (at most max bytes; more is -EFBIG) into a NUL-terminated buffer. */
static int read_all(int fd, size_t hint, size_t max, char **out, size_t *out_len)
{
	size_t alloc = (hint < 4096 ? 4096 : hint) + 2, len = 0;
	char *buf, *p;
	int rc = 0;

	/* Room for one byte past the size seen by fstat: EOF must be read to be believed. */
	if (alloc > max + 2)
		alloc = max + 2;
	buf = malloc(alloc);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len + 1 == alloc) {
			/* The file grew after fstat (or fstat did not know its size). */
			if (len > max) {
				rc = -EFBIG;
				goto out;
			}
			alloc = alloc > (max + 2) / 2 ? max + 2 : alloc * 2;
			p = realloc(buf, alloc);
			if (!p) {
				rc = -ENOMEM;
				goto out;
			}
			buf = p;
		}
		n = read(fd, buf + len, alloc - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		rc = -EFBIG;
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	buf = NULL;
out:
	free(buf);
	return rc;
}

int tr_report_load(const char *path, yajl_val *out, char *err, size_t err_size)
{
	const char *version_path[] = { "version", NULL };
	char yerr[512] = "";
	char *buf = NULL;
	size_t len = 0;
	yajl_val tree = NULL, v;
	struct stat st;
	int fd = -1, rc;

	if (out)
		*out = NULL;
	if (err && err_size)
		err[0] = '\0';
	if (!path || !out) {
		set_err(err, err_size, "no path");
		return -EINVAL;
	}
	/* O_NONBLOCK: opening a FIFO by mistake must not hang the debugger. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		set_err(err, err_size, "%s: %s", path, strerror(-rc));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		set_err(err, err_size, "%s: %s", path, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		set_err(err, err_size, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > TR_REPORT_READ_MAX) {
		rc = -EFBIG;
		set_err(err, err_size, "%s: larger than %u bytes", path, TR_REPORT_READ_MAX);
		goto out;
	}
	rc = read_all(fd, (size_t)st.st_size, TR_REPORT_READ_MAX, &buf, &len);
	if (!rc && !buf)
		rc = -ENOMEM;   /* cannot happen; keeps the NULL out of strlen for analysers */
	if (rc) {
		set_err(err, err_size, "%s: %s", path,
			rc == -EFBIG ? "file grew past the size limit" : strerror(-rc));
		goto out;
	}
	/* yajl_tree_parse stops at a NUL: do not let it judge only a prefix. */
	if (strlen(buf) != len) {
		rc = -EINVAL;
		set_err(err, err_size, "%s: NUL byte in file", path);
		goto out;
	}
	tree = yajl_tree_parse(buf, yerr, sizeof(yerr));
	if (!tree) {
		rc = -EINVAL;
		set_err(err, err_size, "%s: %s", path, yerr[0] ? yerr : "malformed JSON");
		goto out;
	}
	if (!YAJL_IS_OBJECT(tree)) {
		rc = -EINVAL;
		set_err(err, err_size, "%s: not a JSON object", path);
		goto out;
	}
	v = yajl_tree_get(tree, version_path, yajl_t_number);
	if (!v || !YAJL_IS_INTEGER(v)) {
		rc = -EINVAL;
		set_err(err, err_size, "%s: no integer \"version\"", path);
		goto out;
	}
	if (YAJL_GET_INTEGER(v) != TR_REPORT_VERSION) {
		rc = -EINVAL;
		set_err(err, err_size, "%s: report version %lld, this reader knows %d", path,
			YAJL_GET_INTEGER(v), TR_REPORT_VERSION);
		goto out;
	}
	*out = tree;
	tree = NULL;
	rc = 0;
out:
	yajl_tree_free(tree);
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}
