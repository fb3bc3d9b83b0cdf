/* report.h - the run's report: one JSON document (version 1) built from the frozen recorder
 * and what the front end learned at the stop. Writing is pure (into memory); storing it is
 * store.h's concern. The format is documented in docs/report.md and docs/report.schema.json. */
#ifndef TRACER_REPORT_H
#define TRACER_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "recorder.h"

#define TR_REPORT_VERSION 1
#define TR_BACKTRACE_DEFAULT 16
#define TR_BACKTRACE_MAX 256

struct tr_frame {
	uint64_t pc;
	const char *function;   /* NULL: unknown */
	const char *file;       /* NULL: no debug info */
	int line;               /* 0: unknown */
};

struct tr_thread {
	int tid;
	const char *name;       /* NULL: unknown */
	const struct tr_frame *frames;
	size_t nframes;
};

struct tr_mailbox {
	int64_t fd;
	const char *endpoint;
	int64_t pending;        /* bytes (or messages' bytes) waiting; -1 unknown */
	int64_t messages;       /* messages waiting for queues; -1 for byte streams */
	const uint8_t *data;    /* preview, may be NULL */
	size_t data_len;
	bool truncated;
	const char *error;      /* why the kernel would not tell, or NULL */
};

struct tr_process {
	int pid;
	bool alive;
	int exit_status;        /* -1: none/unknown */
	int exit_signal;        /* 0: none */
	const struct tr_thread *threads;
	size_t nthreads;
	const struct tr_mailbox *mailboxes;
	size_t nmailboxes;
	const char *mode;       /* "agent", "breakpoint", "none": what covered it; NULL: omitted */
};

/* A process no mode covered (a static program exec'd in an agent-mode run...). */
struct tr_uncovered {
	int pid;                /* 0: a summary entry (more were left out) */
	const char *exe;        /* NULL: unknown */
	const char *why;
};

struct tr_stop {
	const char *reason;     /* "signal", "exit", "detach", "kill", "quit", "snapshot", "timeout" */
	int signal;             /* 0: none */
	int status;             /* exit status; -1: none */
	int pid, tid;
};

struct tr_yield_info {
	bool enabled;
	uint64_t seed;
	const char *strategy;   /* NULL: none */
	double probability;
	int64_t sites;
	int64_t injected;
	/* The site selection, for a replay; classes NULL: omitted (the three keys go together). */
	const char *classes;    /* "sync,proc,send,recv" */
	const char *module;     /* NULL: the whole program */
	const char *const *functions;   /* only calls to these; none: every one of the classes */
	size_t nfunctions;
	/* With shared-access sites among the sites (optional keys, written only then): */
	bool has_access;
	int64_t access_sites;
	int64_t hot_sites_disabled;   /* access sites whose breakpoint a hot loop disabled */
	/* With sites in the program's shared libraries (optional keys, written only then): */
	bool has_library;
	int64_t library_sites;
	int64_t library_injected;     /* of `injected`, those at library sites */
	/* With strategy pct (optional keys, written only then): */
	bool has_pct;
	int64_t depth;
	int64_t pct_steps;            /* the estimate of scheduling points given to the agent */
	const int64_t *change_points; /* step numbers, depth - 1 of them */
	size_t nchange_points;
	int64_t changes_taken;        /* change points the run reached, all processes */
	int64_t steals;               /* token take-overs after a bounded wait */
};

/* Fills in what is known about a call site's pc (function, file, line); returns false when
 * nothing is. Strings must stay valid until tr_report_render returns. */
typedef bool (*tr_site_resolver)(void *ctx, uint64_t pc, struct tr_frame *out);

/* The filters in force (csrc/filter.h) as the user wrote them; all NULL: omitted. */
struct tr_filter_info {
	const char *trace, *status, *endpoint;
	int64_t filtered;       /* message calls they left out (status, endpoint) */
};

struct tr_report_meta {
	const char *key;        /* unique stem: program-pid-start-seed */
	const char *program;    /* path */
	const char *const *argv;
	size_t argc;
	int pid;                /* the first traced process */
	const char *started;    /* ISO 8601 UTC */
	const char *debugger;   /* "gdb 13.1", "lldb 16.0.6" */
	const char *mode;       /* "breakpoint", "agent": how the calls were recorded; NULL: omitted */
	struct tr_filter_info filter;
	struct tr_stop stop;
	const struct tr_process *processes;
	size_t nprocesses;
	bool has_uncovered;     /* write "uncovered" (possibly empty) */
	const struct tr_uncovered *uncovered;
	size_t nuncovered;
	struct tr_yield_info yield;
	bool has_timeout;       /* write "timeout" (the run's limit in seconds, 0: none) */
	int64_t timeout;
	int backtrace_limit;    /* frames kept per thread: 0 (or less) none, at most _MAX */
	tr_site_resolver resolve_site;
	void *resolve_ctx;
};

/* Renders the report into a malloc'd NUL-terminated buffer. Returns 0 or -errno. All strings
 * in meta may hold arbitrary bytes (they are escaped, see escape.h); NULL ones render as null,
 * except key, which is required (-EINVAL). out_len may be NULL. */
int tr_report_render(const struct tr_recorder *r, const struct tr_report_meta *meta,
		     char **out, size_t *out_len);

#endif
