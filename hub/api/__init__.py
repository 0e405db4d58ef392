"""The management API under /api/v1."""
