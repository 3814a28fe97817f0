"""Record, or check against, the numerics of every shipped experiment: the metrics of its first
rounds (wall-clock fields aside) and a SHA-256 of its final model.

  python3 scripts/numerics_reference.py record experiments/reference/numerics.json [--rounds 3]
  python3 scripts/numerics_reference.py check  experiments/reference/*.json [--only fedavg]

A refactor that must not change results checks against a reference recorded before it. The last
bits depend on the CPU and on the kernels' ISA, so the reference names the backend, its version,
its ISA and the CPU it came from: where they match, every field and the model must be
bit-identical; elsewhere the comparison is within TOLERANCES below, and the model hash is not
compared. `check` takes several references (one per machine they were recorded on) and uses the
one whose environment matches this machine's, else the first. Exit status: 0 if everything agrees, 1 if something differs, 2 on a usage or run error.
"""
import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEDSWIFT = os.path.join(ROOT, ".build", "release", "fedswift")
WALL_FIELDS = {"wall_time_s", "train_wall_s", "client_compute_s", "eval_wall_s"}
EXACT_FIELDS = {"round", "selected", "completed", "dropped", "skipped"}
# Across CPUs or ISAs: absolute for accuracy, relative for the rest.
TOLERANCES = {"test_accuracy": ("abs", 0.03), "default": ("rel", 0.05)}


def experiments(only=None):
    paths = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.yaml")))
    paths += sorted(glob.glob(os.path.join(ROOT, "experiments", "compression", "*.yaml")))
    return [e for e in (os.path.relpath(p, ROOT) for p in paths) if only is None or only in e]


def environment():
    out = subprocess.run([FEDSWIFT, "info", "--json"], check=True, capture_output=True, text=True).stdout
    info = json.loads(out)
    return {k: info[k] for k in ("backend", "version", "isa", "cpu")}


def run(experiment, rounds, out_root):
    name = experiment.replace("/", "_").removesuffix(".yaml")
    out = os.path.join(out_root, name)
    subprocess.run(["rm", "-rf", out], check=True)
    proc = subprocess.run(
        [FEDSWIFT, "simulate", os.path.join(ROOT, experiment), "--set", f"rounds={rounds}", "--out", out],
        capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(f"{experiment}: fedswift simulate failed:\n{proc.stderr}")
        sys.exit(2)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [{k: v for k, v in json.loads(line).items() if k not in WALL_FIELDS} for line in f if line.strip()]
    with open(os.path.join(out, "model.safetensors"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"rows": rows, "model_sha256": digest}


def differs(field, a, b, exact):
    if exact or field in EXACT_FIELDS or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a != b
    kind, bound = TOLERANCES.get(field, TOLERANCES["default"])
    if kind == "abs":
        return abs(a - b) > bound
    return abs(a - b) > bound * max(abs(a), abs(b), 1e-12)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["record", "check"])
    ap.add_argument("reference", nargs="+", help="reference file (record: exactly one)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds to record (record only)")
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "numerics"), help="run directories")
    ap.add_argument("--only", help="check only the experiments whose path contains this (check only)")
    args = ap.parse_args()
    if not os.access(FEDSWIFT, os.X_OK):
        sys.stderr.write(f"{FEDSWIFT} not found: run `make build` first\n")
        sys.exit(2)
    env = environment()
    if args.mode == "record" and len(args.reference) != 1:
        sys.stderr.write("record writes one reference file\n")
        sys.exit(2)
    if args.mode == "record":
        args.reference = args.reference[0]
        results = {}
        for e in experiments():
            print(f"recording {e} ({args.rounds} rounds)", flush=True)
            results[e] = run(e, args.rounds, args.out)
        os.makedirs(os.path.dirname(os.path.abspath(args.reference)), exist_ok=True)
        tmp = args.reference + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"environment": env, "rounds": args.rounds, "experiments": results}, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, args.reference)
        print(f"wrote {args.reference} ({env['backend']} {env['version']} {env['isa']}, {env['cpu']})")
        return
    refs = []
    for path in args.reference:
        try:
            with open(path) as f:
                ref = json.load(f)
            refs.append((path, ref["rounds"], ref["experiments"], ref["environment"]))
        except (OSError, ValueError, KeyError) as error:
            sys.stderr.write(f"{path}: not a numerics reference ({error})\n")
            sys.exit(2)
    same = lambda e: all(env[k] == e[k] for k in ("backend", "version", "isa", "cpu"))
    path, rounds, expected, ref_env = next((r for r in refs if same(r[3])), refs[0])
    print(f"reference {os.path.relpath(path, ROOT)}")
    exact = all(env[k] == ref_env[k] for k in ("backend", "version", "isa", "cpu"))
    print(("bit for bit" if exact else f"within tolerances {TOLERANCES}") +
          f": reference from {ref_env}, this machine {env}")
    failures = 0
    for e in experiments(args.only):
        if e not in expected:
            print(f"{e}: not in the reference (new experiment?)")
            failures += 1
            continue
        got = run(e, rounds, args.out)
        want = expected[e]
        problems = []
        if len(got["rows"]) != len(want["rows"]):
            problems.append(f"{len(got['rows'])} rows, reference {len(want['rows'])}")
        for r, (a, b) in enumerate(zip(got["rows"], want["rows"]), start=1):
            for field in sorted(set(a) | set(b)):
                if differs(field, a.get(field), b.get(field), exact):
                    problems.append(f"round {r} {field}: {a.get(field)!r}, reference {b.get(field)!r}")
        if exact and got["model_sha256"] != want["model_sha256"]:
            problems.append("final model differs")
        print(f"{e}: " + ("same" if not problems else "DIFFERS\n  " + "\n  ".join(problems[:10])), flush=True)
        failures += bool(problems)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
