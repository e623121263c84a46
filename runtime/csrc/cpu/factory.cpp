// CPU kernels of arange, linspace and eye. Outputs are freshly allocated and contiguous.
#include "core/parallel.h"
#include "generated/kernels_factory.h"

namespace ember::cpu {

void arange(const KernelArgs& args, const ArangeAttrs& attrs) {
  const Tensor& out = args.out[0];
  EMBER_DISPATCH_NUMERIC(out.dtype(), "arange", ([&]<typename scalar_t>() {
    scalar_t* dst = out.data<scalar_t>();
    if constexpr (std::is_integral_v<scalar_t>) {
      const int64_t start = attrs.start.to_int(), step = attrs.step.to_int();
      const bool int_args = !attrs.start.is_float() && !attrs.step.is_float();
      const double fstart = attrs.start.to_double(), fstep = attrs.step.to_double();
      parallel_for(0, out.numel(), kGrainSize, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i)
          dst[i] = int_args ? static_cast<scalar_t>(start + i * step)
                            : static_cast<scalar_t>(static_cast<int64_t>(fstart + static_cast<double>(i) * fstep));
      });
    } else {
      const double start = attrs.start.to_double(), step = attrs.step.to_double();
      parallel_for(0, out.numel(), kGrainSize, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i)
          dst[i] = static_cast<scalar_t>(static_cast<opmath_t<scalar_t>>(start + static_cast<double>(i) * step));
      });
    }
  }));
}

// Torch's symmetric formula: the first half counts up from start, the second half down from end,
// so both endpoints are exact.
void linspace(const KernelArgs& args, const LinspaceAttrs& attrs) {
  const Tensor& out = args.out[0];
  const int64_t steps = attrs.steps;
  const double start = attrs.start.to_double(), end = attrs.end.to_double();
  const double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  const int64_t halfway = steps / 2;
  EMBER_DISPATCH_NUMERIC(out.dtype(), "linspace", ([&]<typename scalar_t>() {
    scalar_t* dst = out.data<scalar_t>();
    parallel_for(0, steps, kGrainSize, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const double v = steps == 1 ? start : i < halfway ? start + step * static_cast<double>(i)
                                     : end - step * static_cast<double>(steps - i - 1);
        if constexpr (std::is_integral_v<scalar_t>) dst[i] = static_cast<scalar_t>(static_cast<int64_t>(v));
        else dst[i] = static_cast<scalar_t>(static_cast<opmath_t<scalar_t>>(v));
      }
    });
  }));
}

void eye(const KernelArgs& args, const NoAttrs&) {
  const Tensor& out = args.out[0];
  const int64_t n = out.sizes()[0], m = out.sizes()[1];
  EMBER_DISPATCH_ALL(out.dtype(), "eye", ([&]<typename scalar_t>() {
    scalar_t* dst = out.data<scalar_t>();
    const scalar_t zero = static_cast<scalar_t>(0.0f), one = static_cast<scalar_t>(1.0f);
    parallel_for(0, n, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(m, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i)
        for (int64_t j = 0; j < m; ++j) dst[i * m + j] = i == j ? one : zero;
    });
  }));
}

}  // namespace ember::cpu
