"""The ServerApp: Flower's own FedAvg (flwr.serverapp.strategy.FedAvg), unmodified.

It starts from the safetensors file `initial-model` (PyTorch state_dict names, float32), runs
`num-server-rounds` rounds in which every node trains (ConfigRecord lr, local-epochs, batch-size)
and then evaluates the new global model, and writes the final arrays to `final-model`
(safetensors) and the aggregated metrics of every round to `result-file` (JSON).
"""
import json
import os
import time

from flwr.app import Array, ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from safetensors.numpy import load_file, save_file

app = ServerApp()


def _write_atomically(path, write):
    tmp = f"{path}.tmp-{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    initial = load_file(cfg["initial-model"])
    arrays = ArrayRecord({name: Array(initial[name]) for name in initial})
    nodes = int(cfg["min-nodes"])
    strategy = FedAvg(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=nodes, min_evaluate_nodes=nodes,
                      min_available_nodes=nodes)
    started = time.time()
    result = strategy.start(
        grid=grid,
        initial_arrays=arrays,
        num_rounds=int(cfg["num-server-rounds"]),
        train_config=ConfigRecord({"lr": float(cfg["lr"]), "local-epochs": int(cfg["local-epochs"]),
                                   "batch-size": int(cfg["batch-size"])}),
    )
    final = {name: array.numpy() for name, array in result.arrays.items()}
    if cfg["final-model"]:
        _write_atomically(cfg["final-model"], lambda p: save_file(final, p, metadata={"format": "pt"}))
    if cfg["result-file"]:
        rounds = sorted(set(result.train_metrics_clientapp) | set(result.evaluate_metrics_clientapp))
        out = {
            "seconds": time.time() - started,
            "rounds": [
                {
                    "round": r,
                    "train": dict(result.train_metrics_clientapp.get(r, {})),
                    "evaluate": dict(result.evaluate_metrics_clientapp.get(r, {})),
                }
                for r in rounds
            ],
            "arrays": {name: [str(a.dtype), list(a.shape)] for name, a in final.items()},
        }

        def write(p):
            with open(p, "w") as f:
                json.dump(out, f, indent=1)

        _write_atomically(cfg["result-file"], write)
