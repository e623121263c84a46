#pragma once
// A Python number passed to an op: bool, int or float, remembering which (it matters for promotion).
#include <cstdint>
#include <ostream>

#include "dtype.h"

namespace ember {

class Scalar {
 public:
  enum class Kind : uint8_t { Bool, Int, Float };
  Scalar() : Scalar(int64_t{0}) {}
  Scalar(bool v) : kind_(Kind::Bool) { i_ = v; }
  Scalar(int v) : kind_(Kind::Int) { i_ = v; }
  Scalar(int64_t v) : kind_(Kind::Int) { i_ = v; }
  Scalar(double v) : kind_(Kind::Float) { d_ = v; }
  Scalar(float v) : kind_(Kind::Float) { d_ = v; }

  Kind kind() const { return kind_; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  double to_double() const { return is_float() ? d_ : static_cast<double>(i_); }
  int64_t to_int() const { return is_float() ? static_cast<int64_t>(d_) : i_; }
  bool to_bool() const { return is_float() ? d_ != 0.0 : i_ != 0; }
  template <typename T> T to() const {
    if constexpr (std::is_same_v<T, bool>) return to_bool();
    else if constexpr (std::is_integral_v<T>) return static_cast<T>(to_int());
    else return static_cast<T>(static_cast<opmath_t<T>>(to_double()));
  }
  // The dtype torch gives a 0-dim tensor made from this number.
  ScalarType dtype() const {
    return is_float() ? ScalarType::Float64 : is_int() ? ScalarType::Int64 : ScalarType::Bool;
  }

 private:
  Kind kind_;
  union { int64_t i_; double d_; };
};

inline std::ostream& operator<<(std::ostream& os, const Scalar& s) {
  if (s.is_float()) return os << s.to_double();
  if (s.is_bool()) return os << (s.to_bool() ? "True" : "False");
  return os << s.to_int();
}

}  // namespace ember
