"""`robot_rl.train.flops.update_flops` against FLOPs counted by hand from layer shapes, and a `--quick` run of
bench/roofline.py writing the documented JSON."""

from __future__ import annotations

import importlib
import itertools
import json
from pathlib import Path

import torch

from robot_rl.algos.sac import SAC, SACConfig
from robot_rl.algos.td3 import TD3, TD3Config
from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.core.types import Batch
from robot_rl.train.flops import update_flops


def _spec(obs_dim: int, act_dim: int) -> PolicySpec:
    return PolicySpec(
        observation=ObservationSpec.flat(obs_dim),
        action=ActionSpec(low=(-1.0,) * act_dim, high=(1.0,) * act_dim),
        control_hz=50.0,
    )


def _batches(b: int, obs_dim: int, act_dim: int) -> itertools.cycle[Batch[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    pool = [
        Batch(
            obs=torch.randn(b, obs_dim, generator=g),
            action=torch.rand(b, act_dim, generator=g) * 2 - 1,
            reward=torch.randn(b, generator=g),
            next_obs=torch.randn(b, obs_dim, generator=g),
            terminated=torch.zeros(b),
            truncated=torch.zeros(b),
        )
        for _ in range(2)
    ]
    return itertools.cycle(pool)


def _macs(layers: list[tuple[int, int]]) -> int:
    """Multiply-adds per batch row of a stack of linear layers given as (in, out)."""
    return sum(i * o for i, o in layers)


def test_sac_update_flops_equal_the_hand_count() -> None:
    B, OBS, A, H, E = 4, 3, 2, 8, 2  # batch, observation, action, hidden width, critic ensemble size
    torch.manual_seed(0)
    algo = SAC(_spec(OBS, A), SACConfig(actor_hidden=(H, H), critic_hidden=(H, H), batch_size=B))
    f = update_flops(algo, _batches(B, OBS, A), calls=1, warmup=2)

    actor = [(OBS, H), (H, H), (H, 2 * A)]  # Gaussian head: mean and log std
    critic = [(OBS + A, H), (H, H), (H, 1)]  # one member; E of them run as one batched matmul per layer
    fwd_actor = _macs(actor)  # 3·8 + 8·8 + 8·4 = 120
    fwd_critics = E * _macs(critic)  # 2 · (5·8 + 8·8 + 8·1) = 224
    # A layer's backward is two matmuls of its forward's size: the weight gradient, and the input gradient, which
    # is skipped where the input needs none (the first layer's input: observations, replayed actions).
    macs_per_row = (
        fwd_actor  # a' ~ π(s'), no grad                                          120
        + fwd_critics  # target critics Q'(s', a'), no grad                       224
        + fwd_critics  # critic loss: Q(s, a) forward                             224
        + fwd_critics  # ... weight gradients of both members                     224
        + E * _macs(critic[1:])  # ... input gradients above the first layer      2 · (64 + 8) = 144
        + fwd_actor  # actor loss: ã ~ π(s)                                       120
        + fwd_critics  # ... Q(s, ã) with the critic frozen                       224
        + fwd_critics  # ... input gradients down to ã (all layers; no weights)   224
        + fwd_actor  # ... actor weight gradients                                 120
        + _macs(actor[1:])  # ... actor input gradients above the first layer     64 + 32 = 96
    )  # temperature loss: no matmul; target update: no matmul
    assert macs_per_row == 1720
    expected = 2 * B * macs_per_row  # 2 FLOPs per multiply-add, B rows: 13,760
    assert f.total == f.per_call == expected == 13_760
    assert f.flop_counter_total == expected  # torch.utils.flop_counter agrees
    assert f.calls == 1
    assert sum(s.flops for s in f.shapes) == f.total
    # The critics' first layer: [E, B, OBS+A] @ [E, OBS+A, H] three times (target, critic loss, actor loss).
    first = [s for s in f.shapes if s.op == "baddbmm" and (s.m, s.k, s.n, s.batch) == (B, OBS + A, H, E)]
    assert len(first) == 1 and first[0].count == 3
    assert {s.op for s in f.shapes} <= {"mm", "addmm", "bmm", "baddbmm"}
    assert sum(f.gemms().values()) == sum(s.count for s in f.shapes)


def test_sac_flops_scale_to_the_reference_size() -> None:
    """At batch 256 with 256×256 networks on Hopper's shapes the same arithmetic gives 0.564 GFLOP."""
    B, OBS, A, H, E = 256, 11, 3, 256, 2
    torch.manual_seed(0)
    algo = SAC(_spec(OBS, A), SACConfig())
    f = update_flops(algo, _batches(B, OBS, A), calls=1, warmup=1)
    actor, critic = [(OBS, H), (H, H), (H, 2 * A)], [(OBS + A, H), (H, H), (H, 1)]
    fa, fc = _macs(actor), E * _macs(critic)
    expected = 2 * B * (3 * fa + _macs(actor[1:]) + 5 * fc + E * _macs(critic[1:]))
    assert f.total == expected == 564_264_960


def test_a_delayed_actor_counts_over_its_cycle() -> None:
    B, OBS, A, H = 4, 3, 2, 8
    torch.manual_seed(0)
    algo = TD3(_spec(OBS, A), TD3Config(actor_hidden=(H, H), critic_hidden=(H, H), batch_size=B, policy_delay=2))
    f = update_flops(algo, _batches(B, OBS, A), calls=2)
    actor, critic = [(OBS, H), (H, H), (H, A)], [(OBS + A, H), (H, H), (H, 1)]
    fa, fc = _macs(actor), 2 * _macs(critic)
    critic_step = fa + fc + fc + fc + 2 * _macs(critic[1:])  # target actor + target critics, Q fwd, w-grad, x-grad
    actor_step = fa + fc + fc + fa + _macs(actor[1:])  # every 2nd call: π fwd, Q fwd, x-grad, π w-grad + x-grad
    assert f.total == 2 * B * (2 * critic_step + actor_step)
    assert f.per_call == f.total / 2


def test_quick_run_writes_the_documented_json(tmp_path: Path) -> None:
    bench = importlib.import_module("bench.roofline")
    doc = tmp_path / "performance.md"
    bench.main(["--quick", "--learners", "sac", "--out-dir", str(tmp_path), "--doc", str(doc)])
    report = json.loads((tmp_path / "roofline.json").read_text())
    for key in ("command", "quick", "settings", "machine", "learners", "peak_gemm", "gemms", "profile", "skipped"):
        assert key in report, key
    assert report["quick"] and report["command"].startswith(".venv/bin/python bench/roofline.py --quick")
    assert len(report["machine"]["load_avg_1m_before_after"]) == 2
    sac = report["learners"]["sac"]
    assert sac["flops"]["per_call"] == 564_264_960 and sac["flops"]["shapes"]
    assert set(sac["flops"]["shapes"][0]) >= {"op", "m", "k", "n", "batch", "count", "layout", "flops"}
    for t in ("1", "2"):
        assert sac["bound"][t]["updates_per_s"] > 0 and sac["measured"][t]["updates_per_s"] > 0
        assert sac["fraction_of_bound"][t] > 0 and report["peak_gemm"][t]["gflops"] > 0
    # Every GEMM shape of the update was timed.
    timed = {(g["m"], g["k"], g["n"], g["batch"], g["layout"]) for g in report["gemms"]}
    assert {(s["m"], s["k"], s["n"], s["batch"], s["layout"]) for s in sac["flops"]["shapes"]} <= timed
    if "sb3_sac" in report:  # the peer (Stable-Baselines3 is in the bench extra)
        assert report["sb3_sac"]["measured"]["1"]["updates_per_s"] > 0
        assert report["ratio_sac_over_sb3"]["1"] > 0 and report["sac_replay"]["measured"]["2"]["updates_per_s"] > 0
    shares = [c["share"] for c in report["profile"]["categories"].values()]
    assert abs(sum(shares) - 1) < 0.02 and report["profile"]["categories"]["GEMM"]["share"] > 0
    md = (tmp_path / "roofline.md").read_text()
    assert md.startswith("# Roofline") and report["command"] in md and "Smoke run" in md
    text = doc.read_text()
    assert "--quick" in text and f"{sac['gflop_per_update']:.4f} GFLOP" in text

    # --from-json renders the same documents from the JSON alone.
    (tmp_path / "again").mkdir()
    bench.main(
        ["--from-json", str(tmp_path / "roofline.json"), "--out-dir", str(tmp_path / "again"), "--doc", str(doc)]
    )
    assert (tmp_path / "again" / "roofline.md").read_text() == md and doc.read_text() == text
    assert not (tmp_path / "again" / "roofline.json").exists()
