"""QIDO-RS (PS3.18 10.6): search studies, series and instances of the catalog.

Any attribute can be matched, not a fixed list: the key attributes through the
catalog's typed columns, every other one (nested ones included, ``A.B``) through
the instance's element JSON. Matching follows PS3.4 C.2.2.2: single value,
wildcard (``*``, ``?``), date and time ranges (``20200101-20201231``), UID lists
(``1.2.3,1.2.4``), universal (an empty value: return the attribute only); person
names match case-insensitively, with ``fuzzymatching=true`` by the start of any
name component. A study or series matches when one of its instances does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydicom.datadict import dictionary_VR, tag_for_keyword

from dicomlens.catalog import Catalog
from dicomlens.catalog.dialects import Dialect
from dicomlens.catalog.querying import (
    ABOVE_SERIES,
    JOINED,
    ORDER_BY,
    element_level,
    element_test,
    series_candidates,
)
from dicomlens.catalog.rows import element_key
from dicomlens.catalog.schema import LEVEL_COLUMNS
from dicomlens.catalog.store import Overrun
from dicomlens.dicomweb.model import attribute
from dicomlens.dicomweb.problems import BadRequest
from dicomlens.errors import TagSyntaxError, UnknownTagError
from dicomlens.tags import TagPath, parse_tag

__all__ = ["Match", "Results", "Search", "parse_search", "search"]

LEVELS: Final = ("study", "series", "instance")
MAX_RESULTS: Final = 10_000
"""Results per answer at most (more with ``offset``; a ``Warning`` header says so)."""
_ALIAS: Final = {"study": "st", "series": "se", "instance": "i"}
_CONTROL: Final = frozenset({"includefield", "fuzzymatching", "limit", "offset", "token"})
_RANGE_VRS: Final = frozenset({"DA", "TM", "DT"})
_NUMBER_VRS: Final = frozenset({"DS", "IS", "US", "UL", "SS", "SL", "FL", "FD", "SV", "UV"})
_NO_WILDCARD_VRS: Final = _RANGE_VRS | _NUMBER_VRS | {"UI"}
# Each series' first matching instance is looked up once (not again for the filter).
_MATERIALIZED: Final = "MATERIALIZED " if sqlite3.sqlite_version_info >= (3, 35) else ""


def _keys(*keywords: str) -> tuple[str, ...]:
    return tuple(f"{tag_for_keyword(k):08X}" for k in keywords)


# The attributes each level returns (PS3.18 Tables 10.6.3-3 to -5), and those the
# origin server computes.
_DEFAULTS: Final = {
    "study": _keys(
        "SpecificCharacterSet", "StudyDate", "StudyTime", "AccessionNumber",
        "InstanceAvailability", "ModalitiesInStudy", "ReferringPhysicianName",
        "TimezoneOffsetFromUTC", "RetrieveURL", "PatientName", "PatientID",
        "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID", "StudyDescription",
        "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
    ),
    "series": _keys(
        "SpecificCharacterSet", "Modality", "TimezoneOffsetFromUTC", "SeriesDescription",
        "RetrieveURL", "SeriesInstanceUID", "SeriesNumber", "NumberOfSeriesRelatedInstances",
        "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
        "RequestAttributesSequence",
    ),
    "instance": _keys(
        "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "InstanceAvailability",
        "TimezoneOffsetFromUTC", "RetrieveURL", "InstanceNumber", "Rows", "Columns",
        "BitsAllocated", "NumberOfFrames",
    ),
}  # fmt: skip
(_RETRIEVE_URL, _AVAILABILITY, _MODALITIES, _STUDY_SERIES, _STUDY_INSTANCES,
 _SERIES_INSTANCES) = _keys(
    "RetrieveURL", "InstanceAvailability", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances", "NumberOfSeriesRelatedInstances",
)  # fmt: skip
_UIDS: Final = {
    "study": _keys("StudyInstanceUID")[0],
    "series": _keys("SeriesInstanceUID")[0],
    "instance": _keys("SOPInstanceUID")[0],
}
# Typed columns of each level and those above it: what "includefield=all" adds there.
_LEVEL_KEYS: Final = {
    level: tuple(
        f"{tag_for_keyword(kw):08X}"
        for owner in ("patient", "study", "series")[: 2 + LEVELS.index(level)]
        for kw in LEVEL_COLUMNS[owner].values()
    )
    for level in LEVELS
}


@dataclass(frozen=True)
class Match:
    """One ``{attributeID}={value}`` of a search."""

    path: TagPath
    value: str

    @property
    def key(self) -> str | None:
        """The element key of a top-level public attribute (for the result)."""
        step = self.path.steps[0]
        if len(self.path.steps) > 1 or step.ref.creator is not None:
            return None
        return element_key(int(step.ref.tag))


@dataclass(frozen=True)
class Search:
    """A parsed QIDO-RS request."""

    level: str
    matches: tuple[Match, ...] = ()
    include: tuple[str, ...] = ()
    include_all: bool = False
    fuzzy: bool = False
    limit: int | None = None
    offset: int = 0
    study: str | None = None
    series: str | None = None


def parse_search(
    level: str,
    parameters: Sequence[tuple[str, str]],
    *,
    study: str | None = None,
    series: str | None = None,
) -> Search:
    """A :class:`Search` from a request's query parameters (in order, repeats kept).

    >>> s = parse_search("series", [("Modality", "CT"), ("limit", "5")])
    >>> str(s.matches[0].path), s.limit
    ('Modality', 5)
    """
    matches, include = [], []
    include_all = fuzzy = False
    limit, offset = None, 0
    for name, value in parameters:
        if name == "includefield":
            for field in filter(None, (f.strip() for f in value.split(","))):
                if field == "all":
                    include_all = True
                else:
                    include.append(_key_of(field))
        elif name == "fuzzymatching":
            fuzzy = value.strip().lower() == "true"
        elif name in ("limit", "offset"):
            if not value.isdigit():
                raise BadRequest(f"{name} must be a whole number, not {value!r}")
            if name == "limit":
                limit = int(value)
            else:
                offset = int(value)
        elif name not in _CONTROL:
            matches.append(Match(_path(name), value))
    return Search(level, tuple(matches), tuple(include), include_all, fuzzy, limit, offset,
                  study, series)  # fmt: skip


def _path(name: str) -> TagPath:
    try:
        return parse_tag(name)
    except (TagSyntaxError, UnknownTagError) as exc:
        raise BadRequest(f"{name}: not an attribute ({exc})") from None


def _key_of(name: str) -> str:
    path = _path(name)
    step = path.steps[0]
    if len(path.steps) > 1 or step.ref.creator is not None:
        raise BadRequest(f"includefield {name}: give a top-level public attribute")
    return element_key(int(step.ref.tag))


@dataclass(frozen=True)
class Results:
    """One page of results, and whether more were left out (MAX_RESULTS)."""

    datasets: list[dict[str, Any]]
    truncated: bool


def search(
    catalog: Catalog, query: Search, base_url: str, *, max_results: int | None = None
) -> Results:
    """The results of ``query`` in the DICOM JSON model; RetrieveURLs under ``base_url``.

    Raises
    ------
    Overrun
        More than ``max_results`` results (when given) were found: nothing is built.
    """
    sql, parameters = _search_sql(query, catalog.dialect)
    page = min(query.limit if query.limit is not None else MAX_RESULTS, MAX_RESULTS)
    rows = catalog.execute(sql, [*parameters, page + 1, query.offset]).fetchall()
    if max_results is not None and len(rows) > max_results:
        raise Overrun(f"more than {max_results} results")
    truncated = len(rows) > page and (query.limit is None or query.limit > MAX_RESULTS)
    rows = rows[:page]
    level = query.level
    elements = _elements(catalog, [row[1] for row in rows])
    counts = _counts(catalog, level, [row[0] for row in rows])
    wanted = _wanted(query)
    found = []
    for level_id, instance_id, study, series, sop in rows:
        kept = elements[instance_id]
        retrieve_url = _retrieve_url(base_url, level, study, series, sop)
        computed = {
            _RETRIEVE_URL: {"vr": "UR", "Value": [retrieve_url]},
            _AVAILABILITY: {"vr": "CS", "Value": ["ONLINE"]},
            **counts.get(level_id, {}),
        }  # fmt: skip
        keys = sorted(set(wanted) | (set(kept) if query.include_all and level == "instance"
                                     else set()))  # fmt: skip
        result = {}
        for key in keys:
            if key in computed:
                result[key] = computed[key]
            elif key in kept:
                converted = attribute(key, kept[key], signed=kept.get("00280103") == 1)
                if converted is not None:
                    result[key] = converted
        found.append(result)
    return Results(found, truncated)


def _search_sql(query: Search, dialect: Dialect) -> tuple[str, list[Any]]:
    """The SELECT of a search's rows (level id, representative instance, study, series,
    SOP Instance UID), page parameters left to bind.

    At the study and series levels, conditions on instances are answered series by
    series: the series that may hold the value (from the catalog's per-series values)
    each give their first matching instance, found by index where the column has one
    (else the series' instances are tested in order until one matches); only then are
    series, studies and patients joined.
    """
    level, alias = query.level, _ALIAS[query.level]
    instance: list[tuple[str, list[Any]]] = []
    above = _addressable(level)
    candidates: tuple[str, list[Any]] | None = None
    if query.study is not None:
        above.append(("st.study_instance_uid = ?", [query.study]))
    if query.series is not None:
        above.append(("se.series_instance_uid = ?", [query.series]))
    for match in query.matches:
        tested = _match_test(match, fuzzy=query.fuzzy)
        if tested is None:
            continue
        path, test, values = tested
        condition = element_test(path, test, values, dialect)
        if element_level(path) != "instance":
            above.append(condition)
            continue
        instance.append(condition)
        found = series_candidates(path, test, dialect)
        if candidates is None and found is not None:
            candidates = (found, values)
    order = f"ORDER BY {ORDER_BY[level]} LIMIT ? OFFSET ?"
    if level == "instance":
        where, parameters = _where(instance + above)
        return (f"SELECT i.id, i.id, st.study_instance_uid, se.series_instance_uid, "
                f"i.sop_instance_uid FROM instances i {JOINED} JOIN files f ON f.id = i.file"
                f"{where} {order}", parameters)  # fmt: skip
    selected = f"{alias}.id, min({{first}}), st.study_instance_uid, se.series_instance_uid, NULL"
    grouped = f"GROUP BY {alias}.id {order}"
    if not instance:
        where, parameters = _where(above)
        return (f"SELECT {selected.format(first='i.id')} FROM instances i {JOINED}{where} "
                f"{grouped}", parameters)  # fmt: skip
    series, series_parameters = candidates or ("SELECT id AS series FROM series", [])
    first, first_parameters = _where([("i.series = c.series", []), *instance])
    matching = (
        f"SELECT c.series AS series, (SELECT min(i.id) FROM instances i{first}) AS first "
        f"FROM (SELECT DISTINCT series FROM ({series})) c"
    )
    where, parameters = _where([("g.first IS NOT NULL", []), *above])
    source = f"g JOIN series se ON se.id = g.series {ABOVE_SERIES}"
    sql = (f"WITH g AS {_MATERIALIZED}({matching}) "
           f"SELECT {selected.format(first='g.first')} FROM {source}{where} {grouped}")  # fmt: skip
    return sql, [*first_parameters, *series_parameters, *parameters]


def _addressable(level: str) -> list[tuple[str, list[Any]]]:
    """Conditions that leave out what no URL can name: a study, series or instance
    whose UID (or that of a level above it) the files do not hold."""
    conditions: list[tuple[str, list[Any]]] = [("st.study_instance_uid != ''", [])]
    if level in ("series", "instance"):
        conditions.append(("se.series_instance_uid != ''", []))
    if level == "instance":
        conditions.append(("i.sop_instance_uid != ''", []))  # NULL is left out too
    return conditions


def _where(conditions: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """A WHERE clause of all ``conditions`` (SQL, parameters), and its parameters."""
    if not conditions:
        return "", []
    return (" WHERE " + " AND ".join(sql for sql, _ in conditions),
            [value for _, values in conditions for value in values])  # fmt: skip


def _wanted(query: Search) -> list[str]:
    """The keys a result holds: the level's defaults (and those of the levels above it
    not fixed by the path), the matched attributes, the included ones."""
    levels = {"study": ["study"], "series": ["series"], "instance": ["instance"]}[query.level]
    if query.level in ("series", "instance") and query.study is None:
        levels.append("study")
    if query.level == "instance" and query.series is None:
        levels.append("series")
    keys = [key for level in levels for key in _DEFAULTS[level]]
    keys += [m.key for m in query.matches if m.key is not None]
    keys += list(query.include)
    if query.include_all:
        keys += _LEVEL_KEYS[query.level]
    return list(dict.fromkeys(keys))


def _retrieve_url(base: str, level: str, study: str, series: str, sop: str) -> str:
    url = f"{base}/studies/{study}"
    if level in ("series", "instance"):
        url += f"/series/{series}"
    if level == "instance":
        url += f"/instances/{sop}"
    return url


def _elements(catalog: Catalog, ids: list[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for number, text in catalog.execute(
            f"SELECT id, elements FROM instances WHERE id IN ({marks})", chunk
        ):
            found[number] = json.loads(text)
    return found


def _counts(catalog: Catalog, level: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The computed attributes of studies (modalities, series and instances) and series."""
    if level == "instance" or not ids:
        return {}
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        if level == "study":
            rows = catalog.execute(
                "SELECT se.study, count(DISTINCT se.id), count(i.id), "
                "json_group_array(DISTINCT se.modality) FROM series se "
                f"JOIN instances i ON i.series = se.id WHERE se.study IN ({marks}) "
                "GROUP BY se.study",
                chunk,
            )
            for study, series, instances, modalities in rows:
                found[study] = {
                    _STUDY_SERIES: {"vr": "IS", "Value": [series]},
                    _STUDY_INSTANCES: {"vr": "IS", "Value": [instances]},
                    _MODALITIES: _cs(sorted(m for m in json.loads(modalities) if m)),
                }  # fmt: skip
        else:
            rows = catalog.execute(
                f"SELECT series, count(*) FROM instances WHERE series IN ({marks}) GROUP BY series",
                chunk,
            )
            for series, instances in rows:
                found[series] = {_SERIES_INSTANCES: {"vr": "IS", "Value": [instances]}}
    return found


def _cs(values: list[str]) -> dict[str, Any]:
    """A CS attribute in the DICOM JSON model: without "Value" when it has none
    (PS3.18 F.2.5)."""
    return {"vr": "CS", "Value": values} if values else {"vr": "CS"}


# ---------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------


def _vr(path: TagPath) -> str:
    leaf = path.leaf
    if leaf.creator is not None:
        return ""
    try:
        return str(dictionary_VR(leaf.tag)).split(" or ")[0]
    except KeyError:
        return ""


def _tested_path(match: Match) -> TagPath:
    """The element a match tests: a study's modalities are those of its series."""
    return parse_tag("Modality") if match.key == _MODALITIES else match.path


def _match_test(match: Match, *, fuzzy: bool) -> tuple[TagPath, str, list[Any]] | None:
    """The element one match tests, the test (for :func:`element_test`) and its
    parameters; None for universal matching (an empty value)."""
    text = match.value
    if text == "":
        return None
    path = _tested_path(match)
    vr = _vr(path)
    if vr == "UI" or (match.key == _MODALITIES and ("," in text or "\\" in text)):
        values = [v.strip() for v in text.replace("\\", ",").split(",") if v.strip()]
        marks = ",".join("?" * len(values))
        return path, f"{{value}} IN ({marks})", values
    if (vr in _RANGE_VRS and "-" in text and vr != "DT") or _is_datetime_range(vr, text):
        low, _, high = (part.replace(":", "").replace("-", "") for part in _halves(text))
        tests, values = [], []
        if low:
            tests.append("{value} >= ?")
            values.append(low)
        if high:
            tests.append("{value} <= ?")
            values.append(high + "\uffff" if vr != "DA" else high)
        return path, " AND ".join(tests) or "1", values
    if vr in _NUMBER_VRS:
        try:
            return path, "{value} = ?", [float(text)]
        except ValueError:
            raise BadRequest(f"{path}: expected a number, got {text!r}") from None
    wildcard = vr not in _NO_WILDCARD_VRS and ("*" in text or "?" in text)
    if vr == "PN":
        if fuzzy:  # the start of any component of the name
            spaced = "(' ' || replace(replace(lower({value}), '^', ' '), '=', ' '))"
            return path, f"{spaced} GLOB ?", ["* " + _glob(text.lower(), wildcard) + "*"]
        return path, "lower({value}) GLOB ?", [_glob(text.lower(), wildcard)]
    if wildcard:
        return path, "{value} GLOB ?", [_glob(text, True)]
    if vr in _RANGE_VRS:
        text = text.replace(":", "").replace("-", "")
    return path, "{value} = ?", [text]


def _halves(text: str) -> tuple[str, str, str]:
    low, separator, high = text.partition("-")
    return low.strip(), separator, high.strip()


def _is_datetime_range(vr: str, text: str) -> bool:
    """A DT range: the only ``-`` is the separator (offsets such as -0500 are not ranges)."""
    return vr == "DT" and text.count("-") == 1 and not text.startswith("-0")


def _glob(text: str, wildcard: bool) -> str:
    """An SQLite GLOB pattern: ``*`` and ``?`` as QIDO means them (when ``wildcard``),
    every other character literally."""
    out = []
    for character in text:
        if character in "*?" and wildcard:
            out.append(character)
        elif character in "*?[]":
            out.append(f"[{character}]")
        else:
            out.append(character)
    return "".join(out)
