// Builds the runtime table from EMBER_OP_TABLE (op_table.h).
#include "dispatch/op_table.h"

#include <string_view>

namespace ember {

#define EMBER_DECLARE_CPU(name, schema, cpu_k, cuda_k, bw, flags) void cpu_k(const KernelArgs&);
#define EMBER_DECLARE_CUDA(name, schema, cpu_k, cuda_k, bw, flags) void cuda_k(const KernelArgs&);
#define EMBER_DECLARE_BACKWARD(name, schema, cpu_k, cuda_k, bw, flags) void bw(BackwardCtx&);
namespace cpu { EMBER_OP_TABLE(EMBER_DECLARE_CPU) }
namespace cuda { EMBER_OP_TABLE(EMBER_DECLARE_CUDA) }
namespace backward {
EMBER_OP_TABLE(EMBER_DECLARE_BACKWARD)
void none(BackwardCtx&) {}  // placeholder name for "not differentiable"; never called
}  // namespace backward

// View ops compute nothing on any device: the frontend builds the aliasing output.
namespace cpu { void view(const KernelArgs&) {} }
#ifdef EMBER_WITH_CUDA
namespace cuda { void view(const KernelArgs&) {} void none(const KernelArgs&) {} }
#define EMBER_CUDA_KERNEL(k) (std::string_view(#k) == "none" ? nullptr : &cuda::k)
#else
#define EMBER_CUDA_KERNEL(k) nullptr
#endif

namespace {
OpDef g_table[kNumOps] = {
#define EMBER_OP_ROW(name, schema, cpu_k, cuda_k, bw, flags)                                   \
  OpDef{#name, schema, {&cpu::cpu_k, EMBER_CUDA_KERNEL(cuda_k)},                                 \
        std::string_view(#bw) == "none" ? nullptr : &backward::bw, static_cast<uint8_t>(flags)},
    EMBER_OP_TABLE(EMBER_OP_ROW)
#undef EMBER_OP_ROW
};
}  // namespace

const OpDef& op_def(OpId id) { return g_table[static_cast<int>(id)]; }

void set_kernel(OpId id, DeviceType device, Kernel kernel) {
  g_table[static_cast<int>(id)].kernels[static_cast<int>(device)] = kernel;
}

}  // namespace ember
