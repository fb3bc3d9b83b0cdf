/* pingpong.c - the benchmark workload: a parent and a child bounce a 64-byte message over
 * two pipes ROUNDS times. Each round is 4 traced calls (write+read in each process). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 64

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 1000;
	int to_child[2], to_parent[2];
	char msg[MSG];
	pid_t pid;

	memset(msg, 'p', sizeof(msg));
	if (pipe(to_child) || pipe(to_parent))
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		for (int i = 0; i < rounds; i++) {
			if (read(to_child[0], msg, MSG) != MSG || write(to_parent[1], msg, MSG) != MSG)
				_exit(1);
		}
		_exit(0);
	}
	for (int i = 0; i < rounds; i++) {
		if (write(to_child[1], msg, MSG) != MSG || read(to_parent[0], msg, MSG) != MSG)
			return 1;
	}
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
