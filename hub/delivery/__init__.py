"""Delivery: claim due deliveries from the database, send them, record every attempt."""
