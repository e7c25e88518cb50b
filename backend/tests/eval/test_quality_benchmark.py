"""benchmarks/quality.py: README section rewriting and the skip when MovieLens is absent (no training)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "quality.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality_benchmark", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_the_marked_readme_section_is_rewritten(quality, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\nintro\n{quality.START}\nold table\n{quality.END}\nafter\n")
    new = f"{quality.START}\nnew table\n{quality.END}"
    assert quality.replace_section(readme, new)
    assert readme.read_text() == f"# Title\nintro\n{new}\nafter\n"
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers\n")
    assert not quality.replace_section(plain, new) and plain.read_text() == "no markers\n"
    assert not quality.replace_section(tmp_path / "missing.md", new)


def test_skips_with_a_clear_message_without_the_dataset(quality, tmp_path, capsys):
    assert quality.main(["--data-path", str(tmp_path / "nowhere"), "--readme", str(tmp_path / "R.md")]) == 0
    assert "SKIPPED: MovieLens 100K not found" in capsys.readouterr().out
