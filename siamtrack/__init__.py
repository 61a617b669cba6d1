"""siamtrack: a fast, faithful SiamFC visual object tracker."""
from .config import load_config
from .core.model import Model
from .core.tracker import SiamFCTracker
from .spec import TrackerSpec

__version__ = "0.1.0"
__all__ = ["Model", "SiamFCTracker", "TrackerSpec", "load_config", "__version__"]
