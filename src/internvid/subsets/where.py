"""User filters as one checked DuckDB expression: never a statement, a subquery or a file read."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from internvid.subsets.errors import SubsetError

MAX_LENGTH = 10_000  # characters of a filter
_PREFIX = "SELECT 1 WHERE "  # the statement a filter is parsed (and rendered) in
# expression classes of DuckDB's parse tree a filter may hold; FUNCTION and COLUMN_REF are
# checked further, every other class (SUBQUERY, WINDOW, STAR, PARAMETER, ...) is refused
_PLAIN_CLASSES = frozenset(
    {"CONSTANT", "COMPARISON", "CONJUNCTION", "OPERATOR", "BETWEEN", "CASE", "CAST", "COLLATE",
     "TYPE", "LAMBDA", "FUNCTION", "COLUMN_REF"}
)  # fmt: skip
# why the refused classes are refused, for the message
_REFUSED = {
    "SUBQUERY": "a subquery",
    "WINDOW": "a window function",
    "STAR": "* or COLUMNS(...)",
    "PARAMETER": "a prepared-statement parameter",
    "POSITIONAL_REFERENCE": "a positional reference (#n)",
    "DEFAULT": "DEFAULT",
    "LAMBDA_REF": "a lambda reference",
}
# scalar functions refused although they are scalar: they read the session, its settings or
# sequences, sleep, log or parse SQL (file access is in table functions, never allowed at all)
_DENIED_PREFIXES = ("__", "current_", "pg_", "has_", "inet_", "json_serialize", "json_deser")
_DENIED = frozenset(
    {"getenv", "getvariable", "currval", "nextval", "setval", "setseed", "session_user", "user",
     "version", "txid_current", "col_description", "obj_description", "shobj_description",
     "in_search_path", "sleep_ms", "write_log", "parse_duckdb_log_message", "get_block_size",
     "stats", "finalize", "combine", "to_aggregate_state", "icu_sort_key", "create_sort_key"}
)  # fmt: skip


@functools.cache
def _connection() -> Any:
    """An in-memory DuckDB that only parses: no files, no extensions, settings locked."""
    import duckdb

    con = duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "lock_configuration": True,
        },
    )
    return con


@functools.cache
def allowed_functions() -> frozenset[str]:
    """The functions a filter may call: DuckDB's built-in scalar functions and macros (operators
    included), less the ones that read the session or have side effects."""
    rows = (
        _connection()
        .cursor()
        .execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() "
            "WHERE function_type IN ('scalar', 'macro') AND database_name = 'system'"
        )
    )
    names = {name.lower() for (name,) in rows.fetchall()}
    return frozenset(n for n in names if n not in _DENIED and not n.startswith(_DENIED_PREFIXES))


def _parse(text: str) -> dict[str, Any]:
    """DuckDB's parse tree of `SELECT 1 WHERE <text>` (the text is a bound parameter)."""
    (tree,) = (
        _connection()
        .cursor()  # a connection of its own: callers may be threads
        .execute("SELECT json_serialize_sql(? || ?)", [_PREFIX, text])
        .fetchone()
    )
    return json.loads(tree)


def _without_locations(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _without_locations(v)
            for k, v in node.items()
            if k not in ("query_location", "query_location_length", "where_clause")
        }
    if isinstance(node, list):
        return [_without_locations(v) for v in node]
    return node


@functools.cache
def _bare_select() -> Any:
    """`SELECT 1 WHERE true` without its WHERE: what every parsed filter must be besides it."""
    return _without_locations(_parse("true")["statements"][0])


def _lambda_names(node: Any, out: set[str]) -> None:
    """Names the lambdas of a tree bind (`x -> ...`): references to them are no columns."""
    if isinstance(node, dict):
        if node.get("class") == "LAMBDA":
            _names(node.get("lhs"), out)
        for v in node.values():
            _lambda_names(v, out)
    elif isinstance(node, list):
        for v in node:
            _lambda_names(v, out)


def _names(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        if node.get("class") == "COLUMN_REF":
            out.update(n.lower() for n in node.get("column_names", []))
        for v in node.values():
            _names(v, out)
    elif isinstance(node, list):
        for v in node:
            _names(v, out)


def _check_node(node: Any, columns: set[str] | None, bound: set[str], text: str) -> None:
    if isinstance(node, list):
        for v in node:
            _check_node(v, columns, bound, text)
        return
    if not isinstance(node, dict):
        return
    cls = node.get("class")
    if cls is not None:
        if cls not in _PLAIN_CLASSES:
            what = _REFUSED.get(cls, f"a {cls.lower()} expression")
            raise SubsetError(f"--where {text!r}: {what} is not allowed in a filter")
        if cls == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if node.get("schema") or node.get("catalog"):
                raise SubsetError(
                    f"--where {text!r}: qualified function names "
                    f"({'.'.join(node.get('qualified_name', {}).get('path', []))}) are not allowed"
                )
            if name not in allowed_functions():
                raise SubsetError(
                    f"--where {text!r}: {name}() is not allowed in a filter (only scalar "
                    "functions that read no files, settings or sequences)"
                )
        elif cls == "COLUMN_REF" and columns is not None:
            first = str(node["column_names"][0]).lower()
            if first not in columns and first not in bound:
                raise SubsetError(
                    f"--where {text!r}: no column {node['column_names'][0]!r}; the columns are "
                    f"{', '.join(sorted(columns))}"
                )
    for v in node.values():
        _check_node(v, columns, bound, text)


def check_where(text: str, columns: Iterable[str] | None = None) -> str:
    """A user filter as the SQL of one boolean DuckDB expression over `columns` (None: any
    names), re-rendered by DuckDB from its parse tree (no comments, no trailing text): safe to
    paste as `WHERE (...)`. Raises SubsetError, naming what is wrong, on anything but a single
    SELECT's WHERE expression of columns, constants, operators, lambdas and allowed scalar
    functions: statements (`;`, COPY, ATTACH, INSTALL, LOAD, PRAGMA, SET), subqueries, table
    functions (read_text, read_csv, glob, ...), aggregates, window functions, parameters, and
    the scalar functions that read the session or have side effects (current_setting, getenv,
    nextval, setseed, ...)."""
    if not isinstance(text, str) or not text.strip():
        raise SubsetError("--where is empty")
    if len(text) > MAX_LENGTH:
        raise SubsetError(f"--where is {len(text):,} characters long (at most {MAX_LENGTH:,})")
    if "\x00" in text:
        raise SubsetError("--where holds a NUL character")
    tree = _parse(text)
    if tree.get("error"):
        raise SubsetError(
            f"--where {text!r} is not one SQL expression (DuckDB: "
            f"{tree.get('error_message', 'syntax error')})"
        )
    statements = tree.get("statements", [])
    if len(statements) != 1:
        raise SubsetError(
            f"--where {text!r} is not one SQL expression: it holds {len(statements)} statements"
        )
    where = statements[0].get("node", {}).get("where_clause")
    if where is not None:  # what the expression holds first: the clearer message
        bound: set[str] = set()
        _lambda_names(where, bound)
        _check_node(where, None if columns is None else {c.lower() for c in columns}, bound, text)
    if where is None or _without_locations(statements[0]) != _bare_select():
        raise SubsetError(
            f"--where {text!r} is not one SQL expression (FROM, GROUP BY, ORDER BY, LIMIT, UNION, "
            "WITH and the like cannot follow it)"
        )
    (sql,) = (
        _connection()
        .cursor()  # a connection of its own: callers may be threads
        .execute("SELECT json_deserialize_sql(json_serialize_sql(? || ?))", [_PREFIX, text])
        .fetchone()
    )
    if not sql.startswith(_PREFIX):  # DuckDB renders what it parsed; anything else is a surprise
        raise SubsetError(f"--where {text!r}: DuckDB rendered it as {sql!r}")
    return sql[len(_PREFIX) :]
