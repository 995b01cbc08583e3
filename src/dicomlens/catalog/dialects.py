"""The few places where the SQL of the catalog's two stores differs: SQLite (one
machine) and DuckDB over the Parquet dataset. The query language generates SQL
through a :class:`Dialect`, so that both answer the same question the same way."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["DUCKDB", "SQLITE", "SQLITE_SERIES_VALUES", "Dialect"]


@dataclass(frozen=True)
class Dialect:
    """How one store spells what SQLite and DuckDB spell differently."""

    name: str
    json_is_typed: bool
    """Whether ``json_each(...).value`` and ``json_extract`` give SQL values (SQLite)
    rather than JSON (DuckDB)."""
    bare_columns: bool
    """Whether a grouped query may select columns it does not group by (SQLite)."""
    order_key: str
    """The column of patients, studies and series that follows the order files were indexed."""
    series_values: bool = False
    """Whether the store lists each series' element values (SQLite catalog v4)."""

    def element_value(self, alias: str, *, numeric: bool) -> str:
        """The SQL value of one element value found by ``json_each ... AS alias``."""
        if self.json_is_typed:
            return f"{alias}.value"
        text = f"json_extract_string({alias}.value, '$')"
        return f"TRY_CAST({text} AS DOUBLE)" if numeric else text

    def matches(self) -> str:
        """A case-insensitive regular-expression search; ``{value}`` and one parameter."""
        if self.json_is_typed:
            return "{value} regexp ?"
        return "regexp_matches(CAST({value} AS VARCHAR), ?, 'i')"

    def extract(self, elements: str, json_path: str) -> str:
        """The value at ``json_path`` of an elements column; :meth:`decode` finishes it."""
        if self.json_is_typed:
            return f"json_extract({elements}, '{json_path}')"
        return f"CAST(json_extract({elements}, '{json_path}') AS VARCHAR)"

    def decode(self, value: Any) -> Any:
        """A value selected with :meth:`extract` as SQLite gives it: text, number, or
        an array or object as its JSON text."""
        if self.json_is_typed or value is None or value[:1] in ("[", "{"):
            return value
        return json.loads(value)

    def grouped(self, expression: str) -> str:
        """A column of a grouped query (one row per patient, study or series)."""
        return expression if self.bare_columns else f"any_value({expression})"

    def order(self, expression: str) -> str:
        """An ORDER BY term: ``X.id`` of a level stands for the order files were indexed."""
        alias, _, column = expression.partition(".")
        if column == "id" and alias != "i":
            expression = f"{alias}.{self.order_key}"
        return expression


SQLITE: Final = Dialect("sqlite", json_is_typed=True, bare_columns=True, order_key="id")
SQLITE_SERIES_VALUES: Final = Dialect(
    "sqlite", json_is_typed=True, bare_columns=True, order_key="id", series_values=True
)
DUCKDB: Final = Dialect("duckdb", json_is_typed=False, bare_columns=False, order_key="first")
