"""meshgate: one Arrow Flight SQL endpoint over an organisation's data mesh."""

__version__ = "0.1.0"
