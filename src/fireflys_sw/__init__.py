"""fireflys software side: model specs, compression-aware training, the integer artifact and
the numpy golden model that defines what the network computes.

Nothing here imports Amaranth; only :mod:`fireflys_sw.models`, :mod:`fireflys_sw.train` and
:mod:`fireflys_sw.export` import PyTorch, so the artifact and golden model work without it.
"""

from .errors import ArtifactError, DatasetError, FireflysError, SpecError

__all__ = ["ArtifactError", "DatasetError", "FireflysError", "SpecError"]
