"""`robot-rl sign`: make an Ed25519 key pair, sign a verified bundle, or check a bundle's signature (no torch)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from robot_rl.export.errors import BundleError

USAGE = """robot-rl sign --generate-key KEY.pem             new key pair: KEY.pem (private, mode 0600) + KEY.pub.pem
       robot-rl sign --bundle DIR --key KEY.pem          verify DIR, then write DIR/signature.json
       robot-rl sign --bundle DIR --verify KEY.pub.pem   load DIR as a robot with trusted_keys would (exit 1 if refused)

Copy only KEY.pub.pem to the robot (policy node parameter trusted_keys); keep KEY.pem on the machine that signs.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robot-rl sign", usage=USAGE)
    p.add_argument(
        "--generate-key", metavar="KEY.pem", help="write a new private key here and its public key beside it"
    )
    p.add_argument("--bundle", metavar="DIR", help="the exported bundle directory to sign or check")
    p.add_argument("--key", metavar="KEY.pem", help="private key to sign with")
    p.add_argument("--verify", metavar="KEY.pub.pem", nargs="+", help="public key(s) to check the signature against")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run `robot-rl sign`; returns 0 on success, 1 when refused, 2 for bad arguments."""
    ns = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from robot_rl.export import signing  # after argparse: --help needs no cryptography

    if ns.generate_key:
        if ns.bundle or ns.key or ns.verify:
            print("robot-rl sign: --generate-key takes no other option", file=sys.stderr)
            return 2
        try:
            private, public, kid = signing.generate_key(ns.generate_key)
        except (FileExistsError, OSError) as exc:
            print(f"robot-rl sign: {exc}", file=sys.stderr)
            return 1
        print(f"wrote private key {private} (mode 0600; keep it off the robot)")
        print(f"wrote public key  {public} (key id {kid}; the robot's trusted_keys)")
        return 0
    if not ns.bundle or bool(ns.key) == bool(ns.verify):
        print(USAGE, file=sys.stderr)
        print("robot-rl sign: give --bundle with exactly one of --key or --verify", file=sys.stderr)
        return 2
    from robot_rl.export.runtime import OnnxPolicy

    try:
        if ns.verify:
            policy = OnnxPolicy.load(ns.bundle, trusted_keys=ns.verify)
            print(f"{ns.bundle}: ok, signed by key {policy.signer_key_id}, sha256 {policy.manifest.onnx_sha256}")
            return 0
        # A signature vouches for what the manifest says: never sign a bundle the robot would refuse anyway.
        policy = OnnxPolicy.load(ns.bundle)
        key = signing.load_private_key(ns.key)
        path = signing.sign_bundle(ns.bundle, ns.key)
    except (BundleError, ValueError, OSError) as exc:
        print(f"robot-rl sign: refused: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {path}: key {signing.key_id(key.public_key())} signs manifest.json "
        f"(model sha256 {policy.manifest.onnx_sha256})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
