#include "tensor.h"

#include <algorithm>
#include <sstream>

namespace ember {

void TensorImpl::refresh_metadata() {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  numel = n;
  bool contig = true;
  int64_t expected = 1;
  for (int64_t i = static_cast<int64_t>(sizes.size()) - 1; i >= 0; --i) {
    if (sizes[i] == 1) continue;  // size-1 dims may have any stride (torch semantics)
    if (strides[i] != expected) { contig = false; break; }
    expected *= sizes[i];
  }
  is_contiguous = contig || n == 0;
}

Tensor Tensor::make(Storage storage, DimVector sizes, DimVector strides, int64_t offset, ScalarType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  if (strides.size() != sizes.size()) strides = contiguous_strides(sizes);
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype;
  impl->refresh_metadata();
  return Tensor(std::move(impl));
}

namespace {

// Bytes for `elements` elements of `dtype`, where `elements` was computed with overflow checks.
// Without them the products wrap around (1 << 62 float32s "need" 0 bytes) and a tiny storage would
// back a huge tensor; torch caps storages at int64 bytes too.
size_t checked_nbytes(const char* op, IntSpan sizes, int64_t elements, bool overflow, ScalarType dtype) {
  int64_t nbytes = 0;
  overflow = overflow || __builtin_mul_overflow(elements, ::ember::element_size(dtype), &nbytes);
  EMBER_CHECK(!overflow, "[", op, "] a tensor of size ", sizes, " and dtype ", dtype_name(dtype),
              " needs more than 2^63 - 1 bytes (the element or byte count overflows int64)");
  return static_cast<size_t>(nbytes);
}

}  // namespace

Tensor Tensor::empty(IntSpan sizes, ScalarType dtype, Device device) {
  for (int64_t s : sizes) EMBER_CHECK_VALUE(s >= 0, "[empty] negative dimension in size ", sizes);
  const bool has_zero = std::find(sizes.begin(), sizes.end(), 0) != sizes.end();
  int64_t n = has_zero ? 0 : 1;
  bool overflow = false;
  if (!has_zero)
    for (int64_t s : sizes) overflow = overflow || __builtin_mul_overflow(n, s, &n);
  auto storage = make_storage(checked_nbytes("empty", sizes, n, overflow, dtype), device);
  return make(std::move(storage), DimVector(sizes), contiguous_strides(sizes), 0, dtype);
}

Tensor Tensor::empty_strided(IntSpan sizes, IntSpan strides, ScalarType dtype, Device device) {
  EMBER_CHECK_VALUE(sizes.size() == strides.size(), "[empty_strided] sizes ", sizes, " and strides ",
                    strides, " differ in length");
  int64_t extent = 1;  // 1 + largest reachable offset
  bool overflow = false;
  for (size_t i = 0; i < sizes.size(); ++i) {
    EMBER_CHECK_VALUE(sizes[i] >= 0 && strides[i] >= 0, "[empty_strided] negative size or stride");
    if (sizes[i] == 0) { extent = 0; overflow = false; break; }
    int64_t span = 0;
    overflow = overflow || __builtin_mul_overflow(sizes[i] - 1, strides[i], &span) ||
               __builtin_add_overflow(extent, span, &extent);
  }
  auto storage = make_storage(checked_nbytes("empty_strided", sizes, extent, overflow, dtype), device);
  return make(std::move(storage), DimVector(sizes), DimVector(strides), 0, dtype);
}

int64_t Tensor::size(int64_t d) const { return impl_->sizes[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return impl_->strides[wrap_dim(d, dim(), "stride")]; }

Tensor Tensor::alias() const {
  return make(impl_->storage, impl_->sizes, impl_->strides, impl_->offset, impl_->dtype);
}

DimVector contiguous_strides(IntSpan sizes) {
  DimVector strides(sizes.size());
  int64_t s = 1;
  for (int64_t i = static_cast<int64_t>(sizes.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= std::max<int64_t>(sizes[i], 1);
  }
  return strides;
}

DimVector broadcast_strides(const Tensor& t, IntSpan shape) {
  DimVector s(shape.size(), 0);
  const int64_t off = static_cast<int64_t>(shape.size()) - t.dim();
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.sizes()[d] != 1) s[d + off] = t.strides()[d];
  return s;
}

int64_t numel_of(IntSpan sizes) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return n;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t n = std::max<int64_t>(ndim, 1);  // 0-dim tensors accept dim 0 and -1, like torch
  EMBER_CHECK_INDEX(dim >= -n && dim < n, "[", op, "] dimension out of range (expected to be in range of [",
                    -n, ", ", n - 1, "], but got ", dim, ")");
  return dim < 0 ? dim + n : dim;
}

DimVector broadcast_shapes(IntSpan a, IntSpan b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  DimVector out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    EMBER_CHECK(da == db || da == 1 || db == 1, "[", op, "] shapes ", a, " and ", b,
                " are not broadcastable (size ", da, " vs ", db, " at dimension ", i, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::string describe(const Tensor& t) {
  std::ostringstream os;
  os << dtype_name(t.dtype()) << t.sizes();
  if (!t.device().is_cpu()) os << " on " << t.device();
  return os.str();
}

}  // namespace ember
