// CPU kernels of the layout ops (frontends: ops/layout.cpp). All are data movement, so they
// dispatch on element size and reduce to strided copies (cpu/index_loops.h).
#include "cpu/index_loops.h"
#include "generated/kernels_index.h"

namespace ember::cpu {

void cat(const KernelArgs& a, const DimAttrs& attrs) {
  const Tensor& out = a.out[0];
  const int64_t d = attrs.dim;
  const int64_t out_stride = out.strides()[d];
  dispatch_by_size(out.dtype(), [&]<typename bits_t>() {
    int64_t offset = 0;
    for (const Tensor& t : a.in) {
      if (t.dim() == 1 && t.sizes()[0] == 0) continue;  // legacy: 1-D empty inputs are skipped
      if (t.numel() > 0)
        copy_strided(out.data<bits_t>() + offset * out_stride, out.strides(), t.data<bits_t>(), t.strides(), t.sizes());
      offset += t.sizes()[d];
    }
  });
}

void flip(const KernelArgs& a, const FlipAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  if (out.numel() == 0) return;
  // Read x through a mirrored geometry: start at the last element of each flipped dim, negative stride.
  DimVector src_strides = x.strides();
  int64_t start = 0;
  for (int64_t d : attrs.dims) {
    start += (x.sizes()[d] - 1) * x.strides()[d];
    src_strides[d] = -x.strides()[d];
  }
  dispatch_by_size(x.dtype(), [&]<typename bits_t>() {
    copy_strided(out.data<bits_t>(), out.strides(), x.data<bits_t>() + start, src_strides, x.sizes());
  });
}

void roll(const KernelArgs& a, const RollAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  if (out.numel() == 0) return;
  const size_t n = attrs.dims.size();
  // Rolling k dims splits the tensor into 2^k blocks, each a plain strided copy.
  struct Block { DimVector sizes; int64_t src = 0, dst = 0; };
  std::vector<Block> blocks{Block{x.sizes(), 0, 0}};
  for (size_t i = 0; i < n; ++i) {
    const int64_t d = attrs.dims[i], s = attrs.shifts[i], size = x.sizes()[d];
    if (s == 0) continue;
    std::vector<Block> next;
    for (const Block& b : blocks) {
      Block tail = b, head = b;  // out[s:] <- x[:size-s], out[:s] <- x[size-s:]
      tail.sizes[d] = size - s;
      tail.dst += s * out.strides()[d];
      head.sizes[d] = s;
      head.src += (size - s) * x.strides()[d];
      next.push_back(tail);
      next.push_back(head);
    }
    blocks = std::move(next);
  }
  dispatch_by_size(x.dtype(), [&]<typename bits_t>() {
    for (const Block& b : blocks)
      copy_strided(out.data<bits_t>() + b.dst, out.strides(), x.data<bits_t>() + b.src, x.strides(), b.sizes);
  });
}

void repeat(const KernelArgs& a, const RepeatAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  if (out.numel() == 0) return;
  const DimVector& reps = attrs.repeats;
  const int64_t lead = static_cast<int64_t>(reps.size()) - x.dim();
  // out dim i (size r*s) seen as (r, s): the copy reads x with stride 0 along every r axis.
  DimVector sizes, dst_strides, src_strides;
  for (size_t i = 0; i < reps.size(); ++i) {
    const bool padded = static_cast<int64_t>(i) < lead;
    const int64_t s = padded ? 1 : x.sizes()[i - lead];
    const int64_t xs = padded ? 0 : x.strides()[i - lead];
    sizes.push_back(reps[i]);
    dst_strides.push_back(s * out.strides()[i]);
    src_strides.push_back(0);
    sizes.push_back(s);
    dst_strides.push_back(out.strides()[i]);
    src_strides.push_back(xs);
  }
  dispatch_by_size(x.dtype(), [&]<typename bits_t>() {
    copy_strided(out.data<bits_t>(), dst_strides, x.data<bits_t>(), src_strides, sizes);
  });
}

namespace {
// out = x where the (row, col) position is kept by the triangle, else zero (all-zero bits is 0 in
// every dtype).
template <bool Lower>
void triangle(const KernelArgs& a, int64_t k) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  if (out.numel() == 0) return;
  const int64_t nd = x.dim();
  const int64_t cols = x.sizes()[nd - 1];
  DimVector sizes = x.sizes(), os = out.strides(), xs = x.strides();
  const int64_t ocs = os[nd - 1], xcs = xs[nd - 1];
  sizes[nd - 1] = 1;  // iterate over (batch..., row); the column loop is explicit
  dispatch_by_size(x.dtype(), [&]<typename bits_t>() {
    bits_t* op = out.data<bits_t>();
    const bits_t* xp = x.data<bits_t>();
    // Row coordinate is recovered from the offset walk: pass a third operand counting rows.
    DimVector row_counter(nd, 0);
    row_counter[nd - 2] = 1;
    for_each_strided<3>(sizes, {os.data(), xs.data(), row_counter.data()}, {0, 0, 0}, [&](const int64_t* o) {
      const int64_t r = o[2];
      for (int64_t c = 0; c < cols; ++c) {
        const bool keep = Lower ? (c - r <= k) : (c - r >= k);
        op[o[0] + c * ocs] = keep ? xp[o[1] + c * xcs] : bits_t(0);
      }
    }, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(cols, 1)));
  });
}
}  // namespace

void tril(const KernelArgs& a, const TriangleAttrs& attrs) { triangle<true>(a, attrs.diagonal); }
void triu(const KernelArgs& a, const TriangleAttrs& attrs) { triangle<false>(a, attrs.diagonal); }

}  // namespace ember::cpu
