"""What the fuzz sends: generated SQL, mutated real queries, random Flight SQL messages.

SQL comes from hypothesis (token soups and nested expressions over the demo's real products,
so some of it binds and runs) and from byte and token mutations of real queries. Protobuf
payloads are random instances of every Flight SQL command and action message, then truncated,
corrupted, or wrapped under the wrong `Any` type URL. Everything is built from a seeded
`random.Random` or a seeded hypothesis run, so a run can be repeated.
"""

from __future__ import annotations

import random
import string
from typing import Any

from google.protobuf import any_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as pb

COLUMNS: dict[str, tuple[str, ...]] = {
    "sales.orders": ("order_id", "employee_id", "customer_id", "amount", "ts"),
    "sales.order_items": ("order_id", "line_no", "sku", "quantity", "unit_price"),
    "sales.customers": ("customer_id", "name", "email", "country", "signup_date", "is_vip"),
    "hr.employees": ("id", "name", "email", "ssn", "salary", "region", "manager_id",
                     "department_id", "hire_date", "is_active"),
    "hr.departments": ("id", "name", "region", "cost_center"),
    "finance.exchange_rates": ("rate_date", "currency", "rate_to_usd", "published_at"),
    "finance.budgets": ("budget_id", "department_id", "month", "amount", "currency",
                        "approved", "approved_at", "note"),
    "finance.revenue_by_region": ("region", "order_count", "revenue"),
}
PRODUCTS = tuple(COLUMNS)

REAL_QUERIES: tuple[str, ...] = (
    "SELECT count(*) AS n FROM sales.orders",
    "SELECT order_id, amount FROM sales.orders WHERE amount > 500 ORDER BY amount DESC LIMIT 10",
    "SELECT customer_id, sum(amount) AS total FROM sales.orders GROUP BY customer_id "
    "HAVING sum(amount) > 1000 ORDER BY total DESC LIMIT 5",
    "SELECT o.order_id, c.name FROM sales.orders o JOIN sales.customers c "
    "ON o.customer_id = c.customer_id WHERE c.country = 'DE' LIMIT 20",
    "SELECT e.name, d.name AS department FROM hr.employees e "
    "JOIN hr.departments d ON e.department_id = d.id WHERE e.region = 'EU'",
    "SELECT region, count(*) FROM hr.employees GROUP BY region",
    "SELECT * FROM finance.exchange_rates WHERE currency = 'EUR' ORDER BY rate_date LIMIT 7",
    "SELECT department_id, sum(amount) FROM finance.budgets WHERE approved GROUP BY 1",
    "SELECT region, revenue FROM finance.revenue_by_region ORDER BY revenue DESC",
    "SELECT sku, sum(quantity * unit_price) AS revenue FROM sales.order_items "
    "GROUP BY sku ORDER BY revenue DESC LIMIT 10",
    "WITH big AS (SELECT * FROM sales.orders WHERE amount > 900) "
    "SELECT count(*) FROM big",
    "SELECT o.order_id, e.name FROM sales.orders o JOIN hr.employees e "
    "ON o.employee_id = e.id WHERE o.amount BETWEEN 100 AND 200 LIMIT 15",
    "SELECT country, count(DISTINCT customer_id) FROM sales.customers GROUP BY country",
    "SELECT name FROM sales.customers WHERE name LIKE 'A%' AND is_vip",
    "SELECT order_id FROM sales.orders WHERE customer_id IS NULL LIMIT 3",
    "SELECT order_id, rank() OVER (PARTITION BY customer_id ORDER BY amount DESC) AS r "
    "FROM sales.orders LIMIT 50",
    "SELECT CAST(amount AS VARCHAR) || ' USD' FROM sales.orders LIMIT 4",
    "SELECT date_trunc('month', ts) AS month, sum(amount) FROM sales.orders GROUP BY 1 "
    "ORDER BY 1",
    "SELECT * FROM sales.orders WHERE order_id IN (1, 2, 3, 5, 8, 13)",
    "SELECT ssn, email, salary FROM hr.employees WHERE id = 7",
    "SELECT id FROM hr.employees WHERE manager_id IS NULL UNION ALL "
    "SELECT id FROM hr.departments",
    "SELECT a.id, b.id FROM hr.employees a JOIN hr.employees b ON a.manager_id = b.id LIMIT 9",
    "SELECT currency, max(rate_to_usd) - min(rate_to_usd) FROM finance.exchange_rates "
    "GROUP BY currency",
    "SELECT * FROM (SELECT order_id, amount FROM sales.orders ORDER BY order_id LIMIT 100) t "
    "WHERE amount < 50",
    "SELECT CASE WHEN amount > 500 THEN 'big' ELSE 'small' END AS size, count(*) "
    "FROM sales.orders GROUP BY 1",
    "SELECT coalesce(note, '-') FROM finance.budgets LIMIT 5",
    "SELECT count(*) FROM sales.order_items i WHERE EXISTS "
    "(SELECT 1 FROM sales.orders o WHERE o.order_id = i.order_id AND o.amount > 990)",
    "SELECT * FROM meshgate.products",
    "SELECT order_id FROM sales.orders WHERE ts >= TIMESTAMP '2024-01-01 00:00:00+00' LIMIT 5",
    "SELECT order_id FROM sales.orders WHERE amount > ? LIMIT 3",
    "SELECT upper(name), length(name) FROM hr.departments ORDER BY 2 DESC",
)

KEYWORDS = (
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "ORDER", "HAVING", "LIMIT", "OFFSET", "JOIN",
    "LEFT", "RIGHT", "FULL", "CROSS", "INNER", "OUTER", "LATERAL", "ON", "USING", "UNION",
    "ALL", "INTERSECT", "EXCEPT", "WITH", "RECURSIVE", "AS", "CASE", "WHEN", "THEN", "ELSE",
    "END", "AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "BETWEEN", "EXISTS",
    "DISTINCT", "CAST", "TRY_CAST", "OVER", "PARTITION", "WINDOW", "ROWS", "RANGE", "VALUES",
    "QUALIFY", "FILTER", "ASC", "DESC", "NULLS", "FIRST", "LAST", "INTERVAL", "DATE",
    "TIMESTAMP", "TRUE", "FALSE", "ANY", "SOME", "ARRAY", "STRUCT", "MAP", "PIVOT", "UNPIVOT",
    "INSERT", "INTO", "UPDATE", "DELETE", "DROP", "CREATE", "TABLE", "COPY", "ATTACH",
    "PRAGMA", "SET", "INSTALL", "LOAD", "EXPLAIN", "DESCRIBE", "SHOW", "CALL", "EXPORT",
)
FUNCTIONS = (
    "count", "sum", "avg", "min", "max", "coalesce", "nullif", "substr", "upper", "lower",
    "length", "abs", "round", "date_trunc", "extract", "concat", "regexp_matches", "list",
    "read_csv", "read_parquet", "glob", "getenv", "current_setting", "user_attribute",
    "query", "query_table", "duckdb_settings", "pg_sleep", "random", "now", "md5", "hash",
)
OPERATORS = (
    "+", "-", "*", "/", "%", "||", "=", "==", "<>", "!=", "<", ">", "<=", ">=", "::", ",",
    ".", ";", "(", ")", "[", "]", "{", "}", "->", "->>", "?", "$1", ":name", "@", "#", "~",
    "^", "&", "|", "<<", ">>", "'", '"', "--", "/*", "*/", "\\",
)
WEIRD = ("\x00", "\u202e", "\ufeff", "\u00a0", "é", "\U0001d518", "😀", "\t", "\r\n", "\x1b[31m",
         "%s", "%n", "${x}", "{{x}}")


def _identifiers() -> st.SearchStrategy[str]:
    columns = sorted({c for cols in COLUMNS.values() for c in cols})
    qualified = [f"{p}.{c}" for p, cols in COLUMNS.items() for c in cols]
    return st.one_of(
        st.sampled_from(PRODUCTS),
        st.sampled_from(columns),
        st.sampled_from(qualified),
        st.sampled_from(("sales", "hr", "finance", "meshgate", "information_schema",
                         "pg_catalog", "main", "sales_db", "customer_master", "demo")),
        st.text(string.ascii_letters + "_", min_size=1, max_size=12),
        st.text(min_size=0, max_size=12).map(lambda name: '"' + name.replace('"', '""') + '"'),
    )


def _literals() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers().map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(max_size=20).map(lambda text: "'" + text.replace("'", "''") + "'"),
        st.sampled_from(("NULL", "TRUE", "FALSE", "DATE '2024-02-30'", "'2024-01-01'::DATE",
                         "INTERVAL '1' DAY", "99999999999999999999999999999999999999",
                         "1e308", "-0", "X'00ff'", "[1, 2]", "{'a': 1}")),
    )


def _token() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(KEYWORDS), st.sampled_from(FUNCTIONS), st.sampled_from(OPERATORS),
        st.sampled_from(WEIRD), _identifiers(), _literals(),
    )


def _expression(max_leaves: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(_identifiers(), _literals())

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, st.sampled_from((*OPERATORS[:17], "AND", "OR", "LIKE", "IN")),
                      inner).map(" ".join),
            inner.map(lambda e: f"({e})"),
            inner.map(lambda e: f"NOT {e}"),
            st.tuples(st.sampled_from(FUNCTIONS), st.lists(inner, max_size=3)).map(
                lambda f: f"{f[0]}({', '.join(f[1])})"),
            st.tuples(inner, inner, inner).map(
                lambda e: f"CASE WHEN {e[0]} THEN {e[1]} ELSE {e[2]} END"),
            st.tuples(inner, st.sampled_from(("INTEGER", "VARCHAR", "DATE", "DECIMAL(5,2)",
                                              "INET", "BLOB", "JSON"))).map(
                lambda c: f"CAST({c[0]} AS {c[1]})"),
            inner.map(lambda e: f"(SELECT {e})"),
        )

    return st.recursive(leaf, extend, max_leaves=max_leaves)


def _select(max_leaves: int) -> st.SearchStrategy[str]:
    return st.builds(
        lambda items, product, where, tail: (
            f"SELECT {', '.join(items)} FROM {product}"
            + (f" WHERE {where}" if where else "") + tail
        ),
        st.lists(_expression(max_leaves), min_size=1, max_size=4),
        st.sampled_from(PRODUCTS),
        st.none() | _expression(max_leaves),
        st.sampled_from(("", " LIMIT 5", " ORDER BY 1", " GROUP BY 1", " LIMIT -1",
                         " OFFSET 99999999999", "; SELECT 1", "; DROP TABLE x")),
    )


def nested(depth: int) -> str:
    """A query nested `depth` levels: parentheses, subqueries or a chain of ORs."""
    return random.Random(depth).choice((
        "SELECT " + "(" * depth + "1" + ")" * depth,
        "SELECT * FROM " + "(SELECT * FROM " * depth + "sales.orders" + ") t" * depth,
        "SELECT 1 FROM sales.orders WHERE " + " OR ".join(f"order_id = {i}" for i in
                                                          range(depth)),
    ))


def sql_statements(max_depth: int, max_repeats: int) -> st.SearchStrategy[str]:
    """Generated SQL: token soups, structured selects with nested expressions, nesting up to
    `max_depth`, and long inputs of up to `max_repeats` repeated pieces."""
    soup = st.lists(_token(), max_size=60).map(" ".join)
    long_soup = st.tuples(st.lists(_token(), min_size=1, max_size=8).map(" ".join),
                          st.integers(2, max_repeats)).map(lambda t: " ".join([t[0]] * t[1]))
    return st.one_of(
        soup,
        soup.map(lambda s: "SELECT " + s),
        _select(max_leaves=12),
        st.integers(1, max_depth).map(nested),
        long_soup,
    )


def mutate(query: str, rng: random.Random, max_copies: int = 3) -> bytes:
    """A real query after 1-4 byte or token mutations (delete, duplicate up to `max_copies`
    times, swap, truncate, insert garbage, unicode or NUL); bytes, since some mutations break
    its UTF-8."""
    data = query.encode()
    for _ in range(rng.randint(1, 4)):
        mutation = rng.choice(_MUTATIONS)
        data = _duplicate(data, rng, max_copies) if mutation is _duplicate else \
            mutation(data, rng)
    return data


def _span(data: bytes, rng: random.Random) -> tuple[int, int]:
    start = rng.randrange(len(data) + 1)
    return start, min(len(data), start + rng.randint(1, 12))


def _delete(data: bytes, rng: random.Random) -> bytes:
    start, end = _span(data, rng)
    return data[:start] + data[end:]


def _duplicate(data: bytes, rng: random.Random, max_copies: int = 3) -> bytes:
    start, end = _span(data, rng)
    return data[:end] + data[start:end] * rng.randint(1, max_copies) + data[end:]


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def _insert(data: bytes, rng: random.Random) -> bytes:
    garbage = rng.choice((
        bytes([rng.randrange(256)]) * rng.randint(1, 4),
        rng.choice(WEIRD).encode(),
        rng.choice(KEYWORDS + FUNCTIONS + OPERATORS).encode(),
        b"\x00", b"\xff\xfe", b"\xc3", b"\xed\xa0\x80",  # NUL, invalid and surrogate UTF-8
        rng.randbytes(rng.randint(1, 16)),
    ))
    at = rng.randrange(len(data) + 1)
    return data[:at] + garbage + data[at:]


def _tokens(data: bytes, rng: random.Random) -> bytes:
    words = data.split(b" ")
    if len(words) < 2:
        return data
    i, j = rng.randrange(len(words)), rng.randrange(len(words))
    choice = rng.randrange(3)
    if choice == 0:
        words[i], words[j] = words[j], words[i]
    elif choice == 1:
        del words[i]
    else:
        words.insert(i, words[j])
    return b" ".join(words)


def _flip(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1:]


_MUTATIONS = (_delete, _duplicate, _truncate, _insert, _tokens, _tokens, _flip)


# ---- protobuf -------------------------------------------------------------------------------

COMMANDS: tuple[type[Message], ...] = (
    pb.CommandStatementQuery, pb.CommandPreparedStatementQuery, pb.TicketStatementQuery,
    pb.CommandStatementUpdate, pb.CommandPreparedStatementUpdate, pb.CommandGetSqlInfo,
    pb.CommandGetCatalogs, pb.CommandGetDbSchemas, pb.CommandGetTables,
    pb.CommandGetTableTypes, pb.CommandGetPrimaryKeys, pb.CommandGetImportedKeys,
    pb.CommandGetExportedKeys, pb.CommandGetCrossReference, pb.CommandGetXdbcTypeInfo,
)
ACTIONS: dict[str, tuple[type[Message], bool]] = {  # name -> (request, wrapped in Any)
    "CreatePreparedStatement": (pb.ActionCreatePreparedStatementRequest, True),
    "ClosePreparedStatement": (pb.ActionClosePreparedStatementRequest, True),
    "CancelQuery": (pb.ActionCancelQueryRequest, True),
    "SetSessionOptions": (flight_pb2.SetSessionOptionsRequest, False),
    "GetSessionOptions": (flight_pb2.GetSessionOptionsRequest, False),
    "CloseSession": (flight_pb2.CloseSessionRequest, False),
    "CancelFlightInfo": (flight_pb2.CancelFlightInfoRequest, False),
}
UNKNOWN_ACTIONS = ("BeginTransaction", "EndTransaction", "BeginSavepoint", "EndSavepoint",
                   "CreatePreparedSubstraitPlan", "RenewFlightEndpoint", "", "cancelquery",
                   "CreatePreparedStatement\x00", "x" * 5000, "Ação", "DROP TABLE")
INGEST_TYPE_URL = "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementIngest"


def type_url(cls: type[Message]) -> str:
    return f"type.googleapis.com/{cls.DESCRIPTOR.full_name}"


def wrap(message: Message) -> bytes:
    wrapped = any_pb2.Any()
    wrapped.Pack(message)
    return wrapped.SerializeToString()


def wrap_raw(url: str, value: bytes) -> bytes:
    return any_pb2.Any(type_url=url, value=value).SerializeToString()


def random_text(rng: random.Random, limit: int = 40) -> str:
    alphabet = string.printable + "".join(WEIRD) + "%_\\"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, limit)))


def random_message(cls: type[Message], rng: random.Random, depth: int = 0) -> Message:
    """An instance of `cls` with each field set, or not, to a random value of its type."""
    message = cls()
    for field in cls.DESCRIPTOR.fields:
        if rng.random() < 0.35:
            continue
        count = rng.randint(0, 4) if field.is_repeated else 1
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            target = getattr(message, field.name)
            for _ in range(count):
                key = rng.choice(("catalog", "schema", "strict_pushdown", random_text(rng, 8)))
                _set_map_value(target, key, rng, depth)
            continue
        for _ in range(count):
            _set_field(message, field, rng, depth)
    return message


def _set_map_value(target: Any, key: str, rng: random.Random, depth: int) -> None:
    value_type = target.GetEntryClass().DESCRIPTOR.fields_by_name["value"]
    if value_type.message_type is not None:
        target[key].CopyFrom(random_message(_message_class(target[key]), rng, depth + 1))
    else:
        target[key] = _scalar(value_type, rng)


def _message_class(instance: Message) -> type[Message]:
    return type(instance)


def _set_field(message: Message, field: Any, rng: random.Random,
               depth: int) -> None:
    repeated = field.is_repeated
    if field.message_type is not None:
        if depth > 3:
            return
        target = getattr(message, field.name)
        child = target.add() if repeated else target
        child.CopyFrom(random_message(type(child), rng, depth + 1))
        return
    value = _scalar(field, rng)
    if repeated:
        getattr(message, field.name).append(value)
    else:
        setattr(message, field.name, value)


def _scalar(field: FieldDescriptor, rng: random.Random) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return rng.choice((random_text(rng), rng.choice(PRODUCTS), rng.choice(REAL_QUERIES),
                           "%" * rng.randint(1, 30) + "zz", "sales", "demo", ""))
    if kind == FieldDescriptor.TYPE_BYTES:
        return rng.choice((rng.randbytes(rng.randint(0, 40)), b"", b"0" * 32))
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return rng.choice([v.number for v in field.enum_type.values])
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rng.choice((0.0, -1.5, 1e300, float("inf"), float("nan")))
    unsigned = kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64,
                        FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64)
    bits = 32 if kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_UINT32,
                          FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_FIXED32,
                          FieldDescriptor.TYPE_SFIXED32) else 64
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return rng.choice((0, 1, -1 if not unsigned else 2, low, high, rng.randint(low, high)))


def corrupt(data: bytes, rng: random.Random) -> bytes:
    """Serialized protobuf made invalid or odd: truncated, bit-flipped, padded, or random."""
    choice = rng.randrange(5)
    if choice == 0 and data:
        return data[:rng.randrange(len(data))]
    if choice == 1:
        return _flip(data, rng)
    if choice == 2:
        return data + rng.randbytes(rng.randint(1, 10))
    if choice == 3:
        return _insert(data, rng)
    return rng.randbytes(rng.randint(0, 64))


def invalid_utf8_query(cls: type[Message], query: bytes) -> bytes:
    """`cls` with its string field 1 set to raw bytes (which may not be UTF-8), encoded by
    hand: protobuf's Python API refuses to build such a message."""
    return b"\x0a" + _varint(len(query)) + query


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def command_payload(rng: random.Random) -> tuple[str, bytes]:
    """A descriptor command / ticket: (what it is, its bytes)."""
    cls = rng.choice(COMMANDS)
    choice = rng.randrange(7)
    if choice <= 1:
        return f"random {cls.__name__}", wrap(random_message(cls, rng))
    if choice == 2:
        return f"truncated {cls.__name__}", corrupt(wrap(random_message(cls, rng)), rng)
    if choice == 3:
        other = rng.choice(COMMANDS + tuple(c for c, _ in ACTIONS.values()))
        url = rng.choice((type_url(other), INGEST_TYPE_URL, "", "type.googleapis.com/",
                          "type.googleapis.com/google.protobuf.Empty", random_text(rng),
                          type_url(cls).upper(), type_url(cls) + "\x00"))
        return f"wrong type_url {url[:60]!r} on {cls.__name__}", \
            wrap_raw(url, random_message(cls, rng).SerializeToString())
    if choice == 4:
        return f"garbage value under {cls.__name__}", \
            wrap_raw(type_url(cls), corrupt(random_message(cls, rng).SerializeToString(), rng))
    if choice == 5:
        raw = mutate(rng.choice(REAL_QUERIES), rng)
        return f"raw-bytes query in {cls.__name__}", wrap_raw(
            type_url(pb.CommandStatementQuery), invalid_utf8_query(pb.CommandStatementQuery, raw))
    return "random bytes", rng.randbytes(rng.randint(0, 200))


def action_body(name: str, rng: random.Random, flight_info: bytes) -> tuple[str, bytes]:
    """A body for the action `name`: valid-shaped with random fields, or broken."""
    request, wrapped = ACTIONS.get(name, (pb.ActionCreatePreparedStatementRequest, True))
    message = random_message(request, rng)
    if isinstance(message, pb.ActionCreatePreparedStatementRequest) and rng.random() < 0.6:
        message.query = mutate(rng.choice(REAL_QUERIES), rng).decode(errors="replace")
    if isinstance(message, pb.ActionCancelQueryRequest) and rng.random() < 0.5:
        message.info = flight_info
    if isinstance(message, flight_pb2.CancelFlightInfoRequest) and rng.random() < 0.5:
        message.info.ParseFromString(flight_info)
    body = wrap(message) if wrapped else message.SerializeToString()
    choice = rng.randrange(8)
    if choice <= 2:
        return f"random {request.__name__}", body
    if choice == 3:
        return f"corrupt {request.__name__}", corrupt(body, rng)
    if choice == 4:  # Any-wrapped where raw is expected, and the other way round
        flipped = message.SerializeToString() if wrapped else wrap(message)
        return f"{'raw' if wrapped else 'Any-wrapped'} {request.__name__}", flipped
    if choice == 5:
        other = rng.choice(COMMANDS + tuple(c for c, _ in ACTIONS.values()))
        return f"{request.__name__} as {other.__name__}", wrap_raw(
            type_url(other), message.SerializeToString())
    if choice == 6:
        return "empty body", b""
    return "random bytes", rng.randbytes(rng.randint(1, 100))
