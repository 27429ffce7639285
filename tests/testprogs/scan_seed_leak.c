/* scan_seed_leak: the seed chapter's leak program (examples/leak.c) for the leak-proof tests: the
 * child thread calloc()s 8 KiB per second in fibonacci() and keeps only the latest block (in its
 * local `v`). Every block but the latest is a real leak; the latest is reachable from child's stack. */
#include "../../examples/leak.c"
