"""Small class-conditional GANs a hospital trains on its own data before federation (FedER step 1).

Images (C x 32 x 32, C in {1, 3}): a DCGAN. The generator maps (z, one-hot label) through a linear
layer to 4x4 feature maps and three stride-2 transposed convolutions to 32x32, ending in a sigmoid
(the data lives in [0, 1]). The discriminator is three stride-2 convolutions with a *projection*
head (logit = w·h + embed(y)·h), which conditions on the class without BatchNorm — so Opacus can
clip its per-sample gradients for DP training — and an auxiliary class head (AC-GAN) that makes the
generator draw what distinguishes the classes. Tabular data (a feature vector) gets two small MLPs.

The generator has no BatchNorm and no dropout: `G(z, y)` is a pure function of weights, latents and
labels, so a receiver holding the weights and the labelled latents regenerates the sender's
samples bit for bit on the same platform.
"""
from __future__ import annotations

import copy
import math
import warnings
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from fedsim.errors import ConfigError


class ImageGenerator(nn.Module):
    def __init__(self, shape: Sequence[int], num_classes: int, latent: int = 32, width: int = 32) -> None:
        super().__init__()
        c = shape[0]
        self.num_classes, self.latent = num_classes, latent
        self.fc = nn.Linear(latent + num_classes, 4 * width * 4 * 4)
        self.net = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),   # 8x8
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.LeakyReLU(0.2),       # 16x16
            nn.ConvTranspose2d(width, c, 4, 2, 1), nn.Sigmoid())                    # 32x32
        self.width = width

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], 1))
        return self.net(h.view(-1, 4 * self.width, 4, 4))


class ImageDiscriminator(nn.Module):
    def __init__(self, shape: Sequence[int], num_classes: int, width: int = 32) -> None:
        super().__init__()
        c = shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(c, width, 4, 2, 1), nn.LeakyReLU(0.2),                  # 16x16
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),          # 8x8
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.LeakyReLU(0.2),      # 4x4
            nn.Flatten())
        feat = 4 * width * 16
        self.out = nn.Linear(feat, 1)
        self.embed = nn.Embedding(num_classes, feat)
        self.classes = nn.Linear(feat, num_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor, with_class: bool = False):
        return _heads(self, self.features(x), y, with_class)


class TabularGenerator(nn.Module):
    def __init__(self, shape: Sequence[int], num_classes: int, latent: int = 16, width: int = 64) -> None:
        super().__init__()
        self.num_classes, self.latent = num_classes, latent
        d = math.prod(shape)
        self.shape = tuple(shape)
        self.net = nn.Sequential(nn.Linear(latent + num_classes, width), nn.LeakyReLU(0.2),
                                 nn.Linear(width, width), nn.LeakyReLU(0.2), nn.Linear(width, d))

    def forward(self, z, y):
        return self.net(torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], 1)).view(-1, *self.shape)


class TabularDiscriminator(nn.Module):
    def __init__(self, shape: Sequence[int], num_classes: int, width: int = 64) -> None:
        super().__init__()
        d = math.prod(shape)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(d, width), nn.LeakyReLU(0.2),
                                      nn.Linear(width, width), nn.LeakyReLU(0.2))
        self.out = nn.Linear(width, 1)
        self.embed = nn.Embedding(num_classes, width)
        self.classes = nn.Linear(width, num_classes)

    def forward(self, x, y, with_class: bool = False):
        return _heads(self, self.features(x), y, with_class)


def _heads(D: nn.Module, h: torch.Tensor, y: torch.Tensor, with_class: bool):
    """Real/fake logit with a projection on the label; with `with_class` also the class logits."""
    logit = D.out(h).squeeze(1) + (D.embed(y) * h).sum(1) / math.sqrt(h.shape[1])
    return (logit, D.classes(h)) if with_class else logit


def build_gan(shape: Sequence[int], num_classes: int, latent: int, width: int) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for data of `shape`: 1/3 x 32 x 32 images or a feature vector."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 3:
        if shape[0] not in (1, 3) or shape[1:] != (32, 32):
            raise ConfigError("data", f"images of shape {shape}", "1x32x32 or 3x32x32 images, or tabular vectors",
                              "the FedER DCGAN is sized for 32x32 scans (set data.image_size: 32)")
        return ImageGenerator(shape, num_classes, latent, width), ImageDiscriminator(shape, num_classes, width)
    if len(shape) == 1:
        return TabularGenerator(shape, num_classes, latent, 2 * width), TabularDiscriminator(shape, num_classes, 2 * width)
    raise ConfigError("data", f"inputs of shape {shape}", "1x32x32 or 3x32x32 images, or tabular vectors")


def train_gan(G: nn.Module, D: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int,
              lr: float, seed: int, device: torch.device, dp: dict | None = None,
              class_weight: float = 1.0) -> dict[str, float]:
    """Non-saturating conditional GAN training (Adam, β1 = 0.5). Returns final losses (and ε with DP).

    With `dp = {epsilon, delta, max_grad_norm}` the discriminator — the only network that sees real
    patients — is trained with Opacus DP-SGD (Poisson batches, per-sample clipping, noise calibrated
    to spend `epsilon` over all epochs); the generator is post-processing and costs no privacy.
    `class_weight` > 0 adds an auxiliary classifier (AC-GAN): D's class head learns the real scans'
    labels and G is penalised when that head does not recognise a fake as its label. The projection
    alone let small generators draw plausible scans without the lesion that defines the class.
    """
    from torch.utils.data import DataLoader, TensorDataset

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # Opacus' Poisson sampler draws from the global generator
    G.to(device).train()
    D.to(device).train()
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    x = x.contiguous()
    loader = DataLoader(TensorDataset(x, y), batch_size=min(batch_size, len(y)), shuffle=True, generator=gen)
    engine, delta, plain_D = None, None, D
    D.classes.requires_grad_(class_weight > 0)  # an unused head would have no per-sample gradients under DP
    if dp is not None:  # Opacus hooks a copy; the caller's D gets the trained weights, hook-free
        D = copy.deepcopy(D)
        opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
        from opacus import PrivacyEngine
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = PrivacyEngine(accountant="rdp", secure_mode=False)
            D, opt_d, loader = engine.make_private_with_epsilon(
                module=D, optimizer=opt_d, data_loader=loader, target_epsilon=dp["epsilon"],
                target_delta=dp["delta"], epochs=epochs, max_grad_norm=dp["max_grad_norm"],
                noise_generator=torch.Generator().manual_seed(seed + 1))
        delta = dp["delta"]
    classes = torch.unique(y)
    d_loss = g_loss = torch.zeros(())
    for _ in range(epochs):
        for xb, yb in loader:
            if len(yb) == 0:  # Poisson sampling can draw an empty batch
                continue
            xb, yb = xb.to(device), yb.to(device)
            n = len(yb)
            z = torch.randn(n, G.latent, generator=gen).to(device)
            # fakes take the real batch's labels: with uniform fake labels on skewed data the projection
            # head learns "rare class => fake" from label frequencies alone, and rare classes never improve.
            # Under DP that would feed private labels to G outside the mechanism: there the labels are
            # uniform over the classes present (the label set counts as public).
            yf = yb if engine is None else classes[torch.randint(len(classes), (n,), generator=gen)].to(device)
            fake = G(z, yf)
            # discriminator: real -> 1, fake -> 0 (one forward, so Opacus sees one batch)
            opt_d.zero_grad(set_to_none=True)
            logits, cls = D(torch.cat([xb, fake.detach()]), torch.cat([yb, yf]), with_class=True)
            target = torch.cat([torch.ones(n), torch.zeros(n)]).to(device)
            d_loss = F.binary_cross_entropy_with_logits(logits, target)
            if class_weight:  # the class head learns from real scans only
                d_loss = d_loss + class_weight * F.cross_entropy(cls[:n], yb)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                d_loss.backward()
            opt_d.step()
            # generator: make D call the fakes real; D's hooks off, its weights are not updated here
            opt_g.zero_grad(set_to_none=True)
            if engine is not None:
                D.disable_hooks()
            logits, cls = D(fake, yf, with_class=True)
            g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones(n, device=device))
            if class_weight:  # ... and G must draw fakes that head recognises as their label
                g_loss = g_loss + class_weight * F.cross_entropy(cls, yf)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Opacus' backward hooks fire with hooks disabled: harmless
                g_loss.backward()
            opt_g.step()
            if engine is not None:
                D.enable_hooks()
                opt_d.zero_grad(set_to_none=True)
    out = {"gan_d_loss": float(d_loss.detach()), "gan_g_loss": float(g_loss.detach())}
    if engine is not None:
        out["gan_dp_epsilon"] = float(engine.get_epsilon(delta))
        plain_D.load_state_dict(D._module.state_dict())
    G.eval()
    return out


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """G(z, y) in eval mode, in batches, on G's device; returns CPU tensors."""
    device = next(G.parameters()).device
    G.eval()
    return torch.cat([G(z[i:i + batch_size].to(device), y[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(y), batch_size)]) if len(y) else torch.empty(0)
