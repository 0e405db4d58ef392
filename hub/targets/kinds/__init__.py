"""One module per target kind; discovered by :mod:`hub.targets.registry`."""
