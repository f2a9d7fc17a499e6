"""The robot side of a bundle's Lyapunov critic (`manifest.lyapunov`, `lyapunov.onnx`): numpy + onnxruntime only.

`load_critic` verifies the critic exactly as `OnnxPolicy.load` verifies the policy — the file named by the
manifest exists, hashes to `lyapunov.onnx_sha256`, is single-file and sampling-free, has the signature
`obs [batch, O]`, `action [batch, A]` → `lyapunov [batch]` — and that the record embedded in the (hashed) policy
graph equals the manifest's, so an edited, removed or added `lyapunov` field is refused. Every refusal is one line
naming the field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from robot_rl.export.errors import BundleError
from robot_rl.export.json_diff import format_diff, json_diff
from robot_rl.export.manifest import (
    BATCH_DIM,
    INPUT_NAME,
    LYAPUNOV_ACTION_NAME,
    LYAPUNOV_OUTPUT_NAME,
    META_LYAPUNOV_KEY,
    Manifest,
)
from robot_rl.export.runtime import (
    _EDITED,
    _embedded_record,
    open_checked_session,
    read_pinned_model,
    signature_problem,
)


class OnnxLyapunov:
    """A verified Lyapunov critic graph: `value(obs [O], action [A]) -> L(s, a)` as a float (batch 1, float32).

    Not thread-safe (it reuses its input buffers), like `OnnxPolicy`.
    """

    def __init__(self, session: ort.InferenceSession, obs_dim: int, act_dim: int, alpha3: float) -> None:
        """Wrap an already verified session; use `load_critic` to open one."""
        self.session = session
        self.alpha3 = alpha3
        """α₃ the critic was trained with (the manifest's `lyapunov.alpha3`)."""
        self._obs = np.zeros((1, obs_dim), dtype=np.float32)
        self._act = np.zeros((1, act_dim), dtype=np.float32)
        self._feeds = {INPUT_NAME: self._obs, LYAPUNOV_ACTION_NAME: self._act}

    def value(self, obs: npt.ArrayLike, action: npt.ArrayLike) -> float:
        """`L(obs, action)` for one raw observation `[O]` and one physical action `[A]` (or with a leading 1).

        A non-finite L is returned as it is: the monitor counts it as a failed tick.

        Raises:
            ValueError: a wrong shape or dtype, or a non-finite input.
            RuntimeError: onnxruntime failed.
        """
        for label, dst, src in (("observation", self._obs, obs), ("action", self._act, action)):
            arr = np.asarray(src)
            if arr.shape not in (dst.shape[1:], dst.shape):
                raise ValueError(f"Lyapunov critic {label} has shape {arr.shape}, expected {dst.shape[1:]}")
            if arr.dtype.kind not in "fiu":
                raise ValueError(f"Lyapunov critic {label} has dtype {arr.dtype}, expected a real number type")
            with np.errstate(over="ignore", invalid="ignore"):
                dst[...] = arr.reshape(dst.shape)
            if not np.isfinite(dst).all():
                raise ValueError(f"Lyapunov critic {label} is not finite: {dst[0].tolist()}")
        try:
            out = self.session.run([LYAPUNOV_OUTPUT_NAME], self._feeds)[0]
        except Exception as exc:  # onnxruntime's exception types do not derive from RuntimeError
            raise RuntimeError(f"onnxruntime inference of the Lyapunov critic failed: {exc}") from exc
        return float(out.reshape(-1)[0])


def check_lyapunov_record(session: ort.InferenceSession, manifest: Manifest) -> None:
    """Refuse a manifest whose `lyapunov` record (file, sha256, α₃) differs from the one in the hashed policy."""
    ours = None if manifest.lyapunov is None else manifest.lyapunov.record()
    theirs = _embedded_record(session, META_LYAPUNOV_KEY)
    if theirs is None:
        if ours is not None:
            raise BundleError(
                f"manifest declares a lyapunov critic but the policy carries no {META_LYAPUNOV_KEY!r} record {_EDITED}"
            )
        return
    if ours is None:
        raise BundleError(
            f"manifest has no lyapunov field but the policy was exported with a Lyapunov critic {_EDITED}"
        )
    diff = json_diff(ours, dict(theirs), "lyapunov", names=("manifest", "model"))
    if diff:
        raise BundleError(f"manifest lyapunov does not match the policy's record {_EDITED}: " + format_diff(diff))


def load_critic(root: Path, manifest: Manifest, policy_session: ort.InferenceSession) -> OnnxLyapunov | None:
    """The bundle's verified critic (None when the manifest declares none); BundleError naming the field otherwise."""
    check_lyapunov_record(policy_session, manifest)
    info = manifest.lyapunov
    if info is None:
        return None
    path = root / info.file
    fields = {"file_field": "lyapunov.file", "sha_field": "lyapunov.onnx_sha256"}
    model_bytes = read_pinned_model(path, info.onnx_sha256, what="Lyapunov critic file", **fields)
    session = open_checked_session(model_bytes, f"{path} (manifest lyapunov.file)")
    spec = manifest.policy_spec
    obs_dim, act_dim = spec.observation.dim, spec.action.dim
    problem = signature_problem(
        session,
        INPUT_NAME,
        (BATCH_DIM, obs_dim),
        LYAPUNOV_OUTPUT_NAME,
        (BATCH_DIM,),
        noise_name=LYAPUNOV_ACTION_NAME,
        noise_shape=(BATCH_DIM, act_dim),
        fields={
            "input": f"manifest lyapunov: obs [batch, observation dim {obs_dim}]",
            "noise": f"manifest lyapunov: action [batch, action dim {act_dim}]",
            "output": "manifest lyapunov: lyapunov [batch]",
        },
    )
    if problem is not None:
        raise BundleError(f"{path} (manifest lyapunov.file) does not match the policy spec: {problem}")
    return OnnxLyapunov(session, obs_dim, act_dim, float(info.alpha3))
