"""Where things are: the repository root and the folders the compiler reads and writes."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = ROOT / "spec"
TEMPLATES = ROOT / "templates"
