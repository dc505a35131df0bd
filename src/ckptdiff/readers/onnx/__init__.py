"""The ONNX reader: a ``ModelProto``'s initializers, graph inputs/outputs and opsets, by walking
the protobuf wire format (``proto``: field by field, weight payloads skipped by their length) and
turning what it found into a manifest (``reader``).

May import: the core, ``sources``, ``ckptdiff.readers`` base/safety and the TF reader's wire-format
walker (``readers.tf.wire``); never onnx, torch or protobuf's generated ONNX classes.
"""
