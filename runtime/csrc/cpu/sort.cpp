// CPU sort and topk along one dim. Each row is gathered into (value, index) pairs and ordered with
// NaN treated as larger than every number (torch's order); ties keep ascending index order, so
// sort is stable and results are deterministic.
#include <algorithm>
#include <vector>

#include "cpu/dim_lines.h"
#include "cpu/reduce_engine.h"
#include "generated/kernels_reduce.h"

namespace ember::cpu {
namespace {

template <typename Acc> inline bool nan_aware_less(Acc a, Acc b) {
  if constexpr (std::is_floating_point_v<Acc>) {
    if (b != b) return a == a;  // a < NaN unless a is NaN too
    if (a != a) return false;
  }
  return a < b;
}

// Sorts (or selects the first k of) every row along `dim`; out sizes equal x's except dim (k).
void sort_rows(const KernelArgs& a, int64_t dim, int64_t k, bool descending, bool partial, const char* name) {
  const Tensor& x = a.in[0];
  Tensor values = a.out[0], indices = a.out[1];
  const DimLines lines(x, dim, values.sizes());
  const int64_t n = lines.length, xs = lines.in_stride, os = lines.out_stride;
  if (values.numel() == 0 || n == 0) return;
  dispatch_all(x.dtype(), name, [&]<typename T>() {
    using Acc = opmath_t<T>;
    const T* xb = x.data<T>();
    T* vb = values.data<T>();
    int64_t* ib = indices.data<int64_t>();
    parallel_for(0, lines.count, std::max<int64_t>(1, kGrainSize / (n * 8)), [&](int64_t lo, int64_t hi) {
      std::vector<std::pair<Acc, int64_t>> row(n);
      auto cmp = [descending](const std::pair<Acc, int64_t>& p, const std::pair<Acc, int64_t>& q) {
        const bool before = descending ? nan_aware_less(q.first, p.first) : nan_aware_less(p.first, q.first);
        if (before) return true;
        const bool after = descending ? nan_aware_less(p.first, q.first) : nan_aware_less(q.first, p.first);
        return !after && p.second < q.second;
      };
      for (int64_t r = lo; r < hi; ++r) {
        const auto [xo, oo] = lines.offsets(r);
        for (int64_t i = 0; i < n; ++i) row[i] = {load_as<T, Acc>(xb + xo + i * xs), i};
        if (partial && k < n) std::partial_sort(row.begin(), row.begin() + k, row.end(), cmp);
        else std::sort(row.begin(), row.end(), cmp);
        for (int64_t i = 0; i < k; ++i) {
          vb[oo + i * os] = static_cast<T>(row[i].first);
          ib[oo + i * os] = row[i].second;
        }
      }
    });
  });
}

}  // namespace

void sort(const KernelArgs& a, const SortAttrs& attrs) {
  const Tensor& x = a.in[0];
  const int64_t n = x.dim() == 0 ? 1 : x.sizes()[attrs.dim];
  sort_rows(a, attrs.dim, n, attrs.descending, /*partial=*/false, "sort");
}

void topk(const KernelArgs& a, const TopkAttrs& attrs) {
  sort_rows(a, attrs.dim, attrs.k, attrs.largest, /*partial=*/true, "topk");
}

}  // namespace ember::cpu
