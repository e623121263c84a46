#pragma once
// Types of the op table's columns: kernels, backward rules and flags.
#include <span>

#include "core/tensor.h"
#include "dispatch/attrs.h"

namespace ember {

enum class OpId : uint16_t;

// A kernel computes `out` from `in`; the frontend has already checked arguments, promoted dtypes
// and allocated outputs on the right device. Kernels must not throw inside a parallel region.
struct KernelArgs {
  OpId op;
  std::span<const Tensor> in;
  std::span<Tensor> out;
  const Attrs& attrs;
};
using Kernel = void (*)(const KernelArgs&);

class BackwardCtx;
using BackwardRule = void (*)(BackwardCtx&);

enum OpFlags : uint8_t {
  kSaveNone = 0,
  kSaveInputs = 1,    // backward reads the inputs (cloned first when an in-place op overwrites them)
  kSaveOutputs = 2,   // backward reads the outputs
  kSaveBoth = 3,
  kView = 4,          // outputs alias input 0's storage (view ops); the kernel is `view` (a no-op)
};

struct OpDef {
  const char* name;
  const char* schema;
  Kernel kernels[2];      // indexed by DeviceType: cpu, cuda (null when CUDA is not built)
  BackwardRule backward;  // null: not differentiable
  uint8_t flags;
};

const OpDef& op_def(OpId id);

}  // namespace ember
