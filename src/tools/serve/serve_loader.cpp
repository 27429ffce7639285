// The `serve` entry of the memscope binary. serve's code lives in a module of its own,
// memscope-serve.so, because its libraries (OpenSSL, cpp-httplib, yaml-cpp) cost every other tool
// ~4 MB of RSS and part of its start-up when linked into the binary: loading libcrypto runs
// cpp-httplib's OpenSSL initialisation (configuration file, error strings) in every process.
// The module is loaded when serve is run (or asked for its options and probes); it takes
// memscope's runtime and the other tools' code from the binary, which exports them.
#include <dlfcn.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "runtime/result.hpp"
#include "runtime/tool.hpp"

// Defined where serve's code is linked in directly (the unit tests); null in the memscope binary.
extern "C" memscope::Tool* memscope_serve_tool_create() __attribute__((weak));

namespace memscope {
namespace {

constexpr const char* kServeModuleName = "memscope-serve.so";

using CreateServe = Tool* (*)();

// The module beside the binary (build tree) or in ../lib/memscope (installed); the factory, or
// the reason there is none in `error`.
CreateServe load_serve_module(std::string& error) {
  if (memscope_serve_tool_create) return memscope_serve_tool_create;
  std::error_code failure;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", failure);
  if (failure) {
    error = "cannot read /proc/self/exe: " + failure.message();
    return nullptr;
  }
  std::filesystem::path beside = self.parent_path() / kServeModuleName;
  std::filesystem::path installed = self.parent_path().parent_path() / "lib" / "memscope" / kServeModuleName;
  for (const auto& candidate : {beside, installed}) {
    if (access(candidate.c_str(), R_OK) != 0) continue;
    void* module = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);  // kept until exit
    if (!module) {
      error = std::string("cannot load ") + candidate.string() + ": " + dlerror();
      return nullptr;
    }
    if (auto create = reinterpret_cast<CreateServe>(dlsym(module, "memscope_serve_tool_create"))) return create;
    error = candidate.string() + " is not memscope's serve module (no memscope_serve_tool_create)";
    return nullptr;
  }
  error = "its module is neither at " + beside.string() + " nor at " + installed.string() +
          " (build the memscope_serve target or install memscope)";
  return nullptr;
}

// Stands in for the module's tool: loads it on first use and forwards every call; without the
// module, serve has no options or probes and running it says why, in one line.
class ServeLoader : public Tool {
 public:
  CommonOptionSet common_options() const override { return tool() ? tool()->common_options() : CommonOptionSet{}; }
  void add_options(CLI::App& app) override {
    if (tool())
      tool()->add_options(app);
    else
      app.allow_extras();  // so that validate() says why serve is missing, not "unknown option"
  }
  void validate(const CommonOptions& options) override {
    if (!tool()) throw FatalError("serve is not available: " + error_);
    tool()->validate(options);
  }
  std::vector<ProbeSpec> probes(const KernelFeatures& features) const override {
    return tool() ? tool()->probes(features) : std::vector<ProbeSpec>{};
  }
  bool needs_bpf() const override { return tool() ? tool()->needs_bpf() : false; }
  std::shared_ptr<bpf_object> open_bpf_object() const override {
    return tool() ? tool()->open_bpf_object() : nullptr;
  }
  int run(ToolContext& context) override {
    if (!tool()) throw FatalError("serve is not available: " + error_);
    return tool()->run(context);
  }

 private:
  Tool* tool() const {
    if (!loaded_) {
      loaded_ = true;
      if (CreateServe create = load_serve_module(error_)) tool_.reset(create());
    }
    return tool_.get();
  }

  mutable bool loaded_ = false;
  mutable std::string error_;
  mutable std::unique_ptr<Tool> tool_;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_serve, "serve", "Agent: Prometheus metrics and pprof profiles over HTTP, collected continuously",
              ServeLoader)
