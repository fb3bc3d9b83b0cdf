/* crashy_pipeline.c - the first program to try Tracer on.
 *
 * A producer process sends five small commands to a consumer process over a pipe. Each command
 * is a fixed-size 32-byte record of text, padded with spaces and ended by a newline:
 *
 *     "set SLOT VALUE"      store VALUE in the consumer's table at SLOT (0..7)
 *
 * The fourth command comes out malformed (its slot field is garbage), the consumer parses a
 * huge slot number out of it, trusts it, and writes far outside its table: SIGSEGV.
 *
 * Under a debugger alone you would see only the consumer's crash. Under Tracer you also see
 * the conversation that led there:
 *
 *     make examples
 *     gdb -q -batch -x gdb/tracer.py -ex 'tracer run' --args build/examples/crashy_pipeline
 *
 * The report lists the messages that went through the pipe (the bad one last before the
 * crash), the consumer's backtrace at the crash, and - when the producer got to send it before
 * the crash - the fifth message, still waiting unread in the pipe.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define RECORD 32 /* every message is exactly this long: a pipe keeps them apart */
#define SLOTS 8

static long table[SLOTS];

/* The consumer: reads records until the producer closes the pipe. */
static void consumer(int in)
{
	char rec[RECORD];

	while (read(in, rec, RECORD) == RECORD) {
		char *end;
		long slot = strtol(rec + 4, &end, 10); /* after "set " */
		long value = strtol(end, NULL, 10);

		/* The bug: slot is never checked against SLOTS. */
		table[slot] = value;
		printf("consumer: table[%ld] = %ld\n", slot, value);
		fflush(stdout);
	}
	exit(0);
}

/* The producer: formats and sends the commands. */
static void producer(int out)
{
	static const char *const commands[] = {
		"set 0 100",
		"set 1 200",
		"set 2 300",
		"set 40000000000 400", /* malformed: the slot field is garbage */
		"set 4 500",
	};
	char rec[RECORD + 1]; /* + 1 for the '\0' snprintf adds; it is not sent */

	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		snprintf(rec, sizeof rec, "%-*s\n", RECORD - 1, commands[i]);
		if (write(out, rec, RECORD) != RECORD) {
			perror("producer: write"); /* EPIPE: the consumer is gone */
			return;
		}
	}
}

int main(void)
{
	int fds[2];

	signal(SIGPIPE, SIG_IGN); /* a dead consumer makes write fail with EPIPE instead */
	if (pipe(fds) != 0) {
		perror("pipe");
		return 1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		close(fds[1]);
		consumer(fds[0]);
	}
	close(fds[0]);
	producer(fds[1]);
	close(fds[1]);

	int status;
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "producer: the consumer died of signal %d\n", WTERMSIG(status));
		return 1;
	}
	return 0;
}
