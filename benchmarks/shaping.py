"""How deep recommend and MMR read, chosen on the tuning split: what each depth costs in quality.

    python benchmarks/shaping.py --data ../shared/data/yes/yes_complete > docs/shaping.md   # about 6 minutes

On the tuning split (seed 11, never the report's), the default Word2Vec settings trained once and
served by the real store (``ServedModel``), through ``SongSearch`` as ``search`` serves:

* ``recommend``'s best-score stage over the ``among`` x depth songs nearest to the likes' mean
  (search/query.py RECOMMEND_AMONG; 0: over every song, one scan per like and dislike), on
  playlist continuation (the first 3 songs of held-out playlists, as docs/quality.md);
* ``--diversity`` (MMR) over ``max(low, factor x limit)`` fused candidates
  (DIVERSITY_CANDIDATES, MIN_DIVERSITY_CANDIDATES), on the warm queries.

Not a test: it asserts nothing. It prints markdown tables. Latency is measured by
benchmarks/bench.py, on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from ingest.dataset import load_dataset
from ingest.evaluation import continuation
from ingest.evaluation.metrics import HEADLINE_K, score
from ingest.evaluation.served import ServedModel
from ingest.evaluation.tune import TUNING_SEED, _split
from ingest.train import DEFAULT_PRESET, PRESETS, train_word2vec
from search import query as core
from search.clikit import markdown_table
from search.contract import Settings

K = HEADLINE_K


def recommend_rows(served: ServedModel, factors: list[int]) -> list[list[str]]:
    data = served.data
    seeds, queries = continuation.continuation_queries(data)
    likes = [[int(i) for i in data.ids[s]] for s in seeds]
    rows = []
    for among in factors:
        core.RECOMMEND_AMONG = among  # read when a request is built
        answers, _ = continuation._served(data, served.search, likes, K, lambda s, seed_ids: s.recommend(seed_ids, limit=K))
        row = score("recommend", answers, data, queries, (K,))
        what = "every song" if among == 0 else f"{among} x depth nearest to the likes' mean"
        rows.append([f"recommend, best score over {what}", f"{row.at('hit', K):.4f}", f"{row.at('coplay', K):.4f}", ""])
        print(" ".join(rows[-1]), file=sys.stderr, flush=True)
    answers, _ = continuation._served(data, served.search, likes, K, lambda s, seed_ids: s.cold_start(context=seed_ids, limit=K))
    row = score("context", answers, data, queries, (K,))
    rows.append(["context averaging (`cold-start --context`)", f"{row.at('hit', K):.4f}", f"{row.at('coplay', K):.4f}", ""])
    return rows


def diversity_rows(served: ServedModel, candidates: list[tuple[int, int]], diversities: list[float]) -> list[list[str]]:
    data = served.data
    queries = data.queries.take(continuation.MAX_QUERIES)
    songs = [int(i) for i in data.ids[queries.song]]
    rows = []

    def measure(what: str, options: dict) -> None:
        answers, served_answers = continuation._served(data, served.search, songs, K, lambda s, song: s.similar(song, limit=K, **options))
        row = score(what, answers, data, queries, (K,))
        artists = np.mean([len({r.artist for r in a.results[:K]}) for a in served_answers])
        rows.append([what, f"{row.at('hit', K):.4f}", f"{row.at('coplay', K):.4f}", f"{artists:.2f}"])
        print(" ".join(rows[-1]), file=sys.stderr, flush=True)

    measure("`similar`, no diversity", {})
    for factor, low in candidates:
        core.DIVERSITY_CANDIDATES, core.MIN_DIVERSITY_CANDIDATES = factor, low
        for diversity in diversities:
            measure(f"`--diversity {diversity:g}` over max({low}, {factor} x limit) candidates", {"diversity": diversity})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SONGSEARCH_DATA"), required=not os.environ.get("SONGSEARCH_DATA"))
    parser.add_argument("--seed", type=int, default=TUNING_SEED)
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--among", default="0,1,2,4")
    parser.add_argument("--candidates", default="10:100,5:50,3:30,2:20", help="factor:low pairs")
    parser.add_argument("--diversities", default="0.3,0.5")
    args = parser.parse_args()
    dataset = load_dataset(args.data, Settings.from_env().home / "datasets")
    data = _split(dataset, args.seed, args.queries)
    model = train_word2vec(data.train_sentences(), PRESETS[DEFAULT_PRESET])
    defaults = core.RECOMMEND_AMONG, core.DIVERSITY_CANDIDATES, core.MIN_DIVERSITY_CANDIDATES
    with ServedModel(dataset, data, model) as served:
        rec = recommend_rows(served, [int(x) for x in args.among.split(",")])
        core.RECOMMEND_AMONG = defaults[0]
        pairs = [tuple(int(v) for v in pair.split(":")) for pair in args.candidates.split(",")]
        div = diversity_rows(served, pairs, [float(x) for x in args.diversities.split(",")])
    core.RECOMMEND_AMONG, core.DIVERSITY_CANDIDATES, core.MIN_DIVERSITY_CANDIDATES = defaults
    headers = ["answer", f"hit@{K}", f"coplay@{K}", f"distinct artists in {K}"]
    print(f"# How deep recommend and MMR read\n\n`{' '.join(sys.argv)}`: split seed {args.seed}, {Path(args.data).name}.\n\n"
          f"Regenerate with `python benchmarks/shaping.py --data DIR > docs/shaping.md`. The defaults "
          f"(search/query.py): recommend over {defaults[0]} x depth, MMR over max({defaults[2]}, {defaults[1]} x limit).\n")
    print("## Recommend (playlist continuation from 3 songs)\n")
    print(markdown_table(headers[:3], [r[:3] for r in rec]))
    print("\n## Diversity (warm queries)\n")
    print(markdown_table(headers, div))


if __name__ == "__main__":
    main()
