"""Checks that FedFlower's Protos/flwr/proto/*.proto are wire-compatible with the installed flwr.

Every message of ours must exist in flwr's descriptors under the same full name, with the same
fields: name, number, type, label, message type, oneof and proto3 optional. (Flower's messages may
have fields ours leave out only if they are new; none are today.) Exit status 1 on a difference.

    .venv-flower/bin/python scripts/check_flower_protos.py
"""
import glob
import importlib
import os
import pkgutil
import subprocess
import sys
import tempfile

import flwr.proto
from google.protobuf import descriptor_pb2

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def flower_messages():
    """Every message of flwr's proto modules, by full name, as DescriptorProto."""
    out = {}
    for mod in pkgutil.iter_modules(flwr.proto.__path__):
        if not mod.name.endswith("_pb2"):
            continue
        fd = descriptor_pb2.FileDescriptorProto()
        importlib.import_module(f"flwr.proto.{mod.name}").DESCRIPTOR.CopyToProto(fd)
        for m in fd.message_type:
            collect(out, fd.package, m)
    return out


def collect(out, prefix, message):
    name = f"{prefix}.{message.name}"
    out[name] = message
    for nested in message.nested_type:
        collect(out, name, nested)


def ours():
    protos = sorted(glob.glob(os.path.join(ROOT, "Protos", "flwr", "proto", "*.proto")))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "set.pb")
        subprocess.run(["protoc", f"-I{os.path.join(ROOT, 'Protos')}", f"--descriptor_set_out={out}"]
                       + [os.path.relpath(p, os.path.join(ROOT, "Protos")) for p in protos], check=True)
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as f:
            fds.ParseFromString(f.read())
    messages = {}
    for fd in fds.file:
        for m in fd.message_type:
            collect(messages, fd.package, m)
    return messages


def signature(message, field):
    oneof = message.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else None
    return (field.number, field.type, field.label, field.type_name, oneof, field.proto3_optional)


def main():
    theirs = flower_messages()
    problems = []
    mine = ours()
    for name, message in sorted(mine.items()):
        if name not in theirs:
            problems.append(f"{name}: not a message of flwr")
            continue
        other = {f.name: f for f in theirs[name].field}
        for field in message.field:
            if field.name not in other:
                problems.append(f"{name}.{field.name}: flwr has no such field")
            elif signature(message, field) != signature(theirs[name], other[field.name]):
                problems.append(f"{name}.{field.name}: ours {signature(message, field)}, "
                                f"flwr {signature(theirs[name], other[field.name])}")
        missing = set(other) - {f.name for f in message.field}
        if missing:
            problems.append(f"{name}: flwr has fields ours lack: {sorted(missing)}")
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(mine)} messages of Protos/flwr checked against flwr's descriptors: "
          f"{'OK' if not problems else f'{len(problems)} differences'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
