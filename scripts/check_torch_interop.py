#!/usr/bin/env python3
"""Verify FedSwift -> PyTorch interop: load a FedSwift-exported model into the reference PyTorch model
and compare its logits with the logits FedSwift computed.

Usage:
    /opt/fedswift-baseline/bin/python scripts/check_torch_interop.py MODEL.safetensors PREDICTIONS.safetensors \
        [--model cnn|mlp] [--bench-dir benchmarks] [--tol 1e-4]

MODEL.safetensors       state_dict exported by FedSwift (PyTorch names/layouts; loaded with strict=True).
                        cnn: conv1.weight [32,1,5,5], conv1.bias, conv2.weight [64,32,5,5], conv2.bias,
                             fc1.weight [512,3136], fc1.bias, fc2.weight [10,512], fc2.bias
                        mlp: net.1.weight [200,784], net.1.bias, net.3.weight [200,200], net.3.bias,
                             net.5.weight [10,200], net.5.bias
PREDICTIONS.safetensors "input" [N,1,28,28] and "logits" [N,10], both computed by FedSwift.

The torch model (eval mode, float32, 1 thread) is run on "input". Printed: max abs difference, the logit
scale (max |torch logit|, floored at 1), their ratio (relative difference) and argmax agreement.
Exit status: 0 if relative difference <= tol, 1 if it exceeds tol, 2 on load / shape errors.
"""
import argparse
import os
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="MODEL.safetensors (state_dict)")
    ap.add_argument("predictions", help="PREDICTIONS.safetensors with 'input' and 'logits'")
    ap.add_argument("--model", dest="arch", choices=["cnn", "mlp"], default="cnn")
    ap.add_argument("--bench-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"),
                    help="directory containing fmnist.py")
    ap.add_argument("--tol", type=float, default=1e-4, help="tolerance on max|diff| / logit scale")
    args = ap.parse_args(argv)

    sys.path.insert(0, args.bench_dir)
    import torch
    from fmnist import make_models, n_params
    from safetensors.torch import load_file

    torch.set_num_threads(1)
    CNN, MLP2NN = make_models()
    model = CNN() if args.arch == "cnn" else MLP2NN()

    sd = load_file(args.model)
    print(f"model file: {args.model} ({len(sd)} tensors)")
    for k, v in sd.items():
        print(f"  {k:20s} {str(v.dtype):15s} {list(v.shape)}")
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        print(f"ERROR: load_state_dict(strict=True) failed:\n{e}", file=sys.stderr)
        print("expected keys/shapes:", {k: list(v.shape) for k, v in model.state_dict().items()}, file=sys.stderr)
        return 2
    model = model.float().eval()
    print(f"loaded {args.arch}: {n_params(model)} parameters")

    preds = load_file(args.predictions)
    missing = {"input", "logits"} - set(preds)
    if missing:
        print(f"ERROR: {args.predictions} lacks {sorted(missing)} (has {sorted(preds)})", file=sys.stderr)
        return 2
    x, swift_logits = preds["input"].float(), preds["logits"].float()
    n = x.shape[0]
    if tuple(x.shape[1:]) != (1, 28, 28) or tuple(swift_logits.shape) != (n, 10):
        print(f"ERROR: expected input [N,1,28,28] and logits [N,10], got {list(x.shape)} and "
              f"{list(swift_logits.shape)}", file=sys.stderr)
        return 2

    with torch.no_grad():
        torch_logits = model(x)

    diff = (torch_logits - swift_logits).abs()
    max_abs = diff.max().item()
    scale = max(1.0, torch_logits.abs().max().item())
    rel = max_abs / scale
    worst = divmod(int(diff.argmax()), 10)
    agree = (torch_logits.argmax(1) == swift_logits.argmax(1)).float().mean().item()
    finite = bool(torch.isfinite(swift_logits).all())
    print(f"samples: {n}")
    print(f"max abs diff:        {max_abs:.3e}  (at sample {worst[0]}, class {worst[1]})")
    print(f"mean abs diff:       {diff.mean().item():.3e}")
    print(f"logit scale:         {scale:.4g}  (max |torch logit|, floored at 1)")
    print(f"relative diff:       {rel:.3e}  (tol {args.tol:g})")
    print(f"argmax agreement:    {agree * 100:.2f}%")
    ok = finite and rel <= args.tol
    print("PASS" if ok else "FAIL" + ("" if finite else " (non-finite FedSwift logits)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
