"""Durable file primitives for the registry: every change is write-temp, fsync, rename.

A rename within one directory is atomic on POSIX, so a reader (or a process that crashed half way)
sees either the old or the new file, never a torn one; the directory fsync makes the rename itself
survive a power cut.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import orjson

TMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Persist the directory entry (renames, new files) of ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename; a crash leaves the old file (or none) intact."""
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, dumps(obj))


def dumps(obj: Any) -> bytes:
    """Indented JSON with a trailing newline (readable by people, diffable), NaN written as null."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS) + b"\n"


def read_json(path: Path) -> Any:
    return orjson.loads(Path(path).read_bytes())


def append_lines_durable(path: Path, lines: list[bytes]) -> None:
    """Append complete lines and fsync. A torn last line from an earlier crash is cut off first."""
    path = Path(path)
    with open(path, "a+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size:
            fh.seek(size - 1)
            if fh.read(1) != b"\n":
                fh.seek(0)
                data = fh.read()
                fh.truncate(data.rfind(b"\n") + 1)
                fh.seek(0, os.SEEK_END)
        fh.write(b"".join(line.rstrip(b"\n") + b"\n" for line in lines))
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Complete JSON lines of ``path`` (a torn last line is ignored); [] when the file is missing."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue  # only possible for a line cut by a crash; the next append removes it
    return out


def fsync_tree(root: Path) -> None:
    """fsync every file and directory below ``root`` (before it is renamed into place)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def copy_dir_atomic(src: Path, dst: Path, *, move: bool = False) -> None:
    """Copy (or move) directory ``src`` to ``dst``, which must not exist; ``dst`` appears complete or not at all."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        raise FileExistsError(f"{dst} already exists")
    tmp = dst.with_name(f"{TMP_PREFIX}{dst.name}.{uuid.uuid4().hex}")
    renamed = False  # src itself became tmp (same file system)
    try:
        if move:
            try:
                os.rename(src, tmp)
                renamed = True
            except OSError:  # another file system: copy, then remove the source at the end
                shutil.copytree(src, tmp)
        else:
            shutil.copytree(src, tmp)
        fsync_tree(tmp)
        # os.rename onto an existing empty directory would succeed on POSIX: check again right before.
        if dst.exists():
            raise FileExistsError(f"{dst} already exists")
        os.rename(tmp, dst)
    except BaseException:
        if renamed:
            os.rename(tmp, src)  # give the caller's directory back
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(dst.parent)
    if move and not renamed:
        shutil.rmtree(src, ignore_errors=True)
