"""ember.backends.cuda: `matmul.allow_tf32` is ember.cuda.matmul's switch (TF32 in cuBLAS float32 GEMMs)."""
from ..cuda import is_built, matmul  # noqa: F401

__all__ = ["matmul", "is_built"]
