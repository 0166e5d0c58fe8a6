"""Which Last.fm tags say something about how a song sounds."""

from __future__ import annotations

import functools
import re
from typing import Sequence

#: Tags that say how much someone liked a song, where it came from or who sang,
#: not what it sounds like.  Decades are matched by :data:`_DECADE`.
GENERIC_TAGS = frozenset(
    {
        "favorites", "favorite", "favourites", "favourite", "favs", "faves", "fav", "my favorite",
        "my favorites", "favorite songs", "favourite songs", "favorite artists", "all time favourites",
        "best songs ever", "songs i absolutely love", "love it", "loved", "love at first listen", "awesome",
        "fucking awesome", "amazing", "great", "good", "nice", "cool", "lovely", "perfect", "best", "the best",
        "brilliant", "genius", "masterpiece", "legend", "great song", "great lyrics", "good stuff", "<3",
        "seen live", "live", "heard on pandora", "male vocalists", "male vocalist", "female vocalists",
        "female vocalist", "female vocals", "male vocals", "female", "male", "vocal", "american", "usa",
        "english", "british", "uk", "canadian", "california", "new york", "other", "classic", "classics",
        "cover", "covers", "radioparadise", "radio paradise", "radiotsar approved", "wjlb-fm", "aitch",
        "drjazzmrfunkmusic", "77davez-all-tracks", "acclaimed music top 3000", "my pop music",
        "malloy2000 playlist - top songs - classical to metal", "radio music", "guilty pleasure",
        "guilty pleasures",
    }
)
#: 80s, 80's, 1980s, 00s, 10s, 2000s, 2009, 2010 ...
_DECADE = re.compile(r"^(?:\d0'?s|(?:19|20)\d0'?s|(?:19|20)\d\d)$")


def is_generic_tag(tag: str) -> bool:
    """True for tags that carry no genre or mood: likes, 'seen live', decades, vocalist gender, places."""
    tag = " ".join(tag.casefold().split())
    return tag in GENERIC_TAGS or bool(_DECADE.match(tag))


@functools.lru_cache(maxsize=1 << 16)  # a catalogue's tags repeat
def _useful(tag: str) -> str | None:
    return None if is_generic_tag(tag) else " ".join(tag.casefold().split())


def useful_tags(tags: Sequence[str]) -> frozenset[str]:
    return frozenset(folded for folded in map(_useful, tags) if folded is not None)
