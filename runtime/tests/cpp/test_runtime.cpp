// Core runtime: storage refcounts and the allocator, DimVector, dtype promotion, strides and
// contiguity of views, version counters shared by views, dispatcher error texts.
#include <gtest/gtest.h>

#include <cmath>

#include "core/allocator.h"
#include "core/tensor.h"
#include "dispatch/dispatcher.h"
#include "ops/ops.h"

using namespace ember;

namespace {

Tensor arange_f(int64_t n) {
  Tensor t = Tensor::empty(DimVector{n}, ScalarType::Float32);
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

template <typename Fn>
std::string error_text(Fn&& fn, ErrorKind* kind = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (kind) *kind = e.kind();
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST(Storage, ViewsShareStorageAndRefcount) {
  Tensor t = Tensor::empty(DimVector{4, 3}, ScalarType::Float32);
  EXPECT_EQ(t.storage().use_count(), 1);
  {
    Tensor v = make_view(t, {3}, {1}, 3);
    EXPECT_EQ(t.storage().use_count(), 2);
    EXPECT_EQ(v.data<float>(), t.data<float>() + 3);
    EXPECT_TRUE(v.impl()->is_view);
  }
  EXPECT_EQ(t.storage().use_count(), 1);
  EXPECT_GE(t.storage()->nbytes, 12 * sizeof(float));
}

TEST(Storage, AllocatorAlignsAndFreesThroughDeleter) {
  DataPtr p = get_allocator(DeviceType::CPU)->allocate(100, Device());
  ASSERT_NE(p.get(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p.get()) % 64, 0u);
  DataPtr empty = get_allocator(DeviceType::CPU)->allocate(0, Device());
  EXPECT_EQ(empty.get(), nullptr);
  static int freed = 0;
  {
    int ctx = 0;
    DataPtr custom(&ctx, &ctx, [](void*) { ++freed; }, Device());
    DataPtr moved = std::move(custom);
    EXPECT_EQ(custom.get(), nullptr);
  }
  EXPECT_EQ(freed, 1);
}

TEST(Storage, EmptyRejectsNegativeSizes) {
  ErrorKind kind{};
  std::string msg = error_text([] { Tensor::empty(DimVector{2, -1}, ScalarType::Float32); }, &kind);
  EXPECT_EQ(kind, ErrorKind::Value);
  EXPECT_NE(msg.find("[empty] negative dimension"), std::string::npos) << msg;
}

TEST(Storage, EmptyRejectsSizesWhoseByteCountOverflows) {
  const int64_t big = int64_t{1} << 62;
  for (auto make : {+[] { Tensor::empty(DimVector{int64_t{1} << 62}, ScalarType::Float32); },
                    +[] { Tensor::empty(DimVector{int64_t{1} << 31, int64_t{1} << 31, 4}, ScalarType::Int8); },
                    +[] { Tensor::empty_strided(DimVector{2, 3}, DimVector{int64_t{1} << 62, 1}, ScalarType::Float32); }}) {
    ErrorKind kind{};
    std::string msg = error_text(make, &kind);
    EXPECT_EQ(kind, ErrorKind::Runtime);
    EXPECT_NE(msg.find("needs more than 2^63 - 1 bytes"), std::string::npos) << msg;
  }
  EXPECT_EQ(Tensor::empty(DimVector{0, big}, ScalarType::Float32).numel(), 0);  // no elements, nothing to allocate
}

TEST(DimVectorTest, InlineAndHeapStorage) {
  DimVector v{1, 2, 3};
  EXPECT_EQ(v.size(), 3u);
  for (int64_t i = 4; i <= 10; ++i) v.push_back(i);  // spills past the inline capacity
  ASSERT_EQ(v.size(), 10u);
  for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(v[i], i + 1);
  DimVector copy = v;
  EXPECT_TRUE(copy == v);
  DimVector moved = std::move(copy);
  EXPECT_TRUE(moved == v);
  moved.pop_back();
  EXPECT_FALSE(moved == v);
  DimVector r(size_t{3}, int64_t{7});
  EXPECT_EQ(r[2], 7);
}

TEST(Dtype, PromotionLattice) {
  EXPECT_EQ(promote_types(ScalarType::Bool, ScalarType::Bool), ScalarType::Bool);
  EXPECT_EQ(promote_types(ScalarType::Int8, ScalarType::Int64), ScalarType::Int64);
  EXPECT_EQ(promote_types(ScalarType::Float16, ScalarType::Float32), ScalarType::Float32);
  EXPECT_EQ(promote_types(ScalarType::BFloat16, ScalarType::Int64), ScalarType::BFloat16);
  EXPECT_EQ(promote_types(ScalarType::Float64, ScalarType::BFloat16), ScalarType::Float64);
  EXPECT_EQ(promote_types(ScalarType::Bool, ScalarType::Float16), ScalarType::Float16);
  for (int a = 0; a < kNumScalarTypes; ++a)
    for (int b = 0; b < kNumScalarTypes; ++b)
      EXPECT_EQ(promote_types(ScalarType(a), ScalarType(b)), promote_types(ScalarType(b), ScalarType(a)));
}

TEST(Strides, ContiguityOfViews) {
  EXPECT_EQ(contiguous_strides(DimVector{2, 3, 4}), (DimVector{12, 4, 1}));
  EXPECT_EQ(contiguous_strides(DimVector{2, 0, 4}), (DimVector{4, 4, 1}));
  Tensor t = arange_f(24);
  Tensor m = view(t, DimVector{2, 3, 4});
  EXPECT_TRUE(m.is_contiguous());
  Tensor p = permute(m, DimVector{2, 0, 1});
  EXPECT_EQ(p.sizes(), (DimVector{4, 2, 3}));
  EXPECT_EQ(p.strides(), (DimVector{1, 12, 4}));
  EXPECT_FALSE(p.is_contiguous());
  EXPECT_EQ(p.storage().get(), t.storage().get());
  Tensor s = slice(m, 2, 1, 4, 2);
  EXPECT_EQ(s.sizes(), (DimVector{2, 3, 2}));
  EXPECT_EQ(s.strides(), (DimVector{12, 4, 2}));
  EXPECT_EQ(s.storage_offset(), 1);
  EXPECT_FLOAT_EQ(*s.data<float>(), 1.0f);
  Tensor e = select(m, 1, 2);
  EXPECT_EQ(e.sizes(), (DimVector{2, 4}));
  EXPECT_EQ(e.storage_offset(), 8);
  Tensor one = view(t, DimVector{24, 1});
  EXPECT_TRUE(transpose(one, 0, 1).is_contiguous());  // size-1 dims may have any stride
  Tensor c = contiguous(p);
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(c.storage().get(), t.storage().get());
  EXPECT_FLOAT_EQ(c.data<float>()[1], 4.0f);  // p[0][0][1] = m[0][1][0]
}

TEST(Strides, ViewOfNonContiguousFails) {
  Tensor t = arange_f(6);
  Tensor p = transpose(view(t, DimVector{2, 3}), 0, 1);
  ErrorKind kind{};
  std::string msg = error_text([&] { view(p, DimVector{6}); }, &kind);
  EXPECT_NE(msg.find("[view]"), std::string::npos) << msg;
}

TEST(VersionCounter, SharedByViewsAndAliases) {
  Tensor t = arange_f(6);
  Tensor alias = t.alias();
  Tensor v = make_view(t, {3}, {2}, 0);
  EXPECT_EQ(t.version(), 0u);
  v.bump_version();
  EXPECT_EQ(t.version(), 1u);
  EXPECT_EQ(alias.version(), 1u);
  Tensor s = slice(t, 0, 0, 3);
  fill_(s, 2.0);  // an in-place op through a view bumps the shared counter
  EXPECT_EQ(t.version(), 2u);
  EXPECT_FLOAT_EQ(t.data<float>()[2], 2.0f);
  EXPECT_FLOAT_EQ(t.data<float>()[3], 3.0f);
}

TEST(Dispatcher, DeviceMismatchAndMissingKernelErrors) {
  Tensor cpu = arange_f(3);
  // A CUDA tensor object without CUDA memory: only its device is inspected before the error.
  auto fake = std::make_shared<StorageImpl>(DataPtr(nullptr, nullptr, nullptr, Device(DeviceType::CUDA, 0)), 0);
  Tensor cuda = Tensor::make(fake, {3}, {}, 0, ScalarType::Float32);
  std::string msg = error_text([&] { dispatch1<OpId::add>({cpu, cuda}, Tensor::empty(DimVector{3}, ScalarType::Float32)); });
  EXPECT_NE(msg.find("[add] expected all tensors to be on the same device"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cpu"), std::string::npos);
  EXPECT_NE(msg.find("cuda:0"), std::string::npos);
  if (op_def(OpId::add).kernels[static_cast<int>(DeviceType::CUDA)] == nullptr) {
    ErrorKind kind{};
    std::string m2 = error_text([&] { dispatch1<OpId::neg>({cuda}, cuda); }, &kind);
    EXPECT_EQ(kind, ErrorKind::NotImplemented);
    EXPECT_NE(m2.find("[neg] has no kernel for device cuda:0"), std::string::npos) << m2;
  }
}

// dispatch<OpId::x> takes exactly x's attrs type (from the spec): another one does not compile.
template <OpId id, typename A>
concept DispatchableWith = requires(std::span<const Tensor> in, std::span<Tensor> out, const A& attrs) {
  dispatch<id>(in, out, attrs);
};
static_assert(std::is_same_v<AttrsOf<OpId::layer_norm>, LayerNormAttrs>);
static_assert(DispatchableWith<OpId::layer_norm, LayerNormAttrs>);
static_assert(!DispatchableWith<OpId::layer_norm, PointwiseAttrs>);
static_assert(!DispatchableWith<OpId::exp, LayerNormAttrs>);

TEST(Dispatcher, TypedAttrsReachTheKernel) {
  Tensor x = arange_f(4);
  Tensor out = Tensor::empty(DimVector{4}, ScalarType::Float32);
  dispatch1<OpId::leaky_relu>({neg(x)}, out, {.dtype = ScalarType::Float32, .negative_slope = 0.5});
  EXPECT_FLOAT_EQ(out.data<float>()[3], -1.5f);
}

TEST(Dispatcher, WrapDimAndBroadcastErrors) {
  ErrorKind kind{};
  std::string msg = error_text([] { wrap_dim(3, 2, "sum"); }, &kind);
  EXPECT_EQ(kind, ErrorKind::Index);
  EXPECT_NE(msg.find("[sum] dimension out of range (expected to be in range of [-2, 1], but got 3)"),
            std::string::npos) << msg;
  EXPECT_EQ(broadcast_shapes(DimVector{2, 1, 3}, DimVector{4, 1}, "add"), (DimVector{2, 4, 3}));
  msg = error_text([] { broadcast_shapes(DimVector{2, 3}, DimVector{4}, "add"); });
  EXPECT_NE(msg.find("[add] shapes [2, 3] and [4] are not broadcastable"), std::string::npos) << msg;
}
