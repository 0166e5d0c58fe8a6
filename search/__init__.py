"""songsearch's search side: similar songs from the Qdrant collections.

Importing this package is cheap; see :mod:`search.api` for the API.
"""

from search.api import Answer, SongSearch, similar
from search.contract import ArgumentError, SongSearchError
from search.query import EvidenceFusion, Result

__all__ = ["Answer", "ArgumentError", "EvidenceFusion", "Result", "SongSearch", "SongSearchError", "similar"]
