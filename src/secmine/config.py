"""Project paths and external-data location.

Every path the package uses is built here from the location of this file, so nothing depends on
the current working directory.  The one external setting is the environment variable
``SECMINE_EXTERNAL_DIR``: a folder holding ``ai_sec_dev/`` (the authors' replication package)
and ``ai_issues/`` (a thread corpus snapshot).  It defaults to ``../shared`` beside the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT: Path = Path(__file__).resolve().parents[2]

DATA_DIR = PROJECT_ROOT / "data"
EXTERNAL_DATA_DIR = DATA_DIR / "external"
RAW_DATA_DIR = DATA_DIR / "raw"
INTERIM_DATA_DIR = DATA_DIR / "interim"
PROCESSED_DATA_DIR = DATA_DIR / "processed"
MODELS_DIR = PROJECT_ROOT / "models"
REPORTS_DIR = PROJECT_ROOT / "reports"
FIGURES_DIR = REPORTS_DIR / "figures"
TABLES_DIR = REPORTS_DIR / "tables"
NOTEBOOK_REPORTS_DIR = REPORTS_DIR / "notebooks"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PARAMS_FILE = PROJECT_ROOT / "params.yaml"

EXTERNAL_ENV_VAR = "SECMINE_EXTERNAL_DIR"

# The authors' replication package, pinned.
REPLICATION_REPO = "anh56/ai_sec_dev"
REPLICATION_COMMIT = "d579f14bf7bdfbc374b89910832711ef99d6857d"


def default_external_dir() -> Path:
    """``../shared`` beside the checkout."""
    return PROJECT_ROOT.parent / "shared"


def external_source_dir() -> Path:
    """Where the external data lies: ``$SECMINE_EXTERNAL_DIR`` or the default ``../shared``."""
    value = os.environ.get(EXTERNAL_ENV_VAR, "").strip()
    if value:
        return Path(value).expanduser().resolve()
    return default_external_dir().resolve()


def replication_dir() -> Path:
    """The replication package as the pipeline sees it (``data/external/ai_sec_dev``)."""
    return EXTERNAL_DATA_DIR / "ai_sec_dev"


def snapshot_dir() -> Path:
    """The thread corpus snapshot as the pipeline sees it (``data/external/ai_issues``)."""
    return EXTERNAL_DATA_DIR / "ai_issues"
