"""fedsim vs a Flower simulation vs a plain single-process loop, on the identical workload.

Same data (per-client npz files made once from fedsim's synthmed), same initial weights (init.pt),
same arithmetic (SGD lr 0.01, batch 32, 1 epoch, batches in data order, FedAvg of all clients every
round), so the final global model's checksum (sum of all weights) agrees to 4 decimals across
frameworks: the frameworks ran the same work. Each framework runs in its own virtual environment
(`setup_venvs.sh`, called when one is missing) as a fresh process; repetitions are interleaved
(plain, flower, fedsim, plain, ...) so a change in machine load hits all of them alike; per run the
round time is the median of the rounds without the first and the last; the table gives the median
over repetitions and the ratio to the plain loop.

Usage: python benchmarks/anchors/run.py [--clients 8 32] [--rounds 6] [--reps 3] [--only plain fedsim]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# name -> (virtual environment, script, extra arguments). `plain` is the 1.00x: torch's default
# intra-op threads, as the loop is usually written; `plain-1t` the same loop on one thread (on a
# busy machine two spinning OpenMP threads can cost more than they bring).
SCRIPTS = {"plain": ("plain", "plain_loop.py", []), "plain-1t": ("plain", "plain_loop.py", ["--threads", "1"]),
           "flower": ("flower", "flower_sim.py", []), "fedsim": ("fedsim", "fedsim_run.py", [])}


def venv_python(name: str) -> str:
    return os.path.join(HERE, "venvs", name, "bin", "python")


def ensure_venvs(names: list[str]) -> None:
    if not all(os.path.exists(os.path.join(HERE, "venvs", n, ".done")) for n in names):
        subprocess.run(["bash", os.path.join(HERE, "setup_venvs.sh")], check=True)


def one(name: str, clients: int, rounds: int, data: str) -> dict:
    venv, script, extra = SCRIPTS[name]
    cmd = [venv_python(venv), os.path.join(HERE, script), "--clients", str(clients), "--rounds", str(rounds),
           "--data", data, *extra]
    env = {**os.environ, "PYTHONPATH": HERE, "RAY_AUTH_MODE": "disabled"}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        raise SystemExit(f"{name} with {clients} clients failed (exit {proc.returncode}):\n"
                         f"{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")
    return json.loads(line[0][len("RESULT "):])


def steady(times: list[float]) -> float:
    body = times[1:-1] if len(times) > 3 else times[1:]
    return statistics.median(body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", nargs="+", choices=list(SCRIPTS), default=list(SCRIPTS),
                    help="frameworks to run (the ratio column needs plain)")
    ap.add_argument("--data", default=os.path.join(HERE, "data"))
    a = ap.parse_args()
    ensure_venvs(sorted({SCRIPTS[n][0] for n in a.only} | {"fedsim"}))
    data = os.path.abspath(a.data)
    subprocess.run([venv_python("fedsim"), "-c", f"import anchor_workload as w; w.make_data({data!r}, {max(a.clients)})"],
                   check=True, cwd=HERE, env={**os.environ, "PYTHONPATH": HERE})
    print(f"load before: {' '.join(open('/proc/loadavg').read().split()[:3])}; {os.cpu_count()} CPUs", flush=True)
    results: dict[tuple[str, int], list[dict]] = {}
    for n in a.clients:
        for rep in range(a.reps):
            for name in a.only:
                r = one(name, n, a.rounds, data)
                results.setdefault((name, n), []).append(r)
                print(f"  {n:>3} clients rep {rep + 1}: {name:<6} {steady(r['round_s']):7.3f} s/round  "
                      f"checksum {r['checksum']:.6f}", flush=True)
    print(f"load after: {' '.join(open('/proc/loadavg').read().split()[:3])}\n")
    head = "| per round (median of medians) | " + " | ".join(f"{n} clients" for n in a.clients) + " |"
    print(head + "\n|---" * (len(a.clients) + 1) + "|")
    base = {n: statistics.median(steady(r["round_s"]) for r in results[("plain", n)]) for n in a.clients} \
        if "plain" in a.only else None
    for name in a.only:
        cells = []
        for n in a.clients:
            med = statistics.median(steady(r["round_s"]) for r in results[(name, n)])
            cells.append(f"{med:.3f} s ({med / base[n]:.2f}x)" if base else f"{med:.3f} s")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nfinal checksums (sum of all weights of the global model):")
    for n in a.clients:
        sums = {name: results[(name, n)][0]["checksum"] for name in a.only}
        agree = max(sums.values()) - min(sums.values()) < 5e-5
        print(f"  {n} clients: " + ", ".join(f"{k} {v:.6f}" for k, v in sums.items())
              + ("  (equal to 4 decimals)" if agree else "  (DIFFER)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
