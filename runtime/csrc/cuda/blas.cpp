// mm, bmm and addmm on CUDA through cuBLAS (cublas_shim.h). Row-major C = A @ B is computed as the
// column-major C^T = B^T @ A^T; an operand with unit column stride is read as-is (op N), one with
// unit row stride as transposed (op T), anything else is copied contiguous first.
// fp32 uses TF32 tensor cores only when ember.backends.cuda.matmul.allow_tf32 is on (torch's flag).
#include <dlfcn.h>

#include <array>
#include <cstdlib>
#include <mutex>
#include <string>

#include "cuda/cublas_shim.h"
#include "cuda/cuda_common.h"
#include "cuda/internal.h"
#include "generated/kernels_linalg.h"

namespace ember::cuda {
namespace cublas {
namespace {

Api load_api() {
  Api a{};
  const char* env = std::getenv("EMBER_CUBLAS_PATH");
  const std::string candidates[] = {env ? env : "", "libcublas.so.13", "libcublas.so.12", "libcublas.so",
                                    "/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so"};
  void* lib = nullptr;
  std::string tried;
  for (const auto& name : candidates) {
    if (name.empty()) continue;
    lib = dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (lib) break;
    tried += (tried.empty() ? "" : ", ") + name;
  }
  EMBER_CHECK(lib != nullptr, "[cuda] could not load cuBLAS (tried ", tried,
              "); set EMBER_CUBLAS_PATH to libcublas.so's path");
  auto sym = [&](const char* name) {
    void* p = dlsym(lib, name);
    EMBER_CHECK(p != nullptr, "[cuda] cuBLAS has no symbol ", name);
    return p;
  };
  a.create = reinterpret_cast<decltype(a.create)>(sym("cublasCreate_v2"));
  a.set_stream = reinterpret_cast<decltype(a.set_stream)>(sym("cublasSetStream_v2"));
  a.set_workspace = reinterpret_cast<decltype(a.set_workspace)>(sym("cublasSetWorkspace_v2"));
  a.gemm_ex = reinterpret_cast<decltype(a.gemm_ex)>(sym("cublasGemmEx"));
  a.gemm_strided_batched_ex = reinterpret_cast<decltype(a.gemm_strided_batched_ex)>(sym("cublasGemmStridedBatchedEx"));
  return a;
}

constexpr size_t kWorkspaceBytes = 32 << 20;
std::mutex g_mutex;
std::array<Handle, 64> g_handles{};

}  // namespace

const Api& api() {
  static const Api a = load_api();
  return a;
}

Handle handle() {
  const int dev = current_device();
  const Api& a = api();
  Handle h;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_handles[dev]) {
      Handle nh = nullptr;
      Status st = a.create(&nh);
      EMBER_CHECK(st == 0, "[cuda] cublasCreate failed with status ", st);
      // A fixed workspace keeps cuBLAS from allocating during graph capture.
      void* ws = nullptr;
      EMBER_CUDA_CHECK(cudaMalloc(&ws, kWorkspaceBytes));
      a.set_workspace(nh, ws, kWorkspaceBytes);
      g_handles[dev] = nh;
    }
    h = g_handles[dev];
  }
  a.set_stream(h, current_stream(dev));
  return h;
}

}  // namespace cublas

namespace {

struct MatDesc {
  const void* ptr;
  int op;
  int64_t ld;
  Tensor keep;  // contiguous copy when one was needed
};

// Describes the [r, c] row-major matrix at `t`'s last two dims for cuBLAS (see file comment).
MatDesc describe_matrix(const Tensor& t) {
  const int64_t d = t.dim();
  const int64_t r = t.sizes()[d - 2], c = t.sizes()[d - 1];
  const int64_t s0 = t.strides()[d - 2], s1 = t.strides()[d - 1];
  if ((s1 == 1 || c <= 1) && (r <= 1 || s0 >= std::max<int64_t>(c, 1)))
    return {t.data_ptr(), cublas::kN, r <= 1 ? std::max<int64_t>(c, 1) : s0, Tensor()};
  if ((s0 == 1 || r <= 1) && (c <= 1 || s1 >= std::max<int64_t>(r, 1)))
    return {t.data_ptr(), cublas::kT, c <= 1 ? std::max<int64_t>(r, 1) : s1, Tensor()};
  Tensor cont = contiguous_as(t, t.dtype());
  return {cont.data_ptr(), cublas::kN, std::max<int64_t>(c, 1), cont};
}

cudaDataType data_type(ScalarType t, const char* op) {
  switch (t) {
    case ScalarType::Float32: return CUDA_R_32F;
    case ScalarType::Float64: return CUDA_R_64F;
    case ScalarType::Float16: return CUDA_R_16F;
    case ScalarType::BFloat16: return CUDA_R_16BF;
    default:
      fail(ErrorKind::NotImplemented, "[", op, "] \"", op, "_cuda\" not implemented for '", dtype_name(t),
           "' (CUDA matrix products support float16, bfloat16, float32 and float64)");
  }
}

// C[batch, m, n] (contiguous) = alpha * A[batch, m, k] @ B[batch, k, n] + beta * C.
void gemm(const char* op, const Tensor& a, const Tensor& b, const Tensor& c, int64_t batch, int64_t a_bstride,
          int64_t b_bstride, double alpha, double beta) {
  const int64_t d = c.dim();
  const int64_t m = c.sizes()[d - 2], n = c.sizes()[d - 1], k = a.sizes()[a.dim() - 1];
  if (c.numel() == 0) return;
  const cudaDataType dt = data_type(c.dtype(), op);
  DeviceGuard guard(c.device());
  if (k == 0) {  // empty inner dim: C = beta * C (beta == 0 means zeros, ignoring C's contents)
    EMBER_CHECK(beta == 0.0, "[", op, "] k == 0 with beta != 0 is not supported on CUDA");
    EMBER_CUDA_CHECK(cudaMemsetAsync(c.data_ptr(), 0, c.numel() * c.element_size(), current_stream()));
    return;
  }
  MatDesc A = describe_matrix(a), B = describe_matrix(b);
  if (A.keep.defined()) a_bstride = a_bstride == 0 ? 0 : m * k;
  if (B.keep.defined()) b_bstride = b_bstride == 0 ? 0 : k * n;
  const int compute = dt == CUDA_R_64F ? cublas::kCompute64F
                      : (dt == CUDA_R_32F && allow_tf32()) ? cublas::kCompute32FFastTF32
                                                           : cublas::kCompute32F;
  const double alpha_d = alpha, beta_d = beta;
  const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
  const void* pa = dt == CUDA_R_64F ? static_cast<const void*>(&alpha_d) : &alpha_f;
  const void* pb = dt == CUDA_R_64F ? static_cast<const void*>(&beta_d) : &beta_f;
  EMBER_CHECK(m < (1LL << 31) && n < (1LL << 31) && k < (1LL << 31) && A.ld < (1LL << 31) && B.ld < (1LL << 31),
              "[", op, "] matrix dimensions beyond 2^31 are not supported");
  const auto& api = cublas::api();
  cublas::Handle h = cublas::handle();
  cublas::Status st;
  // Column-major view: C^T[n, m] = op(B)^T[n, k] @ op(A)^T[k, m].
  if (batch == 1) {
    st = api.gemm_ex(h, B.op, A.op, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), pa, B.ptr, dt,
                     static_cast<int>(B.ld), A.ptr, dt, static_cast<int>(A.ld), pb, c.data_ptr(), dt,
                     static_cast<int>(n), compute, cublas::kGemmDefault);
  } else {
    st = api.gemm_strided_batched_ex(h, B.op, A.op, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), pa,
                                     B.ptr, dt, static_cast<int>(B.ld), b_bstride, A.ptr, dt, static_cast<int>(A.ld),
                                     a_bstride, pb, c.data_ptr(), dt, static_cast<int>(n), m * n,
                                     static_cast<int>(batch), compute, cublas::kGemmDefault);
  }
  EMBER_CHECK(st == 0, "[", op, "] cuBLAS gemm failed with status ", st, " (m=", m, ", n=", n, ", k=", k,
              ", batch=", batch, ", dtype ", dtype_name(c.dtype()), ")");
}

}  // namespace

// cuBLAS has no integer GEMM and torch's CUDA matmuls reject integer dtypes too, except when there
// is nothing to multiply (an empty output or inner dim): those run the CPU kernel (zeros / bias).
static bool integral_on_host(const KernelArgs& args, const HostKernel& cpu_kernel) {
  if (is_floating(args.out[0].dtype())) return false;
  const Tensor& a = args.in[args.in.size() - 2];
  if (args.out[0].numel() != 0 && a.sizes()[a.dim() - 1] != 0) return false;  // gemm() raises the dtype error
  run_on_host(args, cpu_kernel);
  return true;
}

void mm(const KernelArgs& args, const NoAttrs&) {
  if (integral_on_host(args, [](const KernelArgs& h) { cpu::mm(h, {}); })) return;
  gemm("mm", args.in[0], args.in[1], args.out[0], 1, 0, 0, 1.0, 0.0);
}

// bmm over [B, m, k] x [B, k, n]; batch strides may be 0 (matmul's broadcast batches).
void bmm(const KernelArgs& args, const NoAttrs&) {
  if (integral_on_host(args, [](const KernelArgs& h) { cpu::bmm(h, {}); })) return;
  const Tensor &a = args.in[0], &b = args.in[1], &out = args.out[0];
  const int64_t batch = out.sizes()[0];
  int64_t as = a.sizes()[0] == 1 ? 0 : a.strides()[0], bs = b.sizes()[0] == 1 ? 0 : b.strides()[0];
  // A batch stride that is neither 0 nor a plain multiple layout still works: cuBLAS takes any stride.
  gemm("bmm", a, b, out, batch, as, bs, 1.0, 0.0);
}

// out = beta * bias + alpha * (a @ b).
void addmm(const KernelArgs& args, const AddmmAttrs& attrs) {
  const HostKernel on_host = [&](const KernelArgs& h) { cpu::addmm(h, attrs); };
  if (integral_on_host(args, on_host)) return;
  const Tensor &bias = args.in[0], &a = args.in[1], &b = args.in[2], &out = args.out[0];
  const double alpha = attrs.alpha.to_double(), beta = attrs.beta.to_double();
  if (a.sizes()[1] == 0 && beta != 0.0) {  // empty inner dim: out = beta * bias (rare; host path)
    run_on_host(args, on_host);
    return;
  }
  if (beta != 0.0) copy_kernel(out, bias);
  gemm("addmm", a, b, out, 1, 0, 0, alpha, beta);
}

}  // namespace ember::cuda
