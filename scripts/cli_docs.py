"""Regenerates docs/cli.md: the block under each "## `python -m X`" heading becomes X's --help.

Run from the repository root after changing a command's flags: .venv/bin/python scripts/cli_docs.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path("docs/cli.md")


def main() -> None:
    parts = re.split(r"(?m)^(## `python -m [^`]+`\n)", DOC.read_text())
    env = {**os.environ, "PYTHONPATH": "backend", "COLUMNS": "80"}
    out = [parts[0]]
    for head, body in zip(parts[1::2], parts[2::2], strict=False):
        module_and_sub = head.strip()[len("## `python -m ") : -1].split()
        proc = subprocess.run(
            [sys.executable, "-m", *module_and_sub, "--help"], capture_output=True, text=True, env=env
        )
        if proc.returncode != 0 or not proc.stdout.strip():
            sys.exit(f"{' '.join(module_and_sub)} --help failed:\n{proc.stderr}")
        block = "```\n" + proc.stdout.rstrip("\n") + "\n```"
        out += [head, re.sub(r"```\n.*?```", lambda _, block=block: block, body, count=1, flags=re.S)]
    DOC.write_text("".join(out))


if __name__ == "__main__":
    main()
