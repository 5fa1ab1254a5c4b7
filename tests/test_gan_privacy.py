"""Local GANs and the privacy tools: k-same, latent walk, near-duplicate filter, membership attack."""
from __future__ import annotations

import pytest
import torch

from fedsim.errors import ConfigError
from fedsim.models.gan import build_gan, generate, train_gan
from fedsim.privacy.ksame import k_same
from fedsim.privacy.latent_walk import identity_kl, linear_walk, plan_walk, spacing_loss
from fedsim.privacy.membership import membership_attack
from fedsim.privacy.near_duplicate import filter_near_duplicates, nearest_distances, typical_gap


@pytest.mark.parametrize("shape", [(1, 32, 32), (3, 32, 32), (30,)])
def test_gan_shapes_and_deterministic_regeneration(shape):
    torch.manual_seed(0)
    G, D = build_gan(shape, 3, latent=8, width=4)
    z, y = torch.randn(5, 8), torch.tensor([0, 1, 2, 1, 0])
    x = generate(G, z, y)
    assert x.shape == (5, *shape)
    assert D(x, y).shape == (5,)
    G2, _ = build_gan(shape, 3, latent=8, width=4)
    G2.load_state_dict(G.state_dict())
    assert torch.equal(generate(G2, z, y), x)


def test_gan_rejects_other_image_sizes():
    with pytest.raises(ConfigError, match="32x32"):
        build_gan((1, 28, 28), 2, 8, 4)


def test_k_same_is_the_mean_of_k_same_class_latents():
    gen = torch.Generator().manual_seed(0)
    z, y = torch.randn(30, 6, generator=gen), torch.arange(30) % 3
    out, members = k_same(z, y, 4, gen)
    assert members.shape == (30, 4)
    for i in range(30):
        assert members[i, 0] == i and len(set(members[i].tolist())) == 4
        assert (y[members[i]] == y[i]).all()
        torch.testing.assert_close(out[i], z[members[i]].mean(0))
    assert torch.equal(k_same(z, y, 1, gen)[0], z)
    with pytest.raises(ConfigError, match="policy.k"):
        k_same(z, y, 11, gen)  # only 10 latents per class


def test_near_duplicate_filter_removes_a_planted_copy():
    gen = torch.Generator().manual_seed(1)
    real = torch.rand(40, 1, 8, 8, generator=gen)
    synthetic = torch.rand(10, 1, 8, 8, generator=gen)
    synthetic[3] = real[17] + 1e-3  # a generator that memorised patient 17
    keep = filter_near_duplicates(synthetic, real, 0.5 * typical_gap(real))
    assert not keep[3] and keep.sum() == 9
    assert nearest_distances(synthetic[3:4], real)[0] < 0.01


def test_membership_attack_sees_copies_and_not_independent_samples():
    gen = torch.Generator().manual_seed(2)
    members, others = torch.rand(100, 16, generator=gen), torch.rand(100, 16, generator=gen)
    leaked = membership_attack(members + 0.01 * torch.randn(100, 16, generator=gen), members, others)
    private = membership_attack(torch.rand(200, 16, generator=gen), members, others)
    assert leaked["mia_acc"] > 0.95 and leaked["member_dist"] < leaked["nonmember_dist"]
    assert abs(private["mia_acc"] - 0.5) < 0.12


def test_plan_walk_moves_points_away_from_identities_and_keeps_spacing():
    torch.manual_seed(0)
    G, D = build_gan((20,), 2, latent=4, width=8)
    z_a, z_b = torch.randn(3, 4), torch.randn(3, 4)
    # identities: the records the straight walk passes through
    line = linear_walk(z_a, z_b, 5)
    ids = generate(G, line.reshape(-1, 4)[::2], torch.zeros(8, dtype=torch.long))
    tau = typical_gap(ids) / 5
    before = identity_kl(generate(G, line.reshape(-1, 4), torch.zeros(15, dtype=torch.long)), ids, tau).mean()
    z, stats = plan_walk(G, z_a, z_b, 0, ids, steps=5, iters=40, tau=tau, D=D)
    assert z.shape == (15, 4)
    after = identity_kl(generate(G, z, torch.zeros(15, dtype=torch.long)), ids, tau).mean()
    assert after < before and stats["walk_identity_kl"] < stats["walk_identity_kl_start"]
    path = torch.cat([z_a[:, None], z.view(3, 5, 4), z_b[:, None]], 1)
    assert spacing_loss(path) < 0.1
    assert spacing_loss(torch.cat([z_a[:, None], line, z_b[:, None]], 1)) < 1e-10


@pytest.mark.parametrize("class_weight", [0.0, 1.0])
def test_conditional_generator_learns_which_class_is_which(class_weight):
    # two well-separated classes of 6-d records (means -1 and +1): a working conditional GAN, with or
    # without the auxiliary class head, must draw class 1 above class 0
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(240) % 2
    x = (2.0 * y - 1.0)[:, None] + 0.3 * torch.randn(240, 6, generator=gen)
    G, D = build_gan((6,), 2, latent=4, width=16)
    train_gan(G, D, x, y, epochs=30, batch_size=40, lr=2e-3, seed=0, device=torch.device("cpu"),
              class_weight=class_weight)
    z = torch.randn(200, 4, generator=gen)
    low, high = generate(G, z, torch.zeros(200, dtype=torch.long)), generate(G, z, torch.ones(200, dtype=torch.long))
    assert low.mean() < -0.3 and high.mean() > 0.3


@pytest.mark.parametrize("class_weight", [0.0, 1.0])
def test_dp_gan_trains_with_and_without_the_class_head(class_weight):
    gen = torch.Generator().manual_seed(3)
    x, y = torch.rand(60, 1, 32, 32, generator=gen), torch.arange(60) % 2
    G, D = build_gan((1, 32, 32), 2, latent=4, width=4)
    out = train_gan(G, D, x, y, epochs=1, batch_size=30, lr=1e-3, seed=0, device=torch.device("cpu"),
                    dp={"epsilon": 2.0, "delta": 1e-4, "max_grad_norm": 1.0}, class_weight=class_weight)
    assert 0 < out["gan_dp_epsilon"] <= 2.0 * 1.01


def test_dp_gan_training_reports_epsilon_within_target():
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(120, 10, generator=gen), torch.arange(120) % 2
    G, D = build_gan((10,), 2, latent=4, width=8)
    out = train_gan(G, D, x, y, epochs=2, batch_size=30, lr=1e-3, seed=0, device=torch.device("cpu"),
                    dp={"epsilon": 2.0, "delta": 1e-4, "max_grad_norm": 1.0})
    assert 0.5 < out["gan_dp_epsilon"] <= 2.0 * 1.01
    assert all(not m._forward_hooks and not m._backward_hooks for m in D.modules())  # caller's D stays plain
    plain = train_gan(G, D, x, y, epochs=1, batch_size=30, lr=1e-3, seed=0, device=torch.device("cpu"))
    assert "gan_dp_epsilon" not in plain
