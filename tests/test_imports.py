"""The search paths must not pay for the training stack (no torch, sentence-transformers or gensim),
nor for the HTTP server (fastapi, uvicorn: only `search serve` imports them)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ingest_planted

HEAVY = ("torch", "sentence_transformers", "gensim", "transformers", "fastapi", "starlette", "uvicorn")

PROBE = """
import json, sys
from click.testing import CliRunner
from search.cli import cli
result = CliRunner().invoke(cli, {args!r})
assert result.exit_code == 0, result.output
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["similar", "--id", "3"],
        ["similar", "--id", "3", "--artist", "metallica", "--hybrid"],
        ["cold-start", "--context", "1,2"],
        ["cold-start", "--title", "metal thunder", "--artist", "Metallica"],
        ["songs", "metal thunder song 3"],
        ["similar", "--song", "metal thunder song 3", "--tag", "metal", "--per-artist", "1", "--diversity", "0.5"],
        ["recommend", "--like", "1,metal thunder song 2", "--dislike", "13"],
        ["tags"],
    ],
)
def test_search_commands_do_not_import_the_training_stack(planted, home_settings, args):
    ingest_planted(planted, home_settings)
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
