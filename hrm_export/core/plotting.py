"""The PNGs the verbs draw (bench latency, verify and precision error-vs-margin): off-screen, atomic files."""

from __future__ import annotations

from pathlib import Path

from hrm_export.core.errors import require
from model_src.atomic import atomic_output


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend; a clear install hint when the [plot] extra is missing."""
    matplotlib = require("matplotlib", "pip install 'hrm-export[plot]'")
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | Path) -> Path:
    """Write `fig` to `path` (temp file, then rename) and free it."""
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    pyplot().close(fig)
    return path
