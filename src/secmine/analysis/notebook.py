"""Notebook helpers of the analysis stages."""

from __future__ import annotations

import io


def show_figures_inline(dpi: int = 100) -> bool:
    """Let a notebook display :class:`matplotlib.figure.Figure` objects (the package builds
    figures without pyplot, so the inline backend's hook does not apply) as PNG.

    Returns ``False`` outside IPython.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    if shell is None:
        return False
    from matplotlib.figure import Figure

    def to_png(fig: Figure) -> bytes:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
        return buffer.getvalue()

    shell.display_formatter.formatters["image/png"].for_type(Figure, to_png)
    return True
