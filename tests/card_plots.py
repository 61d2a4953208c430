"""Tiny models whose version folders carry card plots, as training writes them next to model.json."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image, ImageDraw

PLOT_NAMES = ("confusion_matrix.png", "training_curves.png")


def draw_plot(path: Path, seed: int) -> Path:
    """A small real PNG that looks like a plot (axes and a falling line), different per seed."""
    image = Image.new("RGB", (240, 160), "white")
    draw = ImageDraw.Draw(image)
    draw.line([(20, 10), (20, 140), (230, 140)], fill="black", width=2)
    points = [(20 + 21 * i, 20 + int(110 * (1 - 0.8 ** (i + seed)))) for i in range(11)]
    draw.line(points, fill=(11, 87, 164), width=3)
    image.save(path, format="PNG")
    return path


def copy_with_plots(artifacts_dir: Path, destination: Path) -> Path:
    """A copy of the tiny models (the session's folder stays as other tests expect it), with plots."""
    shutil.copytree(artifacts_dir, destination)
    for seed, version_dir in enumerate(sorted(destination.glob("*/*"))):
        for offset, name in enumerate(PLOT_NAMES):
            draw_plot(version_dir / name, seed + offset)
    return destination
