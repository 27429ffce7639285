// The kernel BTF cut down for an object's CO-RE relocations (runtime/core_btf.hpp), on a kernel BTF
// built here whose every type is known: what must be kept whole, what only by name, what not at
// all. (That libbpf relocates real objects identically against the cut and the whole kernel BTF is
// checked against the running kernel in tests/integration/core_relocation_test.cpp.)
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core_btf.hpp"
#include "runtime/kernel_btf.hpp"
#include "libbpf_btf.hpp"

namespace memscope {
namespace {

// struct task_struct { int pid; struct sched_entity se; struct mm_struct *mm; pid_t tgid;
//                      struct list_head children[2]; void (*hook)(struct file *); }
// plus what those name, an enum, and types no relocation reaches.
BtfPtr fake_kernel() {
  BtfPtr btf(btf__new_empty());
  struct btf* b = btf.get();
  int int_id = btf__add_int(b, "int", 4, BTF_INT_SIGNED);  // 1
  int pid_t_id = btf__add_typedef(b, "pid_t", int_id);     // 2
  int list_head = btf__add_struct(b, "list_head", 16);     // 3
  btf__add_field(b, "next", list_head + 1, 0, 0);          // (fields go to the type added last)
  btf__add_field(b, "prev", list_head + 1, 64, 0);
  btf__add_ptr(b, list_head);  // 4
  int se = btf__add_struct(b, "sched_entity", 8);  // 5
  btf__add_field(b, "load", int_id, 0, 0);
  btf__add_field(b, "weight", int_id, 32, 0);
  int mm = btf__add_struct(b, "mm_struct", 64);  // 6
  btf__add_field(b, "total_vm", int_id, 0, 0);
  int mm_ptr = btf__add_ptr(b, mm);                             // 7
  int file = btf__add_struct(b, "file", 128);                   // 8
  int file_ptr = btf__add_ptr(b, file);                         // 9
  int proto = btf__add_func_proto(b, 0);                        // 10
  btf__add_func_param(b, "file", file_ptr);
  int proto_ptr = btf__add_ptr(b, proto);                     // 11
  int children = btf__add_array(b, int_id, list_head, 2);     // 12
  btf__add_struct(b, "task_struct", 112);                     // 13
  btf__add_field(b, "pid", int_id, 0, 0);
  btf__add_field(b, "se", se, 32, 0);
  btf__add_field(b, "mm", mm_ptr, 128, 0);
  btf__add_field(b, "tgid", pid_t_id, 192, 0);
  btf__add_field(b, "children", children, 256, 0);
  btf__add_field(b, "hook", proto_ptr, 768, 0);
  btf__add_enum(b, "zone_type", 4);  // 14
  btf__add_enum_value(b, "ZONE_DMA", 0);
  btf__add_enum_value(b, "ZONE_NORMAL", 2);
  btf__add_struct(b, "unrelated", 4);  // 15
  btf__add_field(b, "x", int_id, 0, 0);
  btf__add_struct(b, "mm_struct___rh", 8);  // 16: a flavour of a root, also a candidate
  btf__add_field(b, "total_vm", int_id, 0, 0);
  return btf;
}

// The trimmed BTF for `roots`, parsed back by libbpf (which would refuse malformed BTF).
BtfPtr trim(const std::vector<std::string>& roots, size_t* types) {
  static BtfPtr kernel_bytes = fake_kernel();
  uint32_t size = 0;
  const void* raw = btf__raw_data(kernel_bytes.get(), &size);
  auto kernel = KernelBtf::from_bytes(raw, size);
  if (!kernel) return nullptr;
  std::vector<unsigned char> trimmed = trim_kernel_btf(*kernel, roots, types);
  if (trimmed.empty()) return nullptr;
  struct btf* parsed = btf__new(trimmed.data(), static_cast<uint32_t>(trimmed.size()));
  if (libbpf_get_error(parsed)) return nullptr;
  return BtfPtr(parsed);
}

const btf_type* named(struct btf* btf, const char* name, unsigned kind) {
  int id = btf__find_by_name_kind(btf, name, kind);
  return id > 0 ? btf__type_by_id(btf, id) : nullptr;
}

std::string member_names(struct btf* btf, const btf_type* type) {
  std::string names;
  const btf_member* member = btf_members(type);
  for (int i = 0; i < btf_vlen(type); i++, member++) names += std::string(btf__name_by_offset(btf, member->name_off)) + " ";
  return names;
}

TEST(CoreBtf, KeepsRootsAndWhatTheyEmbedWholeAndPointeesByName) {
  size_t types = 0;
  BtfPtr btf = trim({"task_struct"}, &types);
  ASSERT_NE(btf, nullptr);
  EXPECT_EQ(types, btf__type_cnt(btf.get()) - 1);

  const btf_type* task = named(btf.get(), "task_struct", BTF_KIND_STRUCT);
  ASSERT_NE(task, nullptr);
  EXPECT_EQ(task->size, 112u);
  EXPECT_EQ(member_names(btf.get(), task), "pid se mm tgid children hook ");
  // Member offsets are the kernel's.
  EXPECT_EQ(btf_member_bit_offset(task, 3), 192u);
  EXPECT_EQ(btf_member_bit_offset(task, 5), 768u);

  // Embedded: whole, through typedefs and arrays.
  const btf_type* se = named(btf.get(), "sched_entity", BTF_KIND_STRUCT);
  ASSERT_NE(se, nullptr);
  EXPECT_EQ(member_names(btf.get(), se), "load weight ");
  ASSERT_NE(named(btf.get(), "pid_t", BTF_KIND_TYPEDEF), nullptr);
  const btf_type* list_head = named(btf.get(), "list_head", BTF_KIND_STRUCT);
  ASSERT_NE(list_head, nullptr);
  EXPECT_EQ(member_names(btf.get(), list_head), "next prev ");

  // Behind a pointer and not embedded anywhere: the name, kind and size, no members.
  const btf_type* mm = named(btf.get(), "mm_struct", BTF_KIND_STRUCT);
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(btf_vlen(mm), 0);
  EXPECT_EQ(mm->size, 64u);
  const btf_type* file = named(btf.get(), "file", BTF_KIND_STRUCT);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(btf_vlen(file), 0);

  // The mm member still points at a struct named mm_struct.
  const btf_member* mm_member = btf_members(task) + 2;
  const btf_type* pointer = btf__type_by_id(btf.get(), mm_member->type);
  ASSERT_TRUE(btf_is_ptr(pointer));
  EXPECT_STREQ(btf__name_by_offset(btf.get(), btf__type_by_id(btf.get(), pointer->type)->name_off), "mm_struct");

  // Nothing a relocation rooted at task_struct can reach.
  EXPECT_EQ(named(btf.get(), "unrelated", BTF_KIND_STRUCT), nullptr);
  EXPECT_EQ(named(btf.get(), "zone_type", BTF_KIND_ENUM), nullptr);
  EXPECT_EQ(named(btf.get(), "mm_struct___rh", BTF_KIND_STRUCT), nullptr);
}

TEST(CoreBtf, EveryFlavourOfARootIsACandidateAndEnumsKeepTheirValues) {
  size_t types = 0;
  BtfPtr btf = trim({"mm_struct", "zone_type"}, &types);
  ASSERT_NE(btf, nullptr);
  const btf_type* mm = named(btf.get(), "mm_struct", BTF_KIND_STRUCT);
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(member_names(btf.get(), mm), "total_vm ");
  const btf_type* flavour = named(btf.get(), "mm_struct___rh", BTF_KIND_STRUCT);
  ASSERT_NE(flavour, nullptr);
  EXPECT_EQ(btf_vlen(flavour), 1);
  const btf_type* zones = named(btf.get(), "zone_type", BTF_KIND_ENUM);
  ASSERT_NE(zones, nullptr);
  ASSERT_EQ(btf_vlen(zones), 2);
  EXPECT_STREQ(btf__name_by_offset(btf.get(), btf_enum(zones)[1].name_off), "ZONE_NORMAL");
  EXPECT_EQ(btf_enum(zones)[1].val, 2);
  EXPECT_EQ(named(btf.get(), "task_struct", BTF_KIND_STRUCT), nullptr);
}

TEST(CoreBtf, NoRootsGiveAnEmptyButValidBtf) {
  size_t types = 1;
  BtfPtr btf = trim({}, &types);
  ASSERT_NE(btf, nullptr);
  EXPECT_EQ(types, 0u);
  EXPECT_EQ(btf__type_cnt(btf.get()), 1u);
}

TEST(CoreBtf, RelocationRootsOfWhatIsNotABpfObjectAreAnError) {
  std::string error;
  std::vector<unsigned char> garbage(4096, 0x7f);
  CoreRelocationRoots roots = core_relocation_roots(garbage.data(), garbage.size(), &error);
  EXPECT_FALSE(error.empty());
  EXPECT_TRUE(roots.names.empty());
  error.clear();
  roots = core_relocation_roots(garbage.data(), 3, &error);
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace memscope
