"""What ``torch.load(weights_only=True)`` refuses that ckptdiff's own unpickler could read.

A file ``torch.load(weights_only=True)`` refuses must not read as a checkpoint that loads: ckptdiff
reads it (nothing in it is unsafe to ckptdiff's own unpickler) and lists what torch's
weights-only unpickler (``torch/_weights_only_unpickler.py``, torch 2.13) refuses in the
manifest's ``weights_only_refuses``, with a warning, as it does for numpy values. Three things
are mirrored here, each checked by a test against the installed torch:

- :data:`WEIGHTS_ONLY_OPCODES`: the opcodes torch's unpickler implements (what protocol 2 writes).
  Any other (``STACK_GLOBAL``, ``MEMOIZE``, ``FRAME``, ``NEXT_BUFFER`` … from protocols 3-5 as in
  ``torch.save(..., pickle_protocol=4)``, or the text opcodes of protocols 0-1) makes torch raise
  "Unsupported operand".
- :data:`TORCH_REFUSED_GLOBALS`: harmless names ckptdiff's allow-list knows but torch's does not
  (dtype aliases such as ``torch.half``, which ``torch.save`` never writes).
- :data:`TENSOR_DATA_ATTRIBUTES`: the data descriptors of ``torch.Tensor``. A tensor pickled with
  Python state (``_rebuild_parameter_with_state``, ``_rebuild_from_type_v2``) gets that state by
  ``setattr``; a key naming one of these (``data``, ``requires_grad`` …) changes the tensor itself,
  which ckptdiff does not evaluate, so it refuses the file instead of guessing.
"""

from __future__ import annotations

from ckptdiff.readers.pickle.opcodes import NAMES

WEIGHTS_ONLY_OPCODES = frozenset(
    code for code, name in NAMES.items() if name in (
        "GLOBAL", "NEWOBJ", "REDUCE", "BUILD", "APPEND", "APPENDS", "SETITEM", "SETITEMS",
        "MARK", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "NONE", "NEWFALSE", "NEWTRUE",
        "EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "BININT", "BININT1", "BININT2",
        "BINFLOAT", "BINUNICODE", "SHORT_BINSTRING", "BINPERSID", "BINGET", "LONG_BINGET",
        "BINPUT", "LONG_BINPUT", "LONG1", "PROTO", "STOP"))

TORCH_REFUSED_GLOBALS = frozenset(
    [("torch", name) for name in ("UntypedStorage", "cdouble", "cfloat", "chalf", "double",
                                  "float", "half", "int", "long", "short")]
    + [("torch.cuda", f"{name}Storage") for name in ("QInt32", "QInt8", "QUInt2x4", "QUInt4x2",
                                                      "QUInt8")]
    + [("torch.sparse", "BoolTensor"), ("torch.cuda.sparse", "BoolTensor")])

TENSOR_DATA_ATTRIBUTES = frozenset((
    "H", "T", "__class__", "__cuda_array_interface__", "__dict__", "__weakref__",
    "_backward_hooks", "_base", "_cdata", "_grad", "_grad_fn", "_has_symbolic_sizes_strides",
    "_post_accumulate_grad_hooks", "_python_dispatch", "_version", "data", "device", "dtype",
    "grad", "grad_dtype", "grad_fn", "imag", "is_cpu", "is_cuda", "is_ipu", "is_leaf", "is_maia",
    "is_meta", "is_mkldnn", "is_mps", "is_mtia", "is_nested", "is_quantized", "is_sparse",
    "is_sparse_csr", "is_vulkan", "is_xla", "is_xpu", "itemsize", "layout", "mH", "mT", "name",
    "nbytes", "ndim", "output_nr", "real", "requires_grad", "retains_grad", "shape", "volatile"))


def weights_only_refusals(opcodes: bytes, globals_named: frozenset[tuple[str, str]]) -> set[str]:
    """What torch's weights-only unpickler refuses in a pickle ckptdiff can read: refused globals
    by name, opcodes as ``pickle opcode NAME``. ``opcodes`` has a 1 for each opcode the pickle
    uses (a scan's ``opcodes``)."""
    refused = {f"{module}.{name}" for module, name in globals_named & TORCH_REFUSED_GLOBALS}
    refused.update(f"pickle opcode {NAMES[code]}" for code in NAMES
                   if opcodes[code] and code not in WEIGHTS_ONLY_OPCODES)
    return refused
