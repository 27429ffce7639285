// memleak's pure logic: the -c word splitter, the dynamic loader's list output, which object is
// the allocator, and the per-stack report (age filter, scan labels, growth, order); how its
// kernel stacks and lost stacks are shown.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>

#include "output/sink.hpp"
#include "symbols/symbolizer.hpp"
#include "tools/memleak/allocator_libraries.hpp"
#include "tools/memleak/command_words.hpp"
#include "tools/memleak/outstanding_report.hpp"

namespace memscope::memleak {
namespace {

std::vector<std::string> words(std::string_view text) {
  auto result = split_command_words(text);
  EXPECT_TRUE(result) << text << ": " << (result ? "" : result.error().message);
  return result ? *result : std::vector<std::string>{};
}

std::string error_of(std::string_view text) {
  auto result = split_command_words(text);
  return result ? "" : result.error().message;
}

TEST(MemleakCommandWords, SplitsOnBlanksLikeAShell) {
  EXPECT_EQ(words("./leak"), (std::vector<std::string>{"./leak"}));
  EXPECT_EQ(words("  ls \t -l\n/tmp  "), (std::vector<std::string>{"ls", "-l", "/tmp"}));
  EXPECT_TRUE(words("").empty());
  EXPECT_TRUE(words(" \t\n").empty());
}

TEST(MemleakCommandWords, SingleQuotesKeepEverything) {
  EXPECT_EQ(words("grep 'a b' file"), (std::vector<std::string>{"grep", "a b", "file"}));
  EXPECT_EQ(words(R"(echo '$HOME \n "x"')"), (std::vector<std::string>{"echo", R"($HOME \n "x")"}));
}

TEST(MemleakCommandWords, DoubleQuotesKeepAllButTheirEscapes) {
  EXPECT_EQ(words(R"(printf "%s\n" "a \"b\" \\ \$c \`d\`")"),
            (std::vector<std::string>{"printf", R"(%s\n)", R"(a "b" \ $c `d`)"}));
  EXPECT_EQ(words("echo \"one\\\ntwo\""), (std::vector<std::string>{"echo", "onetwo"}));
  EXPECT_EQ(words(R"(echo "it's")"), (std::vector<std::string>{"echo", "it's"}));
}

TEST(MemleakCommandWords, BackslashQuotesOneCharacter) {
  EXPECT_EQ(words(R"(touch a\ b \'c\' \\)"), (std::vector<std::string>{"touch", "a b", "'c'", "\\"}));
  EXPECT_EQ(words("a\\\nb"), (std::vector<std::string>{"ab"}));  // backslash-newline vanishes
}

TEST(MemleakCommandWords, AdjacentPartsFormOneWordAndEmptyQuotesAWord) {
  EXPECT_EQ(words(R"(x"a"'b'c)"), (std::vector<std::string>{"xabc"}));
  EXPECT_EQ(words(R"(prog "" '' end)"), (std::vector<std::string>{"prog", "", "", "end"}));
}

TEST(MemleakCommandWords, NoExpansionsWithoutAShell) {
  EXPECT_EQ(words("echo $HOME *.c ~ a|b >out;x"),
            (std::vector<std::string>{"echo", "$HOME", "*.c", "~", "a|b", ">out;x"}));
}

TEST(MemleakCommandWords, UnterminatedQuotesAreErrors) {
  EXPECT_NE(error_of("echo 'abc").find("unterminated single quote"), std::string::npos);
  EXPECT_NE(error_of("echo \"abc").find("unterminated double quote"), std::string::npos);
  EXPECT_NE(error_of("echo \"abc\\\"").find("unterminated double quote"), std::string::npos);
  EXPECT_NE(error_of("echo abc\\").find("lone backslash"), std::string::npos);
}

TEST(MemleakLoaderList, ParsesResolvedAndPreloadedObjects) {
  const char* listing =
      "\tlinux-vdso.so.1 (0x00007ffd5b3f2000)\n"
      "\t/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 (0x00007f2d1c600000)\n"
      "\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f2d1c200000)\n"
      "\tlibmissing.so.1 => not found\n"
      "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2d1c01f000)\n"
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007f2d1ca5e000)\n";
  auto objects = parse_loader_list(listing);
  ASSERT_EQ(objects.size(), 4u);
  EXPECT_EQ(objects[0].soname, "libjemalloc.so.2");
  EXPECT_EQ(objects[0].path, "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2");
  EXPECT_EQ(objects[1].soname, "libstdc++.so.6");
  EXPECT_EQ(objects[1].path, "/lib/x86_64-linux-gnu/libstdc++.so.6");
  EXPECT_EQ(objects[2].path, "/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(objects[3].path, "/lib64/ld-linux-x86-64.so.2");
  EXPECT_TRUE(parse_loader_list("\tnot a dynamic executable\n").empty());
}

TEST(MemleakLoaderList, KnowsTheRolesOfObjects) {
  EXPECT_EQ(object_role("/lib/x86_64-linux-gnu/libc.so.6"), ObjectRole::Libc);
  EXPECT_EQ(object_role("/lib/x86_64-linux-gnu/libc-2.31.so"), ObjectRole::Libc);
  EXPECT_EQ(object_role("/usr/lib/libjemalloc.so.2"), ObjectRole::ReplacementAllocator);
  EXPECT_EQ(object_role("/usr/lib/libtcmalloc_minimal.so.4"), ObjectRole::ReplacementAllocator);
  EXPECT_EQ(object_role("/usr/lib/libmimalloc.so.2"), ObjectRole::ReplacementAllocator);
  EXPECT_EQ(object_role("/usr/lib/libstdc++.so.6"), ObjectRole::CxxRuntime);
  EXPECT_EQ(object_role("/usr/lib/libc++.so.1"), ObjectRole::CxxRuntime);
  EXPECT_EQ(object_role("/usr/lib/libcrypt.so.1"), ObjectRole::Other);
  EXPECT_EQ(object_role("/usr/lib/libc++abi.so.1"), ObjectRole::Other);
}

TEST(MemleakAllocatorPlan, PrefersAReplacementAllocatorAndKeepsLibcForMmap) {
  AllocatorPlan plan =
      plan_allocator({"/usr/bin/app", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                      "/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libc.so.6"},
                     "/usr/bin/app", {}, "");
  EXPECT_EQ(plan.malloc_object, "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2");
  EXPECT_EQ(plan.mapping_object, "/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_FALSE(plan.static_executable);
  EXPECT_NE(
      std::find(plan.cxx_objects.begin(), plan.cxx_objects.end(), "/lib/x86_64-linux-gnu/libstdc++.so.6"),
      plan.cxx_objects.end());
}

TEST(MemleakAllocatorPlan, StaticExecutableIsItsOwnAllocator) {
  AllocatorPlan plan = plan_allocator({"/usr/bin/static-app"}, "/proc/42/exe", {}, "/proc/42/root");
  EXPECT_TRUE(plan.static_executable);
  EXPECT_EQ(plan.malloc_object, "/proc/42/exe");
  EXPECT_EQ(plan.mapping_object, "/proc/42/exe");
  EXPECT_EQ(plan.cxx_objects, std::vector<std::string>{"/proc/42/exe"});
}

TEST(MemleakAllocatorPlan, ObjectOptionNamesAMappedLibrary) {
  AllocatorRequest request{"c", ""};
  AllocatorPlan plan = plan_allocator({"/usr/bin/app", "/usr/lib/libtcmalloc.so.4", "/lib/libc.so.6"},
                                      "/usr/bin/app", request, "");
  EXPECT_EQ(plan.malloc_object, "/lib/libc.so.6");
  request = {"tcmalloc", "tc_"};
  plan = plan_allocator({"/usr/bin/app", "/usr/lib/libtcmalloc.so.4", "/lib/libc.so.6"}, "/usr/bin/app",
                        request, "");
  EXPECT_EQ(plan.malloc_object, "/usr/lib/libtcmalloc.so.4");
  EXPECT_EQ(plan.symbol_prefix, "tc_");
}

std::vector<OutstandingAllocation> sample_allocations() {
  // address, size, timestamp (ns), stack id
  return {
      {0x1000, 100, 1'000'000'000, 7},  {0x2000, 300, 1'000'000'000, 7},
      {0x3000, 5000, 1'000'000'000, 9}, {0x4000, 50, 1'900'000'000, 7},  // young at now = 2 s with -o 500
      {0x5000, 64, 1'000'000'000, -1},
  };
}

TEST(MemleakReport, AggregatesByStackAndDropsYoungAllocations) {
  auto summaries = summarize_by_stack(sample_allocations(), 2'000'000'000, 500'000'000, nullptr);
  ASSERT_EQ(summaries.size(), 3u);
  std::map<int32_t, StackSummary> by_id;
  for (const auto& summary : summaries) by_id[summary.stack_id] = summary;
  EXPECT_EQ(by_id[7].bytes, 400u);
  EXPECT_EQ(by_id[7].count, 2u);
  EXPECT_EQ(by_id[7].allocations, (std::vector<size_t>{1, 0}));  // largest first
  EXPECT_EQ(by_id[9].bytes, 5000u);
  EXPECT_EQ(by_id[-1].bytes, 64u);  // stack not captured: still reported
  EXPECT_FALSE(by_id[7].scanned);
  // No age filter: the young block counts.
  auto all = summarize_by_stack(sample_allocations(), 2'000'000'000, 0, nullptr);
  uint64_t total = 0;
  for (const auto& summary : all) total += summary.bytes;
  EXPECT_EQ(total, 100u + 300 + 5000 + 50 + 64);
}

TEST(MemleakReport, LabelsEveryBlockLeakedOrReachable) {
  std::vector<BlockVerdict> verdicts = {BlockVerdict::Leaked, BlockVerdict::Reachable, BlockVerdict::Leaked,
                                        BlockVerdict::Leaked, BlockVerdict::Reachable};
  auto summaries = summarize_by_stack(sample_allocations(), 2'000'000'000, 0, &verdicts);
  for (const auto& summary : summaries) {
    EXPECT_TRUE(summary.scanned);
    EXPECT_EQ(summary.leaked_bytes + summary.reachable_bytes, summary.bytes);
    EXPECT_EQ(summary.leaked_count + summary.reachable_count, summary.count);
    if (summary.stack_id == 7) {
      EXPECT_EQ(summary.leaked_bytes, 150u);
      EXPECT_EQ(summary.reachable_bytes, 300u);
    }
  }
}

TEST(MemleakReport, OrdersBySizeOrCountAndKeepsTheTop) {
  auto summaries = summarize_by_stack(sample_allocations(), 2'000'000'000, 0, nullptr);
  order_and_truncate(summaries, StackOrder::Bytes, 2);
  ASSERT_EQ(summaries.size(), 2u);
  EXPECT_EQ(summaries[0].stack_id, 9);
  EXPECT_EQ(summaries[1].stack_id, 7);
  summaries = summarize_by_stack(sample_allocations(), 2'000'000'000, 0, nullptr);
  order_and_truncate(summaries, StackOrder::Count, 10);
  EXPECT_EQ(summaries[0].stack_id, 7);  // 3 allocations
}

TEST(MemleakReport, GrowingMeansRisingInEachOfTheLastIntervals) {
  GrowthTracker growth(3);
  growth.record({{1, 100}, {2, 100}});
  growth.record({{1, 200}, {2, 100}});
  growth.record({{1, 300}, {2, 200}});
  EXPECT_FALSE(growth.growing(1));  // three reports: only two rises so far
  growth.record({{1, 400}, {2, 300}, {3, 10}});
  EXPECT_TRUE(growth.growing(1));
  EXPECT_FALSE(growth.growing(2));  // flat once in the window
  EXPECT_FALSE(growth.growing(3));  // new: rose once
  growth.record({{1, 400}, {2, 400}, {3, 20}});
  EXPECT_FALSE(growth.growing(1));  // stopped rising
  EXPECT_TRUE(growth.growing(2));
  growth.record({{2, 500}, {3, 30}});
  EXPECT_FALSE(growth.growing(1));  // gone
  EXPECT_TRUE(growth.growing(2));
  EXPECT_TRUE(growth.growing(3));  // 0, 10, 20, 30
}

// Kernel stacks taken by tp_btf/raw_tp programs start with the program and its trampoline; the
// report starts at the allocating function.
TEST(MemleakKernelStacks, StartAtTheAllocatingFunctionNotTheProbe) {
  symbols::StackSymbolizer symbolizer;
  std::istringstream kallsyms(
      "ffffffff81000000 T _stext\n"
      "ffffffff81001000 T bpf_trace_run6\n"
      "ffffffff81001800 T __traceiter_kmalloc\n"
      "ffffffff81002000 T __kmalloc_cache_noprof\n"
      "ffffffff81003000 T alloc_pipe_info\n"
      "ffffffff81004000 T perf_trace_buf_alloc\n"
      "ffffffff81005000 T do_pipe2\n"
      "ffffffffc0001000 t bpf_prog_0123456789abcdef_memleak_kmalloc_btf\t[bpf]\n");
  symbolizer.load_kernel_symbols(kallsyms);
  auto names = [&](const std::vector<uint64_t>& addresses) {
    std::vector<std::string> functions;
    for (const auto& frame : symbolizer.kernel_frames(addresses)) functions.push_back(frame.function);
    return functions;
  };
  EXPECT_EQ(names({0xffffffffc0001040, 0xffffffff81001050, 0xffffffff81001860, 0xffffffff81002060,
                   0xffffffff81003070, 0xffffffff81005010}),
            (std::vector<std::string>{"__kmalloc_cache_noprof", "alloc_pipe_info", "do_pipe2"}));
  // Only the top is trimmed; a stack of nothing but machinery keeps its last frame.
  EXPECT_EQ(names({0xffffffff81002060, 0xffffffff81004010, 0xffffffff81005010}),
            (std::vector<std::string>{"__kmalloc_cache_noprof", "perf_trace_buf_alloc", "do_pipe2"}));
  EXPECT_EQ(names({0xffffffffc0001040, 0xffffffff81001050}), (std::vector<std::string>{"bpf_trace_run6"}));
  EXPECT_TRUE(symbols::is_tracing_machinery("bpf_prog_0123456789abcdef_faults_tp_btf"));
  EXPECT_FALSE(symbols::is_tracing_machinery("kmem_cache_alloc_noprof"));
}

// A stack that could not be captured is one "[stack lost]" frame in every format, never no frame.
TEST(MemleakKernelStacks, LostStackIsShownAsSuch) {
  symbols::StackSymbolizer symbolizer;
  output::StackReport report;
  report.name = "outstanding_allocations";
  output::StackEntry entry;
  entry.comm = "leak_kpipes";
  entry.weight = 262144;
  entry.heading = "262144 bytes in 256 allocations from stack";
  entry.stack.lost = true;
  report.entries.push_back(entry);
  auto render = [&](output::Format format) {
    char* buffer = nullptr;
    size_t size = 0;
    FILE* stream = open_memstream(&buffer, &size);
    auto sink = output::make_sink({format, false, stream}, symbolizer);
    sink->stacks(report);
    std::fclose(stream);
    std::string text(buffer, size);
    free(buffer);
    return text;
  };
  EXPECT_EQ(render(output::Format::Text), "\t262144 bytes in 256 allocations from stack\n\t\t[stack lost]\n");
  EXPECT_EQ(render(output::Format::Folded), "leak_kpipes;[stack lost] 262144\n");
  EXPECT_NE(render(output::Format::Json).find(R"("frames":[{"address":0,"function":"[stack lost]")"),
            std::string::npos)
      << render(output::Format::Json);
}

}  // namespace
}  // namespace memscope::memleak
