#include "python/bindings.h"

namespace ember::python {

void bind_factory(py::module_& m) { (void)m; }

}  // namespace ember::python
