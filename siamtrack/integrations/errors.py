"""The errors of the annotation tools' plug-ins: each says, in one line, what the person or admin must fix."""
from ..errors import SiamtrackError


class AnnotationError(SiamtrackError):
    """A task, labeling config, region or video from an annotation tool that cannot be tracked as given."""


class LabelStudioUnreachable(AnnotationError):
    """Label Studio did not answer, or refused the API key: the backend's set-up, not the task, is at fault."""
