"""Catalogue endpoints: details and title search."""

from __future__ import annotations


def test_item_details(client):
    r = client.get("/items/a1")
    assert r.status_code == 200
    body = r.json()
    assert body["title"] == "Alpha Strike" and body["genres"] == ["Action"] and body["year"] == 1990
    assert body["popularity"] == 4 and body["popularity_rank"] == 2 and body["avg_rating"] == 4.5
    assert body["in_model"] is True
    body = client.get("/items/c3").json()
    assert body["popularity"] == 0 and body["avg_rating"] is None


def test_unknown_item_is_404_with_an_explanation(client):
    r = client.get("/items/zzz")
    assert r.status_code == 404 and "not in the catalogue" in r.json()["detail"]


def test_search_by_title_prefix_first_then_popularity(client):
    r = client.get("/items", params={"query": "l"})
    body = r.json()
    # titles containing "l": Alpha Strike (a1, 4), Blast Zone (a2, 1), Dynamite Laughs (a4, 0), Giggle Town (c3, 0),
    # Happy Tears? no; Long Night (d1, 5, prefix), Quiet River? no; Silent Rain (d3, 1); Winter Light (d4, 0)
    got = [it["item_id"] for it in body["items"]]
    assert got[0] == "d1"  # the only title starting with "l"
    assert got[1:3] == ["a1", "a2"] or got[1:3] == ["a1", "d3"]
    assert set(got) == {"d1", "a1", "a2", "a4", "c3", "d3", "d4"} and body["total"] == 7
    r = client.get("/items", params={"query": "RAIN"})
    assert [it["item_id"] for it in r.json()["items"]] == ["d3"]


def test_search_by_genre_and_limit(client):
    r = client.get("/items", params={"genre": "comedy", "limit": 2})
    body = r.json()
    assert body["total"] == 5 and [it["item_id"] for it in body["items"]] == ["c1", "c2"]
    r = client.get("/items", params={"genre": "Western"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "genre"
    r = client.get("/items", params={"limit": 0})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "limit"
