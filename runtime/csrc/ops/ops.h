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
// Hook for the CUDA backend: dst <- src when their devices differ; without CUDA it raises a clear error.
Tensor& copy_between_devices_(Tensor& dst, const Tensor& src);
// (CUDA backend) non_blocking: a copy from/to pinned host memory does not wait for the stream.
Tensor& copy_between_devices_(Tensor& dst, const Tensor& src, bool non_blocking);
// Python numbers as the second operand (promotion as torch's wrapped numbers; see ops/elementwise.h).
Tensor add(const Tensor& a, Scalar b, Scalar alpha = int64_t{1});
Tensor sub(const Tensor& a, Scalar b, Scalar alpha = int64_t{1});
Tensor mul(const Tensor& a, Scalar b);
Tensor div(const Tensor& a, Scalar b);
Tensor floor_divide(const Tensor& a, const Tensor& b);
Tensor remainder(const Tensor& a, const Tensor& b);
Tensor lerp(const Tensor& a, const Tensor& end, const Tensor& weight);
Tensor lerp(const Tensor& a, const Tensor& end, Scalar weight);
Tensor where(const Tensor& cond, const Tensor& a, Scalar b);
Tensor clamp_min(const Tensor& x, Scalar min);
Tensor clamp_max(const Tensor& x, Scalar max);
Tensor exp2(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor log2(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor tan(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor softplus(const Tensor& x, Scalar beta = int64_t{1}, Scalar threshold = int64_t{20});
Tensor leaky_relu(const Tensor& x, Scalar negative_slope = 0.01);
Tensor nan_to_num(const Tensor& x, std::optional<double> nan = std::nullopt, std::optional<double> posinf = std::nullopt, std::optional<double> neginf = std::nullopt);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_xor(const Tensor& a, const Tensor& b);
Tensor bitwise_and(const Tensor& a, const Tensor& b);
Tensor bitwise_or(const Tensor& a, const Tensor& b);
Tensor bitwise_xor(const Tensor& a, const Tensor& b);
Tensor bitwise_not(const Tensor& x);
Tensor isinf(const Tensor& x);
Tensor isfinite(const Tensor& x);
Tensor erf(const Tensor& x);
Tensor floor(const Tensor& x);
Tensor ceil(const Tensor& x);
Tensor round(const Tensor& x);
Tensor trunc(const Tensor& x);
Tensor& sub_(Tensor& self, const Tensor& other, Scalar alpha = int64_t{1});
Tensor& div_(Tensor& self, const Tensor& other);
Tensor& add_(Tensor& self, Scalar other, Scalar alpha = int64_t{1});
Tensor& mul_(Tensor& self, Scalar other);
Tensor& clamp_(Tensor& self, std::optional<Scalar> min, std::optional<Scalar> max);

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
Tensor cumsum(const Tensor& x, int64_t dim, std::optional<ScalarType> dtype);
Tensor mean(const Tensor& x, IntSpan dims, bool keepdim, std::optional<ScalarType> dtype);
Tensor prod(const Tensor& x, IntSpan dims = {}, bool keepdim = false, std::optional<ScalarType> dtype = std::nullopt);
// max/min over a dim -> (values, indices); the full reductions max(x)/min(x) are max_all/min_all.
std::pair<Tensor, Tensor> max_dim(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min_dim(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max_all(const Tensor& x);
Tensor min_all(const Tensor& x);
Tensor argmax(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor var(const Tensor& x, IntSpan dims = {}, double correction = 1.0, bool keepdim = false);
Tensor std_dev(const Tensor& x, IntSpan dims = {}, double correction = 1.0, bool keepdim = false);  // torch.std
std::pair<Tensor, Tensor> var_mean(const Tensor& x, IntSpan dims = {}, double correction = 1.0, bool keepdim = false);
std::pair<Tensor, Tensor> std_mean(const Tensor& x, IntSpan dims = {}, double correction = 1.0, bool keepdim = false);
// p = 2, 1, inf, -inf, 0 or any float ('fro' is 2).
Tensor norm(const Tensor& x, double p = 2.0, IntSpan dims = {}, bool keepdim = false);
Tensor any(const Tensor& x, IntSpan dims = {}, bool keepdim = false);
Tensor all(const Tensor& x, IntSpan dims = {}, bool keepdim = false);
Tensor softmax(const Tensor& x, int64_t dim, std::optional<ScalarType> dtype);
Tensor log_softmax(const Tensor& x, int64_t dim, std::optional<ScalarType> dtype);
// softmax(x * scale) over the last dim; causal masks keys after the query (torch is_causal).
Tensor scaled_softmax(const Tensor& x, double scale, bool causal);
// scale * y * (g - sum(g * y, -1)): the backward of (scaled_)softmax over the last dim.
Tensor softmax_backward(const Tensor& grad, const Tensor& output, double scale);
std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false, bool stable = false);
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false, bool stable = false);
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true);

// ---- linear algebra: ops/linalg.cpp -------------------------------------------------------------
Tensor mm(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor addmm(const Tensor& bias, const Tensor& a, const Tensor& b, Scalar beta = int64_t{1}, Scalar alpha = int64_t{1});
Tensor dot(const Tensor& a, const Tensor& b);
Tensor outer(const Tensor& a, const Tensor& b);
// x @ weight.T + bias (an undefined bias means none).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

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
Tensor squeeze(const Tensor& x, IntSpan dims);
Tensor t(const Tensor& x);
Tensor matrix_transpose(const Tensor& x);  // .mT
Tensor reverse_dims(const Tensor& x);      // .T
Tensor movedim(const Tensor& x, IntSpan source, IntSpan destination);
Tensor broadcast_to(const Tensor& x, IntSpan sizes);
TensorList split_with_sizes(const Tensor& x, IntSpan sizes, int64_t dim = 0);

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
Tensor& index_put_(Tensor& self, const TensorList& indices, const Tensor& values, bool accumulate = false);
Tensor flip(const Tensor& x, IntSpan dims);
Tensor roll(const Tensor& x, IntSpan shifts, IntSpan dims = {});
Tensor repeat(const Tensor& x, IntSpan repeats);
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, Scalar value);
Tensor masked_fill(const Tensor& x, const Tensor& mask, const Tensor& value);
Tensor masked_select(const Tensor& x, const Tensor& mask);
Tensor embedding(const Tensor& weight, const Tensor& indices);
Tensor one_hot(const Tensor& indices, int64_t num_classes = -1);
Tensor nonzero(const Tensor& x);
Tensor take_along_dim(const Tensor& x, const Tensor& indices, std::optional<int64_t> dim = std::nullopt);

// ---- random: ops/random.cpp ---------------------------------------------------------------------
void manual_seed(uint64_t seed);
Tensor rand(IntSpan sizes, ScalarType dtype = ScalarType::Float32, Device device = Device());
Tensor randn(IntSpan sizes, ScalarType dtype = ScalarType::Float32, Device device = Device());
Tensor bernoulli(const Tensor& p);
Tensor dropout(const Tensor& x, double p, bool train);
// Random state of the default generators (core/generator.h): seed() reseeds nondeterministically.
uint64_t seed();
uint64_t initial_seed();
Tensor randint(int64_t low, int64_t high, IntSpan sizes, ScalarType dtype = ScalarType::Int64, Device device = Device());
Tensor randperm(int64_t n, ScalarType dtype = ScalarType::Int64, Device device = Device());
// In-place fills: uniform on [from, to), normal(mean, std), integers in [low, high).
Tensor& uniform_(Tensor& self, double from = 0, double to = 1);
Tensor& normal_(Tensor& self, double mean = 0, double std = 1);
Tensor& random_(Tensor& self, int64_t low, int64_t high);
// Bernoulli draws with probability p (a tensor broadcast to self, or one number).
Tensor bernoulli(const Tensor& x, double p);
Tensor& bernoulli_(Tensor& self, double p);
Tensor& bernoulli_(Tensor& self, const Tensor& p);
// Samples category indices from the rows of `probs` (1-D or 2-D, non-negative weights).
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement = false);

// ---- losses: ops/loss.cpp (Note [Fused cross-entropy]) ------------------------------------------
enum class LossReduction : int64_t { None = 0, Sum = 1, Mean = 2 };
// Softmax cross-entropy of logits [N, C] against int64 targets [N] -> (loss, per-row logsumexp).
std::pair<Tensor, Tensor> cross_entropy_loss(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100, double label_smoothing = 0.0, LossReduction reduction = LossReduction::Mean);
// Its gradient w.r.t. the logits (not differentiable; the backward rule falls back under create_graph).
Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target, const Tensor& lse, int64_t ignore_index, double label_smoothing, LossReduction reduction);

// ---- normalization: ops/norm.cpp ---------------------------------------------------------------
// LayerNorm over the trailing normalized_shape dims; undefined weight/bias mean none.
Tensor layer_norm(const Tensor& x, IntSpan normalized_shape, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), double eps = 1e-5);
// mean/rstd have shape [*leading dims, 1, ...], float32 for half types, and are not differentiable (as torch).
struct LayerNormResult { Tensor out, mean, rstd; };
LayerNormResult native_layer_norm(const Tensor& x, IntSpan normalized_shape, const Tensor& weight, const Tensor& bias, double eps);

// ---- optimizers: ops/optim.cpp (Note [Fused Adam step]) ----------------------------------------
// One Adam (decoupled=false) / AdamW (decoupled=true) step, in place on param, exp_avg, exp_avg_sq and
// the 0-dim float32 `step` (incremented by the kernel; no amsgrad). All share param's device; the state, param's dtype and shape.
void adam_step_(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& step, double lr, double beta1, double beta2, double eps, double weight_decay, bool decoupled, bool maximize);

}  // namespace ember
