#!/usr/bin/env python3
"""Writes assets/icon.png, the window icon: 64 × 64 RGBA, a slice of a grey body with the organ
(label 1 colour) and a lesion (label 2 colour) outlined, under a crosshair. Standard library only."""
import math
import pathlib
import struct
import zlib

SIZE = 64
ORGAN = (230, 60, 60)
LESION = (60, 200, 90)
CROSSHAIR = (255, 220, 60)


def pixel(x, y):
    cx, cy = x - 31.5, y - 31.5
    body = (cx / 29) ** 2 + (cy / 24) ** 2
    if body > 1:
        return (0, 0, 0, 0)
    colour = (70, 70, 78)
    organ = ((cx + 5) / 15) ** 2 + ((cy + 2) / 11) ** 2
    lesion = math.hypot(cx - 12, cy - 6) / 6
    if organ <= 1:
        colour = ORGAN if organ > 0.7 else (150, 150, 158)
    if lesion <= 1:
        colour = LESION if lesion > 0.6 else (190, 190, 198)
    if abs(x - 40) < 1 or abs(y - 35) < 1:
        colour = CROSSHAIR
    return colour + (255,)


def main():
    rows = b"".join(
        b"\x00" + bytes(c for x in range(SIZE) for c in pixel(x, y)) for y in range(SIZE)
    )

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows, 9))
    png += chunk(b"IEND", b"")
    out = pathlib.Path(__file__).resolve().parent.parent / "assets" / "icon.png"
    out.write_bytes(png)
    print(f"wrote {out} ({len(png)} bytes)")


if __name__ == "__main__":
    main()
