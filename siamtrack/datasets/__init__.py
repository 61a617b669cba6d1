"""Tracking datasets on disk: their layouts (GOT-10k, OTB, VOT, LaSOT, TrackingNet), frame files and annotation
files, read into `Sequence`s with 0-based boxes. Shared by the run, training and evaluation."""
from .annotations import from_zero_based, parse_boxes, to_zero_based
from .frames import FRAME_SUFFIXES, list_frames, natural_key, read_frame, read_frames
from .layouts import (DATASETS, LASOT_ATTRIBUTES, ONE_BASED, OTB_GT_GLOB, TRACKINGNET_TEST, Sequence, SequenceFiles,
                      detect_layout, find_lasot, find_otb, find_sequences, find_trackingnet_chunk, load_many,
                      load_sequences, trackingnet_chunks)

__all__ = ["DATASETS", "FRAME_SUFFIXES", "LASOT_ATTRIBUTES", "ONE_BASED", "OTB_GT_GLOB", "TRACKINGNET_TEST",
           "Sequence", "SequenceFiles", "detect_layout", "find_lasot", "find_otb", "find_sequences",
           "find_trackingnet_chunk", "from_zero_based", "list_frames", "load_many", "load_sequences",
           "natural_key", "parse_boxes", "read_frame", "read_frames", "to_zero_based", "trackingnet_chunks"]
