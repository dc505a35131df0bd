"""Regenerate the ``*_pb2.py``/``*_pb2.pyi`` modules beside this file from the ``.proto`` files.

Run from anywhere (needs the ``grpcio-tools`` package, whose bundled protoc is used)::

    python src/ckptdiff/readers/tf/proto/regen.py

which runs, from the repository's ``src`` folder::

    python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. \
        ckptdiff/readers/tf/proto/<name>.proto ...

and then removes the ``runtime_version`` check protoc writes into each module. That check refuses
every protobuf runtime older than the protoc that generated the code, while the generated code
only uses descriptor-builder APIs present since protobuf 3.20; ckptdiff supports protobuf >= 4.21.
The ``.pyi`` stubs get a ``# ruff: noqa`` line: they are generated, not written to the style guide.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
SRC_DIR = PROTO_DIR.parents[3]
PROTOS = ("tensor_bundle.proto", "trackable_object_graph.proto", "saved_model.proto")

# protoc's version gate: the import line and the call that follows it.
_VERSION_IMPORT = "from google.protobuf import runtime_version as _runtime_version\n"
_VERSION_CALL = re.compile(r"_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\)\n")
_RUFF_OFF = "# ruff: noqa\n"


def strip_version_gate(text: str) -> str:
    """``text`` of a generated module without protoc's runtime-version check."""
    return _VERSION_CALL.sub("", text.replace(_VERSION_IMPORT, ""))


def main() -> None:
    """Run protoc over every ``.proto`` here, then post-process the generated modules."""
    sources = [f"ckptdiff/readers/tf/proto/{name}" for name in PROTOS]
    command = [sys.executable, "-m", "grpc_tools.protoc", "-I", ".", "--python_out=.",
               "--pyi_out=.", *sources]
    subprocess.run(command, cwd=SRC_DIR, check=True)
    for name in PROTOS:
        module = PROTO_DIR / name.replace(".proto", "_pb2.py")
        module.write_text(strip_version_gate(module.read_text()))
        stub = module.with_suffix(".pyi")
        stub.write_text(_RUFF_OFF + stub.read_text().removeprefix(_RUFF_OFF))
        print(f"wrote {module.relative_to(SRC_DIR)} and {stub.name}")


if __name__ == "__main__":
    main()
