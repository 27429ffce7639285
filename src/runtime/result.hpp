// Errors travel as values through the runtime; main() is the one place that turns them into a
// message and an exit status.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace memscope {

struct Error {
  std::string message;
};

template <typename T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}
  Result(Error error) : state_(std::move(error)) {}

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<T>(state_); }
  const T& value() const { return std::get<T>(state_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const Error& error() const { return std::get<Error>(state_); }

 private:
  std::variant<T, Error> state_;
};

// Thrown only for conditions that end the run (bad option, missing privilege, attach failure);
// caught in main(), printed as one line, exit status 1.
class FatalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace memscope
