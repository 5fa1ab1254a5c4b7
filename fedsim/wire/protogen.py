"""Regenerate the committed protobuf/gRPC code from protos/fedsim/v1/wire.proto.

    python -m fedsim.wire.protogen [--out DIR]

runs, from the repository root, exactly

    python -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. --grpc_python_out=. protos/fedsim/v1/wire.proto

with ``.`` replaced by DIR when given (tests/test_protos_fresh.py regenerates into a temp dir
and compares). Needs the dev extra (grpcio-tools).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO = "protos/fedsim/v1/wire.proto"
GENERATED = ("fedsim/v1/wire_pb2.py", "fedsim/v1/wire_pb2.pyi", "fedsim/v1/wire_pb2_grpc.py")


def command(out: str = ".") -> list[str]:
    return [sys.executable, "-m", "grpc_tools.protoc", "-I", "protos",
            f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", PROTO]


def regenerate(out: str | Path | None = None) -> None:
    """Run protoc from the repo root, writing into the repo (None) or into ``out``."""
    if not (REPO_ROOT / PROTO).is_file():
        raise SystemExit(f"{PROTO} not found under {REPO_ROOT}; run from a source checkout")
    target = "."
    if out is not None:
        out_dir = Path(out).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        target = str(out_dir)
    result = subprocess.run(command(target), cwd=REPO_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"protoc failed ({result.returncode}):\n{result.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fedsim.wire.protogen", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output root (default: the repo root, overwriting the committed files)")
    args = parser.parse_args(argv)
    regenerate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
