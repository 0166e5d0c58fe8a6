"""The real MiniLM, end to end: ingest encodes with sentence-transformers (torch), queries run
the same model in numpy; both must give the same vectors, and cold start must work on them."""

import numpy as np
import pytest

from search.api import SongSearch
from search.encoder import MetadataEncoder, minilm_title_model, numpy_title_model
from tests.conftest import ingest_planted

pytestmark = pytest.mark.slow

TITLES = ["Master Of Puppets", "Gucci Time (w/ Swizz Beatz)", "", "Chutkaipan", "Ünïcödé – títle ✓", "word " * 300]


@pytest.fixture(scope="module")
def sentence_transformers_model():
    return minilm_title_model()


def test_numpy_minilm_equals_sentence_transformers(sentence_transformers_model):
    reference = sentence_transformers_model(TITLES)
    ours = numpy_title_model()(TITLES)
    assert ours.shape == reference.shape == (len(TITLES), 384)
    np.testing.assert_allclose(np.sum(ours * reference, axis=1), 1.0, atol=1e-5)


def test_real_model_cold_start_finds_the_artist_and_the_title(planted, home_settings, sentence_transformers_model):
    ingest_planted(planted, home_settings, encoder=MetadataEncoder(title_model=sentence_transformers_model))
    with SongSearch(settings=home_settings) as songs:  # the default query encoder: numpy MiniLM
        by_artist = songs.cold_start(title="a brand new song", artist="Johnny Cash", limit=3, weights="w2v=0")
        assert {r.artist for r in by_artist} == {"Johnny Cash"}
        by_title = songs.cold_start(title="jazz blue song 3", artist="Somebody New", limit=1, weights="w2v=0")
        assert by_title[0].title == "jazz blue song 3"
