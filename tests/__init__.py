from pathlib import Path

REPO_DOCS = Path(__file__).resolve().parents[1] / "docs" / "events.md"
