"""MovieLens importers on tiny hand-made files in each format, on the real ML-100K, and the download command."""

from __future__ import annotations

import io
import shutil
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import orjson
import pytest

from app.data import movielens
from app.data.catalog import read_items
from app.data.dataset import load_dataset
from app.data.events import IngestError, read_events
from app.data.movielens import MovieLensError, import_movielens, year_from_title

GENRES_100K = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def flags(*names):
    return "|".join("1" if g in names else "0" for g in GENRES_100K)


def make_100k(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("1\t10\t5\t881250949\n2\t10\t3\t891717742\n1\t20\t4\t878887116\n")
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES_100K)) + "\n")
    (folder / "u.item").write_bytes(
        (
            f"10|Amélie (2001)|01-Jan-2001||http://us.imdb.com/x|{flags('Comedy', 'Romance')}\n"
            f"20|Heat (1995)|||http://us.imdb.com/y|{flags('Action', 'Crime', 'Thriller')}\n"
            f"30|unknown||||{flags('unknown')}\n"
        ).encode("latin-1")
    )
    return folder


def make_1m(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    (folder / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "2000::Café au lait (1993)::Comedy\n".encode("latin-1")
    )
    return folder


def make_latest(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964980000\n1,3,0.5,964980100\n2,1,3.5,964980200\n"
    )
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n1,Paper Lanterns (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '3,"Lighthouse Keeper, The (1995)",Comedy|Drama|Romance\n'
        "4,Cosmos,(no genres listed)\n"
        "5,Quiet Corridors (1975-1979),Comedy\n",
        encoding="utf-8",
    )
    return folder


def zip_folder(folder: Path, archive: Path, nested: bool = True) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"{folder.name}/{f.name}" if nested else f.name)
    return archive


def lines(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def check_100k_output(out: Path, summary) -> None:
    assert summary.format == "ml-100k" and (summary.events, summary.users, summary.items) == (3, 2, 3)
    assert lines(out / "interactions.jsonl") == [
        {"user_id": "1", "item_id": "10", "event": "rating", "rating": 5, "ts": 881250949},
        {"user_id": "2", "item_id": "10", "event": "rating", "rating": 3, "ts": 891717742},
        {"user_id": "1", "item_id": "20", "event": "rating", "rating": 4, "ts": 878887116},
    ]
    items = read_items(out / "items.jsonl")
    assert items["10"]["title"] == "Amélie (2001)"  # Latin-1 decoded
    assert items["10"]["genres"] == ["Comedy", "Romance"] and items["10"]["year"] == 2001
    assert items["20"]["genres"] == ["Action", "Crime", "Thriller"]
    assert items["20"]["year"] == 1995  # no release date: from the title
    assert items["30"] == {"item_id": "30", "title": "unknown", "genres": [], "year": None}
    _, ingest = read_events(out / "interactions.jsonl", strict=True)  # the output passes our own reader
    assert ingest.accepted == 3


def test_100k_folder_and_zips(tmp_path):
    folder = make_100k(tmp_path / "ml-100k")
    check_100k_output(tmp_path / "a", import_movielens(folder, tmp_path / "a"))
    check_100k_output(tmp_path / "b", import_movielens(zip_folder(folder, tmp_path / "nested.zip"), tmp_path / "b"))
    flat = zip_folder(folder, tmp_path / "flat.zip", nested=False)
    check_100k_output(tmp_path / "c", import_movielens(flat, tmp_path / "c"))
    check_100k_output(tmp_path / "d", import_movielens(tmp_path, tmp_path / "d"))  # parent of the unpacked folder
    assert not list((tmp_path / "a").glob(".tmp-*"))


def test_1m(tmp_path):
    folder = make_1m(tmp_path / "ml-1m")
    for i, source in enumerate([folder, zip_folder(folder, tmp_path / "ml-1m.zip")]):
        out = tmp_path / f"out{i}"
        summary = import_movielens(source, out)
        assert summary.format == "ml-1m" and (summary.events, summary.users, summary.items) == (3, 2, 3)
        assert lines(out / "interactions.jsonl")[1] == {
            "user_id": "1",
            "item_id": "661",
            "event": "rating",
            "rating": 3,
            "ts": 978302109,
        }
        items = read_items(out / "items.jsonl")
        assert items["661"] == {
            "item_id": "661",
            "title": "James and the Giant Peach (1996)",
            "genres": ["Animation", "Children's", "Musical"],
            "year": 1996,
        }
        assert items["2000"]["title"] == "Café au lait (1993)" and items["2000"]["year"] == 1993


def test_latest_csv(tmp_path):
    folder = make_latest(tmp_path / "ml-latest-small")
    for i, source in enumerate([folder, zip_folder(folder, tmp_path / "ml-latest-small.zip")]):
        out = tmp_path / f"out{i}"
        summary = import_movielens(source, out)
        assert summary.format == "ml-csv" and (summary.events, summary.users, summary.items) == (3, 2, 4)
        assert [(e["user_id"], e["item_id"], e["rating"]) for e in lines(out / "interactions.jsonl")] == [
            ("1", "1", 4),
            ("1", "3", 1),
            ("2", "1", 3.5),
        ]  # 0.5 stars is written as 1
        items = read_items(out / "items.jsonl")
        assert items["3"]["title"] == "Lighthouse Keeper, The (1995)" and items["3"]["year"] == 1995
        assert items["4"]["genres"] == [] and items["4"]["year"] is None
        assert items["5"]["year"] == 1975
        ds = load_dataset(out / "interactions.jsonl").dataset
        assert ds.users.ids == ["1"] and ds.items.ids == ["1"]  # only 4.0 reaches the threshold


def test_year_from_title():
    assert year_from_title("Paper Lanterns (1995)") == 1995
    assert year_from_title("Babylon 5 (1994) ") == 1994
    assert year_from_title("Quiet Corridors (1975–1979)") == 1975
    assert year_from_title("1984 (no year)") is None


def test_clear_errors_on_bad_sources(tmp_path, capsys):
    folder = make_100k(tmp_path / "ml-100k")
    with (folder / "u.data").open("a") as fh:
        fh.write("3\t10\tfive\t881250949\n")
    with pytest.raises(IngestError) as err:
        import_movielens(folder, tmp_path / "out")
    assert err.value.line == 4 and "u.data" in err.value.file
    assert not (tmp_path / "out" / "interactions.jsonl").exists()  # nothing half-written
    assert not list((tmp_path / "out").glob(".tmp-*"))
    (folder / "u.genre").unlink()
    with pytest.raises(MovieLensError, match=r"u\.genre is missing"):
        import_movielens(folder, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MovieLensError, match="no MovieLens files found"):
        import_movielens(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "junk.zip").write_text("not a zip")
    assert movielens.main(["import", "--source", str(tmp_path / "junk.zip"), "--out", str(tmp_path / "o")]) == 2
    assert "error: " in capsys.readouterr().err


def test_cli_import(tmp_path, capsys):
    folder = make_latest(tmp_path / "ml-latest")
    assert movielens.main(["import", "--source", str(folder), "--out", str(tmp_path / "out")]) == 0
    assert orjson.loads(capsys.readouterr().out)["events"] == 3


def test_download_offline_fails_clearly(tmp_path, monkeypatch, capsys):
    seen = []

    def offline(url, timeout):
        seen.append((url, timeout))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(movielens.urllib.request, "urlopen", offline)
    code = movielens.main(["download", "--dataset", "ml-1m", "--dest", str(tmp_path), "--timeout", "5"])
    assert code == 2
    assert seen == [("https://files.grouplens.org/datasets/movielens/ml-1m.zip", 5.0)]
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "could not download" in err and "offline" in err
    assert list(tmp_path.iterdir()) == []  # no partial file left


def test_download_that_is_not_a_zip_leaves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        movielens.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"<html>maintenance</html>")
    )
    code = movielens.main(["download", "--dataset", "ml-100k", "--dest", str(tmp_path)])
    assert code == 2 and "did not return a zip archive" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # neither the archive nor its temporary file


def test_download_saves_and_imports(tmp_path, monkeypatch):
    archive = zip_folder(make_100k(tmp_path / "ml-100k"), tmp_path / "src.zip")

    def fake(url, timeout):
        return archive.open("rb")

    monkeypatch.setattr(movielens.urllib.request, "urlopen", fake)
    code = movielens.main(
        ["download", "--dataset", "ml-100k", "--dest", str(tmp_path / "dl"), "--out", str(tmp_path / "out")]
    )
    assert code == 0
    assert (tmp_path / "dl" / "ml-100k.zip").read_bytes() == archive.read_bytes()
    assert len(lines(tmp_path / "out" / "interactions.jsonl")) == 3


def test_real_ml100k_folder_and_zip(ml100k, tmp_path):
    summary = import_movielens(ml100k, tmp_path / "out")
    assert (summary.format, summary.events, summary.users, summary.items) == ("ml-100k", 100_000, 943, 1682)
    events, ingest = read_events(tmp_path / "out" / "interactions.jsonl", strict=True)
    assert ingest.accepted == 100_000
    assert len(np.unique(events.user_id.astype(str))) == 943
    assert len(np.unique(events.item_id.astype(str))) == 1682
    assert abs(float(events.rating.mean()) - 3.52986) < 1e-4
    assert int((events.rating >= 4).sum()) == 55_375
    assert (int(events.ts.min()), int(events.ts.max())) == (874_724_710, 893_286_638)
    ds = load_dataset(tmp_path / "out" / "interactions.jsonl").dataset
    assert len(ds) == 55_375
    items = read_items(tmp_path / "out" / "items.jsonl")
    assert items["1"]["title"] == "Toy Story (1995)"
    assert items["1"]["genres"] == ["Animation", "Children's", "Comedy"] and items["1"]["year"] == 1995

    staged = shutil.copytree(ml100k, tmp_path / "ml-100k")
    archive = shutil.make_archive(str(tmp_path / "ml-100k"), "zip", tmp_path, "ml-100k")
    shutil.rmtree(staged)
    summary_zip = import_movielens(archive, tmp_path / "out_zip")
    assert (summary_zip.events, summary_zip.users, summary_zip.items) == (100_000, 943, 1682)
    assert (tmp_path / "out_zip" / "interactions.jsonl").read_bytes() == (
        tmp_path / "out" / "interactions.jsonl"
    ).read_bytes()
    assert (tmp_path / "out_zip" / "items.jsonl").read_bytes() == (tmp_path / "out" / "items.jsonl").read_bytes()
