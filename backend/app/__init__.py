"""Recommender service: ingest interaction logs, train an embedding model, serve top-K lists, learn from use."""
