"""Grow a Yes.com dataset into a synthetic catalogue FACTOR times its size, in the same file formats.

    python benchmarks/grow.py SOURCE_DIR OUT_DIR --factor 4 [--seed 13] [--mix 0.1] [--shrink F]

Copy 0 is the source itself. Copy c (1 .. FACTOR-1) gives every song a twin with id c * n + id,
the same tags, a new title (the source title with about half its words swapped for words drawn
from all source titles, by frequency: new strings for the text encoder, near the original) and a
new artist (the artist's first words joined to another artist's last words, one mapping per copy,
so an artist's twins share one new artist). Every source playlist is replayed once per copy
through its twins, except that each song, with probability ``mix``, is taken from a random other
copy: the copies share neighbourhoods instead of being disjoint clones, and the co-occurrence
structure (playlist lengths, who plays next to whom, popularity) is kept. ``--shrink F`` first
keeps the first F of the source songs (and the playlists among them), for quick runs.

Writes song_hash.txt, tags.txt, tag_hash.txt and train.txt (two header lines: source ids and
play counts), and test.txt when the source has one. Seeded: the same arguments write the same files.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

PLAYLIST_FILES = ("train.txt", "test.txt")


def read_songs(source: Path, limit: int | None) -> tuple[list[str], list[str]]:
    """Titles and artists by song id (ids run 0 .. n-1 in yes_* datasets)."""
    titles, artists = [], []
    for line in (source / "song_hash.txt").read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split("\t")
        if len(fields) != 3 or int(fields[0]) != len(titles):
            sys.exit(f"{source / 'song_hash.txt'}: expected 'id<TAB>title<TAB>artist' with ids 0, 1, 2, ...: {line[:60]!r}")
        titles.append(fields[1].replace("\\/", "/"))
        artists.append(fields[2].replace("\\/", "/"))
    return titles[:limit], artists[:limit]


def read_playlists(path: Path, n: int) -> tuple[list[str], list[np.ndarray]]:
    """(the two header lines, each playlist as an id array, songs at or beyond n dropped)."""
    lines = path.read_text().splitlines()
    playlists = []
    for line in lines[2:]:
        ids = np.array(line.split(), dtype=np.int64)
        playlists.append(ids[ids < n])
    return lines[:2], playlists


def new_titles(titles: list[str], copies: int, rng: np.random.Generator) -> list[str]:
    """``copies`` new titles per source title: about half the words swapped for source words."""
    if copies == 0:
        return []
    words = [t.split() or ["untitled"] for t in titles]
    vocab, counts = np.unique(np.concatenate([np.array(w, dtype=object) for w in words]).astype(str), return_counts=True)
    p = counts / counts.sum()
    lengths = np.array([len(w) for w in words] * copies)
    swap = rng.random(int(lengths.sum())) < 0.5
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    swap[starts + (rng.random(len(lengths)) * lengths).astype(np.int64)] = True  # at least one word drawn per title
    drawn = iter(vocab[rng.choice(len(vocab), int(swap.sum()), p=p)].tolist())
    extra = iter(vocab[rng.choice(len(vocab), len(lengths), p=p)].tolist())
    flat = iter(swap.tolist())
    out = []
    for _ in range(copies):
        for original in words:
            title = " ".join(next(drawn) if next(flat) else word for word in original)
            word = next(extra)
            out.append(title if title != " ".join(original) else f"{title} {word}")  # never the source title
    return out


def new_artists(artists: list[str], copies: int, rng: np.random.Generator) -> list[list[str]]:
    """Per copy, every song's new artist: the head of its artist's words, the tail of another's."""
    distinct = sorted(set(artists))
    out = []
    for _ in range(copies):
        partner = rng.permutation(len(distinct))
        mapping = {}
        for a, b in zip(distinct, partner):
            head, tail = a.split() or ["Unknown"], distinct[b].split() or ["Artist"]
            mapping[a] = " ".join(head[: max(1, (len(head) + 1) // 2)] + tail[len(tail) // 2 :])
        out.append([mapping[a] for a in artists])
    return out


def grow_playlists(playlists: list[np.ndarray], n: int, factor: int, mix: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Every playlist once per copy, through that copy's twins, a share ``mix`` of songs from other copies."""
    grown = []
    for copy in range(factor):
        for ids in playlists:
            target = np.full(len(ids), copy, dtype=np.int64)
            mixed = rng.random(len(ids)) < mix
            target[mixed] = rng.integers(0, factor, int(mixed.sum()))
            grown.append(ids + target * n)
    order = rng.permutation(len(grown))  # the copies interleaved
    return [grown[i] for i in order]


def write_playlists(path: Path, header: list[str], playlists: list[np.ndarray], n: int, factor: int) -> None:
    plays = np.bincount(np.concatenate(playlists), minlength=n * factor) if playlists else np.zeros(n * factor, np.int64)
    source_ids = (header[0].split() + ["0"] * n)[:n] * factor
    with open(path, "w") as out:
        out.write(" ".join(source_ids) + " \n")
        out.write(" ".join(map(str, plays.tolist())) + " \n")
        for ids in playlists:
            out.write(" ".join(map(str, ids.tolist())) + (" \n" if len(ids) else "\n"))


def grow(source: Path, out: Path, factor: int, seed: int = 13, mix: float = 0.1, shrink: float = 1.0) -> int:
    """Write the grown dataset into ``out``; returns its number of songs."""
    rng = np.random.default_rng(seed)
    titles, artists = read_songs(source, None)
    n = max(2, int(round(len(titles) * shrink)))
    titles, artists = titles[:n], artists[:n]
    out.mkdir(parents=True, exist_ok=True)
    all_titles = titles + new_titles(titles, factor - 1, rng)
    all_artists = artists + [a for per_copy in new_artists(artists, factor - 1, rng) for a in per_copy]
    with open(out / "song_hash.txt", "w", encoding="utf-8") as f:
        for song, (title, artist) in enumerate(zip(all_titles, all_artists)):
            f.write(f"{song} \t{title.replace('/', chr(92) + '/')}\t{artist.replace('/', chr(92) + '/')}\n")
    if (source / "tags.txt").is_file() and (source / "tag_hash.txt").is_file():
        tags = (source / "tags.txt").read_text().splitlines()[:n]
        (out / "tags.txt").write_text("\n".join(tags * factor) + "\n")
        shutil.copyfile(source / "tag_hash.txt", out / "tag_hash.txt")
    for name in PLAYLIST_FILES:
        if (source / name).is_file():
            header, playlists = read_playlists(source / name, n)
            write_playlists(out / name, header, grow_playlists(playlists, n, factor, mix, rng), n, factor)
    return n * factor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a Yes.com dataset directory (song_hash.txt, train.txt, tags)")
    parser.add_argument("out", type=Path, help="where to write the grown dataset")
    parser.add_argument("--factor", type=int, default=4, help="how many times the source's size")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--mix", type=float, default=0.1, help="share of playlist entries taken from another copy")
    parser.add_argument("--shrink", type=float, default=1.0, help="first keep this share of the source's songs")
    args = parser.parse_args()
    if args.factor < 1 or not 0 <= args.mix <= 1 or not 0 < args.shrink <= 1:
        parser.error("--factor must be at least 1, --mix in [0, 1], --shrink in (0, 1]")
    for name in ("song_hash.txt", "train.txt"):
        if not (args.source / name).is_file():
            parser.error(f"{args.source} has no {name}")
    songs = grow(args.source, args.out, args.factor, args.seed, args.mix, args.shrink)
    print(f"wrote {args.out}: {songs} songs")


if __name__ == "__main__":
    main()
