// CUDA kernels of fused scaled-dot-product attention (op-table rows fused_attention and
// fused_attention_backward, spec/attention.yaml; Note [Fused attention op] in ops/attention.cpp):
// cuDNN's flash attention. attention.h reports whether it can run here.
//
// Note [Fused attention through cuDNN]
// The composite path (bmm + fused softmax + bmm) writes and re-reads the [B, H, Tq, Tk] score
// matrix in both directions and reached 0.10x of torch's SDPA forward on an H100 (issue 13). A
// flash-attention kernel keeps the scores on chip and saves only the per-row logsumexp for the
// backward, which recomputes them. We take NVIDIA's: cuDNN's SDPA forward/backward nodes, built
// as cudnn-frontend graphs (the route torch's cuDNN backend uses, Hopper-tuned with WGMMA/TMA),
// rather than maintaining our own kernels per architecture. cuDNN is dlopen-ed (Note [Loading
// cuDNN]); graphs are cached (Note [cuDNN graph cache]); the backward reuses the forward's saved
// logsumexp ("Stats") and dropout (seed, offset).
//
// Layouts. cuDNN reads q/k/v/dO with any strides as long as the head dim is unit-stride and the
// other strides keep 16-byte alignment, so views such as a qkv split + transpose go in as they
// are; anything else is copied. Like torch, the output takes q's layout (its dims' stride order,
// made dense) and each gradient its input's (the frontends allocate them with
// attention_strides_like, ops/attention.h): a nanoGPT qkv split + transpose thus gives [B, T, H, D]
// buffers (the next `y.transpose(1, 2).reshape(B, T, C)` is free), dense [B, H, T, D] inputs give
// dense outputs and gradients. A first version wrote everything [B, T, H, D]: with dense inputs
// the causal bf16 8x16x2048x128 forward+backward then took 2.22 ms on an H100 against torch's
// 1.45 (dO copied, gradients of another layout accumulated); following the inputs, 1.37 ms.
//
// Note [Fused attention dropout RNG]
// Dropout draws from ember's CUDA generator like every other random op, so ember.manual_seed
// reproduces it and different seeds differ. Each call reserves B*H*Tq*Tk Philox outputs (one per
// attention weight, as torch does for cuDNN) from the current generator, once cuDNN has accepted
// the configuration, and hands cuDNN the (seed, offset) through device memory, the op's rng_state
// output (write_philox_args): the backward reads the same pair, so it applies exactly the forward's
// mask, and a captured CUDA graph advances the offset per replay. The mask is cuDNN's own draw, not
// the CPU kernel's (Note [Fused attention dropout on CPU]).
#include "cuda/attention.h"

#include "core/error.h"
#include "generated/kernels_attention.h"

#ifdef EMBER_WITH_CUDNN
#include <array>

#include "core/generator.h"
#include "cuda/cuda_common.h"
#include "cuda/cudnn_graph.h"
#include "cuda/graph.h"
#include "cuda/internal.h"
#include "ops/attention.h"
#endif

namespace ember::cuda {

constexpr const char* kOp = "fused_attention";

#ifdef EMBER_WITH_CUDNN
namespace {

namespace fe = cudnn::fe;
using Strides = std::array<int64_t, 4>;

enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats, kSeed, kOffset, kDO, kDQ, kDK, kDV };
enum GraphKind : int64_t { kForward = 1, kBackward = 2 };

cudnn::GraphCache& graph_cache() {
  static auto* cache = new cudnn::GraphCache();  // leaked: plans must not be destroyed after the context
  return *cache;
}

struct Dims {
  int64_t b, h, tq, tk, d, dv;
};

void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionAttrs& a) {
  EMBER_CHECK_VALUE(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "[", kOp,
                    "] the fused CUDA path takes 4-D [batch, heads, seq, head_dim] query/key/value, got ",
                    describe(q), ", ", describe(k), ", ", describe(v));
  EMBER_CHECK_TYPE(q.dtype() == k.dtype() && q.dtype() == v.dtype(), "[", kOp,
                   "] query, key and value must have one dtype, got ", describe(q), ", ", describe(k), ", ",
                   describe(v));
  EMBER_CHECK_TYPE(q.dtype() == ScalarType::Float16 || q.dtype() == ScalarType::BFloat16, "[", kOp,
                   "] the fused CUDA path supports float16 and bfloat16, got ", dtype_name(q.dtype()));
  EMBER_CHECK_VALUE(q.device().is_cuda() && k.device() == q.device() && v.device() == q.device(), "[", kOp,
                    "] query, key and value must be on one CUDA device, got ", q.device(), ", ", k.device(), ", ",
                    v.device());
  const bool batch_heads_match = k.sizes()[0] == q.sizes()[0] && v.sizes()[0] == q.sizes()[0] &&
                                 k.sizes()[1] == q.sizes()[1] && v.sizes()[1] == q.sizes()[1];
  EMBER_CHECK_VALUE(batch_heads_match && k.sizes()[2] == v.sizes()[2] && k.sizes()[3] == q.sizes()[3], "[", kOp,
                    "] incompatible shapes q ", describe(q), ", k ", describe(k), ", v ", describe(v),
                    " (expected q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv])");
  EMBER_CHECK_VALUE(q.numel() > 0 && k.numel() > 0 && v.numel() > 0, "[", kOp,
                    "] the fused CUDA path needs non-empty inputs, got ", describe(q), ", ", describe(k), ", ",
                    describe(v));
  EMBER_CHECK_VALUE(a.dropout_p >= 0.0 && a.dropout_p < 1.0, "[", kOp, "] dropout_p must be in [0, 1), got ",
                    a.dropout_p);
}

// The strides cuDNN is given: a size-1 dim is never stepped over, so it gets the stride a dense
// layout would have (any value is valid), which keeps the graph cache key stable.
Strides normalized(const std::array<int64_t, 4>& sizes, Strides s) {
  int64_t dense = 1;
  for (int i = 3; i >= 0; --i) {
    if (sizes[i] == 1) s[i] = dense;
    dense *= sizes[i];
  }
  return s;
}

Strides graph_strides(const Tensor& t) {
  const auto& z = t.sizes();
  const auto& st = t.strides();
  return normalized({z[0], z[1], z[2], z[3]}, {st[0], st[1], st[2], st[3]});
}


Tensor empty_with(const std::array<int64_t, 4>& sizes, const Strides& strides, ScalarType dtype, Device device) {
  return Tensor::empty_strided(DimVector{sizes[0], sizes[1], sizes[2], sizes[3]},
                               DimVector{strides[0], strides[1], strides[2], strides[3]}, dtype, device);
}

Strides dense_strides(int64_t h, int64_t t, int64_t d) { return {h * t * d, t * d, d, 1}; }

// Whether cuDNN can address a tensor with these strides in place: unit head-dim stride, the
// other strides non-zero multiples of 8 elements (16 bytes), and a 16-byte aligned base.
bool strides_ok(const Strides& s) {
  bool ok = s[3] == 1;
  for (int i = 0; i < 3; ++i) ok = ok && s[i] > 0 && s[i] % 8 == 0;
  return ok;
}
bool addressable(const Tensor& t) {
  return strides_ok(graph_strides(t)) && reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
}

// `t` itself when cuDNN can read it in place, else a contiguous copy.
Tensor readable(const Tensor& t) { return addressable(t) ? t : contiguous_as(t, t.dtype()); }

// An output cuDNN writes: `target` itself when addressable, else a dense buffer copied into it by finish().
struct Writable {
  Tensor target, buffer;
  explicit Writable(const Tensor& t)
      : target(t), buffer(addressable(t) ? t : Tensor::empty(t.sizes(), t.dtype(), t.device())) {}
  void finish() {
    if (buffer.data_ptr() != target.data_ptr()) copy_kernel(target, buffer);
  }
};

// The strides Writable gives cuDNN for a fresh (aligned) [B, H, T, D] output allocated with `strides`.
Strides write_strides(const std::array<int64_t, 4>& sizes, const DimVector& strides) {
  const Strides s = normalized(sizes, {strides[0], strides[1], strides[2], strides[3]});
  return strides_ok(s) ? s : normalized(sizes, dense_strides(sizes[1], sizes[2], sizes[3]));
}

std::vector<int64_t> as_vector(const Strides& s) { return {s.begin(), s.end()}; }

std::shared_ptr<fe::graph::Tensor_attributes> graph_tensor(fe::graph::Graph& g, const char* name, Uid uid,
                                                           std::vector<int64_t> dims, const Strides& strides) {
  return g.tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim(std::move(dims)).set_stride(
      as_vector(strides)));
}

std::shared_ptr<fe::graph::Graph> new_graph(ScalarType dtype) {
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(cudnn::fe_data_type(dtype))
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  return g;
}

// The dropout seed and offset as 1-element int64 graph inputs read from device memory.
std::pair<std::shared_ptr<fe::graph::Tensor_attributes>, std::shared_ptr<fe::graph::Tensor_attributes>>
rng_tensors(fe::graph::Graph& g) {
  auto scalar = [&](const char* name, Uid uid) {
    return g.tensor(fe::graph::Tensor_attributes()
                        .set_name(name)
                        .set_uid(uid)
                        .set_dim({1, 1, 1, 1})
                        .set_stride({1, 1, 1, 1})
                        .set_data_type(fe::DataType_t::INT64));
  };
  return {scalar("seed", kSeed), scalar("offset", kOffset)};
}

cudnn::GraphCache::Key graph_key(GraphKind kind, ScalarType dtype, const Dims& n, const AttentionAttrs& a,
                                 std::initializer_list<Strides> layouts) {
  cudnn::GraphCache::Key key{kind, current_device(), static_cast<int64_t>(dtype), n.b, n.h, n.tq, n.tk, n.d, n.dv,
                             a.is_causal, cudnn::float_key(a.scale), cudnn::float_key(a.dropout_p)};
  for (const Strides& s : layouts) key.insert(key.end(), s.begin(), s.end());
  return key;
}

[[noreturn]] void unsupported(const Dims& n, ScalarType dtype, const AttentionAttrs& a, const std::string& why) {
  fail(ErrorKind::NotImplemented, "[", kOp, "] cuDNN does not support this configuration (", dtype_name(dtype),
       ", B=", n.b, " H=", n.h, " Tq=", n.tq, " Tk=", n.tk, " D=", n.d, " Dv=", n.dv, ", causal=", a.is_causal,
       ", dropout_p=", a.dropout_p, "): ", why);
}

void require_cudnn() {
  EMBER_CHECK_KIND(cudnn::load(), ErrorKind::NotImplemented, "[", kOp, "] cuDNN is not available: ",
                   cudnn::unavailable_reason());
}

// The forward graph for inputs with strides sq/sk/sv and the output with so (stats dense).
std::shared_ptr<const cudnn::BuiltGraph> forward_graph(cudnn::Handle handle, ScalarType dtype, const Dims& n,
                                                       const AttentionAttrs& a, const Strides& sq, const Strides& sk,
                                                       const Strides& sv, const Strides& so) {
  const Strides sstats = dense_strides(n.h, n.tq, 1);
  return graph_cache().get(graph_key(kForward, dtype, n, a, {sq, sk, sv, so}), [&] {
    auto g = new_graph(dtype);
    auto Q = graph_tensor(*g, "Q", kQ, {n.b, n.h, n.tq, n.d}, sq);
    auto K = graph_tensor(*g, "K", kK, {n.b, n.h, n.tk, n.d}, sk);
    auto V = graph_tensor(*g, "V", kV, {n.b, n.h, n.tk, n.dv}, sv);
    auto options = fe::graph::SDPA_attributes()
                       .set_name("ember_sdpa_forward")
                       .set_generate_stats(true)
                       .set_causal_mask(a.is_causal)
                       .set_attn_scale(static_cast<float>(a.scale));
    if (a.dropout_p > 0.0) {
      auto [seed, offset] = rng_tensors(*g);
      options.set_dropout(static_cast<float>(a.dropout_p), seed, offset);
    }
    auto [O, Stats] = g->sdpa(Q, K, V, options);
    O->set_output(true).set_uid(kO).set_dim({n.b, n.h, n.tq, n.dv}).set_stride(as_vector(so));
    Stats->set_output(true).set_uid(kStats).set_data_type(fe::DataType_t::FLOAT)
        .set_dim({n.b, n.h, n.tq, 1}).set_stride(as_vector(sstats));
    return g;
  }, handle);
}

// Strides of the gradients (dq, dk, dv) a backward graph writes.
struct GradStrides {
  Strides dq, dk, dv;
};

// The backward graph; dO always has the output's layout (the backward kernel copies it there
// otherwise) and the stats are dense.
std::shared_ptr<const cudnn::BuiltGraph> backward_graph(cudnn::Handle handle, ScalarType dtype, const Dims& n,
                                                        const AttentionAttrs& a, const Strides& sq,
                                                        const Strides& sk, const Strides& sv, const Strides& so,
                                                        const GradStrides& sg) {
  return graph_cache().get(graph_key(kBackward, dtype, n, a, {sq, sk, sv, so, sg.dq, sg.dk, sg.dv}), [&] {
    auto g = new_graph(dtype);
    auto Q = graph_tensor(*g, "Q", kQ, {n.b, n.h, n.tq, n.d}, sq);
    auto K = graph_tensor(*g, "K", kK, {n.b, n.h, n.tk, n.d}, sk);
    auto V = graph_tensor(*g, "V", kV, {n.b, n.h, n.tk, n.dv}, sv);
    auto O = graph_tensor(*g, "O", kO, {n.b, n.h, n.tq, n.dv}, so);
    auto dO = graph_tensor(*g, "dO", kDO, {n.b, n.h, n.tq, n.dv}, so);
    auto Stats = graph_tensor(*g, "Stats", kStats, {n.b, n.h, n.tq, 1}, dense_strides(n.h, n.tq, 1));
    Stats->set_data_type(fe::DataType_t::FLOAT);
    auto options = fe::graph::SDPA_backward_attributes()
                       .set_name("ember_sdpa_backward")
                       .set_causal_mask(a.is_causal)
                       .set_attn_scale(static_cast<float>(a.scale));
    if (a.dropout_p > 0.0) {
      auto [seed, offset] = rng_tensors(*g);
      options.set_dropout(static_cast<float>(a.dropout_p), seed, offset);
    }
    auto [dQ, dK, dV] = g->sdpa_backward(Q, K, V, O, dO, Stats, options);
    const auto grad = [&](auto& t, Uid uid, int64_t len, int64_t d, const Strides& strides) {
      t->set_output(true).set_uid(uid).set_dim({n.b, n.h, len, d}).set_stride(as_vector(strides));
    };
    grad(dQ, kDQ, n.tq, n.d, sg.dq);
    grad(dK, kDK, n.tk, n.d, sg.dk);
    grad(dV, kDV, n.tk, n.dv, sg.dv);
    return g;
  }, handle);
}

Dims dims_of(const Tensor& q, const Tensor& k, const Tensor& v) {
  return {q.sizes()[0], q.sizes()[1], q.sizes()[2], k.sizes()[2], q.sizes()[3], v.sizes()[3]};
}

}  // namespace

std::string flash_attention_unavailable_reason(const std::vector<std::string>& library_candidates) {
  return cudnn::load(library_candidates) ? std::string() : cudnn::unavailable_reason();
}

// in: q, k, v; out: out, stats (logsumexp [B, H, Tq] float32), rng_state (int64 [4] with dropout).
void fused_attention(const KernelArgs& args, const AttentionAttrs& attrs) {
  const Tensor &q_in = args.in[0], &k_in = args.in[1], &v_in = args.in[2];
  check_inputs(q_in, k_in, v_in, attrs);
  require_cudnn();
  DeviceGuard guard(q_in.device());
  const Tensor q = readable(q_in), k = readable(k_in), v = readable(v_in);
  Writable out(args.out[0]);
  const Tensor &stats = args.out[1], &rng = args.out[2];
  const Dims n = dims_of(q, k, v);
  const ScalarType dtype = q.dtype();
  const Device device = q.device();
  const Strides sq = graph_strides(q), sk = graph_strides(k), sv = graph_strides(v), so = graph_strides(out.buffer);

  cudnn::HandleLease lease;
  auto built = forward_graph(lease.get(), dtype, n, attrs, sq, sk, sv, so);
  if (!built->graph) unsupported(n, dtype, attrs, built->error);
  if (attrs.prepare_backward) {  // fail over to the composite path now rather than in the backward pass
    // The gradients as fused_attention_backward allocates them (ops/attention.cpp).
    const auto grad_strides = [](const Tensor& input) {
      const auto& z = input.sizes();
      return write_strides({z[0], z[1], z[2], z[3]}, attention_strides_like(z, input));
    };
    const GradStrides sg{grad_strides(q_in), grad_strides(k_in), grad_strides(v_in)};
    auto backward = backward_graph(lease.get(), dtype, n, attrs, sq, sk, sv, so, sg);
    if (!backward->graph) unsupported(n, dtype, attrs, "backward: " + backward->error);
  }

  std::unordered_map<int64_t, void*> pack{{kQ, q.data_ptr()}, {kK, k.data_ptr()}, {kV, v.data_ptr()},
                                          {kO, out.buffer.data_ptr()}, {kStats, stats.data_ptr()}};
  if (attrs.dropout_p > 0.0) {
    // Seed at [0] and offset at [2]: each 16-byte aligned (Note [Fused attention dropout RNG]).
    const uint64_t weights = static_cast<uint64_t>(n.b * n.h) * static_cast<uint64_t>(n.tq * n.tk);
    const PhiloxState st = current_generator(device).reserve((weights + 3) / 4);
    write_philox_args(rng.data<int64_t>(), rng.data<int64_t>() + 2, st, device.index);
    pack[kSeed] = rng.data<int64_t>();
    pack[kOffset] = rng.data<int64_t>() + 2;
  }
  cudnn::execute(*built, pack, lease.get(), device, kOp);
  out.finish();
}

// in: grad_out, q, k, v, out, stats, rng_state (checked and converted by the frontend); out: dq, dk, dv.
void fused_attention_backward(const KernelArgs& args, const AttentionAttrs& attrs) {
  const Tensor &grad_out = args.in[0], &q_in = args.in[1], &k_in = args.in[2], &v_in = args.in[3];
  const Tensor &stats = args.in[5], &rng = args.in[6];
  check_inputs(q_in, k_in, v_in, attrs);
  require_cudnn();
  DeviceGuard guard(q_in.device());
  const Tensor q = readable(q_in), k = readable(k_in), v = readable(v_in), o = readable(args.in[4]);
  const Dims n = dims_of(q, k, v);
  const ScalarType dtype = q.dtype();
  const Device device = q.device();
  const Strides so = graph_strides(o);
  // cuDNN's backward reads dO in the output's layout; a gradient with other strides is copied into it.
  Tensor dout = grad_out;
  if (graph_strides(grad_out) != so || reinterpret_cast<uintptr_t>(grad_out.data_ptr()) % 16 != 0) {
    dout = Tensor::empty_strided(o.sizes(), o.strides(), dtype, device);
    copy_kernel(dout, grad_out);
  }
  Writable dq(args.out[0]), dk(args.out[1]), dv(args.out[2]);

  cudnn::HandleLease lease;
  const Strides sq = graph_strides(q), sk = graph_strides(k), sv = graph_strides(v);
  const GradStrides sg{graph_strides(dq.buffer), graph_strides(dk.buffer), graph_strides(dv.buffer)};
  auto built = backward_graph(lease.get(), dtype, n, attrs, sq, sk, sv, so, sg);
  if (!built->graph) unsupported(n, dtype, attrs, "backward: " + built->error);

  std::unordered_map<int64_t, void*> pack{
      {kQ, q.data_ptr()},     {kK, k.data_ptr()},         {kV, v.data_ptr()},            {kO, o.data_ptr()},
      {kDO, dout.data_ptr()}, {kStats, stats.data_ptr()}, {kDQ, dq.buffer.data_ptr()}, {kDK, dk.buffer.data_ptr()},
      {kDV, dv.buffer.data_ptr()}};
  if (attrs.dropout_p > 0.0) {
    pack[kSeed] = rng.data<int64_t>();
    pack[kOffset] = rng.data<int64_t>() + 2;
  }
  cudnn::execute(*built, pack, lease.get(), device, kOp);
  dq.finish();
  dk.finish();
  dv.finish();
}

#else  // built without cuDNN: SDPA sees the reason (attention.h) and keeps the composite path

std::string flash_attention_unavailable_reason(const std::vector<std::string>&) {
  return "ember was built without cuDNN (EMBER_CUDNN=OFF, or the cuDNN and cudnn-frontend headers were not found "
         "when it was configured)";
}

void fused_attention(const KernelArgs&, const AttentionAttrs&) {
  fail(ErrorKind::NotImplemented, "[", kOp, "] ", flash_attention_unavailable_reason({}));
}

void fused_attention_backward(const KernelArgs&, const AttentionAttrs&) {
  fail(ErrorKind::NotImplemented, "[", kOp, "] ", flash_attention_unavailable_reason({}));
}

#endif

}  // namespace ember::cuda
