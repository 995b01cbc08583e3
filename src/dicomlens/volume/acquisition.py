"""How an image was acquired, as the BIDS sidecar says it with dcm2niix's names and
units: the phase encoding (direction for the array as written, echo spacing,
readout time), the k-space matrix, parallel imaging, and the scanner settings the
standard attributes, Siemens' CSA headers and GE's private fields give.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from dicomlens import vendors

__all__ = ["ct_fields", "mr_fields", "phase_direction", "siemens_protocol_fields"]

_MS: Final = 1e-3
_POSITIVE_NUMBERS: Final = (  # (BIDS name, DICOM keyword, factor): written when positive
    ("PixelBandwidth", "PixelBandwidth", 1.0),
    ("PercentPhaseFOV", "PercentPhaseFieldOfView", 1.0),
    ("PercentSampling", "PercentSampling", 1.0),
    ("SAR", "SAR", 1.0),
)
_CT_NUMBERS: Final = (
    ("ExposureTime", "ExposureTime", _MS),
    ("XRayTubeCurrent", "XRayTubeCurrent", 1.0),
    ("XRayExposure", "Exposure", 1.0),
)
_COIL_COMBINATION: Final = {1: "Sum of Squares", 2: "Adaptive Combine"}
_COIL_MODES: Final = {1: "SENSE", 2: "GRAPPA"}
_DIFFUSION_SCHEMES: Final = {1: "Bipolar", 2: "Monopolar"}  # sDiffusion.dsScheme
_READOUT_SCHEMES: Final = {1: "Monopolar", 2: "Bipolar"}  # ucReadOutMode, of older protocols
_SPOILING_TYPES: Final = {"RF": "RF", "GRADIENT": "GRADIENT", "RF_AND_GRADIENT": "COMBINED"}
_PARTIAL_FOURIER: Final = {1: 0.5, 2: 0.625, 4: 0.75, 8: 0.875}
_SHIMS: Final = (
    ("sGRADSPEC.asGPAData[0].lOffsetX", "sGRADSPEC.lOffsetX"),
    ("sGRADSPEC.asGPAData[0].lOffsetY", "sGRADSPEC.lOffsetY"),
    ("sGRADSPEC.asGPAData[0].lOffsetZ", "sGRADSPEC.lOffsetZ"),
    *((f"sGRADSPEC.alShimCurrent[{n}]",) for n in range(5)),
)


def phase_direction(find: Any) -> str:
    """ROW or COL (enhanced files say ROW or COLUMN); empty when unknown."""
    text = str(find("InPlanePhaseEncodingDirection") or "").strip()
    return {"COLUMN": "COL"}.get(text, text) if text in ("ROW", "COL", "COLUMN") else ""


def mr_fields(
    fields: vendors.Fields,
    vendor: str,
    csa: dict[str, Any],
    protocol: dict[str, str],
    shape: tuple[int, ...],
    affine_ras: NDArray[np.float64],
    *,
    reversed_polarity: bool = False,
) -> dict[str, Any]:
    """The MR acquisition fields dcm2niix writes for an array of ``shape`` written with
    ``affine_ras``: matrix sizes, bandwidths, parallel imaging, the phase encoding
    direction (2-D acquisitions; turned round for GE's reversed-polarity images, which
    the header does not say), effective echo spacing and total readout time."""
    find = fields.public
    found: dict[str, Any] = {}
    for name, keyword, factor in _POSITIVE_NUMBERS:
        value = _number(find(keyword))
        if value is not None and value > 0:
            found[name] = _tidy(value * factor)
    inversion = _inversion_time_ms(fields, vendor)
    if inversion:
        found["InversionTime"] = _tidy(inversion * _MS)
    train = _number(find("EchoTrainLength"))
    if train is not None and train > 1:
        found["EchoTrainLength"] = int(train)
    averages = _number(find("NumberOfAverages"))
    if averages is not None and averages > 1:
        found["NumberOfAverages"] = _tidy(averages)
    steps = _number(find("NumberOfPhaseEncodingSteps")) or _number(
        find("MRAcquisitionPhaseEncodingStepsInPlane")
    )
    if steps is not None and steps > 0:
        found["PhaseEncodingSteps"] = int(steps)
    acquired = _acquired_lines(find)
    if acquired:
        found["AcquisitionMatrixPE"] = acquired
    direction = phase_direction(find)
    recon = _recon_lines(shape, direction)
    if recon:
        found["ReconMatrixPE"] = recon
    accelerated = _parallel_factor(fields, vendor, protocol)
    if accelerated is not None and accelerated >= 1:
        found["ParallelReductionFactorInPlane"] = _tidy(accelerated)
    if vendor == "GE" and len(shims := _ge_shims(fields)) == 3:
        found["ShimSetting"] = shims
    bandwidth = _phase_bandwidth(fields, vendor, csa)
    if bandwidth:
        found["BandwidthPerPixelPhaseEncode"] = _tidy(bandwidth)
    spacing = _effective_echo_spacing(fields, vendor, bandwidth, recon, acquired, accelerated)
    if spacing and recon:
        found["EffectiveEchoSpacing"] = round(spacing, 9)
        found["TotalReadoutTime"] = round(spacing * (recon - 1), 7)
    if bandwidth and recon:
        oversampling = _number(protocol.get("sKSpace.dPhaseOversamplingForDialog")) or 0.0
        factor = (1.0 / accelerated if accelerated and accelerated > 1 else 1.0) * (
            1.0 + oversampling
        )
        found["DerivedVendorReportedEchoSpacing"] = round(1.0 / (bandwidth * factor * recon), 9)
    if vendor == "Philips":
        found.update(_philips_readout(fields, recon, estimate="EffectiveEchoSpacing" not in found))
    xa_dwell = fields.private(0x0021, vendors.SIEMENS_XA_IMAGE, 0x42)
    dwell = _number(csa.get("RealDwellTime")) or _number(xa_dwell)
    if vendor == "Siemens" and dwell and dwell > 0:
        found["DwellTime"] = dwell * 1e-9
    found.update(_phase_encoding(fields, vendor, csa, direction, affine_ras, reversed_polarity))
    found.update(_spoiling(find))
    duration = _acquisition_duration(fields, vendor)
    if duration:
        found["AcquisitionDuration"] = _tidy(duration)
    return found


def ct_fields(find: Any) -> dict[str, Any]:
    """X-ray exposure fields (ExposureTime in seconds, tube current in mA, exposure in
    mAs) and the reconstruction kernel."""
    found: dict[str, Any] = {}
    for name, keyword, factor in _CT_NUMBERS:
        value = _number(find(keyword))
        if value is not None and value > 0:
            found[name] = _tidy(value * factor)
    kernel = find("ConvolutionKernel")
    if kernel:
        found["ConvolutionKernel"] = kernel if isinstance(kernel, str) else "\\".join(kernel)
    return found


def siemens_protocol_fields(
    protocol: dict[str, str], *, diffusion: bool = False, phase: bool = False
) -> dict[str, Any]:
    """Fields of the Siemens ASCII protocol (the CSA series header) dcm2niix reports;
    the DiffusionScheme only for a ``diffusion`` series, the two echo times of a field
    map (EchoTime1, EchoTime2) only for ``phase`` images."""
    found: dict[str, Any] = {}

    def code(key: str) -> int:
        return vendors.protocol_code(protocol.get(key)) or 0

    scheme = _DIFFUSION_SCHEMES.get(code("sDiffusion.dsScheme"))
    scheme = scheme or _READOUT_SCHEMES.get(code("ucReadOutMode"))
    if diffusion and scheme:
        found["DiffusionScheme"] = scheme
    first, second = (_number(protocol.get(f"alTE[{n}]")) for n in (0, 1))  # microseconds
    if phase and first and second and first > 0 and second > 0:
        found["EchoTime1"], found["EchoTime2"] = round(first * 1e-6, 9), round(second * 1e-6, 9)
    partial = code("sKSpace.ucPhasePartialFourier")
    if partial:  # 0x1 4/8, 0x2 5/8, 0x4 6/8, 0x8 7/8; 0x10 off
        found["PartialFourier"] = _PARTIAL_FOURIER.get(partial, 1)
    for name, key in (("BaseResolution", "sKSpace.lBaseResolution"),
                      ("RefLinesPE", "sPat.lRefLinesPE")):  # fmt: skip
        value = _number(protocol.get(key))
        if value is not None and value > 0:
            found[name] = int(value)
    for name, key in (("TxRefAmp", "sTXSPEC.asNucleusInfo[0].flReferenceAmplitude"),
                      ("PhaseResolution", "sKSpace.dPhaseResolution")):  # fmt: skip
        value = _number(protocol.get(key))
        if value is not None and value > 0:
            found[name] = _tidy(value)
    shims = [_first_key(protocol, keys) for keys in _SHIMS]
    if shims[0]:
        found["ShimSetting"] = [_tidy(value) for value in shims]
    coil = next((v for k, v in protocol.items() if k.endswith("sCoilElementID.tCoilID")), "")
    if coil:
        found["ReceiveCoilName"] = coil
    if sequence := protocol.get("tSequenceFileName"):
        found["PulseSequenceDetails"] = sequence
    accelerated = _number(protocol.get("sPat.lAccelFactPE"))
    mode = _COIL_MODES.get(code("sPat.ucPATMode"))
    if accelerated and accelerated > 0 and mode:
        found["MatrixCoilMode"] = mode
    combination = _COIL_COMBINATION.get(code("ucCoilCombineMode"))
    if combination:
        found["CoilCombinationMethod"] = combination
    consistency = (protocol.get("sProtConsistencyInfo.tMeasuredBaselineString")
                   or protocol.get("sProtConsistencyInfo.tBaselineString")
                   or protocol.get("sProtConsistencyInfo.ulConvFromVersion"))  # fmt: skip
    if consistency:
        found["ConsistencyInfo"] = consistency
    return found


def _inversion_time_ms(fields: vendors.Fields, vendor: str) -> float | None:
    """InversionTime (0018,0082), the first of enhanced files' InversionTimes
    (0018,9079), or Philips' prepulse delay (2001,xx1B); None unless positive."""
    value = _number(fields.public("InversionTime")) or _number(fields.public("InversionTimes"))
    if not value and vendor == "Philips":
        value = _number(fields.private(0x2001, vendors.PHILIPS_IMAGING, 0x1B))
    return value if value and value > 0 else None


def _philips_readout(
    fields: vendors.Fields, recon: int | None, *, estimate: bool
) -> dict[str, Any]:
    """Philips' WaterFatShift (2001,xx22) in pixels and, when ``estimate`` (no echo
    spacing known otherwise), the echo spacing and readout time it implies for an EPI:
    actual spacing = shift / (frequency x 3.4 ppm x (EPI factor + 1)), readout = actual
    spacing x EPI factor, effective spacing = readout / (recon lines - 1)."""
    shift = _number(fields.private(0x2001, vendors.PHILIPS_IMAGING, 0x22))
    if not shift:
        return {}
    found: dict[str, Any] = {"WaterFatShift": _tidy(round(shift, 6))}
    frequency = _number(fields.public("ImagingFrequency")) or _number(
        fields.public("TransmitterFrequency")
    )
    train = _number(fields.public("EchoTrainLength")) or _number(
        fields.private(0x2001, vendors.PHILIPS_IMAGING, 0x13)
    )
    if estimate and frequency and train and train > 0 and recon and recon > 1:
        readout = shift / (frequency * 3.4 * (train + 1)) * train
        found["EstimatedEffectiveEchoSpacing"] = round(readout / (recon - 1), 9)
        found["EstimatedTotalReadoutTime"] = round(readout, 7)
    return found


def _spoiling(find: Any) -> dict[str, Any]:
    """SpoilingState (and SpoilingType) from Spoiling (0018,9016) of enhanced files, else
    True when the SequenceVariant says SP (spoiled); nothing when neither says."""
    spoiling = str(find("Spoiling") or "").strip().upper()
    if spoiling == "NONE":
        return {"SpoilingState": False}
    if spoiling in _SPOILING_TYPES:
        return {"SpoilingState": True, "SpoilingType": _SPOILING_TYPES[spoiling]}
    variant = find("SequenceVariant")
    variants = [variant] if isinstance(variant, str) else list(variant or ())
    return {"SpoilingState": True} if "SP" in variants else {}


def _acquisition_duration(fields: vendors.Fields, vendor: str) -> float | None:
    """How long the acquisition took (s): GE's (0019,xx5A)[GEMS_ACQU_01] in microseconds
    (finer), else AcquisitionDuration (0018,9073); never UIH's, which holds a readout."""
    if vendor == "UIH":
        return None
    if vendor == "GE":
        micro = _number(fields.private(0x0019, vendors.GE_ACQUISITION, 0x5A))
        if micro and micro > 0:  # a 32-bit float: six significant digits are real
            return float(f"{micro * 1e-6:.6g}")
    seconds = _number(fields.public("AcquisitionDuration"))
    return seconds if seconds and seconds > 0 else None


def _phase_encoding(
    fields: vendors.Fields,
    vendor: str,
    csa: dict[str, Any],
    direction: str,
    affine_ras: NDArray[np.float64],
    reversed_polarity: bool,
) -> dict[str, Any]:
    """PhaseEncodingDirection of a 2-D acquisition in the written voxel axes, or only
    PhaseEncodingAxis when the polarity is unknown."""
    orientation = vendors.numbers(fields.public("ImageOrientationPatient"))
    if direction not in ("ROW", "COL") or len(orientation) != 6:
        return {}
    if str(fields.public("MRAcquisitionType") or "") == "3D":
        return {}
    positive = _polarity(fields, vendor, csa)
    if positive is not None and reversed_polarity:
        positive = not positive
    cosine = np.array(orientation[:3] if direction == "ROW" else orientation[3:])
    world = cosine * (1.0 if positive is None or positive else -1.0)
    found_axis = _voxel_axis(world, affine_ras)
    if found_axis is None:
        return {}
    axis, sign = found_axis
    if positive is None:
        return {"PhaseEncodingAxis": axis}
    return {"PhaseEncodingDirection": axis + ("-" if sign < 0 else "")}


def _polarity(fields: vendors.Fields, vendor: str, csa: dict[str, Any]) -> bool | None:
    """Whether phase encoding runs along the row or column cosine (True) or against it."""
    if vendor == "Siemens":
        value = csa.get("PhaseEncodingDirectionPositive")
        if value is None:
            value = fields.private(0x0021, vendors.SIEMENS_XA_IMAGE, 0x1C)
        found = vendors.numbers(value)
        return bool(found[0]) if found else None
    if vendor == "GE":
        reordering = str(fields.public("RectilinearPhaseEncodeReordering") or "")
        if reordering in ("LINEAR", "REVERSE_LINEAR"):
            return reordering == "REVERSE_LINEAR"
        flipped = vendors.ge_phase_flipped(fields)
        return None if flipped is None else not flipped
    return None


def _voxel_axis(
    world_lps: NDArray[np.float64], affine_ras: NDArray[np.float64]
) -> tuple[str, int] | None:
    """The voxel axis (``i``, ``j`` or ``k``) closest to a patient direction, and its
    sign; None when the image axes are degenerate."""
    lengths = np.linalg.norm(affine_ras[:3, :3], axis=0)
    axes = affine_ras[:3, :3] / np.where(lengths > 0, lengths, 1.0)
    if not np.isfinite(axes).all() or abs(np.linalg.det(axes)) < 1e-6:
        return None
    voxel = np.linalg.solve(axes, world_lps * np.array([-1.0, -1.0, 1.0]))
    index = int(np.argmax(np.abs(voxel)))
    return "ijk"[index], 1 if voxel[index] > 0 else -1


def _acquired_lines(find: Any) -> int | None:
    """Phase-encoding lines acquired: AcquisitionMatrix's non-zero phase entry, or
    MRAcquisitionPhaseEncodingStepsInPlane (enhanced files)."""
    matrix = vendors.numbers(find("AcquisitionMatrix"))
    lines = (matrix[2] or matrix[3]) if len(matrix) == 4 else 0.0
    if not lines:
        lines = _number(find("MRAcquisitionPhaseEncodingStepsInPlane")) or 0.0
    return int(lines) if lines > 0 else None


def _ge_shims(fields: vendors.Fields) -> list[int]:
    """GE's linear shim currents (0043,xx02-04)[GEMS_PARM_01]."""
    found = [_number(fields.private(0x0043, vendors.GE_PARAMETERS, o)) for o in (2, 3, 4)]
    return [int(v) for v in found if v is not None]


def _recon_lines(shape: tuple[int, ...], direction: str) -> int | None:
    """Reconstructed lines along the phase direction: the written rows (COL) or columns."""
    if len(shape) < 2:
        return None
    if shape[0] == shape[1] or direction == "COL":
        return int(shape[1])
    return int(shape[0]) if direction == "ROW" else None


def _parallel_factor(
    fields: vendors.Fields, vendor: str, protocol: dict[str, str]
) -> float | None:
    """In-plane acceleration: Siemens' protocol (sPat.lAccelFactPE) or its "p2" text
    (0051,xx11), GE's ASSET factor (0043,xx83, as 1/R), else the standard attribute."""
    if vendor == "Siemens":
        value = _number(protocol.get("sPat.lAccelFactPE"))
        text = str(fields.private(0x0051, vendors.SIEMENS_MR, 0x11) or "")
        digits = text.split("p", 1)[1] if "p" in text else ""
        digits = digits[: len(digits) - len(digits.lstrip("0123456789."))]
        value = value or _number(digits)
        if value:
            return value
    if vendor == "GE":
        asset = vendors.numbers(fields.private(0x0043, vendors.GE_PARAMETERS, 0x83))
        if asset and asset[0] > 0:
            return 1.0 / asset[0]
    return _number(fields.public("ParallelReductionFactorInPlane"))


def _phase_bandwidth(fields: vendors.Fields, vendor: str, csa: dict[str, Any]) -> float | None:
    """Siemens' bandwidth per pixel along the phase direction (Hz)."""
    if vendor != "Siemens":
        return None
    for value in (csa.get("BandwidthPerPixelPhaseEncode"),
                  fields.private(0x0019, vendors.SIEMENS_MR, 0x28),
                  fields.private(0x0021, vendors.SIEMENS_XA_IMAGE, 0x53)):  # fmt: skip
        found = _number(value)
        if found and found > 0:
            return found
    return None


def _effective_echo_spacing(
    fields: vendors.Fields,
    vendor: str,
    bandwidth: float | None,
    recon: int | None,
    acquired: int | None,
    accelerated: float | None,
) -> float | None:
    """Effective echo spacing (s) of the reconstructed image, as dcm2niix derives it:
    Siemens 1 / (bandwidth per pixel in phase x lines); GE from its echo spacing
    (0043,xx2C, us) and the acquired lines after ASSET, rounded up to a multiple of 2
    (4 with partial Fourier)."""
    if vendor == "Siemens" and bandwidth and recon:
        return 1.0 / (bandwidth * recon)
    if vendor != "GE":
        return None
    echo = _number(fields.private(0x0043, vendors.GE_PARAMETERS, 0x2C))
    if not echo or echo <= 0 or not acquired or acquired < 2 or not recon or recon < 2:
        return None
    if not accelerated or accelerated <= 0:
        return None
    options = str(fields.public("ScanOptions") or "")
    partial = "PFF" in options or str(fields.public("PartialFourier") or "") == "YES"
    step = 4.0 if partial else 2.0
    lines = math.ceil(acquired / accelerated / step) * step
    return (lines - 1.0) * echo * 1e-6 / (acquired - 1)


def _first_key(protocol: dict[str, str], keys: tuple[str, ...]) -> float:
    for key in keys:
        value = _number(protocol.get(key))
        if value:
            return value
    return 0.0


def _number(value: Any) -> float | None:
    found = vendors.numbers(value)
    return found[0] if found and math.isfinite(found[0]) else None


def _tidy(value: float) -> float | int:
    """A number as JSON shows it best: whole numbers without a fraction."""
    return int(value) if float(value).is_integer() else float(value)
