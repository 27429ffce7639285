// memscope serve, scraped by the real things: Debian's prometheus scrapes it while a memory cgroup
// OOM-kills a process and reclaims; promtool checks the exposition; go tool pprof reads the kmem
// profile; curl checks TLS and basic auth; bad configurations get one line per error.
#include <arpa/inet.h>
#include <crypt.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "cgroup_fixture.hpp"
#include "harness.hpp"
#include "reclaim_workload.hpp"

namespace memscope::test {
namespace {

using namespace std::chrono_literals;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A port free right now on loopback, for prometheus's own listener.
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return ntohs(address.sin_port);
}

// The BPF programs a process holds (prog_id of its descriptors' fdinfo).
std::vector<int> bpf_programs_of(pid_t pid) {
  std::vector<int> ids;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fdinfo", error)) {
    std::ifstream info(entry.path());
    for (std::string line; std::getline(info, line);)
      if (line.rfind("prog_id:", 0) == 0) ids.push_back(std::stoi(line.substr(8)));
  }
  return ids;
}

// Those of `ids` still loaded, after waiting up to 5 s for the kernel to free them (RCU).
std::vector<int> still_loaded(const std::vector<int>& ids) {
  std::vector<int> loaded;
  for (int attempt = 0; attempt < 50; attempt++) {
    loaded.clear();
    for (int id : ids)
      if (run({"/usr/sbin/bpftool", "prog", "show", "id", std::to_string(id)}).exit_code == 0) loaded.push_back(id);
    if (loaded.empty()) break;
    std::this_thread::sleep_for(100ms);
  }
  return loaded;
}

struct TempDirectory {
  std::string path;
  TempDirectory() {
    std::string pattern = ::testing::TempDir() + "memscope-serve-XXXXXX";
    if (mkdtemp(pattern.data())) path = pattern;
  }
  ~TempDirectory() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove_all(path, ignored);
  }
};

// The harness execs without a PATH search.
std::string program(const std::string& name) {
  for (const char* directory : {"/usr/bin/", "/usr/sbin/", "/bin/", "/usr/local/bin/"})
    if (access((std::string(directory) + name).c_str(), X_OK) == 0) return directory + name;
  return name;
}

struct HttpResult {
  int status = 0;
  std::string body;
  std::string error;
};

// curl, no shell: `extra` are curl options (TLS, credentials).
HttpResult http_get(const std::string& url, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {program("curl"), "-sS", "--max-time", "20", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  Finished done = run(argv, 30s);
  HttpResult result;
  result.error = done.err;
  size_t newline = done.out.rfind('\n');
  if (newline == std::string::npos) return result;
  result.body = done.out.substr(0, newline);
  result.status = std::atoi(done.out.c_str() + newline + 1);
  return result;
}

// memscope serve on an ephemeral loopback port.
class Agent {
 public:
  explicit Agent(std::vector<std::string> args) {
    bool has_listen = false;
    for (const auto& arg : args) has_listen |= arg == "--listen";
    if (!has_listen) args.insert(args.begin(), {"--listen", "127.0.0.1:0"});
    tracer_ = std::make_unique<Tracer>("serve", args);
    std::smatch match;
    static const std::regex serving(R"(Serving on (https?)://127\.0\.0\.1:(\d+)/)");
    if (std::regex_search(tracer_->err(), match, serving)) {
      base_url_ = match[1].str() + "://127.0.0.1:" + match[2].str();
      port_ = std::stoi(match[2].str());
    }
  }
  bool ok() const { return port_ > 0; }
  const std::string& url() const { return base_url_; }
  int port() const { return port_; }
  Tracer& tracer() { return *tracer_; }
  Finished stop() { return tracer_->stop(); }

 private:
  std::unique_ptr<Tracer> tracer_;
  std::string base_url_;
  int port_ = 0;
};

// Debian's prometheus scraping `target` every second.
class Prometheus {
 public:
  Prometheus(const std::string& directory, const std::string& target) {
    port_ = free_port();
    write_text(directory + "/prometheus.yml",
               "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
               "scrape_configs:\n  - job_name: memscope\n    static_configs:\n      - targets: ['" +
                   target + "']\n");
    child_ = std::make_unique<Child>(std::vector<std::string>{
        program("prometheus"), "--config.file=" + directory + "/prometheus.yml", "--storage.tsdb.path=" + directory + "/data",
        "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"});
    for (int i = 0; i < 100 && !ready_; i++) {
      ready_ = http_get(url() + "/-/ready").status == 200;
      if (!ready_) std::this_thread::sleep_for(200ms);
    }
  }
  ~Prometheus() {
    child_->signal(SIGTERM);
    child_->finish(20s);
  }
  bool ready() const { return ready_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return child_->err(); }

  // The instant vector of a PromQL query (empty on error), evaluated now or at `at` (Unix seconds):
  // series that one scrape wrote are compared at one evaluation time, or a scrape between two
  // queries moves one of them.
  nlohmann::json query(const std::string& promql, const std::string& at = "") {
    std::vector<std::string> args = {"-G", "--data-urlencode", "query=" + promql};
    if (!at.empty()) args.insert(args.end(), {"--data-urlencode", "time=" + at});
    HttpResult result = http_get(url() + "/api/v1/query", args);
    if (result.status != 200) return nlohmann::json::array();
    auto reply = nlohmann::json::parse(result.body, nullptr, false);
    if (reply.is_discarded() || reply["status"] != "success") return nlohmann::json::array();
    return reply["data"]["result"];
  }
  // Waits until the query returns at least one series whose value satisfies `done`.
  nlohmann::json wait_for(const std::string& promql, const std::function<bool(double)>& done,
                          std::chrono::seconds timeout = 30s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    nlohmann::json series;
    while (std::chrono::steady_clock::now() < deadline) {
      series = query(promql);
      for (const auto& each : series)
        if (done(std::stod(each["value"][1].get<std::string>()))) return series;
      std::this_thread::sleep_for(500ms);
    }
    return series;
  }

 private:
  int port_ = 0;
  bool ready_ = false;
  std::unique_ptr<Child> child_;
};

// memory.events (v2) or memory.oom_control (v1): the kernel's own count of OOM kills in the cgroup.
uint64_t cgroup_oom_kills(const std::string& directory) {
  for (const char* file : {"/memory.events", "/memory.oom_control"}) {
    std::ifstream in(directory + file);
    std::string key;
    uint64_t value;
    while (in >> key >> value)
      if (key == "oom_kill") return value;
  }
  return 0;
}

double metric_value(const std::string& exposition, const std::string& series) {
  for (const auto& line : lines(exposition))
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

std::string write_config(const std::string& directory, const std::string& text) {
  std::string path = directory + "/serve.yml";
  write_text(path, text);
  return path;
}

TEST(ServePrometheus, ScrapesOomKillsAndMemcgReclaimOfASmallCgroup) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDirectory temp;
  ASSERT_FALSE(temp.path.empty());
  std::string config = write_config(temp.path, "refresh_interval: 0.5\nseries_retention: 3\n");
  Agent agent({"--config", config});
  ASSERT_TRUE(agent.ok()) << agent.tracer().err();
  Prometheus prometheus(temp.path, agent.url().substr(strlen("http://")));
  ASSERT_TRUE(prometheus.ready()) << prometheus.log();
  // Up, and every collector attached on this kernel.
  auto up = prometheus.wait_for("up{job=\"memscope\"}", [](double v) { return v == 1; });
  ASSERT_EQ(up.size(), 1u) << up.dump() << prometheus.log();
  auto collectors = prometheus.wait_for("memscope_collector_up", [](double) { return true; });
  // Every collector has its series; one this kernel cannot run (swapin without fentry and kprobes)
  // says why, and the others go on. The two this test needs run.
  EXPECT_EQ(collectors.size(), 7u) << collectors.dump();
  for (const auto& series : collectors) {
    std::string name = series["metric"]["collector"];
    bool running = series["value"][1] == "1";
    if (name == "oomkill" || name == "reclaim") {
      EXPECT_TRUE(running) << series.dump();
    }
    if (!running) {
      EXPECT_FALSE(series["metric"].value("reason", "").empty()) << series.dump();
    }
  }

  // The reclaim count before the workload (other memcgs of this host may reclaim too).
  auto before = prometheus.query("memscope_reclaim_duration_seconds_count{kind=\"memcg\"}");
  ASSERT_EQ(before.size(), 1u) << before.dump();
  double memcg_reclaims_before = std::stod(before[0]["value"][1].get<std::string>());

  std::string memcg;
  std::string cgroup_directory;
  {
    MemoryCgroup cgroup("memscope-serve-oom-" + std::to_string(getpid()), 48ULL << 20);
    if (!cgroup.ok()) GTEST_SKIP() << "skipped: " << cgroup.error();
    memcg = cgroup.relative_path();
    cgroup_directory = cgroup.directory();
    Child victim({testprog("oom_victim"), cgroup.procs_file(), "512"});
    Finished victim_result = victim.finish(60s);
    ASSERT_EQ(victim_result.exit_code, 128 + 9) << victim_result.out << victim_result.err;
    uint64_t kernel_count = cgroup_oom_kills(cgroup.directory());
    ASSERT_GE(kernel_count, 1u);
    std::string promql = "memscope_oom_kills_total{memcg=\"" + memcg + "\"}";
    auto kills = prometheus.wait_for(promql, [&](double v) { return v == static_cast<double>(kernel_count); });
    ASSERT_EQ(kills.size(), 1u) << kills.dump() << "\n" << http_get(agent.url() + "/metrics").body;
    EXPECT_EQ(kills[0]["metric"]["victim_comm"], "oom_victim");
    EXPECT_EQ(kills[0]["value"][1], std::to_string(kernel_count));

    // 200 MiB of page cache through a 64 MiB cgroup: memcg reclaim.
    ReclaimWorkload reclaim("memscope-serve-reclaim", "200");
    if (!reclaim.skip_reason.empty()) GTEST_SKIP() << "skipped: " << reclaim.skip_reason;
    reclaim.child->write_stdin("go\n");
    Finished work = reclaim.child->finish(120s);
    ASSERT_EQ(work.exit_code, 0) << work.out << work.err;
    auto after = prometheus.wait_for("memscope_reclaim_duration_seconds_count{kind=\"memcg\"}",
                                     [&](double v) { return v > memcg_reclaims_before; });
    ASSERT_EQ(after.size(), 1u);
    EXPECT_GT(std::stod(after[0]["value"][1].get<std::string>()), memcg_reclaims_before) << after.dump();
    // The histogram is whole: +Inf equals the count, and time was spent. One query reads all three
    // from the same scrape, at the instant the query above saw the reclaims (at a whole second, as
    // before, it could precede the scrape that brought them: then all three were 0 on a machine
    // whose memcgs had never reclaimed; in three queries, a scrape could land between two).
    std::string at = after[0]["value"][0].dump();
    auto histogram = prometheus.query(
        "{__name__=~\"memscope_reclaim_duration_seconds_(bucket|count|sum)\",kind=\"memcg\",le=~\"[+]Inf|\"}", at);
    std::map<std::string, std::string> value_of;  // by the part of the name after "seconds_"
    for (const auto& series : histogram) {
      std::string name = series["metric"]["__name__"];
      value_of[name.substr(name.rfind('_') + 1)] = series["value"][1];
    }
    ASSERT_EQ(value_of.size(), 3u) << histogram.dump() << " at " << at;
    EXPECT_EQ(value_of["bucket"], value_of["count"]);
    EXPECT_GT(std::stod(value_of["count"]), memcg_reclaims_before);
    EXPECT_GT(std::stod(value_of["sum"]), 0.0);
  }
  // The cgroup is gone: its series leaves /metrics after the retention (3 s).
  EXPECT_FALSE(std::filesystem::exists(cgroup_directory));
  bool removed = false;
  for (int i = 0; i < 40 && !removed; i++) {
    removed = http_get(agent.url() + "/metrics").body.find("memcg=\"" + memcg + "\"") == std::string::npos;
    if (!removed) std::this_thread::sleep_for(250ms);
  }
  EXPECT_TRUE(removed) << http_get(agent.url() + "/metrics").body;

  std::vector<int> programs = bpf_programs_of(agent.tracer().pid());
  EXPECT_GE(programs.size(), 10u);
  Finished stopped = agent.stop();
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(still_loaded(programs), std::vector<int>()) << "BPF programs left after memscope serve exited";
}

TEST(ServeMetrics, PromtoolAcceptsTheExposition) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Agent agent({});
  ASSERT_TRUE(agent.ok()) << agent.tracer().err();
  HttpResult metrics = http_get(agent.url() + "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.error;
  Child promtool({program("promtool"), "check", "metrics"}, /*capture_stdin=*/true);
  promtool.write_stdin(metrics.body + "\n");
  Finished checked = promtool.finish(30s);
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err << "\n" << metrics.body;
  EXPECT_EQ(checked.out + checked.err, "") << "promtool found problems";
  // The families of every running collector are there; a collector this kernel cannot run (swapin
  // needs fentry or kprobes) has no family, and its memscope_collector_up says why.
  std::map<std::string, std::vector<std::string>> families = {
      {"oomkill", {"memscope_oom_kills_total"}},
      {"reclaim", {"memscope_reclaim_duration_seconds"}},
      {"faults", {"memscope_page_faults_total"}},
      {"swapin", {"memscope_swapins_total"}},
      {"compact", {"memscope_compaction_stalls_total", "memscope_compactions_total"}},
      {"migrate", {"memscope_page_migrations_total"}},
      {"kmem", {"memscope_kernel_outstanding_bytes", "memscope_kernel_outstanding_allocations"}},
      {"", {"memscope_drops_total", "memscope_cpu_seconds_total", "memscope_resident_memory_bytes"}},
  };
  for (const auto& [collector, names] : families) {
    bool running = collector.empty() ||
                   metrics.body.find("memscope_collector_up{collector=\"" + collector + "\",reason=\"\"} 1\n") !=
                       std::string::npos;
    if (!running) {
      EXPECT_NE(metrics.body.find("memscope_collector_up{collector=\"" + collector + "\",reason=\"no usable hook"),
                std::string::npos) << collector << "\n" << metrics.body;
    }
    for (const auto& family : names)
      EXPECT_EQ(metrics.body.find("# TYPE " + family + " ") != std::string::npos, running) << family;
  }
  EXPECT_EQ(http_get(agent.url() + "/healthz").body, "ok\n");
  EXPECT_NE(http_get(agent.url() + "/").body.find("/debug/pprof/kmem"), std::string::npos);
  EXPECT_EQ(http_get(agent.url() + "/nothing-here").status, 404);
  // A body is never accepted (every endpoint is a GET); the agent goes on serving.
  EXPECT_NE(http_get(agent.url() + "/metrics", {"-X", "POST", "--data-binary", std::string(100000, 'x')}).status, 200);
  EXPECT_EQ(http_get(agent.url() + "/healthz").status, 200);
  Finished stopped = agent.stop();
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
}

// Page faults the test takes itself are counted: the counter rises by at least that many between
// two scrapes (other processes fault too).
TEST(ServeMetrics, CountsThePageFaultsOfAProcess) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDirectory temp;
  std::string config = write_config(temp.path, "refresh_interval: 0.2\n");
  Agent agent({"--config", config});
  ASSERT_TRUE(agent.ok()) << agent.tracer().err();
  std::this_thread::sleep_for(500ms);
  double before = metric_value(http_get(agent.url() + "/metrics").body, "memscope_page_faults_total{mode=\"user\"}");
  ASSERT_GE(before, 0);
  const size_t pages = 20000;
  Child touch({testprog("fault_touch"), "anon", std::to_string(pages)}, /*capture_stdin=*/true);
  ASSERT_TRUE(touch.wait_for("pid ", 10s, /*in_stdout=*/true)) << touch.err();
  touch.write_stdin("go\n");
  ASSERT_TRUE(touch.wait_for("touched", 30s, /*in_stdout=*/true)) << touch.err();
  touch.finish(10s);
  std::this_thread::sleep_for(600ms);
  double after = metric_value(http_get(agent.url() + "/metrics").body, "memscope_page_faults_total{mode=\"user\"}");
  EXPECT_GE(after - before, static_cast<double>(pages)) << before << " -> " << after;
  agent.stop();
}

TEST(ServePprof, GoToolPprofReadsTheKernelAllocationProfile) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDirectory temp;
  Agent agent({});
  ASSERT_TRUE(agent.ok()) << agent.tracer().err();
  // Kernel memory a process holds: pipes, each a pipe_inode_info and its buffer array (kmalloc in
  // alloc_pipe_info) and a page of data.
  Child holder({testprog("leak_kpipes"), "256"}, /*capture_stdin=*/true);
  ASSERT_TRUE(holder.wait_for("holding 256 pipes", 10s)) << holder.err();
  std::this_thread::sleep_for(1500ms);
  std::string profile = temp.path + "/kmem.pb.gz";
  HttpResult fetched = http_get(agent.url() + "/debug/pprof/kmem", {"-o", profile});
  holder.write_stdin("release\n");
  ASSERT_EQ(fetched.status, 200) << fetched.error;
  Finished top = run({program("go"), "tool", "pprof", "-traces", "-sample_index=bytes", profile}, 120s);
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_NE(top.out.find("alloc_pipe_info"), std::string::npos) << top.out.substr(0, 4000);
  EXPECT_NE(top.out.find("do_pipe2"), std::string::npos) << top.out.substr(0, 4000);
  holder.finish(10s);
  // The same memory as a metric: alloc_pipe_info among the call sites with outstanding bytes.
  std::string metrics = http_get(agent.url() + "/metrics").body;
  EXPECT_NE(metrics.find("memscope_kernel_outstanding_bytes{call_site=\"other\"}"), std::string::npos);
  agent.stop();
}

// A bcrypt hash made with libcrypt, as htpasswd -B would.
std::string bcrypt(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!crypt_gensalt_rn("$2b$", 5, nullptr, 0, salt, sizeof(salt))) return "";
  crypt_data data{};
  const char* hash = crypt_r(password.c_str(), salt, &data);
  return hash ? hash : "";
}

TEST(ServeWeb, TlsAndBasicAuthFromAWebConfigFile) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDirectory temp;
  Finished certificate = run({program("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                              "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                              temp.path + "/key.pem", "-out", temp.path + "/cert.pem"});
  ASSERT_EQ(certificate.exit_code, 0) << certificate.err;
  std::string hash = bcrypt("right horse");
  ASSERT_EQ(hash.rfind("$2b$", 0), 0u);
  write_text(temp.path + "/web.yml", "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
                                     "basic_auth_users:\n  alice: '" + hash + "'\n");
  Agent agent({"--web-config", temp.path + "/web.yml"});
  ASSERT_TRUE(agent.ok()) << agent.tracer().err();
  ASSERT_EQ(agent.url().rfind("https://", 0), 0u) << agent.url();
  std::vector<std::string> tls = {"--cacert", temp.path + "/cert.pem"};
  auto with = [&](std::vector<std::string> more) {
    more.insert(more.begin(), tls.begin(), tls.end());
    return more;
  };
  HttpResult right = http_get(agent.url() + "/metrics", with({"-u", "alice:right horse"}));
  EXPECT_EQ(right.status, 200) << right.error;
  EXPECT_NE(right.body.find("memscope_oom_kills_total"), std::string::npos);
  EXPECT_EQ(http_get(agent.url() + "/metrics", with({"-u", "alice:wrong"})).status, 401);
  EXPECT_EQ(http_get(agent.url() + "/metrics", with({"-u", "bob:right horse"})).status, 401);
  EXPECT_EQ(http_get(agent.url() + "/metrics", with({})).status, 401);
  EXPECT_EQ(http_get(agent.url() + "/debug/pprof/kmem", with({"-u", "alice:wrong"})).status, 401);
  // Plain HTTP to the TLS port gets nothing.
  std::string plain = "http://" + agent.url().substr(strlen("https://"));
  EXPECT_NE(http_get(plain + "/metrics", {"-u", "alice:right horse"}).status, 200);
  Finished stopped = agent.stop();
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
}

TEST(ServeConfig, EveryErrorIsOneLineAndNothingIsLoaded) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDirectory temp;
  std::string config = write_config(temp.path,
                                    "collectors: [oomkill, nosuch]\n"
                                    "refresh_interval: -1\n"
                                    "limits:\n  kmem_call_sites: 0\n  bogus: 3\n"
                                    "colour: blue\n");
  Finished result = run({memscope_binary(), "serve", "--config", config});
  EXPECT_EQ(result.exit_code, 1);
  auto errors = lines(result.err);
  ASSERT_EQ(errors.size(), 5u) << result.err;
  EXPECT_NE(result.err.find(config + ":1: unknown collector 'nosuch'"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find(config + ":2: refresh_interval (seconds) must be a number from 0.1 to 3600, not '-1'"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find(config + ":4: limits.kmem_call_sites must be a number from 1 to 1000, not '0'"),
            std::string::npos) << result.err;
  EXPECT_NE(result.err.find(config + ":5: unknown limit 'bogus'"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find(config + ":6: unknown setting 'colour'"), std::string::npos) << result.err;
  for (const auto& line : errors) EXPECT_EQ(line.rfind("memscope serve: ", 0), 0u) << line;

  write_text(temp.path + "/broken.yml", "collectors: [oomkill\n");
  Finished broken = run({memscope_binary(), "serve", "--config", temp.path + "/broken.yml"});
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_EQ(lines(broken.err).size(), 1u) << broken.err;
  EXPECT_NE(broken.err.find("not valid YAML"), std::string::npos) << broken.err;

  Finished listen = run({memscope_binary(), "serve", "--listen", "localhost"});
  EXPECT_EQ(listen.exit_code, 1);
  EXPECT_EQ(lines(listen.err).size(), 1u) << listen.err;

  write_text(temp.path + "/web.yml", "basic_auth_users:\n  alice: plaintext\n");
  Finished web = run({memscope_binary(), "serve", "--web-config", temp.path + "/web.yml"});
  EXPECT_EQ(web.exit_code, 1);
  EXPECT_NE(web.err.find("must be a bcrypt hash"), std::string::npos) << web.err;
  // Nothing is loaded: not one bpf() call of memscope under strace.
  Finished traced = run({program("strace"), "-f", "-e", "trace=bpf", "-o", temp.path + "/strace.txt", memscope_binary(),
                         "serve", "--config", config});
  EXPECT_EQ(traced.exit_code, 1) << traced.err;
  std::string calls = read_text(temp.path + "/strace.txt");
  EXPECT_EQ(calls.find("bpf("), std::string::npos) << calls;

  Finished check = run({memscope_binary(), "serve", "--config", write_config(temp.path, "collectors: [oomkill]\n"),
                        "--check-config"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
}

// Without --listen the agent is reachable on loopback only (the listening socket is 127.0.0.1).
TEST(ServeDefaults, BindsToLoopbackByDefault) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDirectory temp;
  Tracer agent("serve", {"--config", write_config(temp.path, "collectors: [oomkill]\n")});
  ASSERT_NE(agent.err().find("Serving on http://127.0.0.1:9477/"), std::string::npos) << agent.err();
  // /proc/net/tcp: local address 0100007F:2505 (127.0.0.1:9477) in state 0A (LISTEN), and no
  // listener on another address with that port.
  std::string tcp = read_text("/proc/net/tcp") + read_text("/proc/net/tcp6");
  bool loopback = false, elsewhere = false;
  for (const auto& line : lines(tcp)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    if (!(fields >> slot >> local >> remote >> state) || state != "0A") continue;
    if (local.size() < 5 || local.substr(local.size() - 5) != ":2505") continue;
    (local == "0100007F:2505" ? loopback : elsewhere) = true;
  }
  EXPECT_TRUE(loopback) << tcp;
  EXPECT_FALSE(elsewhere) << tcp;
  agent.stop();
}

}  // namespace
}  // namespace memscope::test

namespace memscope::test {
namespace {

// deploy/systemd/memscope.service passes `systemd-analyze verify` (with the binary and config
// paths pointed at this build), and the capabilities it leaves (CapabilityBoundingSet) are enough:
// memscope serve run with only those attaches every collector this kernel offers the tools.
TEST(ServeDeploy, SystemdUnitVerifiesAndItsCapabilitiesSuffice) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDirectory temp;
  std::string unit = read_text(std::string(MEMSCOPE_SOURCE_DIR) + "/deploy/systemd/memscope.service");
  ASSERT_FALSE(unit.empty());
  std::string config = write_config(temp.path, "collectors: [oomkill, reclaim, faults, kmem]\n");
  auto replace_all = [](std::string text, const std::string& from, const std::string& to) {
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
      text.replace(at, from.size(), to);
    return text;
  };
  std::string local = replace_all(replace_all(unit, "/usr/local/bin/memscope", memscope_binary()),
                                  "/etc/memscope/serve.yml", config);
  write_text(temp.path + "/memscope.service", local);
  Finished verified = run({program("systemd-analyze"), "verify", temp.path + "/memscope.service"});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_EQ(verified.out + verified.err, "");

  std::smatch match;
  ASSERT_TRUE(std::regex_search(unit, match, std::regex("\nCapabilityBoundingSet=([^\n]*)\n")));
  std::string bounding = "-all";
  std::istringstream names(match[1].str());
  for (std::string name; names >> name;) {
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bounding += ",+" + name.substr(strlen("cap_"));
  }
  Child agent({program("setpriv"), "--bounding-set", bounding, memscope_binary(), "serve", "--config", config,
               "--listen", "127.0.0.1:0"});
  ASSERT_TRUE(agent.wait_for("Hit Ctrl-C", 30s)) << agent.err();
  ASSERT_TRUE(std::regex_search(agent.err(), match, std::regex(R"(Serving on http://(127\.0\.0\.1:\d+)/)")));
  std::string url = "http://" + match[1].str();
  std::string metrics = http_get(url + "/metrics").body;
  for (const char* collector : {"oomkill", "reclaim", "faults", "kmem"})
    EXPECT_NE(metrics.find("memscope_collector_up{collector=\"" + std::string(collector) + "\",reason=\"\"} 1"),
              std::string::npos) << collector << " with " << bounding << ":\n" << metrics;
  // Kernel frames are named: /proc/kallsyms shows addresses with CAP_SYSLOG.
  std::string profile = temp.path + "/kmem.pb.gz";
  ASSERT_EQ(http_get(url + "/debug/pprof/kmem", {"-o", profile}).status, 200);
  Finished top = run({program("go"), "tool", "pprof", "-top", profile}, 120s);
  EXPECT_NE(top.out.find("do_syscall_64"), std::string::npos) << top.out.substr(0, 3000);
  agent.signal(SIGINT);
  Finished stopped = agent.finish(20s);
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
}

}  // namespace
}  // namespace memscope::test

namespace memscope::test {
namespace {

struct ProcessSample {
  uint64_t rss_kib = 0;
  double cpu_s = 0;
};

// The agent as the kernel sees it: VmRSS from /proc/PID/status, utime+stime from /proc/PID/stat.
ProcessSample sample_process(pid_t pid) {
  ProcessSample sample;
  sample.rss_kib = rss_kib(pid);
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; fields >> field; i++) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) {
      stime = std::stoull(field);
      break;
    }
  }
  sample.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return sample;
}

size_t series_count(const std::string& exposition) {
  size_t count = 0;
  for (const auto& line : lines(exposition))
    if (!line.empty() && line[0] != '#') count++;
  return count;
}

// Scrapes every second while workloads come and go: every 10 s a fresh memory cgroup OOM-kills a
// process and is removed, every 5 s a process takes 20,000 page faults and exits. The agent's RSS
// and series count stay bounded (the vanished cgroups' series expire after series_retention).
// MEMSCOPE_SERVE_SOAK_SECONDS sets the length (default 60 s; docs/serve.md has a 30-minute run).
TEST(ServeSoak, ScrapesEverySecondWhileWorkloadsComeAndGo) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  const char* seconds_text = getenv("MEMSCOPE_SERVE_SOAK_SECONDS");
  const int seconds = seconds_text ? std::max(30, std::atoi(seconds_text)) : 60;
  TempDirectory temp;
  Agent agent({"--config", write_config(temp.path, "series_retention: 5\n")});
  ASSERT_TRUE(agent.ok()) << agent.tracer().err();
  pid_t agent_pid = agent.tracer().pid();

  struct Point {
    ProcessSample process;
    size_t series = 0;
    size_t oom_series = 0;
  };
  std::vector<Point> points;
  int failed_scrapes = 0, oom_kills = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < seconds; i++) {
    HttpResult scraped = http_get(agent.url() + "/metrics");
    if (scraped.status != 200) failed_scrapes++;
    Point point{sample_process(agent_pid), series_count(scraped.body), 0};
    for (const auto& line : lines(scraped.body))
      if (line.rfind("memscope_oom_kills_total{", 0) == 0) point.oom_series++;
    points.push_back(point);
    if (i % 10 == 0) {
      MemoryCgroup cgroup("memscope-soak-" + std::to_string(getpid()) + "-" + std::to_string(i), 48ULL << 20);
      if (cgroup.ok()) {
        Child victim({testprog("oom_victim"), cgroup.procs_file(), "512"});
        if (victim.finish(60s).exit_code == 128 + 9) oom_kills++;
      }
    }
    if (i % 5 == 2) {
      Child touch({testprog("fault_touch"), "anon", "20000"}, /*capture_stdin=*/true);
      if (touch.wait_for("pid ", 10s, true)) {
        touch.write_stdin("go\n");
        touch.wait_for("touched", 30s, true);
      }
      touch.finish(10s);
    }
    std::this_thread::sleep_until(start + std::chrono::seconds(i + 1));
  }
  Finished stopped = agent.stop();
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  ASSERT_GE(points.size(), 30u);

  // Warm-up: the first 20 s (symbol tables, first cgroups). After it nothing may grow.
  size_t warm = std::min<size_t>(20, points.size() / 2);
  uint64_t rss_warm_max = 0, rss_late_max = 0, rss_max = 0;
  size_t series_max = 0, series_warm_max = 0, series_late_max = 0, oom_series_max = 0;
  for (size_t i = 0; i < points.size(); i++) {
    uint64_t rss = points[i].process.rss_kib;
    rss_max = std::max(rss_max, rss);
    if (i < warm) rss_warm_max = std::max(rss_warm_max, rss);
    if (i >= points.size() / 2) rss_late_max = std::max(rss_late_max, rss);
    series_max = std::max(series_max, points[i].series);
    if (i < warm) series_warm_max = std::max(series_warm_max, points[i].series);
    if (i >= points.size() / 2) series_late_max = std::max(series_late_max, points[i].series);
    oom_series_max = std::max(oom_series_max, points[i].oom_series);
  }
  double cpu = points.back().process.cpu_s - points.front().process.cpu_s;
  double wall = static_cast<double>(points.size() - 1);
  fmt::print(stderr,
             "soak: {} s, {} scrapes ({} failed), {} OOM kills in {} cgroups; RSS first {:.1f} MiB, after warm-up max "
             "{:.1f} MiB, second half max {:.1f} MiB, last {:.1f} MiB; series {}..{} (OOM series max {}); CPU {:.2f} s "
             "= {:.2f} % of one CPU\n",
             points.size(), points.size(), failed_scrapes, oom_kills, (points.size() + 9) / 10,
             points.front().process.rss_kib / 1024.0, rss_warm_max / 1024.0, rss_late_max / 1024.0,
             points.back().process.rss_kib / 1024.0, points.front().series, series_max, oom_series_max, cpu,
             100 * cpu / wall);
  EXPECT_EQ(failed_scrapes, 0);
  EXPECT_GT(oom_kills, 0);
  // Bounded: no growth after warm-up beyond allocator noise (4 MiB), and at most the OOM series of
  // the cgroups within the retention time (one every 10 s, 5 s retention, refresh 1 s: 1, or 2
  // around a boundary).
  EXPECT_LE(rss_late_max, rss_warm_max + 4096) << "RSS grew after warm-up";
  EXPECT_LE(oom_series_max, 2u);
  EXPECT_LE(points.back().oom_series, 2u);
  // After warm-up the kmem call sites (top N + other) and request counters are all there: only an
  // OOM series and a migration reason not seen before (2 series) may come on top.
  EXPECT_LE(series_late_max, series_warm_max + 4);
}

}  // namespace
}  // namespace memscope::test

namespace memscope::test {
namespace {

// A process named in heap_profiles.targets (by comm) is found after it starts, profiled with
// memleak's allocator uprobes, and its outstanding heap is exactly what it holds (1000 x 4096
// bytes from hold_blocks); go tool pprof reads /debug/pprof/heap?pid=N with hold_blocks and main
// on the stack; when the process exits its series and profile go away.
TEST(ServePprof, HeapProfileOfAProcessFoundByItsCommand) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDirectory temp;
  std::string config = write_config(temp.path,
                                    "refresh_interval: 0.5\nheap_profiles:\n  targets:\n    - comm: heap_hold\n");
  Agent agent({"--config", config});
  ASSERT_TRUE(agent.ok()) << agent.tracer().err();
  Child holder({testprog("heap_hold"), "1000", "4096"}, /*capture_stdin=*/true);
  ASSERT_TRUE(holder.wait_for("ready", 10s, /*in_stdout=*/true));
  std::string series = "memscope_heap_outstanding_bytes{pid=\"" + std::to_string(holder.pid()) + "\",comm=\"heap_hold\"}";
  // Attaching (uprobes, the unwinder's tables) takes a few seconds on a loaded machine.
  bool profiled = false;
  for (int i = 0; i < 100 && !profiled; i++) {
    profiled = metric_value(http_get(agent.url() + "/metrics").body, series) >= 0;
    if (!profiled) std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(profiled) << agent.tracer().err();
  holder.write_stdin("go\n");
  ASSERT_TRUE(holder.wait_for("holding", 10s, /*in_stdout=*/true));
  double bytes = -1;
  for (int i = 0; i < 20 && bytes != 4096000; i++) {
    std::this_thread::sleep_for(250ms);
    bytes = metric_value(http_get(agent.url() + "/metrics").body, series);
  }
  EXPECT_EQ(bytes, 4096000);

  std::string profile = temp.path + "/heap.pb.gz";
  HttpResult fetched =
      http_get(agent.url() + "/debug/pprof/heap?pid=" + std::to_string(holder.pid()), {"-o", profile});
  ASSERT_EQ(fetched.status, 200) << fetched.error;
  Finished top = run({program("go"), "tool", "pprof", "-traces", "-sample_index=bytes", profile}, 120s);
  ASSERT_EQ(top.exit_code, 0) << top.err;
  size_t hold = top.out.find("hold_blocks");
  ASSERT_NE(hold, std::string::npos) << top.out;
  EXPECT_NE(top.out.find("main", hold), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("3.91MB"), std::string::npos) << top.out;  // 4096000 bytes

  HttpResult other = http_get(agent.url() + "/debug/pprof/heap?pid=1");
  EXPECT_EQ(other.status, 404);
  EXPECT_NE(other.body.find("PID 1 is not profiled"), std::string::npos) << other.body;
  EXPECT_EQ(http_get(agent.url() + "/debug/pprof/heap?pid=abc").status, 400);

  holder.write_stdin("exit\n");
  holder.finish(10s);
  bool removed = false;
  for (int i = 0; i < 20 && !removed; i++) {
    std::this_thread::sleep_for(250ms);
    removed = metric_value(http_get(agent.url() + "/metrics").body, series) < 0;
  }
  EXPECT_TRUE(removed);
  EXPECT_EQ(http_get(agent.url() + "/debug/pprof/heap?pid=" + std::to_string(holder.pid())).status, 404);
  Finished stopped = agent.stop();
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
}

}  // namespace
}  // namespace memscope::test

namespace memscope::test {
namespace {

// Clients that connect and send nothing hold a worker only until the read timeout: with 2 workers,
// a 1 s timeout and 6 such connections, a scrape still gets through, and the agent's thread count
// does not grow with the connections.
TEST(ServeWeb, SilentClientsTimeOutAndDoNotGrowTheAgent) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDirectory temp;
  std::string config = write_config(temp.path, "collectors: [oomkill]\nlimits:\n  max_connections: 2\n  request_timeout: 1\n");
  Agent agent({"--config", config});
  ASSERT_TRUE(agent.ok()) << agent.tracer().err();
  auto threads = [&] {
    std::ifstream status("/proc/" + std::to_string(agent.tracer().pid()) + "/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
    return -1;
  };
  ASSERT_EQ(http_get(agent.url() + "/healthz").status, 200);
  int threads_before = threads();
  std::vector<int> silent;
  for (int i = 0; i < 6; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(agent.port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    silent.push_back(fd);
  }
  auto start = std::chrono::steady_clock::now();
  HttpResult scraped = http_get(agent.url() + "/metrics");
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(scraped.status, 200) << scraped.error;
  EXPECT_LT(waited, 8.0) << "6 silent clients x 1 s over 2 workers should delay a scrape ~3 s";
  EXPECT_EQ(threads(), threads_before);
  for (int fd : silent) close(fd);
  Finished stopped = agent.stop();
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
}

}  // namespace
}  // namespace memscope::test

namespace memscope::test {
namespace {

// serve's code is the module memscope-serve.so beside the binary (the other tools do not load its
// libraries): with it, serve has its options; without it, `memscope serve` says where it looked, in
// one line, and the other tools (doctor asks every tool for its probes) still run.
TEST(ServeModule, WithoutItsModuleServeSaysWhereItLookedInOneLine) {
  Finished help = run({memscope_binary(), "serve", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("--listen"), std::string::npos) << help.out;

  char directory[] = "/tmp/memscope-lone-XXXXXX";
  ASSERT_NE(mkdtemp(directory), nullptr);
  std::string copy = std::string(directory) + "/memscope";
  std::filesystem::copy_file(memscope_binary(), copy);
  std::filesystem::permissions(copy, std::filesystem::perms::owner_all);
  Finished serve = run({copy, "serve", "--listen", "127.0.0.1:1"});
  Finished doctor = run({copy, "doctor"});
  std::filesystem::remove_all(directory);

  EXPECT_EQ(serve.exit_code, 1);
  std::vector<std::string> error = lines(serve.err);
  ASSERT_EQ(error.size(), 1u) << serve.err;
  EXPECT_EQ(error[0].rfind("memscope serve: serve is not available:", 0), 0u) << serve.err;
  EXPECT_NE(error[0].find(std::string(directory) + "/memscope-serve.so"), std::string::npos) << serve.err;
  EXPECT_EQ(doctor.exit_code, 0) << doctor.err;
}

}  // namespace
}  // namespace memscope::test
