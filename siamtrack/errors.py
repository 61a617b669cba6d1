"""Exception types the API raises for bad input; the CLI turns each into a one-line message."""


class SiamtrackError(Exception):
    """Base of every error siamtrack raises on purpose."""


class ConfigError(SiamtrackError):
    """A config file or override with an unknown key or a bad value."""


class CheckpointError(SiamtrackError):
    """A weights file that is missing, corrupt or of another architecture."""


class SourceError(SiamtrackError):
    """A video, folder, camera or stream that cannot be read."""


class BoxError(SiamtrackError):
    """A bounding box that is malformed, empty, non-finite or outside the frame."""


class FrameError(SiamtrackError):
    """A frame of an unsupported shape or type."""


class NotInitializedError(SiamtrackError):
    """A tracker asked to update before init gave it a target."""


class EvaluationError(SiamtrackError):
    """A benchmark folder, tracker name or output folder that evaluation cannot use."""


class TargetError(SiamtrackError):
    """A target id given twice, or one that is not tracked."""


class OutputError(SiamtrackError):
    """An output file whose folder does not exist or cannot be written."""
