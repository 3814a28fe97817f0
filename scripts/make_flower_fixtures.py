"""Writes Tests/FedFlowerTests/Fixtures/flower-objects.json: objects made by flwr 1.41.0 itself.

FedSwift's Flower object codec is tested against these: the .npy bytes numpy writes, the ids of
Array, ArrayChunk, ArrayRecord, ConfigRecord, MetricRecord, RecordDict and Message objects, and
the whole content of the small ones. Large arrays (across the 5 MiB chunk size) are described by
the rule that makes their values, so the fixture stays small.

    .venv-flower/bin/python scripts/make_flower_fixtures.py   # after scripts/flower-venv.sh
"""
import json
import os

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from flwr.app.message.message import make_message
from flwr.app.metadata import Metadata
from flwr.common.constant import FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "FedFlowerTests", "Fixtures",
                   "flower-objects.json")


def pattern(count, dtype):
    """The values of a large test array: i mod 251, minus 125, as `dtype`."""
    return ((np.arange(count, dtype=np.int64) % 251) - 125).astype(dtype)


def describe(name, array, small):
    a = Array(array)
    chunks = [cid for cid, _ in a.slice_array()]
    entry = {"name": name, "dtype": str(array.dtype), "shape": list(array.shape), "data_bytes": len(a.data),
             "array_id": a.object_id, "chunk_ids": chunks}
    if small:
        entry["npy_hex"] = a.data.hex()
        entry["array_content_hex"] = a.deflate().hex()
    return a, entry


def main():
    assert FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE == 5 * 1024 * 1024
    small = {
        "w32": np.array([[1.5, -2.25, 3.0], [0.0, -0.0, 1e-30]], dtype=np.float32),
        "w64": np.array([1.0, -2.0, 3.5, 1e300], dtype=np.float64),
        "i64": np.arange(-4, 4, dtype=np.int64).reshape(2, 2, 2),
        "scalar": np.array(7.0, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "zeros_a": np.zeros((3,), dtype=np.float32),
        "zeros_b": np.zeros((3,), dtype=np.float32),
    }
    entries = []
    arrays = {}
    for name, value in small.items():
        arrays[name], e = describe(name, value, True)
        entries.append(e)
    # Large arrays: their .npy data is 128 header bytes + elements. Sizes put the data just under,
    # exactly at, and just over one chunk, and over two (with identical chunks in one of them).
    chunk = FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE
    large = []
    for name, count, dtype in [
        ("under", (chunk - 128) // 4 - 1, np.float32),
        ("exact", (chunk - 128) // 4, np.float32),
        ("over", (chunk - 128) // 4 + 1, np.float32),
        ("two", (2 * chunk) // 8 + 3, np.float64),
    ]:
        value = pattern(count, dtype)
        _, e = describe(name, value, False)
        e["rule"] = "((i % 251) - 125) as dtype"
        large.append(e)
    repeated = np.zeros((3 * chunk) // 4, dtype=np.float32)  # identical middle chunks
    _, e = describe("repeated_zeros", repeated, False)
    e["rule"] = "zeros"
    large.append(e)

    record = ArrayRecord({k: arrays[k] for k in ["w32", "w64", "i64", "scalar", "empty", "zeros_a", "zeros_b"]})
    config = ConfigRecord({"lr": 0.05, "server-round": 3, "name": "fmnist \u00e9", "flag": True, "big": 2**63 + 5,
                           "list": [1.0, 2.5], "ints": [1, -2]})
    metrics = MetricRecord({"train_loss": 0.25, "num-examples": 1200})
    content = RecordDict({"arrays": record, "config": config, "metrics": metrics})
    md = Metadata(run_id=987654321, message_id="", src_node_id=1, dst_node_id=123456789, reply_to_message_id="",
                  group_id="3", created_at=1764820000.125, ttl=43200.0, message_type="train", src_task_id=42)
    message = make_message(metadata=md, content=content)
    objects = get_all_nested_objects(message)
    out = {
        "arrays": entries,
        "large_arrays": large,
        "array_record": {"id": record.object_id, "content_hex": record.deflate().hex()},
        "config_record": {"id": config.object_id, "content_hex": config.deflate().hex()},
        "metric_record": {"id": metrics.object_id, "content_hex": metrics.deflate().hex()},
        "record_dict": {"id": content.object_id, "content_hex": content.deflate().hex()},
        "message": {"id": message.object_id, "content_hex": message.deflate().hex(),
                    "metadata": {"run_id": md.run_id, "src_node_id": md.src_node_id, "dst_node_id": md.dst_node_id,
                                 "group_id": md.group_id, "ttl": md.ttl, "created_at": md.created_at,
                                 "message_type": md.message_type, "src_task_id": md.src_task_id}},
        "all_objects": {oid: obj.deflate().hex() for oid, obj in objects.items()},
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(objects)} message objects")


if __name__ == "__main__":
    main()
