// The autograd engine, driven through C++ ops: diamonds, accumulation, retain_graph, hooks,
// saved-tensor version checks, autograd::grad, create_graph.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/ops.h"

using namespace ember;

namespace {

Tensor leaf(std::initializer_list<double> values) {
  Tensor t = Tensor::empty(DimVector{static_cast<int64_t>(values.size())}, ScalarType::Float64);
  int64_t i = 0;
  for (double v : values) t.data<double>()[i++] = v;
  t.set_requires_grad(true);
  return t;
}

double at(const Tensor& t, int64_t i) {
  Tensor c = contiguous(to_dtype(t, ScalarType::Float64));
  return c.data<double>()[i];
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST(Engine, DiamondAccumulatesEachPathOnce) {
  Tensor x = leaf({2.0, -1.0});
  Tensor a = mul(x, x);                 // x^2
  Tensor b = add(a, a);                 // 2x^2
  Tensor c = mul(a, x);                 // x^3
  Tensor y = sum(add(b, c));
  backward({y}, {Tensor()}, false, false);
  // d/dx (2x^2 + x^3) = 4x + 3x^2
  EXPECT_DOUBLE_EQ(at(x.grad(), 0), 4 * 2.0 + 3 * 4.0);
  EXPECT_DOUBLE_EQ(at(x.grad(), 1), -4.0 + 3.0);
}

TEST(Engine, GradientsAccumulateAcrossCalls) {
  Tensor x = leaf({1.0, 2.0});
  for (int i = 0; i < 3; ++i) backward({sum(mul(x, x))}, {Tensor()}, false, false);
  EXPECT_DOUBLE_EQ(at(x.grad(), 1), 3 * 4.0);
  x.set_grad(Tensor());
  EXPECT_FALSE(x.grad().defined());
}

TEST(Engine, RetainGraphAndSecondBackwardError) {
  Tensor x = leaf({3.0});
  Tensor y = sum(mul(x, x));
  backward({y}, {Tensor()}, /*retain_graph=*/true, false);
  backward({y}, {Tensor()}, false, false);
  EXPECT_DOUBLE_EQ(at(x.grad(), 0), 12.0);
  std::string msg = error_of([&] { backward({y}, {Tensor()}, false, false); });
  EXPECT_NE(msg.find("Trying to backward through the graph a second time"), std::string::npos) << msg;
  EXPECT_NE(msg.find("MulBackward"), std::string::npos) << msg;
}

TEST(Engine, ScalarRootRequiredWithoutGradient) {
  Tensor x = leaf({1.0, 2.0});
  std::string msg = error_of([&] { backward({mul(x, x)}, {Tensor()}, false, false); });
  EXPECT_NE(msg.find("grad can be implicitly created only for scalar outputs"), std::string::npos) << msg;
}

TEST(Engine, LeafAndNonLeafHooks) {
  Tensor x = leaf({1.0, 2.0});
  int leaf_calls = 0;
  x.impl()->autograd_meta().hooks.push_back([&](const Tensor& g) {
    ++leaf_calls;
    return mul(g, full(g.sizes(), 10.0, g.dtype()));
  });
  Tensor h = mul(x, full(DimVector{2}, 3.0, ScalarType::Float64));
  double seen = 0;
  h.grad_fn()->pre_hooks.push_back({h.output_nr(), [&](const Tensor& g) { seen = at(g, 0); return Tensor(); }});
  backward({sum(mul(h, h))}, {Tensor()}, false, false);
  EXPECT_EQ(leaf_calls, 1);
  EXPECT_DOUBLE_EQ(seen, 2 * 3.0);                    // d(h^2)/dh at x=1
  EXPECT_DOUBLE_EQ(at(x.grad(), 1), 2 * 6.0 * 3 * 10);  // chain rule, then the leaf hook's x10
}

TEST(Engine, SavedTensorVersionCheck) {
  Tensor x = leaf({1.0, 2.0});
  Tensor a = mul(x, full(DimVector{2}, 1.0, ScalarType::Float64));
  Tensor y = sum(mul(a, a));
  add_(a, full(DimVector{2}, 1.0, ScalarType::Float64));
  std::string msg = error_of([&] { backward({y}, {Tensor()}, false, false); });
  EXPECT_NE(msg.find("[mul] one of the variables needed for gradient computation has been modified by an "
                     "inplace operation"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected version"), std::string::npos) << msg;
}

TEST(Engine, GradDoesNotTouchDotGradAndSupportsAllowUnused) {
  Tensor x = leaf({2.0});
  Tensor z = leaf({5.0});
  Tensor y = sum(mul(x, x));
  auto g = grad({y}, {Tensor()}, {x, z}, true, false, /*allow_unused=*/true);
  EXPECT_DOUBLE_EQ(at(g[0], 0), 4.0);
  EXPECT_FALSE(g[1].defined());
  EXPECT_FALSE(x.grad().defined());
  std::string msg = error_of([&] { grad({y}, {Tensor()}, {x, z}, false, false, false); });
  EXPECT_NE(msg.find("appears to not have been used in the graph"), std::string::npos) << msg;
}

TEST(Engine, CreateGraphGivesSecondDerivatives) {
  Tensor x = leaf({0.5});
  auto g = grad({sum(exp(mul(x, x)))}, {Tensor()}, {x}, true, /*create_graph=*/true, false);
  ASSERT_TRUE(g[0].requires_grad());
  // d/dx 2x e^{x^2} = (2 + 4x^2) e^{x^2}; needs the saved output re-attached to the graph
  auto gg = grad({sum(g[0])}, {Tensor()}, {x}, false, false, false);
  EXPECT_NEAR(at(gg[0], 0), (2 + 4 * 0.25) * std::exp(0.25), 1e-12);
}

TEST(Engine, NoGradRecordsNothingAndIntOutputsNeedNoGrad) {
  Tensor x = leaf({1.0, -1.0});
  {
    GradModeGuard guard(false);
    Tensor y = mul(x, x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
  }
  Tensor mask = gt(x, zeros(DimVector{2}, ScalarType::Float64));
  EXPECT_FALSE(mask.requires_grad());
  EXPECT_TRUE(mul(x, x).requires_grad());
}

TEST(Engine, LeafInPlaceIsRejected) {
  Tensor x = leaf({1.0});
  std::string msg = error_of([&] { mul_(x, full(DimVector{1}, 2.0, ScalarType::Float64)); });
  EXPECT_NE(msg.find("a leaf Variable that requires grad"), std::string::npos) << msg;
}

TEST(Engine, InPlaceOnViewRebasesBaseHistory) {
  Tensor x = leaf({1.0, 2.0, 3.0, 4.0});
  Tensor h = mul(x, full(DimVector{4}, 2.0, ScalarType::Float64));
  Tensor v = slice(h, 0, 0, 2);
  mul_(v, full(DimVector{2}, 3.0, ScalarType::Float64));
  ASSERT_NE(h.grad_fn(), nullptr);
  EXPECT_EQ(h.grad_fn()->name(), "CopySlices");
  backward({sum(mul(h, h))}, {Tensor()}, false, false);
  // h = [6x0, 6x1, 2x2, 2x3]; d(sum h^2)/dx = 2h * dh/dx
  EXPECT_DOUBLE_EQ(at(x.grad(), 0), 72.0);
  EXPECT_DOUBLE_EQ(at(x.grad(), 1), 144.0);
  EXPECT_DOUBLE_EQ(at(x.grad(), 2), 24.0);
  EXPECT_DOUBLE_EQ(at(x.grad(), 3), 32.0);
}

TEST(Engine, InPlaceOnViewOfLeafIsRejectedBeforeWriting) {
  Tensor x = leaf({1.0, 2.0});
  Tensor v = slice(x, 0, 0, 1);
  std::string msg = error_of([&] { mul_(v, full(DimVector{1}, 2.0, ScalarType::Float64)); });
  EXPECT_NE(msg.find("a view of a leaf Variable that requires grad"), std::string::npos) << msg;
  EXPECT_DOUBLE_EQ(x.data<double>()[0], 1.0);
}
