"""Run PyTorch programs on ember unchanged: an import alias that resolves `torch` to `ember`.

    python -m ember.torchcompat train.py --lr 3e-4          # run a script
    python -m ember.torchcompat -m package.module args...   # run a module

or, in code, `ember.torchcompat.install()` before anything imports torch.

Note [torch import alias]: a meta-path finder placed first on sys.meta_path answers every import
of `torch` or `torch.<sub>` with the already imported `ember` / `ember.<sub>` module object itself,
so `torch.nn is ember.nn` and objects are shared, not copied. A torch submodule ember lacks fails
at import with ModuleNotFoundError naming it; a missing attribute of an aliased module fails with
AttributeError naming the torch spelling. docs/compat.md lists what is covered and the limits
(third-party packages built on torch, e.g. torchvision, are not supported).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__all__ = ["install", "uninstall", "is_installed", "TorchAliasFinder"]

_DOCS = "docs/compat.md lists what ember covers"


def _ember_name(torch_name: str) -> str:
    return "ember" + torch_name[len("torch"):]


class _AliasLoader(importlib.abc.Loader):
    """Hands the import system an existing ember module instead of creating one."""

    def __init__(self, module):
        self.module = module
        self.own_spec = module.__spec__

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        # The import system stamped the alias spec on the module; the module keeps its own identity.
        module.__spec__ = self.own_spec
        _add_missing_attribute_hook(module)


def _add_missing_attribute_hook(module) -> None:
    """A module-level __getattr__ (PEP 562) whose AttributeError names the torch attribute."""
    if "__getattr__" in vars(module):  # the module has its own (or got ours on an earlier import)
        return
    torch_name = "torch" + module.__name__[len("ember"):]

    def __getattr__(name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(f"module '{module.__name__}' has no attribute '{name}'")
        raise AttributeError(f"module '{torch_name}' has no attribute '{name}': ember does not implement "
                             f"`{torch_name}.{name}` (running on ember through the torch alias; {_DOCS})")

    module.__getattr__ = __getattr__


class TorchAliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch" and not fullname.startswith("torch."):
            return None
        ember_name = _ember_name(fullname)
        try:
            module = importlib.import_module(ember_name)
        except ModuleNotFoundError as e:
            if e.name is not None and (ember_name == e.name or ember_name.startswith(e.name + ".")):
                raise ModuleNotFoundError(f"No module named '{fullname}': ember has no `{ember_name}` to stand in "
                                          f"for it (running on ember through the torch alias; {_DOCS})",
                                          name=fullname) from None
            raise
        return importlib.util.spec_from_loader(fullname, _AliasLoader(module),
                                               is_package=hasattr(module, "__path__"))


_finder = TorchAliasFinder()


def is_installed() -> bool:
    return _finder in sys.meta_path


def install() -> None:
    """Makes `import torch...` resolve to ember. Refuses if a real torch is already imported."""
    loaded = sys.modules.get("torch")
    if loaded is not None and not getattr(loaded, "__name__", "").startswith("ember"):
        raise RuntimeError("ember.torchcompat.install(): torch is already imported in this process; install the "
                           "alias before anything imports torch (or run the script with python -m ember.torchcompat)")
    if not is_installed():
        sys.meta_path.insert(0, _finder)
    # Modules scripts reach as attributes (torch.cuda.amp) never pass through the finder: hook them too.
    for name, module in list(sys.modules.items()):
        public = not any(part.startswith("_") for part in name.split("."))
        if public and (name == "ember" or name.startswith("ember.")) and module is not None:
            _add_missing_attribute_hook(module)


def uninstall() -> None:
    """Removes the alias and forgets the `torch*` names it created."""
    if is_installed():
        sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if n == "torch" or n.startswith("torch.")]:
        if getattr(sys.modules[name], "__name__", "").startswith("ember"):
            del sys.modules[name]
