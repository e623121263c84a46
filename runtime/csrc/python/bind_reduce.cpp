#include "python/bindings.h"

namespace ember::python {

void bind_reduce(py::module_& m) { (void)m; }

}  // namespace ember::python
