/* Maps many shared objects for bench/unwind_tables_bench.sh: dlopens the paths given until COUNT of
 * them loaded, reports how many did on stdout, then waits until stdin closes.
 *   dlopen_many COUNT PATH... */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	int wanted = argc > 1 ? atoi(argv[1]) : 0, loaded = 0;
	for (int i = 2; i < argc && loaded < wanted; i++)
		if (dlopen(argv[i], RTLD_LAZY | RTLD_LOCAL))
			loaded++;
	printf("%d\n", loaded);
	fflush(stdout);
	while (getchar() != EOF)
		;
	return 0;
}
