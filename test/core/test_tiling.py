"""Dynamic tiling against a hand-computed table (reference rule: closest aspect ratio, ties to the larger grid
when the frame's area exceeds half of the grid's area; a thumbnail when more than one tile)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from strvos_core.processing.image import llm_tiles, sam2_image
from strvos_core.processing.tiling import choose_grid, num_tiles, tile_image

# (width, height) -> (cols, rows), views: worked out by hand from the rule
TABLE = [
    ((854, 480), (2, 1), 3),     # DAVIS: 1.78 -> 2/1 beats 3/2; (4,2) ties but 409920 < 0.5*448^2*8
    ((1280, 720), (4, 2), 9),    # the tie with (2,1) goes to (4,2): 921600 > 802816
    ((448, 448), (1, 1), 1),     # (2,2) ties but 200704 < 401408
    ((1000, 1000), (3, 3), 10),  # ties (2,2) and (3,3) both won: 1e6 > 903168
    ((64, 48), (4, 3), 13),      # exact 4:3 grid, even for a tiny frame
    ((8, 8), (1, 1), 1),
    ((8000, 6000), (4, 3), 13),
    ((100, 10), (10, 1), 11),
    ((480, 854), (1, 2), 3),
]


@pytest.mark.parametrize(("size", "grid", "views"), TABLE)
def test_grid_table(size, grid, views):
    assert choose_grid(*size) == grid
    assert num_tiles(*size) == views


def test_tiles_are_row_major_crops_plus_thumbnail():
    image = Image.fromarray(np.arange(854 * 480 * 3, dtype=np.uint32).reshape(480, 854, 3).astype(np.uint8))
    tiles = tile_image(image)
    resized = image.resize((896, 448))
    assert [t.size for t in tiles] == [(448, 448)] * 3
    assert np.array_equal(np.asarray(tiles[0]), np.asarray(resized)[:, :448])
    assert np.array_equal(np.asarray(tiles[1]), np.asarray(resized)[:, 448:])
    assert np.array_equal(np.asarray(tiles[2]), np.asarray(image.resize((448, 448))))


def test_tensors_are_imagenet_normalised():
    frame = np.full((30, 30, 3), 255, dtype=np.uint8)
    tiles = llm_tiles(frame)
    assert tiles.shape == (1, 3, 448, 448)
    assert np.allclose(tiles[0, :, 0, 0].numpy(), [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225],
                       atol=1e-6)
    sam = sam2_image(frame, 256)
    assert sam.shape == (1, 3, 256, 256)
    # the reference normalises SAM 2 input with bfloat16-rounded constants (0.485 -> 0.484375, 0.229 -> 0.228515625)
    assert abs(float(sam[0, 0, 0, 0]) - (1 - 0.484375) / 0.228515625) < 1e-6
