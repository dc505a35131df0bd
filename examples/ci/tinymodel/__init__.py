"""A tiny model package whose architecture the CI check guards."""
