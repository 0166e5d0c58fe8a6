"""songsearch's search side: similar songs from the Qdrant collections.

Importing this package is cheap; see :mod:`search.api` for the API.
"""

from search.api import Result, SongSearch, similar
from search.contract import SongSearchError

__all__ = ["Result", "SongSearch", "SongSearchError", "similar"]
