#!/usr/bin/env python3
"""Encode/decode throughput of every codec on 1,663,370 floats, and Top-K 1 % beside torch.topk.

    python3 scripts/codec_bench.py [--fedswift .build/release/fedswift] [--torch-python PY] \
        [--repeats 3] > experiments/compression/codec-bench.json

Runs `fedswift bench codec --json` for each configuration below (each already the median of 20
timed runs after 3 warm-ups), `--repeats` times in turn, and keeps the median of the repeats.
Top-K 1 % and `torch_train_bench.py topk` (same size, same ratio, one thread) alternate in the
same loop, so both see the same machine load; the ratio is taken per pair and its median kept.
Prints one JSON object; scripts/compression_table.py turns it into the speed table of
docs/EXPERIMENTS.md. Without a PyTorch interpreter the torch rows are left out.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

ELEMENTS = 1_663_370
CONFIGS = [
    ("identity", []),
    ("fp16", []),
    ("bf16", []),
    ("topk", ["--ratio", "0.01"]),
    ("topk", ["--ratio", "0.01", "--param", "fp16values=1"]),
    ("topk", ["--ratio", "0.01", "--param", "approximate=1"]),
    ("topk", ["--ratio", "0.1"]),
    ("randomk", ["--ratio", "0.01"]),
    ("randomk", ["--ratio", "0.01", "--param", "unbiased=1"]),
    ("threshold", ["--param", "threshold=2.576"]),
    ("qsgd", ["--param", "s=8"]),
    ("qsgd", ["--param", "s=8", "--param", "elias=1"]),
    ("qsgd", ["--param", "s=256"]),
    ("terngrad", []),
    ("terngrad", ["--param", "bucket=512"]),
    ("signsgd", ["--param", "scaled=1"]),
    ("onebit", []),
    ("natural", []),
    ("stc", ["--ratio", "0.01"]),
    # 4057 x 410: a matrix view of the whole vector (the cnn's fc1.weight alone is 512 x 3136).
    ("powersgd", ["--param", "rank=4", "--rows", "4057"]),
    ("composite", ["--ratio", "0.01", "--param", "s=1"]),
    ("composite", ["--ratio", "0.01", "--param", "s=16"]),
    ("composite", ["--ratio", "0.01", "--param", "s=1", "--param", "deflate=1"]),
]


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def default_torch_python():
    venv = os.environ.get("FEDSWIFT_BASELINE_VENV", "/opt/fedswift-baseline")
    py = os.path.join(venv, "bin", "python")
    return py if os.path.exists(py) else None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--fedswift", default=os.path.join(here, "..", ".build", "release", "fedswift"))
    ap.add_argument("--torch-python", default=default_torch_python())
    ap.add_argument("--torch-bench", default=os.path.join(here, "..", "..", "shared", "bench", "torch_train_bench.py"))
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch_ok = a.torch_python and os.path.exists(a.torch_bench)

    samples = {i: [] for i in range(len(CONFIGS))}
    pairs = []
    torch_info = None
    for rep in range(a.repeats):
        for i, (codec, extra) in enumerate(CONFIGS):
            cmd = [a.fedswift, "bench", "codec", "--codec", codec, "--elements", str(ELEMENTS), "--json"] + extra
            r = run_json(cmd)
            samples[i].append(r)
            print(f"[{rep + 1}/{a.repeats}] {r['codec']}: encode {r['encode_seconds'] * 1e3:.2f} ms, "
                  f"decode {r['decode_seconds'] * 1e3:.2f} ms, {r['payload_bytes']} B", file=sys.stderr)
        if torch_ok:
            ours = run_json([a.fedswift, "bench", "codec", "--codec", "topk", "--ratio", "0.01",
                             "--elements", str(ELEMENTS), "--json"])
            theirs = run_json([a.torch_python, a.torch_bench, "topk", "--elements", str(ELEMENTS),
                               "--ratio", "0.01", "--threads", "1", "--json"])
            torch_info = theirs
            pairs.append((ours["encode_seconds"], theirs["seconds"]))
            print(f"[{rep + 1}/{a.repeats}] topk 1 %: fedswift {ours['encode_seconds'] * 1e3:.2f} ms, "
                  f"torch.topk {theirs['seconds'] * 1e3:.2f} ms", file=sys.stderr)

    rows = []
    for i in range(len(CONFIGS)):
        s = samples[i]
        rows.append({
            "codec": s[0]["codec"],
            "elements": ELEMENTS,
            "payload_bytes": s[0]["payload_bytes"],
            "encode_seconds": statistics.median(x["encode_seconds"] for x in s),
            "decode_seconds": statistics.median(x["decode_seconds"] for x in s),
        })
    result = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "repeats": a.repeats, "codecs": rows}
    if pairs:
        result["topk_vs_torch"] = {
            "torch_version": torch_info["version"],
            "k": torch_info["k"],
            "fedswift_seconds": statistics.median(p[0] for p in pairs),
            "torch_seconds": statistics.median(p[1] for p in pairs),
            "speedup": statistics.median(p[1] / p[0] for p in pairs),
            "pairs": pairs,
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
