"""Write the tiny ONNX fixtures of the reader conformance suite (needs torch, onnx, onnxscript).

Run from anywhere: ``python testdata/readers/onnx/make_fixtures.py``; then regenerate the goldens
with ``python tests/regen_golden.py`` and review them. Files stay a few KB.

- ``dynamo.onnx``: ``torch.onnx.export(dynamo=True)`` of a small Conv/BatchNorm/Linear model with a
  dynamic batch dimension (BatchNorm is folded into the Conv, a constant is named ``val_*``).
- ``legacy.onnx``: the same model through the TorchScript-based exporter (``dynamo=False``): the
  fused Conv weights are named ``onnx::Conv_*``.
- ``external/model.onnx`` (+ ``model.onnx.data``): the dynamo export re-saved by ``onnx`` with
  every initializer in external data.
- ``typed.onnx``: built with the ``onnx`` helper API: typed ``float_data``/``int64_data`` instead
  of ``raw_data``, float16, int4 (a sub-byte type), a string tensor and a sparse initializer.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from onnx import TensorProto, helper
from torch import nn

HERE = Path(__file__).resolve().parent


class Small(nn.Module):
    """Conv + BatchNorm + Linear with a persistent buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2, 3)
        self.register_buffer("scale", torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Conv, BatchNorm, global mean, Linear, scaled."""
        return self.fc(self.bn(self.conv(x)).mean((2, 3))) * self.scale


def small() -> Small:
    """The model, seeded, in eval mode (as exported for inference)."""
    torch.manual_seed(0)
    return Small().eval()


def export(path: Path, dynamo: bool) -> None:
    """Export ``small()`` with a dynamic batch dimension."""
    args = (torch.randn(2, 1, 5, 5),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            batch = torch.export.Dim("batch")
            torch.onnx.export(small(), args, path, dynamo=True, input_names=["x"],
                              output_names=["y"], dynamic_shapes={"x": {0: batch}})
        else:
            torch.onnx.export(small(), args, path, dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "batch"}})
    stray = path.with_name(path.name + ".data")
    if stray.exists() and stray.stat().st_size == 0:
        stray.unlink()  # the dynamo exporter leaves an empty external-data file


def typed() -> onnx.ModelProto:
    """A model whose initializers use the typed fields and unusual types."""
    inits = [
        helper.make_tensor("w.float_data", TensorProto.FLOAT, [2, 2], [1.0, 2.0, 3.0, 4.0]),
        helper.make_tensor("steps", TensorProto.INT64, [3], [1, 2, 3]),
        helper.make_tensor("half", TensorProto.FLOAT16, [2], [0.5, 1.5]),
        helper.make_tensor("nibbles", TensorProto.INT4, [3], [1, -2, 3]),
        helper.make_tensor("labels", TensorProto.STRING, [2], [b"cat", b"dog"]),
    ]
    sparse = helper.make_sparse_tensor(
        helper.make_tensor("sparse.values", TensorProto.FLOAT, [2], [5.0, 6.0]),
        helper.make_tensor("sparse.indices", TensorProto.INT64, [2], [1, 7]), [2, 4])
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w.float_data"], ["y"])], "typed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
        initializer=inits, sparse_initializer=[sparse])
    model = helper.make_model(graph, producer_name="ckptdiff-fixtures",
                              opset_imports=[helper.make_opsetid("", 21)])
    helper.set_model_props(model, {"author": "ckptdiff"})
    return model


def main() -> None:
    """Write every fixture next to this script."""
    export(HERE / "dynamo.onnx", dynamo=True)
    export(HERE / "legacy.onnx", dynamo=False)
    external = HERE / "external"
    external.mkdir(exist_ok=True)
    onnx.save_model(onnx.load(HERE / "dynamo.onnx"), external / "model.onnx",
                    save_as_external_data=True, location="model.onnx.data", size_threshold=0)
    onnx.save_model(typed(), HERE / "typed.onnx")
    for path in sorted(HERE.rglob("*.onnx*")):
        print(f"wrote {path.relative_to(HERE)} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
