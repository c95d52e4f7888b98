"""SQL front end: parse and gate client SQL (parse), and the function allow-list (functions)."""

from meshgate.sql.parse import Statement, parse_statement

__all__ = ["Statement", "parse_statement"]
