"""hub: verified business-tool webhooks become enterprise social network posts."""

__version__ = "0.1.0"
