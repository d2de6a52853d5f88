"""The report's charts, drawn with matplotlib into PNG bytes.

French labels and number formats (decimal comma); legible in grey scale: every series has
both a colour of its own lightness and a hatch pattern, so a black-and-white print still
tells forecast from final. No pyplot (no global figure state, no GUI backend): each chart
is a ``Figure`` drawn on an Agg canvas. Import this module only when a report is made.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter, MaxNLocator

from carbonclap_xl.report.document import (
    PHASE_TITLE_FR,
    ReportModel,
    Row,
    fr_number,
    fr_tonnes,
    short_label,
)

DPI = 200
WIDTH_IN = 6.7  # 17 cm: the text width of an A4 page with 2 cm margins
INK = "#222222"
# (face colour, hatch): light with hatches for the forecast, dark and plain for the final
STYLE = {"forecast": ("#a9c8e0", "////"), "final": ("#1f4e79", "")}
RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.edgecolor": "#888888",
    "axes.linewidth": 0.6,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "xtick.color": INK,
    "ytick.color": INK,
    "hatch.linewidth": 0.6,
    "legend.frameon": False,
}


class FrenchTicks(Formatter):
    """Tick labels with a decimal comma and the same number of decimals on every tick (the
    fewest that show each tick exactly): 0 · 0,5 · 1,0 · 1,5, or 0 · 8 · 16."""

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix

    @staticmethod
    def decimals(values: Sequence[float]) -> int:
        return next((d for d in range(4) if all(
            abs(round(v, d) - v) < 1e-9 * max(1.0, abs(v)) for v in values)), 3)

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        d = self.decimals(values)
        return [fr_number(v, d) + self.suffix for v in values]

    def __call__(self, x: float, pos: int | None = None) -> str:
        return fr_number(x, self.decimals([x])) + self.suffix


def _tonnes_axis(ax: object) -> None:
    ax.xaxis.set_major_formatter(FrenchTicks())  # type: ignore[attr-defined]
    ax.xaxis.set_major_locator(MaxNLocator(nbins=7))  # type: ignore[attr-defined]
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)  # type: ignore[attr-defined]
    ax.set_axisbelow(True)  # type: ignore[attr-defined]
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)  # type: ignore[attr-defined]


def _png(fig: Figure) -> bytes:
    """The figure as a palette PNG: flat-coloured charts need few colours, so an adaptive
    palette makes the file about three times smaller with no visible loss."""
    from PIL import Image

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = canvas.buffer_rgba()
    img = Image.frombuffer("RGBA", (int(rgba.shape[1]), int(rgba.shape[0])), rgba, "raw",
                           "RGBA", 0, 1).convert("RGB")
    small = img.quantize(colors=96, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    palette = small.getpalette() or []
    for i in range(0, len(palette), 3):  # the octree averages white to 254: snap it back
        if min(palette[i:i + 3]) >= 248:
            palette[i:i + 3] = [255, 255, 255]
    small.putpalette(palette)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()


def phase_bars(rows: Sequence[Row], title: str | None = None,
               with_uncertainty: bool = True) -> bytes:
    """Horizontal bars, forecast beside final for each row, ± uncertainty as error bars."""
    rows = list(rows)
    n = len(rows)
    with rc_context(RC):
        fig = Figure(dpi=DPI, figsize=(WIDTH_IN, 0.95 + 0.36 * max(n, 1)))
        ax = fig.add_subplot()
        height = 0.38
        for i, phase in enumerate(("forecast", "final")):
            colour, hatch = STYLE[phase]
            ys = [k + (i - 0.5) * height for k in range(n)]
            values = [r.get(phase) / 1000.0 for r in rows]
            errors = [(r.u(phase) or 0.0) / 1000.0 for r in rows] if with_uncertainty else None
            ax.barh(ys, values, height=height, color=colour, hatch=hatch, edgecolor=INK,
                    linewidth=0.5, label=PHASE_TITLE_FR[phase], xerr=errors,
                    error_kw={"elinewidth": 0.7, "capsize": 2, "ecolor": "#555555"})
        ax.set_yticks(range(n), [short_label(r.label) for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel("tCO2e" + (" (barres fines : ± incertitude)" if with_uncertainty else ""))
        if not any(r.forecast or r.final for r in rows):
            ax.set_xlim(0, 1)
            ax.text(0.5, 0.5, "Aucune émission comptée", ha="center", va="center",
                    transform=ax.transAxes)
        if title:
            ax.set_title(title)
        _tonnes_axis(ax)
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8)
        fig.tight_layout()
        return _png(fig)


def change_bars(rows: Sequence[Row], title: str | None = None) -> bytes:
    """Final minus forecast for each row, largest change on top: increases dark and plain,
    decreases light and hatched."""
    rows = sorted((r for r in rows if abs(r.delta) > 1e-9), key=lambda r: -abs(r.delta))
    n = len(rows)
    with rc_context(RC):
        fig = Figure(dpi=DPI, figsize=(WIDTH_IN, 0.95 + 0.3 * max(n, 1)))
        ax = fig.add_subplot()
        if not n:
            ax.text(0.5, 0.5, "Aucun écart entre prévisionnel et définitif", ha="center",
                    va="center", transform=ax.transAxes)
            ax.set_axis_off()
        else:
            deltas = [r.delta / 1000.0 for r in rows]
            colours = ["#8c3b0c" if d > 0 else "#f2c49b" for d in deltas]
            hatches = ["" if d > 0 else "\\\\\\\\" for d in deltas]
            bars = ax.barh(range(n), deltas, height=0.6, color=colours, edgecolor=INK,
                           linewidth=0.5)
            for bar, hatch in zip(bars, hatches, strict=True):
                bar.set_hatch(hatch)
            ax.axvline(0, color=INK, linewidth=0.8)
            ax.set_yticks(range(n), [short_label(r.label) for r in rows])
            ax.invert_yaxis()
            span = max(abs(d) for d in deltas)
            for k, d in enumerate(deltas):
                ax.text(d + (0.02 * span if d >= 0 else -0.02 * span), k,
                        fr_tonnes(d * 1000.0, 2, signed=True), va="center",
                        ha="left" if d >= 0 else "right", fontsize=7.5, color=INK)
            lo, hi = min(0.0, *deltas), max(0.0, *deltas)
            ax.set_xlim(lo - 0.22 * span if lo < 0 else 0, hi + 0.22 * span if hi > 0 else 0)
            ax.set_xlabel("Écart définitif − prévisionnel (tCO2e)")
            ax.legend(handles=[Patch(facecolor="#8c3b0c", edgecolor=INK, label="Hausse"),
                               Patch(facecolor="#f2c49b", edgecolor=INK, hatch="\\\\\\\\",
                                     label="Baisse")], loc="lower right",
                      bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8)
            _tonnes_axis(ax)
        if title:
            ax.set_title(title)
        fig.tight_layout()
        return _png(fig)


# best data first: dark to light, hatches for the uncertain classes
QUALITY_STYLE = {
    "facture": ("#0b3c5d", ""), "releve": ("#2e6f9e", ""), "devis": ("#7fb2d5", "...."),
    "estimation": ("#c9dfee", "////"), "hypothese": ("#ffffff", "xxxx"),
    "blank": ("#eeeeee", "\\\\\\\\"), "other": ("#ffffff", "----"),
}


def quality_bars(model: ReportModel, title: str | None = None) -> bytes:
    """One 100 % bar per phase, split by the source of the data."""
    phases = ("forecast", "final")
    with rc_context(RC):
        fig = Figure(dpi=DPI, figsize=(WIDTH_IN, 1.9))
        ax = fig.add_subplot()
        left = [0.0, 0.0]
        for row in model.quality:
            shares = [100.0 * (model.share(row.get(p), p) or 0.0) for p in phases]
            if not any(shares):
                continue
            colour, hatch = QUALITY_STYLE.get(row.key, ("#ffffff", ""))
            ax.barh(range(2), shares, left=left, height=0.55, color=colour, hatch=hatch,
                    edgecolor=INK, linewidth=0.5, label=short_label(row.label))
            for k, s in enumerate(shares):
                if s >= 7:
                    dark = colour in ("#0b3c5d", "#2e6f9e")
                    ax.text(left[k] + s / 2, k, fr_number(s, 0) + "\u202f%", ha="center",
                            va="center", fontsize=7.5, color="white" if dark else INK,
                            bbox=None if dark else {"facecolor": "white", "edgecolor": "none",
                                                    "pad": 0.6, "alpha": 0.85})
            left = [a + b for a, b in zip(left, shares, strict=True)]
        ax.set_yticks(range(2), [PHASE_TITLE_FR[p] for p in phases])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.xaxis.set_major_formatter(FrenchTicks("\u202f%"))
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if title:
            ax.set_title(title)
        if any(left):
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4, fontsize=7.5)
        else:
            ax.text(50, 0.5, "Aucune émission comptée", ha="center", va="center")
        fig.tight_layout()
        return _png(fig)


def report_charts(model: ReportModel) -> dict[str, bytes]:
    """Every chart of the report, by name, as PNG bytes."""
    natures = [r for r in model.natures if r.forecast or r.final]
    return {
        "postes": phase_bars(model.postes),
        "natures": phase_bars(natures),
        "ecarts": change_bars(model.postes),
        "qualite": quality_bars(model),
    }

