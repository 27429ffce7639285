/* <bpf/usdt.bpf.h> includes <linux/errno.h>, which needs the architecture's <asm/errno.h>; BPF
 * programs are compiled without the multiarch include directory, and on every architecture
 * memscope builds for that header is the generic one. */
#include <asm-generic/errno.h>
