"""Live-model targets: turn a model (or a spec naming one) into the manifest of what it expects.

Framework modules are imported only inside the adapters, and only when a model needs them.
"""
