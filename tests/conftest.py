"""Shared fixtures: pydicom's bundled test files, the shared scanner data, broken files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
REPO = Path(__file__).resolve().parent.parent


def bundled(name: str) -> Path:
    """A test file shipped inside the pydicom wheel (never downloaded)."""
    path = TEST_FILES / name
    assert path.is_file(), f"{name} is not bundled with this pydicom"
    return path


def shared_data_root() -> Path:
    return Path(os.environ.get("DICOMLENS_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The real scanner data of ../shared/data (dcm_qa_*); skips when absent."""
    root = shared_data_root()
    if not (root / "dcm_qa_ts").is_dir():
        pytest.skip(f"shared scanner data not found at {root} (set DICOMLENS_TEST_DATA)")
    return root


@pytest.fixture
def ct_small() -> Path:
    return bundled("CT_small.dcm")


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[[str, bytes], Path]:
    """Write bytes to a file in a temporary folder."""

    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return write
