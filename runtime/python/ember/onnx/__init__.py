"""ember.onnx: importable so scripts with `import torch.onnx` at the top run; ember has no ONNX
exporter, and calling export raises NotImplementedError."""
from __future__ import annotations

__all__ = ["export"]


def export(*args, **kwargs):
    raise NotImplementedError("ember.onnx.export: ember has no ONNX exporter (export from a PyTorch copy of the model: "
                              "ember.save its state_dict and load that into the torch model)")
