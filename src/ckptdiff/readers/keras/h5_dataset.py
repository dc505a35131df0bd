"""What Keras gets when it reads one weight dataset of an HDF5 file, judged from its header.

Keras reads a weight through ``saving_lib.safe_get_h5_dataset`` and then ``np.array`` (Keras 3
``.weights.h5``, where a ``dtype`` attribute of ``"bfloat16"`` converts the values) or
``np.asarray`` (legacy ``.h5``). So the shape and dtype ckptdiff reports are numpy's reading of
the dataset, and a dataset those steps refuse is refused here with the reason (verified with
Keras 3.15 and h5py 3: a null dataspace, a shape bomb, a numpy array datatype, a ``bfloat16``
marker on values h5py cannot convert, a filter this HDF5 library lacks).
"""

from __future__ import annotations

import math
from typing import Any

from ckptdiff.dtypes import NUMPY_DTYPES
from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.keras.hdf5 import read_attribute

# saving_lib's guard against shape bombs: past 4 GiB declared, at most 1000 times what is stored.
BOMB_FLOOR_BYTES = 1 << 32
BOMB_MAX_EXPANSION = 1000
_OPTIONAL_FILTER = 0x0001  # H5Z_FLAG_OPTIONAL: HDF5 skips such a filter when it is missing

Facts = tuple[tuple[int, ...], str, int | None]


def dataset_facts(dataset: Any, path: str, where: str, bfloat16_marker: bool = True,
                  values_read: bool = True) -> Facts:
    """Shape, vocabulary dtype and stored byte size of the dataset at ``where``, as Keras reads
    it. ``bfloat16_marker``: the reader converts ``dtype="bfloat16"``-marked values (Keras 3's
    H5IOStore; the legacy loader does not). ``values_read``: the values go through numpy (not
    so for the optimizer slots of a legacy full model, which only ``safe_get_h5_dataset``)."""
    import h5py

    if dataset.shape is None:  # safe_get_h5_dataset's math.prod(None) raises
        raise CorruptFileError(f"{path}: {where} has a null dataspace (no shape at all), which "
                               "Keras cannot read")
    shape = tuple(int(d) for d in dataset.shape)
    numpy_dtype = dataset.dtype
    declared = math.prod(shape) * numpy_dtype.itemsize
    stored = dataset.id.get_storage_size()
    if declared > BOMB_FLOOR_BYTES and declared > BOMB_MAX_EXPANSION * stored:
        raise CorruptFileError(f"{path}: {where} declares {declared:,} bytes but stores "
                               f"{stored:,}: Keras refuses it as a potential shape bomb")
    if values_read:
        _check_filters(dataset, path, where)
    if bfloat16_marker and _marked_bfloat16(dataset, path, where):
        _check_bfloat16_storage(dataset, path, where)
        dtype = "bfloat16"
    elif numpy_dtype.kind in ("S", "U") or (
            numpy_dtype.kind == "O" and h5py.check_string_dtype(numpy_dtype) is not None):
        dtype = "string"
    elif numpy_dtype.subdtype is not None and values_read:
        raise CorruptFileError(f"{path}: {where} has the array datatype {numpy_dtype}, which "
                               "numpy cannot read into the dataset's shape")
    elif numpy_dtype.kind == "O" or numpy_dtype.names is not None:
        dtype = "other"  # references, variable-length numbers, compounds
    else:
        dtype = NUMPY_DTYPES.get(numpy_dtype.name, "other")
    size = None
    if numpy_dtype.kind != "O" and numpy_dtype.itemsize:
        size = numpy_dtype.itemsize * math.prod(shape)
    return shape, dtype, size


def _marked_bfloat16(dataset: Any, path: str, where: str) -> bool:
    """H5IOStore's test, ``attrs["dtype"] == "bfloat16"`` as a condition: a str (or a one-item
    str array) says so, bytes do not, and a longer array makes numpy refuse."""
    marker = read_attribute(dataset, "dtype", path)
    if marker is None:
        return False
    try:
        return bool(marker == "bfloat16")
    except (ValueError, TypeError):
        raise CorruptFileError(f"{path}: {where} has a 'dtype' attribute of several values, "
                               "which Keras cannot test for 'bfloat16'") from None


def _check_bfloat16_storage(dataset: Any, path: str, where: str) -> None:
    # h5py converts to ml_dtypes.bfloat16 (an untagged 2-byte opaque type) only from that type.
    import h5py

    stored = dataset.id.get_type()
    if (stored.get_class() != h5py.h5t.OPAQUE or stored.get_size() != 2
            or stored.get_tag() != b""):
        raise CorruptFileError(f"{path}: {where} is marked bfloat16 but stored as "
                               f"{dataset.dtype}, which h5py cannot convert to bfloat16")


def _check_filters(dataset: Any, path: str, where: str) -> None:
    import h5py

    plist = dataset.id.get_create_plist()
    for index in range(plist.get_nfilters()):
        code, flags, _, name = plist.get_filter(index)
        if not flags & _OPTIONAL_FILTER and not h5py.h5z.filter_avail(code):
            label = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            raise CorruptFileError(f"{path}: {where} is compressed with HDF5 filter {code} "
                                   f"({label or 'unnamed'}), which this HDF5 library lacks: "
                                   "its values cannot be read")
