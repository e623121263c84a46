#pragma once
// Note [The op table]
// Every op of ember is one row below: its name, its torch-style schema, the CPU kernel (a function
// in ember::cpu, cpu/*.cpp), the CUDA kernel (ember::cuda, cuda/*.cu; `none` = no CUDA kernel yet)
// and its backward rule (ember::backward, next to the frontend in ops/*.cpp; `none` = not
// differentiable), plus flags (which tensors the backward reads, whether outputs are views).
// The frontends in ops/*.cpp check arguments, allocate outputs and call `dispatch` (dispatcher.h),
// which picks the kernel for the inputs' device and records the autograd node.
// Recipe for a new op: docs/adding_an_op.md.
#include "dispatch/op_def.h"

// clang-format off
#define EMBER_OP_TABLE(OP)                                                                                          \
  /* ---- elementwise: ops/elementwise.cpp, cpu/elementwise.cpp ---------------------------------------------- */ \
  /*  name          schema                                                 cpu          cuda         backward     flags */ \
  OP(add,          "add(Tensor self, Tensor other, *, Scalar alpha=1)",   add,         add,         add,         kSaveNone)    \
  OP(sub,          "sub(Tensor self, Tensor other, *, Scalar alpha=1)",   sub,         sub,         sub,         kSaveNone)    \
  OP(mul,          "mul(Tensor self, Tensor other)",                      mul,         mul,         mul,         kSaveInputs)  \
  OP(div,          "div(Tensor self, Tensor other)",                      div,         div,         div,         kSaveInputs)  \
  OP(floor_divide, "floor_divide(Tensor self, Tensor other)",             floor_divide, floor_divide, none,      kSaveNone)    \
  OP(pow,          "pow(Tensor self, Tensor exponent)",                   pow,         pow,         pow,         kSaveBoth)    \
  OP(maximum,      "maximum(Tensor self, Tensor other)",                  maximum,     maximum,     maximum,     kSaveInputs)  \
  OP(minimum,      "minimum(Tensor self, Tensor other)",                  minimum,     minimum,     minimum,     kSaveInputs)  \
  OP(lerp,         "lerp(Tensor self, Tensor end, Tensor weight)",        lerp,        lerp,        lerp,        kSaveInputs)  \
  OP(where,        "where(Tensor condition, Tensor self, Tensor other)",  where,       where,       where,       kSaveInputs)  \
  OP(clamp,        "clamp(Tensor self, Scalar? min=None, Scalar? max=None)", clamp,    clamp,       clamp,       kSaveInputs)  \
  OP(neg,          "neg(Tensor self)",                                    neg,         neg,         neg,         kSaveNone)    \
  OP(abs,          "abs(Tensor self)",                                    abs,         abs,         abs,         kSaveInputs)  \
  OP(sign,         "sign(Tensor self)",                                   sign,        sign,        zero_grad,   kSaveNone)    \
  OP(exp,          "exp(Tensor self)",                                    exp,         exp,         exp,         kSaveOutputs) \
  OP(exp2,         "exp2(Tensor self)",                                   exp2,        exp2,        exp2,        kSaveOutputs) \
  OP(expm1,        "expm1(Tensor self)",                                  expm1,       expm1,       expm1,       kSaveOutputs) \
  OP(log,          "log(Tensor self)",                                    log,         log,         log,         kSaveInputs)  \
  OP(log2,         "log2(Tensor self)",                                   log2,        log2,        log2,        kSaveInputs)  \
  OP(log1p,        "log1p(Tensor self)",                                  log1p,       log1p,       log1p,       kSaveInputs)  \
  OP(sqrt,         "sqrt(Tensor self)",                                   sqrt,        sqrt,        sqrt,        kSaveOutputs) \
  OP(rsqrt,        "rsqrt(Tensor self)",                                  rsqrt,       rsqrt,       rsqrt,       kSaveOutputs) \
  OP(sin,          "sin(Tensor self)",                                    sin,         sin,         sin,         kSaveInputs)  \
  OP(cos,          "cos(Tensor self)",                                    cos,         cos,         cos,         kSaveInputs)  \
  OP(tan,          "tan(Tensor self)",                                    tan,         tan,         tan,         kSaveOutputs) \
  OP(tanh,         "tanh(Tensor self)",                                   tanh,        tanh,        tanh,        kSaveOutputs) \
  OP(sigmoid,      "sigmoid(Tensor self)",                                sigmoid,     sigmoid,     sigmoid,     kSaveOutputs) \
  OP(relu,         "relu(Tensor self)",                                   relu,        relu,        relu,        kSaveOutputs) \
  OP(gelu,         "gelu(Tensor self, *, str approximate='none')  [flag: tanh]", gelu, gelu,        gelu,        kSaveInputs)  \
  OP(silu,         "silu(Tensor self)",                                   silu,        silu,        silu,        kSaveInputs)  \
  /* Fused single-pass activation backward (CPU and CUDA; used when the backward needs no graph). */  \
  OP(tanh_backward,    "tanh_backward(Tensor grad, Tensor output)",      tanh_backward,    tanh_backward,    none, kSaveNone) \
  OP(sigmoid_backward, "sigmoid_backward(Tensor grad, Tensor output)",   sigmoid_backward, sigmoid_backward, none, kSaveNone) \
  OP(relu_backward,    "relu_backward(Tensor grad, Tensor output)",      relu_backward,    relu_backward,    none, kSaveNone) \
  OP(gelu_backward,    "gelu_backward(Tensor grad, Tensor self, *, str approximate='none')  [flag: tanh]", gelu_backward, gelu_backward, none, kSaveNone) \
  OP(silu_backward,    "silu_backward(Tensor grad, Tensor self)",        silu_backward,    silu_backward,    none, kSaveNone) \
  OP(softplus,     "softplus(Tensor self, Scalar beta=1, Scalar threshold=20)", softplus, softplus, softplus,    kSaveInputs)  \
  OP(leaky_relu,   "leaky_relu(Tensor self, Scalar negative_slope=0.01)", leaky_relu,  leaky_relu,  leaky_relu,  kSaveInputs)  \
  OP(erf,          "erf(Tensor self)",                                    erf,         erf,         erf,         kSaveInputs)  \
  OP(floor,        "floor(Tensor self)",                                  floor,       floor,       zero_grad,   kSaveNone)    \
  OP(ceil,         "ceil(Tensor self)",                                   ceil,        ceil,        zero_grad,   kSaveNone)    \
  OP(round,        "round(Tensor self)",                                  round,       round,       zero_grad,   kSaveNone)    \
  OP(trunc,        "trunc(Tensor self)",                                  trunc,       trunc,       zero_grad,   kSaveNone)    \
  OP(nan_to_num,   "nan_to_num(Tensor self, float? nan=0, float? posinf=None, float? neginf=None)", nan_to_num, nan_to_num, nan_to_num, kSaveInputs) \
  OP(eq,           "eq(Tensor self, Tensor other) -> bool",               eq,          eq,          none,        kSaveNone)    \
  OP(ne,           "ne(Tensor self, Tensor other) -> bool",               ne,          ne,          none,        kSaveNone)    \
  OP(lt,           "lt(Tensor self, Tensor other) -> bool",               lt,          lt,          none,        kSaveNone)    \
  OP(le,           "le(Tensor self, Tensor other) -> bool",               le,          le,          none,        kSaveNone)    \
  OP(gt,           "gt(Tensor self, Tensor other) -> bool",               gt,          gt,          none,        kSaveNone)    \
  OP(ge,           "ge(Tensor self, Tensor other) -> bool",               ge,          ge,          none,        kSaveNone)    \
  OP(logical_and,  "logical_and(Tensor self, Tensor other) -> bool",      logical_and, logical_and, none,        kSaveNone)    \
  OP(logical_or,   "logical_or(Tensor self, Tensor other) -> bool",       logical_or,  logical_or,  none,        kSaveNone)    \
  OP(logical_xor,  "logical_xor(Tensor self, Tensor other) -> bool",      logical_xor, logical_xor, none,        kSaveNone)    \
  OP(logical_not,  "logical_not(Tensor self) -> bool",                    logical_not, logical_not, none,        kSaveNone)    \
  OP(bitwise_and,  "bitwise_and(Tensor self, Tensor other)",              bitwise_and, bitwise_and, none,        kSaveNone)    \
  OP(bitwise_or,   "bitwise_or(Tensor self, Tensor other)",               bitwise_or,  bitwise_or,  none,        kSaveNone)    \
  OP(bitwise_xor,  "bitwise_xor(Tensor self, Tensor other)",              bitwise_xor, bitwise_xor, none,        kSaveNone)    \
  OP(bitwise_not,  "bitwise_not(Tensor self)",                            bitwise_not, bitwise_not, none,        kSaveNone)    \
  OP(isnan,        "isnan(Tensor self) -> bool",                          isnan,       isnan,       none,        kSaveNone)    \
  OP(isinf,        "isinf(Tensor self) -> bool",                          isinf,       isinf,       none,        kSaveNone)    \
  OP(isfinite,     "isfinite(Tensor self) -> bool",                       isfinite,    isfinite,    none,        kSaveNone)    \
  OP(copy,         "copy_(Tensor(a!) self, Tensor src)  [also to(dtype), clone, contiguous]", copy, copy,  copy,        kSaveNone)    \
  OP(fill,         "fill_(Tensor(a!) self, Scalar value)",                fill,        fill,        zero_grad,   kSaveNone)    \
  /* ---- reductions, scans, sorting: ops/reduce.cpp, cpu/reduce.cpp ---------------------------------------- */ \
  OP(sum,          "sum(Tensor self, int[]? dim, bool keepdim=False, *, ScalarType? dtype)", sum, sum, sum,     kSaveNone)    \
  OP(mean,         "mean(Tensor self, int[]? dim, bool keepdim=False)",   mean,        mean,        mean,        kSaveNone)    \
  OP(prod,         "prod(Tensor self, int[]? dim, bool keepdim=False)",   prod,        prod,        prod,        kSaveBoth)    \
  OP(amax,         "amax(Tensor self, int[] dim=[], bool keepdim=False)", amax,        amax,        amax,        kSaveBoth)    \
  OP(amin,         "amin(Tensor self, int[] dim=[], bool keepdim=False)", amin,        amin,        amin,        kSaveBoth)    \
  OP(max_dim,      "max(Tensor self, int dim, bool keepdim=False) -> (values, indices)", max_dim, max_dim, max_dim, kSaveBoth) \
  OP(min_dim,      "min(Tensor self, int dim, bool keepdim=False) -> (values, indices)", min_dim, min_dim, min_dim, kSaveBoth) \
  OP(argmax,       "argmax(Tensor self, int? dim=None, bool keepdim=False)", argmax,   argmax,      none,        kSaveNone)    \
  OP(argmin,       "argmin(Tensor self, int? dim=None, bool keepdim=False)", argmin,   argmin,      none,        kSaveNone)    \
  OP(var,          "var(Tensor self, int[]? dim, *, Scalar correction=1, bool keepdim=False)", var, var, var, kSaveInputs)  \
  OP(norm,         "norm(Tensor self, Scalar p=2, int[]? dim, bool keepdim=False)", norm, norm,     norm,        kSaveBoth)    \
  OP(logsumexp,    "logsumexp(Tensor self, int[] dim, bool keepdim=False)", logsumexp, logsumexp,   logsumexp,   kSaveBoth)    \
  OP(cumsum,       "cumsum(Tensor self, int dim)",                        cumsum,      cumsum,      cumsum,      kSaveNone)    \
  OP(any,          "any(Tensor self, int[]? dim, bool keepdim=False) -> bool", any,    any,         none,        kSaveNone)    \
  OP(all,          "all(Tensor self, int[]? dim, bool keepdim=False) -> bool", all,    all,         none,        kSaveNone)    \
  OP(softmax,      "softmax(Tensor self, int dim)",                       softmax,     softmax,     softmax,     kSaveOutputs) \
  OP(log_softmax,  "log_softmax(Tensor self, int dim)",                   log_softmax, log_softmax, log_softmax, kSaveOutputs) \
  OP(sort,         "sort(Tensor self, int dim=-1, bool descending=False) -> (values, indices)", sort, sort, sort, kSaveBoth) \
  OP(topk,         "topk(Tensor self, int k, int dim=-1, bool largest=True, bool sorted=True) -> (values, indices)", topk, topk, topk, kSaveBoth) \
  /* ---- linear algebra: ops/linalg.cpp, cpu/blas.cpp (OpenBLAS) ----------------------------------------- */ \
  OP(mm,           "mm(Tensor self, Tensor mat2)",                        mm,          mm,          mm,          kSaveInputs)  \
  OP(bmm,          "bmm(Tensor self, Tensor mat2)",                       bmm,         bmm,         bmm,         kSaveInputs)  \
  OP(addmm,        "addmm(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1)", addmm, addmm, addmm, kSaveInputs) \
  /* ---- views: ops/views.cpp (no kernels: outputs share input 0's storage) -------------------------------- */ \
  OP(as_strided,   "as_strided(Tensor(a) self, int[] size, int[] stride, int? storage_offset)", view, view, as_strided, kView | kSaveNone) \
  OP(view,         "view(Tensor(a) self, int[] size)  [also reshape, flatten, unflatten, squeeze, unsqueeze]", view, view, view, kView | kSaveNone) \
  OP(permute,      "permute(Tensor(a) self, int[] dims)  [also transpose, .T, .mT]", view, view, permute,     kView | kSaveNone) \
  OP(expand,       "expand(Tensor(a) self, int[] size)",                  view,        view,        expand,      kView | kSaveNone) \
  OP(slice,        "slice(Tensor(a) self, int dim, int start, int end, int step)  [also narrow, split, chunk]", view, view, slice, kView | kSaveNone) \
  OP(select,       "select(Tensor(a) self, int dim, int index)  [also unbind]", view,  view,        select,      kView | kSaveNone) \
  OP(diagonal,     "diagonal(Tensor(a) self, int offset=0, int dim1=0, int dim2=1)", view, view,    diagonal,    kView | kSaveNone) \
  /* ---- layout and indexing: ops/index.cpp, ops/layout.cpp, cpu/index.cpp, cpu/layout.cpp ----------------- */ \
  OP(cat,          "cat(Tensor[] tensors, int dim=0)  [also stack]",      cat,         cat,         cat,         kSaveNone)    \
  OP(flip,         "flip(Tensor self, int[] dims)",                       flip,        flip,        flip,        kSaveNone)    \
  OP(roll,         "roll(Tensor self, int[] shifts, int[] dims)",         roll,        roll,        roll,        kSaveNone)    \
  OP(repeat,       "repeat(Tensor self, int[] repeats)",                  repeat,      repeat,      repeat,      kSaveNone)    \
  OP(tril,         "tril(Tensor self, int diagonal=0)",                   tril,        tril,        tril,        kSaveNone)    \
  OP(triu,         "triu(Tensor self, int diagonal=0)",                   triu,        triu,        triu,        kSaveNone)    \
  OP(gather,       "gather(Tensor self, int dim, Tensor index)",          gather,      gather,      gather,      kSaveInputs)  \
  OP(scatter,      "scatter(Tensor self, int dim, Tensor index, Tensor src)", scatter, scatter,     scatter,     kSaveInputs)  \
  OP(scatter_add,  "scatter_add(Tensor self, int dim, Tensor index, Tensor src)", scatter_add, scatter_add, scatter_add, kSaveInputs) \
  OP(index_select, "index_select(Tensor self, int dim, Tensor index)  [also embedding]", index_select, index_select, index_select, kSaveInputs) \
  OP(index_add,    "index_add(Tensor self, int dim, Tensor index, Tensor source, *, Scalar alpha=1)", index_add, index_add, index_add, kSaveInputs) \
  OP(masked_fill,  "masked_fill(Tensor self, Tensor mask, Scalar value)", masked_fill, masked_fill, masked_fill, kSaveInputs)  \
  OP(masked_select, "masked_select(Tensor self, Tensor mask)",            masked_select, masked_select, masked_select, kSaveInputs) \
  OP(index,        "index(Tensor self, Tensor?[] indices)  [advanced indexing: self[idx]]", index, index, index, kSaveInputs) \
  OP(index_put,    "index_put(Tensor self, Tensor?[] indices, Tensor values, bool accumulate=False)", index_put, index_put, index_put, kSaveInputs) \
  OP(nonzero,      "nonzero(Tensor self) -> int64",                       nonzero,     nonzero,     none,        kSaveNone)    \
  /* ---- factories and random: ops/factory.cpp, ops/random.cpp, cpu/random.cpp ---------------------------- */ \
  OP(arange,       "arange(Scalar start, Scalar end, Scalar step, *, ScalarType dtype)", arange, arange, none,   kSaveNone)    \
  OP(linspace,     "linspace(Scalar start, Scalar end, int steps, *, ScalarType dtype)", linspace, linspace, none, kSaveNone) \
  OP(eye,          "eye(int n, int m, *, ScalarType dtype)",              eye,         eye,         none,        kSaveNone)    \
  OP(uniform,      "uniform_(Tensor(a!) self, float from=0, float to=1)", uniform,     uniform,     none,        kSaveNone)    \
  OP(normal,       "normal_(Tensor(a!) self, float mean=0, float std=1)", normal,      normal,      none,        kSaveNone)    \
  OP(randint,      "randint_(Tensor(a!) self, int low, int high)",        randint,     randint,     none,        kSaveNone)    \
  OP(bernoulli,    "bernoulli(Tensor p) -> same dtype, 0/1",              bernoulli,   bernoulli,   none,        kSaveNone)    \
  OP(multinomial,  "multinomial(Tensor probs, int num_samples, bool replacement=False) -> int64", multinomial, multinomial, none, kSaveNone) \
  OP(randperm,     "randperm(int n) -> int64",                            randperm,    randperm,    none,        kSaveNone)    \
  /* ---- fused ops: one kernel (CPU and CUDA) where composites would launch many; backward composite under create_graph */ \
  /* -- normalization: ops/norm.cpp, cpu/norm.cpp, cuda/norm.cu (rows below this line) -- */ \
  /* layer_norm: x seen as [rows, N]; attrs scalar = eps, k = N, flag/flag2 = weight/bias given; mean/rstd [rows] float (double for double). */ \
  OP(layer_norm,   "native_layer_norm(Tensor input, int[] normalized_shape, Tensor? weight, Tensor? bias, float eps) -> (out, mean, rstd)", layer_norm, layer_norm, layer_norm, kSaveBoth) \
  /* layer_norm_backward: attrs k = N, dims = output mask (input, weight, bias), flag = weight given. Note [layer_norm backward]. */ \
  OP(layer_norm_backward, "layer_norm_backward(Tensor grad, Tensor input, Tensor mean, Tensor rstd, Tensor? weight) -> (grad_input, grad_weight, grad_bias)", layer_norm_backward, layer_norm_backward, none, kSaveNone) \
  /* -- losses: ops/loss.cpp, cpu/loss.cpp, cuda/loss.cu (rows below this line) -- */ \
  /* Note [Fused cross-entropy]: attrs k = ignore_index, scalar = label_smoothing, dim = reduction (0 none, 1 sum, 2 mean). */ \
  OP(cross_entropy_loss, "cross_entropy_loss(Tensor self, Tensor target, int ignore_index=-100, float label_smoothing=0, str reduction='mean') -> (loss, lse)", cross_entropy_loss, cross_entropy_loss, cross_entropy_loss, kSaveBoth) \
  OP(cross_entropy_backward, "cross_entropy_backward(Tensor grad, Tensor self, Tensor target, Tensor lse, int ignore_index, float label_smoothing, str reduction)", cross_entropy_backward, cross_entropy_backward, none, kSaveNone) \
  /* -- optimizers: ops/optim.cpp, cpu/optim.cpp, cuda/optim.cu (rows below this line) -- */ \
  /* adam_step: in (param, grad, exp_avg, exp_avg_sq, step), out (param, exp_avg, exp_avg_sq, step); Note [Fused Adam step], Note [adam_step attrs]. */ \
  OP(adam_step, "adam_step_(Tensor(a!) param, Tensor grad, Tensor(a!) exp_avg, Tensor(a!) exp_avg_sq, Tensor(a!) step, *, float lr, float beta1, float beta2, float eps, float weight_decay, bool decoupled, bool maximize)", adam_step, adam_step, none, kSaveNone) \
  /* -- attention softmax: ops/reduce.cpp, cpu/softmax.cpp, cuda/softmax.cu (Note [Causal rows]) ------- */ \
  OP(scaled_softmax, "scaled_softmax(Tensor self, float scale, bool causal)  [softmax(self * scale) over the last dim]", scaled_softmax, scaled_softmax, scaled_softmax, kSaveOutputs) \
  OP(softmax_backward, "softmax_backward(Tensor grad, Tensor output, float scale)  [scale * y * (g - sum(g * y, -1))]", softmax_backward, softmax_backward, none, kSaveNone)
// clang-format on

namespace ember {

enum class OpId : uint16_t {
#define EMBER_OP_ENUM(name, ...) name,
  EMBER_OP_TABLE(EMBER_OP_ENUM)
#undef EMBER_OP_ENUM
  kNumOps
};
constexpr int kNumOps = static_cast<int>(OpId::kNumOps);

// Installs a CUDA kernel in the table (the CUDA backend calls this at load time).
void set_kernel(OpId id, DeviceType device, Kernel kernel);

}  // namespace ember
