#pragma once
#include <cstdint>
#include <string>

#include "error.h"

namespace ember {

enum class DeviceType : int8_t { CPU = 0, CUDA = 1 };
constexpr int kNumDeviceTypes = 2;

struct Device {
  DeviceType type = DeviceType::CPU;
  int8_t index = 0;  // always 0 for CPU
  constexpr Device() = default;
  constexpr Device(DeviceType t, int idx = 0) : type(t), index(static_cast<int8_t>(t == DeviceType::CPU ? 0 : idx)) {}
  // Parses "cpu", "cuda", "cuda:1".
  static Device parse(const std::string& s);
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

inline std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

inline Device Device::parse(const std::string& s) {
  if (s == "cpu") return Device(DeviceType::CPU);
  if (s == "cuda") return Device(DeviceType::CUDA, 0);
  if (s.rfind("cuda:", 0) == 0) {
    const std::string idx = s.substr(5);
    EMBER_CHECK_VALUE(!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos && idx.size() < 4,
                      "[device] invalid device string: '", s, "'");
    return Device(DeviceType::CUDA, std::stoi(idx));
  }
  fail(ErrorKind::Value, "[device] expected 'cpu', 'cuda' or 'cuda:N', got '", s, "'");
}

}  // namespace ember
