// scan_target: allocates blocks whose reachability it knows, prints them, then serves stdin.
//
//   BLOCK <address> <size> <reachable|leaked|untracked-only> <label>
//   HOLDER <address> <size>     an allocation the scanner must treat as untracked (made "before
//                               tracing"): it holds the only reference to the untracked-only block
//   READY <threads>
// then on stdin: "ping N" -> "pong N", "exit" -> joins its thread and exits 0.
//
// Block references live in: .data, .bss, main's stack, a second thread's stack, main's and the
// second thread's __thread variables, other heap blocks (chains), interior pointers, and a large
// (mmap'd) block. Leaked ones: dropped pointers, a dropped chain, a dropped cycle, large, and one
// allocated in the second thread's arena.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node {
  struct node* next;
  char payload[48];
};  // 56 bytes: glibc's next chunk header falls inside the block

void* data_ref = (void*)1;  // .data (initialized)
void* bss_ref;              // .bss
void* interior_ref;
struct node* chain_head;
void* large_ref;
void** untracked_holder;
static __thread void* main_tls_ref;
static __thread void* worker_tls_ref;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static int worker_ready;
static int quit_pipe[2];

static void report(const char* kind, void* address, size_t size, const char* label) {
  printf("BLOCK %p %zu %s %s\n", address, size, kind, label);
}

// Overwrites the stack below the caller, so that dead frames hold no stale copy of a dropped pointer
// (a conservative scanner would rightly count one).
static void __attribute__((noinline)) scrub_stack(void) {
  volatile char area[64 * 1024];
  memset((char*)area, 0, sizeof area);
}

static void* worker(void* arg) {
  (void)arg;
  void* volatile stack_ref = malloc(200);  // this thread's stack
  worker_tls_ref = malloc(136);            // this thread's static TLS, at the top of its stack
  void* lost = malloc(88);                 // in this thread's malloc arena
  report("reachable", stack_ref, 200, "worker_stack");
  report("reachable", worker_tls_ref, 136, "worker_tls");
  report("leaked", lost, 88, "worker_dropped");
  lost = NULL;
  scrub_stack();
  pthread_mutex_lock(&lock);
  worker_ready = 1;
  pthread_cond_signal(&ready_cond);
  pthread_mutex_unlock(&lock);
  char byte;
  while (read(quit_pipe[0], &byte, 1) < 0) {
  }
  free(stack_ref);
  return NULL;
}

static void __attribute__((noinline)) make_reachable(void) {
  data_ref = malloc(40);
  report("reachable", data_ref, 40, "global_data");
  bss_ref = malloc(1000);
  report("reachable", bss_ref, 1000, "global_bss");
  char* interior = malloc(256);
  interior_ref = interior + 100;
  report("reachable", interior, 256, "interior");
  main_tls_ref = malloc(72);
  report("reachable", main_tls_ref, 72, "main_tls");
  // A chain: only the head is referenced from a root.
  struct node* third = calloc(1, sizeof *third);
  struct node* second = calloc(1, sizeof *second);
  chain_head = calloc(1, sizeof *chain_head);
  chain_head->next = second;
  second->next = third;
  report("reachable", chain_head, sizeof(struct node), "chain_head");
  report("reachable", second, sizeof(struct node), "chain_second");
  report("reachable", third, sizeof(struct node), "chain_third");
  large_ref = malloc(1 << 20);  // above the mmap threshold: its own mapping
  report("reachable", large_ref, 1 << 20, "large");
  // Referenced only from an allocation the scanner is told nothing about.
  untracked_holder = malloc(32);
  untracked_holder[1] = malloc(24);
  printf("HOLDER %p %d\n", (void*)untracked_holder, 32);
  report("untracked-only", untracked_holder[1], 24, "via_untracked");
}

static void __attribute__((noinline)) make_leaks(void) {
  void* dropped = malloc(120);
  report("leaked", dropped, 120, "dropped");
  dropped = NULL;
  // A chain whose head is dropped: the second link is "indirectly" lost.
  struct node* head = calloc(1, sizeof *head);
  head->next = calloc(1, sizeof *head);
  report("leaked", head, sizeof(struct node), "lost_chain_head");
  report("leaked", head->next, sizeof(struct node), "lost_chain_second");
  head = NULL;
  // A cycle nothing else refers to.
  struct node* a = calloc(1, sizeof *a);
  struct node* b = calloc(1, sizeof *b);
  a->next = b;
  b->next = a;
  report("leaked", a, sizeof(struct node), "cycle_a");
  report("leaked", b, sizeof(struct node), "cycle_b");
  a = b = NULL;
  void* large = malloc(3 << 19);
  memset(large, 0x5a, 4096);
  report("leaked", large, 3 << 19, "large_dropped");
  large = NULL;
  // A leaked block that points at a reachable one: the reference changes nothing for either.
  void** pointing = malloc(48);
  pointing[0] = chain_head;
  report("leaked", pointing, 48, "points_at_reachable");
  pointing = NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (pipe(quit_pipe) != 0) return 1;
  void* volatile stack_ref = malloc(512);  // main's stack: a live local
  report("reachable", stack_ref, 512, "main_stack");
  make_reachable();
  make_leaks();

  pthread_t thread;
  pthread_create(&thread, NULL, worker, NULL);
  pthread_mutex_lock(&lock);
  while (!worker_ready) pthread_cond_wait(&ready_cond, &lock);
  pthread_mutex_unlock(&lock);

  scrub_stack();
  printf("READY 2\n");
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "ping ", 5) == 0) printf("pong %s", line + 5);
    if (strncmp(line, "exit", 4) == 0) break;
  }
  if (write(quit_pipe[1], "q", 1) != 1) return 1;
  pthread_join(thread, NULL);
  free(stack_ref);
  return 0;
}
