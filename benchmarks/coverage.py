"""What raising coverage@10 costs in co-play@10: popularity penalties tried on the default answer.

    python benchmarks/coverage.py --data ../shared/data/yes/yes_complete     # about 15 minutes

On the tuning split (seed 11, never the report's), the default Word2Vec settings trained once and
served by the real store (``ServedModel``), two ways of favouring less played songs:

* the co-play vectors' popularity exponent b (ingest/collections.py: a value is
  ``playlists(song) ** -b``; 0.5, the default, makes the dot product a cosine), each exponent
  its own published store, asked for the fused default and for co-play alone;
* a discount after fusion: the fused top ``DEEP`` re-ranked by ``score * (plays + 1) ** -beta``.

Not a test: it asserts nothing. It prints one markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ingest import collections
from ingest.dataset import load_dataset
from ingest.evaluation.metrics import HEADLINE_K, METRICS, score
from ingest.evaluation.served import ServedModel
from ingest.evaluation.tune import TUNING_SEED, _split
from ingest.train import DEFAULT_PRESET, PRESETS, train_word2vec
from search.clikit import markdown_table
from search.contract import Settings

#: how many fused answers the discount re-ranks
DEEP = 100
ABOUT = """Regenerate with `python benchmarks/coverage.py --data DIR > docs/coverage.md` (about 15 minutes).
Two ways of favouring less played songs in the default answer, each measured on the tuning split
with the default Word2Vec settings, served by the real store: the co-play vectors' popularity
exponent b (a value is `playlists(song) ** -b`; 0.5, the default, makes the dot product a cosine),
each exponent a store of its own; and a discount after fusion, the fused top 100 re-ranked by
`score * (plays + 1) ** -beta`. The report split (docs/quality.md) draws 5,000 queries against 3,000
here, so its coverage is higher for the same answers."""


class Reranked:
    """The ``ids`` of an answer re-ranked by the popularity discount."""

    def __init__(self, results, beta: float):
        ranked = sorted(results, key=lambda r: -r.score * (r.plays + 1.0) ** -beta)
        self.ids = [r.song_id for r in ranked[:HEADLINE_K]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SONGSEARCH_DATA"), required=not os.environ.get("SONGSEARCH_DATA"))
    parser.add_argument("--seed", type=int, default=TUNING_SEED)
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--exponents", default="0.5,0.65,0.8,1.0")
    parser.add_argument("--discounts", default="0.1,0.2,0.4")
    args = parser.parse_args()
    dataset = load_dataset(args.data, Settings.from_env().home / "datasets")
    data = _split(dataset, args.seed, args.queries)
    model = train_word2vec(data.train_sentences(), PRESETS[DEFAULT_PRESET])
    default_exponent = collections.COPLAY_POPULARITY_EXPONENT
    rows = []

    def measure(served: ServedModel, what: str, ask) -> None:
        row = score(what, served.answers(data.queries.song, HEADLINE_K, ask), data, data.queries, (HEADLINE_K,))
        rows.append([what] + [f"{row.at(m, HEADLINE_K):.4f}" for m in METRICS])
        print(" ".join(rows[-1]), file=sys.stderr, flush=True)

    for exponent in [float(x) for x in args.exponents.split(",")]:
        collections.COPLAY_POPULARITY_EXPONENT = exponent  # read when the co-play vectors are built
        with ServedModel(dataset, data, model) as served:
            measure(served, f"co-play exponent {exponent:g}: fused default", lambda s, song: s.similar(song, limit=HEADLINE_K))
            measure(served, f"co-play exponent {exponent:g}: co-play only", lambda s, song: s.similar(song, limit=HEADLINE_K, evidence="coplay"))
            if exponent == default_exponent:
                for beta in [float(x) for x in args.discounts.split(",")]:
                    measure(served, f"co-play exponent {exponent:g}: fused, discount beta {beta:g}",
                            lambda s, song, beta=beta: Reranked(s.similar(song, limit=DEEP), beta))
    collections.COPLAY_POPULARITY_EXPONENT = default_exponent
    print(f"# Coverage against co-play\n\n`{' '.join(sys.argv)}`: split seed {args.seed}, {len(data.queries)} queries, "
          f"{Path(args.data).name}.\n\n{ABOUT}\n")
    print(markdown_table(["answer"] + [f"{m}@{HEADLINE_K}" for m in METRICS], rows))


if __name__ == "__main__":
    main()
