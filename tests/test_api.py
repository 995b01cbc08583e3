"""The public API surface and a light import."""

from __future__ import annotations

import subprocess
import sys
import types

import dicomlens


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(dicomlens).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public.add("__version__")
    assert sorted(dicomlens.__all__) == dicomlens.__all__
    assert set(dicomlens.__all__) == public


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
