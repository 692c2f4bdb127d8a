"""Data layer: procedural landscapes (the embedded default), real LHQ/LHQC loaders, splits.

from nuwa.data import load_records, render_landscape, render_pan_video
"""

from nuwa.data.landscapes import DATASET_NAME, Landscape, SceneParams, render_landscape
from nuwa.data.loaders import ProceduralRecords, load_records
from nuwa.data.records import DataError, Record
from nuwa.data.video import PanVideo, render_pan_video

__all__ = [
    "DATASET_NAME",
    "DataError",
    "Landscape",
    "PanVideo",
    "ProceduralRecords",
    "Record",
    "SceneParams",
    "load_records",
    "render_landscape",
    "render_pan_video",
]
