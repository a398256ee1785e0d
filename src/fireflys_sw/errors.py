"""The one exception type that the CLI turns into a one-line message.

Every error caused by the user's input (a malformed artifact, an unknown layer token, a missing
data directory, a model that does not fit) is raised as a :class:`FireflysError` subclass whose
message is a single line naming the problem and what to do about it.
"""


class FireflysError(Exception):
    """Base class of the errors that are the user's to fix; the message is one line."""


class SpecError(FireflysError, ValueError):
    """A model spec string that cannot be built."""


class ArtifactError(FireflysError, ValueError):
    """An artifact file that is malformed, truncated, inconsistent or of a newer version."""


class DatasetError(FireflysError, ValueError):
    """A data set that is unknown, missing or malformed on disk."""
