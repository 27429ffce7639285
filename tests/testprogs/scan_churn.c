// scan_churn: keeps creating short-lived threads (4 spawners, each starting and joining threads in a
// loop) so that a scanner stopping it races thread creation and exit. Holds one block from a global.
//   prints "BLOCK <address> <size>" and "READY"; stdin "count N" -> "count N <threads created so far>".
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_long created;
void* kept;

static void* short_lived(void* arg) {
  void* scratch = malloc(64);  // freed at once: never outstanding for long
  free(scratch);
  return arg;
}

static void* spawner(void* arg) {
  for (;;) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, short_lived, NULL) == 0) {
      atomic_fetch_add(&created, 1);
      pthread_join(thread, NULL);
    }
  }
  return arg;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  kept = malloc(4096);
  printf("BLOCK %p %d\n", kept, 4096);
  for (int i = 0; i < 4; ++i) {
    pthread_t thread;
    pthread_create(&thread, NULL, spawner, NULL);
  }
  printf("READY\n");
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "count ", 6) == 0) {
      line[strcspn(line, "\n")] = '\0';
      printf("%s %ld\n", line, (long)atomic_load(&created));
    }
    if (strncmp(line, "exit", 4) == 0) break;
  }
  return 0;
}
