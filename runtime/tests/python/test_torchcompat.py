"""Running PyTorch programs on ember: the `torch` import alias (python -m ember.torchcompat), the
importable distributed/parallel shells, and the top-level odds and ends real scripts touch
(Tensor.data/.type()/.new_*, meshgrid, isclose/allclose/equal, legacy tensor types, accelerator,
compile), plus clear errors for sizes that cannot be allocated."""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import ember
from compat_helpers import one_thread_each  # noqa: F401  (autouse fixture)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PYTHONPATH = os.pathsep.join([os.path.join(REPO, "runtime", "python"), os.environ.get("PYTHONPATH", "")])


def run_alias(tmp_path, source, *args, check=True):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    proc = subprocess.run([sys.executable, "-m", "ember.torchcompat", str(script), *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": PYTHONPATH}, cwd=tmp_path, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_script_runs_with_torch_resolved_to_ember(tmp_path):
    (tmp_path / "helper.py").write_text("import torch\nVALUE = torch.ones(2).sum().item()\n")
    proc = run_alias(tmp_path, """
        import sys
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        from torch.utils.data import DataLoader, TensorDataset
        from torch.utils.data.dataloader import default_collate
        from torch.nn.parallel import DistributedDataParallel as DDP
        from torch.distributed import init_process_group, destroy_process_group
        import torch.optim.lr_scheduler
        import torch.onnx
        import torch.backends.cudnn as cudnn
        from torch.nn.modules.loss import _Loss
        import ember
        torch.backends.cuda.matmul.allow_tf32 = True
        cudnn.benchmark = True
        assert torch.nn.modules.linear.Linear is nn.Linear and issubclass(nn.MSELoss, _Loss)
        assert torch.nn.modules.activation.MultiheadAttention is nn.MultiheadAttention
        assert not torch.backends.mps.is_available() and not cudnn.is_available()
        import helper  # the script's folder is on sys.path, as with `python script.py`
        assert torch is ember and nn is ember.nn and F is ember.nn.functional and torch.optim is ember.optim
        assert DataLoader is ember.utils.data.DataLoader and DDP is ember.nn.parallel.DistributedDataParallel
        assert torch.nn.Linear.__module__.startswith("ember.") and torch.__spec__.name == "ember"
        model = nn.Linear(3, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(TensorDataset(torch.randn(8, 3), torch.randint(0, 2, (8,))), batch_size=4)
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
        print("argv", sys.argv[1:], "name", __name__, "helper", helper.VALUE)
        """, "--lr", "3")
    assert "argv ['--lr', '3'] name __main__ helper 2.0" in proc.stdout


@pytest.mark.parametrize("context", ["spawn", "forkserver"])
def test_dataloader_workers_started_without_fork_get_the_alias_too(tmp_path, context):
    proc = run_alias(tmp_path, f"""
        import torch
        from torch.utils.data import DataLoader, Dataset

        class Squares(Dataset):
            def __len__(self):
                return 6

            def __getitem__(self, i):
                import torch as t  # inside the worker process
                assert t.__name__ == "ember"
                return t.tensor([i * i])

        if __name__ == "__main__":
            loader = DataLoader(Squares(), batch_size=4, num_workers=1, multiprocessing_context="{context}")
            print([b.reshape(-1).tolist() for b in loader])
        """)
    assert proc.stdout.strip() == "[[0, 1, 4, 9], [16, 25]]"


def test_missing_module_and_attribute_errors_name_them(tmp_path):
    proc = run_alias(tmp_path, "import torch.utils.tensorboard\n", check=False)
    assert proc.returncode != 0
    assert "No module named 'torch.utils.tensorboard': ember has no `ember.utils.tensorboard`" in proc.stderr
    proc = run_alias(tmp_path, "import torch\ntorch.fft_magic(3)\n", check=False)
    assert "module 'torch' has no attribute 'fft_magic': ember does not implement `torch.fft_magic`" in proc.stderr
    proc = run_alias(tmp_path, "from torch.nn import FancyLayer\n", check=False)
    assert "cannot import name 'FancyLayer' from 'ember.nn'" in proc.stderr
    proc = run_alias(tmp_path, "import torch\ntorch.cuda.jiterator\n", check=False)
    assert "module 'torch.cuda' has no attribute 'jiterator': ember does not implement `torch.cuda.jiterator`" \
        in proc.stderr


def test_module_mode_and_usage(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "main.py").write_text("import sys, torch\nprint(torch.__name__, sys.argv[1:])\n")
    proc = subprocess.run([sys.executable, "-m", "ember.torchcompat", "-m", "pkg.main", "x"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), PYTHONPATH])},
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ember ['x']"
    proc = subprocess.run([sys.executable, "-m", "ember.torchcompat"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": PYTHONPATH}, timeout=120)
    assert proc.returncode == 2 and "usage: python -m ember.torchcompat" in proc.stdout


def test_install_refuses_when_real_torch_is_loaded():
    from ember import torchcompat
    assert "torch" in sys.modules  # this test process imported the real torch as the reference
    with pytest.raises(RuntimeError, match="torch is already imported"):
        torchcompat.install()
    assert not torchcompat.is_installed()


def test_import_ember_as_torch_for_top_level_code():
    import ember as torch_like
    x = torch_like.randn(4, 3)
    model = torch_like.nn.Sequential(torch_like.nn.Linear(3, 5), torch_like.nn.ReLU(), torch_like.nn.Linear(5, 2))
    loader = torch_like.utils.data.DataLoader(torch_like.utils.data.TensorDataset(x), batch_size=2)
    out = [model(b) for (b,) in loader]
    assert [tuple(o.shape) for o in out] == [(2, 2), (2, 2)]
    assert torch_like.nn.functional.one_hot(torch_like.tensor([1, 0]), 2).tolist() == [[0, 1], [1, 0]]


def test_distributed_paths_import_and_fail_clearly_uninitialized():
    """nanoGPT's train.py imports these names at top level; before init_process_group they must
    raise a clear error rather than return a bogus rank (the API itself: tests/python/distributed)."""
    import ember.distributed as dist
    from ember.nn.parallel import DistributedDataParallel  # noqa: F401
    assert dist.is_initialized() is False
    with pytest.raises(RuntimeError, match=r"\[distributed.get_rank\] the default process group is not initialized"):
        dist.get_rank()
    with pytest.raises(NotImplementedError, match="ember has no ONNX exporter"):
        ember.onnx.export(ember.nn.Linear(2, 2), ember.ones(1, 2), "m.onnx")


def test_accelerator_and_compile():
    assert ember.accelerator.is_available() == ember.cuda.is_available()
    acc = ember.accelerator.current_accelerator()
    assert (acc is None) == (not ember.cuda.is_built())
    model = ember.nn.Linear(2, 2)
    import ember._compat as compat
    compat._warned_compile = False
    with pytest.warns(UserWarning, match="pass-through"):
        assert ember.compile(model) is model
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warns once only

        @ember.compile(mode="max-autotune")
        def f(x):
            return x + 1
        assert f(1) == 2 and ember.compile(model, fullgraph=True) is model


# ---- tensor and top-level odds and ends ----------------------------------------------------------
def test_tensor_data_property():
    p = ember.nn.Parameter(ember.ones(3))
    d = p.data
    assert not d.requires_grad and d.data_ptr() == p.data_ptr()
    p.data.add_(1.0)  # the classic SGD-by-hand idiom
    assert p.tolist() == [2.0, 2.0, 2.0] and p.requires_grad
    p.data = ember.full((3,), 5.0)
    assert p.tolist() == [5.0, 5.0, 5.0] and p.requires_grad
    with pytest.raises(NotImplementedError, match=r"\[Tensor.data\] assigning a tensor of shape \[2\]"):
        p.data = ember.ones(2)


def test_tensor_type_and_legacy_constructors():
    x = ember.tensor([1.5, 2.5])
    assert x.type() == "ember.FloatTensor" and torch.tensor([1.5]).type() == "torch.FloatTensor"
    assert x.type(ember.int64).dtype == ember.int64 and x.type(ember.LongTensor).tolist() == [1, 2]
    assert x.type("torch.DoubleTensor").dtype == ember.float64
    with pytest.raises(ValueError, match="invalid type"):
        x.type("torch.NopeTensor")
    assert ember.LongTensor([1, 2]).dtype == ember.int64 and ember.FloatTensor(2, 3).shape == (2, 3)
    assert isinstance(ember.LongTensor([1]), ember.LongTensor) and not isinstance(x, ember.LongTensor)
    assert ember.ByteTensor([1, 255]).tolist() == [1, 255] and ember.BoolTensor([1, 0]).dtype == ember.bool
    assert ember.FloatTensor().shape == (0,)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_new_factories_match_torch(dtype):
    t, e = torch.ones(2, dtype=getattr(torch, dtype)), ember.ones(2, dtype=getattr(ember, dtype))
    for name, args in [("new_zeros", ((2, 3),)), ("new_ones", (3,)), ("new_full", ((2,), 7)), ("new_empty", ((1, 2),)),
                       ("new_tensor", ([[1, 0], [0, 1]],))]:
        a, b = getattr(e, name)(*args), getattr(t, name)(*args)
        assert tuple(a.shape) == tuple(b.shape) and str(a.dtype)[6:] == str(b.dtype)[6:], name
        if name != "new_empty":
            assert a.tolist() == b.tolist(), name
    assert e.new_tensor([1, 2], dtype=ember.float64, requires_grad=True).requires_grad


@pytest.mark.parametrize("indexing", ["ij", "xy"])
@pytest.mark.parametrize("sizes", [(3,), (3, 4), (2, 3, 4), (0, 2)])
def test_meshgrid_matches_torch(indexing, sizes):
    ts = [torch.arange(n) * (i + 1) for i, n in enumerate(sizes)]
    es = [ember.arange(n) * (i + 1) for i, n in enumerate(sizes)]
    for a, b in zip(ember.meshgrid(*es, indexing=indexing), torch.meshgrid(*ts, indexing=indexing)):
        assert tuple(a.shape) == tuple(b.shape) and a.tolist() == b.tolist()
    with pytest.raises(ValueError, match="indexing must be one of"):
        ember.meshgrid(*es, indexing="ji")


CLOSE_CASES = [([1.0, 2.0, np.nan, np.inf, -np.inf, 1e-9], [1.0 + 1e-6, 2.1, np.nan, np.inf, np.inf, 0.0]),
               ([0.0, 1.0], [1e-8, 1.00001]), ([], [])]


@pytest.mark.parametrize("a,b", CLOSE_CASES)
@pytest.mark.parametrize("kw", [{}, dict(equal_nan=True), dict(rtol=0.1, atol=0.0), dict(rtol=0.0, atol=1e-7)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_isclose_allclose_equal_match_torch(a, b, kw, dtype):
    ta, tb = torch.tensor(a, dtype=getattr(torch, dtype)), torch.tensor(b, dtype=getattr(torch, dtype))
    ea, eb = ember.tensor(a, dtype=getattr(ember, dtype)), ember.tensor(b, dtype=getattr(ember, dtype))
    assert ember.isclose(ea, eb, **kw).tolist() == torch.isclose(ta, tb, **kw).tolist()
    assert ember.allclose(ea, eb, **kw) == torch.allclose(ta, tb, **kw)
    assert ember.equal(ea, eb) == torch.equal(ta, tb) and ember.equal(ea, ea) == torch.equal(ta, ta)


def test_isclose_integers_and_errors():
    a, b = [1, 5, -3], [1, 6, -3]
    assert ember.isclose(ember.tensor(a), ember.tensor(b), rtol=0.2).tolist() == \
        torch.isclose(torch.tensor(a), torch.tensor(b), rtol=0.2).tolist()
    assert ember.equal(ember.zeros(2), ember.zeros(3)) is False
    with pytest.raises(RuntimeError, match="same dtype"):
        ember.isclose(ember.zeros(2), ember.zeros(2, dtype=ember.float64))


# ---- sizes that cannot be allocated (the core's overflow checks) ----------------------------------
@pytest.mark.parametrize("make", [lambda: ember.empty(1 << 62), lambda: ember.zeros(1 << 31, 1 << 31, 4),
                                  lambda: ember.ones((1 << 40, 1 << 40)), lambda: ember.empty(1 << 61, dtype=ember.int64),
                                  lambda: ember.empty_strided((2, 3), (1 << 62, 1)),
                                  lambda: ember.full((1 << 62,), 1.0)])
def test_overflowing_sizes_raise(make):
    with pytest.raises(RuntimeError, match=r"needs more than 2\^63 - 1 bytes"):
        make()


def test_unallocatable_size_raises_out_of_memory():
    with pytest.raises(RuntimeError, match=r"\[cpu allocator\] out of memory allocating 4398046511104 bytes"):
        ember.empty(1 << 40)  # 4 TiB: fits int64, but no machine here has it
    assert ember.empty(0, 1 << 62).shape == (0, 1 << 62)  # zero elements: nothing to allocate, like torch


def test_small_queries_and_settings():
    x = ember.ones(2, 3)
    assert ember.is_tensor(x) and not ember.is_tensor([1]) and ember.numel(x) == 6 == x.nelement()
    assert x.ndimension() == 2 and x.get_device() == -1 == torch.ones(1).get_device()
    assert x.shape == ember.Size([2, 3]) and ember.Size([2, 3]).numel() == 6 and repr(ember.Size([2])) == "ember.Size([2])"
    assert ember.get_default_dtype() == ember.float32
    ember.set_default_dtype(ember.float32)
    with pytest.raises(NotImplementedError, match="fixed to float32"):
        ember.set_default_dtype(ember.float64)
    before = ember.get_float32_matmul_precision()
    try:
        ember.set_float32_matmul_precision("high")
        assert ember.get_float32_matmul_precision() == "high"
        assert ember.cuda.matmul.allow_tf32 == ember.cuda.is_built()
        with pytest.raises(ValueError, match="precision must be one of"):
            ember.set_float32_matmul_precision("low")
    finally:
        ember.set_float32_matmul_precision(before)


TOP_LEVEL_FUNCTIONAL = ["adaptive_avg_pool1d", "alpha_dropout", "avg_pool1d", "bilinear", "celu", "celu_",
                        "channel_shuffle", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d", "cosine_similarity", "feature_alpha_dropout", "hardshrink",
                        "pairwise_distance", "pdist", "pixel_shuffle", "pixel_unshuffle", "prelu", "rrelu", "rrelu_",
                        "selu", "selu_", "threshold", "threshold_"]


@pytest.mark.parametrize("name", TOP_LEVEL_FUNCTIONAL)
def test_top_level_names_of_functional_ops(name):
    """torch.conv2d, torch.selu, torch.pdist, ... exist in torch's namespace; scripts call them there."""
    assert hasattr(torch, name)
    unwrap = lambda f: getattr(f, "__ember_autocast_wrapped__", f)  # noqa: E731  (autocast wraps each name)
    assert unwrap(getattr(ember, name)) is unwrap(getattr(ember.nn.functional, name))


def test_top_level_functional_values_match_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 3, 3)).astype(np.float32)
    et, tt = ember.from_numpy(x), torch.from_numpy(x)
    for call in (lambda lib, t: lib.selu(t), lambda lib, t: lib.pixel_shuffle(t, 2),
                 lambda lib, t: lib.threshold(t, 0.1, -1.0), lambda lib, t: lib.pdist(t.reshape(2, -1)),
                 lambda lib, t: lib.conv2d(t, lib.ones(4, 8, 2, 2), padding=1)):
        np.testing.assert_allclose(call(ember, et).numpy(), call(torch, tt).numpy(), rtol=1e-5, atol=1e-5)
