/* pingpong_threads.c - the benchmark workload in one process, for debuggers that follow one
 * process (lldb): two threads bounce a 64-byte message over two pipes ROUNDS times. Each
 * round is 4 traced calls (write+read in each thread), as in pingpong.c. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MSG 64

static int to_peer[2], to_main[2];
static int rounds = 1000;

static void *peer(void *arg)
{
	char msg[MSG];

	for (int i = 0; i < rounds; i++) {
		if (read(to_peer[0], msg, MSG) != MSG || write(to_main[1], msg, MSG) != MSG)
			exit(1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	char msg[MSG];
	pthread_t t;

	rounds = argc > 1 ? atoi(argv[1]) : 1000;
	memset(msg, 'p', sizeof(msg));
	if (pipe(to_peer) || pipe(to_main) || pthread_create(&t, NULL, peer, NULL))
		return 1;
	for (int i = 0; i < rounds; i++) {
		if (write(to_peer[1], msg, MSG) != MSG || read(to_main[0], msg, MSG) != MSG)
			return 1;
	}
	return pthread_join(t, NULL) == 0 ? 0 : 1;
}
