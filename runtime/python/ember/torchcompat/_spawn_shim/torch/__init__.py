"""Only on sys.path under `python -m ember.torchcompat`, where the alias finder answers every `import
torch` first. A child process started with spawn/forkserver (DataLoader workers) inherits sys.path
but not the finder, and re-imports the script: this stand-in installs the alias there and replaces
itself with ember (Note [torch import alias])."""
import sys

import ember
import ember.torchcompat

sys.modules.pop("torch", None)  # this shim; install() refuses while a non-ember torch is loaded
ember.torchcompat.install()
sys.modules["torch"] = ember
