/* shm_user KEY SIZE: known System V shared memory calls for the shmsnoop tests, in this order:
 *   shmget(KEY, SIZE, IPC_CREAT|IPC_EXCL|0600)  creates the segment
 *   shmget(KEY, SIZE, IPC_CREAT|IPC_EXCL|0600)  fails with EEXIST
 *   shmat(shmid, NULL, SHM_RDONLY)
 *   shmctl(shmid, IPC_STAT, &ds)
 *   shmdt(address)
 *   shmctl(shmid, IPC_RMID, NULL)
 * and prints "shmid <id>", "address <hex>" and "stat_buffer <hex>" for the test to compare. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/shm.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s KEY SIZE\n", argv[0]);
		return 2;
	}
	key_t key = (key_t)strtoul(argv[1], NULL, 0);
	size_t size = strtoul(argv[2], NULL, 0);
	setvbuf(stdout, NULL, _IONBF, 0);

	int shmid = shmget(key, size, IPC_CREAT | IPC_EXCL | 0600);
	if (shmid < 0) {
		perror("shmget");
		return 1;
	}
	printf("shmid %d\n", shmid);
	if (shmget(key, size, IPC_CREAT | IPC_EXCL | 0600) != -1 || errno != EEXIST) {
		fprintf(stderr, "second shmget should fail with EEXIST\n");
		return 1;
	}
	void *address = shmat(shmid, NULL, SHM_RDONLY);
	if (address == (void *)-1) {
		perror("shmat");
		return 1;
	}
	printf("address %p\n", address);
	struct shmid_ds ds;
	if (shmctl(shmid, IPC_STAT, &ds) != 0) {
		perror("shmctl IPC_STAT");
		return 1;
	}
	printf("stat_buffer %p\n", (void *)&ds);
	if (shmdt(address) != 0 || shmctl(shmid, IPC_RMID, NULL) != 0) {
		perror("shmdt/shmctl IPC_RMID");
		return 1;
	}
	return 0;
}
