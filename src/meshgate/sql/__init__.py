"""SQL front end: parse and gate client SQL (parse), and the function allow-list (functions)."""

from meshgate.query.model import Statement
from meshgate.sql.parse import parse_statement

__all__ = ["Statement", "parse_statement"]
