"""The committed generated code must be what protoc makes of protos/fedsim/v1/wire.proto today."""
from __future__ import annotations

from pathlib import Path

import pytest

from fedsim.wire import protogen

pytest.importorskip("grpc_tools", reason="regenerating needs grpcio-tools (dev extra)")


def _lines(path: Path) -> list[str]:
    return [line.rstrip() for line in path.read_text().splitlines()]


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    assert protogen.main(["--out", str(tmp_path)]) == 0
    stale = [rel for rel in protogen.GENERATED
             if _lines(tmp_path / rel) != _lines(protogen.REPO_ROOT / rel)]
    assert not stale, f"{stale} differ from protoc output; run `python -m fedsim.wire.protogen` and commit"


def test_generated_grpc_module_imports_the_package_path() -> None:
    text = (protogen.REPO_ROOT / "fedsim/v1/wire_pb2_grpc.py").read_text()
    assert "from fedsim.v1 import wire_pb2" in text
