"""InternVL dynamic tiling (the reference's `dynamic_preprocess`), reproduced rule for rule.

A frame is resized to the grid (cols x rows of 448 tiles, 1 <= cols*rows <= 12) whose aspect ratio is closest to the
frame's, cut row-major into tiles, and a 448x448 thumbnail of the whole frame is appended when there is more than
one tile. Ties between grids of equal aspect ratio go to the later (larger) grid when the frame's area exceeds half
of that grid's pixel area. Resizes use PIL's default (bicubic), as the reference does.
"""
from __future__ import annotations

from PIL import Image


def candidate_grids(min_tiles: int, max_tiles: int) -> list[tuple[int, int]]:
    """All (cols, rows) with min_tiles <= cols*rows <= max_tiles, ordered by tile count.

    Built as the reference builds it (a set, then a stable sort by area), so grids of equal area are visited in the
    same order and the tie rule picks the same grid.
    """
    grids = {
        (i, j)
        for n in range(min_tiles, max_tiles + 1)
        for i in range(1, n + 1)
        for j in range(1, n + 1)
        if min_tiles <= i * j <= max_tiles
    }
    return sorted(grids, key=lambda g: g[0] * g[1])


def choose_grid(width: int, height: int, min_tiles: int = 1, max_tiles: int = 12, tile: int = 448) -> tuple[int, int]:
    """The (cols, rows) grid for a width x height frame."""
    aspect = width / height
    area = width * height
    best, best_diff = (1, 1), float("inf")
    for cols, rows in candidate_grids(min_tiles, max_tiles):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and area > 0.5 * tile * tile * cols * rows:
            best = (cols, rows)
    return best


def num_tiles(width: int, height: int, min_tiles: int = 1, max_tiles: int = 12, use_thumbnail: bool = True,
              tile: int = 448) -> int:
    """How many 448 views `tile_image` returns (grid tiles plus the thumbnail), without resizing anything."""
    cols, rows = choose_grid(width, height, min_tiles, max_tiles, tile)
    n = cols * rows
    return n + 1 if use_thumbnail and n != 1 else n


def tile_image(image: Image.Image, min_tiles: int = 1, max_tiles: int = 12, tile: int = 448,
               use_thumbnail: bool = True) -> list[Image.Image]:
    """Row-major tiles of the resized frame, then the thumbnail (when more than one tile)."""
    cols, rows = choose_grid(image.width, image.height, min_tiles, max_tiles, tile)
    resized = image.resize((cols * tile, rows * tile))
    tiles = [
        resized.crop((c * tile, r * tile, (c + 1) * tile, (r + 1) * tile))
        for r in range(rows)
        for c in range(cols)
    ]
    if use_thumbnail and len(tiles) != 1:
        tiles.append(image.resize((tile, tile)))
    return tiles
