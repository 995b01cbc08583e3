"""When each slice of a volume was acquired (BIDS ``SliceTiming``) and how many slices
were excited at once (``MultibandAccelerationFactor``), by the vendors' rules that
dcm2niix follows: Siemens mosaics' MosaicRefAcqTimes, the acquisition times of
Siemens and UIH classic slices and enhanced frames, and GE's model of its EPI
sequences from the protocol data block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

from pydicom.dataset import Dataset

from dicomlens import vendors
from dicomlens.reading import read
from dicomlens.series import SliceInfo, seconds_of_day
from dicomlens.volume.model import Volume

__all__ = ["measured_repetition", "multiband_factor", "repetition_time_ms", "slice_timing"]

_MS: Final = 1e-3
_SAME_MS: Final = 1e-4
"""Spans of slice times (ms) that count as the same (dcm2niix's isSameFloatGE)."""
_TR_TOLERANCE_S: Final = 0.05
"""Volumes further apart than the TR by more than this were not acquired back to back."""
_STAMPED: Final = ("Siemens", "UIH")
"""Vendors whose per-slice acquisition times are the slice timing (dcm2niix's rule)."""


def slice_timing(
    header: Dataset,
    fields: vendors.Fields,
    vendor: str,
    csa: dict[str, Any],
    protocol: dict[str, str],
    slices: Sequence[SliceInfo],
    volume: Volume,
) -> list[float] | None:
    """When each slice of a volume was acquired, in seconds from the first, in the
    order of the written slices (k); None when the files do not say. ``csa`` and
    ``protocol`` are Siemens' CSA image header and ASCII protocol (empty for others)."""
    depth = volume.array.shape[2] if volume.array.ndim >= 3 else 1
    if depth < 2 or str(fields.public("MRAcquisitionType") or "") == "3D":
        return None
    if fields.public("Modality") not in ("MR", None):
        return None
    if slices[0].mosaic and vendor == "UIH":
        return _grid_timing(header, depth)
    if slices[0].mosaic:
        repetition = repetition_time_ms(vendor, header, fields)
        return _mosaic_timing(csa, slices, depth, repetition) or _planned_mosaic_timing(
            csa, protocol, depth, repetition
        )
    if vendor == "GE":
        return _ge_timing(header, fields, depth, volume.volumes)
    if vendor in _STAMPED:
        return _stamped_timing(slices, volume, depth, fields)
    return None


def repetition_time_ms(vendor: str, header: Dataset, fields: vendors.Fields) -> float | None:
    """RepetitionTime (ms), for GE plus the group delay of an fMRI (0043,xx7C) or of a
    multi-phase EPI's protocol: its volumes lie that much further apart (dcm2niix)."""
    found = vendors.numbers(fields.public("RepetitionTime"))
    if not found:
        return None
    if vendor != "GE":
        return found[0]
    plan = _ge_plan(header, fields, found[0])
    if plan is not None:
        return plan.repetition_ms
    return found[0] + max(vendors.ge_epi_sequence(fields).group_delay_ms, 0.0)


def multiband_factor(
    vendor: str,
    header: Dataset,
    fields: vendors.Fields,
    protocol: dict[str, str],
    timing: list[float] | None,
) -> int:
    """Slices excited at once: Siemens' ``protocol``, GE's (0043,xxB6), else (when they
    say 1 or nothing, as anonymised XA files do) how often each slice time repeats."""
    factor = protocol.get("sSliceAcceleration.lMultiBandFactor", "")
    if factor.isdigit() and int(factor) > 1:
        return int(factor)
    if vendor == "GE" and (band := _ge_band(header, fields)) > 1:
        return band
    distinct = len({round(t, 4) for t in timing or ()})
    if distinct < 2:  # one time for all slices: a 3-D or unknown timing, not a band
        return 1
    return math.floor(len(timing) / distinct)  # type: ignore[arg-type]


def measured_repetition(
    vendor: str,
    fields: vendors.Fields,
    slices: Sequence[SliceInfo],
    volume: Volume,
    reported_s: float | None,
) -> dict[str, float]:
    """The time between volume starts when it is not the TR the header gives (ASL,
    sparse or clustered fMRI, repeated 3-D scans): RepetitionTime becomes the measured
    interval and the header's TR RepetitionTimeExcitation (RepetitionTimeInversion for
    inversion recovery, except Philips'), as dcm2niix writes them. Measured from the
    first written slice's acquisition times, first to last over (volumes - 1), divided
    by NumberOfAverages when that explains it. Only for series of single 2-D images
    (mosaics and multi-frame files keep their TR, as in dcm2niix); empty when within
    50 ms, for one volume, and for GE (whose acquisition times are unreliable)."""
    if volume.volumes < 2 or vendor == "GE":
        return {}
    if any(s.mosaic or s.frame is not None for s in slices):
        return {}
    starts = {row["volume"]: s.time_acquired for s, row in zip(slices, volume.slices, strict=False)
              if row["k"] == 0}  # fmt: skip
    if len(starts) < 2 or not all(starts.values()):
        return {}
    first = seconds_of_day(starts[min(starts)])
    span = max(seconds_of_day(stamp) - first for stamp in starts.values())
    if span <= 0:
        return {}
    interval = span / (len(starts) - 1)
    reported = reported_s or 0.0
    if abs(interval - reported) <= _TR_TOLERANCE_S:
        return {}
    averages = vendors.numbers(fields.public("NumberOfAverages"))
    if averages and averages[0] > 1:
        interval /= averages[0]
        if abs(interval - reported) <= _TR_TOLERANCE_S:
            return {}
    found = {"RepetitionTime": round(interval, 6)}
    if reported > 0:
        scanning = _joined(fields.public("ScanningSequence"))
        inversion = "IR" in scanning or str(fields.public("InversionRecovery") or "") == "YES"
        kind = "Inversion" if inversion and vendor != "Philips" else "Excitation"
        found[f"RepetitionTime{kind}"] = reported
    return found


def _stamped_timing(
    slices: Sequence[SliceInfo], volume: Volume, depth: int, fields: vendors.Fields
) -> list[float] | None:
    """When one volume's slices were acquired, from the first: Siemens XA's time after
    start where the files give it (the second volume's on XA, as the first can be
    wrong), else the acquisition times (exact: dcm2niix holds them as 32-bit floats of
    HHMMSS, steps of up to 1/64 s)."""
    software = str(fields.public("SoftwareVersions") or "")
    wanted = 1 if "XA" in software and volume.volumes > 1 else 0
    by_k = {row["k"]: s for s, row in zip(slices, volume.slices, strict=False)
            if row["volume"] == wanted}  # fmt: skip
    if sorted(by_k) != list(range(depth)):
        return None
    chosen = [by_k[k] for k in range(depth)]
    if all(s.time_after_start is not None for s in chosen):
        seconds = [float(s.time_after_start) for s in chosen]  # type: ignore[arg-type]
    else:
        stamps = [s.time_acquired for s in chosen]
        if not all(stamps):
            return None
        seconds = [seconds_of_day(stamp) for stamp in stamps]
    start = min(seconds)
    if max(seconds) == start:
        return None
    return [round(t - start, 6) for t in seconds]


def _grid_timing(header: Dataset, depth: int) -> list[float] | None:
    """A UIH grid's slice times: each tile's own AcquisitionTime (0065,xx51)."""
    stamps = [str(item.get("AcquisitionTime") or "") for item in vendors.uih_tiles(header)]
    if len(stamps) != depth or not all(stamps):
        return None
    seconds = [seconds_of_day(stamp) for stamp in stamps]
    start = min(seconds)
    return [round(t - start, 6) for t in seconds] if max(seconds) > start else None


def _mosaic_timing(
    csa: dict[str, Any], slices: Sequence[SliceInfo], depth: int, repetition_ms: float | None
) -> list[float] | None:
    """Siemens' MosaicRefAcqTimes (ms, one per tile) as dcm2niix takes them: the first
    volume's when they span no more than the TR and as long as the second volume's;
    else the second's, from its first time (CMRR's sequences write bogus times into
    the first volume). In protocol order: tiles saved H>>F are reversed."""
    longest = repetition_ms if repetition_ms else math.inf
    first = vendors.numbers(csa.get("MosaicRefAcqTimes"))[:depth]
    second: list[float] = []
    if len(slices) > 1:
        header = read(slices[1].path, stop_before_pixels=True)
        second = vendors.numbers(vendors.siemens_csa(header).get("MosaicRefAcqTimes"))[:depth]

    def span(times: list[float]) -> float | None:
        if len(times) != depth or min(times) < 0:
            return None
        extent = max(times) - min(times)
        return extent if 0 < extent <= longest else None

    first_span, second_span = span(first), span(second)
    if first_span is not None and (
        second_span is None or abs(first_span - second_span) <= _SAME_MS
    ):
        chosen = first
    elif second_span is not None:
        chosen = [t - min(second) for t in second]
    else:
        return None
    ordered = chosen[::-1] if vendors.mosaic_head_first(csa) else chosen
    return [round(t * _MS, 6) for t in ordered]


def _planned_mosaic_timing(
    csa: dict[str, Any], protocol: dict[str, str], depth: int, repetition_ms: float | None
) -> list[float] | None:
    """The slice times a Siemens protocol plans, for mosaics that give no
    MosaicRefAcqTimes (software up to VB12): single-band slices excited evenly over the
    TR less the delay in TR (lDelayTimeInTR, us), in the order of sSliceArray.ucMode (1
    ascending, 2 descending, 4 interleaved: from the first slice for an odd count, the
    second for an even one), as dcm2niix rescues them; None for other orders."""
    mode = vendors.protocol_code(protocol.get("sSliceArray.ucMode"))
    band = protocol.get("sSliceAcceleration.lMultiBandFactor", "1")
    if not repetition_ms or depth < 2 or (band.isdigit() and int(band) > 1):
        return None
    delay = vendors.numbers(protocol.get("lDelayTimeInTR"))
    step = (repetition_ms - (delay[0] / 1000 if delay else 0.0)) / depth
    half = (depth + 1) // 2
    odd_count = depth % 2 == 1
    orders = {
        1: list(range(depth)),
        2: list(range(depth))[::-1],
        4: [i // 2 + (0 if (i % 2 == 0) == odd_count else half) for i in range(depth)],
    }
    ranks = orders.get(mode) if mode is not None else None
    if ranks is None or step <= 0:
        return None
    ordered = ranks[::-1] if vendors.mosaic_head_first(csa) else ranks
    return [round(rank * step * _MS, 6) for rank in ordered]


class _GePlan(NamedTuple):
    repetition_ms: float
    delay_ms: float
    interleaved: bool
    protocol: dict[str, str]


def _ge_plan(header: Dataset, fields: vendors.Fields, repetition_ms: float) -> _GePlan | None:
    """How dcm2niix models a GE EPI's timing: the TR and group delay, and whether slices
    are interleaved, for fMRI (epiRT) and multi-phase (epi) sequences, from the
    protocol data block; None for other sequences (diffusion among them)."""
    protocol = vendors.ge_protocol(header)
    if not protocol:
        return None
    sequence = vendors.ge_epi_sequence(fields)
    options = protocol.get("IOPT", "")
    repetition = repetition_ms + max(sequence.group_delay_ms, 0.0)
    delay = sequence.group_delay_ms
    if sequence.kind == "epiRT" or "FMRI" in options:
        return _GePlan(repetition, delay, protocol.get("SLICEORDER", "1") != "0", protocol)
    if sequence.kind == "epi" or "MPh" in options:
        planned = _ge_multiphase_delay(protocol)
        if planned is None:
            return None  # variable delays: not modelled
        if planned > 0:
            repetition, delay = repetition + planned, planned
        return _GePlan(repetition, delay, True, protocol)
    return _GePlan(repetition, delay, True, protocol) if sequence.kind == "pepolar" else None


def _ge_timing(
    header: Dataset, fields: vendors.Fields, depth: int, volumes: int
) -> list[float] | None:
    """GE EPI: slices excited evenly over the TR less the group delay, in groups of the
    multiband factor, sequentially or interleaved (:func:`_ge_plan`); None for other
    sequences, single volumes and early hyperband."""
    found = vendors.numbers(fields.public("RepetitionTime"))
    version = vendors.ge_software_version(str(_joined(fields.public("SoftwareVersions"))))
    if volumes < 2 or not found or version is None:
        return None
    plan = _ge_plan(header, fields, found[0])
    if plan is None:
        return None
    major, release_27r3 = version
    band = _ge_band(header, fields, plan.protocol)
    excitations = math.ceil(depth / band)
    if band > 1 and major < 26.0:
        return None  # early hyperband: dcm2niix cannot tell either
    if band > 1 and not release_27r3 and excitations % 2 == 0:
        excitations += 1
    step = (plan.repetition_ms - plan.delay_ms) / excitations
    if plan.interleaved:
        odd = (excitations - 1) // 2
        ranks = [i // 2 if i % 2 == 0 else odd + (i + 1) // 2 for i in range(excitations)]
        if band > 1 and release_27r3 and excitations > 2 and excitations % 2 == 0:
            ranks[-1], ranks[-3] = ranks[-3], ranks[-1]
    else:
        ranks = list(range(excitations))
    times = [round(ranks[i % excitations] * step * _MS, 6) for i in range(depth)]
    return times[::-1] if _ge_starts_at_far_end(header) else times


def _ge_band(
    header: Dataset, fields: vendors.Fields, protocol: dict[str, str] | None = None
) -> int:
    """GE's multiband factor: (0043,xxB6), or MBACCEL of the protocol data block."""
    protocol = vendors.ge_protocol(header) if protocol is None else protocol
    return max(vendors.ge_multiband(fields), _integer(protocol.get("MBACCEL")) or 1, 1)


def _ge_multiphase_delay(protocol: dict[str, str]) -> float | None:
    """The group delay (ms) of a GE multi-phase EPI; None for variable delays."""
    options = protocol.get("IOPT", "")
    if "MPhVar" in options:
        return None
    if "MPh" in options and protocol.get("DELACQ") == "Minimum":
        return 0.0
    try:
        return float(protocol.get("DELACQNOAV", "0")) * 1000.0
    except ValueError:
        return 0.0


def _ge_starts_at_far_end(header: Dataset) -> bool:
    """Whether the acquisition began at the last written slice: GE's first scan
    location (0019,xx19) lies nearer its last scan location (0019,xx1B) than the
    first slice (``header``) does."""
    first = _first_number(vendors.private_value(header, 0x0019, vendors.GE_ACQUISITION, 0x19))
    last = _first_number(vendors.private_value(header, 0x0019, vendors.GE_ACQUISITION, 0x1B))
    here = _first_number(header.get("SliceLocation"))
    if first is None or last is None or here is None:
        return False
    return abs(here - last) < abs(here - first)


def _first_number(value: Any) -> float | None:
    found = vendors.numbers(value)
    return found[0] if found else None


def _integer(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _joined(value: Any) -> str:
    """A multi-valued string as stored, with backslashes."""
    if isinstance(value, str) or value is None:
        return value or ""
    return "\\".join(str(v) for v in value)
