"""``app.files``: atomic writes, file hashes, locks, durable JSON lines and directory replacement, checked by hand."""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.files import (
    TMP_PREFIX,
    append_lines_durable,
    atomic_file,
    copy_dir_atomic,
    file_lock,
    json_bytes,
    read_json,
    read_jsonl,
    replace_dir_atomic,
    sha256_file,
    sha256_files,
    write_bytes_atomic,
    write_json_atomic,
)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TMP_PREFIX))


def test_atomic_write_replaces_the_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "deep" / "state.json"  # missing parents are created
    write_bytes_atomic(target, b"old")
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    write_json_atomic(target, {"a": np.float32(0.5), "n": float("nan")})
    assert target.read_bytes() == b'{\n  "a": 0.5,\n  "n": null\n}\n' and read_json(target) == {"a": 0.5, "n": None}
    assert leftovers(target.parent) == []
    assert json_bytes({1: np.arange(2)}) == b'{\n  "1": [\n    0,\n    1\n  ]\n}\n'  # int keys, arrays


def test_an_error_inside_atomic_file_keeps_the_old_file(tmp_path):
    target = tmp_path / "report.md"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_file(target) as fh:
            fh.write(b"new, but")
            assert leftovers(tmp_path) != []  # written beside the target, under the temp prefix
            raise RuntimeError("half way")
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []
    with pytest.raises(KeyboardInterrupt):  # also on an interrupt, and with no file there before
        with atomic_file(tmp_path / "new.txt", durable=False) as fh:
            fh.write(b"x")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_sha256_of_a_file_and_of_several(tmp_path):
    abc = tmp_path / "abc.txt"
    abc.write_bytes(b"abc")
    assert sha256_file(abc) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2 example
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 8193)  # more than one 1 MiB chunk
    assert sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()
    expected = hashlib.sha256(b"abc.txt\0abc" + b"big.bin\0" + big.read_bytes()).hexdigest()
    assert sha256_files([abc, big]) == expected
    assert sha256_files([big, abc]) != expected  # the order counts
    renamed = tmp_path / "other.txt"
    renamed.write_bytes(b"abc")
    assert sha256_files([renamed]) != sha256_files([abc])  # so does the name


def test_a_held_lock_is_refused_at_once_without_blocking(tmp_path):
    path = tmp_path / "locks" / ".lock"
    with file_lock(path):
        other = open(path, "a+b")  # another open file: flock locks belong to it, not to the process
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            other.close()
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        with pytest.raises(BlockingIOError):
            with file_lock(path, blocking=False):
                pass
    with file_lock(path, blocking=False):  # released: taken at once
        pass


def test_a_lock_held_by_another_process(tmp_path):
    path = tmp_path / ".lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys; f = open(sys.argv[1], 'a+b'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('locked', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(BlockingIOError):
            with file_lock(path, blocking=False):
                pass
    finally:
        holder.stdin.close()  # the holder exits, and its lock with it
        holder.wait(timeout=30)
    with file_lock(path, blocking=False):
        pass


def test_append_cuts_a_torn_last_line_and_read_skips_one(tmp_path):
    path = tmp_path / "audit.jsonl"
    assert read_jsonl(path) == []  # missing file
    path.write_bytes(b'{"a": 1}\n{"b": ')  # a crash cut the second line
    assert read_jsonl(path) == [{"a": 1}]
    append_lines_durable(path, [b'{"c": 3}', b'{"d": 4}\n'])  # a line's own newline is not doubled
    assert path.read_bytes() == b'{"a": 1}\n{"c": 3}\n{"d": 4}\n'
    append_lines_durable(path, [b'{"e": 5}'])
    assert read_jsonl(path) == [{"a": 1}, {"c": 3}, {"d": 4}, {"e": 5}]
    only_torn = tmp_path / "torn.jsonl"
    only_torn.write_bytes(b'{"x"')
    append_lines_durable(only_torn, [b"{}"])
    assert only_torn.read_bytes() == b"{}\n"


def test_replace_dir_keeps_the_old_directory_when_the_writer_fails(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_bytes(b"old")

    def broken(tmp: Path) -> None:
        (tmp / "weights").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_dir_atomic(target, broken)
    assert [p.name for p in tmp_path.iterdir()] == ["model"] and (target / "weights").read_bytes() == b"old"
    assert replace_dir_atomic(target, lambda tmp: (tmp / "weights").write_bytes(b"new")) == target
    assert [p.name for p in tmp_path.iterdir()] == ["model"] and (target / "weights").read_bytes() == b"new"


def test_copy_dir_never_overwrites_and_moves(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_bytes(b"x")
    copy_dir_atomic(src, tmp_path / "copy")
    assert (tmp_path / "copy" / "sub" / "f").read_bytes() == b"x" and src.is_dir()
    with pytest.raises(FileExistsError):
        copy_dir_atomic(src, tmp_path / "copy")
    copy_dir_atomic(src, tmp_path / "moved", move=True)
    assert not src.exists() and (tmp_path / "moved" / "sub" / "f").read_bytes() == b"x"
    assert leftovers(tmp_path) == []
