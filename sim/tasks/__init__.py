"""Tasks: reach, push (contact, sparse), cart-pole balance (stability), reach around a pillar (multimodal)."""

from sim.errors import unknown_name
from sim.tasks.base import Outcome, Task
from sim.tasks.cartpole import CartPoleBalanceTask
from sim.tasks.push import PushTask
from sim.tasks.reach import ReachTask
from sim.tasks.reach_around import ReachAroundTask

TASKS: dict[str, type[Task]] = {t.name: t for t in (ReachTask, PushTask, CartPoleBalanceTask, ReachAroundTask)}


def make_task(name: str) -> Task:
    """A fresh task instance by name; SimError with suggestions for an unknown name."""
    try:
        return TASKS[name]()
    except KeyError:
        raise unknown_name("task", name, TASKS) from None


__all__ = ["TASKS", "Outcome", "Task", "make_task"]
