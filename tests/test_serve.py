"""`search serve` through the ASGI test client, on both backends: answers equal to the API's,
every error a 4xx (or 503) with the CLI's one line, the limits, the API key, CORS, hot versions."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from qdrant_client import QdrantClient

from search.api import SongSearch
from search.cli import cli
from search.contract import Settings
from search.find import Filters
from search.store.edge import EdgeStore
from search.store.server import ServerStore
from search.web.app import MAX_BODY, MAX_LIMIT, MAX_LIST, MAX_QUERY_STRING, MAX_TEXT, create_app
from tests.conftest import ingest_planted


@pytest.fixture(scope="module")
def served(ingested_once):
    search, planted = ingested_once
    with TestClient(create_app(search)) as client:
        yield client, search, planted


def results(answer) -> list[dict]:
    return [r.to_dict() for r in answer]


def rounded(value, places: int = 6):
    """JSON with its floats rounded: qdrant-client's local mode (the server stand-in) scores the
    same query a few units in the ninth digit apart from one call to the next."""
    if isinstance(value, float):
        return round(value, places)
    if isinstance(value, list):
        return [rounded(v, places) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v, places) for k, v in value.items()}
    return value


# (endpoint, query parameters, the same question to the API)
EQUAL = [
    ("/similar", {"id": "3", "limit": "5"}, lambda s: s.similar(3, limit=5)),
    ("/similar", {"id": "3", "artist": "iron maiden"}, lambda s: s.similar(3, artist="iron maiden")),
    ("/similar", {"id": "3", "evidence": "coplay", "per-artist": "1", "diversity": "0.5"}, lambda s: s.similar(3, evidence="coplay", per_artist=1, diversity=0.5)),
    ("/similar", [("id", "3"), ("tag", "metal"), ("tag", "favorites"), ("min-plays", "1")], lambda s: s.similar(3, filters=Filters(tags=("metal", "favorites"), min_plays=1))),
    ("/similar", {"song": "metal thunder song 5", "by": "metallica"}, lambda s: s.similar(s.song_named("metal thunder song 5", "metallica"))),
    ("/similar", {"id": "3", "hybrid": "true", "fusion": "dbsf", "weights": "w2v=1,meta=0.5"}, lambda s: s.similar_hybrid(3, method="dbsf", weights={"w2v": 1, "meta": 0.5})),
    ("/cold-start", {"context": "1,2,4"}, lambda s: s.cold_start(context=[1, 2, 4])),
    ("/cold-start", {"title": "metal thunder", "artist": "Metallica", "exclude-artist": "iron maiden"},
     lambda s: s.cold_start(title="metal thunder", artist="Metallica", filters=Filters(exclude_artists=("iron maiden",)))),
    ("/recommend", {"like": "1,metal thunder song 2", "dislike": "13", "limit": "4"}, lambda s: s.recommend([1, "metal thunder song 2"], dislike=[13], limit=4)),
    ("/songs", {"query": "metal thunder", "limit": "3"}, lambda s: s.songs("metal thunder", limit=3)),
]


@pytest.mark.parametrize("path, params, api", EQUAL, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(EQUAL)])
def test_answers_equal_the_api(served, path, params, api):
    client, search, _ = served
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    answer = api(search)
    assert rounded(response.json()) == rounded({"query": answer.query, "skipped": list(answer.skipped), "note": answer.note, "results": results(answer)})
    assert response.json()["results"]


def test_tags_and_skipped(served):
    client, search, _ = served
    assert client.get("/tags", params={"limit": 3}).json() == [{"tag": t, "songs": n} for t, n in search.tags(limit=3)]
    body = client.get("/cold-start", params={"context": "1,2,99999"}).json()
    assert body["skipped"] == ["unknown context song id(s): 99999"] and body["results"]


LONG = "x" * (MAX_TEXT + 1)
# (endpoint, query parameters, status, the error's one line: its start)
ERRORS = [
    ("/similar", {"id": "99999"}, 404, "unknown song id 99999"),
    ("/similar", {"song": "no such words"}, 404, "no song matches 'no such words'"),
    ("/similar", {}, 422, "give one of --id and --song"),
    ("/similar", {"id": "abc"}, 422, "Invalid value for '--id': must be a song id (digits), got 'abc'"),
    ("/similar", {"id": "3", "limit": "0"}, 422, "Invalid value for '--limit'"),
    ("/similar", {"id": "3", "limit": str(MAX_LIMIT + 1)}, 422, f"--limit must be at most {MAX_LIMIT}"),
    ("/similar", {"id": "3", "limit": "ten"}, 422, "Invalid value for '--limit'"),
    ("/similar", {"id": "3", "evidence": "vibes"}, 422, "Invalid value for '--evidence'"),
    ("/similar", {"id": "3", "fusion": "dbsf"}, 422, "--fusion go with --hybrid"),
    ("/similar", {"id": "3", "hybrid": "maybe"}, 422, "--hybrid is a switch"),
    ("/similar", {"id": "3", "artist": "nobody at all"}, 422, "artist 'nobody at all' is not in the catalogue"),
    ("/similar", {"id": "3", "tag": "polka"}, 422, "--tag 'polka' is not a known tag"),
    ("/similar", {"id": "3", "weights": "w2v=1"}, 422, "--weights go with --hybrid"),
    ("/similar", {"id": "3", "hybrid": "1", "weights": "x=1"}, 422, "Invalid value for '--weights'"),
    ("/similar", {"id": "3", "diversity": "2"}, 422, "Invalid value for '--diversity'"),
    ("/similar", {"id": "3", "frobnicate": "1"}, 422, "no such parameter: 'frobnicate'"),
    ("/similar", {"id": "3", "json": "1"}, 422, "no such parameter: 'json'"),
    ("/similar", {"id": "3", "artist": LONG}, 422, f"--artist is longer than {MAX_TEXT} characters"),
    ("/similar", [("id", "3")] + [("tag", "metal")] * (MAX_LIST + 1), 422, f"--tag is repeated more than {MAX_LIST} times"),
    ("/recommend", {"like": ",".join(str(i) for i in range(MAX_LIST + 1))}, 422, f"--like takes at most {MAX_LIST} entries"),
    ("/recommend", {"like": "99998"}, 422, "--like has no song known to the model"),
    ("/recommend", {}, 422, "Missing option '--like'"),
    ("/cold-start", {}, 422, "--context or title/artist"),
    ("/cold-start", {"context": "99998"}, 422, "--context has no song known to the model"),
    ("/songs", {}, 422, "Missing argument 'QUERY'"),
    ("/tags", {"artist": "nobody at all"}, 422, "artist 'nobody at all' is not in the catalogue"),
    ("/nowhere", {}, 404, "no such endpoint: /nowhere"),
]


@pytest.mark.parametrize("path, params, status, message", ERRORS, ids=[f"{p}-{i}" for i, (p, _, _, _) in enumerate(ERRORS)])
def test_every_bad_request_is_one_line(served, path, params, status, message):
    client, _, _ = served
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error.startswith(message) and "\n" not in error and "Traceback" not in error


def test_sizes_and_methods_are_bounded(served):
    client, _, _ = served
    assert client.get("/similar?id=3&artist=" + "a" * MAX_QUERY_STRING).status_code == 414
    response = client.request("GET", "/similar?id=3", content=b"x" * (MAX_BODY + 1))
    assert response.status_code == 413 and "request bodies" in response.json()["error"]
    assert client.post("/similar?id=3").status_code == 405


CLI_ERRORS = [
    (["similar", "--id", "3", "--limit", "0"], {"id": "3", "limit": "0"}),
    (["similar", "--id", "3", "--fusion", "dbsf"], {"id": "3", "fusion": "dbsf"}),
    (["similar", "--id", "99999"], {"id": "99999"}),
    (["similar", "--id", "3", "--tag", "polka"], {"id": "3", "tag": "polka"}),
    (["cold-start", "--context", "99998"], {"context": "99998"}),
]


def test_errors_are_the_cli_line(planted, home_settings):
    ingest_planted(planted, home_settings)
    with SongSearch() as search, TestClient(create_app(search)) as client:
        for args, params in CLI_ERRORS:
            cli_line = CliRunner().invoke(cli, args).output.strip().splitlines()[-1]
            error = client.get("/" + args[0], params=params).json()["error"]
            assert cli_line.startswith(f"Error: {error}"), (cli_line, error)


def test_health_names_the_live_version(served):
    client, search, planted = served
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["aliases"] == search.status()
    w2v, meta = body["aliases"]["songs_w2v"], body["aliases"]["songs_meta"]
    assert w2v["version"] == meta["version"] and w2v["collection"] == f"songs_w2v__{w2v['version']}"
    assert meta["points"] == len(planted.songs)


def test_a_new_version_is_served_without_a_restart(ingested):
    search, planted = ingested
    with TestClient(create_app(search)) as client:
        before = client.get("/health").json()["aliases"]["songs_w2v"]["version"]
        assert client.get("/similar", params={"id": 3}).status_code == 200
        ingest_planted(planted, search.settings, search.store, force=True)
        after = client.get("/health").json()["aliases"]["songs_w2v"]["version"]
        response = client.get("/similar", params={"id": 3})
    assert after != before
    assert response.status_code == 200 and response.json()["results"] == results(search.similar(3))


def test_api_key_is_required_when_set(served):
    _, search, _ = served
    with TestClient(create_app(search, api_key="s3cret")) as client:
        assert client.get("/similar", params={"id": 3}).status_code == 401
        assert client.get("/health", headers={"X-API-Key": "wrong"}).json() == {"error": "a valid X-API-Key header is required"}
        assert client.get("/similar", params={"id": 3}, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.get("/").status_code == 200  # the page holds no data; it asks for the key


def test_no_cors_unless_configured(served):
    _, search, _ = served
    origin = {"Origin": "http://elsewhere.example"}
    with TestClient(create_app(search)) as client:
        assert "access-control-allow-origin" not in client.get("/tags", headers=origin).headers
    with TestClient(create_app(search, cors_origins=("http://elsewhere.example",))) as client:
        assert client.get("/tags", headers=origin).headers["access-control-allow-origin"] == "http://elsewhere.example"


@pytest.mark.parametrize("kind", ["edge-empty", "server-empty", "server-unreachable"])
def test_a_store_that_cannot_answer_is_503(tmp_path, kind):
    if kind == "edge-empty":
        store = EdgeStore(tmp_path / "qdrant")
    else:
        store = ServerStore(QdrantClient(":memory:") if kind == "server-empty" else QdrantClient(url="http://127.0.0.1:9", timeout=1, check_compatibility=False))
    with TestClient(create_app(SongSearch(store=store, settings=Settings(home=tmp_path)))) as client:
        for path in ("/similar?id=3", "/health", "/songs?query=x"):
            response = client.get(path)
            assert response.status_code == 503, (path, response.text)
            assert "\n" not in response.json()["error"]


def test_page_and_docs_need_nothing_from_the_internet(served):
    client, _, _ = served
    page = client.get("/")
    assert page.status_code == 200 and "<input" in page.text
    for text in (page.text, client.get("/docs").text):
        assert "src=\"http" not in text and "href=\"http" not in text and "cdn" not in text.lower()
    spec = client.get("/openapi.json").json()
    assert {"/similar", "/cold-start", "/recommend", "/songs", "/tags", "/health"} <= set(spec["paths"])
    params = {p["name"]: p for p in spec["paths"]["/similar"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == MAX_LIMIT and "min-plays" in params and "tag" in params
    assert "/similar" in client.get("/docs").text and "min-plays" in client.get("/docs").text
