"""Readers of NumPy arrays: one ``.npy`` (``npy``) and ``.npz`` archives of them (``npz``), by
their headers alone (``header``, numpy's own header rules; object arrays refused as unsafe).

May import: the core and ``ckptdiff.readers`` base/safety/zip_safety; never numpy (a reader
parses headers, it needs no array library), torch or tensorflow.
"""
