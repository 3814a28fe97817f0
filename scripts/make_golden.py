#!/usr/bin/env python3
"""Generate golden forward/backward fixtures for the FedSwift test suite (FedNNTests).

Run from the repository root:

    /opt/fedswift-baseline/bin/python scripts/make_golden.py

Writes Tests/FedNNTests/Fixtures/golden.safetensors. Every tensor is F32 and every key is
prefixed with "<case>/". Integer data (class labels, booleans in hparams) is stored as float.
All layouts follow PyTorch: conv weight [out,in,kh,kw], linear weight [out,in], NCHW activations,
parameter names are the PyTorch state_dict names.

Determinism: float32, torch.set_num_threads(1), torch.use_deterministic_algorithms(True),
torch.manual_seed(0) at start-up; in addition every case re-seeds the global RNG with
torch.manual_seed(crc32(case_name)) so that adding / reordering cases never changes the data of the
others. Re-running the script gives a byte-identical file (for the same torch version).

Cases
-----
tinycnn
    conv1 Conv2d(1,4,5,p=2) -> ReLU -> MaxPool2d(2) -> conv2 Conv2d(4,8,5,p=2) -> ReLU -> MaxPool2d(2)
    -> flatten(1) (NCHW order: c, h, w) -> fc1 Linear(392,16) -> ReLU -> fc2 Linear(16,10).
    Default PyTorch init under torch.manual_seed(0). Input: first 3 Fashion-MNIST t10k images /255.
    Keys: param/<name>, input [3,1,28,28], labels [3] (float), logits [3,10],
    loss [1] (CrossEntropyLoss, mean), grad/<name> (d loss/d param), grad_input (d loss/d input).

Per-layer cases (linear, conv_s2p1, conv_s1p0, maxpool2, maxpool3s2, maxpool2_ties,
maxpool3s2_ties, avgpool2, batchnorm2d_train, batchnorm2d_eval, groupnorm, layernorm)
    Keys: input, param/<name> (if any), output, grad_output (random upstream gradient G),
    grad_input, grad/<name>: gradients of sum(output * G).
    batchnorm2d_train: module in train mode (momentum 0.1, eps 1e-5), running stats start at the
    PyTorch defaults (mean 0, var 1) and are NOT stored under param/; after the single forward,
    running_mean / running_var are stored as "<case>/running_mean", "<case>/running_var".
    PyTorch normalises with the biased batch variance but updates running_var with the
    UNBIASED one (n/(n-1) factor, n = N*H*W).
    batchnorm2d_eval: eval mode; param/ holds weight, bias, running_mean, running_var
    (num_batches_tracked is omitted everywhere).
    *_ties: same layers as maxpool2 / maxpool3s2 but with small-integer inputs so that windows
    contain equal maxima: PyTorch (CPU) routes the gradient to the FIRST maximum in row-major
    scan order of the window (strict '>' comparison); overlapping windows accumulate.

cross_entropy
    input = logits [5,10], labels [5] (float), output = mean CE loss [1], grad_input = d loss/d logits.
    Row 3 holds +100 / -100 logits with the label on the -100 class (loss ~200; exp(100)
    overflows float32, so a non-max-subtracted softmax fails). Row 4 has +100 on its label class.
mse
    input = prediction [4,3], target [4,3], output = MSELoss mean [1], grad_input.

Optimizer cases
---------------
    p0 [6], grad1..grad3 [6]; step k sets p.grad = grad_k then calls optimizer.step();
    p1, p2, p3 are the parameters after each step. Gradients are fixed data (not recomputed from p).
    hparams layout (F32 vector):
      SGD  cases (sgd_plain, sgd_momentum, sgd_nesterov_wd, sgd_dampening):
           [lr, momentum, dampening, weight_decay, nesterov(0/1)]
      Adam cases (adam, adam_wd, adamw):
           [lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay(0/1: 1 = AdamW)]
"""
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_PATH = os.path.join(REPO, "Tests", "FedNNTests", "Fixtures", "golden.safetensors")
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"

T = {}  # key -> tensor


def put(key, t):
    assert key not in T, key
    T[key] = t.detach().to(torch.float32).contiguous().clone()


def reseed(case):
    torch.manual_seed(zlib.crc32(case.encode()))


def read_idx(path):
    """Same minimal IDX reader as benchmarks/fmnist.py (kept local: no numpy-only deps)."""
    import gzip
    import struct

    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


# ----------------------------------------------------------------------------- tinycnn
class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 5, padding=2)
        self.conv2 = nn.Conv2d(4, 8, 5, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(7 * 7 * 8, 16)
        self.fc2 = nn.Linear(16, 10)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = x.flatten(1)
        return self.fc2(self.relu(self.fc1(x)))


def case_tinycnn():
    torch.manual_seed(0)
    model = TinyCNN()
    imgs = read_idx(f"{FMNIST_DIR}/t10k-images-idx3-ubyte.gz")[:3]
    labels = read_idx(f"{FMNIST_DIR}/t10k-labels-idx1-ubyte.gz")[:3]
    x = torch.from_numpy(imgs.astype(np.float32) / 255.0).reshape(3, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))
    for name, p in model.state_dict().items():
        put(f"tinycnn/param/{name}", p)
    x.requires_grad_(True)
    logits = model(x)
    loss = nn.CrossEntropyLoss()(logits, y)
    loss.backward()
    put("tinycnn/input", x)
    put("tinycnn/labels", y.float())
    put("tinycnn/logits", logits)
    put("tinycnn/loss", loss.reshape(1))
    for name, p in model.named_parameters():
        put(f"tinycnn/grad/{name}", p.grad)
    put("tinycnn/grad_input", x.grad)


# ----------------------------------------------------------------------------- per-layer
def randomize_norm(m):
    with torch.no_grad():
        if getattr(m, "weight", None) is not None:
            m.weight.copy_(1 + 0.1 * torch.randn_like(m.weight))
        if getattr(m, "bias", None) is not None:
            m.bias.copy_(0.1 * torch.randn_like(m.bias))


def layer_case(case, make_module, input_shape, train=True, make_input=None, setup=None, extra=None):
    reseed(case)
    m = make_module()
    if setup is not None:
        setup(m)
    m.train(train)
    state = {k: v.clone() for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
    x = make_input(input_shape) if make_input is not None else torch.randn(*input_shape)
    x.requires_grad_(True)
    out = m(x)
    g = torch.randn_like(out)
    out.backward(g)  # == gradients of sum(out * g)
    put(f"{case}/input", x)
    for name, v in state.items():
        if train and name.startswith("running_"):
            continue  # train-mode BN: initial running stats are the defaults (0 / 1), not stored
        put(f"{case}/param/{name}", v)
    put(f"{case}/output", out)
    put(f"{case}/grad_output", g)
    put(f"{case}/grad_input", x.grad)
    for name, p in m.named_parameters():
        put(f"{case}/grad/{name}", p.grad)
    if extra is not None:
        extra(case, m)
    return m, x, out


def bn_eval_setup(m):
    randomize_norm(m)
    with torch.no_grad():
        m.running_mean.copy_(0.5 * torch.randn_like(m.running_mean))
        m.running_var.copy_(0.5 + torch.rand_like(m.running_var))  # in [0.5, 1.5)


def bn_train_extra(case, m):
    put(f"{case}/running_mean", m.running_mean)
    put(f"{case}/running_var", m.running_var)


def small_ints(shape):
    return torch.randint(-2, 3, shape).float()


def cases_layers():
    layer_case("linear", lambda: nn.Linear(7, 5), (4, 7))
    layer_case("conv_s2p1", lambda: nn.Conv2d(3, 5, 3, stride=2, padding=1), (2, 3, 9, 9))
    layer_case("conv_s1p0", lambda: nn.Conv2d(2, 4, 3, stride=1, padding=0, bias=True), (2, 2, 6, 5))
    layer_case("maxpool2", lambda: nn.MaxPool2d(2), (2, 3, 6, 6))
    layer_case("maxpool3s2", lambda: nn.MaxPool2d(3, stride=2), (2, 2, 7, 7))
    layer_case("maxpool2_ties", lambda: nn.MaxPool2d(2), (2, 3, 6, 6), make_input=small_ints)
    layer_case("maxpool3s2_ties", lambda: nn.MaxPool2d(3, stride=2), (2, 2, 7, 7), make_input=small_ints)
    layer_case("avgpool2", lambda: nn.AvgPool2d(2), (2, 3, 6, 6))
    layer_case(
        "batchnorm2d_train",
        lambda: nn.BatchNorm2d(4, eps=1e-5, momentum=0.1),
        (3, 4, 5, 5),
        train=True,
        setup=randomize_norm,
        extra=bn_train_extra,
    )
    layer_case(
        "batchnorm2d_eval",
        lambda: nn.BatchNorm2d(4, eps=1e-5, momentum=0.1),
        (3, 4, 5, 5),
        train=False,
        setup=bn_eval_setup,
    )
    layer_case("groupnorm", lambda: nn.GroupNorm(2, 6), (3, 6, 4, 4), setup=randomize_norm)
    layer_case("layernorm", lambda: nn.LayerNorm(6), (4, 3, 6), setup=randomize_norm)


# ----------------------------------------------------------------------------- losses
def case_cross_entropy():
    case = "cross_entropy"
    reseed(case)
    logits = 2.0 * torch.randn(5, 10)
    labels = torch.randint(0, 10, (5,))
    labels[3], labels[4] = 7, 2
    logits[3, 1], logits[3, 7] = 100.0, -100.0  # label on the -100 class: loss ~200
    logits[4, 2], logits[4, 5] = 100.0, -100.0  # label on the +100 class: loss ~0
    logits.requires_grad_(True)
    loss = nn.CrossEntropyLoss()(logits, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    put(f"{case}/input", logits)
    put(f"{case}/labels", labels.float())
    put(f"{case}/output", loss.reshape(1))
    put(f"{case}/grad_input", logits.grad)


def case_mse():
    case = "mse"
    reseed(case)
    pred = torch.randn(4, 3, requires_grad=True)
    target = torch.randn(4, 3)
    loss = nn.MSELoss()(pred, target)
    loss.backward()
    put(f"{case}/input", pred)
    put(f"{case}/target", target)
    put(f"{case}/output", loss.reshape(1))
    put(f"{case}/grad_input", pred.grad)


# ----------------------------------------------------------------------------- optimizers
def optim_case(case, make_opt, hparams):
    reseed(case)
    p0 = torch.randn(6)
    grads = [torch.randn(6) for _ in range(3)]
    p = nn.Parameter(p0.clone())
    opt = make_opt([p])
    put(f"{case}/p0", p0)
    for k, g in enumerate(grads, start=1):
        p.grad = g.clone()
        opt.step()
        put(f"{case}/grad{k}", g)
        put(f"{case}/p{k}", p)
    put(f"{case}/hparams", torch.tensor(hparams, dtype=torch.float32))


def sgd_case(case, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    optim_case(
        case,
        lambda ps: torch.optim.SGD(
            ps, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
            foreach=False,
        ),
        [lr, momentum, dampening, weight_decay, float(nesterov)],
    )


def adam_case(case, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    optim_case(
        case,
        lambda ps: cls(ps, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False),
        [lr, betas[0], betas[1], eps, weight_decay, float(decoupled)],
    )


def cases_optim():
    sgd_case("sgd_plain", 0.1)
    sgd_case("sgd_momentum", 0.1, momentum=0.9)
    sgd_case("sgd_nesterov_wd", 0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    sgd_case("sgd_dampening", 0.1, momentum=0.9, dampening=0.5)
    adam_case("adam", 0.01)
    adam_case("adam_wd", 0.01, weight_decay=0.1)
    adam_case("adamw", 0.01, weight_decay=0.1, decoupled=True)


# ----------------------------------------------------------------------------- main
def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)

    case_tinycnn()
    cases_layers()
    case_cross_entropy()
    case_mse()
    cases_optim()

    for k, v in T.items():
        assert v.dtype == torch.float32 and torch.isfinite(v).all(), k

    # A single metadata key on purpose: safetensors serialises __metadata__ from a hash map, so with
    # several keys their order (and the file's bytes) changes from run to run. With one key the output
    # is byte-identical across runs. The hparams layouts are documented in this file's docstring.
    metadata = {"torch_version": torch.__version__}
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    save_file(dict(sorted(T.items())), OUT_PATH, metadata=metadata)

    size = os.path.getsize(OUT_PATH)
    print(f"wrote {OUT_PATH}: {len(T)} tensors, {size} bytes ({size / 1024:.1f} KiB), torch {torch.__version__}")
    for k in sorted(T):
        print(f"  {k:45s} {list(T[k].shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
