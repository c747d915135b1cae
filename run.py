#!/usr/bin/env python3
"""Set up .venv (created or reused; pinned requirements) and run the project's jobs.

    python3 run.py verify    regenerate every rule from spec/ and print the verification table
    python3 run.py test      run the full test suite
    python3 run.py cli ARGS  any `cli.py` command inside the environment

Needs only a Python 3.11+ with venv; everything else comes from requirements.txt.
"""
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = ROOT / "requirements.txt"
STAMP = VENV / ".requirements.sha256"


def ensure_environment() -> None:
    if not PYTHON.exists():
        print("creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    print("installing requirements.txt into .venv", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-r", str(REQUIREMENTS)], check=True)
    STAMP.write_text(wanted + "\n")


def run(*args: str) -> int:
    return subprocess.run([str(PYTHON), *args], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("verify", "test", "cli"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    ensure_environment()
    job, rest = argv[0], argv[1:]
    if job == "verify":
        return run("cli.py", "verify", *rest)
    if job == "test":
        return run("-m", "pytest", *rest)
    return run("cli.py", *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
