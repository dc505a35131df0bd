"""Issue-17 benchmark: a 1 GiB ONNX model, TorchScript archive and torch.export ``.pt2``, each
listed by ``ckptdiff inspect --format json``, against ``python -c pass`` (goal: under 20×).

Builds (once, cached in bench/_work/, in a child process) the three files: 128 layers
alternating ``Linear(1024, 2048)`` and ``Linear(2048, 1024)`` (256 tensors, 1 GiB of float32)
scripted with ``torch.jit.script`` and exported with ``torch.export``; the ONNX model holds the
same 256 tensors as inline ``raw_data`` initializers, written field by field in the protobuf wire
format so that building it never holds 1 GiB in memory (onnx's own ``onnx.load`` then reads it as
the oracle check). Each ckptdiff run is timed beside what a user would run instead: ``onnx.load``
without external data, ``torch.jit.load``, ``torch.export.load``. Median of several runs after a
warm-up, whole processes, peak RSS from wait4.
Usage: python bench/bench_graph_formats.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from common import CKPTDIFF, WORK, Measure, measure, report, verdict

LAYERS = 128
FILES = {"onnx": WORK / "graph_1g.onnx", "torchscript": WORK / "graph_1g.ts.pt",
         "torch-export": WORK / "graph_1g.pt2"}
LOADER_NAMES = {"onnx": "onnx.load(load_external_data=False) + names",
                "torchscript": "torch.jit.load + state_dict() shapes",
                "torch-export": "torch.export.load + state_dict shapes"}
LOADERS = {
    "onnx": "import sys, onnx; m = onnx.load(sys.argv[1], load_external_data=False); "
            "print([(t.name, list(t.dims)) for t in m.graph.initializer][:1])",
    "torchscript": "import sys, torch; m = torch.jit.load(sys.argv[1]); "
                   "print([(k, tuple(v.shape)) for k, v in m.state_dict().items()][:1])",
    "torch-export": "import sys, torch; p = torch.export.load(sys.argv[1]); "
                    "print([(k, tuple(v.shape)) for k, v in p.state_dict.items()][:1])",
}


def _shapes() -> list[tuple[str, tuple[int, ...]]]:
    out: list[tuple[str, tuple[int, ...]]] = []
    for i in range(LAYERS):
        rows, cols = (2048, 1024) if i % 2 == 0 else (1024, 2048)
        out += [(f"{i}.weight", (rows, cols)), (f"{i}.bias", (rows,))]
    return out


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def write_onnx(path: Path) -> None:
    """The ONNX model, streamed: ModelProto header fields, then one graph of initializers."""
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "bench",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, producer_name="ckptdiff-bench")
    small_graph = model.graph.SerializeToString()
    model.ClearField("graph")
    heads = []
    for name, shape in _shapes():
        size = 4
        for dim in shape:
            size *= dim
        meta = b"".join(_varint(1 << 3) + _varint(d) for d in shape)  # dims, unpacked
        meta += _varint(2 << 3) + _varint(TensorProto.FLOAT) + _field(8, name.encode())
        tensor_head = meta + _varint(9 << 3 | 2) + _varint(size)  # raw_data: size bytes follow
        heads.append((_varint(5 << 3 | 2) + _varint(len(tensor_head) + size) + tensor_head, size))
    graph_size = len(small_graph) + sum(len(h) + s for h, s in heads)
    zeros = bytes(1 << 20)
    with open(path, "wb") as out:
        out.write(model.SerializeToString())
        out.write(_varint(7 << 3 | 2) + _varint(graph_size) + small_graph)
        for head, size in heads:
            out.write(head)
            for _ in range(size >> 20):
                out.write(zeros)
            out.write(bytes(size & ((1 << 20) - 1)))


def _build() -> None:
    import onnx
    import torch

    WORK.mkdir(exist_ok=True)
    layers = [torch.nn.Linear(*((1024, 2048) if i % 2 == 0 else (2048, 1024)), device="meta")
              for i in range(LAYERS)]
    model = torch.nn.Sequential(*layers).to_empty(device="cpu")
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.zero_()
    torch.jit.save(torch.jit.script(model), FILES["torchscript"])
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1024),)), FILES["torch-export"])
    write_onnx(FILES["onnx"])
    loaded = onnx.load(str(FILES["onnx"]), load_external_data=False)
    listed = [(t.name, tuple(t.dims)) for t in loaded.graph.initializer]
    assert listed == _shapes(), "the streamed ONNX model does not read back as written"


def build_fixtures() -> None:
    """Create the files unless they are cached (in a child, so no RSS is inherited)."""
    WORK.mkdir(exist_ok=True)
    if not all(p.exists() for p in FILES.values()):
        subprocess.run([sys.executable, __file__, "--build"], check=True)


def main() -> int:
    """Measure and print; exit status 1 when a goal is missed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        _build()
        return 0
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # measure as installed (bytecode cached)
    build_fixtures()
    python = measure("python -c pass", [sys.executable, "-c", "pass"], args.repeat)
    rows: list[Measure] = [python]
    ok = True
    for fmt, path in FILES.items():
        size = path.stat().st_size / 2**30
        ours = measure(f"ckptdiff inspect {path.name} --format json ({size:.2f} GiB)",
                       [CKPTDIFF, "inspect", str(path), "--format", "json"], args.repeat)
        theirs = measure(f"  {LOADER_NAMES[fmt]}", [
            sys.executable, "-c", LOADERS[fmt], str(path)], args.repeat)
        rows += [ours, theirs]
        ratio = ours.seconds / python.seconds
        ok &= verdict(fmt, ratio < 20, f"{ratio:.1f}x python -c pass (goal < 20x), "
                      f"{theirs.seconds / ours.seconds:.1f}x faster than the loader, "
                      f"{ours.peak_rss_mb:.1f} MB peak RSS")
    print(f"median of {args.repeat} runs each, whole processes, one machine, one run:")
    report(rows)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
