"""Transport throughput: encode + send + decode end to end over a real gRPC pair on loopback.

    python benchmarks/transport.py [--sizes 1KB 16MB ...] [--repeat N] [--check]

For each payload size (one float32 tensor) it times, best of N, from the Payload to the
receiver's on_message having the decoded Message and the sender holding the Receipt, and
prints MB/s (payload bytes / 10^6 / seconds), wire_bytes/payload_bytes and frames, for
GrpcTransport and, for comparison, InprocTransport (same codec and receiver, no socket).
Targets: >= 800 MB/s for payloads >= 16 MB, wire/payload <= 1.01 for >= 1 MB (--check
exits 1 when a target is missed). Sizes are binary: 1MB = 2^20 bytes.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    import fedsim  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from fedsim.payload import Kind, Payload
from fedsim.wire.codec import encode
from fedsim.wire.grpc_transport import GrpcTransport
from fedsim.wire.inproc_transport import InprocTransport
from fedsim.wire.transport import Transport

DEFAULT_SIZES = ["1KB", "16KB", "256KB", "1MB", "4MB", "16MB", "64MB", "256MB"]
_UNITS = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "B": 1}


def parse_size(text: str) -> int:
    t = text.strip().upper()
    for unit in ("KB", "MB", "GB", "B"):
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * _UNITS[unit])
    return int(t)


def default_repeat(nbytes: int) -> int:
    # Small payloads are latency-bound and cheap: more samples; big ones: best of 3.
    return 20 if nbytes < (1 << 20) else 5 if nbytes < (16 << 20) else 3


def measure(sender: Transport, receiver: Transport, payload: Payload, repeat: int) -> tuple[float, int, int]:
    """Best end-to-end seconds, wire bytes and frames for one payload."""
    got = []
    receiver.register("bench", got.append)
    try:
        best, receipt = float("inf"), None
        for i in range(repeat):
            got.clear()
            start = time.perf_counter()
            frames = encode(payload, run_id="bench", round=i, src="src", dst="bench", tag="bench",
                            message_id=f"m{i}", lazy=True)  # as Node.send does
            receipt = sender.send(receiver.address, frames, timeout=120)
            best = min(best, time.perf_counter() - start)
            del frames
            if i == 0:  # check once that what arrived is what was sent
                assert torch.equal(got[0].payload.tensors["w"], payload.tensors["w"]), "payload corrupted"
        return best, receipt.wire_bytes, receipt.frames
    finally:
        got.clear()
        receiver.unregister("bench")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES, help="payload sizes, e.g. 1KB 16MB (binary units)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per size, best is reported (default 20/5/3 by size)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a throughput or overhead target is missed")
    args = parser.parse_args(argv)

    grpc_pair = GrpcTransport(), GrpcTransport()
    inproc_pair = InprocTransport(), InprocTransport()
    missed = []
    print(f"torch {torch.__version__}; MB/s = payload bytes / 1e6 / best seconds; sizes in binary units")
    print(f"{'size':>7} {'grpc MB/s':>10} {'grpc ms':>9} {'inproc MB/s':>12} {'inproc ms':>10} {'wire/payload':>13} {'frames':>7}")
    try:
        for text in args.sizes:
            nbytes = parse_size(text)
            payload = Payload(Kind.MODEL, {"w": torch.randn(nbytes // 4)})
            repeat = args.repeat or default_repeat(nbytes)
            g_s, g_wire, g_frames = measure(*grpc_pair, payload, repeat)
            i_s, i_wire, i_frames = measure(*inproc_pair, payload, repeat)
            assert (g_wire, g_frames) == (i_wire, i_frames), "grpc and inproc disagree on byte counts"
            real = payload.nbytes
            ratio = g_wire / real
            mbps = real / 1e6 / g_s
            print(f"{text:>7} {mbps:>10.0f} {g_s * 1e3:>9.2f} {real / 1e6 / i_s:>12.0f} {i_s * 1e3:>10.2f} "
                  f"{ratio:>13.5f} {g_frames:>7}", flush=True)
            if real >= 16 << 20 and mbps < 800:
                missed.append(f"{text}: {mbps:.0f} MB/s < 800")
            if real >= 1 << 20 and ratio > 1.01:
                missed.append(f"{text}: wire/payload {ratio:.4f} > 1.01")
            del payload
    finally:
        for t in (*grpc_pair, *inproc_pair):
            t.close()
    for line in missed:
        print(f"target missed: {line}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
