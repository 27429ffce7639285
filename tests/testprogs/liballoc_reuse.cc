// liballoc_reuse.so: a tiny allocator (reuse_malloc, reuse_realloc, reuse_free) that makes the
// address reuse realloc races with happen every time, for leak_realloc_reuse. Blocks come from a
// static arena; reuse_free puts a block in a one-block slot that the next reuse_malloc of a size it
// fits takes. reuse_realloc moves every block, frees the old one into the slot and then, before it
// returns, calls the hook the program set: there another thread's reuse_malloc gets the old
// address. memleak traces it with `-O PATH --symbols-prefix reuse_`. Built by memleak.cmake (.cc so
// that the testprogs glob does not build it as an executable).
#include <cstddef>
#include <cstring>

namespace {

alignas(16) char arena[8 << 20];
std::size_t arena_used;
void* slot;               // the block freed last
std::size_t slot_size;
void (*realloc_hook)();   // called by reuse_realloc after the old block is free

struct Header {
  std::size_t size;
  std::size_t pad;
};

void* allocate(std::size_t size) {
  if (slot && slot_size >= size) {
    void* block = slot;
    slot = nullptr;
    return block;
  }
  std::size_t need = (sizeof(Header) + size + 15) & ~std::size_t{15};
  if (arena_used + need > sizeof(arena)) return nullptr;
  auto* header = reinterpret_cast<Header*>(arena + arena_used);
  arena_used += need;
  header->size = size;
  return header + 1;
}

void release(void* block) {
  if (!block) return;
  slot = block;
  slot_size = (static_cast<Header*>(block) - 1)->size;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"), noinline)) void* reuse_malloc(std::size_t size) { return allocate(size); }

__attribute__((visibility("default"), noinline)) void reuse_free(void* block) { release(block); }

__attribute__((visibility("default"), noinline)) void* reuse_realloc(void* old, std::size_t size) {
  void* moved = allocate(size);
  if (!moved) return nullptr;
  if (old) {
    std::size_t old_size = (static_cast<Header*>(old) - 1)->size;
    std::memcpy(moved, old, old_size < size ? old_size : size);
    release(old);
    if (realloc_hook) realloc_hook();
  }
  return moved;
}

__attribute__((visibility("default"))) void reuse_set_realloc_hook(void (*hook)()) { realloc_hook = hook; }
}
