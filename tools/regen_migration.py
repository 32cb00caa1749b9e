"""Regenerate the initial Alembic migration from the models (development only).

Until the first release every schema change is folded into ``0001_initial``; run
``python tools/regen_migration.py`` after changing a model. A file lock serialises
concurrent runs. After the first release, add new revisions instead.
"""

from __future__ import annotations

import fcntl
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    from alembic import command
    from alembic.config import Config

    versions = ROOT / "src/novalite/db/migrations/versions"
    with open(tempfile.gettempdir() + "/novalite-regen.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for old in versions.glob("0001_*.py"):
            old.unlink()
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Config()
            cfg.set_main_option("script_location", str(ROOT / "src/novalite/db/migrations"))
            cfg.set_main_option("sqlalchemy.url", f"sqlite:///{tmp}/regen.db")
            command.revision(cfg, message="initial", autogenerate=True, rev_id="0001")
        generated = next(versions.glob("0001_*.py"))
        text = generated.read_text()
        text = text.replace("import sqlalchemy as sa\n", "import sqlalchemy as sa\n\nimport novalite.db.base\n", 1)
        generated.write_text(text)
        print(f"wrote {generated.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
