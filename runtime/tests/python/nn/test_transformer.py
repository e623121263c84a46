"""nn.Transformer family against torch: same state_dict keys (a torch state dict loads strictly),
same forward outputs and parameter gradients for post-norm / norm_first, relu / gelu / a callable
activation, batch_first or not, unbatched inputs, bool and float attention and key-padding masks,
generate_square_subsequent_mask; dropout is active in train mode and off in eval mode."""
import numpy as np
import pytest
import torch

import ember
from compat_helpers import one_thread_each  # noqa: F401  (autouse fixture)
from nn_helpers import E, N

D, H, FF = 16, 4, 24


def _copy(tm, em):
    assert list(tm.state_dict()) == list(em.state_dict()), "state_dict keys (and their order) must match torch's"
    em.load_state_dict({k: E(v) for k, v in tm.state_dict().items()}, strict=True)


def _check(out_e, out_t, tm, em, rtol=2e-4, atol=2e-5):
    np.testing.assert_allclose(N(out_e), N(out_t), rtol=rtol, atol=atol)
    g = np.random.default_rng(9).standard_normal(tuple(out_t.shape)).astype(np.float32)
    (out_t * torch.from_numpy(g)).sum().backward()
    (out_e * ember.from_numpy(g)).sum().backward()
    for (name, pt), (_, pe) in zip(tm.named_parameters(), em.named_parameters()):
        if pt.grad is None:
            assert pe.grad is None or not N(pe.grad).any(), name
            continue
        np.testing.assert_allclose(N(pe.grad), N(pt.grad), rtol=rtol * 5, atol=atol * 5, err_msg=name)


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _masks(kind, L, S, B):
    """(attn_mask, key_padding_mask) numpy arrays of the given kind."""
    rng = np.random.default_rng(5)
    causal = np.triu(np.ones((L, S), bool), 1)
    pad = np.zeros((B, S), bool)
    pad[0, -2:] = True
    if kind == "none":
        return None, None
    if kind == "bool":
        return causal, pad
    if kind == "float":
        return np.where(causal, -np.inf, rng.uniform(-1, 0, (L, S))).astype(np.float32), \
            np.where(pad, -np.inf, 0.0).astype(np.float32)
    if kind == "mixed":  # a float attention mask with a bool padding mask (torch converts both)
        return np.where(causal, -np.inf, 0.0).astype(np.float32), pad
    raise ValueError(kind)


def _pair(a):
    return (None, None) if a is None else (torch.from_numpy(a), ember.from_numpy(a.copy()))


def _gelu_tanh(lib):
    return lambda x: lib.nn.functional.gelu(x, approximate="tanh")


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "callable"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("masks", ["none", "bool", "float", "mixed"])
def test_encoder_matches_torch(norm_first, activation, batch_first, masks):
    torch.manual_seed(0)
    act = {"relu": ("relu", "relu"), "gelu": ("gelu", "gelu"), "callable": (_gelu_tanh(torch), _gelu_tanh(ember))}
    layer_t = torch.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation=act[activation][0],
                                               batch_first=batch_first, norm_first=norm_first)
    tm = torch.nn.TransformerEncoder(layer_t, 2, norm=torch.nn.LayerNorm(D), enable_nested_tensor=False)
    layer_e = ember.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation=act[activation][1],
                                               batch_first=batch_first, norm_first=norm_first)
    em = ember.nn.TransformerEncoder(layer_e, 2, norm=ember.nn.LayerNorm(D))
    _copy(tm, em)
    B, L = 3, 6
    x = _x(B, L, D) if batch_first else _x(L, B, D)
    am, kpm = _masks(masks, L, L, B)
    (amt, ame), (kt, ke) = _pair(am), _pair(kpm)
    xt, xe = torch.from_numpy(x), ember.from_numpy(x)
    _check(em(xe, mask=ame, src_key_padding_mask=ke), tm(xt, mask=amt, src_key_padding_mask=kt), tm, em)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("masks", ["none", "bool", "float"])
def test_decoder_layer_matches_torch(norm_first, masks):
    torch.manual_seed(1)
    tm = torch.nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
    em = ember.nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
    _copy(tm, em)
    B, L, S = 2, 5, 7
    tgt, mem = _x(B, L, D, seed=1), _x(B, S, D, seed=2)
    tam, tkpm = _masks(masks, L, L, B)
    mam, mkpm = _masks(masks, L, S, B)
    t = {k: _pair(v) for k, v in dict(tgt_mask=tam, tgt_key_padding_mask=tkpm, memory_mask=mam,
                                       memory_key_padding_mask=mkpm).items()}
    out_t = tm(torch.from_numpy(tgt), torch.from_numpy(mem), **{k: v[0] for k, v in t.items()})
    out_e = em(ember.from_numpy(tgt), ember.from_numpy(mem), **{k: v[1] for k, v in t.items()})
    _check(out_e, out_t, tm, em)


@pytest.mark.parametrize("batch_first", [False, True])
def test_full_transformer_with_subsequent_mask_matches_torch(batch_first):
    torch.manual_seed(2)
    kw = dict(d_model=D, nhead=H, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=FF, dropout=0.0,
              batch_first=batch_first)
    tm, em = torch.nn.Transformer(**kw), ember.nn.Transformer(**kw)
    _copy(tm, em)
    mask_t = torch.nn.Transformer.generate_square_subsequent_mask(5)
    mask_e = ember.nn.Transformer.generate_square_subsequent_mask(5)
    np.testing.assert_array_equal(N(mask_e), N(mask_t))
    src = _x(2, 7, D) if batch_first else _x(7, 2, D)
    tgt = _x(2, 5, D, seed=3) if batch_first else _x(5, 2, D, seed=3)
    _check(em(ember.from_numpy(src), ember.from_numpy(tgt), tgt_mask=mask_e),
           tm(torch.from_numpy(src), torch.from_numpy(tgt), tgt_mask=mask_t), tm, em)


def test_unbatched_input_matches_torch():
    torch.manual_seed(3)
    tm = torch.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0)
    em = ember.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0)
    _copy(tm, em)
    x = _x(6, D)
    _check(em(ember.from_numpy(x)), tm(torch.from_numpy(x)), tm, em)


def test_default_init_has_torch_statistics_and_xavier_for_transformer():
    em = ember.nn.Transformer(d_model=32, nhead=4, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=64)
    w = N(em.encoder.layers[0].linear1.weight)
    bound = np.sqrt(6.0 / (32 + 64))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    enc = ember.nn.TransformerEncoder(ember.nn.TransformerEncoderLayer(8, 2, 16), 3)
    ws = [N(layer.linear1.weight) for layer in enc.layers]
    assert all(np.array_equal(ws[0], w) for w in ws), "layers are deep copies of the given layer (like torch)"
    enc.layers[0].linear1.weight.detach().add_(1.0)
    assert not np.array_equal(N(enc.layers[0].linear1.weight), N(enc.layers[1].linear1.weight))


def test_dropout_is_applied_in_train_mode_only():
    em = ember.nn.TransformerEncoderLayer(D, H, FF, dropout=0.5, batch_first=True)
    x = ember.from_numpy(_x(2, 5, D))
    em.eval()
    a, b = N(em(x)), N(em(x))
    np.testing.assert_array_equal(a, b)
    em.train()
    assert not np.allclose(N(em(x)), a)


def test_errors_are_clear():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        ember.nn.TransformerEncoderLayer(D, H, activation="tanh")
    tm = ember.nn.Transformer(d_model=D, nhead=H, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=FF)
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        tm(ember.zeros(5, 2, D), ember.zeros(4, 3, D))
    with pytest.raises(RuntimeError, match="feature number of src and tgt must be equal to d_model"):
        tm(ember.zeros(5, 2, D), ember.zeros(4, 2, D + 1))
