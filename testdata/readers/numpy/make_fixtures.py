"""Write the NumPy fixtures of the reader conformance suite with numpy itself.

Run from anywhere: ``.venv/bin/python testdata/readers/numpy/make_fixtures.py``; then
``.venv/bin/python tests/regen_golden.py`` and review the golden diffs. Values are fixed
(``arange``), so the files are reproducible (``savez`` stamps no times that the reader reads).

- ``weights.npy``: a C-order float32 matrix (format 1.0).
- ``fortran.npy``: a Fortran-order big-endian float64 array.
- ``arrays.npz``: ``numpy.savez`` of vocabulary dtypes, a scalar, an empty array, a bool mask,
  fixed-width strings and a structured array.
- ``compressed.npz``: ``numpy.savez_compressed`` of a few arrays (deflated members).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _arrays() -> dict[str, np.ndarray]:
    return {
        "encoder.weight": np.arange(12, dtype=np.float32).reshape(4, 3),
        "encoder.bias": np.arange(4, dtype=np.float16),
        "step": np.array(7, dtype=np.int64),
        "empty": np.zeros((0, 3), dtype=np.int8),
        "mask": np.array([[True, False], [False, True]]),
        "labels": np.array(["cat", "dog"]),
        "pairs": np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))]),
        "ids": np.arange(5, dtype=np.uint16),
    }


def main() -> None:
    """Write every fixture next to this script."""
    np.save(HERE / "weights.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    np.save(HERE / "fortran.npy", np.asfortranarray(np.arange(24, dtype=">f8").reshape(2, 3, 4)))
    np.savez(HERE / "arrays.npz", **_arrays())
    np.savez_compressed(HERE / "compressed.npz", weight=np.arange(600, dtype=np.float32),
                        bias=np.zeros(30, dtype=np.complex64))


if __name__ == "__main__":
    main()
