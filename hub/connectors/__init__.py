"""Declarative connectors: a spec file per provider, interpreted by this package."""
