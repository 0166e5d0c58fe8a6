"""songsearch's ingest side: playlists -> Word2Vec + metadata embeddings -> Qdrant."""
