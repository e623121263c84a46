// CPU kernels of copy (same and cross dtype, strided, broadcasting) and fill.
// Fast paths: dense same-dtype copies are memcpy; float32 <-> float16/bfloat16 use the F16C /
// AVX512-BF16 conversion instructions when the compiler targets them; a transposed source (its
// unit stride on an outer dim) is copied in cache-sized tiles instead of striding through memory.
#include <cstring>

#if defined(__AVX__) || defined(__F16C__)
#include <immintrin.h>
#endif

#include "cpu/loops.h"
#include "generated/kernels_elementwise.h"

namespace ember::cpu {
namespace {

// Converts n contiguous elements; returns false when no vector path exists for the pair.
bool convert_dense(char* dst, ScalarType dt, const char* src, ScalarType st, int64_t n) {
#if defined(__F16C__)
  if (st == ScalarType::Float32 && dt == ScalarType::Float16) {
    const float* s = reinterpret_cast<const float*>(src);
    uint16_t* d = reinterpret_cast<uint16_t*>(dst);
    int64_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i),
                          _mm512_cvtps_ph(_mm512_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) d[i] = Half(s[i]).x;
    return true;
  }
  if (st == ScalarType::Float16 && dt == ScalarType::Float32) {
    const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
    float* d = reinterpret_cast<float*>(dst);
    int64_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
#endif
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
    for (; i < n; ++i) d[i] = Half::to_float(s[i]);
    return true;
  }
#endif
  if (st == ScalarType::Float32 && dt == ScalarType::BFloat16) {
    // Branch-free round-to-nearest-even (NaN -> quiet NaN), so the loop vectorizes.
    const uint32_t* s = reinterpret_cast<const uint32_t*>(src);
    uint16_t* d = reinterpret_cast<uint16_t*>(dst);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t u = s[i];
      const uint16_t r = static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
      d[i] = (u & 0x7fffffffu) > 0x7f800000u ? uint16_t(0x7fc0) : r;
    }
    return true;
  }
  if (st == ScalarType::BFloat16 && dt == ScalarType::Float32) {
    const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
    uint32_t* d = reinterpret_cast<uint32_t*>(dst);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = static_cast<uint32_t>(s[i]) << 16;
    return true;
  }
  return false;
}

bool has_dense_conversion(ScalarType dt, ScalarType st) {
  using S = ScalarType;
  const bool f32_bf16 = (st == S::Float32 && dt == S::BFloat16) || (st == S::BFloat16 && dt == S::Float32);
#if defined(__F16C__)
  const bool f32_f16 = (st == S::Float32 && dt == S::Float16) || (st == S::Float16 && dt == S::Float32);
#else
  const bool f32_f16 = false;
#endif
  return f32_bf16 || f32_f16;
}

#if defined(__AVX__)
// dst[i][j] = src[j][i] for an 8x8 block of 4-byte values (rows `src_stride` / `dst_stride` apart).
inline void transpose8x8(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * src_stride);
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  __m256 u[8];
  u[0] = _mm256_shuffle_ps(t[0], t[2], _MM_SHUFFLE(1, 0, 1, 0));
  u[1] = _mm256_shuffle_ps(t[0], t[2], _MM_SHUFFLE(3, 2, 3, 2));
  u[2] = _mm256_shuffle_ps(t[1], t[3], _MM_SHUFFLE(1, 0, 1, 0));
  u[3] = _mm256_shuffle_ps(t[1], t[3], _MM_SHUFFLE(3, 2, 3, 2));
  u[4] = _mm256_shuffle_ps(t[4], t[6], _MM_SHUFFLE(1, 0, 1, 0));
  u[5] = _mm256_shuffle_ps(t[4], t[6], _MM_SHUFFLE(3, 2, 3, 2));
  u[6] = _mm256_shuffle_ps(t[5], t[7], _MM_SHUFFLE(1, 0, 1, 0));
  u[7] = _mm256_shuffle_ps(t[5], t[7], _MM_SHUFFLE(3, 2, 3, 2));
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * dst_stride, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * dst_stride, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}
#endif

// Same-dtype copy where the source is transposed relative to the destination: the loop's inner
// dim (last) is dense in dst but strided in src, and the next dim is dense in src. Tiles keep both
// sides in cache. Outer dims (if any) are iterated around the 2-D tiles.
template <typename T>
void tiled_transpose_copy(const LoopGeometry<2>& g) {
  const int last = g.ndim - 1;
  const int64_t rows = g.sizes[last - 1], cols = g.sizes[last];
  const int64_t ds_r = g.strides[0][last - 1] / sizeof(T), ds_c = g.strides[0][last] / sizeof(T);
  const int64_t ss_r = g.strides[1][last - 1] / sizeof(T), ss_c = g.strides[1][last] / sizeof(T);
  int64_t outer = 1;
  for (int d = 0; d < last - 1; ++d) outer *= g.sizes[d];
  constexpr int64_t kTile = 32;
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  parallel_for(0, outer * row_tiles, std::max<int64_t>(1, kGrainSize / (kTile * std::max<int64_t>(cols, 1))),
               [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      int64_t o = job / row_tiles, rt = job % row_tiles;
      char* dbase = g.data[0];
      const char* sbase = g.data[1];
      for (int d = last - 2; d >= 0; --d) {
        const int64_t i = o % g.sizes[d];
        o /= g.sizes[d];
        dbase += i * g.strides[0][d];
        sbase += i * g.strides[1][d];
      }
      T* dst = reinterpret_cast<T*>(dbase);
      const T* src = reinterpret_cast<const T*>(sbase);
      const int64_t r0 = rt * kTile, r1 = std::min(rows, r0 + kTile);
      for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        const int64_t c1 = std::min(cols, c0 + kTile);
#if defined(__AVX__)
        if constexpr (sizeof(T) == 4) {
          if (ss_r == 1 && ds_c == 1 && r1 - r0 == kTile && c1 - c0 == kTile) {
            for (int64_t r = r0; r < r1; r += 8)
              for (int64_t c = c0; c < c1; c += 8)
                transpose8x8(reinterpret_cast<const float*>(src + r + c * ss_c), ss_c,
                             reinterpret_cast<float*>(dst + r * ds_r + c), ds_r);
            continue;
          }
        }
#endif
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) dst[r * ds_r + c * ds_c] = src[r * ss_r + c * ss_c];
      }
    }
  });
}

bool try_tiled_copy(const Tensor& dst, const Tensor& src) {
  if (dst.dtype() != src.dtype() || dst.numel() < 4096) return false;
  auto g = make_geometry<2>(dst, {&src});
  if (g.ndim < 2) return false;
  const int last = g.ndim - 1;
  const int64_t es = dst.element_size();
  const bool transposed = g.strides[0][last] == es && g.strides[1][last] != es && g.strides[1][last] != 0 &&
                          g.strides[1][last - 1] == es;
  if (!transposed) return false;
  switch (es) {
    case 1: tiled_transpose_copy<uint8_t>(g); return true;
    case 2: tiled_transpose_copy<uint16_t>(g); return true;
    case 4: tiled_transpose_copy<uint32_t>(g); return true;
    case 8: tiled_transpose_copy<uint64_t>(g); return true;
  }
  return false;
}

}  // namespace

void copy_into(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  const ScalarType dt = dst.dtype(), st = src.dtype();
  const bool dense = dst.is_contiguous() && src.is_contiguous() && dst.numel() == src.numel();
  if (dt == st && dense) {
    char* d = static_cast<char*>(dst.data_ptr());
    const char* s = static_cast<const char*>(src.data_ptr());
    const int64_t es = dst.element_size();
    parallel_for(0, dst.numel(), 4 * kGrainSize, [&](int64_t lo, int64_t hi) {
      std::memcpy(d + lo * es, s + lo * es, static_cast<size_t>((hi - lo) * es));
    });
    return;
  }
  if (dense && has_dense_conversion(dt, st)) {
    char* d = static_cast<char*>(dst.data_ptr());
    const char* s = static_cast<const char*>(src.data_ptr());
    const int64_t des = dst.element_size(), ses = src.element_size();
    parallel_for(0, dst.numel(), kGrainSize, [&](int64_t lo, int64_t hi) {
      convert_dense(d + lo * des, dt, s + lo * ses, st, hi - lo);
    });
    return;
  }
  if (try_tiled_copy(dst, src)) return;
  EMBER_DISPATCH_ALL(dt, "copy", ([&]<typename D>() {
    EMBER_DISPATCH_ALL(st, "copy", ([&]<typename S>() {
      if constexpr (std::is_same_v<D, S>) {
        unary_loop<D, S>(dst, src, [](opmath_t<S> v) { return v; });
      } else {
        unary_loop<D, S>(dst, src, [](opmath_t<S> v) { return convert<D>(v); });
      }
    }));
  }));
}

Tensor as_dtype(const Tensor& t, ScalarType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor r = Tensor::empty(t.sizes(), dtype, t.device());
  copy_into(r, t);
  return r;
}

// in: (src) for clone/to/contiguous, (self, src) for copy_; out[0] is the destination.
void copy(const KernelArgs& args, const NoAttrs&) { copy_into(args.out[0], args.in.back()); }

void fill(const KernelArgs& args, const FillAttrs& attrs) {
  const Tensor& out = args.out[0];
  EMBER_DISPATCH_ALL(out.dtype(), "fill_", ([&]<typename T>() { fill_loop<T>(out, attrs.value.to<T>()); }));
}

}  // namespace ember::cpu
