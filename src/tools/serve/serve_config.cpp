#include "serve_config.hpp"

#include <crypt.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace memscope::serve {
namespace {

std::string where(const std::string& name, const YAML::Node& node) {
  return fmt::format("{}:{}", name, node.Mark().line + 1);
}

bool read_file(const std::string& path, std::string& text, std::string& error) {
  std::ifstream file(path);
  if (!file) {
    error = fmt::format("{}: cannot read: {}", path, strerror(errno));
    return false;
  }
  std::stringstream buffer;
  buffer << file.rdbuf();
  text = buffer.str();
  return true;
}

// A YAML scalar as a number in [minimum, maximum]; adds an error otherwise.
bool number(const std::string& name, const std::string& key, const YAML::Node& node, double minimum,
            double maximum, double& out, std::vector<std::string>& errors) {
  double value = 0;
  bool parsed = node.IsScalar();
  if (parsed) {
    try {
      value = node.as<double>();
    } catch (const YAML::Exception&) {
      parsed = false;
    }
  }
  if (!parsed || !std::isfinite(value) || value < minimum || value > maximum) {
    errors.push_back(fmt::format("{}: {} must be a number from {} to {}, not '{}'", where(name, node), key,
                                 minimum, maximum, node.IsScalar() ? node.Scalar() : "(not a scalar)"));
    return false;
  }
  out = value;
  return true;
}

bool whole_number(const std::string& name, const std::string& key, const YAML::Node& node, double minimum,
                  double maximum, size_t& out, std::vector<std::string>& errors) {
  double value = 0;
  if (!number(name, key, node, minimum, maximum, value, errors)) return false;
  if (value != std::floor(value)) {
    errors.push_back(fmt::format("{}: {} must be a whole number, not '{}'", where(name, node), key, node.Scalar()));
    return false;
  }
  out = static_cast<size_t>(value);
  return true;
}

bool string_value(const std::string& name, const std::string& key, const YAML::Node& node, std::string& out,
                  std::vector<std::string>& errors) {
  if (!node.IsScalar() || node.Scalar().empty()) {
    errors.push_back(fmt::format("{}: {} must be a non-empty string", where(name, node), key));
    return false;
  }
  out = node.Scalar();
  return true;
}

// Parses YAML text into `root`; a syntax error becomes one error line.
bool parse_yaml(const std::string& text, const std::string& name, YAML::Node& root, std::vector<std::string>& errors) {
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& error) {
    errors.push_back(fmt::format("{}:{}: not valid YAML: {}", name, error.mark.line + 1, error.msg));
    return false;
  }
  if (root.IsNull()) return true;  // an empty file: every default
  if (!root.IsMap()) {
    errors.push_back(fmt::format("{}: the file must be a mapping of settings (key: value)", where(name, root)));
    return false;
  }
  return true;
}

}  // namespace

const std::vector<std::string>& collector_names() {
  static const std::vector<std::string> names = {"oomkill", "reclaim", "faults", "swapin",
                                                 "compact", "migrate", "kmem"};
  return names;
}

bool split_listen_address(const std::string& listen, std::string& host, int& port, std::string& error) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    error = fmt::format("listen address '{}' must be ADDR:PORT (e.g. 127.0.0.1:9477)", listen);
    return false;
  }
  host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string port_text = listen.substr(colon + 1);
  bool digits = !port_text.empty() && port_text.size() <= 5 &&
                std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; });
  port = digits ? std::stoi(port_text) : -1;
  if (port < 0 || port > 65535) {
    error = fmt::format("listen address '{}': the port must be a number from 0 to 65535", listen);
    return false;
  }
  return true;
}

ServeConfig parse_serve_config(const std::string& text, const std::string& name, std::vector<std::string>& errors) {
  ServeConfig config;
  YAML::Node root;
  if (!parse_yaml(text, name, root, errors) || root.IsNull()) return config;
  static const std::vector<std::string> keys = {"listen", "collectors",      "refresh_interval", "series_retention",
                                                "limits", "web_config_file", "heap_profiles"};
  for (const auto& entry : root) {
    std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
    const YAML::Node& value = entry.second;
    if (key == "listen") {
      if (string_value(name, key, value, config.listen, errors)) {
        std::string host, error;
        int port = 0;
        if (!split_listen_address(config.listen, host, port, error))
          errors.push_back(fmt::format("{}: {}", where(name, value), error));
      }
    } else if (key == "collectors") {
      if (!value.IsSequence() || value.size() == 0) {
        errors.push_back(fmt::format("{}: collectors must be a list of some of: {}", where(name, value),
                                     fmt::join(collector_names(), ", ")));
        continue;
      }
      for (const auto& item : value) {
        std::string collector = item.IsScalar() ? item.Scalar() : "";
        if (std::find(collector_names().begin(), collector_names().end(), collector) == collector_names().end())
          errors.push_back(fmt::format("{}: unknown collector '{}' (known: {})", where(name, item), collector,
                                       fmt::join(collector_names(), ", ")));
        else if (!config.collectors.insert(collector).second)
          errors.push_back(fmt::format("{}: collector '{}' listed twice", where(name, item), collector));
      }
    } else if (key == "refresh_interval") {
      number(name, key + " (seconds)", value, 0.1, 3600, config.refresh_interval_s, errors);
    } else if (key == "series_retention") {
      number(name, key + " (seconds)", value, 0, 86400 * 7, config.series_retention_s, errors);
    } else if (key == "limits") {
      if (!value.IsMap()) {
        errors.push_back(fmt::format("{}: limits must be a mapping", where(name, value)));
        continue;
      }
      for (const auto& limit : value) {
        std::string limit_key = limit.first.IsScalar() ? limit.first.Scalar() : "";
        const YAML::Node& limit_value = limit.second;
        if (limit_key == "kmem_call_sites")
          whole_number(name, "limits.kmem_call_sites", limit_value, 1, 1000, config.kmem_call_sites, errors);
        else if (limit_key == "oom_series")
          whole_number(name, "limits.oom_series", limit_value, 1, 100000, config.oom_series, errors);
        else if (limit_key == "kmem_max_allocations")
          whole_number(name, "limits.kmem_max_allocations", limit_value, 1024, 1 << 24,
                       config.kmem_max_allocations, errors);
        else if (limit_key == "max_connections")
          whole_number(name, "limits.max_connections", limit_value, 1, 256, config.max_connections, errors);
        else if (limit_key == "request_timeout")
          number(name, "limits.request_timeout (seconds)", limit_value, 0.1, 300, config.request_timeout_s, errors);
        else
          errors.push_back(fmt::format(
              "{}: unknown limit '{}' (known: kmem_call_sites, oom_series, kmem_max_allocations, "
              "max_connections, request_timeout)",
              where(name, limit.first), limit_key));
      }
    } else if (key == "web_config_file") {
      string_value(name, key, value, config.web_config_file, errors);
    } else if (key == "heap_profiles") {
      if (!value.IsMap()) {
        errors.push_back(fmt::format("{}: heap_profiles must be a mapping (targets, sample_every, max_processes)",
                                     where(name, value)));
        continue;
      }
      for (const auto& heap : value) {
        std::string heap_key = heap.first.IsScalar() ? heap.first.Scalar() : "";
        const YAML::Node& heap_value = heap.second;
        if (heap_key == "sample_every") {
          whole_number(name, "heap_profiles.sample_every", heap_value, 1, 1000000, config.heap_sample_every, errors);
        } else if (heap_key == "max_processes") {
          whole_number(name, "heap_profiles.max_processes", heap_value, 1, 64, config.heap_max_processes, errors);
        } else if (heap_key == "targets") {
          if (!heap_value.IsSequence()) {
            errors.push_back(fmt::format("{}: heap_profiles.targets must be a list of {{comm: NAME}} or {{cgroup: DIR}}",
                                         where(name, heap_value)));
            continue;
          }
          for (const auto& target : heap_value) {
            HeapTarget parsed;
            bool good = target.IsMap() && target.size() == 1;
            if (good) {
              // Copies: the node an iterator's -> yields lives in that (temporary) iterator.
              auto only = target.begin();
              std::string target_key = only->first.Scalar();
              YAML::Node target_value = only->second;
              if (target_key == "comm" && target_value.IsScalar() && !target_value.Scalar().empty() &&
                  target_value.Scalar().size() < 16)
                parsed.comm = target_value.Scalar();
              else if (target_key == "cgroup" && target_value.IsScalar() && !target_value.Scalar().empty())
                parsed.cgroup = target_value.Scalar();
              else
                good = false;
            }
            if (!good) {
              errors.push_back(fmt::format(
                  "{}: a heap target is {{comm: NAME}} (at most 15 characters, as the kernel keeps it) or {{cgroup: DIR}}",
                  where(name, target)));
              continue;
            }
            config.heap_targets.push_back(parsed);
          }
        } else {
          errors.push_back(fmt::format("{}: unknown heap_profiles setting '{}' (known: targets, sample_every, max_processes)",
                                       where(name, heap.first), heap_key));
        }
      }
    } else {
      errors.push_back(fmt::format("{}: unknown setting '{}' (known: {})", where(name, entry.first), key,
                                   fmt::join(keys, ", ")));
    }
  }
  return config;
}

ServeConfig load_serve_config(const std::string& path, std::vector<std::string>& errors) {
  std::string text, error;
  if (!read_file(path, text, error)) {
    errors.push_back(error);
    return {};
  }
  ServeConfig config = parse_serve_config(text, path, errors);
  // A relative web config file is relative to the config file, like exporter-toolkit's paths.
  if (!config.web_config_file.empty() && config.web_config_file.front() != '/')
    config.web_config_file =
        (std::filesystem::path(path).parent_path() / config.web_config_file).lexically_normal().string();
  return config;
}

WebConfig parse_web_config(const std::string& text, const std::string& name, const std::string& base_directory,
                           std::vector<std::string>& errors) {
  WebConfig config;
  YAML::Node root;
  if (!parse_yaml(text, name, root, errors) || root.IsNull()) return config;
  auto resolve = [&](const std::string& file) {
    return file.front() == '/' ? file : (std::filesystem::path(base_directory) / file).lexically_normal().string();
  };
  for (const auto& entry : root) {
    std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
    const YAML::Node& value = entry.second;
    if (key == "tls_server_config") {
      if (!value.IsMap()) {
        errors.push_back(fmt::format("{}: tls_server_config must be a mapping", where(name, value)));
        continue;
      }
      for (const auto& tls : value) {
        std::string tls_key = tls.first.IsScalar() ? tls.first.Scalar() : "";
        if (tls_key == "cert_file") {
          if (string_value(name, "cert_file", tls.second, config.cert_file, errors))
            config.cert_file = resolve(config.cert_file);
        } else if (tls_key == "key_file") {
          if (string_value(name, "key_file", tls.second, config.key_file, errors))
            config.key_file = resolve(config.key_file);
        } else {
          errors.push_back(fmt::format(
              "{}: tls_server_config.{} is not supported by memscope (supported: cert_file, key_file)",
              where(name, tls.first), tls_key));
        }
      }
      if (config.cert_file.empty() != config.key_file.empty())
        errors.push_back(fmt::format("{}: tls_server_config needs both cert_file and key_file", where(name, value)));
      for (const std::string* file : {&config.cert_file, &config.key_file})
        if (!file->empty() && access(file->c_str(), R_OK) != 0)
          errors.push_back(fmt::format("{}: cannot read {}: {}", where(name, value), *file, strerror(errno)));
    } else if (key == "basic_auth_users") {
      if (!value.IsMap()) {
        errors.push_back(fmt::format("{}: basic_auth_users must map user names to bcrypt hashes", where(name, value)));
        continue;
      }
      for (const auto& user : value) {
        std::string user_name = user.first.IsScalar() ? user.first.Scalar() : "";
        std::string hash = user.second.IsScalar() ? user.second.Scalar() : "";
        if (user_name.empty() || user_name.find(':') != std::string::npos) {
          errors.push_back(fmt::format("{}: a user name must be non-empty and without ':'", where(name, user.first)));
          continue;
        }
        if (hash.rfind("$2y$", 0) != 0 && hash.rfind("$2b$", 0) != 0 && hash.rfind("$2a$", 0) != 0) {
          errors.push_back(fmt::format("{}: the password of '{}' must be a bcrypt hash ($2y$…, e.g. from htpasswd -nBC 10)",
                                       where(name, user.second), user_name));
          continue;
        }
        config.basic_auth_users[user_name] = hash;
      }
    } else if (key == "http_server_config") {
      errors.push_back(fmt::format("{}: http_server_config is not supported by memscope", where(name, entry.first)));
    } else {
      errors.push_back(fmt::format("{}: unknown setting '{}' (known: tls_server_config, basic_auth_users)",
                                   where(name, entry.first), key));
    }
  }
  return config;
}

WebConfig load_web_config(const std::string& path, std::vector<std::string>& errors) {
  std::string text, error;
  if (!read_file(path, text, error)) {
    errors.push_back(error);
    return {};
  }
  return parse_web_config(text, path, std::filesystem::path(path).parent_path().string(), errors);
}

bool password_matches(const std::string& password, const std::string& hash) {
  crypt_data data{};
  const char* computed = crypt_r(password.c_str(), hash.c_str(), &data);
  // Failures return "*0"-style strings, never the hash itself.
  if (!computed || computed[0] == '*') return false;
  std::string result(computed);
  if (result.size() != hash.size()) return false;
  unsigned char difference = 0;  // constant time, as the hash comparison of any password check
  for (size_t i = 0; i < hash.size(); i++) difference |= static_cast<unsigned char>(result[i] ^ hash[i]);
  return difference == 0;
}

}  // namespace memscope::serve
