"""The anchor workload in a Flower simulation (flwr.simulation.run_simulation, Ray backend).

Every client trains the global model one epoch per round (FedAvg, all clients every round, weighted
by sample count); 1 CPU per client, so on 2 cores two clients train at once. Round time: from the
strategy's configure_fit to its aggregate_fit, as the server sees it.
Usage: python flower_sim.py --clients N --rounds R --data DIR   (prints one RESULT JSON line)
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time

import torch
from flwr.client import ClientApp, NumPyClient
from flwr.common import Context, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.simulation import run_simulation

import anchor_workload as w

DATA = os.environ.get("ANCHOR_DATA", "")
TIMES: dict[str, list[float]] = {"start": [], "end": []}
FINAL: dict = {}


class Client(NumPyClient):
    def __init__(self, index: int) -> None:
        self.x, self.y = w.load_client(w.client_files(DATA, index + 1)[index])
        self.net = w.Net()

    def fit(self, parameters, config):
        keys = list(self.net.state_dict())
        self.net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in zip(keys, parameters)})
        w.train_epoch(self.net, self.x, self.y)
        return [v.detach().cpu().numpy() for v in self.net.state_dict().values()], len(self.y), {}


class TimedFedAvg(FedAvg):
    def configure_fit(self, server_round, parameters, client_manager):
        TIMES["start"].append(time.perf_counter())
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round, results, failures):
        if failures:
            raise RuntimeError(f"round {server_round}: {len(failures)} client(s) failed: {failures[:1]}")
        out = super().aggregate_fit(server_round, results, failures)
        TIMES["end"].append(time.perf_counter())
        FINAL["params"] = out[0]
        return out


def main() -> None:
    global DATA
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--data", required=True)
    a = ap.parse_args()
    DATA = os.environ["ANCHOR_DATA"] = os.path.abspath(a.data)  # Ray's workers read it from the environment
    t_start = time.perf_counter()
    init = [v.numpy() for v in w.initial_model(DATA).state_dict().values()]
    keys = list(w.Net().state_dict())

    def client_fn(context: Context):
        return Client(int(context.node_config["partition-id"])).to_client()

    def server_fn(context: Context):
        strategy = TimedFedAvg(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=a.clients,
                               min_available_clients=a.clients, initial_parameters=ndarrays_to_parameters(init))
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=a.rounds))

    logging.getLogger("flwr").setLevel(logging.WARNING)
    run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=ClientApp(client_fn=client_fn),
                   num_supernodes=a.clients,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"runtime_env": {"env_vars": {"ANCHOR_DATA": DATA},
                                                                 "working_dir": os.path.dirname(os.path.abspath(__file__))}}})
    if len(TIMES["end"]) != a.rounds:
        raise SystemExit(f"Flower finished {len(TIMES['end'])} of {a.rounds} rounds")
    final = dict(zip(keys, (torch.from_numpy(v) for v in parameters_to_ndarrays(FINAL["params"]))))
    print("RESULT " + json.dumps({"round_s": [e - s for s, e in zip(TIMES["start"], TIMES["end"])],
                                  "setup_s": TIMES["start"][0] - t_start, "checksum": w.checksum(final)}), flush=True)


if __name__ == "__main__":
    main()
