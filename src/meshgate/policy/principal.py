"""The principal functions in policies: the same substitution as in queries, before anything runs.

A source never sees current_user, current_roles() or user_attribute(): it would evaluate them
as its own account.
"""

from __future__ import annotations

from sqlglot import exp

from meshgate.principal import Principal
from meshgate.sql.principal_functions import substitute_principal


def bind_principal(expression: exp.Expr, principal: Principal) -> exp.Expr:
    """A copy of `expression` with the principal functions replaced by the caller's values."""
    return substitute_principal(expression, principal)


def describe_principal(expression: exp.Expr) -> exp.Expr:
    """A copy with placeholder values for the principal functions, to type-check a policy."""
    return substitute_principal(expression, Principal("", frozenset(), {}))
