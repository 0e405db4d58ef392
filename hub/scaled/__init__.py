"""Scaled mode: Postgres + Redis, `hub serve` for the API and N `hub worker` processes (arq)."""
