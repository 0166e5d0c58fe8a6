"""Both backends give the same answers for the same ingest, in the style of qdrant-client's
congruence tests: the same operations (ingest, update, rollback) on an EdgeStore and on a
ServerStore over qdrant-client's local mode, and after each one everything a reader sees is
compared: aliases, versions, counts with filters, ids, payloads, dense and sparse vectors,
and whole SongSearch answers (similar for each evidence, similar_hybrid, cold_start).

Answers must hold the same songs in the same order, with the same scores and evidence.  Only
songs whose scores are equal (a tie) may come in either order: Qdrant does not order ties.

Two things make the backends differ legitimately, and each test says which it allows:

* float16: Edge keeps songs_w2v's vectors in float16 (search.contract.INDEXES); local mode
  ignores the datatype and keeps float32 (a real server applies it);
* tied scores inside a fused query: rank fusion turns the arbitrary order of tied points
  into different fused scores.
"""

import hashlib
from dataclasses import replace

import numpy as np
import pytest

from ingest import publish as pub
from ingest.collections import coplay_vectors
from ingest.pipeline import run_update
from search.api import SongSearch
from search.find import Filters
from search.contract import ALIASES, INDEXES, META_ALIAS, W2V_ALIAS, Settings, physical_name
from search.encoder import MetadataEncoder
from search.store import Nearest, PayloadFilter, Search, Sparse
from tests.conftest import fake_title_model, ingest_planted, make_store, write_planted_dataset

F16 = 2e-3

FILTERS = [
    None, PayloadFilter(artist_key="metallica"), PayloadFilter(min_plays=40), PayloadFilter(artist_key="usher", min_plays=30).without_ids([13]),
    PayloadFilter(tags=("metal",)), PayloadFilter(tags=("jazz", "favorites"), max_plays=45), PayloadFilter(exclude_artists=frozenset({"usher", "metallica"})),
]

ASKS = [
    *[(f"similar {q} {e}", lambda s, q=q, e=e: s.similar(q, limit=10, evidence=e)) for q in (0, 13, 30, 47) for e in ("fused", "w2v", "coplay")],
    *[(f"similar {q} {e} metallica", lambda s, q=q, e=e: s.similar(q, limit=5, artist="Metallica", evidence=e)) for q in (0, 25) for e in ("fused", "w2v", "coplay")],
    ("hybrid rrf", lambda s: s.similar_hybrid(13, limit=10)),
    ("hybrid dbsf weighted", lambda s: s.similar_hybrid(2, limit=10, method="dbsf", weights={"w2v": 1, "meta": 0.5})),
    ("hybrid rrf weighted, artist", lambda s: s.similar_hybrid(40, limit=5, artist="dolly parton", weights={"meta": 0.2})),
    ("cold start context", lambda s: s.cold_start(context=[24, 25, 26], limit=8)),
    ("cold start context, unknown id", lambda s: s.cold_start(context=[0, 1, 9999], limit=8)),
    ("cold start title and artist", lambda s: s.cold_start(title="metal thunder song 99", artist="Iron Maiden", limit=10)),
    ("cold start unseen artist", lambda s: s.cold_start(title="jazz blue song", artist="A Brand New Trio", limit=10, method="dbsf")),
    ("cold start both", lambda s: s.cold_start(context=[0, 1], title="metal thunder song 50", artist="Metallica", limit=10)),
    ("cold start only artist", lambda s: s.cold_start(context=[36, 37], title="country road", artist="x", only_artist="johnny cash", limit=5)),
    ("songs", lambda s: s.songs("metal thunder song 3", limit=10)),
    ("songs folded", lambda s: s.songs("MÉTAL thunder, Song 3!", limit=5)),
    ("songs by artist", lambda s: s.songs("song", artist="usher", limit=20)),
    ("similar by name", lambda s: s.similar("jazz blue song 5", limit=5)),
    ("similar tagged", lambda s: s.similar(1, limit=7, filters=Filters(tags=("metal",)))),
    ("similar excluded, plays", lambda s: s.similar(13, limit=8, filters=Filters(exclude_artists=("Usher",), min_plays=30, max_plays=60))),
    ("similar per artist", lambda s: s.similar(0, limit=6, per_artist=2)),
    ("similar diverse", lambda s: s.similar(0, limit=5, diversity=0.7)),
    ("recommend", lambda s: s.recommend([0, 1], dislike=[2], limit=8)),
    ("recommend by name, diverse, per artist", lambda s: s.recommend(["metal thunder song 4", 25], limit=8, per_artist=3, diversity=0.5)),
    ("cold start per artist", lambda s: s.cold_start(context=[24, 25], title="jazz", artist="x", limit=6, per_artist=2)),
]


def observe(songs: SongSearch) -> dict:
    store = songs.store
    aliases = store.aliases()
    versions = {name.partition("__")[2] for name in aliases.values()}
    assert sorted(aliases) == sorted(ALIASES) and len(versions) == 1, aliases
    (version,) = versions
    assert aliases == {alias: physical_name(alias, version) for alias in ALIASES}
    seen = {"versions": [v.live for v in pub.versions(store)]}
    for alias in ALIASES:
        ids = store.scroll_ids(alias)
        points = store.retrieve(alias, ids, with_vectors=True)
        seen[alias] = {
            "counts": [store.count(alias, f) for f in FILTERS],
            "ids": ids,
            "payloads": {i: p.payload for i, p in points.items()},
            "dense": {i: p.vector / np.linalg.norm(p.vector) for i, p in points.items()},
            "sparse": {i: {n: (s.indices.tolist(), s.values.tolist()) for n, s in p.sparse.items()} for i, p in points.items()},
        }
    seen["answers"] = {label: ask(songs) for label, ask in ASKS}
    seen["tags"] = [songs.tags(limit=10), songs.tags(artist="Miles Davis")]
    return seen


#: DBSF rescales each list's scores by 6 sigma of them, a narrow spread on the planted data: a
#: score's rounding error comes out of it up to this many times larger
DBSF_ROUNDING = 4


def differing_answers(edge: dict, server: dict, step: str, tol: float) -> list[str]:
    """The data must be the same (asserted); the answers that differ are returned."""
    assert edge["versions"] == server["versions"], step
    assert edge["tags"] == server["tags"], step
    for alias in ALIASES:
        e, s = edge[alias], server[alias]
        assert e["counts"] == s["counts"], (step, alias)
        assert e["ids"] == s["ids"], (step, alias)
        assert e["payloads"] == s["payloads"], (step, alias)
        assert e["sparse"] == s["sparse"], (step, alias)
        for i in e["ids"]:
            assert np.allclose(e["dense"][i], s["dense"][i], atol=max(tol, 1e-6)), (step, alias, i)
    differ = []
    for label in edge["answers"]:
        e, s = edge["answers"][label], server["answers"][label]
        if not same_answer(e, s, tol * (DBSF_ROUNDING if "dbsf" in label else 1)):
            shown = [f"  {side:6} {[(r.song_id, round(r.score, 5)) for r in a]}" for side, a in (("edge", e), ("server", s))]
            differ.append("\n".join([f"after {step}, {label}:", *shown]))
    return differ


def same_order(e, s, tie: float) -> bool:
    """The same songs at each position, but where the two scores there are within rounding of
    each other (rounding may swap such neighbours; MMR's order is its own, not its scores')."""
    return all(a.song_id == b.song_id or abs(a.score - b.score) <= 2 * tie for a, b in zip(e, s))


def same_answer(e, s, tol: float) -> bool:
    if e.skipped != s.skipped or len(e) != len(s):
        return False
    tie = max(tol, 1e-6)
    theirs = {r.song_id: r for r in s}
    if not same_order(e, s, tie) or set(theirs) != {r.song_id for r in e}:
        return False
    for a in e:
        b = theirs[a.song_id]
        if (a.title, a.artist, a.sources, a.plays, a.coplays, a.tags) != (b.title, b.artist, b.sources, b.plays, b.coplays, b.tags):
            return False
        if abs(a.score - b.score) > tie or (a.cosine is None) != (b.cosine is None):
            return False
        if a.cosine is not None and abs(a.cosine - b.cosine) > tie:
            return False
    return True


def tie_free_title_model(titles, advance=None):
    """conftest's fake title model, nudged per title so that no two titles score alike."""
    out = fake_title_model(titles, advance)
    for row, title in enumerate(titles):
        noise = np.random.default_rng(int(hashlib.md5(title.encode()).hexdigest()[:8], 16)).normal(size=out.shape[1])
        out[row] += 0.01 * noise / np.linalg.norm(noise)
        out[row] /= np.linalg.norm(out[row])
    return out


def tie_free_coplay_vectors(playlists, song_ids):
    """Ingest's co-play vectors, each song's scaled by its own factor: no two songs score alike."""
    return [Sparse.of(v.indices, v.values * (1 + 1e-3 * (int(i) % 97) / 97)) for v, i in zip(coplay_vectors(playlists, song_ids), song_ids.tolist())]


def run_operations(tmp_path, title_model, tol: float) -> list[str]:
    """The same ingest, update and rollback on both backends; the data must agree after each,
    and the answers that differ are returned."""
    planted = write_planted_dataset(tmp_path / "data")
    update = tmp_path / "update.txt"
    update.write_text("0 13 24 36\n1 14 25 37 2\n0 13 24 36 47\n")
    sides = []
    for kind in ("edge", "server"):
        settings = Settings(home=tmp_path / kind / "home")
        songs = SongSearch(store=make_store(kind, tmp_path / kind), settings=settings, encoder=MetadataEncoder(title_model=title_model))
        sides.append((songs, settings))
    operations = [
        ("ingest", lambda songs, settings: ingest_planted(planted, settings, songs.store, encoder=MetadataEncoder(title_model=title_model))),
        ("update", lambda songs, settings: run_update(
            update, settings=settings, store=songs.store, encoder=MetadataEncoder(title_model=title_model), show_progress=False)),
        ("rollback", lambda songs, settings: pub.rollback(songs.store)),
    ]
    differ = []
    try:
        for step, operation in operations:
            for songs, settings in sides:
                operation(songs, settings)
            differ += differing_answers(observe(sides[0][0]), observe(sides[1][0]), step, tol)
    finally:
        for songs, _ in sides:
            songs.close()
    return differ


def _float32_on_edge(monkeypatch, aliases) -> None:
    for alias in aliases:
        monkeypatch.setitem(INDEXES, alias, replace(INDEXES[alias], float16=False))


@pytest.fixture
def float32_vectors(monkeypatch):
    """Both collections in float32 on Edge too, as local mode keeps them."""
    _float32_on_edge(monkeypatch, ALIASES)


@pytest.fixture
def float32_meta(monkeypatch):
    """songs_meta in float32 on Edge too.  Its fake titles lie a few thousandths of a cosine
    apart, so float16 swaps some of them in its ranked lists, and rank fusion (the hybrid, cold
    start) turns one swapped rank into a fused score further off than any rounding:
    test_songs_meta_in_float16_ranks_as_float32_does checks those lists themselves."""
    _float32_on_edge(monkeypatch, (META_ALIAS,))


@pytest.fixture
def tie_free(monkeypatch):
    monkeypatch.setattr("ingest.collections.coplay_vectors", tie_free_coplay_vectors)
    return tie_free_title_model


def test_backends_answer_alike_after_every_operation(tie_free, float32_vectors, tmp_path):
    """No ties, the same vector precision: every answer the same, to float32 rounding."""
    differ = run_operations(tmp_path, tie_free, tol=1e-6)
    assert not differ, f"{len(differ)} answers differ:\n" + "\n".join(differ)


def test_backends_answer_alike_up_to_float16(tie_free, float32_meta, tmp_path):
    """songs_w2v at the served precision (float16 on Edge): every answer the same up to its rounding."""
    differ = run_operations(tmp_path, tie_free, tol=F16)
    assert not differ, f"{len(differ)} answers differ:\n" + "\n".join(differ)


def test_songs_meta_in_float16_ranks_as_float32_does(tmp_path):
    """Edge stores songs_meta's vectors in float16 (search.contract.INDEXES), local mode in
    float32: every song's nearest songs_meta neighbours (the list the hybrid and cold start
    fuse) are the same songs in the same order, but for neighbours within float16 rounding."""
    planted = write_planted_dataset(tmp_path / "data")
    stores = {}
    for kind in ("edge", "server"):
        settings = Settings(home=tmp_path / kind / "home")
        stores[kind] = make_store(kind, tmp_path / kind)
        ingest_planted(planted, settings, stores[kind], encoder=MetadataEncoder(title_model=tie_free_title_model))
    edge, server = stores["edge"], stores["server"]
    ids = server.scroll_ids(META_ALIAS)
    stored = {kind: store.retrieve(META_ALIAS, ids, with_vectors=True) for kind, store in stores.items()}
    halved = [stored["edge"][i].vector for i in ids]
    assert all(np.array_equal(v, v.astype(np.float16).astype(np.float32)) for v in halved)  # float16 on Edge
    assert not all(np.array_equal(v.vector, v.vector.astype(np.float16).astype(np.float32)) for v in stored["server"].values())
    for song in ids:
        query = Search((Nearest(stored["server"][song].vector),), 10)
        e, s = edge.search(META_ALIAS, query), server.search(META_ALIAS, query)
        assert len(e) == len(s) == 10
        assert same_order(e, s, F16), (song, [(h.song_id, h.score) for h in e], [(h.song_id, h.score) for h in s])
        assert all(abs(a.score - b.score) <= F16 for a, b in zip(e, s))
    for store in stores.values():
        store.close()


def test_backends_answer_alike_with_tied_scores(float32_vectors, tmp_path):
    """Ingest's own co-play values, which tie often (the same number of shared playlists and
    of plays), and conftest's fake titles, which tie within an artist.  Qdrant orders tied
    points as each backend happens to hold them, and rank fusion turns that order into
    different fused scores: a fused answer must not depend on it."""
    differ = run_operations(tmp_path, fake_title_model, tol=1e-6)
    assert not differ, f"{len(differ)} answers differ:\n" + "\n".join(differ)


def test_the_update_moves_answers(tmp_path, home_settings):
    """The congruence above means something only if the update changes what is compared."""
    planted = write_planted_dataset(tmp_path / "data")
    songs = SongSearch(store=make_store("edge", tmp_path), settings=home_settings)
    ingest_planted(planted, home_settings, songs.store)
    before = songs.similar(0, limit=47, evidence="coplay")
    update = tmp_path / "update.txt"
    update.write_text("0 13 24 36\n" * 5)
    run_update(update, settings=home_settings, store=songs.store, encoder=MetadataEncoder(title_model=fake_title_model), show_progress=False)
    after = songs.similar(0, limit=47, evidence="coplay")
    assert {13, 24, 36} <= set(after.ids) - set(before.ids)
    assert {r.song_id: r.coplays for r in after}[13] == 5
    assert songs.store.count(W2V_ALIAS) == songs.store.count(META_ALIAS) == 48
    songs.close()
