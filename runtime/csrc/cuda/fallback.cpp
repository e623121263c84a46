// Note [CUDA fallback kernels]
// Ops whose CUDA kernel is not written yet run their CPU kernel on host copies: inputs and the
// current contents of the outputs are copied to the host, the CPU kernel runs (same validation,
// same error messages, same results), and the outputs are copied back. Correct but slow, and not
// capturable in a CUDA graph (the copies synchronize). An op is listed in EMBER_CUDA_FALLBACK_OPS
// (its op-table row names cuda::<op>, defined here); natively implemented ops are not. Every op
// once listed here now has a native kernel (sort.cu, layout.cu, index_advanced.cu), so the list is
// empty; run_on_host still serves integer mm/bmm/addmm (blas.cpp) and random.cu has its own.
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cuda/cuda_common.h"
#include "cuda/internal.h"
#include "dispatch/op_def.h"

// e.g. `#define EMBER_CUDA_FALLBACK_OPS(_) _(cat) _(flip)`
#define EMBER_CUDA_FALLBACK_OPS(_)

namespace ember::cpu {
#define EMBER_DECLARE_CPU_KERNEL(name) void name(const KernelArgs&);
EMBER_CUDA_FALLBACK_OPS(EMBER_DECLARE_CPU_KERNEL)
#undef EMBER_DECLARE_CPU_KERNEL
}  // namespace ember::cpu

namespace ember::cuda {

void run_on_host(const KernelArgs& args, void (*cpu_kernel)(const KernelArgs&)) {
  EMBER_CHECK(!is_capturing(current_stream()), "[", op_def(args.op).name, "] has no CUDA graph-capturable kernel "
              "yet (it runs on the host through copies)");
  if (std::getenv("EMBER_CUDA_LOG_FALLBACK")) {  // once per op: which ops still run on the host
    static std::mutex mu;
    static std::set<std::string> seen;
    std::lock_guard<std::mutex> lock(mu);
    if (seen.insert(op_def(args.op).name).second)
      std::fprintf(stderr, "[ember.cuda] %s runs through the host fallback\n", op_def(args.op).name);
  }
  auto to_host = [](const Tensor& t) {
    if (!t.defined() || t.device().is_cpu()) return t;
    Tensor h = Tensor::empty(t.sizes(), t.dtype(), Device());
    copy_between_devices(h, t, false);
    return h;
  };
  std::vector<Tensor> ins, outs;
  for (const Tensor& t : args.in) ins.push_back(to_host(t));
  for (const Tensor& t : args.out) outs.push_back(to_host(t));
  cpu_kernel(KernelArgs{args.op, ins, outs, args.attrs});
  for (size_t i = 0; i < outs.size(); ++i) copy_between_devices(args.out[i], outs[i], false);
}

#define EMBER_DEFINE_FALLBACK(name) \
  void name(const KernelArgs& args) { run_on_host(args, &cpu::name); }
EMBER_CUDA_FALLBACK_OPS(EMBER_DEFINE_FALLBACK)
#undef EMBER_DEFINE_FALLBACK

}  // namespace ember::cuda
