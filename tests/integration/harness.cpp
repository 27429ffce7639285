#include "harness.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace memscope::test {

// MEMSCOPE_TEST_BINARY runs the tests against another build of memscope (scripts/test-hardened.sh:
// the ASan+UBSan one), with this build's test programs.
std::string memscope_binary() {
  const char* other = getenv("MEMSCOPE_TEST_BINARY");
  return other && *other ? other : MEMSCOPE_BINARY;
}
std::string testprog(const std::string& name) { return std::string(MEMSCOPE_TESTPROGS_DIR) + "/" + name; }

Child::Child(std::vector<std::string> argv, bool capture_stdin, int run_as_uid) {
  int out[2], err[2], in[2];
  if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(in, O_CLOEXEC))
    throw std::runtime_error("pipe");
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (capture_stdin)
      dup2(in[0], 0);
    else {
      int devnull = open("/dev/null", O_RDONLY);
      dup2(devnull, 0);
    }
    if (run_as_uid >= 0 && (setgid(run_as_uid) != 0 || setuid(run_as_uid) != 0)) _exit(126);
    std::vector<char*> args;
    for (auto& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  close(in[0]);
  out_fd_ = out[0];
  err_fd_ = err[0];
  in_fd_ = in[1];
  if (!capture_stdin) {
    close(in_fd_);
    in_fd_ = -1;
  }
}

Child::~Child() {
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  for (int fd : {out_fd_, err_fd_, in_fd_})
    if (fd >= 0) close(fd);
}

void Child::pump(int timeout_ms) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (poll(fds, 2, timeout_ms) <= 0) return;
  char buffer[65536];
  for (int i = 0; i < 2; i++) {
    if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
    ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
    if (n > 0) (i == 0 ? out_ : err_).append(buffer, n);
  }
}

bool Child::wait_for(const std::string& text, std::chrono::milliseconds timeout, bool in_stdout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if ((in_stdout ? out_ : err_).find(text) != std::string::npos) return true;
    if (!exited_ && waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
    pump(exited_ ? 0 : 50);
    if (exited_ && (in_stdout ? out_ : err_).find(text) == std::string::npos) {
      pump(0);
      return (in_stdout ? out_ : err_).find(text) != std::string::npos;
    }
  }
  return false;
}

void Child::write_stdin(const std::string& text) {
  if (in_fd_ >= 0) (void)!write(in_fd_, text.data(), text.size());
}

void Child::signal(int signo) {
  if (!exited_) kill(pid_, signo);
}

Finished Child::finish(std::chrono::milliseconds timeout) {
  if (in_fd_ >= 0) {
    close(in_fd_);
    in_fd_ = -1;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exited_) {
    if (waitpid(pid_, &status_, WNOHANG) == pid_) {
      exited_ = true;
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      // A killed process that another process ptraces can be reaped only once its tracer has waited
      // for its threads: never wait for that forever, say so.
      bool reaped = false;
      for (int tries = 0; tries < 200 && !reaped; tries++) {
        reaped = waitpid(pid_, &status_, WNOHANG) == pid_;
        if (!reaped) pump(50);
      }
      exited_ = true;
      err_ += "\n[harness: killed after timeout]\n";
      if (!reaped) {
        status_ = SIGKILL;  // as if killed; left a zombie
        err_ += "[harness: not reaped 10 s after SIGKILL: still exiting, or its threads still ptraced]\n";
      }
      break;
    }
    pump(50);
  }
  // Drain what is left in the pipes.
  for (;;) {
    size_t before = out_.size() + err_.size();
    pump(20);
    if (out_.size() + err_.size() == before) break;
  }
  Finished finished;
  finished.exit_code = WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  finished.out = out_;
  finished.err = err_;
  return finished;
}

Tracer::Tracer(const std::string& tool, std::vector<std::string> args)
    : Child([&] {
        std::vector<std::string> argv = {memscope_binary(), tool};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
      }()) {
  if (!wait_for("Hit Ctrl-C to end", std::chrono::seconds(30)))
    throw std::runtime_error(fmt::format("memscope {} did not attach; stderr:\n{}", tool, err()));
}

Finished Tracer::stop() {
  signal(SIGINT);
  return finish();
}

Finished run(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  Child child(std::move(argv));
  return child.finish(timeout);
}

Finished run_as(int uid, std::vector<std::string> argv) {
  Child child(std::move(argv), false, uid);
  return child.finish(std::chrono::seconds(60));
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> result;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) result.push_back(line);
  return result;
}

bool has_word(const std::string& line, const std::string& word) {
  std::istringstream words(line);
  for (std::string candidate; words >> candidate;)
    if (candidate == word) return true;
  return false;
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> objects;
  for (const auto& line : lines(text)) {
    if (line.empty()) continue;
    objects.push_back(nlohmann::json::parse(line));
  }
  return objects;
}

std::vector<nlohmann::json> json_objects(const std::string& text) {
  std::vector<nlohmann::json> objects;
  for (const auto& line : lines(text)) {
    if (line.empty() || line.front() != '{') continue;
    auto parsed = nlohmann::json::parse(line, nullptr, false);
    if (!parsed.is_discarded()) objects.push_back(parsed);
  }
  return objects;
}

std::string missing_requirements() {
  if (geteuid() != 0) return "integration tests need root (they load BPF programs)";
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) return "kernel has no BTF";
  return "";
}

namespace {

std::optional<nlohmann::json> listed_bpf_programs() {
  Finished listed = run({"/usr/sbin/bpftool", "prog", "show", "--json"});
  if (listed.exit_code != 0) return std::nullopt;
  auto parsed = nlohmann::json::parse(listed.out, nullptr, false);
  if (!parsed.is_array()) return std::nullopt;
  return parsed;
}

}  // namespace

std::vector<nlohmann::json> outstanding_reports(const std::string& out) {
  std::vector<nlohmann::json> result;
  for (auto& object : json_objects(out))
    if (object["event"] == "outstanding_allocations") result.push_back(object);
  return result;
}

std::string top_function(const nlohmann::json& entry) {
  const auto& frames = entry["frames"];
  return frames.empty() ? "" : frames[0]["function"].get<std::string>();
}

std::vector<nlohmann::json> entries_from(const nlohmann::json& report, const std::string& function) {
  std::vector<nlohmann::json> found;
  for (const auto& entry : report["stacks"])
    if (top_function(entry) == function) found.push_back(entry);
  return found;
}

std::string describe(const nlohmann::json& report) {
  std::string text;
  for (const auto& entry : report["stacks"]) {
    text += std::to_string(entry["bytes"].get<uint64_t>()) + " B / " +
            std::to_string(entry["allocations"].get<uint64_t>()) + ":";
    if (entry.value("stack_lost", false)) text += " [stack lost]";
    for (const auto& frame : entry["frames"]) text += " " + frame["function"].get<std::string>();
    text += "\n";
  }
  return text;
}

int highest_bpf_program_id() {
  auto programs = listed_bpf_programs();
  if (!programs) return -1;
  int highest = 0;
  for (const auto& program : *programs) highest = std::max(highest, program.value("id", 0));
  return highest;
}

std::vector<std::string> bpf_programs_loaded_after(int mark, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::vector<std::string> found;
    auto programs = listed_bpf_programs();
    if (!programs) return {"bpftool prog show failed"};
    for (const auto& program : *programs)
      if (program.value("id", 0) > mark)
        found.push_back(std::to_string(program.value("id", 0)) + " " + program.value("name", std::string("?")));
    if (found.empty() || std::chrono::steady_clock::now() >= deadline) return found;
    usleep(100000);
  }
}

}  // namespace memscope::test

namespace memscope::test {

uint64_t vmstat(const std::string& name) {
  std::ifstream in("/proc/vmstat");
  std::string key;
  uint64_t value;
  while (in >> key >> value)
    if (key == name) return value;
  return 0;
}

std::string proc_status_field(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with(field + ":")) {
      size_t value = line.find_first_not_of(" \t", field.size() + 1);
      return value == std::string::npos ? "" : line.substr(value);
    }
  return "";
}

uint64_t rss_kib(pid_t pid) { return std::strtoull(proc_status_field(pid, "VmRSS").c_str(), nullptr, 10); }

void expect_running_untraced(pid_t pid) {
  std::string state = proc_status_field(pid, "State");
  EXPECT_TRUE(state.starts_with("S") || state.starts_with("R")) << "target left in state " << state;
  EXPECT_EQ(proc_status_field(pid, "TracerPid"), "0");
}

}  // namespace memscope::test
