// memscope serve's pure parts: the Prometheus text writer, the config and web config validation,
// bcrypt checks and the Authorization header's base64.
#include <crypt.h>
#include <gtest/gtest.h>

#include "tools/serve/exposition.hpp"
#include "tools/serve/http_endpoint.hpp"
#include "tools/serve/serve_config.hpp"

namespace memscope::serve {
namespace {

TEST(Exposition, EscapesLabelValuesAndHelp) {
  MetricFamily family{"memscope_x_total", "a \\ help\nline", MetricType::Counter};
  family.add({{"comm", "a\"b\\c\nd"}}, 3);
  EXPECT_EQ(render({family}),
            "# HELP memscope_x_total a \\\\ help\\nline\n# TYPE memscope_x_total counter\n"
            "memscope_x_total{comm=\"a\\\"b\\\\c\\nd\"} 3\n");
}

// log2 bucket i counts [2^(i-1), 2^i) ns: with le = 2^b ns, buckets 0..b are below it.
TEST(Exposition, Log2HistogramIsCumulativeAndCountMatchesInf) {
  MetricFamily family{"h_seconds", "h", MetricType::Histogram};
  std::vector<uint64_t> buckets(64, 0);
  buckets[0] = 1;   // 0 ns
  buckets[11] = 2;  // [1024, 2048) ns
  buckets[40] = 5;  // beyond 2^12 ns
  family.add_log2_ns_histogram({{"kind", "direct"}}, buckets, 5000, 10, 12);
  std::string text = render({family});
  EXPECT_NE(text.find("h_seconds_bucket{kind=\"direct\",le=\"1.024e-06\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{kind=\"direct\",le=\"2.048e-06\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{kind=\"direct\",le=\"4.096e-06\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{kind=\"direct\",le=\"+Inf\"} 8\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_count{kind=\"direct\"} 8\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_sum{kind=\"direct\"} 5e-06\n"), std::string::npos) << text;
}

TEST(ServeConfig, DefaultsFromAnEmptyFile) {
  std::vector<std::string> errors;
  ServeConfig config = parse_serve_config("", "c.yml", errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(config.listen, "127.0.0.1:9477");
  EXPECT_TRUE(config.collectors.empty());  // every collector
}

TEST(ServeConfig, OneLinePerErrorWithItsLine) {
  std::vector<std::string> errors;
  parse_serve_config("listen: nowhere\ncollectors: [faults, faults]\nlimits:\n  oom_series: 1.5\n", "c.yml", errors);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], "c.yml:1: listen address 'nowhere' must be ADDR:PORT (e.g. 127.0.0.1:9477)");
  EXPECT_EQ(errors[1], "c.yml:2: collector 'faults' listed twice");
  EXPECT_EQ(errors[2], "c.yml:4: limits.oom_series must be a whole number, not '1.5'");
  for (const auto& error : errors) EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST(ServeConfig, HeapTargets) {
  std::vector<std::string> errors;
  ServeConfig config = parse_serve_config(
      "heap_profiles:\n  targets:\n    - comm: redis-server\n    - cgroup: /sys/fs/cgroup/app\n"
      "    - pid: 3\n    - comm: a-command-name-too-long\n  sample_every: 100\n",
      "c.yml", errors);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].rfind("c.yml:5: a heap target is {comm: NAME}", 0), 0u) << errors[0];
  EXPECT_EQ(errors[1].rfind("c.yml:6: a heap target is {comm: NAME}", 0), 0u) << errors[1];
  ASSERT_EQ(config.heap_targets.size(), 2u);
  EXPECT_EQ(config.heap_targets[0].comm, "redis-server");
  EXPECT_EQ(config.heap_targets[1].cgroup, "/sys/fs/cgroup/app");
  EXPECT_EQ(config.heap_sample_every, 100u);
}

TEST(ServeConfig, ListenAddresses) {
  std::string host, error;
  int port = 0;
  EXPECT_TRUE(split_listen_address("[::1]:9477", host, port, error));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 9477);
  EXPECT_FALSE(split_listen_address("127.0.0.1:70000", host, port, error));
  EXPECT_FALSE(split_listen_address(":80", host, port, error));
}

TEST(WebConfig, RelativePathsAndBcryptUsers) {
  std::vector<std::string> errors;
  WebConfig web = parse_web_config("basic_auth_users:\n  alice: $2y$10$abcdefghijklmnopqrstuu\n  bob: secret\n"
                                   "http_server_config:\n  http2: true\n",
                                   "w.yml", "/etc/memscope", errors);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("w.yml:3: the password of 'bob' must be a bcrypt hash"), std::string::npos) << errors[0];
  EXPECT_EQ(errors[1], "w.yml:4: http_server_config is not supported by memscope");
  EXPECT_EQ(web.basic_auth_users.count("alice"), 1u);
}

TEST(WebConfig, PasswordMatchesItsBcryptHashOnly) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  ASSERT_NE(crypt_gensalt_rn("$2y$", 4, nullptr, 0, salt, sizeof(salt)), nullptr);
  crypt_data data{};
  std::string hash = crypt_r("hunter2", salt, &data);
  EXPECT_TRUE(password_matches("hunter2", hash));
  EXPECT_FALSE(password_matches("hunter3", hash));
  EXPECT_FALSE(password_matches("hunter2", "$2y$04$notavalidhash"));
}

TEST(Base64, DecodesAndRejects) {
  EXPECT_EQ(decode_base64("YWxpY2U6cHc="), "alice:pw");
  EXPECT_EQ(decode_base64("YWI="), "ab");
  EXPECT_EQ(decode_base64("YWJj"), "abc");
  EXPECT_FALSE(decode_base64("YW=j").has_value());
  EXPECT_FALSE(decode_base64("abc").has_value());
}

}  // namespace
}  // namespace memscope::serve
