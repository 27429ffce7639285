/* The seed's leak program (examples/leak.c), built by the test build: fibonacci() callocs 8 KiB
 * every second from the child thread and never frees it. memleak must name fibonacci and child. */
#include "../../examples/leak.c"
