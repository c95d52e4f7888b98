"""Parse and gate: turn client SQL into one read-only query tree, or refuse it.

This is the first stage of every query (ARCHITECTURE.md §2) and the place §4.5 is enforced: it
runs before anything touches a source, and it fails closed. A text passes only if it is exactly
one of the catalog commands in `parse_request` (which become queries over meshgate's own
catalog), or exactly one query (optionally under ``EXPLAIN``) whose every function call is on
the allow-list in :mod:`meshgate.sql.functions`, with no DDL, DML, session command or table
function anywhere in the tree, and no operator the later stages would silently drop
(TABLESAMPLE, PIVOT, ASOF JOIN).
meshgate's SQL dialect is DuckDB's.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from meshgate.errors import READ_ONLY, ForbiddenStatement, SqlSyntaxError, UnsupportedQuery
from meshgate.query.model import CatalogCommand, CatalogCommandKind, Statement
from meshgate.sql.duckdb_parser import function_names, parse_tree
from meshgate.sql.functions import (
    DIALECT_EQUIVALENTS,
    function_name,
    is_allowed_function,
    is_refused_for_safety,
)

DIALECT = "duckdb"
"""The dialect users write in (and the merge layer runs)."""

_FUNCTION_POLICY = (
    "meshgate runs only functions that compute on values; functions that read files, the "
    "network, system catalogs, settings or variables, or run SQL text are blocked"
)
_PRODUCTS_ONLY = "meshgate reads only data products: write FROM domain.product"
_UNPARSABLE = "syntax error: the statement could not be parsed"

# Statements that may never appear in a query tree, at the root or nested (a CTE with INSERT).
_STATEMENT_CLASSES: tuple[type[exp.Expr], ...] = (
    exp.DML,
    exp.DDL,
    exp.Command,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Copy,
    exp.Merge,
    exp.Pragma,
    exp.Set,
    exp.Use,
    exp.Attach,
    exp.Detach,
    exp.Install,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Describe,
    exp.Show,
    exp.Summarize,
    exp.Kill,
    exp.Analyze,
    exp.Grant,
    exp.Revoke,
    exp.Refresh,
    exp.Cache,
    exp.Uncache,
    exp.LoadData,
    exp.Export,
    exp.Comment,
    exp.Declare,
)

# Words that start a query, and words that start any other DuckDB statement.
_QUERY_KEYWORDS = frozenset({"SELECT", "WITH", "FROM", "VALUES", "("})
_STATEMENT_KEYWORDS = frozenset(
    {
        "ABORT", "ALTER", "ANALYZE", "ATTACH", "BEGIN", "CALL", "CHECKPOINT", "COMMENT",
        "COMMIT", "COPY", "CREATE", "DEALLOCATE", "DELETE", "DESCRIBE", "DETACH", "DROP",
        "END", "EXECUTE", "EXPLAIN", "EXPORT", "FORCE", "GRANT", "IMPORT", "INSERT", "INSTALL",
        "LOAD", "MERGE", "PIVOT", "PRAGMA", "PREPARE", "RESET", "REVOKE", "ROLLBACK", "SET",
        "SHOW", "START", "SUMMARIZE", "TRUNCATE", "UNPIVOT", "UPDATE", "USE", "VACUUM",
    }
)  # fmt: skip

# DuckDB's reserved keywords (duckdb_keywords(), category 'reserved'). sqlglot accepts some of
# them as bare table aliases (``FROM t ORDER`` parses as ``FROM t AS "ORDER"``), which DuckDB
# rejects; treating that as a syntax error keeps half-typed queries from running silently.
_RESERVED = frozenset(
    {
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both",
        "case", "cast", "check", "collate", "column", "constraint", "create", "default",
        "deferrable", "desc", "describe", "distinct", "do", "else", "end", "except", "false",
        "fetch", "for", "foreign", "from", "group", "having", "in", "initially", "intersect",
        "into", "lambda", "lateral", "leading", "limit", "not", "null", "offset", "on", "only",
        "or", "order", "pivot", "pivot_longer", "pivot_wider", "placing", "primary", "qualify",
        "references", "returning", "select", "show", "some", "summarize", "symmetric", "table",
        "then", "to", "trailing", "true", "union", "unique", "unpivot", "using", "variadic",
        "when", "where", "window", "with",
    }
)  # fmt: skip

# Characters that never occur in a product or CTE name but do in file paths, globs and URLs.
# DuckDB reads ``FROM 'data.csv'`` and ``FROM "s3://b/x.parquet"`` as files (replacement scans).
_PATH_CHARACTERS = frozenset("./\\:*?")


def parse_statement(sql: str, check: Callable[[exp.Expr], None] | None = None) -> Statement:
    """Parse ``sql`` as one read-only DuckDB query, or raise the error a user should see.

    Raises SqlSyntaxError (with line and column) for text that does not parse,
    ForbiddenStatement for anything but one read-only query using allowed functions, and
    UnsupportedQuery for read-only forms meshgate does not run (EXPLAIN ANALYZE, named
    parameters). `check`, when given, sees the tree as soon as it is parsed, before any
    recursive stage walks it (the front ends' size limits, `sql.input_limits`).
    """
    text, explain = _strip_explain(sql)
    tokens = _tokenize(text)
    _require_one_statement(tokens)
    _reject_lenient_token_runs(text, tokens)
    _reject_statement_keyword(tokens[0])
    tree = _parse(text, tokens[0])
    if check is not None:
        check(tree)
    query = _gate_root(text, tree, tokens[0])
    _gate_tree(query)
    _require_duckdb_syntax(text)
    count = _count_parameters(query)
    numbered = numbered_in_text_order(text, tokens)
    if numbered != text:  # the same query, each `?` now naming its position
        query = _gate_root(numbered, _parse(numbered, tokens[0]), tokens[0])
    _keep_literal_starts(query)
    return Statement(tree=query, explain=explain, parameter_count=count, sql=sql)


def _keep_literal_starts(tree: exp.Expr) -> None:
    """Drop the token positions the gate no longer needs, but a literal's or placeholder's
    start (the statement shapes find a literal's token by it, `query.literals` orders
    placeholders by it): every plan copies the statement's tree."""
    for node in tree.walk():
        meta = node._meta
        if not meta:
            continue
        start = meta.get("start") if isinstance(node, (exp.Literal, exp.Placeholder)) else None
        for key in _POSITIONS:
            meta.pop(key, None)
        if start is not None:
            meta["start"] = start
        elif not meta:
            node._meta = None


# The token positions sqlglot's parser leaves in each literal's and name's meta.
_POSITIONS = ("line", "col", "start", "end")


def forget_positions(tree: exp.Expr) -> exp.Expr:
    """`tree` (changed in place) without the parser's token positions in its nodes' meta.

    They serve the parse-time checks, the ordering of `?` and the statement shapes, which
    read the parsed statement; a copy made for planning never reads them, and every copy of
    a tree deep-copies each node's meta in Python.
    """
    for node in tree.walk():
        meta = node._meta
        if meta:
            for key in _POSITIONS:
                meta.pop(key, None)
            if not meta:
                node._meta = None
    return tree


def numbered_in_text_order(text: str, tokens: list[Token]) -> str:
    """`text` with its `?` placeholders as `$1, $2, ...` in the order they are written.

    sqlglot keeps no position on a placeholder and its tree order is not the text's (LIMIT
    comes before WHERE), so a text with several is parsed again numbered.
    `WHERE a = ? LIMIT ?` -> `WHERE a = $1 LIMIT $2`.
    """
    marks = [t for t in tokens if t.token_type == TokenType.PLACEHOLDER and t.text == "?"]
    if len(marks) < 2:
        return text
    for index, mark in reversed(list(enumerate(marks))):
        text = f"{text[: mark.start]}${index + 1}{text[mark.end + 1 :]}"
    return text


def parse_request(sql: str, check: Callable[[exp.Expr], None] | None = None
                  ) -> Statement | CatalogCommand:  # fmt: skip
    """What a client's text asks for: one of the catalog commands meshgate answers from its
    own catalog (DESCRIBE, SHOW TABLES, SHOW SCHEMAS, each in exactly the forms below), or
    one read-only query gated by `parse_statement`.

    Only front ends call this; product definitions and policy expressions are queries or
    nothing, and go through `parse_statement`.
    """
    text, explain = _strip_explain(sql)
    tokens = _tokenize(text)
    if not tokens or tokens[0].token_type not in _CATALOG_KEYWORDS:
        return parse_statement(sql, check)
    if explain:
        word = tokens[0].text.upper()
        raise ForbiddenStatement(
            f"EXPLAIN {word} is not supported: EXPLAIN shows a query's plan; run {word} itself"
        )
    _require_one_statement(tokens)
    body = tokens[1:]
    while body and body[-1].token_type == TokenType.SEMICOLON:
        body = body[:-1]
    word = tokens[0].text.upper()
    form = _describe_form(body) if tokens[0].token_type == TokenType.DESCRIBE else _show_form(body)
    if form is None:
        raise ForbiddenStatement(
            f"this form of {word} is not supported: meshgate answers {_CATALOG_FORMS}; "
            "for anything else query information_schema.tables, .columns or .schemata"
        )
    kind, name = form
    return CatalogCommand(kind, name, sql)


_CATALOG_KEYWORDS = (TokenType.DESCRIBE, TokenType.SHOW)
_CATALOG_FORMS = "DESCRIBE domain.product, SHOW TABLES [FROM domain] and SHOW SCHEMAS"
_NAME_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_Form = tuple[CatalogCommandKind, tuple[tuple[str, bool], ...]]


def _describe_form(body: list[Token]) -> _Form | None:
    """``DESCRIBE name``, with up to three name parts (catalog.schema.table)."""
    name = _name_parts(body, 3)
    return None if name is None else ("describe", name)


def _show_form(body: list[Token]) -> _Form | None:
    """``SHOW TABLES``, ``SHOW TABLES FROM schema`` (or catalog.schema), ``SHOW SCHEMAS``."""
    if not body or body[0].token_type != TokenType.VAR:
        return None
    word = body[0].text.upper()
    if word == "SCHEMAS" and len(body) == 1:
        return "show_schemas", ()
    if word != "TABLES":
        return None
    if len(body) == 1:
        return "show_tables", ()
    if body[1].token_type != TokenType.FROM:
        return None
    name = _name_parts(body[2:], 2)
    return None if name is None else ("show_tables", name)


def _name_parts(tokens: list[Token], most: int) -> tuple[tuple[str, bool], ...] | None:
    """``a.b.c`` as ((text, quoted), ...), or None for anything but 1..`most` dotted names.

    A part is a quoted identifier or a bare word (a keyword token spelt as its keyword, such
    as ``date``, counts: DuckDB accepts it); never a string, number or parameter. A reserved
    word may not lead, as in a FROM clause.
    """
    if not tokens or len(tokens) % 2 == 0 or len(tokens) > 2 * most - 1:
        return None
    parts: list[tuple[str, bool]] = []
    for index, token in enumerate(tokens):
        if index % 2:
            if token.token_type != TokenType.DOT:
                return None
        elif token.token_type == TokenType.IDENTIFIER:
            parts.append((token.text, True))
        elif (
            token.token_type.name in ("VAR", token.text.upper())
            and _NAME_WORD.fullmatch(token.text)
            and not (index == 0 and token.text.lower() in _RESERVED)
        ):
            parts.append((token.text, False))
        else:
            return None
    return tuple(parts)


def _tokenize(text: str) -> list[Token]:
    """Tokens of ``text`` in meshgate's dialect; an unterminated literal is a syntax error.

    sqlglot's tokenizer says only that it failed; DuckDB's parser names the literal that is not
    closed and where it opens, so its error is the one the user reads.
    """
    try:
        return list(DuckDB().tokenize(text))
    except TokenError:
        _require_duckdb_syntax(text)
        raise SqlSyntaxError(_UNPARSABLE) from None


def _position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column a user's editor shows for character ``offset`` of ``text``."""
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _strip_explain(sql: str) -> tuple[str, bool]:
    """Blank out a leading EXPLAIN keyword, keeping every other character where it was.

    sqlglot reads ``EXPLAIN ...`` as an opaque command, so the query under it would escape the
    gate; blanking the keyword (rather than slicing it off) keeps the line and column of any
    later syntax error pointing at the user's text.
    """
    tokens = _tokenize(sql)
    # A quoted "EXPLAIN" is a name, not the keyword: DuckDB refuses ``"EXPLAIN" SELECT 1``.
    if not tokens or tokens[0].token_type == TokenType.IDENTIFIER:
        return sql, False
    if tokens[0].text.upper() != "EXPLAIN":
        return sql, False
    keyword = tokens[0]
    rest = sql[: keyword.start] + " " * (keyword.end + 1 - keyword.start) + sql[keyword.end + 1 :]
    rest_tokens = _tokenize(rest)
    if not rest_tokens or rest_tokens[0].token_type == TokenType.SEMICOLON:
        raise SqlSyntaxError(
            "syntax error: EXPLAIN needs a query to explain", *_position(sql, keyword.start)
        )
    if rest_tokens[0].text.upper() in {"ANALYZE", "ANALYSE"}:
        raise UnsupportedQuery("EXPLAIN ANALYZE is not supported; use EXPLAIN to see the plan")
    return rest, True


def _require_one_statement(tokens: list[Token]) -> None:
    """Refuse empty text and text holding several statements (trailing semicolons are fine)."""
    statements = 0
    in_statement = False
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            in_statement = False
        elif not in_statement:
            in_statement = True
            statements += 1
    if statements == 0:
        raise SqlSyntaxError("empty statement: send one SQL query")
    if statements > 1:
        raise ForbiddenStatement(
            f"send one statement at a time: this text holds {statements} statements"
        )


# Tokens after which an empty SELECT list is certain (``SELECT FROM t``, ``... SELECT;``).
_AFTER_EMPTY_SELECT = frozenset(
    {
        TokenType.SEMICOLON, TokenType.FROM, TokenType.WHERE, TokenType.GROUP_BY,
        TokenType.HAVING, TokenType.ORDER_BY, TokenType.LIMIT, TokenType.UNION,
        TokenType.EXCEPT, TokenType.INTERSECT, TokenType.R_PAREN,
    }
)  # fmt: skip


def _reject_lenient_token_runs(text: str, tokens: list[Token]) -> None:
    """Token runs DuckDB rejects but sqlglot quietly repairs (``a,, b``; ``SELECT FROM t``).

    Running a repaired query would answer a question the user did not ask.
    """
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if (
            token.token_type == TokenType.COMMA
            and following is not None
            and following.token_type == TokenType.COMMA
        ):
            raise SqlSyntaxError(
                "syntax error near ',': unexpected token", *_position(text, following.start)
            )
        if token.token_type == TokenType.SELECT and (
            following is None or following.token_type in _AFTER_EMPTY_SELECT
        ):
            raise SqlSyntaxError(
                "syntax error near 'SELECT': the SELECT list is empty",
                *_position(text, token.start),
            )


def _reject_statement_keyword(first: Token) -> None:
    """Refuse a statement by its leading keyword before sqlglot sees it.

    Cheaper and clearer than parsing, and it keeps sqlglot from logging "falling back to
    Command" warnings (with the user's text) for CALL, LOAD, VACUUM and the like.
    """
    word = first.text.upper()
    if first.token_type != TokenType.IDENTIFIER and word in _STATEMENT_KEYWORDS - {
        "PIVOT",
        "UNPIVOT",
    }:
        raise ForbiddenStatement(f"{word} statements are not allowed: {READ_ONLY}")


def _parse(text: str, first: Token) -> exp.Expr:
    """The single tree sqlglot parses from ``text``, with its errors turned into ours.

    A statement that is not a query is refused as such even when sqlglot cannot parse it
    (``EXPORT DATABASE ...``), and a misspelt leading keyword is reported where it is, not
    at the token where sqlglot gave up.
    """
    try:
        trees = sqlglot.parse(text, read=DIALECT, error_level=ErrorLevel.RAISE)
    except ParseError as error:
        word = first.text.upper()
        if first.token_type != TokenType.IDENTIFIER and word in _STATEMENT_KEYWORDS:
            raise ForbiddenStatement(f"{word} statements are not allowed: {READ_ONLY}") from None
        if word not in _QUERY_KEYWORDS:
            raise _not_a_query(text, first) from None
        raise _syntax_error(text, error) from None
    except RecursionError:
        raise SqlSyntaxError("syntax error: the statement is nested too deeply") from None
    except SqlglotError:
        raise SqlSyntaxError(_UNPARSABLE) from None
    found = [tree for tree in trees if tree is not None and not isinstance(tree, exp.Semicolon)]
    if len(found) != 1:  # _require_one_statement counted one statement; fail closed regardless
        raise SqlSyntaxError(_UNPARSABLE)
    return found[0]


def _syntax_error(text: str, error: ParseError) -> SqlSyntaxError:
    """A short, position-carrying message from sqlglot's first parse error."""
    first = error.errors[0] if error.errors else {}
    highlight = str(first.get("highlight") or "")
    line, column = first.get("line"), first.get("col")
    if not (highlight and isinstance(line, int) and isinstance(column, int)):
        return SqlSyntaxError(_UNPARSABLE)
    # sqlglot reports where the offending token ends; users expect where it starts, which for
    # a string spanning lines is on an earlier line.
    end = sum(len(row) + 1 for row in text.split("\n")[: line - 1]) + column - 1
    description = _describe(str(first.get("description") or ""))
    return SqlSyntaxError(
        f"syntax error near {highlight[:40]!r}: {description}",
        *_position(text, end - len(highlight) + 1),
    )


def _describe(description: str) -> str:
    """sqlglot's error description without its internals (class paths, token reprs)."""
    if description.startswith("Required keyword:"):
        return "incomplete expression or clause"
    if description.startswith("Invalid expression / Unexpected token"):
        return "unexpected token"
    cleaned = re.sub(r"\s*but got <Token .*?>", "", description, flags=re.DOTALL)
    cleaned = re.sub(r"<class '(?:[\w]+\.)*(\w+)'>", r"\1", cleaned)
    cleaned = re.sub(r"^Expecting\b", "expected", cleaned)
    cleaned = cleaned.strip() or "invalid SQL"
    return (cleaned[0].lower() + cleaned[1:])[:200]


def _require_duckdb_syntax(text: str) -> None:
    """Ask DuckDB's own parser whether ``text`` is valid: sqlglot repairs what DuckDB rejects.

    sqlglot accepts ``SELECT , 1``, ``AS SELECT 1`` or ``FROM FROM t`` and builds a tree for a
    query the user never wrote; since meshgate's dialect is DuckDB's, DuckDB's parser is the
    authority on syntax. ``json_serialize_sql`` only parses (nothing is bound or run), on a
    private in-memory database with external access and extension loading switched off.
    """
    result = parse_tree(text)
    if not result.get("error") or result.get("error_type") != "parser":
        return
    message = str(result.get("error_message") or "syntax error")
    if not message.startswith("syntax error"):
        message = f"syntax error: {message}"
    position = result.get("position")
    if isinstance(position, str) and position.isdigit() and int(position) <= len(text):
        raise SqlSyntaxError(message, *_position(text, int(position)))
    raise SqlSyntaxError(message)


def _gate_root(text: str, tree: exp.Expr, first: Token) -> exp.Query:
    """The query at the root, or ForbiddenStatement naming what the statement is instead."""
    # Plain parentheses around the whole query carry no meaning; later stages get the query.
    while isinstance(tree, exp.Subquery) and [k for k, v in tree.args.items() if v] == ["this"]:
        tree = tree.this
    if isinstance(tree, exp.Values):
        # A bare VALUES list is a query; give later stages the same SELECT shape as any other.
        # DuckDB names the columns col0, col1, ... either way.
        # Its ORDER BY, LIMIT and OFFSET order and cut the query's rows, so they go outside.
        alias = exp.TableAlias(this=exp.to_identifier("values"))
        modifiers = {key: tree.args.get(key) for key in ("order", "limit", "offset")}
        for key in modifiers:
            tree.set(key, None)
        select = exp.select("*").from_(exp.Subquery(this=tree, alias=alias))
        for key, modifier in modifiers.items():
            select.set(key, modifier)
        return select
    if isinstance(tree, exp.Pivot):
        word = "UNPIVOT" if tree.args.get("unpivot") else "PIVOT"
        raise UnsupportedQuery(
            f"the {word} statement is not supported; write SELECT * FROM ... {word} (...) instead"
        )
    if isinstance(tree, exp.Query):
        return tree
    kind = _statement_kind(tree, first)
    if isinstance(tree, exp.Command) and kind in _QUERY_KEYWORDS:
        raise UnsupportedQuery(
            "meshgate could not read this query (sqlglot parsed it only as an opaque command); "
            "rewrite it with standard SELECT syntax"
        )
    if isinstance(tree, _STATEMENT_CLASSES) or kind in _STATEMENT_KEYWORDS:
        raise ForbiddenStatement(f"{kind} statements are not allowed: {READ_ONLY}")
    raise _not_a_query(text, first)


def _not_a_query(text: str, first: Token) -> SqlSyntaxError:
    """The error for text that starts with neither a query nor a known statement keyword."""
    return SqlSyntaxError(
        f"syntax error near {first.text[:40]!r}: expected a query "
        "(SELECT, WITH, FROM, VALUES or EXPLAIN)",
        *_position(text, first.start),
    )


def _statement_kind(tree: exp.Expr, first: Token) -> str:
    """What the user would call the statement: its leading keyword, e.g. DROP or PRAGMA."""
    if isinstance(tree, exp.Command):
        return tree.name.upper() or first.text.upper()
    word = first.text.upper()
    if word in {"WITH", "("}:
        return type(tree).__name__.upper()
    return word


def _gate_tree(query: exp.Query) -> None:
    """Walk every node: no statements, writes, locks, table functions or unlisted functions."""
    for node in query.walk():
        if isinstance(node, exp.Into):
            raise ForbiddenStatement(
                f"SELECT ... INTO is not allowed: it creates a table; {READ_ONLY}"
            )
        if isinstance(node, exp.Lock):
            raise ForbiddenStatement(
                f"SELECT ... FOR UPDATE/SHARE is not allowed: it takes locks; {READ_ONLY}"
            )
        if isinstance(node, _STATEMENT_CLASSES):
            kind = node.name.upper() if isinstance(node, exp.Command) else type(node).__name__
            raise ForbiddenStatement(f"{kind.upper()} inside a query is not allowed: {READ_ONLY}")
        if isinstance(node, exp.TableFromRows):
            raise ForbiddenStatement(f"table functions are not allowed in FROM: {_PRODUCTS_ONLY}")
        if isinstance(node, exp.Select) and not node.expressions:
            raise SqlSyntaxError("syntax error: a SELECT list is empty")
        if isinstance(node, exp.Join):
            _gate_join(node)
        if isinstance(node, exp.TableSample):
            raise UnsupportedQuery(
                "TABLESAMPLE (or USING SAMPLE) is not supported yet; "
                "take a sample with ORDER BY random() LIMIT n"
            )
        if isinstance(node, exp.Pivot):
            word = "UNPIVOT" if node.unpivot else "PIVOT"
            raise UnsupportedQuery(
                f"{word} is not supported yet; "
                + (
                    "write one SELECT per column and combine them with UNION ALL"
                    if node.unpivot
                    else "aggregate with GROUP BY and CASE or FILTER (WHERE ...) instead"
                )
            )
        if isinstance(node, exp.Table):
            _gate_table(node)
        elif isinstance(node, exp.Func):
            _gate_function(node)
        elif isinstance(node, exp.TableAlias):
            _gate_alias(node)
        elif isinstance(node, exp.Column) and isinstance(node.parts[0], exp.Identifier):
            # ``LIMIT BY`` or ``SELECT OFFSET FROM t`` would otherwise read a column "BY".
            _reject_reserved(node.parts[0])


# Join methods meshgate plans like any other join; ASOF and POSITIONAL ones it would turn into
# a filtered cross product, so they are refused until the planner keeps them.
_JOIN_METHODS = frozenset({"NATURAL"})
_JOIN_ARGS = frozenset({"this", "on", "side", "kind", "using", "method", "pivots"})


def _gate_join(join: exp.Join) -> None:
    """Refuse join forms the later stages would not keep, and JOIN without a condition."""
    method = str(join.args.get("method") or "").upper()
    if method and method not in _JOIN_METHODS:
        raise UnsupportedQuery(
            f"{method} JOIN is not supported yet; join on an explicit condition "
            "(and pick the nearest row with a window function such as row_number())"
        )
    extra = sorted(k for k, v in join.args.items() if v and k not in _JOIN_ARGS)
    if extra:
        raise UnsupportedQuery(
            f"this join form ({', '.join(extra)}) is not supported yet; "
            "write JOIN ... ON or JOIN ... USING"
        )
    if _lacks_condition(join):
        raise SqlSyntaxError(
            "syntax error: JOIN needs ON or USING (write CROSS JOIN for a cross product)"
        )


def _lacks_condition(join: exp.Join) -> bool:
    """An inner or outer JOIN without ON/USING, which sqlglot turns into a cross product.

    A comma join carries no ``pivots`` argument, an explicit ``JOIN`` does: that is the only
    trace the keyword leaves in the tree.
    """
    if join.args.get("on") or join.args.get("using") or join.args.get("method"):
        return False
    if join.kind == "CROSS":
        return False
    return bool(join.side or join.kind or "pivots" in join.args)


def _gate_function(node: exp.Func) -> None:
    """Refuse schema-qualified calls (possible user-defined functions) and unlisted ones."""
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        qualifier = parent.this.sql(dialect=DIALECT)
        raise ForbiddenStatement(
            f"function {qualifier}.{function_name(node)} is not allowed: call built-in "
            f"functions without a schema; {_FUNCTION_POLICY}"
        )
    if not is_allowed_function(node):
        name = function_name(node)
        if name not in function_names() and not is_refused_for_safety(name):
            raise ForbiddenStatement(_not_in_dialect(name))
        raise ForbiddenStatement(f"function {name} is not allowed: {_FUNCTION_POLICY}")


def _not_in_dialect(name: str) -> str:
    """The refusal of a function DuckDB does not know, naming its equivalent where one is."""
    equivalent = DIALECT_EQUIVALENTS.get(name)
    advice = (
        f"use {equivalent} instead" if equivalent is not None
        else "see DuckDB's function reference for what it offers"
    )  # fmt: skip
    return f"`{name}` is not a function of meshgate's SQL dialect (DuckDB's); {advice}"


def _gate_table(table: exp.Table) -> None:
    """A table reference must name a relation, never a function call or a file path."""
    target = table.this
    if isinstance(target, exp.Func):
        _gate_function(target)
        raise ForbiddenStatement(
            f"table function {function_name(target)} is not allowed in FROM: {_PRODUCTS_ONLY}"
        )
    for key in ("this", "db", "catalog"):
        part = table.args.get(key)
        if part is not None and not isinstance(part, exp.Identifier):
            raise ForbiddenStatement(
                f"a table must be named in the query text, not computed: {_PRODUCTS_ONLY}"
            )
    # Only the leading part is restricted: DuckDB accepts ``FROM d.order`` but not ``FROM order``.
    if table.parts and isinstance(table.parts[0], exp.Identifier):
        _reject_reserved(table.parts[0])
    for part in table.parts:
        if isinstance(part, exp.Identifier) and _PATH_CHARACTERS.intersection(part.name):
            raise ForbiddenStatement(
                f"table name {part.name!r} looks like a file path or URL: {_PRODUCTS_ONLY}"
            )


def _gate_alias(alias: exp.TableAlias) -> None:
    """A reserved keyword as a bare table alias is a typo sqlglot would otherwise accept."""
    if isinstance(alias.this, exp.Identifier):
        _reject_reserved(alias.this)


def _reject_reserved(name: exp.Identifier) -> None:
    """An unquoted reserved keyword as a bare name: DuckDB refuses it, so must we."""
    if not name.quoted and name.name.lower() in _RESERVED:
        meta = name.meta
        line, end = meta.get("line"), meta.get("col")
        column = end - len(name.name) + 1 if isinstance(end, int) else None
        raise SqlSyntaxError(
            f"syntax error near {name.name!r}: unexpected keyword",
            line if isinstance(line, int) else None,
            column,
        )


def _count_parameters(query: exp.Query) -> int:
    """How many values a client must bind: the ``?`` count, or the highest ``$n``."""
    positional = 0
    highest = 0
    for placeholder in query.find_all(exp.Placeholder):
        name = placeholder.this
        if name is None or name == "":
            positional += 1
        elif str(name).isdigit():
            if int(str(name)) == 0:
                raise SqlSyntaxError("syntax error near '$0': parameters are numbered from $1")
            highest = max(highest, int(str(name)))
        else:
            raise UnsupportedQuery(
                f"named parameter ${name} is not supported; use ? or $1, $2, ..."
            )
    if positional and highest:
        raise UnsupportedQuery("mixing ? and $n parameters is not supported; use one style")
    return positional or highest
