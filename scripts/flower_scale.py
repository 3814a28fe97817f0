"""Flower (Ray simulation engine) FedAvg on Fashion-MNIST: the scale variant of benchmarks/flower_sim.py.

Same code as flower_sim.py with the experiment made a parameter (clients, clients per round, model, lr) so that
FedSwift's experiments/fmnist-mlp-scale.yaml (1,000 clients, 100 per round, the 2NN, lr 0.05) can be run on Flower:

  $VENV/bin/python scripts/flower_scale.py --clients 1000 --per-round 100 --model mlp --lr 0.05 --budget-s 120 --json out.json

Original description follows.


Settings: 100 virtual clients (SuperNodes), label-skewed non-IID split Dirichlet(alpha=0.5) over classes
(numpy seed 0, every client >= 10 samples), 10 clients sampled per round by Flower's FedAvg
(fraction_train=0.1), 1 local epoch, batch 32, plain SGD lr 0.01; no client-side evaluation; the global
model is evaluated centrally on the 10,000 test images after every round.

Uses the Message API (flwr.app / flwr.clientapp.ClientApp / flwr.serverapp.ServerApp) and
flwr.serverapp.strategy.FedAvg. The server loop below is Strategy.start()'s loop (configure_train ->
grid.send_and_receive -> aggregate_train -> central evaluate) written out so the run can stop on a wall-time
budget instead of a fixed round count. Launched with flwr.simulation.run_simulation (Ray backend).

Usage: $VENV/bin/python flower_sim.py --budget-s 570 --json flower_sim.json
       [--client-cpus 1] [--client-threads 1] [--server-threads 2] [--eval-batch 100] [--max-rounds 1000]
"""
import argparse
import json
import os
import sys
import time

HERE = os.environ.get("FEDSWIFT_BENCH_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench")
HERE = os.path.abspath(HERE)
# Ray worker processes must be able to import fmnist.py.
os.environ["PYTHONPATH"] = HERE + (":" + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
sys.path.insert(0, HERE)

T_START = time.time()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402
from flwr.simulation import run_simulation  # noqa: E402

import fmnist  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--clients", type=int, default=100)
ap.add_argument("--per-round", type=int, default=10)
ap.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
ap.add_argument("--lr", type=float, default=0.01)
ap.add_argument("--budget-s", type=float, default=560.0, help="stop starting new rounds after this many s")
ap.add_argument("--max-rounds", type=int, default=1000)
ap.add_argument("--client-cpus", type=float, default=1.0, help="Ray num_cpus per client (actor)")
ap.add_argument("--client-threads", type=int, default=1, help="torch.set_num_threads inside a client")
ap.add_argument("--server-threads", type=int, default=2, help="torch threads for central evaluation")
ap.add_argument("--eval-batch", type=int, default=100, help="batch size of the central test-set evaluation")
ap.add_argument("--json", default=None)
ARGS = ap.parse_args()
os.environ["BASELINE_CLIENT_THREADS"] = str(ARGS.client_threads)
os.environ["BASELINE_MODEL"] = ARGS.model
NUM_CLIENTS, ALPHA, SEED = ARGS.clients, 0.5, 0
CLIENTS_PER_ROUND, BATCH, LR, LOCAL_EPOCHS = ARGS.per_round, 32, ARGS.lr, 1

# ---------------------------------------------------------------- client side (runs in Ray actors)
# Data + split are cached per actor process inside the importable fmnist module (functions defined in
# __main__ are pickled by value for every Ray call, so a cache here would be rebuilt on every call).


client_app = ClientApp()


@client_app.train()
def client_train(msg: Message, context: Context) -> Message:
    t0 = time.time()
    torch.set_num_threads(int(os.environ.get("BASELINE_CLIENT_THREADS", "1")))
    pid = int(context.node_config["partition-id"])
    x, y = fmnist.cached_client_data(pid, NUM_CLIENTS, ALPHA, SEED)
    model = fmnist.make_models()[0 if os.environ.get("BASELINE_MODEL", "cnn") == "cnn" else 1]()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    lossf = nn.CrossEntropyLoss()
    rnd = int(msg.content["config"]["server-round"])
    g = torch.Generator().manual_seed(rnd * 1000 + pid)
    tot, n = 0.0, 0
    t_train = time.time()
    for _ in range(LOCAL_EPOCHS):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), BATCH):
            b = perm[i : i + BATCH]
            opt.zero_grad()
            loss = lossf(model(x[b]), y[b])
            loss.backward()
            opt.step()
            tot += loss.item() * len(b)
            n += len(b)
    t_train = time.time() - t_train
    content = RecordDict({
        "arrays": ArrayRecord(model.state_dict()),
        "metrics": MetricRecord({"train_loss": tot / n, "num-examples": len(x),
                                 "client_train_s": t_train, "client_total_s": time.time() - t0,
                                 "actor_pid": os.getpid(), "actor_calls": fmnist._CLIENT_CACHE["loads"]}),
    })
    return Message(content=content, reply_to=msg)


# ---------------------------------------------------------------- server side (driver process)
server_app = ServerApp()
LOG = {"rounds": []}


@server_app.main()
def server_main(grid: Grid, context: Context) -> None:
    torch.set_num_threads(ARGS.server_threads)
    _xtr, _ytr, xte, yte = fmnist.load_fmnist()
    xte, yte = torch.from_numpy(xte), torch.from_numpy(yte)
    Model = fmnist.make_models()[0 if ARGS.model == "cnn" else 1]
    torch.manual_seed(SEED)
    gmodel = Model()

    @torch.no_grad()
    def central_eval(arrays):
        gmodel.load_state_dict(arrays.to_torch_state_dict())
        gmodel.eval()
        correct, loss = 0, 0.0
        eb = ARGS.eval_batch
        for i in range(0, len(xte), eb):
            out = gmodel(xte[i : i + eb])
            loss += nn.functional.cross_entropy(out, yte[i : i + eb], reduction="sum").item()
            correct += (out.argmax(1) == yte[i : i + eb]).sum().item()
        return correct / len(xte), loss / len(xte)

    strategy = FedAvg(fraction_train=CLIENTS_PER_ROUND / NUM_CLIENTS, fraction_evaluate=0.0,
                      min_train_nodes=CLIENTS_PER_ROUND, min_available_nodes=NUM_CLIENTS)
    arrays = ArrayRecord(gmodel.state_dict())
    acc0, loss0 = central_eval(arrays)
    LOG["initial"] = dict(acc=acc0, loss=loss0)
    LOG["t_first_round_start"] = time.time() - T_START
    print(f"[bench] setup done at {LOG['t_first_round_start']:.1f}s; initial acc {acc0:.4f}", flush=True)
    for rnd in range(1, ARGS.max_rounds + 1):
        t0 = time.time()
        replies = list(grid.send_and_receive(
            messages=strategy.configure_train(rnd, arrays, ConfigRecord(), grid), timeout=3600))
        t1 = time.time()
        agg_arrays, agg_metrics = strategy.aggregate_train(rnd, replies)
        if agg_arrays is None:
            raise RuntimeError(f"round {rnd}: aggregation failed ({len(replies)} replies)")
        arrays = agg_arrays
        t2 = time.time()
        acc, loss = central_eval(arrays)
        t3 = time.time()
        cm = [r.content["metrics"] for r in replies if r.has_content()]
        row = dict(round=rnd, round_s=t3 - t0, train_phase_s=t1 - t0, aggregate_s=t2 - t1, eval_s=t3 - t2,
                   test_acc=acc, test_loss=loss, replies=len(replies),
                   samples=int(sum(m["num-examples"] for m in cm)),
                   sum_client_train_s=float(sum(m["client_train_s"] for m in cm)),
                   train_loss=float(agg_metrics["train_loss"]) if agg_metrics else None,
                   actor_pids=sorted({int(m["actor_pid"]) for m in cm}),
                   max_actor_calls=int(max(m["actor_calls"] for m in cm)),
                   t_end=t3 - T_START)
        LOG["rounds"].append(row)
        print(f"[bench] round {rnd}: {row['round_s']:.2f}s (train phase {row['train_phase_s']:.2f}s, "
              f"agg {row['aggregate_s']*1e3:.0f}ms, eval {row['eval_s']:.2f}s) samples {row['samples']} "
              f"acc {acc:.4f} loss {loss:.4f}", flush=True)
        if time.time() - T_START > ARGS.budget_s:
            break


if __name__ == "__main__":
    backend_config = {"client_resources": {"num_cpus": ARGS.client_cpus, "num_gpus": 0.0}}
    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=NUM_CLIENTS,
                   backend_name="ray", backend_config=backend_config)
    wall = time.time() - T_START
    rs = LOG["rounds"]
    secs = [r["round_s"] for r in rs]
    summary = dict(
        flwr=__import__("flwr").__version__, ray=__import__("ray").__version__, torch=torch.__version__,
        numpy=np.__version__, args=vars(ARGS), num_rounds=len(rs),
        median_round_s=float(np.median(secs)) if secs else None,
        median_train_phase_s=float(np.median([r["train_phase_s"] for r in rs])) if rs else None,
        median_eval_s=float(np.median([r["eval_s"] for r in rs])) if rs else None,
        median_sum_client_train_s=float(np.median([r["sum_client_train_s"] for r in rs])) if rs else None,
        final_acc=rs[-1]["test_acc"] if rs else None, best_acc=max(r["test_acc"] for r in rs) if rs else None,
        wall_s_in_process=wall, **LOG)
    print(f"[bench] {len(rs)} rounds, median {summary['median_round_s']:.2f} s/round, final acc "
          f"{summary['final_acc']:.4f}, wall (in-process) {wall:.1f}s", flush=True)
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(summary, f, indent=1)
