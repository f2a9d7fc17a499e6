"""LAC learns to balance the cart-pole: within a small budget it keeps the pole up longer than a random policy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from robot_rl.algos.lac import LACConfig
from robot_rl.train.config import TrainConfig
from robot_rl.train.envs import make_env, policy_spec_for
from robot_rl.train.evaluate import evaluate
from robot_rl.train.loop import train

CARTPOLE = "robot_rl/CartPoleBalance-v0"


@pytest.mark.slow
@pytest.mark.timeout(1200)  # ~35 s alone on 2 cores; generous for a loaded machine
def test_lac_balances_the_cartpole_better_than_random(make_train_cfg: Callable[..., TrainConfig]) -> None:
    """Mean episode length (steps until the pole falls or the cart leaves the track; 250 = the whole episode) over
    the same 10 seeded evaluation episodes, LAC after 6,000 env steps vs uniformly random actions.

    64-wide networks and SAC's learning rate (3e-4; the paper's 1e-4 needs a longer budget) keep it cheap.
    """
    env = make_env(CARTPOLE)
    spec = policy_spec_for(env, CARTPOLE)
    env.close()
    rng = np.random.default_rng(0)

    def random_act(obs: np.ndarray) -> np.ndarray:
        return spec.action.to_physical(rng.uniform(-1.0, 1.0, spec.action.dim).astype(np.float32))

    random = evaluate(random_act, CARTPOLE, episodes=10, seed=0)

    cfg = make_train_cfg("lac", env=CARTPOLE, total_steps=6_000, learning_starts=500, eval_episodes=10, seed=0)
    lac_cfg = LACConfig(actor_hidden=(64, 64), critic_hidden=(64, 64), actor_lr=3e-4, alpha_lr=3e-4, lambda_lr=3e-4)
    trained = train(cfg, "lac", lac_cfg).final_eval

    random_len, lac_len = float(np.mean(random.lengths)), float(np.mean(trained.lengths))
    print(f"random: length {random_len:.1f}, return {random.mean_return:.1f}")
    print(f"lac:    length {lac_len:.1f}, return {trained.mean_return:.1f}, lengths {trained.lengths}")
    # Length, not return: the return (1 per step alive minus the cost) also grows by just falling later with the
    # cart far off centre, so it says less about stabilizing than how long the pole stays up.
    assert lac_len >= random_len + 50, (random.lengths, trained.lengths)
