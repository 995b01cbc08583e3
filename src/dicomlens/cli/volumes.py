"""``series``, ``volume`` and ``render``: series, volumes and pictures."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from dicomlens.cli._common import (
    PROG,
    Progress,
    command,
    end_startup,
    print_json,
    print_table,
    report_error,
    summarise,
)
from dicomlens.errors import (
    EXIT_FAILED,
    EXIT_OK,
    FileError,
    SeriesError,
    UsageError,
)

# ---------------------------------------------------------------------------
# series, volume, render
# ---------------------------------------------------------------------------


def add_series(commands: Any) -> None:
    sub = command(
        commands,
        "series",
        _run_series,
        "List the series in folders: size, spacing, orientation and a geometry verdict.",
        "  dicomlens series dicom_data/\n"
        "  dicomlens series --json dicom_data/ | jq '.[0].geometry'\n",
    )
    _add_source(sub)
    sub.add_argument(
        "--json", action="store_true", help="print every series with its geometry report"
    )


def _run_series(args: argparse.Namespace) -> int:
    result = _scan(args)
    if args.json:
        print_json([{**s.summary(), "geometry": s.report.to_dict()} for s in result.series])
    else:
        rows = []
        for s in result.series:
            row = s.summary()
            spacing = "x".join(_mm(v) for v in row["spacing"]) if row["spacing"] else ""
            rows.append(
                [
                    "" if row["number"] is None else str(row["number"]),
                    row["description"],
                    row["modality"],
                    str(row["files"]),
                    "x".join(map(str, row["shape"])),
                    row["kind"],
                    spacing,
                    row["orientation"],
                    row["verdict"] + (f" ({row['split']})" if row["split"] else ""),
                ]
            )
        header = [
            "#",
            "DESCRIPTION",
            "MODALITY",
            "FILES",
            "ROWSxCOLSxSLICES[xVOLUMES]",
            "KIND",
            "SPACING",
            "ORIENT",
            "GEOMETRY",
        ]
        print_table(header, rows)
    return _scan_status(result)


def add_volume(commands: Any) -> None:
    sub = command(
        commands,
        "volume",
        _run_volume,
        "Build the 3-D or 4-D volume of a series and write it as NIfTI or NumPy with a JSON "
        "sidecar (BIDS fields as dcm2niix writes them; .bval/.bvec for diffusion).",
        "  dicomlens volume dicom_data/ -o ct.nii.gz          # writes ct.nii.gz and ct.json\n"
        "  dicomlens volume study/ --series 3 -o t1.npz\n"
        "  dicomlens volume dwi/ -o dwi.nii.gz                # + dwi.bval, dwi.bvec (FSL)\n"
        "  dicomlens volume bold/ -o bold.nii.gz --split      # bold_0001.nii.gz, ...\n"
        "  dicomlens volume tilted_ct/ -o ct.nii.gz --resample  # equidistant, tilt removed\n"
        "  dicomlens volume study/ --series 1.2.840.113619.2.55.3 -o ct.nii --stored\n",
    )
    _add_series_choice(sub, output="OUT", output_help=".nii.gz, .nii, .npz or .npy")
    values = sub.add_mutually_exclusive_group()
    values.add_argument(
        "--stored", action="store_true", help="stored values, without RescaleSlope/Intercept"
    )
    values.add_argument(
        "--philips-display",
        action="store_true",
        help="Philips MR: the display values (RescaleSlope/Intercept only) instead of Philips' "
        "floating-point values, which dcm2niix writes by default",
    )
    sub.add_argument(
        "--strict",
        action="store_true",
        help="fail on missing slices, duplicate positions or irregular spacing",
    )
    sub.add_argument(
        "--split", action="store_true", help="write a 4-D series as one 3-D file per volume"
    )
    sub.add_argument(
        "--resample",
        action="store_true",
        help="resample a tilted or irregularly spaced series onto equidistant slices along the "
        "slice normal (dcm2niix's _Tilt_Eq); the sidecar keeps the geometry as acquired",
    )
    sub.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="convert a 4-D series whose volumes lack slices (zeros, reported) or have extra ones",
    )


def _add_source(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="folders, files or glob patterns (with --catalog or --parquet: limit to those "
        "under them)",
    )
    sub.add_argument(
        "--catalog",
        metavar="FILE",
        help="take the headers from this catalog (dicomlens index) instead of reading them",
    )
    sub.add_argument(
        "--parquet",
        metavar="DIR",
        help="take the headers from this Parquet catalog (dicomlens index --parquet)",
    )


def _add_series_choice(sub: argparse.ArgumentParser, *, output: str, output_help: str) -> None:
    _add_source(sub)
    sub.add_argument("-o", "--output", required=True, metavar=output, help=output_help)
    sub.add_argument(
        "--series",
        metavar="N|UID",
        help="series number or UID (needed when there are several); N:P for part P of a "
        "series that `dicomlens series` shows split",
    )
    sub.add_argument(
        "--skip-bad", action="store_true", help="go on without files that cannot be read (exit 1)"
    )
    sub.add_argument(
        "--max-image-gb",
        type=float,
        default=4.0,
        metavar="GB",
        help="largest decoded image of one file accepted, in GiB (default 4)",
    )


def _image_limit(args: argparse.Namespace) -> int:
    return int(args.max_image_gb * 2**30)


def _chosen_series(args: argparse.Namespace) -> tuple[Any, Any]:
    """Scan the paths and pick the series --series names (or the only one).

    A file that could not be read may have been a slice of it: that stops the
    command unless --skip-bad says to go on without such files.
    """
    from dicomlens.scanning import select_series

    result = _scan(args)
    if result.errors and not args.skip_bad:
        raise SeriesError(
            f"{len(result.errors)} file(s) could not be read (above) and may be slices of this "
            "series; repair or remove them, or pass --skip-bad to go on without them"
        )
    return result, select_series(result.series, args.series)


def _run_volume(args: argparse.Namespace) -> int:
    from dicomlens.export import nifti_in_place, save_volume
    from dicomlens.volume.pixels import dtype_name

    result, series = _chosen_series(args)
    # a plain .nii as loaded: the voxels go straight into the file (rows flipped)
    direct = str(args.output).endswith(".nii") and not (args.split or args.resample)
    direct = direct and not _turned_to_ras(series)
    with nifti_in_place(args.output) if direct else contextlib.nullcontext() as in_place:
        volume = series.volume(
            rescale=not args.stored,
            strict=args.strict,
            allow_incomplete=args.allow_incomplete,
            max_image_bytes=_image_limit(args),
            allocate=None if in_place is None else in_place.allocate,
            philips_precise=not args.philips_display,
        )
        info: dict[str, Any] = {"series": series.summary()}
        if args.resample:
            from dicomlens.volume.resampling import resample_equidistant

            info["acquired"] = {"affine_lps": volume.affine_lps.round(6).tolist(),
                                "slices": volume.slices}  # fmt: skip
            volume = resample_equidistant(volume)
        written = save_volume(volume, args.output, info=info, series=series, split=args.split,
                              in_place=in_place)  # fmt: skip
    shape = "x".join(map(str, volume.array.shape))
    verdict = volume.report.verdict
    images = [path for path in written if path.suffix not in (".json", ".bval", ".bvec")]
    others = [str(path) for path in written if path.suffix in (".bval", ".bvec")]
    if len(images) > 1:
        where = f"{len(images)} volumes as {images[0]} ... {images[-1].name}, each with a sidecar"
    else:
        where = f"sidecar {written[1]}"
    also = "".join(f", {path}" for path in others)
    voxels = dtype_name(volume.array.dtype)
    print(f"{args.output}: {shape} {voxels}, geometry {verdict}; {where}{also}")
    for note in volume.report.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    return _scan_status(result)


def _turned_to_ras(series: Any) -> bool:
    """Whether the series is a 3-D acquisition that NIfTI stores turned to RAS."""
    from dicomlens.reading import read
    from dicomlens.volume.orientation import turned_to_ras

    header = read(series.first.path, stop_before_pixels=True)
    return turned_to_ras(header, series.report, series.report.slices)


def add_render(commands: Any) -> None:
    sub = command(
        commands,
        "render",
        _run_render,
        "Render a slice (or a montage of all slices) as a PNG with window/level.",
        "  dicomlens render dicom_data/ -o middle.png\n"
        "  dicomlens render dicom_data/ --slice 10 --preset lung -o lung.png\n"
        "  dicomlens render ct.dcm --window 40,400 -o ct.png\n"
        "  dicomlens render dicom_data/ --montage -o all.png\n"
        "  dicomlens render chest_cr.dcm -o chest.png        # radiographs, US, NM: 2-D images\n"
        "  dicomlens render cine.dcm --frame 12 -o frame.png\n",
    )
    _add_series_choice(sub, output="OUT.png", output_help="the picture to write")
    where = sub.add_mutually_exclusive_group()
    where.add_argument(
        "--slice", type=int, metavar="N", help="slice index in sorted order (default: middle)"
    )
    where.add_argument("--montage", action="store_true", help="every slice in one picture")
    sub.add_argument(
        "--frame",
        type=int,
        metavar="N",
        help="frame of a multi-frame image (cine, NM), or volume of a 4-D series (from 0)",
    )
    how = sub.add_mutually_exclusive_group()
    how.add_argument("--window", metavar="C,W", help="window center and width, e.g. 40,400")
    how.add_argument(
        "--preset",
        metavar="NAME",
        help="brain, subdural, lung, mediastinum, bone, abdomen, liver, or a window of the file "
        "(its number or explanation); default: the file's first window",
    )


def _run_render(args: argparse.Namespace) -> int:
    from dicomlens.export import montage, save_png
    from dicomlens.rendering import render_series

    window = _parse_window(args.window) if args.window else None
    result, series = _chosen_series(args)
    images = render_series(
        series,
        index=args.slice,
        all_slices=args.montage,
        window=window,
        preset=args.preset,
        frame=args.frame,
        max_image_bytes=_image_limit(args),
    )
    save_png(montage(images) if args.montage else images[0], args.output)
    print(f"{args.output}: {len(images)} slice{'s' if len(images) != 1 else ''} of {series}")
    return _scan_status(result)


def _parse_window(text: str) -> tuple[float, float]:
    try:
        center, width = (float(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--window {text!r}: expected CENTER,WIDTH such as 40,400") from None
    if width <= 0:
        raise UsageError(f"--window {text!r}: the width must be positive")
    return center, width


def _scan(args: argparse.Namespace) -> Any:
    """The series under the paths: from their headers, or from the catalog."""
    from dicomlens.scanning import ScanResult, group_series, scan_folder

    end_startup()
    paths = args.paths
    if args.catalog or args.parquet:
        from dicomlens.cli.cataloging import open_catalog

        with open_catalog(args) as catalog:
            result = ScanResult(group_series(catalog.slices(paths)))
        if not result.series:
            where = f" under {', '.join(paths)}" if paths else ""
            raise FileError(f"{args.catalog or args.parquet}: no DICOM images recorded{where}")
        return result
    if not paths:
        raise UsageError(
            "give folders, files or patterns to read (or --catalog FILE, or --parquet DIR)"
        )
    progress = Progress("scanning") if sys.stderr.isatty() else None
    result = scan_folder(paths, progress=progress)
    if progress is not None:
        progress.done()
    for error in result.errors:
        report_error(error)
    if not result.series and result.errors:
        raise SeriesError(f"no readable DICOM images ({len(result.errors)} file(s) failed)")
    if not result.series:
        raise FileError(f"{', '.join(paths)}: no DICOM images found")
    return result


def _scan_status(result: Any) -> int:
    if result.errors or result.skipped:
        summarise(
            f"{len(result.series)} series",
            len(result.errors),
            result.skipped,
            failed_label="files failed",
        )
    return EXIT_FAILED if result.errors else EXIT_OK


def _mm(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"
