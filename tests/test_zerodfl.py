"""ZeroDFL and the prompt-learning baselines: wire format, the row sampler, and real runs."""
from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
import torch

from fedsim.errors import ConfigError
from fedsim.payload import Kind, Payload
from fedsim.policies.zerodfl import draw_rows, rebuild_context
from fedsim.runtime.driver import run_experiment
from fedsim.runtime.host import NodeFailure
from fedsim.wire.codec import decode, encode


def test_context_round_trips_bit_exact():
    ctx = torch.randn(4, 512, generator=torch.Generator().manual_seed(0)) * 0.02
    ctx[0, 0], ctx[1, 1] = float("nan"), -0.0  # odd values survive too
    frames = encode(Payload(Kind.PROMPT, {"ctx": ctx}), run_id="r", round=3, src="a", dst="b", tag="ctx",
                    message_id="m")
    msg = decode(frames)
    got = torch.as_tensor(msg.payload.tensors["ctx"])
    assert msg.payload.kind == Kind.PROMPT and got.dtype == torch.float32 and got.shape == (4, 512)
    assert got.view(torch.int32).equal(ctx.view(torch.int32))  # bit for bit, NaN and -0.0 included


def test_sampler_takes_unused_sources_first():
    for seed in range(200):
        rng = np.random.default_rng(seed)
        picks = draw_rows(4, 4, rng)              # 4 sources, 4 rows: each source exactly once
        assert sorted(s for s, _ in picks) == [0, 1, 2, 3]
        first = [s for s, _ in draw_rows(3, 8, rng)][:3]     # 3 sources, 8 rows: all used before any repeat
        assert sorted(first) == [0, 1, 2]
    # past that, weights 1/count favour the less used: a source taken once beats one taken twice
    rng = np.random.default_rng(0)
    fourth = Counter(Counter(s for s, _ in draw_rows(3, 5, rng)).most_common(1)[0][1] for _ in range(2000))
    # 5 rows of 3 sources: the 5th row avoids the doubly used source w.p. 0.8 (uniform choice: 2/3)
    assert fourth[2] > 0.75 * 2000


def test_sampler_can_pick_every_row_uniformly():
    rng = np.random.default_rng(0)
    rows = Counter(r for _ in range(3000) for _, r in draw_rows(2, 4, rng))
    assert set(rows) == {0, 1, 2, 3}              # the last row too: no off-by-one
    assert min(rows.values()) > 0.2 * sum(rows.values())   # about a quarter each


def test_rebuilt_context_is_made_of_received_rows():
    srcs = [torch.full((4, 8), float(i)) + torch.arange(4.0).view(4, 1) / 10 for i in range(3)]
    new = rebuild_context(srcs, np.random.default_rng(1))
    assert new.shape == (4, 8)
    every_row = {tuple(s[r].tolist()) for s in srcs for r in range(4)}
    assert all(tuple(row.tolist()) in every_row for row in new)
    with pytest.raises(ValueError):
        rebuild_context([torch.zeros(4, 8), torch.zeros(2, 8)], np.random.default_rng(0))


def _prompt_config(small_config, policy, n=4, topology="complete", rounds=2, run="t", **policy_opts):
    return small_config(
        name=run, topology={"generator": topology, "n": n}, rounds=rounds,
        data={"dataset": "synthmed", "samples_per_node": 17 * 24, "num_classes": 17, "test_fraction": 0.5},
        model={"name": "tiny_clip"}, policy={"name": policy, **policy_opts},
        train={"epochs": 1, "batch_size": 32, "lr": 0.5, "momentum": 0.9, "weight_decay": 1e-5})


def _comm(res):
    with open(res.run_dir / "comm.csv") as f:
        return list(csv.DictReader(f))


def test_zerodfl_sends_s_contexts_per_client_and_keeps_the_backbone_frozen(small_config):
    from fedsim.models import build_model
    backbone = build_model({"name": "tiny_clip"}, (1, 32, 32), 17)   # the very instance the run shares
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    res = run_experiment(_prompt_config(small_config, "zerodfl", peers=2, rounds=3))
    s = res.summary
    comm = _comm(res)
    assert len(comm) == 4 * 2 * 3 and {r["kind"] for r in comm} == {"PROMPT"}   # N * S per round
    assert all(int(r["payload_bytes"]) == 4 * 64 * 4 for r in comm)             # M x width fp32
    assert all(s["final"][n]["peers_heard"] == 2.0 for n in s["final"])
    for metric in ("base_acc", "new_acc", "hm", "zs_base_acc", "zs_new_acc"):
        assert 0.0 <= s["mean_final"][metric] <= 1.0
    assert "fed_acc" not in s["mean_final"]                                      # federation_eval off
    after = backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_zerodfl_uses_every_neighbour_when_s_exceeds_the_degree(small_config):
    res = run_experiment(_prompt_config(small_config, "zerodfl", topology="ring", peers=5, rounds=1))
    assert all(v["peers_heard"] == 2.0 for v in res.summary["final"].values())
    assert len(_comm(res)) == 4 * 2


def test_same_seed_same_metrics(small_config):
    a = run_experiment(_prompt_config(small_config, "zerodfl", peers="all", run="a"))
    b = run_experiment(_prompt_config(small_config, "zerodfl", peers="all", run="b"))
    assert (a.run_dir / "metrics.csv").read_text() == (b.run_dir / "metrics.csv").read_text()


def test_baselines_exchange_what_they_should(small_config):
    fedavg = run_experiment(_prompt_config(small_config, "coop_fedavg", topology="star", rounds=1))
    assert [r["kind"] for r in _comm(fedavg)] == ["PROMPT"] * 6                  # 3 up, 3 down
    tpg = run_experiment(_prompt_config(small_config, "fedtpg", topology="star", rounds=1))
    rows = _comm(tpg)
    assert len(rows) == 6 and {r["kind"] for r in rows} == {"MODEL"}
    from fedsim.models.prompt_generator import PromptGenerator
    params = sum(p.numel() for p in PromptGenerator(64, 64, 4, hidden=64, heads=1).parameters())
    assert all(int(r["payload_bytes"]) == 2 * params for r in rows)              # fp16 on the wire
    local = run_experiment(_prompt_config(small_config, "coop_local", topology="ring", rounds=1))
    assert local.summary["bytes"]["messages"] == 0


def test_bad_options_are_config_errors(small_config):
    with pytest.raises(ConfigError, match="policy.peers"):
        run_experiment(_prompt_config(small_config, "zerodfl", peers=0))
    with pytest.raises(NodeFailure, match="model.name"):  # raised by the policy's setup on the node
        run_experiment(small_config(policy={"name": "zerodfl"},
                                    data={"dataset": "synthmed", "samples_per_node": 408, "num_classes": 17}))
    with pytest.raises(NodeFailure, match="classes_per_client"):
        run_experiment(_prompt_config(small_config, "coop_local", classes_per_client=5))
    with pytest.raises(ConfigError, match="topology"):
        run_experiment(_prompt_config(small_config, "fedtpg", topology="ring"))
