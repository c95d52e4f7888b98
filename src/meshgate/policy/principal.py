"""The principal functions policies may use: current_user, current_roles(), user_attribute(name).

In a policy they are replaced by the caller's values before anything runs, so a source never
sees them and never evaluates them as its own account's identity.
"""

from __future__ import annotations

from sqlglot import exp

from meshgate.errors import ConfigError
from meshgate.principal import Principal


def _principal_call(node: exp.Expr) -> str | None:
    if isinstance(node, exp.CurrentUser):
        return "current_user"
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("current_roles", "user_attribute"):
        return node.name.lower()
    return None


def _attribute_name(node: exp.Expr) -> str:
    arguments = node.expressions
    if len(arguments) != 1 or not (
        isinstance(arguments[0], exp.Literal) and arguments[0].is_string
    ):
        raise ConfigError(
            "user_attribute() takes one string literal, e.g. user_attribute('region')"
        )
    return str(arguments[0].this)


def bind_principal(expression: exp.Expr, principal: Principal) -> exp.Expr:
    """A copy of `expression` with the principal functions replaced by the caller's values."""

    def replace(node: exp.Expr) -> exp.Expr:
        call = _principal_call(node)
        if call == "current_user":
            return exp.Literal.string(principal.name)
        if call == "current_roles":
            roles = [exp.Literal.string(r) for r in sorted(principal.roles)]
            return exp.cast(exp.Array(expressions=roles), exp.DataType.build("VARCHAR[]"))
        if call == "user_attribute":
            value = principal.attributes.get(_attribute_name(node))
            if value is None:
                return exp.cast(exp.null(), exp.DataType.build("VARCHAR"))
            return exp.Literal.string(value)
        return node

    return expression.transform(replace, copy=True)


def describe_principal(expression: exp.Expr) -> exp.Expr:
    """A copy with typed NULLs for the principal functions, to type-check a policy."""
    return bind_principal(expression, Principal("", frozenset(), {}))
