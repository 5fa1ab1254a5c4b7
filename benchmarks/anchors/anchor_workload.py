"""The anchor workload, shared by every framework's script: the model, the data files, the checksum.

Plain torch and numpy only, so it imports in each framework's own virtual environment. Per client:
500 training scans (1x32x32, 2 classes) + 125 test scans, made once by `make_data` from fedsim's
synthmed and saved as client<i>.npz; the reference CNN (conv16-pool-ReLU-conv32-pool-ReLU-linear
2048->2); one initial state saved as init.pt, loaded by every framework; SGD lr 0.01, batch 32,
1 local epoch, batches in data order (no shuffling, so all frameworks do identical arithmetic);
FedAvg of all clients every round, weighted by sample count.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

LR, BATCH, EPOCHS = 0.01, 32, 1


class Net(nn.Module):
    """conv3x3(16) -> MaxPool -> ReLU -> conv3x3(32) -> MaxPool -> ReLU -> Linear(2048 -> 2)."""

    def __init__(self, input_shape=(1, 32, 32), num_classes: int = 2) -> None:
        super().__init__()
        c, h, w = input_shape
        self.features = nn.Sequential(nn.Conv2d(c, 16, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.MaxPool2d(2), nn.ReLU())
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def make_model(input_shape, num_classes, init: str = ""):
    """fedsim's entry for this model (model.name 'anchor_workload:make_model', model.init = init.pt)."""
    net = Net(tuple(input_shape), num_classes)
    if init:
        net.load_state_dict(torch.load(init))
    return net


make_model.options = {"init": ""}  # fedsim: the model's options (model.init), declared as plain defaults


def initial_model(data_dir: str) -> Net:
    net = Net()
    net.load_state_dict(torch.load(os.path.join(data_dir, "init.pt")))
    return net


def client_files(data_dir: str, n: int) -> list[str]:
    return [os.path.join(data_dir, f"client{i}.npz") for i in range(n)]


def load_client(path: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Training tensors of one client, as fedsim reads them (uint8 / 255, N x 1 x 32 x 32)."""
    with np.load(path) as f:
        x = torch.from_numpy(f["train_images"].astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
        y = torch.from_numpy(f["train_labels"].astype(np.int64).reshape(-1))
    return x, y


def train_epoch(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    net.train()
    total = 0.0
    for _ in range(EPOCHS):
        for s in range(0, x.shape[0], BATCH):
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(net(x[s:s + BATCH]), y[s:s + BATCH])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(y[s:s + BATCH])
    return total / (EPOCHS * x.shape[0])


def average(states: list[dict], weights: list[float]) -> dict:
    total = float(sum(weights))
    return {k: sum(s[k].double() * (w / total) for s, w in zip(states, weights)).to(states[0][k].dtype)
            for k in states[0]}


def checksum(state: dict) -> float:
    """Sum of every weight of the final global model (float64): equal to 4 decimals = same work."""
    return float(sum(v.double().sum() for v in state.values()))


def make_data(data_dir: str, n: int) -> None:
    """client<i>.npz for i < n and init.pt (needs fedsim; run once in fedsim's environment)."""
    from fedsim.data import synthmed

    os.makedirs(data_dir, exist_ok=True)
    for i, path in enumerate(client_files(data_dir, n)):
        if os.path.exists(path):
            continue
        x, y = synthmed.generate(0, i, 625, num_classes=2, image_size=32)
        imgs = np.round(x.transpose(0, 2, 3, 1) * 255).clip(0, 255).astype(np.uint8)
        np.savez(path + ".tmp.npz", train_images=imgs[:500], train_labels=y[:500],
                 test_images=imgs[500:], test_labels=y[500:])
        os.replace(path + ".tmp.npz", path)
    init = os.path.join(data_dir, "init.pt")
    if not os.path.exists(init):
        torch.manual_seed(0)
        torch.save(Net().state_dict(), init)
