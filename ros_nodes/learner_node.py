"""The human-in-the-loop learner as a ROS 2 node: a thin shell around `robot_rl.hil.service.LearnerService`.

It subscribes the policy node's step stream (`step_stream_topic`, reliable, with a liveliness lease so a dead
node is noticed), trains on a worker thread, and publishes each verified bundle's announcement on a latched topic
(`announce_topic`) that the policy node's hot swap listens to. `/diagnostics` shows the stream's counters (lost,
duplicate, malformed messages, node restarts), the learner's figures and every error.

Its parameters are `HilLearnerConfig`'s fields (`algo_config` as a JSON object string) plus `resume`, `demos`,
the two topics and `updates_per_slice`. A `run_dir` that holds a run is resumed only with `resume:=true`, and
refused with the reason otherwise (the node then exits non-zero, touching nothing). With `resume` it restores
networks, buffers and counters from the last checkpoint and re-announces its newest bundle.

    robot-rl-learner --ros-args -p run_dir:=runs/hil -p base:=models/bc_push -p env:=robot_rl/PandaPush-v0
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import String, UInt8MultiArray

from robot_rl.hil.learner import HilLearner, HilLearnerConfig
from robot_rl.hil.service import LearnerService
from robot_rl.hil.wire import new_run_id
from ros_nodes.core.log_throttle import LogThrottle
from ros_nodes.diagnostic_msgs_util import status_msg
from ros_nodes.hil_qos import ANNOUNCE_QOS, HEARTBEAT_OFFERED_QOS, STREAM_QOS

NODE_PARAMS: dict[str, Any] = {
    "resume": False,
    "demos": [""],
    "step_stream_topic": "/robot_rl/steps",
    "announce_topic": "/robot_rl/learner/bundle",
    "status_topic": "/robot_rl/learner/status",
    "updates_per_slice": 20,
}
"""The node's own parameters (besides `HilLearnerConfig`'s fields)."""
NODE_DOCS = {
    "resume": "Continue the run in run_dir from its last checkpoint (without it, a run_dir holding a run is refused).",
    "demos": "MCAP recording folders or datasets whose episodes fill the demonstration buffer at a fresh start.",
    "step_stream_topic": "The policy node's step stream (its step_stream_topic parameter).",
    "announce_topic": "Latched topic of the bundle announcements (the policy node's bundle_announce_topic).",
    "status_topic": "The learner's heartbeat, its figures as JSON once a second (the node's learner_status_topic).",
    "updates_per_slice": "Most updates between two looks at newly arrived episodes.",
}


def learner_config(params: dict[str, Any]) -> HilLearnerConfig:
    """`HilLearnerConfig` from flat parameter values (`algo_config` is a JSON object string)."""
    kwargs: dict[str, Any] = {}
    for f in fields(HilLearnerConfig):
        if f.name not in params:
            continue
        value = params[f.name]
        if f.name == "run_dir":
            value = Path(value)
        elif f.name == "algo_config":
            value = json.loads(value or "{}")
            if not isinstance(value, dict):
                raise ValueError(f"algo_config must be a JSON object, got {params[f.name]!r}")
        kwargs[f.name] = value
    if not kwargs.get("run_dir") or str(kwargs["run_dir"]) in ("", "."):
        raise ValueError("parameter run_dir is required: the learner's run folder")
    if not kwargs.get("env") and kwargs.get("base"):  # the deployed bundle says which task it is
        from robot_rl.export.manifest import read_manifest

        kwargs["env"] = read_manifest(kwargs["base"]).policy_spec.env_id
    return HilLearnerConfig(**kwargs)


def _defaults() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(HilLearnerConfig):
        if f.default is not MISSING:
            value = f.default
        elif f.default_factory is not MISSING:
            value = f.default_factory()
        else:
            value = ""
        if f.name == "algo_config":
            value = json.dumps(dict(value))
        out[f.name] = str(value) if isinstance(value, Path) else value
    return {**out, **NODE_PARAMS}


def load_demos(paths: list[str], learner: HilLearner) -> int:
    """Episodes of each MCAP folder or dataset in `paths` into the demonstration buffer; returns transitions."""
    from robot_rl.data.datasets import read_dataset
    from robot_rl.data.datasets.sources.mcap import mcap_episodes

    n = 0
    for p in (x for x in paths if x):
        path = Path(p)
        if any(path.glob("episode_*.mcap")):
            _, episodes, _ = mcap_episodes(path, spec=learner.env_spec)
        else:
            episodes = read_dataset(path).episodes
        n += learner.add_demonstrations(episodes)
    return n


class LearnerNode(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("learner", **kwargs)
        params = {name: self.declare_parameter(name, default).value for name, default in _defaults().items()}
        cfg = learner_config(params)  # raises ValueError with the reason: the process exits before any I/O
        self.learner = HilLearner(cfg, resume=bool(params["resume"]))  # RunFolderExists / BaseError: refused
        self.run_id = new_run_id()
        if not params["resume"]:
            demos = load_demos(list(params["demos"]), self.learner)
            if demos:
                self.get_logger().info(f"{demos} demonstration transitions loaded")
        self._announce_pub = self.create_publisher(String, str(params["announce_topic"]), ANNOUNCE_QOS)
        self._announced: list[str] = []  # every announcement this process published (for the final stats)
        self.service = LearnerService(self.learner, self._announce, self.run_id, int(params["updates_per_slice"]))
        from rclpy.event_handler import SubscriptionEventCallbacks

        self.create_subscription(
            UInt8MultiArray,
            str(params["step_stream_topic"]),
            self._on_step,
            STREAM_QOS,
            event_callbacks=SubscriptionEventCallbacks(liveliness=self._on_liveliness),
        )
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._status_pub = self.create_publisher(String, str(params["status_topic"]), HEARTBEAT_OFFERED_QOS)
        self.create_timer(1.0, self._publish_diagnostics)
        self._throttle = LogThrottle(5.0)
        self._stop = threading.Event()
        self.service.announce_latest()  # a restarted learner tells the node its newest bundle again
        self._worker = threading.Thread(target=self._work, name="robot_rl-learner", daemon=True)
        self._worker_alive_at_stop: bool | None = None
        self._worker.start()
        self.get_logger().info(
            f"learner {self.run_id}: {cfg.algo} on {cfg.env} in {cfg.run_dir} "
            f"({'resumed at update ' + str(self.learner.updates) if params['resume'] else 'fresh'})"
        )

    def _announce(self, text: str) -> None:
        self._announce_pub.publish(String(data=text))
        self._announced.append(text)

    def _on_step(self, msg: UInt8MultiArray) -> None:
        self.service.on_message(bytes(msg.data))

    def _on_liveliness(self, info: Any) -> None:
        if info.alive_count == 0 and info.not_alive_count_change > 0:
            self.get_logger().warning("the policy node's step stream lost liveliness: closing its open episode")
            self.service.on_stream_lost()

    def _work(self) -> None:
        try:
            self.service.run(self._stop)
        except Exception as exc:  # the learner diverged or its disk failed: say so; the robot keeps its bundle
            self.service.errors += 1
            self.service.last_error = f"learner stopped: {type(exc).__name__}: {exc}"
            self.get_logger().error(self.service.last_error)

    def _publish_diagnostics(self) -> None:
        st = self.service.stats()
        alive = self._worker.is_alive()
        level = 2 if not alive else (1 if self.service.errors or st.get("malformed", 0) else 0)
        text = (
            f"{'training' if alive else 'STOPPED'}: {st.get('learner/updates', 0):.0f} updates, "
            f"{st.get('learner/episodes', 0):.0f} episodes, {self.service.exports} bundles announced"
        )
        if self.service.last_error:
            text += f"; last error: {self.service.last_error}"
            if self._throttle.admit("error", self.get_clock().now().nanoseconds * 1e-9) is not None:
                self.get_logger().error(self.service.last_error)
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status.append(status_msg(level, "learner", text, "", {k: str(v) for k, v in st.items()}))
        self._diag_pub.publish(arr)
        heartbeat = {
            "run_id": self.run_id,
            "alive": alive,
            "updates": int(st.get("learner/updates", 0)),
            "episodes": int(st.get("learner/episodes", 0)),
            "exports": self.service.exports,
            "errors": self.service.errors,
        }
        self._status_pub.publish(String(data=json.dumps(heartbeat)))

    def write_final_stats(self) -> Path:
        """`<run_dir>/learner_stats.json`: the stream's counters and the learner's figures (what `/diagnostics`
        showed last), the updates still owed, and every announcement this process published (benchmarks read it,
        e.g. bench/hil_push.py). Written atomically."""
        out = {
            "run_id": self.run_id,
            "written_unix_s": time.time(),
            "worker_alive_at_stop": self._worker_alive_at_stop,
            "last_error": self.service.last_error,
            "stats": self.service.stats(),
            "pending_updates": float(self.learner.pending_updates),
            "announcements": [json.loads(text) for text in list(self._announced)],
        }
        path = self.learner.cfg.run_dir / "learner_stats.json"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(out, indent=1))
        tmp.replace(path)
        return path

    def shutdown(self) -> None:
        """Stop training and checkpoint (a clean stop; a kill -9 resumes from the last periodic checkpoint).

        The final stats are written first (the stream is quiet by now; a stop that runs out of grace still leaves
        them) and again once the worker has stopped."""
        self._worker_alive_at_stop = self._worker.is_alive()  # False: training had stopped on an error
        self._stop.set()
        self.write_final_stats()
        self._worker.join(timeout=30.0)
        if self.learner.updates:
            self.learner.save()
        self.learner.close()
        self.write_final_stats()


def main(args: list[str] | None = None) -> int:
    """Entry point `robot-rl-learner` (ROS arguments: `--ros-args -p name:=value ...`)."""
    from robot_rl.train.checkpoint import CheckpointError
    from ros_nodes.spin import run_node

    try:
        return run_node(LearnerNode, args, on_stop=lambda node: node.shutdown())
    except (ValueError, CheckpointError, FileExistsError) as exc:  # refused clearly, nothing touched, no hang
        print(f"robot-rl learn: {exc}", file=sys.stderr)
        return 2


def usage() -> str:
    """`robot-rl learn --help`: every parameter with its default and docstring."""
    from robot_rl.core.config import field_docs

    docs = {**field_docs(HilLearnerConfig), **NODE_DOCS}
    lines = [
        "usage: robot-rl learn name:=value ...   (the learner node; the same parameters as robot-rl-learner's)",
        "",
        "  robot-rl learn run_dir:=runs/hil base:=models/bc_push          # a fresh run (refused if it exists)",
        "  robot-rl learn run_dir:=runs/hil base:=models/bc_push resume:=true",
        "",
        "parameters:",
    ]
    for name, default in _defaults().items():
        lines.append(f"  {name} (default {default!r}): {' '.join(docs.get(name, '').split())}")
    return "\n".join(lines)


def cli_main(argv: list[str]) -> int:
    """`robot-rl learn name:=value ...`: the learner node with these parameters, until SIGINT/SIGTERM."""
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    known = _defaults()
    ros_args = ["--ros-args"]
    for item in argv:
        name, sep, value = item.partition(":=")
        if not sep or name not in known:
            print(f"robot-rl learn: expected name:=value with a known name, got {item!r}\n\n{usage()}", file=sys.stderr)
            return 2
        ros_args += ["-p", f"{name}:={value}"]
    return main(ros_args)


if __name__ == "__main__":
    sys.exit(main())
