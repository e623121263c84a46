#pragma once
// Pieces of the interop layer shared between bind_interop.cpp and interop_dlpack.cpp.
#include "python/bindings.h"

namespace ember::python {

void bind_dlpack(py::module_& m);  // ember.from_dlpack, Tensor.__dlpack__, Tensor.__dlpack_device__

}  // namespace ember::python
