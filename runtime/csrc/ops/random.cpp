// Random ops: frontends reserve Philox counters from the device's current generator (an explicit
// `generator` argument, else the default one; Note [Philox streams] in core/generator.h) and pass
// (seed, offset) to the kernel in their attrs.
//
// Note [Random kernel contract] (what a device kernel must reproduce, cpu/random.cpp)
//   uniform_  [low, high). float64: 2 values per block (53 bits from words 2j, 2j+1);
//             other floats: 4 per block (word >> 8, 24 bits).
//   normal_   low=mean, high=std. Box-Muller on (1 - u1, u2): float64 one pair per block,
//             other floats two pairs (words 0,1 and 2,3); pair gives (cos, sin) for lanes 2p, 2p+1.
//   randint   [low, high); range <= 2^32: 4 per block, (word * range) >> 32;
//             larger: 2 per block, 64-bit value % range.
//   bernoulli in[0]=p tensor, or the number p; 4 per block, hit when word < p * 2^32;
//             hits store 1, or `scale` when given (dropout's 1 / (1 - p)).
//   multinomial block r * per_row + s (see the kernel).
//   randperm  Fisher-Yates, step i uses word i % 4 of block i / 4.
#include <cmath>

#include "core/generator.h"
#include "dispatch/dispatcher.h"
#include "ops/ops.h"

namespace ember {
namespace {

// Reserves `blocks` Philox counter blocks of `device`'s current generator.
PhiloxState reserve(Device device, uint64_t blocks) { return current_generator(device).reserve(blocks); }

template <OpId id>
Tensor& fill_in_place(Tensor& self, const AttrsOf<id>& attrs) {
  Tensor out[1] = {self};
  dispatch<id>(std::span<const Tensor>(out, 1), std::span<Tensor>(out, 1), attrs);
  return self;
}

uint64_t blocks_for(int64_t n, int64_t per_block) { return static_cast<uint64_t>((n + per_block - 1) / per_block); }

// Values per Philox block for one-word and two-word draws (see cpu/random.cpp).
int64_t per_block_uniform(ScalarType t) { return t == ScalarType::Float64 ? 2 : 4; }

}  // namespace

void manual_seed(uint64_t seed) { manual_seed_all(seed); }
uint64_t seed() {
  uint64_t s = default_generator().seed();
  manual_seed_all(s);
  return s;
}
uint64_t initial_seed() { return default_generator().initial_seed(); }

Tensor& uniform_(Tensor& self, double from, double to, Generator* generator) {
  GeneratorGuard guard(generator);
  EMBER_CHECK_TYPE(is_floating(self.dtype()), "[uniform_] expects a floating point tensor, got ", describe(self));
  EMBER_CHECK(from <= to, "[uniform_] expects to return a [from, to) range, but found from=", from, " > to=", to);
  if (self.numel() == 0) return self;
  const PhiloxState ph = reserve(self.device(), blocks_for(self.numel(), per_block_uniform(self.dtype())));
  return fill_in_place<OpId::uniform>(self, {.seed = ph.seed, .offset = ph.offset, .low = from, .high = to});
}

Tensor& normal_(Tensor& self, double mean, double std, Generator* generator) {
  GeneratorGuard guard(generator);
  EMBER_CHECK_TYPE(is_floating(self.dtype()), "[normal_] expects a floating point tensor, got ", describe(self));
  EMBER_CHECK(std >= 0.0, "[normal_] expects std >= 0.0, but found std ", std);
  if (self.numel() == 0) return self;
  const PhiloxState ph = reserve(self.device(), blocks_for(self.numel(), per_block_uniform(self.dtype())));
  return fill_in_place<OpId::normal>(self, {.seed = ph.seed, .offset = ph.offset, .low = mean, .high = std});
}

Tensor& random_(Tensor& self, int64_t low, int64_t high, Generator* generator) {
  GeneratorGuard guard(generator);
  EMBER_CHECK(low < high, "[random_] expects 'from' to be less than 'to', but got from=", low, " >= to=", high);
  EMBER_CHECK_TYPE(self.dtype() != ScalarType::Bool || (low >= 0 && high <= 2),
                   "[random_] range [", low, ", ", high, ") does not fit dtype bool");
  if (self.numel() == 0) return self;
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  const PhiloxState ph = reserve(self.device(), blocks_for(self.numel(), range <= (1ull << 32) ? 4 : 2));
  return fill_in_place<OpId::randint>(self, {.seed = ph.seed, .offset = ph.offset, .low = low, .high = high});
}

namespace {
ScalarType float_dtype(std::optional<ScalarType> dtype, ScalarType fallback, const char* op) {
  const ScalarType dt = dtype.value_or(fallback);
  EMBER_CHECK_TYPE(is_floating(dt), "[", op, "] expects a floating point dtype, got ", dtype_name(dt));
  return dt;
}
}  // namespace

Tensor rand(IntSpan size, std::optional<ScalarType> dtype, std::optional<Device> device, Generator* generator) {
  Tensor t = Tensor::empty(size, float_dtype(dtype, default_float_type(), "rand"), device.value_or(Device()));
  return uniform_(t, 0.0, 1.0, generator);
}

Tensor randn(IntSpan size, std::optional<ScalarType> dtype, std::optional<Device> device, Generator* generator) {
  Tensor t = Tensor::empty(size, float_dtype(dtype, default_float_type(), "randn"), device.value_or(Device()));
  return normal_(t, 0.0, 1.0, generator);
}

Tensor rand_like(const Tensor& self, std::optional<ScalarType> dtype, std::optional<Device> device,
                 Generator* generator) {
  return rand(self.sizes(), float_dtype(dtype, self.dtype(), "rand_like"), device.value_or(self.device()), generator);
}

Tensor randn_like(const Tensor& self, std::optional<ScalarType> dtype, std::optional<Device> device,
                  Generator* generator) {
  return randn(self.sizes(), float_dtype(dtype, self.dtype(), "randn_like"), device.value_or(self.device()),
               generator);
}

Tensor randint(int64_t low, int64_t high, IntSpan size, std::optional<ScalarType> dtype, std::optional<Device> device,
               Generator* generator) {
  EMBER_CHECK(low < high, "[randint] expects 'low' to be less than 'high', but got low=", low, " >= high=", high);
  Tensor t = Tensor::empty(size, dtype.value_or(ScalarType::Int64), device.value_or(Device()));
  return random_(t, low, high, generator);
}

Tensor randint_like(const Tensor& self, int64_t low, int64_t high, std::optional<ScalarType> dtype,
                    std::optional<Device> device, Generator* generator) {
  return randint(low, high, self.sizes(), dtype.value_or(self.dtype()), device.value_or(self.device()), generator);
}

Tensor randperm(int64_t n, std::optional<ScalarType> dtype, std::optional<Device> device, Generator* generator) {
  GeneratorGuard guard(generator);
  EMBER_CHECK(n >= 0, "[randperm] n must be non-negative, got ", n);
  EMBER_CHECK_TYPE(dtype != ScalarType::Bool, "[randperm] not implemented for dtype bool");
  Tensor out = Tensor::empty(DimVector{n}, dtype.value_or(ScalarType::Int64), device.value_or(Device()));
  if (n == 0) return out;
  const PhiloxState ph = reserve(out.device(), static_cast<uint64_t>(n));
  return dispatch1<OpId::randperm>({}, out, {.seed = ph.seed, .offset = ph.offset});
}

Tensor normal(double mean, double std, IntSpan size, std::optional<ScalarType> dtype, std::optional<Device> device,
              Generator* generator) {
  Tensor t = Tensor::empty(size, float_dtype(dtype, default_float_type(), "normal"), device.value_or(Device()));
  return normal_(t, mean, std, generator);
}

// mean + std * N(0, 1), broadcast over the tensor mean/std (at least one is a tensor).
Tensor normal(const Operand& mean, const Operand& std, Generator* generator) {
  EMBER_CHECK_TYPE(!mean.is_number() || !std.is_number(), "[normal] expected normal(mean, std, size) with numbers "
                   "or a tensor mean/std");
  const Tensor& ref = mean.is_number() ? std.tensor : mean.tensor;
  const Tensor m = mean.is_number() ? scalar_tensor(mean.scalar, ref.dtype(), ref.device()) : mean.tensor;
  const Tensor s = std.is_number() ? scalar_tensor(std.scalar, ref.dtype(), ref.device()) : std.tensor;
  Tensor z = Tensor::empty(broadcast_shapes(m.sizes(), s.sizes(), "normal"), to_float_type(ref.dtype()), ref.device());
  normal_(z, 0.0, 1.0, generator);
  return add(m, mul(s, z));
}

// bernoulli(p_tensor): the input holds the probabilities; bernoulli(x, p): x's shape, probability p.
Tensor bernoulli(const Tensor& self, std::optional<double> p, Generator* generator) {
  GeneratorGuard guard(generator);
  if (p) {
    Tensor out = Tensor::empty(self.sizes(), self.dtype(), self.device());
    return bernoulli_(out, *p);
  }
  EMBER_CHECK_TYPE(is_floating(self.dtype()), "[bernoulli] expects a floating point probability tensor, got ",
                   describe(self));
  Tensor out = Tensor::empty(self.sizes(), self.dtype(), self.device());
  if (out.numel() == 0) return out;
  const PhiloxState ph = reserve(self.device(), blocks_for(self.numel(), 4));
  return dispatch1<OpId::bernoulli>({self}, out, {.seed = ph.seed, .offset = ph.offset});
}

Tensor& bernoulli_(Tensor& self, const Operand& p, Generator* generator) {
  GeneratorGuard guard(generator);
  if (!p.is_number()) {
    Tensor probs = expand(p.tensor, self.sizes());
    const bool keep = probs.dtype() == self.dtype() || !is_floating(self.dtype());
    return copy_(self, bernoulli(keep ? probs : to_dtype(probs, self.dtype())));
  }
  const double prob = p.scalar.to_double();
  EMBER_CHECK(prob >= 0.0 && prob <= 1.0, "[bernoulli_] expects p to be in [0, 1], but got p=", prob);
  if (self.numel() == 0) return self;
  const PhiloxState ph = reserve(self.device(), blocks_for(self.numel(), 4));
  return fill_in_place<OpId::bernoulli>(self, {.seed = ph.seed, .offset = ph.offset, .p = prob});
}

Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator* generator) {
  GeneratorGuard guard(generator);
  EMBER_CHECK(probs.dim() == 1 || probs.dim() == 2, "[multinomial] prob_dist must be 1 or 2 dim, got ",
              describe(probs));
  EMBER_CHECK_TYPE(is_floating(probs.dtype()), "[multinomial] only supports floating-point dtypes for input, got ",
                   describe(probs));
  EMBER_CHECK(num_samples > 0, "[multinomial] cannot sample num_samples=", num_samples, " <= 0 samples");
  const int64_t categories = probs.sizes()[probs.dim() - 1];
  EMBER_CHECK(categories > 0, "[multinomial] number of categories cannot be zero, got ", describe(probs));
  EMBER_CHECK(replacement || num_samples <= categories, "[multinomial] cannot sample num_samples=", num_samples,
              " > n_categories=", categories, " samples without replacement");
  const int64_t rows = probs.dim() == 2 ? probs.sizes()[0] : 1;
  DimVector sizes = probs.dim() == 2 ? DimVector{rows, num_samples} : DimVector{num_samples};
  Tensor out = Tensor::empty(sizes, ScalarType::Int64, probs.device());
  if (rows == 0) return out;
  const int64_t per_row = replacement ? num_samples : categories;
  const PhiloxState ph = reserve(probs.device(), static_cast<uint64_t>(rows * per_row));
  return dispatch1<OpId::multinomial>(
      {probs}, out, {.seed = ph.seed, .offset = ph.offset, .num_samples = num_samples, .replacement = replacement});
}

// Note [dropout]
// Composite (x * mask / (1 - p)) so autograd differentiates through the saved mask; p == 1 keeps
// the graph connected by multiplying with zero, p == 0 or eval mode returns x itself (like torch).
Tensor dropout(const Tensor& x, double p, bool train) {
  EMBER_CHECK_VALUE(p >= 0.0 && p <= 1.0, "[dropout] dropout probability has to be between 0 and 1, but got ", p);
  if (!train || p == 0.0 || x.numel() == 0) return x;
  EMBER_CHECK_TYPE(is_floating(x.dtype()), "[dropout] expects a floating point tensor, got ", describe(x));
  if (p == 1.0) return mul(x, scalar_tensor(int64_t{0}, x.dtype(), x.device()));
  // The mask holds 1 / (1 - p) where kept (bernoulli's hit value), so one multiply applies it.
  Tensor mask = Tensor::empty(x.sizes(), x.dtype(), x.device());
  const PhiloxState ph = reserve(x.device(), blocks_for(x.numel(), 4));
  fill_in_place<OpId::bernoulli>(mask, {.seed = ph.seed, .offset = ph.offset, .p = 1.0 - p, .scale = 1.0 / (1.0 - p)});
  return mul(x, mask);
}

}  // namespace ember
