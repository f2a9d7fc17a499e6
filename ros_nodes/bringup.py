"""`robot-rl deploy`: run a portable-subset launch file without ROS's launch package (pip-only installs).

Parses the file with `ros_nodes.launch_subset`, starts each enabled node as a child process in one isolated ROS
domain (loopback only), configures + activates the policy node through its lifecycle services, runs until
`--duration-s`, Ctrl-C/SIGTERM or the death of any node, then stops in order: the policy node is deactivated if it
is still alive (it publishes a hold), the robot side (the simulated robot) is stopped next and waited for, so it
holds still before anything that commands it goes away, then the other nodes get SIGINT (SIGKILL after a grace
period), and dead Fast DDS shared-memory files are removed. A waiter thread per child wakes bringup the moment a
child exits, so a dead node is noticed at once, named with its exit code, and the exit status is non-zero.
Each child's output is printed prefixed with its name.

rclpy is imported only where the lifecycle is driven, so `--check` and `--dry-run` work without ROS.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from ros_nodes.bundle_pin import pin_bundles
from ros_nodes.launch_subset import (
    EXECUTABLES,
    PACKAGE,
    LaunchDescription,
    LaunchSubsetError,
    NodeSpec,
    ParamFile,
    parse,
    parse_launch_args,
    validate,
)

EXIT_OK, EXIT_USAGE, EXIT_LIFECYCLE, EXIT_CHILD = 0, 2, 3, 4
"""Exit codes: success; bad arguments/launch file; configure/activate refused; a node died or exited non-zero."""


# ---------------------------------------------------------------------------------------------- commands
def node_command(spec: NodeSpec, param_dir: Path, bin_dir: Path | None = None) -> list[str]:
    """The command line that runs `spec` the way ros2 launch would (inline params go to a YAML file in order).

    The console script next to this interpreter is preferred (`<venv>/bin/robot-rl-policy-node`); without it,
    `python -m <module>`.
    """
    exe = EXECUTABLES[spec.exec]
    bin_dir = Path(sys.executable).parent if bin_dir is None else bin_dir
    script = bin_dir / exe.console_script
    cmd = [str(script)] if os.access(script, os.X_OK) else [sys.executable, "-m", exe.module]
    cmd += ["--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace.strip("/"):
        cmd += ["-r", f"__ns:=/{spec.namespace.strip('/')}"]
    for i, source in enumerate(spec.params):
        if isinstance(source, ParamFile):
            cmd += ["--params-file", str(source.path)]
        else:
            # Like launch_ros: inline values become a parameter file (exact YAML types, empty strings allowed).
            path = param_dir / f"{spec.name}_{i}.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": dict(source)}}, default_flow_style=None))
            cmd += ["--params-file", str(path)]
    for src, dst in spec.remaps:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


# ---------------------------------------------------------------------------------------------- children
@dataclass
class Child:
    """One running node process, the thread that copies its output and the thread that waits for its exit."""

    spec: NodeSpec
    proc: subprocess.Popen[bytes]
    reader: threading.Thread
    errors: list[str] = field(default_factory=list)
    """The child's ERROR log messages so far (the node's own words for a refusal)."""
    killed: bool = False
    """Bringup had to SIGKILL it (it ignored SIGINT for the grace period)."""
    exited: threading.Event = field(default_factory=threading.Event)
    """Set by the waiter thread once the process has exited and been reaped (`exit_code` is then final)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def exit_code(self) -> int | None:
        """The exit code once reaped (negative: killed by that signal), None while it runs."""
        return self.proc.returncode if self.exited.is_set() else None

    def describe_exit(self) -> str:
        """How it ended, e.g. `exited with code 1` or `was killed by SIGKILL (exit code -9)`; "" while it runs."""
        rc = self.exit_code
        if rc is None:
            return ""
        if rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            return f"was killed by {name} (exit code {rc})"
        return f"exited with code {rc}"


def _libc_prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl  # loaded in the parent: the child only calls it
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()


def _set_parent_death_signal() -> None:
    """Children get SIGINT if bringup dies without cleaning up (Linux prctl PR_SET_PDEATHSIG = 1)."""
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGINT))


def _copy_output(name: str, stream: Any, out: TextIO, lock: threading.Lock, errors: list[str]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if "[ERROR]" in line:
            errors.append(line.split("]: ", 1)[-1])
        with lock:
            out.write(f"[{name}] {line}\n")
            out.flush()
    stream.close()


def _wait_for_exit(proc: subprocess.Popen[bytes], exited: threading.Event, wake: threading.Event | None) -> None:
    # Blocks in waitpid: the parent learns of a death the moment it happens (no polling interval to wait out).
    proc.wait()
    exited.set()
    if wake is not None:
        wake.set()


def start_child(
    spec: NodeSpec,
    cmd: list[str],
    env: dict[str, str],
    out: TextIO,
    lock: threading.Lock,
    wake: threading.Event | None = None,
) -> Child:
    """Start one node in its own session (the terminal's Ctrl-C reaches bringup only, which stops nodes in order).

    `wake` is set when the process exits (any child's exit wakes the one supervising loop).
    """
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_set_parent_death_signal,
    )
    errors: list[str] = []
    reader = threading.Thread(
        target=_copy_output, args=(spec.name, proc.stdout, out, lock, errors), daemon=True, name=f"output-{spec.name}"
    )
    reader.start()
    child = Child(spec, proc, reader, errors)
    threading.Thread(
        target=_wait_for_exit, args=(proc, child.exited, wake), daemon=True, name=f"wait-{spec.name}"
    ).start()
    return child


def stop_order(children: Sequence[Child]) -> list[list[Child]]:
    """The groups `stop_children` stops one after the other: the robot side first, then the rest (newest first).

    The robot (the simulated robot node; a real robot's driver is not ours to stop) must hold still before the
    nodes that command it go away: stopping the simulated robot stops its physics, so whatever the policy node or
    an operator last sent, nothing moves any more.
    """
    robot = [c for c in children if c.spec.executable.robot]
    rest = [c for c in reversed(children) if not c.spec.executable.robot]
    return [g for g in (robot, rest) if g]


def _interrupt_and_wait(group: Sequence[Child], grace_s: float) -> None:
    for c in group:
        if not c.exited.is_set():
            with contextlib.suppress(ProcessLookupError):  # it may die between the check and the signal
                c.proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for c in group:
        if not c.exited.wait(max(0.0, deadline - time.monotonic())):
            c.killed = True
            with contextlib.suppress(ProcessLookupError):
                c.proc.kill()
            c.exited.wait(10.0)  # SIGKILL cannot be ignored; the bound only guards against a stuck kernel


def stop_children(children: Sequence[Child], grace_s: float = 10.0, say: Callable[[str], None] | None = None) -> None:
    """Stop every child in `stop_order`: SIGINT a group (the nodes' clean shutdown path), wait up to `grace_s`
    for all of it, SIGKILL what is left, and only then go on to the next group."""
    for i, group in enumerate(stop_order(children)):
        if say is not None:
            alive = [c.name for c in group if not c.exited.is_set()]
            robot = (
                " (robot side: it holds still before anything else stops)"
                if i == 0 and group[0].spec.executable.robot
                else ""
            )
            say(f"stopping {', '.join(alive) or 'nothing (already exited)'}{robot}")
        _interrupt_and_wait(group, grace_s)
    for c in children:
        c.reader.join(timeout=2.0)


# ---------------------------------------------------------------------------------------------- lifecycle
class NoAnswer(RuntimeError):
    """A lifecycle service call got no answer in time."""


_ANSWER_WAIT_S = 5.0
"""How long one lifecycle request waits before bringup asks the node's state and, if nothing happened, asks again."""
_GOAL_STATES = {1: "inactive", 3: "active", 4: "inactive", 2: "unconfigured"}
"""lifecycle_msgs/Transition id → the state it ends in (configure, activate, deactivate, cleanup)."""
_TRANSITIONAL_STATES = frozenset(
    {"configuring", "activating", "deactivating", "cleaningup", "shuttingdown", "errorprocessing"}
)
"""Lifecycle states a node passes through while it works on a transition."""


class LifecycleClient:
    """Calls `<node>/change_state` and `<node>/get_state` from a small helper node (SingleThreadedExecutor)."""

    def __init__(self, node_fqn: str) -> None:
        import rclpy
        from lifecycle_msgs.srv import ChangeState, GetState
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        # No rclpy signal handlers: Ctrl-C must reach bringup's own shutdown (deactivate first), not kill the context.
        self._context = rclpy.Context()
        # args: not sys.argv, whose name:=value launch arguments rcl would read as remap rules.
        rclpy.init(args=["robot_rl_bringup"], context=self._context, signal_handler_options=SignalHandlerOptions.NO)
        self._node = rclpy.create_node("robot_rl_bringup", context=self._context, use_global_arguments=False)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._ChangeState = ChangeState
        self._GetState = GetState
        self.fqn = node_fqn
        self._change: Any = self._node.create_client(ChangeState, f"{node_fqn}/change_state")
        self._get: Any = self._node.create_client(GetState, f"{node_fqn}/get_state")

    def wait_for_service(self, timeout_s: float, alive: Callable[[], str | None]) -> None:
        """Wait for the lifecycle services; `alive()` returns a reason to give up (a child died, a stop) or None."""
        deadline = time.monotonic() + timeout_s
        while not (self._change.service_is_ready() and self._get.service_is_ready()):
            reason = alive()
            if reason:
                raise RuntimeError(reason)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.fqn}/change_state did not appear within {timeout_s:g} s")
            self._executor.spin_once(timeout_sec=0.1)

    def _call(self, client: Any, request: Any, timeout_s: float, alive: Callable[[], str | None] | None = None) -> Any:
        """Call and wait for the answer; `alive()` is asked every 0.1 s, so a node that dies mid-call ends the
        wait at once instead of after `timeout_s`."""
        future = client.call_async(request)
        deadline = time.monotonic() + timeout_s
        while not future.done():
            try:
                reason = alive() if alive is not None else None
            except BaseException:
                future.cancel()
                raise
            if reason:
                future.cancel()
                raise RuntimeError(f"{client.srv_name}: {reason}")
            remaining = deadline - time.monotonic()
            if remaining <= 0.0:
                future.cancel()
                raise NoAnswer(f"{client.srv_name}: no answer within {timeout_s:g} s")
            self._executor.spin_until_future_complete(future, timeout_sec=min(0.1, remaining))
        return future.result()

    def transition(
        self, transition_id: int, timeout_s: float = 30.0, alive: Callable[[], str | None] | None = None
    ) -> bool:
        """Request a transition (lifecycle_msgs/Transition id); True when the node accepted it.

        `alive()` returns a reason to stop waiting (the node died) or None.
        """
        request = self._ChangeState.Request()
        request.transition.id = transition_id
        goal = _GOAL_STATES.get(transition_id, "")
        deadline = time.monotonic() + timeout_s
        arrived = False  # the node was seen working on it: never send it again
        while True:
            if not arrived:
                try:
                    wait_s = min(_ANSWER_WAIT_S, deadline - time.monotonic())
                    return bool(self._call(self._change, request, wait_s, alive).success)
                except NoAnswer:
                    pass
            # DDS can lose a request or its response while the client and the service are still matching each
            # other (worse on a loaded machine). Ask where the node is before asking again: a transition is not
            # idempotent, so one that went through is reported, never requested twice.
            if time.monotonic() >= deadline:
                raise NoAnswer(f"{self._change.srv_name}: no answer within {timeout_s:g} s")
            try:
                label = self.state(timeout_s=min(_ANSWER_WAIT_S, max(deadline - time.monotonic(), 0.01)), alive=alive)
            except NoAnswer:
                continue
            if goal and label == goal:
                return True
            if label in _TRANSITIONAL_STATES:
                arrived = True
                self._executor.spin_once(timeout_sec=0.05)
            elif arrived:
                return False  # it worked on the transition and ended elsewhere: the transition failed

    def state(self, timeout_s: float = 5.0, alive: Callable[[], str | None] | None = None) -> str:
        """The node's current lifecycle state label ("unconfigured", "inactive", "active", ...)."""
        return str(self._call(self._get, self._GetState.Request(), timeout_s, alive).current_state.label)

    def close(self) -> None:
        self._executor.shutdown()
        self._node.destroy_node()
        if self._context.ok():
            self._context.shutdown()


# ---------------------------------------------------------------------------------------------- the run
@dataclass
class BringupResult:
    """What happened: per-node exit codes, the lifecycle outcome and the overall exit code."""

    exit_codes: dict[str, int | None] = field(default_factory=dict)
    killed: list[str] = field(default_factory=list)
    reached_active: bool = False
    lifecycle_error: str = ""
    child_error: str = ""
    code: int = EXIT_OK


class _Stop(Exception):
    pass


def run(
    desc: LaunchDescription,
    *,
    domain_id: int | None = None,
    duration_s: float | None = None,
    activate: bool = True,
    startup_timeout_s: float = 60.0,
    out: TextIO | None = None,
) -> BringupResult:
    """Start the enabled nodes of `desc`, drive the lifecycle, run, stop everything; never leaves a child behind."""
    from lifecycle_msgs.msg import Transition

    from ros_nodes.ros_env import apply_isolated_ros_env, cleanup_fastdds_shm, isolated_ros_env

    out = sys.stdout if out is None else out
    lock = threading.Lock()
    result = BringupResult()
    nodes = desc.enabled_nodes
    if not nodes:
        raise LaunchSubsetError(f"{desc.path}: no node is enabled")
    domain = apply_isolated_ros_env(domain_id)  # this process's lifecycle client joins the same domain
    env = isolated_ros_env(domain)
    env.setdefault("PYTHONUNBUFFERED", "1")  # children's log lines arrive as they are written
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    lifecycle_nodes = [n for n in nodes if n.executable.lifecycle]
    children: list[Child] = []
    client: LifecycleClient | None = None
    stop_requested = threading.Event()
    wake = threading.Event()
    """Set by a child's waiter thread when it exits and by a stop signal: the supervising loop wakes at once."""

    def on_signal(signum: int, frame: Any) -> None:
        stop_requested.set()  # only a flag: raising here could interrupt a Popen and orphan its child
        wake.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    param_dir = Path(tempfile.mkdtemp(prefix="robot_rl_bringup_"))

    def say(msg: str) -> None:
        with lock:
            out.write(f"[bringup] {msg}\n")
            out.flush()

    def dead_child() -> str | None:
        if stop_requested.is_set():
            raise _Stop
        for c in children:
            if c.exited.is_set():
                return f"node {c.name} {c.describe_exit()} (its output is above)"
        return None

    def child_of(spec: NodeSpec) -> Child:
        return next(c for c in children if c.spec is spec)

    def gone(child: Child) -> Callable[[], str | None]:
        return lambda: f"node {child.name} {child.describe_exit()}" if child.exited.is_set() else None

    activated: list[tuple[LifecycleClient, Child]] = []
    try:
        say(f"ROS_DOMAIN_ID={domain} (loopback only); starting {', '.join(n.fqn for n in nodes)}")
        for spec in nodes:
            cmd = node_command(spec, param_dir)
            children.append(start_child(spec, cmd, env, out, lock, wake))
            say(f"started {spec.name} (pid {children[-1].proc.pid})")
            dead_child()
        if activate and lifecycle_nodes:
            for spec in lifecycle_nodes:
                client = LifecycleClient(spec.fqn)
                client.wait_for_service(startup_timeout_s, dead_child)
                say(f"{spec.fqn}: configure")
                if not client.transition(Transition.TRANSITION_CONFIGURE, alive=dead_child):
                    time.sleep(0.2)  # let the node's log line of the reason arrive
                    child = child_of(spec)
                    reason = child.errors[-1] if child.errors else "see its log above"
                    state = client.state(alive=gone(child))
                    result.lifecycle_error = f"{spec.fqn} refused to configure (state {state}): {reason}"
                    raise _Stop
                dead_child()
                say(f"{spec.fqn}: activate")
                if not client.transition(Transition.TRANSITION_ACTIVATE, alive=dead_child):
                    time.sleep(0.2)
                    child = child_of(spec)
                    reason = child.errors[-1] if child.errors else "see its log above"
                    state = client.state(alive=gone(child))
                    result.lifecycle_error = f"{spec.fqn} refused to activate (state {state}): {reason}"
                    raise _Stop
                activated.append((client, child_of(spec)))  # from here on, shutdown deactivates it (a hold)
                result.reached_active = client.state(alive=dead_child) == "active"
                say(f"{spec.fqn}: {'active' if result.reached_active else 'NOT active'}")
        say("running " + (f"for {duration_s:g} s" if duration_s is not None else "until Ctrl-C"))
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while True:
            wake.clear()  # before the check: an exit between the check and the wait still wakes the wait
            died = dead_child()
            if died:
                result.child_error = died
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0.0:
                break
            # Wakes the moment a child exits or a stop signal arrives; the 1 s cap only re-checks the flags.
            wake.wait(1.0 if remaining is None else min(remaining, 1.0))
    except _Stop:
        if stop_requested.is_set():
            say("stop requested")
    except RuntimeError as exc:
        result.child_error = str(exc)
    finally:
        # Ctrl-C during shutdown must not skip it: ignore further signals until the children are gone.
        for s in previous:
            signal.signal(s, signal.SIG_IGN)
        # Order: a live policy node holds first (deactivate publishes a hold), then the robot side stops (the
        # simulated robot's physics halts: it holds still), then everything else. A dead node is not asked.
        for lifecycle, child in activated:
            if child.exited.is_set():
                say(f"{lifecycle.fqn}: not deactivated: node {child.name} {child.describe_exit()}")
                continue
            try:
                ok = lifecycle.transition(Transition.TRANSITION_DEACTIVATE, timeout_s=10.0, alive=gone(child))
                say(f"{lifecycle.fqn}: deactivate {'ok' if ok else 'REFUSED'}")
            except RuntimeError as exc:  # it died during the call, or did not answer
                say(f"{lifecycle.fqn}: deactivate failed: {exc}")
        stop_children(children, say=say)
        for lc in {id(x): x for x in [*(a for a, _ in activated), *([client] if client else [])]}.values():
            lc.close()
        shutil.rmtree(param_dir, ignore_errors=True)
        cleanup_fastdds_shm()
        for s, handler in previous.items():
            signal.signal(s, handler)
    for c in children:
        result.exit_codes[c.name] = c.proc.returncode
        if c.killed:
            result.killed.append(c.name)
    if result.lifecycle_error:
        result.code = EXIT_LIFECYCLE
    elif result.child_error or result.killed or any(rc != 0 for rc in result.exit_codes.values()):
        result.code = EXIT_CHILD
    say(
        "summary: "
        + ", ".join(
            f"{n} exit {rc}" + (" (SIGKILLed)" if n in result.killed else "") for n, rc in result.exit_codes.items()
        )
    )
    if result.lifecycle_error:
        say("error: " + result.lifecycle_error)
    if result.child_error:
        say("error: " + result.child_error)
    return result


# ---------------------------------------------------------------------------------------------- ROS package
def link_ros_package(prefix: Path, source: Path | None = None) -> list[Path]:
    """Make `prefix` hold the ROS 2 package robot_rl as links into a source checkout (for editable installs).

    `pip install -e .` does not install data files (pypa/setuptools#3399), so ros2 launch and
    `$(find-pkg-share robot_rl)` find nothing in the venv. This writes what a wheel would: the ament index
    marker, `share/robot_rl/{package.xml,launch}` (symlinks: edits in the checkout are live) and the
    `lib/robot_rl/<exec>` wrappers (copies). Returns the paths written.
    """
    source = Path(__file__).resolve().parents[1] if source is None else Path(source).resolve()
    if not (source / "package.xml").is_file() or not (source / "launch" / "bin").is_dir():
        raise FileNotFoundError(f"{source} is not a robot_rl checkout (package.xml and launch/bin/ expected)")
    written: list[Path] = []
    marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("")
    written.append(marker)
    share = prefix / "share" / PACKAGE
    share.mkdir(parents=True, exist_ok=True)
    for name in ("package.xml", "launch"):
        link = share / name
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        link.symlink_to(source / name)
        written.append(link)
    lib = prefix / "lib" / PACKAGE
    lib.mkdir(parents=True, exist_ok=True)
    for exe in EXECUTABLES:
        dst = lib / exe
        shutil.copyfile(source / "launch" / "bin" / exe, dst)
        dst.chmod(0o755)
        written.append(dst)
    return written


# ---------------------------------------------------------------------------------------------- CLI
USAGE = """robot-rl deploy LAUNCH_FILE [name:=value ...] [options]

Run a robot_rl launch file (portable subset, launch/README.md) without ROS's launch package: start its nodes in
an isolated ROS domain, configure + activate the policy node, run, then deactivate and stop everything.

  robot-rl deploy launch/sim_deploy.launch.xml bundle:=models/my_bundle scripted_takeover:=true --duration-s 20
  robot-rl deploy --check launch/*.launch.xml
  robot-rl deploy --link-ros-package            (after pip install -e .: make ros2 launch find robot_rl)
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robot-rl deploy", usage=USAGE)
    p.add_argument("items", nargs="*", help="launch file, then name:=value launch arguments")
    p.add_argument("--duration-s", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--no-activate", action="store_true", help="start the nodes but leave the policy node unconfigured")
    p.add_argument(
        "--domain-id",
        type=int,
        default=None,
        help="ROS_DOMAIN_ID for every node (default: a free one; on a robot: the robot's domain)",
    )
    p.add_argument(
        "--startup-timeout-s",
        type=float,
        default=60.0,
        help="how long to wait for the policy node's lifecycle services",
    )
    p.add_argument("--check", action="store_true", help="only validate the launch file(s); print every problem")
    p.add_argument("--dry-run", action="store_true", help="print the resolved node command lines and exit")
    p.add_argument(
        "--link-ros-package",
        nargs="?",
        const=sys.prefix,
        default=None,
        metavar="PREFIX",
        help=f"link this checkout into PREFIX (default {sys.prefix}) as the ROS package robot_rl",
    )
    return p


def dry_run(desc: LaunchDescription, out: TextIO | None = None) -> None:
    """Print each node's command line and the inline-parameter files it would get; leaves no file behind.

    A real run writes those files to a fresh temporary folder (removed when it ends), so the paths printed here
    are placeholders and the files' contents are printed instead.
    """
    out = sys.stdout if out is None else out
    with tempfile.TemporaryDirectory(prefix="robot_rl_dry_run_") as tmp:
        for spec in desc.nodes:
            mark = "" if spec.enabled else f"   (disabled: {spec.condition})"
            out.write(f"{spec.fqn}: {' '.join(node_command(spec, Path(tmp)))}{mark}\n")
        for path in sorted(Path(tmp).iterdir()):
            out.write(f"--- {path} (inline parameters; a run writes it to its own temporary folder)\n")
            out.write(path.read_text())
    out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """`robot-rl deploy ...`; returns the exit code (see EXIT_*)."""
    ns = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if ns.link_ros_package is not None:
        for path in link_ros_package(Path(ns.link_ros_package)):
            print(f"wrote {path}")
        print(f"now: export AMENT_PREFIX_PATH={ns.link_ros_package}:$AMENT_PREFIX_PATH")
        return EXIT_OK
    files = [i for i in ns.items if ":=" not in i]
    if ns.check:
        if not files:
            print("robot-rl deploy --check: name at least one launch file", file=sys.stderr)
            return EXIT_USAGE
        bad = 0
        for f in files:
            problems = validate(f, parse_launch_args([i for i in ns.items if ":=" in i]))
            errors = [p for p in problems if not p.startswith("warning:")]
            bad += bool(errors)
            print(f"{f}: " + ("ok" if not problems else f"{len(errors)} problem(s)"))
            for p in problems:
                print(f"  - {p}")
        return EXIT_USAGE if bad else EXIT_OK
    if len(files) != 1 or ns.items[0] != files[0]:
        print(USAGE, file=sys.stderr)
        print("robot-rl deploy: give exactly one launch file first, then name:=value arguments", file=sys.stderr)
        return EXIT_USAGE
    try:
        desc = parse(files[0], parse_launch_args(ns.items[1:]))
    except LaunchSubsetError as exc:
        print(f"robot-rl deploy: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # Pinned by default: each policy node gets the sha256 verified here, so a bundle swapped later is refused.
    try:
        desc, notes = pin_bundles(desc)
    except (ValueError, OSError) as exc:  # BundleError is a ValueError
        if not ns.dry_run:
            print(f"robot-rl deploy: bundle refused: {exc}", file=sys.stderr)
            return EXIT_LIFECYCLE
        notes = [f"bundle not verified (a real run would refuse it): {exc}"]
    for note in notes:
        print(f"[bringup] {note}")
    if ns.dry_run:
        dry_run(desc)
        return EXIT_OK
    result = run(
        desc,
        domain_id=ns.domain_id,
        duration_s=ns.duration_s,
        activate=not ns.no_activate,
        startup_timeout_s=ns.startup_timeout_s,
    )
    return result.code


if __name__ == "__main__":
    sys.exit(main())
