import os
import sys

# Tests run against the in-tree package (built with EMBER_PYTHON_OUT) or an installed one.
_here = os.path.dirname(os.path.abspath(__file__))
_pkg = os.path.abspath(os.path.join(_here, "..", "..", "python"))
if _pkg not in sys.path:
    sys.path.insert(0, _pkg)
sys.path.insert(0, _here)
