"""Training SiamFC on sequence datasets; the tracker never imports this package."""
from .distributed import launch
from .trainer import check_run, run_config, train

__all__ = ["check_run", "launch", "run_config", "train"]
