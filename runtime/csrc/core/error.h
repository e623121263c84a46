#pragma once
// Errors carry a Python exception kind so the bindings can raise the type torch would.
// Messages are prefixed with the op name: "[add] shapes [2, 3] and [4] are not broadcastable".
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ember {

// LinAlg: a linear-algebra input the routine cannot handle (singular, not positive-definite); a
// RuntimeError subclass in Python (ember.linalg.LinAlgError), as torch's.
enum class ErrorKind { Runtime, Value, Index, Type, NotImplemented, LinAlg };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string msg) : std::runtime_error(std::move(msg)), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

namespace detail {
inline void stream_all(std::ostringstream&) {}
template <typename T, typename... Rest>
void stream_all(std::ostringstream& os, const T& v, const Rest&... rest) {
  if constexpr (requires { v.begin(); v.end(); } && !std::is_convertible_v<T, std::string_view>) {
    os << '[';
    bool first = true;
    for (const auto& x : v) { os << (first ? "" : ", ") << x; first = false; }
    os << ']';
  } else {
    os << v;
  }
  stream_all(os, rest...);
}
template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  stream_all(os, args...);
  return os.str();
}
}  // namespace detail

template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, const Args&... args) {
  throw Error(kind, detail::str(args...));
}

}  // namespace ember

// EMBER_CHECK(cond, "[op] message ", value, ...) raises RuntimeError; the _KIND form picks the type.
#define EMBER_CHECK_KIND(cond, kind, ...) \
  do { if (!(cond)) [[unlikely]] ::ember::fail(kind, __VA_ARGS__); } while (0)
#define EMBER_CHECK(cond, ...) EMBER_CHECK_KIND(cond, ::ember::ErrorKind::Runtime, __VA_ARGS__)
#define EMBER_CHECK_VALUE(cond, ...) EMBER_CHECK_KIND(cond, ::ember::ErrorKind::Value, __VA_ARGS__)
#define EMBER_CHECK_INDEX(cond, ...) EMBER_CHECK_KIND(cond, ::ember::ErrorKind::Index, __VA_ARGS__)
#define EMBER_CHECK_TYPE(cond, ...) EMBER_CHECK_KIND(cond, ::ember::ErrorKind::Type, __VA_ARGS__)
