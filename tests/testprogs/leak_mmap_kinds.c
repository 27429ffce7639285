/* mmaps of every kind, none unmapped: from map_reservation() a 64 MiB PROT_NONE reservation (as
 * glibc reserves an arena's heap), from map_noreserve() 1 MiB MAP_NORESERVE, from map_file() a
 * page of its own executable, and from map_anonymous() 3 pages of anonymous read-write memory, the
 * only allocation among them. Exits at once. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static void *volatile kept[4];

__attribute__((noinline)) void map_reservation(void)
{
	kept[0] = mmap(NULL, 64 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

__attribute__((noinline)) void map_noreserve(void)
{
	kept[1] = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

__attribute__((noinline)) void map_file(int fd)
{
	kept[2] = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
}

__attribute__((noinline)) void map_anonymous(void)
{
	kept[3] = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(void)
{
	int fd = open("/proc/self/exe", O_RDONLY);
	map_reservation();
	map_noreserve();
	map_file(fd);
	map_anonymous();
	for (int i = 0; i < 4; i++)
		if (kept[i] == MAP_FAILED)
			return 1;
	printf("mapped\n");
	return 0;
}
