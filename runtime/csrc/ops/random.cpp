// Random ops: frontends reserve Philox counters from the device's current generator (see
// Note [Philox streams] in core/generator.h) and pass (seed, offset) to the kernel in attrs.dims2.
//
// Note [Random kernel contract] (what a device kernel must reproduce, cpu/random.cpp)
//   uniform_  scalar=from, scalar2=to. float64: 2 values per block (53 bits from words 2j, 2j+1);
//             other floats: 4 per block (word >> 8, 24 bits).
//   normal_   scalar=mean, scalar2=std. Box-Muller on (1 - u1, u2): float64 one pair per block,
//             other floats two pairs (words 0,1 and 2,3); pair gives (cos, sin) for lanes 2p, 2p+1.
//   randint   scalar=low, scalar2=high; range <= 2^32: 4 per block, (word * range) >> 32;
//             larger: 2 per block, 64-bit value % range.
//   bernoulli in[0]=p tensor, or has_scalar with scalar=p; 4 per block, hit when word < p * 2^32;
//             hits store 1, or scalar2 when has_scalar2 (dropout's 1 / (1 - p)).
//   multinomial k=num_samples, flag=replacement; block r * per_row + s (see the kernel).
//   randperm  Fisher-Yates, step i uses word i % 4 of block i / 4.
#include <cmath>

#include "core/generator.h"
#include "dispatch/dispatcher.h"
#include "ops/ops.h"

namespace ember {
namespace {

// Attrs carrying a reserved Philox range of `blocks` counter blocks for `device`.
Attrs philox_attrs(Device device, uint64_t blocks) {
  PhiloxState s = current_generator(device).reserve(blocks);
  Attrs attrs;
  attrs.dims2 = DimVector{static_cast<int64_t>(s.seed), static_cast<int64_t>(s.offset)};
  return attrs;
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

Tensor& uniform_(Tensor& self, double from, double to) {
  EMBER_CHECK_TYPE(is_floating(self.dtype()), "[uniform_] expects a floating point tensor, got ", describe(self));
  EMBER_CHECK(from <= to, "[uniform_] expects to return a [from, to) range, but found from=", from, " > to=", to);
  if (self.numel() == 0) return self;
  Attrs attrs = philox_attrs(self.device(), blocks_for(self.numel(), per_block_uniform(self.dtype())));
  attrs.scalar = from;
  attrs.scalar2 = to;
  Tensor out[1] = {self};
  dispatch(OpId::uniform, std::span<const Tensor>(out, 1), std::span<Tensor>(out, 1), attrs);
  return self;
}

Tensor& normal_(Tensor& self, double mean, double std) {
  EMBER_CHECK_TYPE(is_floating(self.dtype()), "[normal_] expects a floating point tensor, got ", describe(self));
  EMBER_CHECK(std >= 0.0, "[normal_] expects std >= 0.0, but found std ", std);
  if (self.numel() == 0) return self;
  Attrs attrs = philox_attrs(self.device(), blocks_for(self.numel(), per_block_uniform(self.dtype())));
  attrs.scalar = mean;
  attrs.scalar2 = std;
  Tensor out[1] = {self};
  dispatch(OpId::normal, std::span<const Tensor>(out, 1), std::span<Tensor>(out, 1), attrs);
  return self;
}

Tensor& random_(Tensor& self, int64_t low, int64_t high) {
  EMBER_CHECK(low < high, "[random_] expects 'from' to be less than 'to', but got from=", low, " >= to=", high);
  EMBER_CHECK_TYPE(self.dtype() != ScalarType::Bool || (low >= 0 && high <= 2),
                   "[random_] range [", low, ", ", high, ") does not fit dtype bool");
  if (self.numel() == 0) return self;
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  Attrs attrs = philox_attrs(self.device(), blocks_for(self.numel(), range <= (1ull << 32) ? 4 : 2));
  attrs.scalar = low;
  attrs.scalar2 = high;
  Tensor out[1] = {self};
  dispatch(OpId::randint, std::span<const Tensor>(out, 1), std::span<Tensor>(out, 1), attrs);
  return self;
}

Tensor rand(IntSpan sizes, ScalarType dtype, Device device) {
  EMBER_CHECK_TYPE(is_floating(dtype), "[rand] expects a floating point dtype, got ", dtype_name(dtype));
  Tensor t = Tensor::empty(sizes, dtype, device);
  return uniform_(t, 0.0, 1.0);
}

Tensor randn(IntSpan sizes, ScalarType dtype, Device device) {
  EMBER_CHECK_TYPE(is_floating(dtype), "[randn] expects a floating point dtype, got ", dtype_name(dtype));
  Tensor t = Tensor::empty(sizes, dtype, device);
  return normal_(t, 0.0, 1.0);
}

Tensor randint(int64_t low, int64_t high, IntSpan sizes, ScalarType dtype, Device device) {
  EMBER_CHECK(low < high, "[randint] expects 'low' to be less than 'high', but got low=", low, " >= high=", high);
  Tensor t = Tensor::empty(sizes, dtype, device);
  return random_(t, low, high);
}

Tensor randperm(int64_t n, ScalarType dtype, Device device) {
  EMBER_CHECK(n >= 0, "[randperm] n must be non-negative, got ", n);
  EMBER_CHECK_TYPE(dtype != ScalarType::Bool, "[randperm] not implemented for dtype bool");
  Tensor out = Tensor::empty(DimVector{n}, dtype, device);
  if (n == 0) return out;
  Attrs attrs = philox_attrs(device, static_cast<uint64_t>(n));
  return dispatch1(OpId::randperm, {}, out, attrs);
}

Tensor bernoulli(const Tensor& p) {
  EMBER_CHECK_TYPE(is_floating(p.dtype()), "[bernoulli] expects a floating point probability tensor, got ",
                   describe(p));
  Tensor out = Tensor::empty(p.sizes(), p.dtype(), p.device());
  if (out.numel() == 0) return out;
  Attrs attrs = philox_attrs(p.device(), blocks_for(p.numel(), 4));
  return dispatch1(OpId::bernoulli, {p}, out, attrs);
}

Tensor& bernoulli_(Tensor& self, double p) {
  EMBER_CHECK(p >= 0.0 && p <= 1.0, "[bernoulli_] expects p to be in [0, 1], but got p=", p);
  if (self.numel() == 0) return self;
  Attrs attrs = philox_attrs(self.device(), blocks_for(self.numel(), 4));
  attrs.scalar = p;
  attrs.has_scalar = true;
  Tensor out[1] = {self};
  dispatch(OpId::bernoulli, std::span<const Tensor>(out, 1), std::span<Tensor>(out, 1), attrs);
  return self;
}

Tensor& bernoulli_(Tensor& self, const Tensor& p) {
  Tensor probs = expand(p, self.sizes());
  Tensor draws = bernoulli(probs.dtype() == self.dtype() || !is_floating(self.dtype()) ? probs
                                                                                      : to_dtype(probs, self.dtype()));
  return copy_(self, draws);
}

Tensor bernoulli(const Tensor& x, double p) {
  Tensor out = Tensor::empty(x.sizes(), x.dtype(), x.device());
  return bernoulli_(out, p);
}

Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement) {
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
  Attrs attrs = philox_attrs(probs.device(), static_cast<uint64_t>(rows * per_row));
  attrs.k = num_samples;
  attrs.flag = replacement;
  return dispatch1(OpId::multinomial, {probs}, out, attrs);
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
  Attrs attrs = philox_attrs(x.device(), blocks_for(x.numel(), 4));
  attrs.scalar = 1.0 - p;
  attrs.has_scalar = true;
  attrs.scalar2 = 1.0 / (1.0 - p);
  attrs.has_scalar2 = true;
  Tensor io[1] = {mask};
  dispatch(OpId::bernoulli, std::span<const Tensor>(io, 1), std::span<Tensor>(io, 1), attrs);
  return mul(x, mask);
}

}  // namespace ember
