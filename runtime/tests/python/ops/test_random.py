"""Random ops: reproducibility, thread-count invariance, distribution moments (6-sigma bounds on
fixed large samples), ranges, multinomial/randperm properties, dropout, kwargs and errors.
Random streams differ from torch's by design, so these test properties, not values."""
import numpy as np
import pytest

import ember
from optest import devices

N = 200_000
FLOATS = ["float32", "float64", "float16", "bfloat16"]


def np_of(t):
    t = t.cpu()
    if t.dtype in (ember.bfloat16, ember.float16):
        t = t.to(ember.float32)
    return t.numpy()


@pytest.fixture(autouse=True)
def _restore_rng():
    state = ember.get_rng_state()
    yield
    ember.set_rng_state(state)


@pytest.mark.parametrize("fn", [lambda: ember.rand(1000), lambda: ember.randn(3, 333),
                                lambda: ember.randint(0, 100, (1000,)), lambda: ember.randperm(500),
                                lambda: ember.bernoulli(ember.full((1000,), 0.3)),
                                lambda: ember.multinomial(ember.ones(2, 10), 5),
                                lambda: ember.rand(1000, dtype=ember.float64)])
def test_manual_seed_reproduces_streams(fn):
    ember.manual_seed(1234)
    a, b = np_of(fn()), np_of(fn())
    ember.manual_seed(1234)
    a2, b2 = np_of(fn()), np_of(fn())
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    assert not np.array_equal(a, b), "consecutive draws must differ"
    ember.manual_seed(4321)
    assert not np.array_equal(np_of(fn()), a), "different seeds must differ"


def test_seed_functions_and_rng_state_roundtrip():
    ember.manual_seed(77)
    assert ember.initial_seed() == 77
    state = ember.get_rng_state()
    assert state.dtype == ember.uint8
    x = np_of(ember.randn(100))
    ember.set_rng_state(state)
    np.testing.assert_array_equal(np_of(ember.randn(100)), x)
    s = ember.seed()
    assert ember.initial_seed() == s
    with pytest.raises((TypeError, RuntimeError)):
        ember.set_rng_state(ember.zeros(3))


@pytest.mark.parametrize("op", ["rand", "randn", "randint", "bernoulli"])
def test_results_independent_of_thread_count(op):
    make = {"rand": lambda: ember.rand(N), "randn": lambda: ember.randn(N),
            "randint": lambda: ember.randint(-5, 5, (N,)), "bernoulli": lambda: ember.bernoulli(ember.full((N,), 0.5))}[op]
    old = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        ember.manual_seed(9)
        one = np_of(make())
        ember.set_num_threads(max(old, 2))
        ember.manual_seed(9)
        many = np_of(make())
    finally:
        ember.set_num_threads(old)
    np.testing.assert_array_equal(one, many)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("device", devices())
def test_rand_moments_and_range(dtype, device):
    x = np_of(ember.rand(N, dtype=getattr(ember, dtype), device=device)).astype(np.float64)
    assert x.min() >= 0.0 and x.max() <= 1.0
    sigma = np.sqrt(1 / 12 / N)
    assert abs(x.mean() - 0.5) < 6 * sigma + 2e-3
    assert abs(x.var() - 1 / 12) < 3e-3
    hist = np.histogram(x, bins=10, range=(0, 1))[0] / N
    assert np.all(np.abs(hist - 0.1) < 0.006), hist


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("device", devices())
def test_randn_moments(dtype, device):
    x = np_of(ember.randn(N, dtype=getattr(ember, dtype), device=device)).astype(np.float64)
    assert np.isfinite(x).all()
    assert abs(x.mean()) < 6 / np.sqrt(N) + 1e-3
    assert abs(x.std() - 1) < 0.01
    assert abs(((x - x.mean()) ** 3).mean()) < 0.05  # symmetric
    assert abs((x ** 4).mean() - 3) < 0.15  # Gaussian kurtosis (sigma ~0.022)
    assert abs((np.abs(x) < 1).mean() - 0.6827) < 0.008


def test_uniform_and_normal_inplace():
    x = ember.empty(N, dtype=ember.float64)
    assert x.uniform_(-2, 5) is not None
    v = x.numpy()
    assert v.min() >= -2 and v.max() <= 5 and abs(v.mean() - 1.5) < 0.03
    x.normal_(3.0, 0.5)
    v = x.numpy()
    assert abs(v.mean() - 3.0) < 0.01 and abs(v.std() - 0.5) < 0.005
    x.normal_(1.0, 0.0)
    assert (x.numpy() == 1.0).all()


def test_inplace_on_noncontiguous_view_fills_only_the_view():
    base = ember.zeros(6, 8)
    view = base.T
    view.uniform_(1.0, 2.0)
    assert ((base.numpy() >= 1.0) & (base.numpy() <= 2.0)).all()
    base2 = ember.zeros(4, 6)
    cols = ember.as_strided(base2, (4, 3), (6, 2))  # every other column
    cols.normal_(5.0, 1.0)
    b = base2.numpy()
    assert (b[:, 1::2] == 0).all() and (b[:, ::2] != 0).all()


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "uint8", "float32", "float64"])
def test_randint_range_and_coverage(dtype):
    x = np_of(ember.randint(-3, 4, (20000,), dtype=getattr(ember, dtype)) if dtype != "uint8"
              else ember.randint(2, 9, (20000,), dtype=ember.uint8))
    lo, hi = (-3, 4) if dtype != "uint8" else (2, 9)
    assert x.min() == lo and x.max() == hi - 1
    counts = np.bincount((x - lo).astype(np.int64), minlength=hi - lo)
    assert np.all(np.abs(counts / 20000 - 1 / 7) < 0.02), counts
    assert ember.randint(5, (3, 2)).dtype == ember.int64
    y = ember.randint(10, (1000,)).numpy()
    assert y.min() >= 0 and y.max() <= 9


def test_randint_huge_range_and_random_():
    x = ember.randint(-(2 ** 40), 2 ** 40, (10000,)).numpy()
    assert x.min() >= -(2 ** 40) and x.max() < 2 ** 40
    assert abs(x.mean()) < 6 * (2 ** 40) / np.sqrt(3 * 10000)
    t = ember.zeros(1000, dtype=ember.int64)
    t.random_(3, 6)
    assert set(np.unique(t.numpy())) == {3, 4, 5}
    t.random_(2)
    assert set(np.unique(t.numpy())) == {0, 1}


def test_like_functions():
    x = ember.zeros(3, 4, dtype=ember.float64)
    for fn in [ember.rand_like, ember.randn_like]:
        y = fn(x)
        assert y.shape == x.shape and y.dtype == ember.float64
        assert fn(x, dtype=ember.float16).dtype == ember.float16
    z = ember.randint_like(x, 10)
    assert z.dtype == ember.float64 and z.numpy().max() < 10
    z = ember.randint_like(x, 5, 7)
    assert set(np.unique(z.numpy())) <= {5.0, 6.0}
    assert ember.rand(2, 3, requires_grad=True).requires_grad
    assert ember.randn((2, 3)).shape == (2, 3)
    assert ember.rand([]).dim() == 0


@pytest.mark.parametrize("dtype", FLOATS)
def test_bernoulli_frequencies(dtype):
    p = np.linspace(0, 1, 11)
    probs = ember.from_numpy(np.repeat(p[None, :], 20000, axis=0)).to(getattr(ember, dtype))
    out = ember.bernoulli(probs)
    assert out.dtype == probs.dtype
    v = np_of(out)
    assert set(np.unique(v)) <= {0.0, 1.0}
    freq = v.mean(axis=0)
    assert freq[0] == 0 and freq[-1] == 1
    assert np.all(np.abs(freq - np_of(probs)[0]) < 6 * np.sqrt(0.25 / 20000))


def test_bernoulli_scalar_forms():
    x = ember.empty(N)
    x.bernoulli_(0.25)
    assert abs(x.numpy().mean() - 0.25) < 0.006
    y = ember.bernoulli(ember.zeros(N, dtype=ember.float64), p=0.75)
    assert y.dtype == ember.float64 and abs(y.numpy().mean() - 0.75) < 0.006
    z = ember.zeros(N, dtype=ember.int64)
    z.bernoulli_(ember.full((N,), 0.5))
    assert set(np.unique(z.numpy())) == {0, 1}
    w = ember.zeros(4, N // 4)
    w.bernoulli_(ember.from_numpy(np.array([[0.0], [1.0], [0.5], [0.0]], dtype=np.float32)))
    r = w.numpy().mean(axis=1)
    assert r[0] == 0 and r[1] == 1 and abs(r[2] - 0.5) < 0.02 and r[3] == 0


def test_multinomial_with_replacement_frequencies():
    p = np.array([0.1, 0.0, 0.4, 0.2, 0.3])
    n = 50000
    s = ember.multinomial(ember.from_numpy(p * 7.0), n, replacement=True).numpy()  # unnormalized weights
    assert s.dtype == np.int64 and s.shape == (n,)
    counts = np.bincount(s, minlength=5)
    assert counts[1] == 0
    expected = p * n
    mask = expected > 0
    chi2 = (((counts - expected) ** 2)[mask] / expected[mask]).sum()
    assert chi2 < 30, (counts, chi2)  # 3 dof: P(chi2 > 30) ~ 1e-6


def test_multinomial_without_replacement():
    probs = ember.from_numpy(np.array([[1.0, 2.0, 0.0, 3.0, 4.0], [0.0, 0.0, 1.0, 1.0, 1.0]]))
    for _ in range(20):
        s = ember.multinomial(probs, 3).numpy()
        assert s.shape == (2, 3)
        for row, banned in zip(s, [{2}, {0, 1}]):
            assert len(set(row)) == 3 and not (set(row) & banned)
    full = ember.multinomial(ember.ones(7), 7).numpy()
    assert sorted(full) == list(range(7))
    # First pick follows the probabilities.
    first = np.array([ember.multinomial(ember.from_numpy(np.array([0.7, 0.2, 0.1])), 2).numpy()[0]
                      for _ in range(3000)])
    freq = np.bincount(first, minlength=3) / 3000
    assert np.all(np.abs(freq - [0.7, 0.2, 0.1]) < 0.05), freq
    assert ember.ones(3, 4).multinomial(2).shape == (3, 2)


def test_randperm():
    for n in [0, 1, 2, 10, 1000]:
        p = ember.randperm(n).numpy()
        assert p.dtype == np.int64 and sorted(p.tolist()) == list(range(n))
    assert not np.array_equal(ember.randperm(100).numpy(), np.arange(100))
    assert ember.randperm(5, dtype=ember.int32).dtype == ember.int32
    # Each position is uniform over values: first element's mean over many perms is (n-1)/2.
    firsts = np.array([ember.randperm(10).numpy()[0] for _ in range(2000)])
    assert abs(firsts.mean() - 4.5) < 6 * np.sqrt(8.25 / 2000)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout(dtype):
    x = ember.from_numpy(np.random.default_rng(0).uniform(1, 2, size=(400, 500))).to(getattr(ember, dtype))
    y = ember.dropout(x, 0.3, True)
    xv, yv = np_of(x), np_of(y)
    kept = yv != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(yv[kept], xv[kept] / 0.7, rtol=1e-6)
    assert ember.dropout(x, 0.3, False) is x or np.array_equal(np_of(ember.dropout(x, 0.3, False)), xv)
    np.testing.assert_array_equal(np_of(ember.dropout(x, 0.0, True)), xv)
    assert (np_of(ember.dropout(x, 1.0, True)) == 0).all()


def test_dropout_gradient_uses_the_mask():
    x = ember.ones(100, 100, dtype=ember.float64, requires_grad=True)
    y = ember.dropout(x, 0.5, True)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())  # d(sum)/dx = mask / (1 - p)
    x2 = ember.ones(10, requires_grad=True)
    ember.dropout(x2, 1.0, True).sum().backward()
    assert (x2.grad.numpy() == 0).all()


def test_errors():
    with pytest.raises(RuntimeError, match=r"\[uniform_\].*from=2.*to=1"):
        ember.empty(3).uniform_(2, 1)
    with pytest.raises(RuntimeError, match=r"\[normal_\].*std.*-1"):
        ember.empty(3).normal_(0, -1)
    with pytest.raises(RuntimeError, match=r"\[randint\].*low=5.*high=5"):
        ember.randint(5, 5, (3,))
    with pytest.raises(RuntimeError, match=r"\[bernoulli\].*1\.5"):
        ember.bernoulli(ember.full((3,), 1.5))
    with pytest.raises(RuntimeError, match=r"\[bernoulli_\].*-0\.1"):
        ember.empty(3).bernoulli_(-0.1)
    with pytest.raises(RuntimeError, match=r"\[multinomial\].*< 0"):
        ember.multinomial(ember.from_numpy(np.array([0.5, -0.1])), 1)
    with pytest.raises(RuntimeError, match=r"\[multinomial\].*sum"):
        ember.multinomial(ember.zeros(3), 1)
    with pytest.raises(RuntimeError, match=r"\[multinomial\].*num_samples=4 > n_categories=3"):
        ember.multinomial(ember.ones(3), 4)
    with pytest.raises(RuntimeError, match=r"\[multinomial\].*not enough"):
        ember.multinomial(ember.from_numpy(np.array([1.0, 0.0, 0.0])), 2)
    with pytest.raises(RuntimeError, match=r"\[multinomial\].*1 or 2 dim"):
        ember.multinomial(ember.ones(2, 2, 2), 1)
    with pytest.raises(RuntimeError, match=r"\[randperm\].*-1"):
        ember.randperm(-1)
    with pytest.raises(TypeError, match=r"\[rand\].*int64"):
        ember.rand(3, dtype=ember.int64)
    with pytest.raises(ValueError, match=r"\[dropout\].*1\.5"):
        ember.dropout(ember.ones(3), 1.5, True)


def test_generator_objects_are_independent_streams():
    g = ember.Generator().manual_seed(5)
    assert g.initial_seed() == 5 and str(g.device) == "cpu"
    a = ember.rand(100, generator=g).numpy()
    ember.manual_seed(123)
    default_draw = ember.rand(100).numpy()
    g2 = ember.Generator()
    g2.manual_seed(5)
    np.testing.assert_array_equal(ember.rand(100, generator=g2).numpy(), a)
    ember.manual_seed(123)
    np.testing.assert_array_equal(ember.rand(100).numpy(), default_draw)  # explicit generators leave it alone
    state = g.get_state()
    b = ember.randn(50, generator=g).numpy()
    g.set_state(state)
    np.testing.assert_array_equal(ember.randn(50, generator=g).numpy(), b)
    for fn in [lambda gen: ember.randint(0, 9, (20,), generator=gen), lambda gen: ember.randperm(20, generator=gen),
               lambda gen: ember.multinomial(ember.ones(5), 3, generator=gen),
               lambda gen: ember.bernoulli(ember.full((20,), 0.5), generator=gen),
               lambda gen: ember.empty(20).uniform_(generator=gen), lambda gen: ember.empty(20).normal_(generator=gen)]:
        np.testing.assert_array_equal(fn(ember.Generator().manual_seed(1)).numpy(),
                                      fn(ember.Generator().manual_seed(1)).numpy())


def test_normal_function_forms():
    x = ember.normal(2.0, 3.0, (N,)).numpy()
    assert abs(x.mean() - 2.0) < 0.05 and abs(x.std() - 3.0) < 0.03
    mean = ember.from_numpy(np.array([0.0, 10.0, -10.0]))
    y = ember.normal(mean.expand(20000, 3), 0.5).numpy()
    assert y.shape == (20000, 3) and np.all(np.abs(y.mean(axis=0) - [0, 10, -10]) < 0.025)
    z = ember.normal(0.0, ember.from_numpy(np.array([1.0, 4.0])).expand(20000, 2)).numpy()
    assert np.all(np.abs(z.std(axis=0) - [1, 4]) < 0.15)


def test_default_generator_and_inplace_semantics():
    g = ember.manual_seed(3)
    assert g.initial_seed() == 3 and ember.default_generator.initial_seed() == 3
    w = ember.empty(4, 5, requires_grad=True)
    with ember.autograd.no_grad():  # how nn.init fills parameters
        w.uniform_(-1, 1)
        w.normal_()
    assert w.requires_grad and w.is_leaf
    with pytest.raises(RuntimeError, match=r"leaf"):
        w.uniform_()
    x = ember.ones(3, requires_grad=True)
    y = x * 2
    z = y * y  # saves y
    v = y._version
    with ember.autograd.no_grad():
        y.normal_()
    assert y._version > v  # the in-place fill is visible to autograd's version check
    with pytest.raises(RuntimeError):
        z.sum().backward()
