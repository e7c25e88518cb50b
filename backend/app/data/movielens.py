"""MovieLens importers: official GroupLens archives (zip) or unpacked folders -> our JSONL log and catalogue.

Formats are detected from the files present:

* ML-100K: ``u.data`` (tab-separated user, item, rating, ts), ``u.item`` (Latin-1, ``|``-separated,
  19 genre flags ordered by genre id as listed in ``u.genre``; year from the release date).
* ML-1M (and ML-10M): ``ratings.dat`` / ``movies.dat`` separated by ``::``, genres ``A|B``, year from
  the title "(1995)".
* ML-latest, ML-latest-small, ML-20M, ML-25M: ``ratings.csv`` / ``movies.csv`` with a header; ratings
  come in half stars from 0.5, and 0.5 is written as 1 (the schema's lowest rating; either way it is
  far below the positive threshold).

Usage (from the repository root, ``PYTHONPATH=backend``):

    python -m app.data.movielens import --source ml-100k.zip --out /tmp/ml100k
    python -m app.data.movielens download --dataset ml-100k --dest /tmp/downloads [--out /tmp/ml100k]

Output: ``OUT/interactions.jsonl`` (one ``rating`` event per rating) and ``OUT/items.jsonl``, both
written to temporary files and renamed into place once both are complete. MovieLens may not be redistributed: keep the
output outside the repository.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from app.data.events import IngestError
from app.files import atomic_file

BASE_URL = "https://files.grouplens.org/datasets/movielens"
DATASETS = ("ml-100k", "ml-1m", "ml-latest-small", "ml-25m")
DOWNLOAD_TIMEOUT = 30.0
YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")
NO_GENRE = {"unknown", "(no genres listed)"}
FORMATS = {  # format -> (ratings file, items file)
    "ml-100k": ("u.data", "u.item"),
    "ml-1m": ("ratings.dat", "movies.dat"),
    "ml-csv": ("ratings.csv", "movies.csv"),
}
CHUNK = 65_536


class MovieLensError(RuntimeError):
    """The source is not a MovieLens dataset we can read, or the download failed; says what to do."""


# --- reading zip archives and folders alike -------------------------------------------------------


class Source:
    """Files of one MovieLens dataset inside a zip archive or a folder (possibly one level down)."""

    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise MovieLensError(f"{path}: not a zip archive; give a MovieLens .zip or an unpacked folder")
            self._zip = zipfile.ZipFile(path)
            self._names = [n for n in self._zip.namelist() if not n.endswith("/")]
        elif path.is_dir():
            self._names = [p.relative_to(path).as_posix() for p in path.iterdir() if p.is_file()]
            self._names += [p.relative_to(path).as_posix() for p in path.glob("*/*") if p.is_file()]
        else:
            raise MovieLensError(f"{path}: no such file or directory")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def find(self, filename: str) -> str | None:
        """Member path of ``filename`` at the top level or one folder down (top level wins)."""
        hits = [
            n for n in self._names if n.rsplit("/", 1)[-1] == filename and n.count("/") <= 1 and "__MACOSX" not in n
        ]
        return min(hits, key=lambda n: (n.count("/"), n)) if hits else None

    def sibling(self, member: str, filename: str) -> str | None:
        folder = member.rsplit("/", 1)[0] + "/" if "/" in member else ""
        name = folder + filename
        return name if name in self._names else None

    def label(self, member: str) -> str:
        return f"{self.path}!{member}" if self._zip is not None else str(self.path / member)

    @contextmanager
    def open(self, member: str) -> Iterator[IO[bytes]]:
        if self._zip is not None:
            with self._zip.open(member) as fh:
                yield fh
        else:
            with (self.path / member).open("rb") as fh:
                yield fh

    def read_text(self, member: str, encoding: str | None = None) -> str:
        """Whole text file; ``encoding=None`` tries UTF-8 and falls back to Latin-1."""
        with self.open(member) as fh:
            data = fh.read()
        if encoding:
            return data.decode(encoding)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def detect(source: Source) -> tuple[str, str, str]:
    """(format, ratings member, items member) for the dataset in ``source``."""
    for fmt, (ratings_name, items_name) in FORMATS.items():
        ratings = source.find(ratings_name)
        if ratings is None:
            continue
        items = source.sibling(ratings, items_name)
        if items is None:
            raise MovieLensError(f"{source.label(ratings)} found but {items_name} is missing beside it")
        return fmt, ratings, items
    wanted = ", ".join(f"{r} + {i}" for r, i in FORMATS.values())
    raise MovieLensError(f"{source.path}: no MovieLens files found (looked for {wanted})")


# --- parsing --------------------------------------------------------------------------------------


def year_from_title(title: str) -> int | None:
    m = YEAR_IN_TITLE.search(title)
    return int(m.group(1)) if m else None


def _genres(names: list[str]) -> list[str]:
    return [g for g in names if g and g not in NO_GENRE]


def _rating_line(user: str, item: str, rating: str, ts: str) -> bytes:
    value = float(rating)
    if not 0.0 < value <= 5.0:
        raise ValueError(f"rating {rating!r} is outside 0.5-5")
    value = max(value, 1.0)
    return orjson.dumps(
        {
            "user_id": user.strip(),
            "item_id": item.strip(),
            "event": "rating",
            "rating": int(value) if value.is_integer() else value,
            "ts": int(ts),
        }
    )


def iter_ratings(source: Source, fmt: str, member: str) -> Iterator[tuple[str, str, bytes]]:
    """(user_id, item_id, JSONL line) per rating, streamed; a malformed row raises ``IngestError``."""
    sep = {"ml-100k": "\t", "ml-1m": "::", "ml-csv": ","}[fmt]
    with source.open(member) as raw:
        text = io.TextIOWrapper(raw, encoding="latin-1", newline="")
        for lineno, line in enumerate(text, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or (fmt == "ml-csv" and lineno == 1 and line.startswith("userId")):
                continue
            parts = line.split(sep)
            try:
                if len(parts) != 4:
                    raise ValueError(f"expected 4 fields separated by {sep!r}, got {len(parts)}")
                yield parts[0], parts[1], _rating_line(*parts)
            except ValueError as exc:
                raise IngestError(source.label(member), lineno, f"bad rating row: {exc}") from None


def read_items_100k(source: Source, member: str) -> list[dict[str, Any]]:
    genre_member = source.sibling(member, "u.genre")
    if genre_member is None:
        raise MovieLensError(f"{source.label(member)}: u.genre is missing beside it")
    genre_by_id: dict[int, str] = {}
    for line in source.read_text(genre_member, "latin-1").splitlines():
        if line.strip():
            name, _, gid = line.rpartition("|")
            genre_by_id[int(gid)] = name
    names = [genre_by_id[i] for i in range(len(genre_by_id))]
    items = []
    for lineno, line in enumerate(source.read_text(member, "latin-1").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("|")
        flags = parts[5:]
        if len(parts) < 6 or len(flags) != len(names):
            raise IngestError(
                source.label(member), lineno, f"expected 5 fields and {len(names)} genre flags, got {len(parts)} fields"
            )
        item_id, title, release, _video, url = parts[:5]
        year = int(release[-4:]) if re.fullmatch(r"\d{2}-\w{3}-\d{4}", release.strip()) else year_from_title(title)
        item: dict[str, Any] = {
            "item_id": item_id.strip(),
            "title": title.strip(),
            "genres": _genres([n for n, f in zip(names, flags, strict=False) if f.strip() == "1"]),
            "year": year,
        }
        if release.strip():
            item["release_date"] = release.strip()
        if url.strip():
            item["imdb_url"] = url.strip()
        items.append(item)
    return items


def read_items_1m(source: Source, member: str) -> list[dict[str, Any]]:
    items = []
    for lineno, line in enumerate(source.read_text(member).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != 3:
            raise IngestError(source.label(member), lineno, f"expected 3 fields separated by '::', got {len(parts)}")
        items.append(_movie(*parts))
    return items


def read_items_csv(source: Source, member: str) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(source.read_text(member, "utf-8"), newline=""))
    items = []
    for lineno, row in enumerate(reader, start=1):
        if not row or (lineno == 1 and row[0] == "movieId"):
            continue
        if len(row) != 3:
            raise IngestError(source.label(member), lineno, f"expected movieId,title,genres, got {len(row)} fields")
        items.append(_movie(*row))
    return items


def _movie(item_id: str, title: str, genres: str) -> dict[str, Any]:
    title = title.strip()
    return {
        "item_id": item_id.strip(),
        "title": title,
        "genres": _genres(genres.strip().split("|")),
        "year": year_from_title(title),
    }


ITEM_READERS = {"ml-100k": read_items_100k, "ml-1m": read_items_1m, "ml-csv": read_items_csv}


# --- import ---------------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    source: str
    format: str
    events: int
    users: int
    items: int
    interactions_path: str
    items_path: str
    seconds: float


def import_movielens(source_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> ImportSummary:
    """Convert one MovieLens dataset; both output files appear only when both are complete."""
    start = time.perf_counter()
    out = Path(out_dir)
    src = Source(Path(source_path))
    try:
        fmt, ratings_member, items_member = detect(src)
        items = ITEM_READERS[fmt](src, items_member)
        users: set[str] = set()
        n_events = 0
        # Both files are written beside their targets and renamed only when both are complete (the
        # inner block, items, first): a bad row or a crash before the renames leaves neither.
        with atomic_file(out / "interactions.jsonl") as fh, atomic_file(out / "items.jsonl") as items_fh:
            buf: list[bytes] = []
            for user, _item, line in iter_ratings(src, fmt, ratings_member):
                users.add(user)
                buf.append(line)
                if len(buf) >= CHUNK:
                    fh.write(b"\n".join(buf) + b"\n")
                    n_events += len(buf)
                    buf.clear()
            if buf:
                fh.write(b"\n".join(buf) + b"\n")
                n_events += len(buf)
            items_fh.write(b"".join(orjson.dumps(item) + b"\n" for item in items))
    finally:
        src.close()
    return ImportSummary(
        source=str(source_path),
        format=fmt,
        events=n_events,
        users=len(users),
        items=len(items),
        interactions_path=str(out / "interactions.jsonl"),
        items_path=str(out / "items.jsonl"),
        seconds=round(time.perf_counter() - start, 3),
    )


# --- download -------------------------------------------------------------------------------------


def download(dataset: str, dest: str | os.PathLike[str], timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Fetch ``<dataset>.zip`` from GroupLens into ``dest``; ``MovieLensError`` with a hint when offline."""
    if dataset not in DATASETS:
        raise MovieLensError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    url = f"{BASE_URL}/{dataset}.zip"
    target = Path(dest) / f"{dataset}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_file(target) as fh:
            while chunk := resp.read(1 << 20):
                fh.write(chunk)
            fh.flush()
            if not zipfile.is_zipfile(fh.name):  # the temporary file: an error page never becomes the archive
                raise MovieLensError(f"{url} did not return a zip archive; try again later or download it by hand")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise MovieLensError(
            f"could not download {url} ({reason}); are you offline? Get the archive from "
            f"https://grouplens.org/datasets/movielens/ and run: python -m app.data.movielens import "
            f"--source {dataset}.zip --out DIR"
        ) from None
    return target


# --- CLI ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.data.movielens", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="convert a MovieLens archive or folder to JSONL")
    imp.add_argument("--source", required=True, help="ml-*.zip archive or unpacked folder (100K, 1M, latest, 20M, 25M)")
    imp.add_argument("--out", required=True, help="output folder for interactions.jsonl and items.jsonl")
    dl = sub.add_parser("download", help="fetch an official archive from GroupLens (needs the internet)")
    dl.add_argument("--dataset", choices=DATASETS, default="ml-100k")
    dl.add_argument("--dest", required=True, help="folder to save <dataset>.zip in")
    dl.add_argument("--out", help="also import the archive into this folder")
    dl.add_argument("--timeout", type=float, default=DOWNLOAD_TIMEOUT, help="network timeout in seconds")
    args = parser.parse_args(argv)
    try:
        if args.command == "download":
            archive = download(args.dataset, args.dest, args.timeout)
            print(f"saved {archive} ({archive.stat().st_size:,} bytes)")
            if not args.out:
                return 0
            args.source = str(archive)
        summary = import_movielens(args.source, args.out)
    except (MovieLensError, IngestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(orjson.dumps(asdict(summary), option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
