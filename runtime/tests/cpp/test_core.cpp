#include <gtest/gtest.h>

#include "core/tensor.h"

using namespace ember;

TEST(Dtype, PromotionMatchesTorch) {
  EXPECT_EQ(promote_types(ScalarType::Int64, ScalarType::Float16), ScalarType::Float16);
  EXPECT_EQ(promote_types(ScalarType::Float16, ScalarType::BFloat16), ScalarType::Float32);
  EXPECT_EQ(promote_types(ScalarType::Bool, ScalarType::UInt8), ScalarType::UInt8);
  EXPECT_EQ(promote_types(ScalarType::Int32, ScalarType::Float64), ScalarType::Float64);
}
