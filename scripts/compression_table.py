#!/usr/bin/env python3
"""Writes the compression section of docs/EXPERIMENTS.md (to stdout) from the runs of experiments/compression/run.sh.

    python3 scripts/compression_table.py runs/compression | python3 scripts/doc_sections.py docs/EXPERIMENTS.md compression

Reads OUT/seed-S/alpha-A/VARIANT/metrics.jsonl for every seed, α and variant found. For each α:
a summary table (final accuracy, its mean over the last 5 rounds, best and equal-time accuracy, as
mean ± standard deviation over seeds; bytes and virtual time per round); a time-to-target table (for each target accuracy, the first round at or
above it and the cumulative uplink bytes, total bytes and virtual time by then, means over the seeds
that reached it, with the virtual-time speed-up over uncompressed FedAvg and over uniform Top-K 1 %
with error feedback, the baseline the BCRS/OPWA paper compares against, as the geometric mean of
per-seed ratios); and the per-seed figures behind them. "Equal time" is, per seed, the virtual time
by which that seed's quickest run of that α finished all its rounds. Then the codec throughput table from
experiments/compression/codec-bench.json (scripts/codec_bench.py) and the commentary in
experiments/compression/notes.md (copied verbatim).
"""
import json
import math
import os
import statistics
import sys

VARIANTS = [
    ("dense", "FedAvg, uncompressed"),
    ("topk", "Top-K 1 %"),
    ("topk-ef", "Top-K 1 % + error feedback"),
    ("bcrs", "BCRS (+ EF)"),
    ("bcrs-opwa", "BCRS + OPWA (+ EF)"),
    ("qsgd", "QSGD s=8"),
    ("powersgd", "PowerSGD r=4 (+ EF)"),
]
TARGETS = {"0.5": [0.75, 0.80], "0.1": [0.65, 0.70]}


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def accuracies(rows):
    return [r["test_accuracy"] for r in rows if r.get("test_accuracy") is not None]


def reach(rows, target):
    """(round, uplink bytes, bytes up+down, virtual seconds) when accuracy first reaches target, or None."""
    up = down = 0
    for r in rows:
        up += r["bytes_up"]
        down += r["bytes_down"]
        acc = r.get("test_accuracy")
        if acc is not None and acc >= target:
            return r["round"], up, up + down, r["virtual_time_s"]
    return None


def accuracy_at(rows, seconds):
    """Test accuracy of the last evaluated round that ended by `seconds` of virtual time."""
    acc = None
    for r in rows:
        if r["virtual_time_s"] > seconds:
            break
        if r.get("test_accuracy") is not None:
            acc = r["test_accuracy"]
    return acc


def mean_sd(xs, digits=4):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{statistics.mean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


def mb(b):
    return f"{b / 1e6:,.1f}"


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def speedup(base, runs, target):
    """Geometric mean over seeds (where both reached `target`) of base time / run time, formatted."""
    ratios = []
    for seed, rows in runs.items():
        if seed not in base:
            continue
        b, r = reach(base[seed], target), reach(rows, target)
        if b and r:
            ratios.append(b[3] / r[3])
    g = geomean(ratios)
    return f"{g:.2f}" if g else "–"


def alpha_section(alpha, runs):
    """runs: variant -> seed -> rows."""
    targets = TARGETS.get(alpha, [0.7])
    seeds = sorted({s for by_seed in runs.values() for s in by_seed})
    rounds = max(len(rows) for by_seed in runs.values() for rows in by_seed.values())
    # Equal time, per seed (the seed also draws the devices): when that seed's quickest run ended.
    budget = {s: min(by_seed[s][-1]["virtual_time_s"] for by_seed in runs.values() if s in by_seed) for s in seeds}
    budgets = ", ".join(f"{budget[s]:,.0f}" for s in seeds)
    print(f"## Dirichlet α = {alpha} ({rounds} rounds, seeds {', '.join(map(str, seeds))})\n")
    print(f"| Method | runs | final acc | mean of last 5 | best acc | acc at equal time | uplink MB/round "
          "| downlink MB/round | mean round (virtual s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in VARIANTS:
        by_seed = runs.get(key)
        if not by_seed:
            continue
        all_rows = list(by_seed.values())
        final = [accuracies(r)[-1] for r in all_rows]
        last5 = [statistics.mean(accuracies(r)[-5:]) for r in all_rows]
        best = [max(accuracies(r)) for r in all_rows]
        at = [accuracy_at(r, budget[s]) for s, r in by_seed.items()]
        up = statistics.mean(sum(x["bytes_up"] for x in r) / len(r) for r in all_rows)
        down = statistics.mean(sum(x["bytes_down"] for x in r) / len(r) for r in all_rows)
        vt = statistics.mean(r[-1]["virtual_time_s"] / len(r) for r in all_rows)
        print(f"| {label} | {len(all_rows)} | {mean_sd(final)} | {mean_sd(last5)} | {mean_sd(best)} | {mean_sd(at)} | {mb(up)} | "
              f"{mb(down)} | {vt:.1f} |")
    print(f"\nEqual time: the accuracy each run had when its seed's quickest run finished all its rounds "
          f"({budgets} virtual s for seeds {', '.join(map(str, seeds))}).\n")

    print("Time to target: the first round at or above each target accuracy, with the cumulative uplink and")
    print("total (up + down) bytes and virtual time by then, averaged over the seeds that reached it (reached")
    print("counts them); × is the virtual-time speed-up, the geometric mean of per-seed ratios.\n")
    head = "| Method |"
    sep = "|---|"
    for t in targets:
        head += f" reached {t:.0%} | round | uplink MB | total MB | virtual s | × vs FedAvg | × vs Top-K+EF |"
        sep += "---:|---:|---:|---:|---:|---:|---:|"
    print(head)
    print(sep)
    base = runs.get("dense", {})
    topk = runs.get("topk-ef", {})
    for key, label in VARIANTS:
        by_seed = runs.get(key)
        if not by_seed:
            continue
        line = f"| {label} |"
        for t in targets:
            hits = [h for h in (reach(r, t) for r in by_seed.values()) if h]
            if not hits:
                line += f" 0/{len(by_seed)} | – | – | – | – | – | – |"
                continue
            fed = speedup(base, by_seed, t)
            vs_topk = speedup(topk, by_seed, t)
            line += (f" {len(hits)}/{len(by_seed)} | {statistics.mean(h[0] for h in hits):.1f} | "
                     f"{mb(statistics.mean(h[1] for h in hits))} | {mb(statistics.mean(h[2] for h in hits))} | "
                     f"{statistics.mean(h[3] for h in hits):,.0f} | {fed} | {vs_topk} |")
        print(line)
    print()

    hi = targets[-1]
    print(f"Per seed: final accuracy, and virtual seconds to {hi:.0%} (– where not reached in {rounds} rounds).\n")
    print("| Method | " + " | ".join(f"seed {s} final | seed {s} s to {hi:.0%}" for s in seeds) + " |")
    print("|---|" + "---:|---:|" * len(seeds))
    for key, label in VARIANTS:
        by_seed = runs.get(key)
        if not by_seed:
            continue
        cells = []
        for s in seeds:
            rows = by_seed.get(s)
            if rows is None:
                cells += ["", ""]
                continue
            h = reach(rows, hi)
            cells += [f"{accuracies(rows)[-1]:.4f}", f"{h[3]:,.0f}" if h else "–"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()

    if base:
        final_d, equal_d = [], []
        for key, label in VARIANTS[1:]:
            by_seed = runs.get(key)
            if not by_seed:
                continue
            common = [s for s in by_seed if s in base]
            if not common:
                continue
            f = statistics.mean(accuracies(by_seed[s])[-1] - accuracies(base[s])[-1] for s in common)
            final_d.append(f"{label} {100 * f:+.1f}")
            pairs = [(accuracy_at(by_seed[s], budget[s]), accuracy_at(base[s], budget[s])) for s in common]
            pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
            if pairs:
                equal_d.append(f"{label} {100 * statistics.mean(a - b for a, b in pairs):+.1f}")
        print(f"Final accuracy against uncompressed FedAvg, mean of per-seed differences in points: {'; '.join(final_d)}.")
        print(f"At equal virtual time, in points: {'; '.join(equal_d)}.\n")


def codec_table(path):
    """Markdown table of scripts/codec_bench.py's JSON output."""
    with open(path) as f:
        d = json.load(f)
    n = d["codecs"][0]["elements"]
    print("## Codec throughput\n")
    print("`scripts/codec_bench.py`: `fedswift bench codec` (median of 20 timed runs after 3 warm-ups), run")
    print(f"{d['repeats']} times in turn and the median kept; one thread, on {n:,} N(0, 1) floats (the `cnn`'s")
    print("size). Mfloat/s is millions of input elements per second. Sparse codecs decode to (index, value)")
    print("pairs without densifying, which is what their decode time measures.\n")
    print("| codec | payload bytes | × smaller | encode ms | encode Mfloat/s | decode ms | decode Mfloat/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in d["codecs"]:
        e, dd = r["encode_seconds"], r["decode_seconds"]
        print(f"| `{r['codec']}` | {r['payload_bytes']:,} | {4 * n / r['payload_bytes']:.1f} | {e * 1e3:.2f} | "
              f"{n / e / 1e6:,.0f} | {dd * 1e3:.2f} | {n / dd / 1e6:,.0f} |")
    t = d.get("topk_vs_torch")
    if t:
        print(f"\nTop-K 1 % (k = {t['k']:,}) beside `torch.topk(x.abs(), k)` (PyTorch {t['torch_version']}, one")
        print("thread, `benchmarks/torch_train_bench.py topk`), alternating in one run: FedSwift")
        print(f"{t['fedswift_seconds'] * 1e3:.2f} ms for the selection and the whole payload, torch.topk "
              f"{t['torch_seconds'] * 1e3:.2f} ms for the")
        print(f"selection alone: **{t['speedup']:.1f}× faster** (median of the per-pair ratios).\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "runs/compression"
    here = os.path.dirname(os.path.abspath(__file__))
    # data[alpha][variant][seed] = rows
    data = {}
    for sd in sorted(os.listdir(out)):
        if not sd.startswith("seed-"):
            continue
        seed = int(sd.split("-", 1)[1])
        for ad in os.listdir(os.path.join(out, sd)):
            if not ad.startswith("alpha-"):
                continue
            alpha = ad.split("-", 1)[1]
            for key, _ in VARIANTS:
                p = os.path.join(out, sd, ad, key, "metrics.jsonl")
                if os.path.exists(p):
                    data.setdefault(alpha, {}).setdefault(key, {})[seed] = load(p)
    print("# Compression experiments\n")
    print("Generated by `experiments/compression/run.sh` (which calls `scripts/compression_table.py`);")
    print("do not edit by hand. Setting (`experiments/compression/*.yaml`): FedAvg, Fashion-MNIST, the")
    print("`cnn` (1,663,370 parameters), 100 clients with Dirichlet label skew, 10 clients per round, 1")
    print("local epoch of SGD (batch 32, lr 0.02, momentum 0.9), the whole test set after every round.")
    print("Uplinks log-normal (median 10 Mbit/s, σ = 1) clamped to 1–100 Mbit/s, downlinks 4× faster,")
    print("20–200 ms latency, compute about one core of this machine. Only the uplink is compressed;")
    print("the downlink carries the dense float32 model. Bytes are real payload sizes; time is the")
    print("simulator's virtual clock (a round ends when its slowest client has downloaded, trained and")
    print("uploaded). The seed drives the partition, the devices, client selection, initialisation and")
    print("every stochastic codec.\n")
    for alpha in sorted(data, key=float, reverse=True):
        alpha_section(alpha, data[alpha])
    bench_path = os.path.join(here, "..", "experiments", "compression", "codec-bench.json")
    if os.path.exists(bench_path):
        codec_table(bench_path)
    notes_path = os.path.join(here, "..", "experiments", "compression", "notes.md")
    if os.path.exists(notes_path):
        with open(notes_path) as f:
            print(f.read().rstrip())


if __name__ == "__main__":
    main()
