"""Recommendation quality on held-out playlists, cold start, and the publish quality gate.

The protocol, in one place:

* **Split.**  A seeded permutation holds out whole playlists (``holdout`` of
  them); the model under test trains on the rest.  Optionally some *cold*
  songs are hidden from training entirely: every occurrence of them is cut out
  of the training playlists (the playlists themselves stay).
* **Queries.**  Positions of the held-out playlists whose song and whose next
  song are both known to training (and differ), drawn uniformly with a seeded
  generator, so popular songs are queried as often as radio plays them.
* **Answers.**  Every method returns its top-k songs for the query song, the
  query itself excluded, chosen among the songs known to training (the pool),
  so that every method answers from the same catalogue.
* **Metrics** (all in [0, 1], averaged over queries):

  - ``hit@k``: the song that followed the query in the held-out playlist is
    among the k answers;
  - ``coplay@k``: share of the k answers that are in the query's held-out
    playlist;
  - ``tags@k``: share of the k answers that share a Last.fm tag with the query,
    generic tags (:func:`is_generic_tag`) left out; queries without a useful
    tag are skipped;
  - ``coverage@k``: share of the pool that appears in at least one answer.

Every method ``search`` serves is measured by calling ``SongSearch`` on a
real embedded store built from the split's model exactly as ingest builds
one (:mod:`ingest.evaluation.served`); baselines (popularity, item-item,
RP3beta) are computed in numpy.

Rooms: :mod:`.split` (split and queries), :mod:`.metrics`, :mod:`.baselines`,
:mod:`.served`, :mod:`.runner` (every method on one split), :mod:`.report`
(docs/quality.md and its plots), :mod:`.tune`.  The publish gate is
:mod:`ingest.gate`.
"""


