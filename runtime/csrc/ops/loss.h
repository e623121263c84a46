#pragma once
// The reduction of the fused losses as their kernels see it (CrossEntropyAttrs::reduction).
#include <cstdint>
#include <string_view>

namespace ember {

enum class LossReduction : int64_t { None = 0, Sum = 1, Mean = 2 };
// 'none', 'sum' or 'mean'; anything else raises a ValueError naming `op`.
LossReduction loss_reduction(std::string_view name, const char* op);

}  // namespace ember
