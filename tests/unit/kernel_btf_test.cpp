// KernelBtf, the in-place reader of kernel BTF, against BTF libbpf writes (every kind it walks over)
// and, where this machine has kernel BTF, against libbpf's own parse of it.
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "runtime/kernel_btf.hpp"
#include "libbpf_btf.hpp"

namespace memscope {
namespace {

// A BTF with one type of most kinds, so that a walk has to step over each of them correctly.
BtfPtr sample_btf() {
  BtfPtr btf(btf__new_empty());
  struct btf* b = btf.get();
  int int_id = btf__add_int(b, "int", 4, BTF_INT_SIGNED);           // 1
  int ptr_id = btf__add_ptr(b, int_id);                               // 2
  btf__add_array(b, int_id, int_id, 4);                               // 3
  int task = btf__add_struct(b, "task_struct", 8);                    // 4
  btf__add_field(b, "pid", int_id, 0, 0);
  btf__add_field(b, "tgid", int_id, 32, 0);
  btf__add_union(b, "u", 4);                                          // 5
  btf__add_field(b, "a", int_id, 0, 0);
  btf__add_enum(b, "bpf_func_id", 4);                                 // 6
  btf__add_enum_value(b, "BPF_FUNC_unspec", 0);
  btf__add_enum_value(b, "BPF_FUNC_loop", 181);
  btf__add_fwd(b, "fwd_struct", BTF_FWD_STRUCT);                      // 7
  int const_id = btf__add_const(b, ptr_id);                           // 8
  int volatile_id = btf__add_volatile(b, const_id);                   // 9
  int task_ptr = btf__add_ptr(b, task);                               // 10
  int proto = btf__add_func_proto(b, int_id);                         // 11
  btf__add_func_param(b, "data", ptr_id);
  btf__add_func_param(b, "task", task_ptr);
  int proto_ptr = btf__add_ptr(b, proto);                             // 12
  btf__add_typedef(b, "btf_trace_sample", proto_ptr);                 // 13
  btf__add_func(b, "do_exit", BTF_FUNC_GLOBAL, proto);                // 14
  btf__add_float(b, "double", 8);                                     // 15
  int var = btf__add_var(b, "variable", BTF_VAR_GLOBAL_ALLOCATED, int_id);  // 16
  btf__add_datasec(b, ".data", 4);                                    // 17
  btf__add_datasec_var_info(b, var, 0, 4);
  btf__add_decl_tag(b, "tag", var, -1);                               // 18
  btf__add_type_tag(b, "user", volatile_id);                          // 19
  btf__add_enum64(b, "big", 8, false);                                // 20
  btf__add_enum64_value(b, "BIG_ONE", 1ULL << 40);
  btf__add_typedef(b, "task_struct", task);                           // 21: same name, other kind
  btf__add_struct(b, "last", 0);                                      // 22
  return btf;
}

TEST(KernelBtf, FindsEachNamedKindAfterEveryOtherKind) {
  BtfPtr built = sample_btf();
  uint32_t size = 0;
  const void* raw = btf__raw_data(built.get(), &size);
  ASSERT_NE(raw, nullptr);
  auto btf = KernelBtf::from_bytes(raw, size);
  ASSERT_NE(btf, nullptr);
  EXPECT_EQ(btf->find("int", BTF_KIND_INT), 1);
  EXPECT_EQ(btf->find("task_struct", BTF_KIND_STRUCT), 4);
  EXPECT_EQ(btf->find("task_struct", BTF_KIND_TYPEDEF), 21);
  EXPECT_EQ(btf->find("bpf_func_id", BTF_KIND_ENUM), 6);
  EXPECT_EQ(btf->find("btf_trace_sample", BTF_KIND_TYPEDEF), 13);
  EXPECT_EQ(btf->find("do_exit", BTF_KIND_FUNC), 14);
  EXPECT_EQ(btf->find("big", BTF_KIND_ENUM64), 20);
  EXPECT_EQ(btf->find("last", BTF_KIND_STRUCT), 22);
  // Every id agrees with libbpf's, also for the types after each kind.
  for (int id = 1; id <= 22; id++) {
    const btf_type* ours = btf->type(id);
    ASSERT_NE(ours, nullptr) << id;
    const btf_type* theirs = btf__type_by_id(built.get(), id);
    EXPECT_EQ(btf_kind(ours), btf_kind(theirs)) << id;
    EXPECT_STREQ(btf->name(ours->name_off), btf__name_by_offset(built.get(), theirs->name_off)) << id;
  }
  EXPECT_EQ(btf->type(23), nullptr);
  EXPECT_EQ(btf->type(0), nullptr);
}

TEST(KernelBtf, AnswersWhatTheToolsAsk) {
  BtfPtr built = sample_btf();
  uint32_t size = 0;
  const void* raw = btf__raw_data(built.get(), &size);
  auto btf = KernelBtf::from_bytes(raw, size);
  ASSERT_NE(btf, nullptr);
  // Absent names and kinds.
  EXPECT_EQ(btf->find("task_struct", BTF_KIND_UNION), -1);
  EXPECT_EQ(btf->find("no_such_type", BTF_KIND_STRUCT), -1);
  EXPECT_EQ(btf->find("", BTF_KIND_STRUCT), -1);
  EXPECT_EQ(btf->find("task", BTF_KIND_STRUCT), -1);  // a prefix is not the name
  // A tracepoint's arguments: typedef → pointer → prototype; "task" is a pointer, "data" too.
  const btf_type* pointer = btf->type(btf->resolve(btf->find("btf_trace_sample", BTF_KIND_TYPEDEF)));
  ASSERT_TRUE(pointer && btf_is_ptr(pointer));
  const btf_type* proto = btf->type(pointer->type);
  ASSERT_TRUE(proto && btf_is_func_proto(proto));
  ASSERT_EQ(btf_vlen(proto), 2);
  EXPECT_TRUE(btf_is_ptr(btf->type(btf->resolve(btf_params(proto)[1].type))));
  // Modifiers are followed to what they qualify: type tag → volatile → const → pointer.
  EXPECT_EQ(btf->resolve(19), 2u);
  // Enum values by name.
  const btf_type* helpers = btf->type(btf->find("bpf_func_id", BTF_KIND_ENUM));
  ASSERT_EQ(btf_vlen(helpers), 2);
  EXPECT_STREQ(btf->name(btf_enum(helpers)[1].name_off), "BPF_FUNC_loop");
  EXPECT_STREQ(btf->name(0xffffffffu), "");
}

TEST(KernelBtf, RefusesWhatIsNotBtf) {
  std::vector<unsigned char> garbage(64, 0xab);
  EXPECT_EQ(KernelBtf::from_bytes(garbage.data(), garbage.size()), nullptr);
  EXPECT_EQ(KernelBtf::from_bytes(garbage.data(), 4), nullptr);
  // A header whose sections point past the end.
  BtfPtr built = sample_btf();
  uint32_t size = 0;
  const auto* raw = static_cast<const unsigned char*>(btf__raw_data(built.get(), &size));
  std::vector<unsigned char> truncated(raw, raw + size / 2);
  EXPECT_EQ(KernelBtf::from_bytes(truncated.data(), truncated.size()), nullptr);
}

TEST(KernelBtf, MatchesLibbpfOnThisKernel) {
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) GTEST_SKIP() << "no /sys/kernel/btf/vmlinux";
  const KernelBtf* kernel = KernelBtf::get();
  ASSERT_NE(kernel, nullptr);
  BtfPtr libbpf(btf__parse_raw("/sys/kernel/btf/vmlinux"));
  ASSERT_NE(libbpf, nullptr);
  for (auto [name, kind] : std::vector<std::pair<const char*, unsigned>>{{"task_struct", BTF_KIND_STRUCT},
                                                                         {"do_exit", BTF_KIND_FUNC},
                                                                         {"btf_trace_sched_switch", BTF_KIND_TYPEDEF},
                                                                         {"bpf_func_id", BTF_KIND_ENUM},
                                                                         {"no_such_type_anywhere", BTF_KIND_STRUCT}}) {
    int theirs = btf__find_by_name_kind(libbpf.get(), name, kind);  // -ENOENT when absent
    EXPECT_EQ(kernel->find(name, kind), theirs > 0 ? theirs : -1) << name;
  }
  // The last type is where libbpf says, so the walk stepped over every kind this kernel uses.
  uint32_t last = btf__type_cnt(libbpf.get()) - 1;
  ASSERT_NE(kernel->type(last), nullptr);
  EXPECT_EQ(std::memcmp(kernel->type(last), btf__type_by_id(libbpf.get(), last), sizeof(btf_type)), 0);
  EXPECT_EQ(kernel->type(last + 1), nullptr);
}

TEST(KernelBtf, LibbpfLoadsTheKernelBtfThroughMemscope) {
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) GTEST_SKIP() << "no /sys/kernel/btf/vmlinux";
  // libbpf's entry point, as bpf_object__load calls it: memscope's definition, from the same bytes.
  struct btf* loaded = btf__load_vmlinux_btf();
  ASSERT_NE(loaded, nullptr);
  BtfPtr owned(loaded);
  uint32_t size = 0;
  const void* raw = btf__raw_data(loaded, &size);
  ASSERT_EQ(size, KernelBtf::get()->size());
  EXPECT_EQ(std::memcmp(raw, KernelBtf::get()->data(), size), 0);
  EXPECT_GT(btf__find_by_name_kind(loaded, "task_struct", BTF_KIND_STRUCT), 0);
}

}  // namespace
}  // namespace memscope
