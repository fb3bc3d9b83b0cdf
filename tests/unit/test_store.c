/* test_store.c - atomic, non-clobbering, symlink-proof report files. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "recorder.h"
#include "report.h"
#include "store.h"

static int sto_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static void sto_rm_rf(const char *dir)
{
	nftw(dir, sto_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Test dirs are removed by the suite's fini too, which runs even when an assertion fails. */
static char sto_dirs[4][64];
static int sto_ndirs;

static void sto_tmpdir(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/tr-store-XXXXXX");
	cr_assert_not_null(mkdtemp(buf));
	if (sto_ndirs < 4)
		snprintf(sto_dirs[sto_ndirs++], sizeof(sto_dirs[0]), "%s", buf);
}

static void sto_cleanup(void)
{
	while (sto_ndirs > 0)
		sto_rm_rf(sto_dirs[--sto_ndirs]);
}

TestSuite(store, .fini = sto_cleanup);

/* Entries of dir other than . and ..; with a name containing ".tmp." counted in *tmps. */
static int sto_count(const char *dir, int *tmps)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d, "%s", dir);
	if (tmps)
		*tmps = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n++;
		if (tmps && strstr(e->d_name, ".tmp."))
			(*tmps)++;
	}
	closedir(d);
	return n;
}

static char *sto_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static void sto_write(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(s, f);
	fclose(f);
}

static void sto_expect_file(const char *path, const char *content)
{
	struct stat st;
	char *got;

	cr_assert_eq(lstat(path, &st), 0, "%s exists", path);
	cr_assert(S_ISREG(st.st_mode), "%s is a regular file", path);
	cr_assert_eq(st.st_mode & 07777, 0600, "%s: mode %o", path, st.st_mode & 07777);
	cr_assert_eq(st.st_nlink, 1, "%s: the temp name is gone", path);
	got = sto_read(path, NULL);
	cr_assert_str_eq(got, content);
	free(got);
}

Test(store, put_creates_dir_and_file)
{
	char base[64], dir[128], path[256], want[256];
	struct stat st;
	int tmps;

	sto_tmpdir(base, sizeof(base));
	snprintf(dir, sizeof(dir), "%s/reports", base);
	cr_assert_eq(tr_store_put(dir, "prog-1-2-3", "{}\n", 3, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/prog-1-2-3.json", dir);
	cr_assert_str_eq(path, want);
	sto_expect_file(path, "{}\n");
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0700, "store dir mode %o", st.st_mode & 0777);
	cr_assert_eq(sto_count(dir, &tmps), 1);
	cr_assert_eq(tmps, 0, "no temp file left behind");
	sto_rm_rf(base);
}

Test(store, put_existing_dir_and_trailing_slash)
{
	char dir[64], slashed[80], path[256], want[256];

	sto_tmpdir(dir, sizeof(dir));
	snprintf(slashed, sizeof(slashed), "%s/", dir);
	cr_assert_eq(tr_store_put(slashed, "a", "x", 1, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/a.json", dir);
	cr_assert_str_eq(path, want, "no double slash");
	sto_expect_file(want, "x");
	sto_rm_rf(dir);
}

Test(store, put_never_overwrites)
{
	char dir[64], path[256], want[256];
	int tmps;

	sto_tmpdir(dir, sizeof(dir));
	cr_assert_eq(tr_store_put(dir, "k", "first", 5, path, sizeof(path)), 0);
	cr_assert_eq(tr_store_put(dir, "k", "second", 6, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/k-1.json", dir);
	cr_assert_str_eq(path, want);
	cr_assert_eq(tr_store_put(dir, "k", "third", 5, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/k-2.json", dir);
	cr_assert_str_eq(path, want);

	snprintf(want, sizeof(want), "%s/k.json", dir);
	sto_expect_file(want, "first");
	snprintf(want, sizeof(want), "%s/k-1.json", dir);
	sto_expect_file(want, "second");
	snprintf(want, sizeof(want), "%s/k-2.json", dir);
	sto_expect_file(want, "third");
	cr_assert_eq(sto_count(dir, &tmps), 3);
	cr_assert_eq(tmps, 0);

	/* A gap is filled, but nothing existing is touched. */
	snprintf(want, sizeof(want), "%s/k-1.json", dir);
	cr_assert_eq(unlink(want), 0);
	cr_assert_eq(tr_store_put(dir, "k", "fourth", 6, path, sizeof(path)), 0);
	cr_assert_str_eq(path, want);
	cr_assert_eq(sto_count(dir, NULL), 3);
	sto_rm_rf(dir);
}

Test(store, put_refuses_symlink_at_destination)
{
	char dir[64], path[256], link[256], target[256], dangling[256], want[256];

	sto_tmpdir(dir, sizeof(dir));
	snprintf(target, sizeof(target), "%s/target", dir);
	sto_write(target, "precious");
	snprintf(link, sizeof(link), "%s/k.json", dir);
	cr_assert_eq(symlink(target, link), 0);
	snprintf(link, sizeof(link), "%s/k-1.json", dir);
	snprintf(dangling, sizeof(dangling), "%s/created-through-link", dir);
	cr_assert_eq(symlink(dangling, link), 0);

	cr_assert_eq(tr_store_put(dir, "k", "report", 6, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/k-2.json", dir);
	cr_assert_str_eq(path, want, "both links skipped");
	sto_expect_file(want, "report");
	{
		char *got = sto_read(target, NULL);

		cr_assert_str_eq(got, "precious", "symlink target untouched");
		free(got);
	}
	cr_assert_neq(access(dangling, F_OK), 0, "nothing created through a dangling link");
	sto_rm_rf(dir);
}

Test(store, put_sanitises_stem)
{
	static const struct {
		const char *stem, *file;
	} cases[] = {
		{ "a/b c\n..", "a_b_c_...json" },
		{ ".hidden", "_hidden.json" },
		{ "..", "_..json" },
		{ "../../etc/passwd", "_._.._etc_passwd.json" },
		{ "", "report.json" },
		{ "caf\xc3\xa9", "caf__.json" },
		{ "ok-1.2_X", "ok-1.2_X.json" },
	};
	char dir[64], path[256], want[256];
	size_t i;

	sto_tmpdir(dir, sizeof(dir));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(tr_store_put(dir, cases[i].stem, "x", 1, path, sizeof(path)), 0);
		snprintf(want, sizeof(want), "%s/%s", dir, cases[i].file);
		cr_assert_str_eq(path, want, "stem #%zu", i);
		sto_expect_file(want, "x");
	}
	cr_assert_eq(sto_count(dir, NULL), (int)(sizeof(cases) / sizeof(cases[0])));
	sto_rm_rf(dir);
}

Test(store, put_long_stem_is_cut)
{
	char dir[64], path[512], stem[400];
	int tmps;

	sto_tmpdir(dir, sizeof(dir));
	memset(stem, 's', sizeof(stem) - 1);
	stem[sizeof(stem) - 1] = '\0';
	cr_assert_eq(tr_store_put(dir, stem, "x", 1, path, sizeof(path)), 0);
	cr_assert_lt(strlen(strrchr(path, '/') + 1), 256);
	cr_assert_eq(sto_count(dir, &tmps), 1);
	cr_assert_eq(tmps, 0);
	sto_rm_rf(dir);
}

Test(store, put_empty_buffer)
{
	char dir[64], path[256];

	sto_tmpdir(dir, sizeof(dir));
	cr_assert_eq(tr_store_put(dir, "e", NULL, 0, path, sizeof(path)), 0);
	sto_expect_file(path, "");
	cr_assert_eq(tr_store_put(dir, "e", "", 0, NULL, 0), 0, "path_out is optional");
	cr_assert_eq(sto_count(dir, NULL), 2);
	sto_rm_rf(dir);
}

Test(store, put_bad_arguments)
{
	char dir[64], path[256];

	sto_tmpdir(dir, sizeof(dir));
	cr_assert_eq(tr_store_put(NULL, "k", "x", 1, path, sizeof(path)), -EINVAL);
	cr_assert_eq(tr_store_put("", "k", "x", 1, path, sizeof(path)), -EINVAL);
	cr_assert_eq(tr_store_put(dir, NULL, "x", 1, path, sizeof(path)), -EINVAL);
	cr_assert_eq(tr_store_put(dir, "k", NULL, 1, path, sizeof(path)), -EINVAL);
	/* path_out too small for the name it might pick: refused before writing anything. */
	cr_assert_eq(tr_store_put(dir, "k", "x", 1, path, 10), -ENAMETOOLONG);
	cr_assert_eq(sto_count(dir, NULL), 0);
	sto_rm_rf(dir);
}

Test(store, put_makes_missing_parents_0700)
{
	char base[64], dir[128], path[256], want[256];
	struct stat st;

	sto_tmpdir(base, sizeof(base));
	snprintf(dir, sizeof(dir), "%s/missing//reports/", base);
	cr_assert_eq(tr_store_put(dir, "k", "x", 1, path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/missing//reports/k.json", base);
	cr_assert_str_eq(path, want);
	cr_assert_eq(stat(path, &st), 0, "the report was written");
	cr_assert_eq(st.st_mode & 07777, 0600);
	snprintf(want, sizeof(want), "%s/missing", base);
	cr_assert_eq(stat(want, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0700, "parent made 0700: %o", st.st_mode & 07777);
	snprintf(want, sizeof(want), "%s/missing/reports", base);
	cr_assert_eq(stat(want, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0700);
	sto_rm_rf(base);
}

Test(store, put_fails_loudly_when_a_parent_cannot_be_made)
{
	char base[64], dir[128], blocker[128], path[256];

	sto_tmpdir(base, sizeof(base));
	snprintf(blocker, sizeof(blocker), "%s/file", base);
	close(open(blocker, O_CREAT | O_WRONLY, 0600));
	snprintf(dir, sizeof(dir), "%s/file/deeper/reports", base);
	cr_assert_eq(tr_store_put(dir, "k", "x", 1, path, sizeof(path)), -ENOTDIR);
	cr_assert_str_eq(path, "");
	cr_assert_eq(sto_count(base, NULL), 1, "nothing made beside the blocker");
	sto_rm_rf(base);
}

/* Root ignores permission bits, so failures are made from things no one can write through. */
Test(store, put_unwritable_dir_fails_and_recorder_survives)
{
	struct tr_recorder r;
	struct tr_report_meta m = { .key = "k" };
	char base[64], file[128], dir[160], path[256], *before, *after;
	size_t len, i;
	int tmps;

	cr_assert_eq(tr_recorder_init(&r, NULL), 0);
	for (i = 0; i < 10; i++) {
		struct tr_event ev = { .fn = "write", .fd = (int64_t)i };

		tr_recorder_push(&r, &ev, "payload", 7);
	}
	tr_recorder_freeze(&r);
	cr_assert_eq(tr_report_render(&r, &m, &before, &len), 0);

	sto_tmpdir(base, sizeof(base));
	snprintf(file, sizeof(file), "%s/file", base);
	sto_write(file, "not a dir");
	snprintf(dir, sizeof(dir), "%s/reports", file);   /* under a regular file */
	cr_assert_eq(tr_store_put(dir, "k", before, len, path, sizeof(path)), -ENOTDIR);
	cr_assert_str_eq(path, "", "no path on failure");
	cr_assert_eq(tr_store_put(file, "k", before, len, path, sizeof(path)), -ENOTDIR,
		     "a file where the dir should be");
	cr_assert_lt(tr_store_put("/proc/self/tracer-reports", "k", before, len, path,
				  sizeof(path)), 0, "/proc refuses mkdir");
	cr_assert_lt(tr_store_put("/proc/self", "k", before, len, path, sizeof(path)), 0,
		     "/proc refuses files");
	cr_assert_lt(tr_store_put("/proc/self/fdinfo", "k", before, len, path, sizeof(path)), 0);
	cr_assert_eq(sto_count(base, &tmps), 1);
	cr_assert_eq(tmps, 0);

	/* The recorder is untouched: the same report renders again, and stores elsewhere. */
	cr_assert_eq(tr_recorder_len(&r), 10);
	for (i = 0; i < 10; i++) {
		const uint8_t *data;
		size_t n;

		cr_assert_eq(tr_recorder_at(&r, i, &data, &n)->fd, (int64_t)i);
		cr_assert_eq(n, 7);
		cr_assert_eq(memcmp(data, "payload", 7), 0);
	}
	cr_assert_eq(tr_report_render(&r, &m, &after, &len), 0);
	cr_assert_str_eq(before, after);
	cr_assert_eq(tr_store_put(base, "k", after, len, path, sizeof(path)), 0);
	sto_expect_file(path, after);
	free(before);
	free(after);
	tr_recorder_destroy(&r);
	sto_rm_rf(base);
}

/* A write that fails half-way (file size limit) must leave no temp file and no report. */
Test(store, write_failure_removes_temp)
{
	char dir[64], path[256], file[128], big[8192];
	struct rlimit old, lim = { 4096, 4096 };
	int tmps;

	sto_tmpdir(dir, sizeof(dir));
	memset(big, 'b', sizeof(big));
	signal(SIGXFSZ, SIG_IGN);   /* write then fails with EFBIG instead of killing us */
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim.rlim_max = old.rlim_max;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	cr_assert_eq(tr_store_put(dir, "k", big, sizeof(big), path, sizeof(path)), -EFBIG);
	snprintf(file, sizeof(file), "%s/exact.json", dir);
	cr_assert_eq(tr_store_put_path(file, big, sizeof(big)), -EFBIG);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	cr_assert_eq(sto_count(dir, &tmps), 0, "neither report nor temp file");
	sto_rm_rf(dir);
}

/* Every name taken: -EEXIST after the last try, and the temp file is gone. */
Test(store, all_names_taken)
{
	char dir[64], path[256], name[300];
	int i, tmps;

	sto_tmpdir(dir, sizeof(dir));
	for (i = 0; i <= 1000; i++) {
		if (i == 0)
			snprintf(name, sizeof(name), "%s/k.json", dir);
		else
			snprintf(name, sizeof(name), "%s/k-%d.json", dir, i);
		sto_write(name, "old");
	}
	cr_assert_eq(tr_store_put(dir, "k", "new", 3, path, sizeof(path)), -EEXIST);
	cr_assert_eq(sto_count(dir, &tmps), 1001);
	cr_assert_eq(tmps, 0);
	sto_rm_rf(dir);
}

Test(store, put_path_writes_exactly_there)
{
	char dir[64], path[128];
	int tmps;

	sto_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/my report.json", dir);
	cr_assert_eq(tr_store_put_path(path, "body", 4), 0);
	sto_expect_file(path, "body");
	cr_assert_eq(sto_count(dir, &tmps), 1);
	cr_assert_eq(tmps, 0);
	sto_rm_rf(dir);
}

Test(store, put_path_refuses_existing_file)
{
	char dir[64], path[128];
	char *got;
	int tmps;

	sto_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/r.json", dir);
	sto_write(path, "old");
	cr_assert_eq(tr_store_put_path(path, "new", 3), -EEXIST);
	got = sto_read(path, NULL);
	cr_assert_str_eq(got, "old");
	free(got);
	cr_assert_eq(sto_count(dir, &tmps), 1);
	cr_assert_eq(tmps, 0, "temp removed after the failed link");
	sto_rm_rf(dir);
}

Test(store, put_path_refuses_symlinks)
{
	char dir[64], link[128], target[128], dangling[128];
	struct stat st;
	char *got;
	int tmps;

	sto_tmpdir(dir, sizeof(dir));
	snprintf(target, sizeof(target), "%s/target", dir);
	sto_write(target, "precious");
	snprintf(link, sizeof(link), "%s/link.json", dir);
	cr_assert_eq(symlink(target, link), 0);
	cr_assert_eq(tr_store_put_path(link, "evil", 4), -EEXIST);
	got = sto_read(target, NULL);
	cr_assert_str_eq(got, "precious", "symlink target untouched");
	free(got);
	cr_assert_eq(lstat(link, &st), 0);
	cr_assert(S_ISLNK(st.st_mode), "the link itself is still a link");

	snprintf(link, sizeof(link), "%s/dangling.json", dir);
	snprintf(dangling, sizeof(dangling), "%s/would-be-created", dir);
	cr_assert_eq(symlink(dangling, link), 0);
	cr_assert_eq(tr_store_put_path(link, "evil", 4), -EEXIST);
	cr_assert_neq(access(dangling, F_OK), 0, "nothing created through a dangling link");
	cr_assert_eq(sto_count(dir, &tmps), 3);
	cr_assert_eq(tmps, 0);
	sto_rm_rf(dir);
}

Test(store, put_path_relative_and_errors)
{
	char dir[64], cwd[4096], file[128];
	int tmps;

	sto_tmpdir(dir, sizeof(dir));
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(dir), 0);
	cr_assert_eq(tr_store_put_path("plain.json", "p", 1), 0, "no directory part");
	cr_assert_eq(chdir(cwd), 0);
	snprintf(file, sizeof(file), "%s/plain.json", dir);
	sto_expect_file(file, "p");

	cr_assert_eq(tr_store_put_path(NULL, "x", 1), -EINVAL);
	cr_assert_eq(tr_store_put_path("", "x", 1), -EINVAL);
	cr_assert_eq(tr_store_put_path(file, NULL, 1), -EINVAL);
	snprintf(file, sizeof(file), "%s/", dir);
	cr_assert_eq(tr_store_put_path(file, "x", 1), -EISDIR);
	snprintf(file, sizeof(file), "%s/..", dir);
	cr_assert_eq(tr_store_put_path(file, "x", 1), -EINVAL);
	snprintf(file, sizeof(file), "%s/no/such.json", dir);
	cr_assert_eq(tr_store_put_path(file, "x", 1), -ENOENT);
	snprintf(file, sizeof(file), "%s/plain.json/under-a-file.json", dir);
	cr_assert_eq(tr_store_put_path(file, "x", 1), -ENOTDIR);
	cr_assert_lt(tr_store_put_path("/proc/self/report.json", "x", 1), 0);
	cr_assert_eq(sto_count(dir, &tmps), 1);
	cr_assert_eq(tmps, 0);
	sto_rm_rf(dir);
}
