// swapin needs fentry or a kprobe on swap_read_folio (swap_readpage before the folio conversion);
// no tracepoint fires on swap-in. On a kernel with neither, it must refuse with the resolver's
// reasons and doctor must show the same. Counting real swap-ins needs swap and those hooks: the VM
// tier (Debian 6.1, swap disk) covers it.
#include <gtest/gtest.h>
#include <unistd.h>

#include "harness.hpp"

namespace memscope::test {
namespace {

// A hook kind's status as doctor reports it ("available" / "unavailable").
std::string doctor_feature_status(const std::vector<nlohmann::json>& doctor, const std::string& feature) {
  for (const auto& record : doctor)
    if (record["event"] == "kernel_feature" && record["feature"] == feature) return record["status"];
  return "";
}

TEST(Swapin, RefusesWithoutFentryAndKprobesAndSaysWhatIsMissing) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished doctor_run = run({memscope_binary(), "doctor", "--json"});
  ASSERT_EQ(doctor_run.exit_code, 0) << doctor_run.err;
  auto doctor = json_lines(doctor_run.out);
  if (doctor_feature_status(doctor, "fentry") != "unavailable" ||
      doctor_feature_status(doctor, "kprobe") != "unavailable")
    GTEST_SKIP() << "skipped: this kernel has fentry or kprobes, so swapin runs here (the VM tier tests it)";

  Finished result = run({memscope_binary(), "swapin"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.out, "");
  ASSERT_EQ(lines(result.err).size(), 1u) << result.err;
  EXPECT_EQ(result.err.rfind("memscope swapin: no usable hook for swap-in (swap_read_folio): ", 0), 0u)
      << result.err;
  EXPECT_NE(result.err.find("fentry: fentry programs are refused by this kernel"), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("kprobe: kprobes are not built into this kernel"), std::string::npos)
      << result.err;

  // doctor gives the same answer, from the same resolver.
  bool listed = false;
  for (const auto& record : doctor) {
    if (record["event"] != "tool_probe" || record["tool"] != "swapin") continue;
    listed = true;
    EXPECT_EQ(record["event"], "tool_probe");
    EXPECT_EQ(record["status"], "unavailable") << record;
    std::string lacks = record["hook"];
    EXPECT_NE(result.err.find(lacks), std::string::npos) << lacks << " vs " << result.err;
  }
  EXPECT_TRUE(listed) << doctor_run.out;
}

}  // namespace
}  // namespace memscope::test
