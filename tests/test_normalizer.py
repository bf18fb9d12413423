"""Running mean/std: exact batched statistics, clipping, persistence."""

import numpy as np
import torch

from robolearn.normalizer import RunningNorm


def test_statistics_match_numpy_over_uneven_batches():
    rng = np.random.default_rng(0)
    data = rng.normal(loc=[3.0, -2.0, 0.0], scale=[0.1, 5.0, 1e-3], size=(10_001, 3))
    norm = RunningNorm(3)
    start = 0
    for size in (1, 7, 1000, 3, 5000, 3990):
        norm.update(torch.from_numpy(data[start:start + size]).float())
        start += size
    seen = data[:start].astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(norm.mean.numpy(), seen.mean(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(norm.var.numpy(), seen.var(0), rtol=1e-7)
    assert norm.count.item() == start


def test_normalized_output_has_zero_mean_unit_std_and_is_clipped():
    torch.manual_seed(0)
    x = torch.randn(4096, 2) * torch.tensor([10.0, 0.01]) + torch.tensor([5.0, -1.0])
    norm = RunningNorm(2, clip=3.0)
    norm.update(x)
    y = norm(x)
    assert torch.allclose(y.mean(0), torch.zeros(2), atol=0.02)
    assert torch.allclose(y.std(0), torch.ones(2), atol=0.02)
    assert y.abs().max() <= 3.0
    far = norm(torch.tensor([[1e6, -1e6]]))
    torch.testing.assert_close(far, torch.tensor([[3.0, -3.0]]))


def test_accepts_time_by_env_batches_and_empty_batches():
    norm = RunningNorm(4)
    x = torch.randn(8, 16, 4)
    norm.update(x)
    norm.update(torch.zeros(0, 4))
    assert norm.count.item() == 128
    np.testing.assert_allclose(norm.mean.numpy(), x.reshape(-1, 4).double().mean(0).numpy(), atol=1e-6)


def test_state_dict_roundtrip_restores_the_transform():
    a = RunningNorm(3)
    a.update(torch.randn(100, 3) * 4 + 2)
    b = RunningNorm(3)
    b.load_state_dict(a.state_dict())
    x = torch.randn(10, 3)
    torch.testing.assert_close(a(x), b(x))
    assert set(a.state_dict()) == {"mean", "var", "count"}
