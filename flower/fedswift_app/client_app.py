"""The PyTorch ClientApp: what a Python SuperNode runs in a federation with FedSwift nodes.

It trains the FedAvg CNN (the PyTorch twin of FedSwift's `cnn`, same state_dict names and shapes)
with plain SGD on the node's own Fashion-MNIST files and evaluates on its test files, named by the
SuperNode's node config (`flower-supernode --node-config "images='…' labels='…' test-images='…'
test-labels='…'"`, the IDX files `fedswift flower-node --images/--labels` also reads). Its replies
carry the record and metric names FedSwift's node uses (ArrayRecord `arrays`, MetricRecord
`metrics` with train_loss / eval_loss, eval_acc and num-examples), so FedAvg aggregates both.
"""
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()
torch.set_num_threads(1)


class CNN(nn.Module):
    """The CNN of the FedAvg paper (McMahan et al. 2017) as FedSwift's ModelZoo.cnn builds it."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(7 * 7 * 64, 512)
        self.fc2 = nn.Linear(512, 10)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc2(self.relu(self.fc1(x)))


def read_idx(path):
    """An IDX file (gzipped or not) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


_DATA = {}


def process_start():
    """When this process started (Unix seconds), from /proc: a ClientApp runs in a new process per
    message under the SuperNode's default isolation, so this counts the start and the imports."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration):
        return float("nan")


def record_timing(context, kind, train_s):
    """Appends one line to the node config's `timing-file`, if it names one."""
    path = context.node_config.get("timing-file")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"type": kind, "train_s": train_s, "process_s": time.time() - process_start()}) + "\n")


def load(context, images_key, labels_key):
    """The node's images (scaled to [0, 1], as FedSwift's unit-range normalization) and labels."""
    key = (context.node_config[images_key], context.node_config[labels_key])
    if key not in _DATA:
        x = torch.from_numpy(read_idx(key[0]).astype(np.float32) / 255.0).unsqueeze(1)
        y = torch.from_numpy(read_idx(key[1]).astype(np.int64))
        _DATA[key] = (x, y)
    return _DATA[key]


@app.train()
def train(msg: Message, context: Context) -> Message:
    started = time.time()
    model = CNN()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict(), strict=True)
    config = msg.content["config"]
    lr, epochs, batch = float(config["lr"]), int(config["local-epochs"]), int(config["batch-size"])
    x, y = load(context, "images", "labels")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(int(config.get("server-round", 0)))
    model.train()
    total, steps = 0.0, 0
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch):
            idx = order[start:start + batch]
            optimizer.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item()
            steps += 1
    metrics = MetricRecord({"train_loss": total / max(steps, 1), "num-examples": len(y)})
    record_timing(context, "train", time.time() - started)
    return Message(content=RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}),
                   reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    model = CNN()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict(), strict=True)
    model.eval()
    x, y = load(context, "test-images", "test-labels")
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(y), 100):
            logits = model(x[start:start + 100])
            loss += loss_fn(logits, y[start:start + 100]).item()
            correct += (logits.argmax(1) == y[start:start + 100]).sum().item()
    metrics = MetricRecord({"eval_loss": loss / len(y), "eval_acc": correct / len(y), "num-examples": len(y)})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
