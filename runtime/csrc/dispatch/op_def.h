#pragma once
// Types of the op table's columns (the table itself is generated from runtime/spec/*.yaml into
// generated/op_table.cpp): kernels, backward rules, node factories and flags, all attrs-erased.
#include <memory>
#include <span>

#include "core/tensor.h"

namespace ember {

enum class OpId : uint16_t;

// A kernel computes `out` from `in`; the frontend has already checked arguments, promoted dtypes
// and allocated outputs on the right device. Kernels must not throw inside a parallel region.
// Each kernel also receives its op's typed attrs (generated/kernels_<family>.h declares the signatures).
struct KernelArgs {
  OpId op;
  std::span<const Tensor> in;
  std::span<Tensor> out;
};

class BackwardCtx;
struct OpNode;
// Entry points with the attrs passed as `const void*`; generated/op_table.cpp casts them back to
// the op's attrs type (dispatch<OpId::x> only accepts that type, so the cast is always right).
using KernelFn = void (*)(const KernelArgs&, const void* attrs);
using BackwardFn = void (*)(BackwardCtx&, const void* attrs);
using NodeFn = std::shared_ptr<OpNode> (*)(OpId, const void* attrs);

enum OpFlags : uint8_t {
  kSaveNone = 0,
  kSaveInputs = 1,    // backward reads the inputs (cloned first when an in-place op overwrites them)
  kSaveOutputs = 2,   // backward reads the outputs
  kSaveBoth = 3,
  kView = 4,          // outputs alias input 0's storage (view ops): no kernel runs
};

struct OpDef {
  const char* name;
  const char* schema;     // the frontend's signature in the spec
  KernelFn kernels[2];    // indexed by DeviceType: cpu, cuda (null: no kernel for the device)
  BackwardFn backward;    // null: not differentiable
  NodeFn make_node;       // the autograd node holding a copy of the attrs (null when not differentiable)
  uint8_t flags;
};

const OpDef& op_def(OpId id);

}  // namespace ember
