"""The public API surface and a light import."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import dicomlens


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert sorted(dicomlens.__all__) == dicomlens.__all__
    for name in dicomlens.__all__:
        value = getattr(dicomlens, name)
        assert not isinstance(value, types.ModuleType), name
    assert set(dicomlens.__all__) <= set(dir(dicomlens))
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        dicomlens.nothing  # noqa: B018


def test_all_covers_every_public_name_of_the_exporting_modules() -> None:
    from dicomlens import (
        access,
        anonymization,
        differences,
        editing,
        errors,
        profile,
        reading,
        scanning,
        tags,
        volume,
    )

    exported = set(dicomlens.__all__)
    modules = (access, anonymization, differences, editing, errors, profile, reading, scanning)
    for module in (*modules, tags, volume):
        wanted = {
            "read",
            "get",
            "find",
            "diff",
            "lookup",
            "parse_tag",
            "format_tag",
            "search_tags",
            "scan",
            "edit",
            "anonymize",
            "deidentify",
        }
        classes = {n for n in module.__all__ if isinstance(getattr(module, n), type)}
        assert (set(module.__all__) & wanted) | (classes - _NOT_EXPORTED) <= exported, module


_NOT_EXPORTED = {
    "ElementRef",
    "PathStep",
    "ReadResult",
    "LaidOut",
    "Layout",
    "Likeness",
    "Change",
    "DifferenceKind",
    "Action",
    "Edit",
    "FileEdit",
    "FolderDiff",
    "ScanResult",
    "Window",
    "Deidentified",
    "FileAnonymization",
    "Needle",
    "Option",
    "Treatment",
}


def test_import_stays_light() -> None:
    code = (
        "import sys, dicomlens, dicomlens.cli\n"
        "heavy = {'sqlite3', 'nibabel', 'starlette', 'uvicorn', 'dask', 'pyarrow', 'PIL'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_api_from_the_product_page(ct_small: object) -> None:
    ds = dicomlens.read(ct_small)  # type: ignore[arg-type]
    assert dicomlens.get(ds, "(0028, 0010)") == 128
    info = dicomlens.lookup("window center")
    assert (info.keyword, info.VR, info.VM) == ("WindowCenter", "DS", "1-n")
    assert [m.path for m in dicomlens.find(ds, "TypeOfPatientID")] == [
        "OtherPatientIDsSequence[0].TypeOfPatientID",
        "OtherPatientIDsSequence[1].TypeOfPatientID",
    ]


@pytest.mark.parametrize("package", ["dicomlens", "dicomlens.catalog"])
def test_exported_names_stay_functions_after_every_submodule_is_imported(package: str) -> None:
    """A submodule named like an exported function would replace it on the package
    once imported (``dicomlens.catalog.query`` did); run in a fresh interpreter."""
    script = f"""
import importlib, pkgutil, types
package = importlib.import_module({package!r})
for info in pkgutil.iter_modules(package.__path__):
    if not info.name.startswith("_") and info.name not in ("cli", "viewer"):
        importlib.import_module(f"{package}.{{info.name}}")
shadowed = [n for n in package.__all__ if isinstance(getattr(package, n), types.ModuleType)]
assert not shadowed, shadowed
"""
    subprocess.run([sys.executable, "-c", script], check=True)
