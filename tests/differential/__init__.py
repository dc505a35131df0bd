"""Differential fuzzing: each input is read by ckptdiff and by the framework's own loader, and
the two readings are compared (see :mod:`tests.differential.harness`)."""
