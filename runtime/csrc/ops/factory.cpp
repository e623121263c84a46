// Factories: tensors made from sizes and values (empty/zeros/ones/full, arange, linspace, eye).
// Fills go through fill_ (device-generic); arange/linspace/eye have kernels per device.
#include <cmath>
#include <limits>

#include "dispatch/dispatcher.h"
#include "ops/ops.h"

namespace ember {

Tensor empty(IntSpan sizes, ScalarType dtype, Device device) { return Tensor::empty(sizes, dtype, device); }

Tensor full(IntSpan sizes, Scalar value, ScalarType dtype, Device device) {
  Tensor out = Tensor::empty(sizes, dtype, device);
  if (out.numel() > 0) fill_(out, value);
  return out;
}

Tensor zeros(IntSpan sizes, ScalarType dtype, Device device) { return full(sizes, int64_t{0}, dtype, device); }
Tensor ones(IntSpan sizes, ScalarType dtype, Device device) { return full(sizes, int64_t{1}, dtype, device); }
Tensor empty_like(const Tensor& t) { return Tensor::empty(t.sizes(), t.dtype(), t.device()); }
Tensor zeros_like(const Tensor& t) { return full(t.sizes(), int64_t{0}, t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return full(t.sizes(), int64_t{1}, t.dtype(), t.device()); }
Tensor full_like(const Tensor& t, Scalar value) { return full(t.sizes(), value, t.dtype(), t.device()); }

Tensor scalar_tensor(Scalar value, ScalarType dtype, Device device) { return full(DimVector{}, value, dtype, device); }

// Note [arange length]
// Like torch: the length is ceil((end - start) / step) computed in double, so arange(0, 1, 0.1)
// has 10 elements; integer dtypes compute it from the integer difference to stay exact.
Tensor arange(Scalar start, Scalar end, Scalar step, std::optional<ScalarType> dtype, Device device) {
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
  Tensor out = Tensor::empty(DimVector{static_cast<int64_t>(length)}, out_dtype, device);
  if (out.numel() == 0) return out;
  Attrs attrs;
  attrs.scalar = start;
  attrs.scalar2 = step;
  attrs.dtype = out_dtype;
  return dispatch1(OpId::arange, {}, out, attrs);
}

Tensor linspace(Scalar start, Scalar end, int64_t steps, ScalarType dtype, Device device) {
  EMBER_CHECK(steps >= 0, "[linspace] number of steps must be non-negative, got ", steps);
  EMBER_CHECK_TYPE(dtype != ScalarType::Bool, "[linspace] not implemented for dtype bool");
  Tensor out = Tensor::empty(DimVector{steps}, dtype, device);
  if (steps == 0) return out;
  Attrs attrs;
  attrs.scalar = start;
  attrs.scalar2 = end;
  attrs.k = steps;
  attrs.dtype = dtype;
  return dispatch1(OpId::linspace, {}, out, attrs);
}

Tensor eye(int64_t n, int64_t m, ScalarType dtype, Device device) {
  EMBER_CHECK(n >= 0, "[eye] n must be greater or equal to 0, got ", n);
  EMBER_CHECK(m >= 0, "[eye] m must be greater or equal to 0, got ", m);
  Tensor out = Tensor::empty(DimVector{n, m}, dtype, device);
  if (out.numel() == 0) return out;
  Attrs attrs;
  attrs.dtype = dtype;
  return dispatch1(OpId::eye, {}, out, attrs);
}

}  // namespace ember
