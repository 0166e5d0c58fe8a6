"""Word2Vec on playlists: playlists are sentences, songs are words."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec


@dataclass(frozen=True)
class W2VSettings:
    """Word2Vec settings; the defaults are the "tuned" preset (docs/quality.md, `ingest tune --word2vec`).

    Against the seed notebook's settings, on held-out yes_complete playlists:
    bigger vectors, a short window, few negatives, aggressive down-sampling of
    frequent songs and uniform negative sampling (ns_exponent 0) raise co-play
    precision@10 by about 75 % and tag coherence a little, and train in about
    a quarter of the time (CBOW; skip-gram was both slower and worse here).
    """

    vector_size: int = 256
    window: int = 7
    negative: int = 5
    min_count: int = 1
    epochs: int = 5
    sg: int = 0
    sample: float = 1e-5
    ns_exponent: float = 0.0
    seed: int = 1
    workers: int = max(1, min(4, os.cpu_count() or 1))
    #: Down-sampling threshold as a play count: when set, ``sample`` = sample_plays / plays in the
    #: corpus, so that the same songs are down-sampled on small and large datasets (1e-5 is right for
    #: yes_complete's 1.7M training plays, i.e. 17, and ruinous for yes_small's).  None: use ``sample``.
    sample_plays: float | None = 17.0

    def with_options(self, **options) -> "W2VSettings":
        """A copy with the options that were given (None = keep); an explicit ``sample`` wins over ``sample_plays``."""
        given = {k: v for k, v in options.items() if v is not None}
        if "sample" in given and "sample_plays" not in given:
            given["sample_plays"] = None
        return replace(self, **given)

    def effective_sample(self, total_plays: int) -> float:
        if self.sample_plays is None or total_plays <= 0:
            return self.sample
        return min(1e-3, self.sample_plays / total_plays)

    def training_args(self, total_plays: int | None = None) -> dict:
        """Keyword arguments for gensim's Word2Vec (``total_plays`` resolves ``sample_plays``)."""
        args = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sample_plays"}
        if total_plays is not None:
            args["sample"] = self.effective_sample(total_plays)
        return args


#: The seed notebook's call, exactly: Word2Vec(playlists, vector_size=32, window=20, negative=50, min_count=1),
#: gensim's defaults otherwise (epochs 5, CBOW, sample 1e-3, ns_exponent 0.75, seed 1).
SEED_NOTEBOOK = W2VSettings(
    vector_size=32, window=20, negative=50, min_count=1, epochs=5, sg=0, sample=1e-3, ns_exponent=0.75, seed=1, sample_plays=None
)
#: Chosen by the time-boxed search of `ingest tune --word2vec` (docs/quality.md).
TUNED = W2VSettings()
PRESETS = {"seed": SEED_NOTEBOOK, "tuned": TUNED}
DEFAULT_PRESET = "tuned"


class _EpochProgress(CallbackAny2Vec):
    def __init__(self, bar):
        self.bar = bar

    def on_epoch_end(self, model):
        self.bar.update(1)


def _sentences(playlists: list[list[int]], model: Word2Vec | None = None) -> list[list]:
    """The playlists as sentences of the model's vocabulary keys: song ids as they are (no copy
    of the corpus in memory), or as strings for a model trained before keys were ints."""
    if model is not None and model.wv.index_to_key and isinstance(model.wv.index_to_key[0], str):
        return [[str(song) for song in playlist] for playlist in playlists]
    return playlists


def train_word2vec(playlists: list[list[int]], settings: W2VSettings, progress=None) -> Word2Vec:
    """Train on the playlists; ``progress`` is a tqdm-like bar advanced once per epoch."""
    callbacks = [_EpochProgress(progress)] if progress is not None else []
    total = sum(len(p) for p in playlists)
    return Word2Vec(sentences=_sentences(playlists), callbacks=callbacks, **settings.training_args(total))


def continue_training(model: Word2Vec, playlists: list[list[int]], progress=None) -> tuple[int, int]:
    """Extend the vocabulary with the new playlists and train on them only; returns
    (trained, raw) song plays over all epochs, as gensim counts them.

    gensim applies ``min_count`` and ``sample`` to the new batch alone, and
    ``train`` needs ``total_examples`` and ``epochs`` spelled out.  The
    corpus-sized ``sample`` would throw away ~95 % of a small update (every
    song looks frequent in 300 playlists), so the update trains on every play.
    """
    sentences = _sentences(playlists, model)
    corpus_sample, model.sample = model.sample, 0.0
    try:
        model.build_vocab(sentences, update=True)
        callbacks = [_EpochProgress(progress)] if progress is not None else []
        trained, raw = model.train(sentences, total_examples=len(sentences), epochs=model.epochs, callbacks=callbacks)
    finally:
        model.sample = corpus_sample  # the saved model keeps its own setting
    return trained, raw


def release_model(model: Word2Vec) -> None:
    """Drop a trained model's vectors and vocabulary, nearly all its memory, once it is saved and
    its vectors copied out: the rest of an ingest needs that memory, and nothing uses it again."""
    model.wv = model.syn1neg = model.cum_table = None
