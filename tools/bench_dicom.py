"""Companion of tools/bench-dicom.sh.

`python3 tools/bench_dicom.py write DIR` writes a 512×512×300 CT series (int16, rescale
intercept -1024, shuffled file names) with pydicom. `python3 tools/bench_dicom.py load DIR`
does what `mvl info DIR` does with the same series, the way a pydicom + numpy script would:
read every file, sort the slices along the normal, stack, rescale, and print the shape and
intensity range.
"""
import os
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

SIZE, SLICES = 512, 300


def write(folder):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    body = ((x - 256) / 200.0) ** 2 + ((y - 256) / 150.0) ** 2 < 1
    series_uid, study_uid = generate_uid(), generate_uid()
    names = rng.permutation(SLICES)
    for k in range(SLICES):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.Modality, ds.PatientName, ds.SeriesDescription = "CT", "Bench^Phantom", "bench 512x512x300"
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-250.0, -250.0, -300.0 + 1.25 * k]
        ds.PixelSpacing = [0.9765625, 0.9765625]
        ds.SliceThickness = 1.25
        ds.Rows = ds.Columns = SIZE
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        hu = np.where(body, 40 + 20 * np.sin(k / 20.0), -1000) + rng.normal(0, 10, (SIZE, SIZE))
        ds.PixelData = (hu + 1024).astype("<i2").tobytes()
        ds.save_as(os.path.join(folder, f"IM{names[k]:05d}.dcm"), enforce_file_format=True)


def load(folder):
    names = sorted(name for name in os.listdir(folder) if not name.startswith("."))
    datasets = [pydicom.dcmread(os.path.join(folder, name)) for name in names]
    iop = np.array(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    datasets.sort(key=lambda ds: float(np.dot(np.array(ds.ImagePositionPatient, dtype=float), normal)))
    volume = np.stack([
        ds.pixel_array.astype(np.float32) * np.float32(ds.RescaleSlope) + np.float32(ds.RescaleIntercept)
        for ds in datasets
    ])
    print(volume.shape, float(volume.min()), float(volume.max()), float(volume.mean(dtype=np.float64)))


if __name__ == "__main__":
    {"write": write, "load": load}[sys.argv[1]](sys.argv[2])
