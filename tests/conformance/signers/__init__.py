"""Signers, one per connector, written from each provider's documentation (see ../kit.py)."""
