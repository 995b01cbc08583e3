#!/usr/bin/env bash
# The README's demo: dicomlens on sample files that ship inside the pydicom package.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

samples=$("$BIN/python" -c "import pathlib, pydicom; print(pathlib.Path(pydicom.data.__file__).parent / 'test_files')")
rm -rf demo_data
mkdir -p demo_data/study
for name in CT_small.dcm MR_small.dcm examples_overlay.dcm rtplan.dcm; do
    cp "$samples/$name" demo_data/study/
done
echo "this is not a DICOM file" > demo_data/study/README.txt
"$BIN/python" scripts/make_sample_series.py demo_data/ct_series >/dev/null

run() {
    printf '\n\033[1m$ dicomlens %s\033[0m\n' "$*"
    "$BIN/dicomlens" "$@" || true
}

run tag "window center" --limit 3
run tag ImagePosition --limit 2
run show demo_data/study/CT_small.dcm --no-private --depth 1 --grep patient
run get "(0028, 1050)" demo_data/study/examples_overlay.dcm
run get Modality demo_data/study -t "Patient's Name" -t Rows -t Columns
run find PatientID demo_data/study/CT_small.dcm
run show --mask -t PatientName -t StudyDate demo_data/study/CT_small.dcm
run diff demo_data/study/CT_small.dcm demo_data/study/MR_small.dcm --no-meta | head -8
run series demo_data/ct_series
run volume demo_data/ct_series -o demo_data/ct.nii.gz
run render demo_data/ct_series --montage --preset abdomen -o demo_data/ct_montage.png
run anonymize demo_data/study demo_data/ct_series -o demo_data/anonymized --key demo
run index demo_data/study demo_data/ct_series --catalog demo_data/catalog.db
run query --catalog demo_data/catalog.db Modality=CT "SliceThickness<=5" --columns KVP
run index demo_data/study demo_data/ct_series --parquet demo_data/catalog-parquet --partition-size 10
run query --parquet demo_data/catalog-parquet Modality=CT "SliceThickness<=5" --columns KVP
printf '\nSample files are in demo_data/; try: .venv/bin/dicomlens show demo_data/study/MR_small.dcm\n'
if [ -t 0 ] && [ -t 1 ]; then
    printf '\n\033[1m$ dicomlens view --catalog demo_data/catalog.db\033[0m  (Ctrl-C to stop)\n'
    "$BIN/dicomlens" view --catalog demo_data/catalog.db || true
else
    printf 'Browse them: .venv/bin/dicomlens view --catalog demo_data/catalog.db\n'
fi
