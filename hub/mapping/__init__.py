"""Declarative mappings: a business event becomes one canonical Post."""
