# songsearch: the `ingest` and `search` console scripts, CPU only.
#   docker build -t songsearch .
#   docker run --rm -e QDRANT_URL=http://host:6333 songsearch search similar --id 2172
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    SONGSEARCH_HOME=/data/home

# The CPU build of torch, first and from PyTorch's CPU index only: PyPI's torch
# is a CUDA build of several GB. Same version as pyproject.toml pins, so the
# `pip install .` below finds it satisfied and keeps it.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /src
COPY pyproject.toml ./
COPY search ./search
COPY ingest ./ingest
RUN pip install . && rm -rf /src/build

RUN useradd --create-home --uid 1000 songsearch \
    && mkdir -p /data/home \
    && chown songsearch:songsearch /data/home
USER songsearch
WORKDIR /data/home

# `ingest ...` or `search ...`; docker-compose.yml's ingest service runs `ingest`
CMD ["search", "--help"]
