"""Functions that ask who is calling, replaced by literals before anything runs.

``current_user``, ``current_roles()`` and ``user_attribute(name)`` describe the authenticated
principal, not whatever account the merge engine or a source runs as, so no engine may ever
evaluate them: the binder (for queries) and the policy layer (for row filters and masks) call
:func:`substitute_principal` first. A substituted value is an ordinary typed literal, so the
planner can push it to any source that renders literals.
"""

from __future__ import annotations

from typing import TypeVar

from sqlglot import exp

from meshgate.errors import UnsupportedQuery
from meshgate.principal import Principal

PRINCIPAL_FUNCTION_NAMES = frozenset({"current_roles", "user_attribute"})
"""Lower-case names of the principal functions sqlglot parses as ``exp.Anonymous``."""

_Tree = TypeVar("_Tree", bound=exp.Expr)

_VARCHAR = "VARCHAR"
_USAGE = (
    "user_attribute(name) takes the attribute's name as one string literal, "
    "e.g. user_attribute('region')"
)


def substitute_principal(tree: _Tree, principal: Principal) -> _Tree:
    """A copy of `tree` with every principal function replaced by the caller's value.

    ``current_user`` becomes the principal's name, ``current_roles()`` its role names as a
    sorted ``VARCHAR[]``, ``user_attribute('region')`` the attribute as ``VARCHAR`` (NULL when
    the principal has no such attribute). ``user_attribute`` with anything but one string
    literal raises UnsupportedQuery: a computed name would let a query enumerate attributes.

    Example: ``owner = current_user AND 'hr' = ANY(current_roles())`` for principal ``ann``
    with roles ``{hr}`` becomes ``owner = 'ann' AND 'hr' = ANY(CAST(['hr'] AS VARCHAR[]))``.
    """

    def replace(node: exp.Expr) -> exp.Expr:
        value = _value(node, principal)
        if value is None:
            return node
        if isinstance(node.parent, exp.Select) and node.arg_key == "expressions":
            # A bare projection keeps the function's name as its column name, as in DuckDB.
            return exp.alias_(value, _column_name(node), quoted=True)
        return value

    substituted = tree.transform(replace, copy=True)
    assert isinstance(substituted, type(tree))
    return substituted


def _value(node: exp.Expr, principal: Principal) -> exp.Expr | None:
    """The literal replacing `node`, or None when `node` is no principal function."""
    if isinstance(node, exp.CurrentUser):
        return exp.Literal.string(principal.name)
    if not isinstance(node, exp.Anonymous):
        return None
    name = node.name.lower()
    if name == "current_roles":
        if node.expressions:
            raise UnsupportedQuery("current_roles() takes no arguments")
        return _roles_literal(principal)
    if name == "user_attribute":
        return _attribute_literal(node, principal)
    return None


def _column_name(node: exp.Expr) -> str:
    if isinstance(node, exp.CurrentUser):
        return "current_user"
    assert isinstance(node, exp.Anonymous)
    arguments = ", ".join(a.sql("duckdb") for a in node.expressions)
    return f"{node.name.lower()}({arguments})"


def _roles_literal(principal: Principal) -> exp.Expr:
    roles = [exp.Literal.string(role) for role in sorted(principal.roles)]
    return exp.cast(exp.Array(expressions=roles), exp.DataType.build(f"{_VARCHAR}[]"))


def _attribute_literal(call: exp.Anonymous, principal: Principal) -> exp.Expr:
    arguments = call.expressions
    if len(arguments) != 1 or not isinstance(arguments[0], exp.Literal):
        raise UnsupportedQuery(_USAGE)
    if not arguments[0].is_string:
        raise UnsupportedQuery(_USAGE)
    value = principal.attributes.get(arguments[0].name)
    literal = exp.null() if value is None else exp.Literal.string(value)
    return exp.cast(literal, exp.DataType.build(_VARCHAR))
