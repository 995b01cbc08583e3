"""DICOMweb conformance with a real client: ``dicomweb-client`` (PyPI) against the
server running in uvicorn on loopback, over real HTTP; and its security rules."""

from __future__ import annotations

import io
import json
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pydicom
import pytest
from conftest import bundled, serving
from PIL import Image
from pydicom.encaps import generate_frames
from pydicom.uid import generate_uid

from dicomlens.catalog import Catalog, index
from dicomlens.viewer import create_app

dicomweb_client = pytest.importorskip("dicomweb_client", reason="dicomweb-client is a test extra")

TOKEN = "test-token-0123456789"
STORE_LIMIT = 4 << 20
ROOT = "/dicomweb"


@dataclass(frozen=True)
class Served:
    url: str  # http://127.0.0.1:PORT
    port: int
    files: Path
    catalog: Path
    store: Path

    def client(self) -> Any:
        return dicomweb_client.DICOMwebClient(
            url=self.url + ROOT, headers={"Authorization": f"Bearer {TOKEN}"}
        )

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"})


def _ct_series(folder: Path) -> None:
    """Five CT slices of one series, 2.5 mm apart; the first carries an icon image
    (binary data inside a sequence)."""
    folder.mkdir()
    template = pydicom.dcmread(bundled("CT_small.dcm"))
    template.SeriesInstanceUID = generate_uid()
    base = template.pixel_array.astype(np.int16)
    for k in range(5):
        template.ImagePositionPatient = [-100.0, -100.0, 2.5 * k]
        template.InstanceNumber = k + 1
        template.SliceThickness = 2.5
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        template.PixelData = (base + 10 * k).tobytes()
        if k == 0:
            icon = pydicom.Dataset()
            icon.Rows = icon.Columns = 48
            icon.SamplesPerPixel, icon.PhotometricInterpretation = 1, "MONOCHROME2"
            icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 8, 8, 7, 0
            icon.PixelData = bytes(range(256)) * 9
            template.IconImageSequence = [icon]
        elif "IconImageSequence" in template:
            del template.IconImageSequence
        template.save_as(folder / f"{k:02d}.dcm")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("dicomweb")
    files = root / "files"
    files.mkdir()
    _ct_series(files / "ct")
    for name in ("MR_small.dcm", "SC_rgb_rle_2frame.dcm", "JPEG2000.dcm", "rtdose.dcm"):
        shutil.copy(bundled(name), files / name)
    catalog, store = root / "catalog.db", root / "store"
    index([files], catalog)
    options = {"store": store, "store_limit": STORE_LIMIT, "cors": ["https://viewer.example.org"]}
    with serving(lambda port: create_app(catalog, token=TOKEN, port=port, **options)) as port:
        yield Served(f"http://127.0.0.1:{port}", port, files, catalog, store)


def _files(served: Served) -> dict[str, Path]:
    """The served files by SOPInstanceUID."""
    return {
        pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID: path
        for path in sorted(served.files.rglob("*.dcm"))
    }


def _ct(served: Served) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(path) for path in sorted((served.files / "ct").glob("*.dcm"))]


def _parts(response: httpx.Response) -> list[tuple[str, bytes]]:
    """The parts of a multipart/related response: (Content-Type, body)."""
    assert response.status_code == 200, response.text
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/related;"), content_type
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    assert response.content.endswith(b"--" + boundary + b"--\r\n")
    found = []
    for chunk in response.content.split(b"--" + boundary)[1:-1]:
        head, body = chunk.removeprefix(b"\r\n").split(b"\r\n\r\n", 1)
        kind = next(
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-type:")
        )
        found.append((kind.split(";")[0], body.removesuffix(b"\r\n")))
    return found


def _url(ds: pydicom.Dataset) -> str:
    """The WADO-RS path of an instance."""
    return (
        f"{ROOT}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def _value(dataset: dict[str, Any], tag: str) -> Any:
    return dataset[tag].get("Value", [None])[0]


# ---------------------------------------------------------------------------
# QIDO-RS
# ---------------------------------------------------------------------------


def test_studies_are_found_by_main_and_other_attributes(served: Served) -> None:
    client = served.client()
    studies = client.search_for_studies()
    expected = {
        pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID
        for p in _files(served).values()
    }
    assert {_value(s, "0020000D") for s in studies} == expected
    ct_study = _ct(served)[0].StudyInstanceUID
    (found,) = client.search_for_studies(search_filters={"ModalitiesInStudy": "CT"})
    assert _value(found, "0020000D") == ct_study
    assert _value(found, "00201208") == 5  # NumberOfStudyRelatedInstances
    assert _value(found, "00080061") == "CT"
    assert _value(found, "00100010") == {"Alphabetic": "CompressedSamples^CT1"}
    by_date = client.search_for_studies(search_filters={"StudyDate": "20040801-20040901"})
    assert {_value(s, "00080020") for s in by_date} == {"20040826"}  # MR and NM
    assert len(by_date) == 2
    wildcard = client.search_for_studies(search_filters={"PatientName": "Compressed*MR?"})
    assert [_value(s, "00100020") for s in wildcard] == [
        pydicom.dcmread(bundled("MR_small.dcm")).PatientID
    ]
    fuzzy = client.search_for_studies(fuzzymatching=True, search_filters={"PatientName": "lest"})
    assert [_value(s, "00100010") for s in fuzzy] == [{"Alphabetic": "Lestrade^G"}]
    assert client.search_for_studies(search_filters={"PatientName": "lest"}) == []
    uids = client.search_for_studies(search_filters={"StudyInstanceUID": ct_study})
    assert len(uids) == 1


def test_what_no_url_can_name_is_not_listed_and_empty_values_have_none(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    ct = pydicom.dcmread(bundled("CT_small.dcm"))
    ct.SeriesInstanceUID, ct.SOPInstanceUID = generate_uid(), generate_uid()
    del ct.Modality  # a study whose series say no modality
    ct.save_as(tmp_path / "no_modality.dcm")
    lost = pydicom.dcmread(bundled("MR_small.dcm"))
    del lost.StudyInstanceUID  # Type 1, yet missing: no WADO-RS URL can name it
    lost.save_as(tmp_path / "no_study_uid.dcm")
    index([tmp_path], tmp_path / "catalog.db")
    app = create_app(tmp_path / "catalog.db", token=TOKEN, port=80)
    with TestClient(app, base_url="http://127.0.0.1:80",
                    headers={"Authorization": f"Bearer {TOKEN}"}) as http:  # fmt: skip
        levels = {level: http.get(f"{ROOT}/{level}").json()
                  for level in ("studies", "series", "instances")}  # fmt: skip
    assert [_value(s, "0020000D") for s in levels["studies"]] == [ct.StudyInstanceUID]
    assert [_value(s, "0020000E") for s in levels["series"]] == [ct.SeriesInstanceUID]
    assert [_value(s, "00080018") for s in levels["instances"]] == [ct.SOPInstanceUID]
    assert levels["studies"][0]["00080061"] == {"vr": "CS"}  # ModalitiesInStudy, empty


def test_series_search_matches_any_attribute(served: Served) -> None:
    client = served.client()
    ct = _ct(served)[0]
    (series,) = client.search_for_series(search_filters={"Modality": "CT"})
    assert _value(series, "0020000E") == ct.SeriesInstanceUID
    assert _value(series, "00201209") == 5
    assert series["00081190"]["Value"][0].endswith(
        f"{ROOT}/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}"
    )
    (thick,) = client.search_for_series(
        search_filters={"SliceThickness": "2.5"}, fields=["SliceThickness"]
    )
    assert _value(thick, "0020000E") == ct.SeriesInstanceUID
    assert _value(thick, "00180050") == 2.5
    in_study = client.search_for_series(study_instance_uid=ct.StudyInstanceUID)
    assert [_value(s, "0020000E") for s in in_study] == [ct.SeriesInstanceUID]
    assert client.search_for_series(search_filters={"Modality": "PT"}) == []
    # instance conditions (tested before the series are joined) with series ones
    both = {"SliceThickness": "2.5", "Modality": "CT"}
    (mixed,) = client.search_for_series(search_filters=both)
    assert _value(mixed, "0020000E") == ct.SeriesInstanceUID
    assert client.search_for_series(search_filters={**both, "Modality": "MR"}) == []
    (in_path,) = client.search_for_series(ct.StudyInstanceUID, search_filters=both)
    assert _value(in_path, "0020000E") == ct.SeriesInstanceUID
    mr = pydicom.dcmread(bundled("MR_small.dcm"), stop_before_pixels=True)
    assert client.search_for_series(mr.StudyInstanceUID, search_filters=both) == []
    (study,) = client.search_for_studies(search_filters={"SliceThickness": "2.5"})
    assert _value(study, "0020000D") == ct.StudyInstanceUID
    assert _value(study, "00201208") == 5  # every instance of the study, not the matching ones


@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_series_values_never_lose_a_result(served: Served, level: str) -> None:
    """Instance conditions look first at the series whose values may match: the same
    answers as testing every instance (the catalog read without its series values)."""
    from dicomlens.catalog import Catalog
    from dicomlens.catalog.dialects import SQLITE
    from dicomlens.dicomweb.search import parse_search, search

    ct = _ct(served)[0]
    questions = [
        [("SliceThickness", "2.5")], [("SliceThickness", "5")], [("EchoTime", "240")],
        [("ImageType", "DERIVED")], [("ImageType", "ORIG*")], [("KVP", "120")],
        [("InstanceNumber", "3")], [("Rows", "64")], [("AcquisitionDate", "19970101-19971231")],
        [("AcquisitionDate", "-19970501")], [("AcquisitionTime", "1100-1200")],
        [("SliceThickness", "2.5"), ("InstanceNumber", "4")],
        [("Rows", "10"), ("Modality", "RTDOSE")],
        [("IconImageSequence.Rows", "48")], [("ImageType", "AXIAL"), ("PatientName", "*CT*")],
        [("SOPClassUID", f"{ct.SOPClassUID},1.2.3")], [("EchoTime", "1")],
    ]  # fmt: skip
    answered = 0
    with Catalog(served.catalog, readonly=True) as catalog:
        with_values = catalog.dialect
        assert with_values.series_values
        for parameters in questions:
            for study in (None, ct.StudyInstanceUID):
                query = parse_search(level, parameters, study=study)
                catalog.dialect = with_values
                found = search(catalog, query, "http://x").datasets
                catalog.dialect = SQLITE  # every instance tested
                assert search(catalog, query, "http://x").datasets == found, parameters
                answered += bool(found)
    assert answered >= 15  # most questions have answers


def test_long_searches_give_the_same_answers_from_a_thread(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Searches are tried on the event loop within a time and result budget, the
    others answered again in a thread: both ways give the same answer."""
    from dicomlens.dicomweb import routes

    client = served.client()
    asked = [
        lambda: client.search_for_studies(),
        lambda: client.search_for_series(search_filters={"SliceThickness": "2.5"}),
        lambda: client.search_for_series(search_filters={"EchoTime": "240"}),  # element JSON
        lambda: client.search_for_instances(fields=["SliceThickness"]),
    ]
    inline = [ask() for ask in asked]
    assert all(inline)
    for name, value in (("INLINE_SECONDS", 0.0), ("INLINE_RESULTS", 0)):
        with monkeypatch.context() as patched:
            patched.setattr(routes, name, value)
            assert [ask() for ask in asked] == inline


def test_instance_search_pages_and_includes_fields(served: Served) -> None:
    client = served.client()
    ct = _ct(served)
    study, series = ct[0].StudyInstanceUID, ct[0].SeriesInstanceUID
    found = client.search_for_instances(study, series, fields=["InstanceNumber"])
    assert sorted(_value(i, "00200013") for i in found) == [1, 2, 3, 4, 5]
    assert {_value(i, "00080018") for i in found} == {d.SOPInstanceUID for d in ct}
    pages = [
        client.search_for_instances(study, series, limit=2, offset=offset) for offset in (0, 2, 4)
    ]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert {_value(i, "00080018") for page in pages for i in page} == {d.SOPInstanceUID for d in ct}
    (third,) = client.search_for_instances(study, series, search_filters={"InstanceNumber": "3"})
    assert _value(third, "00080018") == ct[2].SOPInstanceUID
    everything = client.search_for_instances(
        study, series, fields=["all"], search_filters={"InstanceNumber": "1"}
    )
    assert everything[0]["00200032"]["Value"] == [-100.0, -100.0, 0.0]  # ImagePositionPatient
    assert everything[0]["00280030"]["Value"] == [float(v) for v in ct[0].PixelSpacing]
    everywhere = client.search_for_instances(search_filters={"SOPClassUID": ct[0].SOPClassUID})
    assert len(everywhere) == 5


def test_search_refuses_what_it_cannot_answer(served: Served) -> None:
    with served.http() as http:
        assert http.get(f"{ROOT}/studies", params={"PatientName": "nobody"}).status_code == 204
        refused = http.get(f"{ROOT}/studies", headers={"Accept": "application/xml"})
        assert refused.status_code == 406
        bad = http.get(f"{ROOT}/studies", params={"limit": "many"})
        assert bad.status_code == 400
        assert "limit" in bad.json()["error"]
        unknown = http.get(f"{ROOT}/studies", params={"NoSuchKeyword": "x"})
        assert unknown.status_code == 400


# ---------------------------------------------------------------------------
# WADO-RS
# ---------------------------------------------------------------------------


def test_instances_are_retrieved_as_stored(served: Served) -> None:
    files = _files(served)
    ct = _ct(served)
    study, series = ct[0].StudyInstanceUID, ct[0].SeriesInstanceUID
    with served.http() as http:
        response = http.get(
            f"{ROOT}/studies/{study}/series/{series}",
            headers={"Accept": 'multipart/related; type="application/dicom"'},
        )
        assert response.status_code == 200
        parts = _parts(response)
        assert {body for _, body in parts} == {files[d.SOPInstanceUID].read_bytes() for d in ct}
        assert {kind for kind, _ in parts} == {"application/dicom"}
        sc = pydicom.dcmread(bundled("SC_rgb_rle_2frame.dcm"))
        as_stored = 'multipart/related; type="application/dicom"; transfer-syntax=*'
        whole = http.get(f"{ROOT}/studies/{sc.StudyInstanceUID}", headers={"Accept": as_stored})
        assert [body for _, body in _parts(whole)] == [files[sc.SOPInstanceUID].read_bytes()]
        # no transfer syntax asked: Explicit VR Little Endian, PS3.18's default
        ((_, default),) = _parts(http.get(f"{ROOT}/studies/{sc.StudyInstanceUID}"))
        transcoded = pydicom.dcmread(io.BytesIO(default))
        assert transcoded.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert np.array_equal(transcoded.pixel_array, sc.pixel_array)
    retrieved = served.client().retrieve_instance(study, series, ct[1].SOPInstanceUID)
    assert retrieved.SOPInstanceUID == ct[1].SOPInstanceUID
    assert np.array_equal(retrieved.pixel_array, ct[1].pixel_array)


def test_compressed_instances_are_transcoded_when_asked(served: Served) -> None:
    sc = pydicom.dcmread(bundled("SC_rgb_rle_2frame.dcm"))
    url = _url(sc)
    with served.http() as http:
        explicit = (
            'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'
        )
        ((_, body),) = _parts(http.get(url, headers={"Accept": explicit}))
        transcoded = pydicom.dcmread(io.BytesIO(body))
        assert transcoded.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert np.array_equal(transcoded.pixel_array, sc.pixel_array)
        jpeg = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
        assert http.get(url, headers={"Accept": jpeg}).status_code == 406


def test_a_big_endian_instance_is_sent_in_explicit_little_endian(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset
    from starlette.testclient import TestClient

    big = pydicom.dcmread(bundled("MR_small_bigendian.dcm"))
    item = Dataset()
    item.add_new(0x00091010, "LO", "DICOMLENS TEST")
    item.add_new(0x00091001, "OW", b"\x01\x02\x03\x04")  # the words 0x0102, 0x0304
    big.add_new(0x00091010, "LO", "DICOMLENS TEST")
    big.add_new(0x00091002, "SQ", [item])
    big.save_as(tmp_path / "big.dcm")  # still big endian, as read
    index([tmp_path], tmp_path / "catalog.db")
    app = create_app(tmp_path / "catalog.db", token=TOKEN, port=80)
    with TestClient(app, base_url="http://127.0.0.1:80",
                    headers={"Authorization": f"Bearer {TOKEN}"}) as http:  # fmt: skip
        ((kind, body),) = _parts(http.get(_url(big)))  # the default: Explicit VR Little Endian
    little = pydicom.dcmread(io.BytesIO(body))
    assert kind == "application/dicom"
    assert little.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert little[0x00091002].value[0][0x00091001].value == b"\x02\x01\x04\x03"
    assert np.array_equal(little.pixel_array, big.pixel_array)
    source = pydicom.dcmread(tmp_path / "big.dcm")
    assert [(e.tag, e.value) for e in little if e.tag not in (0x7FE00010, 0x00091002)] == [
        (e.tag, e.value) for e in source if e.tag not in (0x7FE00010, 0x00091002)
    ]


def test_a_twelve_bit_jpeg_is_sent_decoded_as_the_volumes_decode_it(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from dicomlens.volume.codecs import decode_pixel_data

    shutil.copy(bundled("JPEG-lossy.dcm"), tmp_path / "jpeg12.dcm")  # pydicom's plugins refuse
    source = pydicom.dcmread(tmp_path / "jpeg12.dcm")
    index([tmp_path], tmp_path / "catalog.db")
    app = create_app(tmp_path / "catalog.db", token=TOKEN, port=80)
    with TestClient(app, base_url="http://127.0.0.1:80",
                    headers={"Authorization": f"Bearer {TOKEN}"}) as http:  # fmt: skip
        ((_, body),) = _parts(http.get(_url(source)))
    native = pydicom.dcmread(io.BytesIO(body))
    assert native.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert native.BitsStored == 12 and native["PixelData"].VR == "OW"
    expected = decode_pixel_data(source, tmp_path / "jpeg12.dcm")
    assert expected.std() > 0 and np.array_equal(native.pixel_array, expected)


def test_an_instance_that_cannot_be_rewritten_fails_with_its_reason(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    shutil.copy(bundled("JPEG2000-embedded-sequence-delimiter.dcm"), tmp_path / "j2k.dcm")
    damaged = pydicom.dcmread(tmp_path / "j2k.dcm")
    index([tmp_path], tmp_path / "catalog.db")
    app = create_app(tmp_path / "catalog.db", token=TOKEN, port=80)
    with TestClient(app, base_url="http://127.0.0.1:80",
                    headers={"Authorization": f"Bearer {TOKEN}"}) as http:  # fmt: skip
        as_stored = http.get(_url(damaged), headers={"Accept": "multipart/related; "
                             'type="application/dicom"; transfer-syntax=*'})  # fmt: skip
        rewritten = http.get(_url(damaged))  # Explicit VR Little Endian: decoded first
    assert [part for _, part in _parts(as_stored)] == [(tmp_path / "j2k.dcm").read_bytes()]
    assert rewritten.status_code == 422
    assert "pylibjpeg" in rewritten.json()["error"]  # each decoder's reason


def test_metadata_equals_pydicom_and_bulk_data_resolves(served: Served) -> None:
    client = served.client()
    first = _ct(served)[0]
    study, series, sop = first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID
    found = client.retrieve_instance_metadata(study, series, sop)
    base = f"{served.url}{ROOT}/studies/{study}/series/{series}/instances/{sop}/bulk"

    def uri(element: pydicom.DataElement) -> str:
        return f"{base}/{element.tag:08X}"

    # values longer than 1 KiB are bulk data (pydicom counts the threshold in base64 characters)
    expected = first.to_json_dict(bulk_data_element_handler=uri, bulk_data_threshold=1024 * 4 // 3)
    expected["00880200"]["Value"][0]["7FE00010"] = {
        "vr": "OB",
        "BulkDataURI": f"{base}/00880200/0/7FE00010",
    }
    assert found == expected
    pixels = client.retrieve_bulkdata(found["7FE00010"]["BulkDataURI"])
    assert pixels == [first.PixelData]
    icon_uri = found["00880200"]["Value"][0]["7FE00010"]["BulkDataURI"]
    assert client.retrieve_bulkdata(icon_uri) == [first.IconImageSequence[0].PixelData]
    series_metadata = client.retrieve_series_metadata(study, series)
    assert {_value(d, "00080018") for d in series_metadata} == {
        d.SOPInstanceUID for d in _ct(served)
    }
    # The catalog's values, as QIDO-RS answers them, are the metadata's values.
    (searched,) = client.search_for_instances(
        study, series, fields=["all"], search_filters={"SOPInstanceUID": sop}
    )
    computed = {"00081190", "00080056"}  # RetrieveURL, InstanceAvailability
    shared = [tag for tag in searched if tag not in computed and "Value" in searched[tag]]
    assert len(shared) > 40
    for tag in shared:
        assert searched[tag] == _without_bulk(found[tag]), tag


def test_metadata_of_a_value_that_is_not_its_vr_is_its_bytes(tmp_path: Path) -> None:
    import base64

    from starlette.testclient import TestClient

    ct = pydicom.dcmread(bundled("CT_small.dcm"))
    ct.SliceThickness = "9.25"
    ct.save_as(tmp_path / "ct.dcm")
    data = (tmp_path / "ct.dcm").read_bytes()
    assert data.count(b"9.25") == 1
    (tmp_path / "ct.dcm").write_bytes(data.replace(b"9.25", b"9.2x"))  # a DS, not a number
    index([tmp_path], tmp_path / "catalog.db")
    app = create_app(tmp_path / "catalog.db", token=TOKEN, port=80)
    with TestClient(app, base_url="http://127.0.0.1:80",
                    headers={"Authorization": f"Bearer {TOKEN}"}) as http:  # fmt: skip
        answer = http.get(f"{ROOT}/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}"
                          "/metadata")  # fmt: skip
    assert answer.status_code == 200
    (found,) = answer.json()
    assert found["00180050"] == {"vr": "UN", "InlineBinary": base64.b64encode(b"9.2x").decode()}
    assert found["00280030"] == {"vr": "DS", "Value": [0.661468, 0.661468]}  # the others as ever


def _without_bulk(attribute: dict[str, Any]) -> dict[str, Any]:
    """An attribute with the bulk data of its items left out (the catalog has none)."""
    if attribute["vr"] != "SQ":
        return attribute
    items = [
        {tag: _without_bulk(value) for tag, value in item.items() if "BulkDataURI" not in value}
        for item in attribute["Value"]
    ]
    return {"vr": "SQ", "Value": items}


def test_frames_are_pixels_native_or_as_stored(served: Served) -> None:
    client = served.client()
    sc = pydicom.dcmread(bundled("SC_rgb_rle_2frame.dcm"))
    uids = (sc.StudyInstanceUID, sc.SeriesInstanceUID, sc.SOPInstanceUID)
    native = client.retrieve_instance_frames(
        *uids, frame_numbers=[2, 1], media_types=("application/octet-stream",)
    )
    assert [np.frombuffer(f, np.uint8).reshape(100, 100, 3).tolist() for f in native] == [
        sc.pixel_array[1].tolist(),
        sc.pixel_array[0].tolist(),
    ]
    ct = _ct(served)[3]  # uncompressed: its bytes as stored
    ct_uids = (ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    octets = ("application/octet-stream",)
    (plain,) = client.retrieve_instance_frames(*ct_uids, frame_numbers=[1], media_types=octets)
    assert plain == ct.PixelData
    assert np.array_equal(np.frombuffer(plain, "<i2").reshape(ct.Rows, ct.Columns), ct.pixel_array)
    dose = pydicom.dcmread(bundled("rtdose.dcm"))  # uncompressed, 15 frames of 32 bits
    dose_uids = (dose.StudyInstanceUID, dose.SeriesInstanceUID, dose.SOPInstanceUID)
    frames = client.retrieve_instance_frames(*dose_uids, frame_numbers=[7, 2], media_types=octets)
    size = dose.Rows * dose.Columns * 4
    assert frames == [dose.PixelData[6 * size : 7 * size], dose.PixelData[size : 2 * size]]
    shape = (dose.Rows, dose.Columns)
    assert np.array_equal(np.frombuffer(frames[0], "<u4").reshape(shape), dose.pixel_array[6])
    nm = pydicom.dcmread(bundled("JPEG2000.dcm"))
    nm_uids = (nm.StudyInstanceUID, nm.SeriesInstanceUID, nm.SOPInstanceUID)
    (stored,) = client.retrieve_instance_frames(
        *nm_uids, frame_numbers=[1], media_types=(("image/jp2", "1.2.840.10008.1.2.4.91"),)
    )
    assert stored == next(generate_frames(nm.PixelData, number_of_frames=1))
    (decoded,) = client.retrieve_instance_frames(
        *nm_uids, frame_numbers=[1], media_types=("application/octet-stream",)
    )
    pixels = nm.pixel_array
    assert np.array_equal(np.frombuffer(decoded, pixels.dtype).reshape(pixels.shape), pixels)
    with served.http() as http:
        url = f"{ROOT}/studies/{uids[0]}/series/{uids[1]}/instances/{uids[2]}/frames"
        assert http.get(f"{url}/3").status_code == 404
        assert http.get(f"{url}/0").status_code in (400, 404)
        jpeg = 'multipart/related; type="image/jpeg"'
        assert http.get(f"{url}/1", headers={"Accept": jpeg}).status_code == 406


def test_rendered_pictures_follow_the_window(served: Served) -> None:
    client = served.client()
    ct = _ct(served)[2]
    uids = (ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    png = client.retrieve_instance_rendered(*uids, media_types=("image/png",))
    picture = np.asarray(Image.open(io.BytesIO(png)))
    assert picture.shape == (ct.Rows, ct.Columns)
    hu = ct.pixel_array * float(ct.RescaleSlope) + float(ct.RescaleIntercept)
    narrow = client.retrieve_instance_rendered(
        *uids, media_types=("image/png",), params={"window": "40,400,linear"}
    )
    windowed = np.asarray(Image.open(io.BytesIO(narrow))).astype(int)
    assert np.all(windowed[hu <= 40 - 200] == 0)
    assert np.all(windowed[hu >= 40 + 200] == 255)
    middle = (hu > -150) & (hu < 230)
    expected = ((hu[middle] - (40 - 0.5)) / (400 - 1) + 0.5) * 255
    assert np.abs(windowed[middle] - expected).max() <= 1.0
    jpeg = client.retrieve_instance_rendered(*uids)
    assert jpeg[:3] == b"\xff\xd8\xff"
    with served.http() as http:
        study_url = f"{ROOT}/studies/{uids[0]}"
        thumbnail = http.get(f"{study_url}/thumbnail", headers={"Accept": "image/png"})
        assert thumbnail.status_code == 200
        assert max(Image.open(io.BytesIO(thumbnail.content)).size) <= 128
        small = http.get(
            f"{study_url}/series/{uids[1]}/instances/{uids[2]}/rendered",
            params={"viewport": "32,32"},
            headers={"Accept": "image/png"},
        )
        assert Image.open(io.BytesIO(small.content)).size == (32, 32)


# ---------------------------------------------------------------------------
# STOW-RS
# ---------------------------------------------------------------------------


def _new_instance() -> pydicom.Dataset:
    ds = pydicom.dcmread(bundled("MR_small.dcm"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return ds


def _body(parts: list[bytes], boundary: str = "b0undary") -> tuple[bytes, dict[str, str]]:
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
            for part in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return body, {"Content-Type": content_type}


def _encoded(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _stored_files(served: Served) -> list[Path]:
    return sorted(p for p in served.store.rglob("*") if p.is_file())


def test_stored_instances_are_written_indexed_and_found(served: Served) -> None:
    client = served.client()
    ds = _new_instance()
    response = client.store_instances([ds])
    (referenced,) = response.ReferencedSOPSequence
    assert referenced.ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert referenced.RetrieveURL.endswith(f"/instances/{ds.SOPInstanceUID}")
    assert "FailedSOPSequence" not in response
    (found,) = client.search_for_instances(search_filters={"SOPInstanceUID": ds.SOPInstanceUID})
    assert _value(found, "0020000D") == ds.StudyInstanceUID
    written = served.store / ds.StudyInstanceUID / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
    assert written.read_bytes() == _encoded(ds)
    back = client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert np.array_equal(back.pixel_array, ds.pixel_array)
    again = client.store_instances([ds])  # the same bytes again: accepted, nothing new
    assert again.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID


def test_store_refuses_collisions_and_non_dicom_per_instance(served: Served) -> None:
    taken = _new_instance()
    served.client().store_instances([taken])
    changed = pydicom.dcmread(io.BytesIO(_encoded(taken)))
    changed.PatientName = "Someone^Else"
    fresh = _new_instance()
    body, headers = _body([_encoded(changed), b"not a DICOM file at all", _encoded(fresh)])
    with served.http() as http:
        response = http.post(f"{ROOT}/studies", content=body, headers=headers)
    assert response.status_code == 202  # some stored, some failed
    answer = pydicom.Dataset.from_json(response.json())
    assert [r.ReferencedSOPInstanceUID for r in answer.ReferencedSOPSequence] == [
        fresh.SOPInstanceUID
    ]
    reasons = {
        f.get("ReferencedSOPInstanceUID", ""): f.FailureReason for f in answer.FailedSOPSequence
    }
    assert reasons[taken.SOPInstanceUID] == 0x0111
    assert 0xC000 in reasons.values()
    kept = (
        served.store
        / taken.StudyInstanceUID
        / taken.SeriesInstanceUID
        / f"{taken.SOPInstanceUID}.dcm"
    )
    assert pydicom.dcmread(kept).PatientName == taken.PatientName
    body, headers = _body([_encoded(changed)])
    with served.http() as http:
        assert http.post(f"{ROOT}/studies", content=body, headers=headers).status_code == 409
        elsewhere, _ = _body([_encoded(_new_instance())])
        other_study = http.post(f"{ROOT}/studies/1.2.3.4", content=elsewhere, headers=headers)
    assert other_study.status_code == 409
    failed = pydicom.Dataset.from_json(other_study.json()).FailedSOPSequence[0]
    assert failed.FailureReason == 0xA900


def test_store_refuses_bad_bodies_whole(served: Served) -> None:
    before = _stored_files(served)
    ds = _encoded(_new_instance())
    with served.http() as http:
        url = f"{ROOT}/studies"
        malformed = http.post(url, content=b"--b0undary\r\nno end", headers=_body([])[1])
        assert malformed.status_code == 400
        no_boundary = http.post(url, content=ds, headers={"Content-Type": "multipart/related"})
        assert no_boundary.status_code in (400, 415)
        plain = http.post(url, content=ds, headers={"Content-Type": "application/dicom"})
        assert plain.status_code == 415
        big, headers = _body([ds] * (STORE_LIMIT // len(ds) + 2))
        assert http.post(url, content=big, headers=headers).status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
            yield from (big[i : i + 65536] for i in range(0, len(big), 65536))

        assert http.post(url, content=chunks(), headers=headers).status_code == 413
    assert _stored_files(served) == before


def test_store_killed_mid_body_leaves_nothing(served: Served) -> None:
    ds = _new_instance()
    body, headers = _body([_encoded(ds), _encoded(_new_instance())])
    request = (
        f"POST {ROOT}/studies HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: {headers['Content-Type']}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", served.port)) as connection:
        connection.sendall(request + body[: len(body) * 3 // 4])
        time.sleep(0.3)
    time.sleep(0.5)
    assert not any(
        ds.SOPInstanceUID in p.name or p.name.endswith(".tmp") or "stow" in p.name
        for p in served.store.rglob("*")
    )
    with Catalog(served.catalog, readonly=True) as catalog:
        rows = catalog.execute(
            "SELECT count(*) FROM instances WHERE sop_instance_uid = ?", [ds.SOPInstanceUID]
        )
        assert rows.fetchone() == (0,)


# ---------------------------------------------------------------------------
# Security
# ---------------------------------------------------------------------------

ROUTES = [
    "/studies",
    "/series",
    "/instances",
    "/studies/{st}",
    "/studies/{st}/metadata",
    "/studies/{st}/series",
    "/studies/{st}/series/{se}",
    "/studies/{st}/series/{se}/metadata",
    "/studies/{st}/series/{se}/instances",
    "/studies/{st}/series/{se}/instances/{sop}",
    "/studies/{st}/series/{se}/instances/{sop}/metadata",
    "/studies/{st}/series/{se}/instances/{sop}/frames/1",
    "/studies/{st}/series/{se}/instances/{sop}/rendered",
    "/studies/{st}/series/{se}/instances/{sop}/frames/1/rendered",
    "/studies/{st}/series/{se}/instances/{sop}/bulk/7FE00010",
    "/studies/{st}/thumbnail",
    "/studies/{st}/series/{se}/thumbnail",
    "/studies/{st}/series/{se}/instances/{sop}/thumbnail",
]


def _routes(served: Served) -> list[str]:
    ct = _ct(served)[0]
    uids = {"st": ct.StudyInstanceUID, "se": ct.SeriesInstanceUID, "sop": ct.SOPInstanceUID}
    return [ROOT + route.format(**uids) for route in ROUTES]


def test_every_route_needs_the_token(served: Served) -> None:
    with httpx.Client(base_url=served.url) as anonymous, served.http() as http:
        for route in _routes(served):
            assert http.get(route).status_code == 200, route
            refused = anonymous.get(route)
            assert refused.status_code == 401, route
            assert refused.headers["www-authenticate"] == "Bearer"
            wrong = anonymous.get(route, headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})
            assert wrong.status_code == 401, route
        body, headers = _body([_encoded(_new_instance())])
        assert anonymous.post(f"{ROOT}/studies", content=body, headers=headers).status_code == 401
        assert anonymous.get(f"{ROOT}/studies", params={"token": TOKEN}).status_code == 200


def test_foreign_host_and_origin_are_refused(served: Served) -> None:
    with served.http() as http:
        for route in [*_routes(served)[:3], f"{ROOT}/studies"]:
            assert (
                http.get(route, headers={"Host": f"evil.example:{served.port}"}).status_code == 403
            )
            assert http.get(route, headers={"Origin": "https://evil.example"}).status_code == 403
        own = http.get(f"{ROOT}/studies", headers={"Origin": served.url})
        assert own.status_code == 200
        assert "access-control-allow-origin" not in own.headers
        named = http.get(f"{ROOT}/studies", headers={"Origin": "https://viewer.example.org"})
        assert named.headers["access-control-allow-origin"] == "https://viewer.example.org"
        preflight = http.options(
            f"{ROOT}/studies",
            headers={
                "Origin": "https://viewer.example.org",
                "Access-Control-Request-Method": "GET",
            },
        )
        assert preflight.status_code == 204
        assert "Authorization" in preflight.headers["access-control-allow-headers"]


def test_paths_never_leave_the_catalog(served: Served) -> None:
    secret = served.files.parent / "secret.txt"
    secret.write_text("not for you")
    ct = _ct(served)[0]
    instance = _url(ct)
    attempts = [
        f"{ROOT}/studies/..%2F..%2Fsecret.txt",
        f"{ROOT}/studies/{ct.StudyInstanceUID}/series/..%2Fsecret.txt",
        f"{instance}/bulk/..%2F..%2Fsecret.txt",
        f"{instance}/bulk/7FE00010%2F..%2F..",
        f"{instance}/frames/1%2F..",
        f"{ROOT}/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}/instances/1.2.3",
    ]
    with served.http() as http:
        for attempt in attempts:
            response = http.get(attempt)
            assert response.status_code in (400, 404), attempt
            assert b"not for you" not in response.content
            assert str(served.files) not in response.text
    # a moved or changed file is not served from the catalog's stale row
    moved = served.files / "MR_small.dcm"
    mr = pydicom.dcmread(moved, stop_before_pixels=True)
    parked = served.files.parent / "parked.dcm"
    with served.http() as http:  # its metadata now cached
        assert http.get(_url(mr) + "/metadata").status_code == 200
    moved.rename(parked)
    try:
        with served.http() as http:
            for url in (_url(mr), _url(mr) + "/metadata"):
                gone = http.get(url)
                assert gone.status_code == 404
                assert "index again" in gone.json()["error"]
    finally:
        parked.rename(moved)


def test_read_only_server_refuses_stores(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    shutil.copy(bundled("MR_small.dcm"), tmp_path / "mr.dcm")
    index([tmp_path / "mr.dcm"], tmp_path / "catalog.db")
    app = create_app(tmp_path / "catalog.db", token=TOKEN, port=80)
    body, headers = _body([_encoded(_new_instance())])
    with TestClient(app, base_url="http://127.0.0.1:80") as http:
        refused = http.post(
            f"{ROOT}/studies", content=body, headers={**headers, "Authorization": f"Bearer {TOKEN}"}
        )
        assert refused.status_code == 405
    assert json.loads(refused.content)["error"].startswith("read-only")


def test_serve_command_prints_the_root_and_answers(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    shutil.copy(bundled("MR_small.dcm"), tmp_path / "mr.dcm")
    token_file = tmp_path / "token"
    catalog = tmp_path / "catalog.db"
    command = [sys.executable, "-m", "dicomlens", "serve", str(tmp_path / "mr.dcm"),
               "--catalog", str(catalog), "--token-file", str(token_file)]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        assert run.stdout is not None
        root = run.stdout.readline().strip()
        try:
            assert root.startswith("http://127.0.0.1:") and root.endswith(ROOT), root
            assert token_file.stat().st_mode & 0o777 == 0o600
            client = dicomweb_client.DICOMwebClient(
                url=root, headers={"Authorization": f"Bearer {token_file.read_text().strip()}"}
            )
            (study,) = client.search_for_studies()
            assert (
                _value(study, "0020000D")
                == pydicom.dcmread(bundled("MR_small.dcm")).StudyInstanceUID
            )
            assert httpx.get(root + "/studies").status_code == 401
        finally:
            run.send_signal(signal.SIGINT)
            run.wait(timeout=20)
        assert "Traceback" not in (run.stderr.read() if run.stderr else "")


def test_serve_refuses_a_network_address_without_tls(tmp_path: Path) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "dicomlens", "serve", "--catalog", str(tmp_path / "c.db"),
               "--host", "0.0.0.0"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("dicomlens: error: --host 0.0.0.0 exposes the server")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c.db").exists()
