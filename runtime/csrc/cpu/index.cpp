// CPU kernels of the indexing ops (frontends: ops/index.cpp). Index values are validated in a
// serial pass before any parallel loop (Note: never throw inside parallel_for). Pure data
// movement dispatches on element size; accumulating kernels dispatch on the dtype.
#include <limits>

#include "core/error.h"
#include "cpu/index_loops.h"
#include "generated/kernels_index.h"

namespace ember::cpu {
namespace {

constexpr int64_t kSerial = std::numeric_limits<int64_t>::max();  // grain that forces one thread

// Sizes/strides of a tensor with 0-dim tensors seen as 1-element vectors.
DimVector sizes1(const Tensor& t) { return t.dim() ? t.sizes() : DimVector{1}; }
DimVector strides1(const Tensor& t) { return t.dim() ? t.strides() : DimVector{1}; }

// Throws `kind` if any value of the int64 tensor `idx` is outside [lo, hi) (after optional wrap).
void check_index_range(const Tensor& idx, int64_t size, bool allow_negative, ErrorKind kind, const char* op,
                       int64_t dim) {
  const int64_t* p = idx.data<int64_t>();
  const int64_t lo = allow_negative ? -size : 0;
  bool bad = false;
  int64_t bad_value = 0;
  DimVector sz = sizes1(idx), st = strides1(idx);
  for_each_strided<1>(sz, {st.data()}, {0}, [&](const int64_t* off) {
    const int64_t v = p[off[0]];
    if (!bad && (v < lo || v >= size)) { bad = true; bad_value = v; }
  }, kSerial);
  if (bad) fail(kind, "[", op, "] index ", bad_value, " is out of bounds for dimension ", dim, " with size ", size);
}

// Strides with dimension d zeroed (the indexed dim is addressed through the index value).
DimVector without_dim(DimVector s, int64_t d) { s[d] = 0; return s; }

}  // namespace

void gather(const KernelArgs& a, const DimAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& index = a.in[1];
  const Tensor& out = a.out[0];
  if (index.numel() == 0) return;
  const int64_t d = attrs.dim;
  const int64_t xsize = sizes1(x)[d], xstride = strides1(x)[d];
  check_index_range(index, xsize, false, ErrorKind::Runtime, "gather", d);
  DimVector sizes = sizes1(index), os = strides1(out), is = strides1(index), xs = without_dim(strides1(x), d);
  const int64_t* ip = index.data<int64_t>();
  dispatch_by_size(x.dtype(), [&]<typename bits_t>() {
    bits_t* op = out.data<bits_t>();
    const bits_t* xp = x.data<bits_t>();
    for_each_strided<3>(sizes, {os.data(), is.data(), xs.data()}, {0, 0, 0},
                        [&](const int64_t* o) { op[o[0]] = xp[o[2] + ip[o[1]] * xstride]; });
  });
}

namespace {
// out[.., index[c], ..] (op)= src[c] over the index's shape; serial (duplicate targets).
template <bool Accumulate>
void scatter_kernel(const KernelArgs& a, int64_t d, const char* name) {
  const Tensor& index = a.in[1];
  const Tensor& src = a.in[2];
  const Tensor& out = a.out[0];
  if (index.numel() == 0) return;
  const int64_t osize = sizes1(out)[d], ostride = strides1(out)[d];
  check_index_range(index, osize, false, ErrorKind::Runtime, name, d);
  DimVector sizes = sizes1(index), os = without_dim(strides1(out), d), is = strides1(index), ss = strides1(src);
  const int64_t* ip = index.data<int64_t>();
  if constexpr (!Accumulate) {
    dispatch_by_size(out.dtype(), [&]<typename bits_t>() {
      bits_t* op = out.data<bits_t>();
      const bits_t* sp = src.data<bits_t>();
      for_each_strided<3>(sizes, {os.data(), is.data(), ss.data()}, {0, 0, 0},
                          [&](const int64_t* o) { op[o[0] + ip[o[1]] * ostride] = sp[o[2]]; }, kSerial);
    });
  } else {
    EMBER_DISPATCH_ALL(out.dtype(), name, [&]<typename T>() {
      T* op = out.data<T>();
      const T* sp = src.data<T>();
      for_each_strided<3>(sizes, {os.data(), is.data(), ss.data()}, {0, 0, 0}, [&](const int64_t* o) {
        T& dst = op[o[0] + ip[o[1]] * ostride];
        dst = static_cast<T>(static_cast<opmath_t<T>>(dst) + static_cast<opmath_t<T>>(sp[o[2]]));
      }, kSerial);
    });
  }
}
}  // namespace

void scatter(const KernelArgs& a, const DimAttrs& attrs) { scatter_kernel<false>(a, attrs.dim, "scatter"); }
void scatter_add(const KernelArgs& a, const DimAttrs& attrs) { scatter_kernel<true>(a, attrs.dim, "scatter_add"); }

void index_select(const KernelArgs& a, const DimAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& index = a.in[1];  // 1-D int64
  const Tensor& out = a.out[0];
  if (out.numel() == 0) return;
  const int64_t d = attrs.dim;
  const int64_t xsize = sizes1(x)[d], xstride = strides1(x)[d];
  check_index_range(index, xsize, false, ErrorKind::Index, "index_select", d);
  DimVector sizes = sizes1(out), os = strides1(out), xs = without_dim(strides1(x), d);
  DimVector pos(sizes.size(), 0);  // walks the index tensor along dim d
  pos[d] = index.strides()[0];
  const int64_t* ip = index.data<int64_t>();
  dispatch_by_size(x.dtype(), [&]<typename bits_t>() {
    bits_t* op = out.data<bits_t>();
    const bits_t* xp = x.data<bits_t>();
    for_each_strided<3>(sizes, {os.data(), xs.data(), pos.data()}, {0, 0, 0},
                        [&](const int64_t* o) { op[o[0]] = xp[o[1] + ip[o[2]] * xstride]; });
  });
}

void index_add(const KernelArgs& a, const IndexAddAttrs& attrs) {
  const Tensor& index = a.in[1];
  const Tensor& src = a.in[2];
  const Tensor& out = a.out[0];
  if (index.numel() == 0) return;
  const int64_t d = attrs.dim;
  const int64_t osize = sizes1(out)[d], ostride = strides1(out)[d], sstride = strides1(src)[d];
  check_index_range(index, osize, false, ErrorKind::Index, "index_add", d);
  DimVector slice = sizes1(out);
  slice[d] = 1;
  DimVector os = strides1(out), ss = strides1(src);
  const int64_t* ip = index.data<int64_t>();
  const int64_t istride = index.strides()[0];
  EMBER_DISPATCH_ALL(out.dtype(), "index_add", [&]<typename T>() {
    using acc_t = opmath_t<T>;
    const acc_t alpha = attrs.alpha.template to<acc_t>();
    T* op = out.data<T>();
    const T* sp = src.data<T>();
    // One slice at a time: duplicate indices accumulate in order; each slice runs in parallel.
    for (int64_t i = 0; i < index.numel(); ++i) {
      for_each_strided<2>(slice, {os.data(), ss.data()}, {ip[i * istride] * ostride, i * sstride},
                          [&](const int64_t* o) {
        T& dst = op[o[0]];
        if constexpr (std::is_same_v<T, bool>) dst = dst || (alpha && sp[o[1]]);
        else dst = static_cast<T>(static_cast<acc_t>(dst) + alpha * static_cast<acc_t>(sp[o[1]]));
      });
    }
  });
}

void masked_fill(const KernelArgs& a, const MaskedFillAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& mask = a.in[1];
  const Tensor& out = a.out[0];
  const DimVector& shape = attrs.shape;
  DimVector os = out.strides(), xs = broadcast_strides(x, shape), ms = broadcast_strides(mask, shape);
  const bool* mp = mask.data<bool>();
  EMBER_DISPATCH_ALL(out.dtype(), "masked_fill", [&]<typename T>() {
    const T value = attrs.value.template to<T>();
    T* op = out.data<T>();
    const T* xp = x.data<T>();
    for_each_strided<3>(shape, {os.data(), xs.data(), ms.data()}, {0, 0, 0},
                        [&](const int64_t* o) { op[o[0]] = mp[o[2]] ? value : xp[o[1]]; });
  });
}

void masked_select(const KernelArgs& a, const MaskedSelectAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& mask = a.in[1];
  const Tensor& out = a.out[0];
  const DimVector& shape = attrs.shape;
  DimVector xs = broadcast_strides(x, shape), ms = broadcast_strides(mask, shape);
  const bool* mp = mask.data<bool>();
  const int64_t limit = out.numel();
  dispatch_by_size(x.dtype(), [&]<typename bits_t>() {
    bits_t* op = out.data<bits_t>();
    const bits_t* xp = x.data<bits_t>();
    int64_t k = 0;
    for_each_strided<2>(shape, {xs.data(), ms.data()}, {0, 0}, [&](const int64_t* o) {
      if (mp[o[1]] && k < limit) op[k++] = xp[o[0]];
    }, kSerial);
  });
}

void nonzero(const KernelArgs& a, const NoAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  const int64_t nd = x.dim();
  const int64_t limit = out.sizes()[0];
  int64_t* op = out.data<int64_t>();
  if (x.numel() == 0 || limit == 0) return;
  EMBER_DISPATCH_ALL(x.dtype(), "nonzero", [&]<typename T>() {
    const T* xp = x.data<T>();
    DimVector coord(nd, 0);
    int64_t off = 0;
    int64_t k = 0;
    for (int64_t i = 0; i < x.numel() && k < limit; ++i) {
      if (static_cast<opmath_t<T>>(xp[off]) != static_cast<opmath_t<T>>(0)) {
        for (int64_t d = 0; d < nd; ++d) op[k * nd + d] = coord[d];
        ++k;
      }
      for (int64_t d = nd - 1; d >= 0; --d) {
        if (++coord[d] < x.sizes()[d]) { off += x.strides()[d]; break; }
        off -= (x.sizes()[d] - 1) * x.strides()[d];
        coord[d] = 0;
      }
    }
  });
}

namespace {

// Note [Advanced indexing geometry]
// The frontend broadcast every index to one shape B. The result is laid out as [P..., B..., Q...]
// where P are the non-indexed dims before B (only when the indexed dims are adjacent) and Q the
// rest. Element (p, b, q) lives at pre[p] + offsets[b] + post[q] in the indexed tensor.
struct IndexGeometry {
  std::vector<int64_t> pre, offsets, post;
};

IndexGeometry index_geometry(IntSpan sizes, IntSpan strides, std::span<const Tensor> idx) {
  const int64_t nd = static_cast<int64_t>(sizes.size());
  const int64_t n_idx = static_cast<int64_t>(idx.size());
  auto indexed = [&](int64_t d) { return d < n_idx && idx[d].defined(); };
  int64_t first = -1, last = -1;
  DimVector bshape;
  for (int64_t d = 0; d < n_idx; ++d)
    if (indexed(d)) { if (first < 0) { first = d; bshape = idx[d].sizes(); } last = d; }
  bool adjacent = true;
  for (int64_t d = first; d <= last; ++d) adjacent &= indexed(d);
  const int64_t nb = numel_of(bshape);

  // Validate and combine the indices into one element offset per b (serial: may throw).
  IndexGeometry g;
  g.offsets.assign(nb, 0);
  for (int64_t d = 0; d < n_idx; ++d) {
    if (!indexed(d)) continue;
    const Tensor& t = idx[d];
    const int64_t* p = t.data<int64_t>();
    const int64_t size = sizes[d], stride = strides[d];
    DimVector ts = t.strides();
    int64_t b = 0;
    bool bad = false;
    int64_t bad_value = 0;
    for_each_strided<1>(bshape, {ts.data()}, {0}, [&](const int64_t* o) {
      int64_t v = p[o[0]];
      if (v < -size || v >= size) { if (!bad) { bad = true; bad_value = v; } v = 0; }
      if (v < 0) v += size;
      g.offsets[b++] += v * stride;
    }, kSerial);
    if (bad) fail(ErrorKind::Index, "[index] index ", bad_value, " is out of bounds for dimension ", d, " with size ", size);
  }
  // Offsets of the non-indexed dims before (P) and after (Q) the broadcast block.
  DimVector pre_sizes, pre_strides, post_sizes, post_strides;
  for (int64_t d = 0; d < nd; ++d) {
    if (indexed(d)) continue;
    if (adjacent && d < first) { pre_sizes.push_back(sizes[d]); pre_strides.push_back(strides[d]); }
    else { post_sizes.push_back(sizes[d]); post_strides.push_back(strides[d]); }
  }
  auto enumerate = [](const DimVector& sz, const DimVector& st, std::vector<int64_t>& outv) {
    outv.clear();
    outv.reserve(numel_of(sz));
    if (sz.empty()) { outv.push_back(0); return; }
    for_each_strided<1>(sz, {st.data()}, {0}, [&](const int64_t* o) { outv.push_back(o[0]); }, kSerial);
  };
  enumerate(pre_sizes, pre_strides, g.pre);
  enumerate(post_sizes, post_strides, g.post);
  return g;
}

}  // namespace

void index(const KernelArgs& a, const IndexAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];  // contiguous, laid out [P, B, Q]
  if (out.numel() == 0) return;  // like torch, indices are not validated when nothing is read
  IndexGeometry g = index_geometry(x.sizes(), x.strides(), a.in.subspan(1));
  const int64_t P = g.pre.size(), NB = g.offsets.size(), Q = g.post.size();
  dispatch_by_size(x.dtype(), [&]<typename bits_t>() {
    bits_t* op = out.data<bits_t>();
    const bits_t* xp = x.data<bits_t>();
    parallel_for(0, P * NB, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(Q, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t pb = lo; pb < hi; ++pb) {
        const int64_t base = g.pre[pb / NB] + g.offsets[pb % NB];
        bits_t* dst = op + pb * Q;
        for (int64_t q = 0; q < Q; ++q) dst[q] = xp[base + g.post[q]];
      }
    });
  });
}

void index_put(const KernelArgs& a, const IndexAttrs& attrs) {
  const Tensor& values = a.in[1];  // contiguous, shaped like the indexing result [P, B, Q]
  const Tensor& out = a.out[0];
  if (values.numel() == 0) return;
  IndexGeometry g = index_geometry(out.sizes(), out.strides(), a.in.subspan(2));
  const int64_t P = g.pre.size(), NB = g.offsets.size(), Q = g.post.size();
  if (!attrs.accumulate) {
    dispatch_by_size(out.dtype(), [&]<typename bits_t>() {
      bits_t* op = out.data<bits_t>();
      const bits_t* vp = values.data<bits_t>();
      for (int64_t pb = 0; pb < P * NB; ++pb) {  // serial: the last write of a duplicate index wins
        const int64_t base = g.pre[pb / NB] + g.offsets[pb % NB];
        for (int64_t q = 0; q < Q; ++q) op[base + g.post[q]] = vp[pb * Q + q];
      }
    });
    return;
  }
  EMBER_DISPATCH_ALL(out.dtype(), "index_put", [&]<typename T>() {
    T* op = out.data<T>();
    const T* vp = values.data<T>();
    for (int64_t pb = 0; pb < P * NB; ++pb) {
      const int64_t base = g.pre[pb / NB] + g.offsets[pb % NB];
      for (int64_t q = 0; q < Q; ++q) {
        T& dst = op[base + g.post[q]];
        if constexpr (std::is_same_v<T, bool>) dst = dst || vp[pb * Q + q];
        else dst = static_cast<T>(static_cast<opmath_t<T>>(dst) + static_cast<opmath_t<T>>(vp[pb * Q + q]));
      }
    }
  });
}

}  // namespace ember::cpu
