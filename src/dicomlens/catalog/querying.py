"""Ask the catalog: ``TAG OP VALUE`` filters at any level, or raw SQL.

Filters use any tag notation (``Modality=CT``, ``"Slice Thickness<=1.5"``,
``StudyDate>=2020-01-01``, ``SeriesDescription~lung``, ``(0018,0050)>1``,
``ReferencedImageSequence[0].ReferencedSOPInstanceUID=1.2.3``, private
``"(0019,xx0C)[SIEMENS CT VA0  COAD]=1"``); all must hold. Numbers compare as
numbers, dates as dates; ``~`` is a case-insensitive regular expression (a plain
word is a substring). Key attributes are typed columns; every other element
is found in the instance's JSON.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Protocol

from pydicom.datadict import dictionary_VR, keyword_for_tag

from dicomlens.catalog.dialects import SQLITE, Dialect
from dicomlens.catalog.rows import element_key
from dicomlens.catalog.schema import LEVEL_COLUMNS
from dicomlens.errors import UsageError
from dicomlens.tags import TagPath, parse_tag

__all__ = [
    "ABOVE_SERIES",
    "JOINED",
    "ORDER_BY",
    "Condition",
    "Level",
    "QueryResult",
    "Source",
    "element_level",
    "element_test",
    "query",
    "run_sql",
    "series_candidates",
]

_CONDITION: Final = re.compile(
    r"^\s*(?P<tag>[^<>=!~]+?)\s*(?P<op><=|>=|!=|=|<|>|~)\s*(?P<value>.*)$"
)
_ALIAS: Final = {"patient": "p", "study": "st", "series": "se", "instance": "i"}
_TABLES: Final = {"patient": "patients", "study": "studies", "series": "series"}
_ORDER: Final = ("patient", "study", "series", "instance")
_DATE_VRS: Final = frozenset({"DA", "DT", "TM"})
_NUMBER_VRS: Final = frozenset({"DS", "IS", "US", "UL", "SS", "SL", "FL", "FD", "SV", "UV"})
_COLUMN_OF: Final = {
    keyword: (level, column)
    for level, columns in LEVEL_COLUMNS.items()
    for column, keyword in columns.items()
}
_DEFAULT_COLUMNS: Final = {
    "patient": ["patient_id", "patient_name", "patient_birth_date", "patient_sex"],
    "study": ["patient_id", "study_date", "study_description", "accession_number",
              "study_instance_uid"],
    "series": ["patient_id", "study_date", "series_number", "modality", "series_description",
               "series_instance_uid"],
    "instance": ["series_number", "modality", "instance_number", "sop_instance_uid"],
}  # fmt: skip
_COUNTED: Final = {"studies": "st", "series": "se", "instances": "i"}
_COUNTS: Final = {
    "patient": ["studies", "series", "instances"],
    "study": ["series", "instances"],
    "series": ["instances"],
    "instance": [],
}


class Level(Enum):
    """What one result row stands for."""

    PATIENT = "patient"
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


@dataclass(frozen=True)
class Condition:
    """One ``TAG OP VALUE`` filter."""

    path: TagPath
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Condition:
        """``Modality=CT``, ``SliceThickness<=1.5``, ``SeriesDescription~lung``.

        >>> condition = Condition.parse("Slice Thickness <= 1.5")
        >>> str(condition.path), condition.op, condition.value
        ('SliceThickness', '<=', '1.5')
        """
        match = _CONDITION.match(text)
        if not match:
            raise UsageError(f"{text!r}: expected TAG OP VALUE with OP one of = != < <= > >= ~")
        return cls(parse_tag(match["tag"]), match["op"], match["value"].strip())


class Source(Protocol):
    """What the query language asks: the SQLite :class:`~dicomlens.catalog.Catalog`, or
    the Parquet dataset through DuckDB (``dicomlens.catalog.parquet.ParquetCatalog``)."""

    @property
    def dialect(self) -> Dialect: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any: ...


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def query(
    catalog: Source,
    conditions: Sequence[Condition | str] = (),
    *,
    level: Level | str = Level.SERIES,
    columns: Sequence[str] = (),
) -> QueryResult:
    """Rows of ``level`` (patients, studies, series or instances) that hold at
    least one instance meeting every condition; extra ``columns`` in any tag notation.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from pydicom.data import get_testdata_file
    >>> from dicomlens.catalog import Catalog, index
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "catalog.db"
    >>> _ = index([get_testdata_file("CT_small.dcm"), get_testdata_file("MR_small.dcm")], db)
    >>> with Catalog(db, readonly=True) as catalog:
    ...     result = query(catalog, ["Modality=CT", "SliceThickness<=5"], columns=["KVP"])
    >>> result.records()[0]["KVP"]
    120.0
    """
    level = Level(level) if isinstance(level, str) else level
    parsed = [c if isinstance(c, Condition) else Condition.parse(c) for c in conditions]
    dialect = catalog.dialect
    where, parameters = [], []
    for condition in parsed:
        sql, values = _condition_sql(condition, dialect)
        where.append(sql)
        parameters += values
    names, selected, extracted = _selection(level.value, columns, dialect)
    sql = _select_sql(level.value, selected, where, dialect)
    rows = catalog.execute(sql, parameters).fetchall()
    if extracted and not dialect.json_is_typed:
        rows = [
            tuple(dialect.decode(v) if n in extracted else v for n, v in enumerate(row))
            for row in rows
        ]
    return QueryResult(names, rows)


def run_sql(catalog: Source, sql: str) -> QueryResult:
    """Raw SQL on the catalog (open it read-only to keep it unchanged)."""
    cursor = catalog.execute(sql)
    names = [d[0] for d in cursor.description or ()]
    return QueryResult(names, cursor.fetchall())


# ---------------------------------------------------------------------------
# SQL generation
# ---------------------------------------------------------------------------


def _typed_column(path: TagPath) -> tuple[str, str] | None:
    """The (level, column) holding the element of a one-step public path, if any."""
    step = path.steps[0]
    if len(path.steps) != 1 or step.ref.creator is not None or step.subscript is not None:
        return None
    return _COLUMN_OF.get(keyword_for_tag(step.ref.tag))


def element_level(path: TagPath) -> str:
    """The level whose row :func:`element_test` tests for ``path``: that of the typed
    column holding the element, else ``"instance"`` (the instance's element JSON).

    >>> element_level(parse_tag("Modality")), element_level(parse_tag("EchoTime"))
    ('series', 'instance')
    """
    typed = _typed_column(path)
    return "instance" if typed is None else typed[0]


def _vr(path: TagPath) -> str:
    leaf = path.leaf
    if leaf.creator is not None:
        return ""
    try:
        return str(dictionary_VR(leaf.tag))
    except KeyError:
        return ""


def _operand(condition: Condition) -> tuple[str, Any]:
    """The SQL comparison and the bound value, typed by the element's VR."""
    vr, op, text = _vr(condition.path), condition.op, condition.value
    if op == "~":
        return "regexp", text
    if vr in _NUMBER_VRS:
        try:
            return op, float(text)
        except ValueError:
            raise UsageError(f"{condition.path}: expected a number, got {text!r}") from None
    if vr in _DATE_VRS:
        text = text.replace("-", "").replace(":", "")
    elif not vr:  # private or unknown: a number if it reads as one
        try:
            return op, float(text)
        except ValueError:
            pass
    return op, text


def _condition_sql(condition: Condition, dialect: Dialect) -> tuple[str, list[Any]]:
    op, value = _operand(condition)
    test = dialect.matches() if op == "regexp" else f"{{value}} {op} ?"
    numeric = isinstance(value, float)
    return element_test(condition.path, test, [value], dialect, numeric=numeric)


def element_test(
    path: TagPath,
    test: str,
    parameters: Sequence[Any],
    dialect: Dialect = SQLITE,
    *,
    numeric: bool = False,
) -> tuple[str, list[Any]]:
    """SQL, true for an instance (alias ``i``, with its series ``se``, study ``st`` and
    patient ``p`` joined) when some value of the element at ``path`` passes ``test``:
    an SQL expression in which ``{value}`` stands for the value (a number when
    ``numeric``, else text, where the store's JSON is untyped) and ``?`` for the
    ``parameters``; with the parameters the SQL takes.

    >>> element_test(parse_tag("Modality"), "{value} = ?", ["CT"])
    ('se.modality = ?', ['CT'])
    """
    typed = _typed_column(path)
    if typed is not None:
        level, column = typed
        return test.format(value=f"{_ALIAS[level]}.{column}"), list(parameters)
    sources, last = _json_sources(path)
    value = dialect.element_value(last, numeric=numeric)
    exact = f"EXISTS (SELECT 1 FROM {sources} WHERE {test.format(value=value)})"
    candidates = series_candidates(path, test, dialect)
    if candidates is None:
        return exact, list(parameters)
    # first the series that may hold such a value (their values are indexed), then
    # the exact test on their instances only
    return f"(i.series IN ({candidates}) AND {exact})", [*parameters, *parameters]


def series_candidates(path: TagPath, test: str, dialect: Dialect = SQLITE) -> str | None:
    """SQL selecting (column ``series``) the ids of the series that may hold a value of
    the element at ``path`` passing ``test`` (as for :func:`element_test`, whose
    parameters it takes once): a superset, from the catalog's per-series values; None
    where it keeps none (nested paths, sequences, a catalog without them).

    >>> from dicomlens.catalog.dialects import SQLITE_SERIES_VALUES
    >>> sql = series_candidates(parse_tag("EchoTime"), "{value} = ?", SQLITE_SERIES_VALUES)
    >>> sql.split(" UNION ALL ")[0]
    "SELECT sv.series FROM series_values sv WHERE sv.key = '00180081' AND sv.value = ?"
    """
    if not dialect.series_values or len(path.steps) != 1 or _vr(path) == "SQ":
        return None
    key = _key(path.steps[0].ref)
    return (
        f"SELECT sv.series FROM series_values sv WHERE sv.key = '{key}' AND "
        f"{test.format(value='sv.value')} UNION ALL "
        f"SELECT series FROM series_varying WHERE key = '{key}'"
    )


def _json_sources(path: TagPath) -> tuple[str, str]:
    """``json_each`` table expressions that walk ``path`` (every item of a sequence
    step without an index) and the alias whose ``value`` holds the element's values."""
    sources, parent, json_path = [], "i.elements", "$"
    for number, step in enumerate(path.steps):
        json_path += f'."{_key(step.ref)}"'
        last = number == len(path.steps) - 1
        if isinstance(step.subscript, int):
            json_path += f"[{step.subscript}]"
        if last or not isinstance(step.subscript, int):
            alias = f"j{number}"
            sources.append(f"json_each({parent}, '{json_path}') AS {alias}")
            parent, json_path = f"{alias}.value", "$"
    return ", ".join(sources), parent.split(".")[0]


def _key(ref: Any) -> str:
    if ref.creator is not None:
        return element_key((ref.group << 16) | ref.element, ref.creator.replace("'", "''"))
    return element_key(int(ref.tag))


def _selection(
    level: str, extra: Sequence[str], dialect: Dialect
) -> tuple[list[str], list[str], set[int]]:
    """Output names and SQL expressions (the level's columns, counts, extra tags),
    and which of them the dialect must decode.

    Columns are named as the user would ask for them again: elements by keyword
    (``SeriesInstanceUID``, ``SliceThickness``), private or nested ones as written.
    """
    group = dialect.grouped if level != "instance" else str
    names, selected, extracted = [], [], set()
    for column in _DEFAULT_COLUMNS[level]:
        owner = next(lv for lv, cols in LEVEL_COLUMNS.items() if column in cols)
        names.append(LEVEL_COLUMNS[owner][column])
        selected.append(group(f"{_ALIAS[owner]}.{column}"))
    for count in _COUNTS[level]:
        names.append(count)
        selected.append(_count_sql(count))
    if level == "instance":
        names.append("path")
        selected.append("f.path")
    for text in extra:
        path = parse_tag(text)
        typed = _typed_column(path)
        names.append(_column_name(path, text))
        if typed is not None and _ORDER.index(typed[0]) <= _ORDER.index(level):
            selected.append(group(f"{_ALIAS[typed[0]]}.{typed[1]}"))
        else:
            json_path = "$" + "".join(
                f'."{_key(s.ref)}"' + (f"[{s.subscript}]" if isinstance(s.subscript, int) else "")
                for s in path.steps
            )
            extracted.add(len(selected))
            selected.append(group(dialect.extract("i.elements", json_path)))
    return names, selected, extracted


def _column_name(path: TagPath, text: str) -> str:
    """A single public element by its keyword; anything else as the user wrote it."""
    (step, *more) = path.steps
    if not more and step.subscript is None and step.ref.creator is None:
        keyword = keyword_for_tag(step.ref.tag)
        if keyword:
            return keyword
    return text.strip()


def _count_sql(count: str) -> str:
    if count == "instances":  # one joined row per instance: nothing to make distinct
        return "count(i.id)"
    return f"count(DISTINCT {_COUNTED[count]}.id)"


ABOVE_SERIES: Final = "JOIN studies st ON st.id = se.study JOIN patients p ON p.id = st.patient"
"""The joins from a series ``se`` to its study ``st`` and patient ``p``."""
JOINED: Final = f"JOIN series se ON se.id = i.series {ABOVE_SERIES}"
"""The joins from ``instances i`` to its series ``se``, study ``st`` and patient ``p``."""
ORDER_BY: Final = {
    "patient": "p.patient_id, p.id",
    "study": "p.patient_id, st.study_date, st.study_instance_uid",
    "series": "p.patient_id, st.study_date, st.id, se.series_number, se.series_instance_uid",
    "instance": "se.id, i.instance_number, f.path",
}
"""The order of results at each level (the instance level joins ``files f``)."""


def _select_sql(level: str, selected: list[str], where: list[str], dialect: Dialect) -> str:
    # files only for the instance level (its path): the others count instances from
    # the index on their series, without reading the instances' rows
    files = "JOIN files f ON f.id = i.file " if level == "instance" else ""
    sql = f"SELECT {', '.join(selected)} FROM instances i {files}{JOINED}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    group = dialect.grouped if level != "instance" else str
    if level != "instance":
        sql += f" GROUP BY {_ALIAS[level]}.id"
    order = ", ".join(group(dialect.order(term)) for term in ORDER_BY[level].split(", "))
    return f"{sql} ORDER BY {order}"
