"""BatchNorm1d/2d/3d and SyncBatchNorm (one process only) (torch.nn.modules.batchnorm): running
statistics in buffers, train/eval, momentum=None for a cumulative average; torch's state_dict keys.
Math: nn/_conv.py batch_norm."""
from __future__ import annotations

import ember

from .. import _conv as C
from .. import init
from ..parameter import Parameter
from .module import Module


class _BatchNorm(Module):
    _expected_dims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        kw = dict(dtype=dtype if dtype is not None else ember.float32, device=device if device is not None else "cpu")
        if affine:
            self.weight = Parameter(ember.empty((num_features,), **kw))
        else:
            self.register_parameter("weight", None)
        if affine and bias:
            self.bias = Parameter(ember.empty((num_features,), **kw))
        else:
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", ember.zeros((num_features,), **kw))
            self.register_buffer("running_var", ember.ones((num_features,), **kw))
            self.register_buffer("num_batches_tracked", ember.tensor(0, dtype=ember.int64, device=kw["device"]))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def _check_input_dim(self, input) -> None:
        if input.dim() not in self._expected_dims:
            want = " or ".join(f"{d}D" for d in self._expected_dims)
            raise ValueError(f"[{type(self).__name__}] expected {want} input (got {input.dim()}D input)")

    def forward(self, input):
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        # Running stats are updated only while training with tracking; eval reads them.
        track = not self.training or self.track_running_stats
        return C.batch_norm(input, self.running_mean if track else None, self.running_var if track else None,
                            self.weight, self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    _expected_dims = (4,)


class BatchNorm3d(_BatchNorm):
    _expected_dims = (5,)


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over N and any spatial dims whose statistics would be synchronised across processes.
    A single process (no process group, or a world of one) computes exactly BatchNorm; training with
    several processes raises NotImplementedError (ember has no cross-process batch statistics yet)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input) -> None:
        if input.dim() < 2:
            raise ValueError(f"[SyncBatchNorm] expected at least 2D input (got {input.dim()}D input)")
        if input.shape[1] == 0:
            raise ValueError("[SyncBatchNorm] SyncBatchNorm number of input channels should be non-zero")

    def forward(self, input):
        from ... import distributed
        if self.training and distributed.is_available() and distributed.is_initialized() and \
                distributed.get_world_size(self.process_group) > 1:
            raise NotImplementedError("[SyncBatchNorm] training with batch statistics synchronised across "
                                      f"{distributed.get_world_size(self.process_group)} processes is not supported "
                                      "yet; use BatchNorm (per-process statistics) instead")
        return super().forward(input)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """module with every BatchNorm*d replaced by a SyncBatchNorm sharing its parameters and buffers."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                      process_group)
            if module.affine:
                out.weight, out.bias = module.weight, module.bias
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
            out.training = module.training
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out
