"""Ingestion: JSONL interaction logs and catalogues, ID maps, negative sampling, MovieLens importers."""
