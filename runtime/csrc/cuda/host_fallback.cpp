// run_on_host: a CPU kernel run on host copies of a CUDA op's inputs and outputs, for the cases
// that have no device kernel: integer matmuls with nothing to multiply (blas.cpp) and the
// sequential samplers randperm/multinomial (random.cu). Correct but slow, and not capturable in a
// CUDA graph (the copies synchronize).
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cuda/cuda_common.h"
#include "cuda/internal.h"

namespace ember::cuda {

void run_on_host(const KernelArgs& args, const HostKernel& cpu_kernel) {
  EMBER_CHECK(!is_capturing(current_stream()), "[", op_def(args.op).name, "] has no CUDA graph-capturable kernel "
              "(it runs on the host through copies)");
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
  cpu_kernel(KernelArgs{args.op, ins, outs});
  for (size_t i = 0; i < outs.size(); ++i) copy_between_devices(args.out[i], outs[i], false);
}

}  // namespace ember::cuda
