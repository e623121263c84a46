#pragma once
// Note [The op table]
// Every op of ember is one entry of runtime/spec/*.yaml: its frontend's signature, a typed attrs
// struct, the CPU and CUDA kernels (or the shared pointwise functor both are generated from), the
// backward rule and how Python sees it. runtime/codegen generates OpId, the attrs structs, the
// kernel declarations and the table (build/.../generated/). Frontends in ops/*.cpp check arguments,
// allocate outputs and call dispatch<OpId::x> (dispatcher.h), which picks the kernel for the
// inputs' device and records the autograd node. Recipe for a new op: docs/adding_an_op.md.
#include "dispatch/op_def.h"
#include "generated/op_ids.h"
