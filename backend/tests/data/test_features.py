"""Item features: the genre matrix in the fitted item order."""

from __future__ import annotations

from app.data.features import genre_matrix


def test_genre_matrix():
    cat = {"a": {"genres": ["Drama", "Comedy"]}, "b": {"genres": ["Drama"]}, "z": {"genres": ["Horror"]}}
    m, names = genre_matrix(["a", "b", "c"], cat)
    assert names == ["Comedy", "Drama"]
    assert m.toarray().tolist() == [[1, 1], [0, 1], [0, 0]]
