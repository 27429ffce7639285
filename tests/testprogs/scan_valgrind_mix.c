// scan_valgrind_mix: a finite program with one allocation site per function, each of a known fate
// at exit, to compare memscope's LEAKED/REACHABLE with valgrind memcheck's leak kinds:
//   definitely lost:  lost_single, lost_many, lost_calloc, lost_realloc, lost_tree_root, lost_cycle,
//                     lost_in_thread
//   indirectly lost:  lost_tree_child (only the lost root refers to them), lost_cycle's second node
//   still reachable:  kept_global, kept_chain_head, kept_chain_link, kept_array_item, kept_bss
//   possibly lost:    interior_only (a global points into its middle; memscope: reachable)
// Sizes vary (24, 40, 56: glibc's next chunk header falls inside those blocks).
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct node {
  struct node* next;
  struct node* other;
  char payload[40];
};  // 56 bytes

void* kept_global_ref = (void*)1;
struct node* kept_chain_ref;
void** kept_array_ref;
void* kept_bss_ref;
char* interior_ref;

static void __attribute__((noinline)) scrub_stack(void) {
  volatile char area[32 * 1024];
  memset((char*)area, 0, sizeof area);
}

static void __attribute__((noinline)) lost_single(void) {
  void* volatile p = malloc(100);
  p = NULL;
  (void)p;
}

static void __attribute__((noinline)) lost_many(void) {
  for (int i = 0; i < 10; ++i) {
    void* volatile p = malloc(40);
    p = NULL;
  (void)p;
  }
}

static void __attribute__((noinline)) lost_calloc(void) {
  void* volatile p = calloc(3, 24);
  p = NULL;
  (void)p;
}

static void __attribute__((noinline)) lost_realloc(void) {
  void* volatile p = malloc(16);
  p = realloc(p, 4000);
  p = NULL;
  (void)p;
}

static struct node* __attribute__((noinline)) lost_tree_child(void) { return calloc(1, sizeof(struct node)); }

static void __attribute__((noinline)) lost_tree_root(void) {
  struct node* volatile root = calloc(1, sizeof(struct node));
  root->next = lost_tree_child();
  root->other = lost_tree_child();
  root->next->next = lost_tree_child();
  root = NULL;
}

static void __attribute__((noinline)) lost_cycle(void) {
  struct node* volatile a = calloc(1, sizeof(struct node));
  struct node* volatile b = calloc(1, sizeof(struct node));
  a->next = b;
  b->next = a;
  a = b = NULL;
}

static void* __attribute__((noinline)) lost_in_thread(void* arg) {
  void* volatile p = malloc(333);
  p = NULL;
  (void)p;
  scrub_stack();
  return arg;
}

static void __attribute__((noinline)) kept_global(void) { kept_global_ref = malloc(64); }
static void __attribute__((noinline)) kept_bss(void) { kept_bss_ref = malloc(24); }

static struct node* __attribute__((noinline)) kept_chain_link(void) { return calloc(1, sizeof(struct node)); }

static void __attribute__((noinline)) kept_chain_head(void) {
  kept_chain_ref = calloc(1, sizeof(struct node));
  kept_chain_ref->next = kept_chain_link();
  kept_chain_ref->next->next = kept_chain_link();
}

static void* __attribute__((noinline)) kept_array_item(void) { return malloc(200); }

static void __attribute__((noinline)) kept_array(void) {
  kept_array_ref = malloc(4 * sizeof(void*));
  for (int i = 0; i < 4; ++i) kept_array_ref[i] = kept_array_item();
}

static void __attribute__((noinline)) interior_only(void) {
  char* block = malloc(512);
  interior_ref = block + 128;
}

int main(void) {
  kept_global();
  lost_single();
  kept_bss();
  lost_many();
  kept_chain_head();
  lost_calloc();
  kept_array();
  lost_realloc();
  lost_tree_root();
  interior_only();
  lost_cycle();
  pthread_t thread;
  pthread_create(&thread, NULL, lost_in_thread, NULL);
  pthread_join(thread, NULL);
  // Free something so that glibc's bins hold chunk headers next to live blocks.
  free(malloc(56));
  free(malloc(1000));
  scrub_stack();
  return 0;
}
