"""Live Keras models as targets: the variables a model saves under the names Keras gives
them (``model``), captured without writing weights (``record``), and variables Keras never
saves (``unregistered``).

May import: the core, ``readers`` (``readers.keras.names``/``saved_layers``: how Keras names
saved layers), ``ckptdiff.targets.spec``; keras and tensorflow inside functions only.
"""
