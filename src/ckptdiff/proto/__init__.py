"""Generated protobuf modules for the TensorFlow structures ckptdiff reads (see README.md)."""
