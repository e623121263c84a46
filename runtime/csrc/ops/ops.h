#pragma once
// Frontends of every op, in torch's names and argument order. Each checks its arguments (errors
// name the op and the offending shapes/dtypes), allocates outputs and calls dispatch().
// One declaration per line; defaults as in torch. Sections list the file that defines them.
#include <optional>
#include <vector>

#include "core/tensor.h"

namespace ember {

using TensorList = std::vector<Tensor>;

// ---- factories: ops/factory.cpp -----------------------------------------------------------------
Tensor empty(IntSpan sizes, ScalarType dtype = ScalarType::Float32, Device device = Device());
Tensor zeros(IntSpan sizes, ScalarType dtype = ScalarType::Float32, Device device = Device());
Tensor ones(IntSpan sizes, ScalarType dtype = ScalarType::Float32, Device device = Device());
Tensor full(IntSpan sizes, Scalar value, ScalarType dtype, Device device = Device());
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, Scalar value);
// A 0-dim tensor holding `value` (Python numbers entering tensor ops become these).
Tensor scalar_tensor(Scalar value, ScalarType dtype, Device device = Device());
Tensor arange(Scalar start, Scalar end, Scalar step, std::optional<ScalarType> dtype = std::nullopt, Device device = Device());
Tensor linspace(Scalar start, Scalar end, int64_t steps, ScalarType dtype = ScalarType::Float32, Device device = Device());
Tensor eye(int64_t n, int64_t m, ScalarType dtype = ScalarType::Float32, Device device = Device());

// ---- elementwise: ops/elementwise.cpp -----------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b, Scalar alpha = int64_t{1});
Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha = int64_t{1});
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, Scalar exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max);
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
Tensor silu(const Tensor& x);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& x);
Tensor isnan(const Tensor& x);
// In-place arithmetic used across the runtime (gradient accumulation, optimizers).
Tensor& add_(Tensor& self, const Tensor& other, Scalar alpha = int64_t{1});
Tensor& mul_(Tensor& self, const Tensor& other);
// Copies src into self (broadcasting src, converting dtype, across devices).
Tensor& copy_(Tensor& self, const Tensor& src);
Tensor& fill_(Tensor& self, Scalar value);
Tensor& zero_(Tensor& self);
Tensor clone(const Tensor& x);
Tensor contiguous(const Tensor& x);
// Returns x itself when it already has the dtype (and copy is false), like torch's .to().
Tensor to_dtype(const Tensor& x, ScalarType dtype, bool copy = false);
Tensor to_device(const Tensor& x, Device device, bool non_blocking = false);

// ---- reductions, scans, sorting: ops/reduce.cpp -------------------------------------------------
// An empty `dims` reduces over every dimension (torch's dim=None).
Tensor sum(const Tensor& x, IntSpan dims = {}, bool keepdim = false, std::optional<ScalarType> dtype = std::nullopt);
Tensor mean(const Tensor& x, IntSpan dims = {}, bool keepdim = false);
Tensor amax(const Tensor& x, IntSpan dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, IntSpan dims = {}, bool keepdim = false);
// Sums broadcast dimensions away so the result has `sizes` (gradient of broadcasting).
Tensor sum_to_size(const Tensor& x, IntSpan sizes);
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
Tensor logsumexp(const Tensor& x, IntSpan dims, bool keepdim = false);
Tensor cumsum(const Tensor& x, int64_t dim);

// ---- linear algebra: ops/linalg.cpp -------------------------------------------------------------
Tensor mm(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor addmm(const Tensor& bias, const Tensor& a, const Tensor& b, Scalar beta = int64_t{1}, Scalar alpha = int64_t{1});

// ---- views: ops/views.cpp (no copies; outputs share storage) ------------------------------------
Tensor as_strided(const Tensor& x, IntSpan sizes, IntSpan strides, std::optional<int64_t> offset = std::nullopt);
Tensor view(const Tensor& x, IntSpan sizes);
Tensor reshape(const Tensor& x, IntSpan sizes);
Tensor permute(const Tensor& x, IntSpan dims);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor expand(const Tensor& x, IntSpan sizes);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor squeeze(const Tensor& x, std::optional<int64_t> dim = std::nullopt);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor unflatten(const Tensor& x, int64_t dim, IntSpan sizes);
Tensor diagonal(const Tensor& x, int64_t offset = 0, int64_t dim1 = 0, int64_t dim2 = 1);
TensorList split(const Tensor& x, int64_t split_size, int64_t dim = 0);
TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
TensorList unbind(const Tensor& x, int64_t dim = 0);

// ---- layout and indexing: ops/layout.cpp, ops/index.cpp -----------------------------------------
Tensor cat(const TensorList& tensors, int64_t dim = 0);
Tensor stack(const TensorList& tensors, int64_t dim = 0);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source, Scalar alpha = int64_t{1});
Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value);
// Advanced indexing x[indices] with undefined entries meaning ':' (torch's index.Tensor).
Tensor index(const Tensor& x, const TensorList& indices);
Tensor index_put(const Tensor& x, const TensorList& indices, const Tensor& values, bool accumulate = false);

// ---- random: ops/random.cpp ---------------------------------------------------------------------
void manual_seed(uint64_t seed);
Tensor rand(IntSpan sizes, ScalarType dtype = ScalarType::Float32, Device device = Device());
Tensor randn(IntSpan sizes, ScalarType dtype = ScalarType::Float32, Device device = Device());
Tensor bernoulli(const Tensor& p);
Tensor dropout(const Tensor& x, double p, bool train);

}  // namespace ember
