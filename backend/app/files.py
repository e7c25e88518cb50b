"""Durable file primitives used everywhere: atomic writes, file hashes, directory fsync, file locks.

Every file the project writes for someone else to read (models, registry state, reports, converted
data, rejects) is written to a temporary file beside its target, fsynced and renamed over it. A
rename within one directory is atomic on POSIX, so a reader, or a process that crashed half way,
sees the old file or the new one, never a torn one; the directory fsync makes the rename itself
survive a power cut.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

#: Prefix of temporary files and directories: never read, removed by whoever finds them stale.
TMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Persist the directory entries (renames, new files) of ``path``; a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path | str, *, durable: bool = True) -> Iterator[IO[bytes]]:
    """A binary file handle whose content replaces ``path`` in one rename when the block ends.

    On an exception the temporary file is removed and ``path`` is left as it was. ``durable=False``
    skips the fsyncs (scratch files that are cheap to make again)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def write_bytes_atomic(path: Path | str, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` in one rename; a crash leaves the old file (or none) intact."""
    with atomic_file(path, durable=durable) as fh:
        fh.write(data)


def json_bytes(obj: Any) -> bytes:
    """Indented JSON with a trailing newline (readable by people, diffable); NumPy values allowed, NaN as null."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS) + b"\n"


def write_json_atomic(path: Path | str, obj: Any) -> None:
    write_bytes_atomic(path, json_bytes(obj))


def read_json(path: Path | str) -> Any:
    return orjson.loads(Path(path).read_bytes())


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    _hash_into(h, Path(path))
    return h.hexdigest()


def sha256_files(paths: Iterable[Path]) -> str:
    """One hash over several files, each as its name, a NUL and its bytes, in the given order."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).name.encode() + b"\0")
        _hash_into(h, Path(p))
    return h.hexdigest()


def _hash_into(h: Any, path: Path) -> None:
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


@contextlib.contextmanager
def file_lock(path: Path | str, *, blocking: bool = True) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing) for the block; with ``blocking=False``
    raises ``BlockingIOError`` at once when another process holds it. The lock ends with the process."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def append_lines_durable(path: Path | str, lines: list[bytes]) -> None:
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


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
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


def replace_dir_atomic(target: Path, write_files: Any) -> Path:
    """Build a directory with ``write_files(tmp_dir)`` beside ``target`` and rename it into place.

    An existing ``target`` is renamed aside first and removed only after the new one is in place;
    on any error the temporary directory is removed and ``target`` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{TMP_PREFIX}{target.name}.{uuid.uuid4().hex}")
    tmp.mkdir(mode=0o755)
    old: Path | None = None
    try:
        write_files(tmp)
        fsync_tree(tmp)
        if target.exists():
            old = target.with_name(f"{TMP_PREFIX}{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        if old is not None and not target.exists():
            os.replace(old, target)  # put the previous directory back
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target
