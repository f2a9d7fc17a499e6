"""config_to_json / config_from_json round trips and validation of the frozen config dataclasses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from robot_rl.algos.sac import SACConfig
from robot_rl.algos.td3 import TD3Config
from robot_rl.core.config import config_from_json, config_to_json
from robot_rl.train.config import TrainConfig


def _round_trip(cfg: object) -> object:
    return config_from_json(type(cfg), json.loads(json.dumps(config_to_json(cfg))))


def test_sac_config_round_trip_restores_tuples_and_optionals() -> None:
    cfg = SACConfig.preset("crossq").replace(actor_hidden=(64, 32, 16), critic_hidden=(128,), target_entropy=-0.5)
    restored = _round_trip(cfg)
    assert restored == cfg
    assert isinstance(restored.actor_hidden, tuple) and restored.actor_hidden == (64, 32, 16)
    assert isinstance(restored.critic_hidden, tuple)
    assert restored.target_entropy == -0.5
    default = SACConfig()
    assert _round_trip(default) == default and _round_trip(default).target_entropy is None


def test_td3_config_round_trip() -> None:
    cfg = TD3Config(actor_hidden=(8,), critic_hidden=(16, 16), policy_delay=3, target_noise=0.1)
    restored = _round_trip(cfg)
    assert restored == cfg and isinstance(restored.critic_hidden, tuple)


def test_train_config_round_trip_restores_paths() -> None:
    cfg = TrainConfig(out_dir=Path("some/where"), run_name="x", total_steps=123, overlap_env=False)
    data = config_to_json(cfg)
    assert data["out_dir"] == "some/where"  # JSON-ready: a string, not a Path
    restored = _round_trip(cfg)
    assert restored == cfg
    assert isinstance(restored.out_dir, Path)


@pytest.mark.parametrize("cls", [SACConfig, TD3Config, TrainConfig])
def test_unknown_keys_are_rejected(cls: type) -> None:
    data = config_to_json(cls())
    data["not_a_field"] = 1
    with pytest.raises(ValueError, match="not_a_field"):
        config_from_json(cls, data)


def test_from_json_validates_values() -> None:
    data = config_to_json(SACConfig())
    data["gamma"] = 1.5
    with pytest.raises(ValueError, match="gamma"):
        config_from_json(SACConfig, data)


def test_from_json_missing_keys_take_defaults() -> None:
    assert config_from_json(TD3Config, {"gamma": 0.9}) == TD3Config(gamma=0.9)


def test_to_json_needs_a_dataclass_instance() -> None:
    with pytest.raises(TypeError):
        config_to_json([1, 2])
    with pytest.raises(TypeError):
        config_from_json(dict, {})


@pytest.mark.parametrize(
    "changes",
    [
        {"gamma": 1.0},
        {"gamma": -0.1},
        {"tau": 0.0},
        {"actor_lr": math.nan},
        {"critic_lr": -1e-3},
        {"init_alpha": 0.0},
        {"batch_size": 0},
        {"utd_ratio": 0},
        {"policy_delay": 0},
        {"num_critics": 1},
        {"actor_hidden": ()},
        {"critic_hidden": (0, 4)},
        {"adam_beta1": 1.0},
        {"use_target_network": False},  # without batch renorm
        {"log_std_min": 2.0, "log_std_max": 2.0},
    ],
)
def test_sac_config_rejects_invalid_values(changes: dict) -> None:
    with pytest.raises(ValueError, match="invalid SACConfig"):
        SACConfig(**changes)


@pytest.mark.parametrize(
    "changes",
    [{"gamma": 1.0}, {"tau": 1.5}, {"actor_lr": math.inf}, {"num_critics": 1}, {"target_noise": -0.1}],
)
def test_td3_config_rejects_invalid_values(changes: dict) -> None:
    with pytest.raises(ValueError, match="invalid TD3Config"):
        TD3Config(**changes)


@pytest.mark.parametrize(
    "changes",
    [{"total_steps": 0}, {"buffer_size": 0}, {"learning_starts": -1}, {"run_name": "a/b"}, {"run_name": ".."}],
)
def test_train_config_rejects_invalid_values(changes: dict) -> None:
    with pytest.raises(ValueError, match="invalid TrainConfig"):
        TrainConfig(**changes)


def test_sac_presets() -> None:
    assert SACConfig.preset("classic") == SACConfig()
    crossq = SACConfig.preset("crossq")
    assert crossq.recipe == "crossq"
    assert crossq.critic_norm == "batch_renorm" and not crossq.use_target_network
    assert crossq.policy_delay == 3 and crossq.adam_beta1 == 0.5
    with pytest.raises(ValueError, match="unknown SAC recipe"):
        SACConfig.preset("redq")


def test_replace_validates_again() -> None:
    with pytest.raises(ValueError, match="gamma"):
        SACConfig().replace(gamma=2.0)


def test_a_key_saved_before_its_default_changed_takes_its_old_meaning() -> None:
    from robot_rl.algos.meanflow import MeanFlowConfig

    saved = config_to_json(MeanFlowConfig())
    assert saved["prediction"] == "sample"  # today's default
    assert config_from_json(MeanFlowConfig, saved).prediction == "sample"
    del saved["prediction"]  # a run saved before the field existed trained the velocity output
    assert config_from_json(MeanFlowConfig, saved).prediction == "velocity"
    assert config_from_json(MeanFlowConfig, {**saved, "prediction": "sample"}).prediction == "sample"
