#!/usr/bin/env python3
"""Set up .venv (created or reused; pinned requirements) and run the project's jobs.

    python3 run.py verify    regenerate every rule from spec/ and print the verification table
    python3 run.py test      run the test suite: each parametrized ladder on a pairwise covering
                             sample of its factors, on every core (pytest-xdist); pytest's
                             arguments follow (-n 0: one process)
    python3 run.py test --full   the same on the full product of the factors (tests/ladder.py):
                             run it before a change to the printers or the templates
    python3 run.py cli ARGS  any `cli.py` command inside the environment

Needs only a Python 3.11+ with venv; everything else comes from requirements.txt, except
SuiteSparseQR's C library and headers (Debian's libsuitesparse-dev), which the sparseqr binding in
requirements.txt builds against: run.py installs them with apt-get when the header is missing.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = ROOT / "requirements.txt"
STAMP = VENV / ".requirements.sha256"
SUITESPARSE_PACKAGE = "libsuitesparse-dev"
# Where Debian's libsuitesparse-dev puts it, and where sparseqr's build looks for it.
SPQR_HEADER = Path("/usr/include/suitesparse/SuiteSparseQR_C.h")


def ensure_suitesparse() -> None:
    """Install libsuitesparse-dev with apt-get when SuiteSparseQR's header is missing."""
    if SPQR_HEADER.exists():
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        why = "apt-get is not available" if apt is None else "not running as root"
        sys.exit(f"run.py: {SPQR_HEADER} is missing and {why}: install the Debian package "
                 f"{SUITESPARSE_PACKAGE} (SuiteSparseQR, which the sparseqr package in "
                 f"requirements.txt builds against), then rerun")
    print(f"installing {SUITESPARSE_PACKAGE} with apt-get ({SPQR_HEADER} is missing)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in ([apt, "-q", "update"],
                    [apt, "-q", "install", "-y", "--no-install-recommends", SUITESPARSE_PACKAGE]):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"run.py: `{' '.join(command)}` failed (exit {done.returncode}):\n"
                     f"{done.stdout}{done.stderr}")


def ensure_environment() -> None:
    ensure_suitesparse()
    if not PYTHON.exists():
        print("creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    print("installing requirements.txt into .venv", flush=True)
    # --no-compile: no .pyc of every installed file up front (about 25 s of a fresh install);
    # Python writes those of the modules it imports when it first imports them
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-compile", "-r", str(REQUIREMENTS)], check=True)
    STAMP.write_text(wanted + "\n")


def run(*args: str) -> int:
    return subprocess.run([str(PYTHON), *args], cwd=ROOT).returncode


def parallel(args: list[str]) -> list[str]:
    """pytest-xdist's options for ``args``: a worker per core, each test module's own
    module-scoped fixture built once (tests marked xdist_group run on one worker), unless the
    arguments choose (-n, --numprocesses, --dist, -p no:xdist)."""
    chosen = any(a in ("-n", "--numprocesses", "--dist", "no:xdist") or
                 a.startswith(("-n", "--numprocesses=", "--dist=")) for a in args)
    return [] if chosen else ["-n", "auto", "--dist", "loadgroup"]


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("verify", "test", "cli"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    ensure_environment()
    job, rest = argv[0], argv[1:]
    if job == "verify":
        return run("cli.py", "verify", *rest)
    if job == "test":
        return run("-m", "pytest", *parallel(rest), *rest)
    return run("cli.py", *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
