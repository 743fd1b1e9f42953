import torch

from physrl.envs.rng import BatchRandom, hash32


def started(num_envs: int, seeds: list[int]) -> BatchRandom:
    rng = BatchRandom(num_envs)
    rng.start_episode(torch.arange(num_envs), torch.tensor(seeds))
    return rng


def test_hash32_matches_a_plain_python_reference():
    def reference(x: int) -> int:
        x ^= x >> 16
        x = (x * 0x7FEB352D) & 0xFFFFFFFF
        x ^= x >> 15
        x = (x * 0x846CA68B) & 0xFFFFFFFF
        return x ^ (x >> 16)

    values = [0, 1, 2, 12345, 2**31, 2**32 - 1]
    assert hash32(torch.tensor(values)).tolist() == [reference(v) for v in values]


def test_uniforms_are_uniform_and_in_range():
    u = started(64, list(range(64))).uniform(None, (1000,))
    assert 0.0 <= u.min() and u.max() < 1.0
    counts = torch.histc(u.flatten().float(), bins=16, min=0.0, max=1.0)
    expected = u.numel() / 16
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 40.0  # 15 degrees of freedom: p ≈ 5e-4
    assert abs(torch.corrcoef(torch.stack([u[:, :-1].flatten(), u[:, 1:].flatten()]))[0, 1]) < 0.01


def test_stream_depends_only_on_seed_episode_and_counter():
    alone = started(1, [7])
    batch = started(3, [5, 6, 7])
    assert torch.equal(alone.bits(None, (5,))[0], batch.bits(None, (5,))[2])
    batch.bits(torch.tensor([0]), (9,))  # other envs' draws do not shift env 2
    assert torch.equal(alone.bits(None, (5,))[0], batch.bits(torch.tensor([2]), (5,))[0])
    first_episode = alone.bits(None, (4,))
    alone.start_episode(torch.tensor([0]))
    assert not torch.equal(alone.bits(None, (4,)), first_episode)
    alone.start_episode(torch.tensor([0]), torch.tensor([7]))
    alone.bits(None, (5,)), alone.bits(None, (5,))
    assert torch.equal(alone.bits(None, (4,)), first_episode)


def test_domains_give_different_streams():
    train, evaluation = BatchRandom(1), BatchRandom(1, domain=1)
    for rng in (train, evaluation):
        rng.start_episode(torch.tensor([0]), torch.tensor([3]))
    assert not torch.equal(train.bits(None, (8,)), evaluation.bits(None, (8,)))
