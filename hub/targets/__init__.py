"""Targets: one module per RSE / chat surface, each rendering the canonical Post."""
