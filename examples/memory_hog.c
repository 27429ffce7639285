/* Allocates and touches memory 1 MiB at a time until the kernel stops it: run in a small memory
 * cgroup, it is OOM-killed when it reaches the limit.
 *
 *   memscope oomkill &  then start ./memory_hog in a cgroup with memory.max = 32M
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	for (unsigned mebibytes = 1;; mebibytes++) {
		char *block = malloc(1 << 20);
		if (!block) {
			perror("malloc");
			return 1;
		}
		memset(block, 0x5a, 1 << 20);
		if (mebibytes % 16 == 0)
			usleep(10 * 1000);
	}
}
