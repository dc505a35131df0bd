"""Readers of TensorFlow checkpoints (``checkpoint``: TF1 and TF2 tf.train bundles) and
SavedModels (``savedmodel``), by walking the bundle's SSTable (``sstable``, ``snappy``,
``crc32c``), the protobuf wire format (``wire``, ``proto`` messages) and the trackable object
graph (``objectgraph``, ``keras_slots``) that names each variable.

May import: the core, ``sources``, ``ckptdiff.readers`` base/safety and its own generated
``proto`` messages; protobuf, but never tensorflow or keras.
"""
