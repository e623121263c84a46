"""The torch-compatibility surface on a GPU: DataLoader pin_memory, checkpoints of CUDA tensors in
torch's format (locations, map_location), sizes that cannot be allocated on the device, and the
Transformer/loss modules on CUDA against the CPU results."""
import io

import numpy as np
import pytest

import ember
import ember.utils.data as edata

pytestmark = pytest.mark.skipif(not ember.cuda.is_available(), reason="needs a CUDA GPU")


def test_pin_memory_pins_every_tensor_of_a_batch():
    ds = edata.TensorDataset(ember.arange(8.0).reshape(4, 2), ember.arange(4))
    for workers in (0, 2):
        batches = list(edata.DataLoader(ds, batch_size=2, pin_memory=True, num_workers=workers))
        assert all(t.is_pinned() for b in batches for t in b)
        assert batches[1][0].to("cuda", non_blocking=True).cpu().tolist() == [[4.0, 5.0], [6.0, 7.0]]


def test_cuda_checkpoint_locations_and_map_location():
    w = ember.arange(6.0, device="cuda").reshape(2, 3)
    buf = io.BytesIO()
    ember.save({"w": w, "row": w[1]}, buf)
    back = ember.load(io.BytesIO(buf.getvalue()))
    assert back["w"].device.type == "cuda" and back["w"].cpu().tolist() == w.cpu().tolist()
    back["w"].add_(1.0)  # still one storage on the device
    assert back["row"].cpu().tolist() == [4.0, 5.0, 6.0]
    cpu = ember.load(io.BytesIO(buf.getvalue()), map_location="cpu")
    assert cpu["w"].device.type == "cpu"
    torch = pytest.importorskip("torch")
    t = torch.load(io.BytesIO(buf.getvalue()), map_location="cpu")
    assert t["w"].tolist() == w.cpu().tolist()


@pytest.mark.parametrize("make", [lambda: ember.empty(1 << 62, device="cuda"),
                                  lambda: ember.zeros(1 << 31, 1 << 31, 4, device="cuda")])
def test_overflowing_sizes_raise_on_cuda(make):
    with pytest.raises(RuntimeError, match=r"needs more than 2\^63 - 1 bytes"):
        make()


def test_unallocatable_size_raises_cuda_out_of_memory():
    with pytest.raises(RuntimeError, match=r"CUDA out of memory"):
        ember.empty(1 << 50, device="cuda")  # 4 PiB of float32
    assert ember.empty(2, device="cuda").shape == (2,)  # the allocator still works afterwards


def test_transformer_and_losses_on_cuda_match_cpu():
    ember.manual_seed(0)
    model = ember.nn.TransformerEncoder(ember.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True), 2)
    x = ember.from_numpy(np.random.default_rng(0).standard_normal((2, 5, 16)).astype(np.float32))
    mask = ember.nn.Transformer.generate_square_subsequent_mask(5)
    target = ember.from_numpy(np.random.default_rng(1).integers(0, 16, (10,)))
    weight = ember.linspace(0.5, 2.0, 16)
    outs = {}
    for device in ("cpu", "cuda"):
        m = model.to(device)
        y = m(x.to(device), mask=mask.to(device))
        loss = ember.nn.CrossEntropyLoss(weight=weight.to(device), label_smoothing=0.1)(y.reshape(10, 16),
                                                                                         target.to(device))
        loss = loss + ember.nn.functional.binary_cross_entropy_with_logits(
            y, ember.ones_like(y) * 0.3, pos_weight=weight.to(device))
        loss.backward()
        outs[device] = (loss.item(), [p.grad.cpu().numpy().copy() for p in m.parameters()])
        m.zero_grad()
    np.testing.assert_allclose(outs["cuda"][0], outs["cpu"][0], rtol=1e-4)
    for a, b in zip(outs["cuda"][1], outs["cpu"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
