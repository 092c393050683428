#!/usr/bin/env python3
"""Writes assets/colormaps/{inferno,viridis}.txt: matplotlib's colour maps sampled at 256 points
(t = i / 255), one "R G B" line (0-255) each. Run from the repository root: `pip install
matplotlib && python3 tools/make_colormaps.py`."""
import matplotlib
from matplotlib import colormaps

for name in ["inferno", "viridis"]:
    cm = colormaps[name]
    with open(f"assets/colormaps/{name}.txt", "w") as f:
        f.write(f"# matplotlib's {name} ({matplotlib.__version__}), 256 entries from t = 0 to t = 1, "
                "one \"R G B\" (0-255) per line.\n")
        f.write("# Written by tools/make_colormaps.py; read by engine::infer::colormap.\n")
        for i in range(256):
            r, g, b, _ = cm(i / 255.0)
            f.write(f"{round(r * 255)} {round(g * 255)} {round(b * 255)}\n")
