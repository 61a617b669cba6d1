"""Plug-ins for the annotation tools people track video in: a Label Studio ML backend (label_studio) and a
CVAT tracking function (cvat). Each speaks its tool's format at its edge and tracks with the public API;
nothing below this package knows of them. Import them only through their extras (`label-studio`, `cvat`).
"""
