// Factories: tensors made from sizes and values (empty/zeros/ones/full, arange, linspace, eye).
// Fills go through fill_ (device-generic); arange/linspace/eye have kernels per device.
#include <cmath>
#include <limits>

#include "dispatch/dispatcher.h"
#include "ops/ops.h"

namespace ember {
namespace {

ScalarType float_or(std::optional<ScalarType> dtype) { return dtype.value_or(default_float_type()); }
Device cpu_or(std::optional<Device> device) { return device.value_or(Device()); }

// torch.full's dtype inference from the fill value: bool, int64 or the default float dtype.
ScalarType dtype_of_fill(const Scalar& v) {
  return v.is_bool() ? ScalarType::Bool : v.is_int() ? ScalarType::Int64 : default_float_type();
}

}  // namespace

Tensor empty(IntSpan size, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return Tensor::empty(size, float_or(dtype), cpu_or(device));
}

Tensor full(IntSpan size, Scalar fill_value, std::optional<ScalarType> dtype, std::optional<Device> device) {
  Tensor out = Tensor::empty(size, dtype.value_or(dtype_of_fill(fill_value)), cpu_or(device));
  if (out.numel() > 0) fill_(out, fill_value);
  return out;
}

Tensor zeros(IntSpan size, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return full(size, int64_t{0}, float_or(dtype), device);
}
Tensor ones(IntSpan size, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return full(size, int64_t{1}, float_or(dtype), device);
}

// *_like and new_*: dtype and device default to self's.
Tensor empty_like(const Tensor& self, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return Tensor::empty(self.sizes(), dtype.value_or(self.dtype()), device.value_or(self.device()));
}
Tensor zeros_like(const Tensor& self, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return full_like(self, int64_t{0}, dtype, device);
}
Tensor ones_like(const Tensor& self, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return full_like(self, int64_t{1}, dtype, device);
}
Tensor full_like(const Tensor& self, Scalar fill_value, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return full(self.sizes(), fill_value, dtype.value_or(self.dtype()), device.value_or(self.device()));
}
Tensor new_empty(const Tensor& self, IntSpan size, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return Tensor::empty(size, dtype.value_or(self.dtype()), device.value_or(self.device()));
}
Tensor new_zeros(const Tensor& self, IntSpan size, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return new_full(self, size, int64_t{0}, dtype, device);
}
Tensor new_ones(const Tensor& self, IntSpan size, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return new_full(self, size, int64_t{1}, dtype, device);
}
Tensor new_full(const Tensor& self, IntSpan size, Scalar fill_value, std::optional<ScalarType> dtype,
                std::optional<Device> device) {
  return full(size, fill_value, dtype.value_or(self.dtype()), device.value_or(self.device()));
}

Tensor empty_strided(IntSpan size, IntSpan stride, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return Tensor::empty_strided(size, stride, float_or(dtype), cpu_or(device));
}

Tensor scalar_tensor(Scalar s, std::optional<ScalarType> dtype, std::optional<Device> device) {
  return full(DimVector{}, s, float_or(dtype), device);
}

// Note [arange length]
// Like torch: the length is ceil((end - start) / step) computed in double, so arange(0, 1, 0.1)
// has 10 elements; integer dtypes compute it from the integer difference to stay exact.
Tensor arange(Scalar start, Scalar end, Scalar step, std::optional<ScalarType> dtype, std::optional<Device> device) {
  const bool any_float = start.is_float() || end.is_float() || step.is_float();
  const ScalarType out_dtype = dtype.value_or(any_float ? default_float_type() : ScalarType::Int64);
  EMBER_CHECK_TYPE(out_dtype != ScalarType::Bool, "[arange] not implemented for dtype bool");
  const double s = start.to_double(), e = end.to_double(), st = step.to_double();
  EMBER_CHECK(std::isfinite(s) && std::isfinite(e), "[arange] unsupported range: ", start, " -> ", end);
  EMBER_CHECK(st != 0.0, "[arange] step must be nonzero");
  EMBER_CHECK((st > 0 && e >= s) || (st < 0 && e <= s),
              "[arange] upper bound and lower bound inconsistent with step sign (start=", start, ", end=", end,
              ", step=", step, ")");
  double length;
  if (!any_float && is_integral(out_dtype, false)) {
    length = std::ceil(static_cast<double>(end.to_int() - start.to_int()) / static_cast<double>(step.to_int()));
  } else {
    length = std::ceil((e - s) / st);
  }
  EMBER_CHECK(length >= 0 && length < static_cast<double>(std::numeric_limits<int64_t>::max()),
              "[arange] invalid size, possible overflow? (start=", start, ", end=", end, ", step=", step, ")");
  Tensor out = Tensor::empty(DimVector{static_cast<int64_t>(length)}, out_dtype, cpu_or(device));
  if (out.numel() == 0) return out;
  return dispatch1<OpId::arange>({}, out, {.start = start, .step = step});
}

Tensor linspace(Scalar start, Scalar end, int64_t steps, std::optional<ScalarType> dtype,
                std::optional<Device> device) {
  EMBER_CHECK(steps >= 0, "[linspace] number of steps must be non-negative, got ", steps);
  EMBER_CHECK_TYPE(dtype != ScalarType::Bool, "[linspace] not implemented for dtype bool");
  Tensor out = Tensor::empty(DimVector{steps}, float_or(dtype), cpu_or(device));
  if (steps == 0) return out;
  return dispatch1<OpId::linspace>({}, out, {.start = start, .end = end, .steps = steps});
}

Tensor eye(int64_t n, std::optional<int64_t> m, std::optional<ScalarType> dtype, std::optional<Device> device) {
  const int64_t cols = m.value_or(n);
  EMBER_CHECK(n >= 0, "[eye] n must be greater or equal to 0, got ", n);
  EMBER_CHECK(cols >= 0, "[eye] m must be greater or equal to 0, got ", cols);
  Tensor out = Tensor::empty(DimVector{n, cols}, float_or(dtype), cpu_or(device));
  if (out.numel() == 0) return out;
  return dispatch1<OpId::eye>({}, out);
}

}  // namespace ember
