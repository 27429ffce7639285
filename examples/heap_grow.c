/* A workload whose heap grows by brk: the main thread builds a word index of 200,000 small
 * entries (malloc from the main arena, which moves the program break), one batch every 100 ms,
 * then frees it all and exits. The growth comes from add_entry(), called from build_index().
 *
 *   memscope brkstack -c ./heap_grow      # brk ← … ← malloc ← add_entry ← build_index ← main
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct entry {
	struct entry *next;
	char word[40];
};

static struct entry *add_entry(struct entry *head, unsigned number)
{
	struct entry *entry = malloc(sizeof(*entry));
	if (!entry) {
		perror("malloc");
		exit(1);
	}
	snprintf(entry->word, sizeof(entry->word), "word-%u", number);
	entry->next = head;
	return entry;
}

static struct entry *build_index(unsigned batches, unsigned per_batch)
{
	struct entry *head = NULL;
	for (unsigned batch = 0; batch < batches; batch++) {
		for (unsigned i = 0; i < per_batch; i++)
			head = add_entry(head, batch * per_batch + i);
		usleep(100 * 1000);
	}
	return head;
}

int main(void)
{
	struct entry *head = build_index(20, 10000);
	unsigned count = 0;
	while (head) {
		struct entry *next = head->next;
		free(head);
		head = next;
		count++;
	}
	printf("indexed and freed %u entries\n", count);
	return 0;
}
