/* event.h - one recorded IPC call: the unit the recorder keeps and the report lists. */
#ifndef TRACER_EVENT_H
#define TRACER_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#define TR_PAYLOAD_DEFAULT 64   /* bytes of payload preview kept per event */
#define TR_PAYLOAD_MAX 4096
#define TR_ENDPOINT_MAX 192     /* "unix:/path->unix:/peer" fits; longer names are cut */

enum tr_dir { TR_DIR_SEND = 0, TR_DIR_RECV = 1 };

/* Filled by the decoder; seq and t_ns are stamped by the recorder on push.
 * The payload preview lives in the recorder's arena, not here. */
struct tr_event {
	uint64_t seq;            /* 0-based order of acceptance, across evictions */
	uint64_t t_ns;           /* CLOCK_MONOTONIC at push */
	int32_t pid, tid;
	enum tr_dir dir;
	const char *fn;          /* static storage: a catalogue name */
	int64_t fd;              /* fd, mqd_t, or SysV msqid */
	int64_t len;             /* bytes the caller asked to send / room it offered */
	int64_t ret;             /* return value of the call, when returned */
	bool returned;           /* false: the call had not returned when the ring froze */
	int32_t err;             /* errno when ret < 0, else 0 */
	uint64_t site;           /* return address of the call: the caller's pc */
	bool truncated;          /* the message had more bytes than the preview kept */
	char endpoint[TR_ENDPOINT_MAX];
};

#endif
