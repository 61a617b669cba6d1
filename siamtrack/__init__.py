"""siamtrack: a fast, faithful SiamFC visual object tracker."""
from .config import load_config
from .spec import TrackerSpec
from .tracker import SiamFCTracker

__version__ = "0.1.0"
__all__ = ["SiamFCTracker", "TrackerSpec", "load_config", "__version__"]
