"""Readers of Keras files: ``.h5``/``.hdf5`` (``h5``, ``legacy``), ``.weights.h5`` (``v3_h5``)
and ``.keras`` zips (``zip``), through h5py metadata only (``hdf5``) in a forked, capped child.

``names`` and ``saved_layers`` are the shared knowledge of how Keras names saved layers and
their variables; live Keras targets (``ckptdiff.targets.keras``) use them too, which is why
they live here, below the targets.

May import: the core, ``sources``, ``ckptdiff.readers`` base/safety/native_sandbox/zip_safety;
h5py inside functions only; never tensorflow or keras.
"""
