"""RefCOCO / RefCOCO+ / RefCOCOg: `refs(<splitBy>).p` + `instances.json` (the REFER layout).

<data_root>/<refcoco|refcoco+|refcocog>/{refs(unc|umd).p, instances.json}; images (COCO train2014) under
one of IMAGE_DIR_CANDIDATES or an explicit image root. One item per image, holding every sentence of every
ref of the split, like the reference's RESDataset; each sentence's truth is its ref's annotation mask.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from strvos_core.datasets.errors import DatasetError
from strvos_core.datasets.files import load_json, load_plain_pickle
from strvos_core.datasets.rle import decode_rle

# benchmark name -> (folder name, splitBy, valid splits)
REFCOCO_VARIANTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "refcoco": ("refcoco", "unc", ("val", "testA", "testB", "train")),
    "refcoco_plus": ("refcoco+", "unc", ("val", "testA", "testB", "train")),
    "refcocog": ("refcocog", "umd", ("val", "test", "train")),
}
IMAGE_DIR_CANDIDATES = ("images/mscoco/images/train2014", "coco/train2014", "train2014", "images/train2014")


@dataclass(frozen=True)
class Sentence:
    index: int  # position among the image's sentences (the evaluation unit is (image_id, index))
    text: str
    ann_id: int


@dataclass(frozen=True)
class RefImage:
    image_id: int
    path: Path
    height: int
    width: int
    sentences: tuple[Sentence, ...]


@dataclass
class ImageBenchmark:
    name: str
    split: str
    root: Path
    images: list[RefImage]
    annotations: dict[int, dict[str, Any]]
    instances_file: Path

    def sentence_mask(self, image: RefImage, sentence: Sentence) -> np.ndarray:
        """H x W uint8 truth of a sentence: its annotation's parts summed (values > 1 where parts overlap)."""
        ann = self.annotations[sentence.ann_id]
        where = f"instances file {self.instances_file}, annotation {sentence.ann_id}"
        return annotation_mask(ann.get("segmentation"), image.height, image.width, where)

    def limited(self, max_images: int | None) -> ImageBenchmark:
        if max_images is None:
            return self
        if max_images < 1:
            raise ValueError(f"--limit must be >= 1, got {max_images}")
        return ImageBenchmark(self.name, self.split, self.root, self.images[:max_images], self.annotations,
                              self.instances_file)


def annotation_mask(segmentation: Any, height: int, width: int, where: str) -> np.ndarray:
    if not segmentation:
        return np.zeros((height, width), dtype=np.uint8)
    if isinstance(segmentation, dict):
        mask = decode_rle(segmentation, where)
    elif isinstance(segmentation, list) and isinstance(segmentation[0], list):
        try:
            rles = coco_mask.frPyObjects(segmentation, height, width)
        except (TypeError, ValueError, IndexError) as e:
            raise DatasetError(f"{where}: invalid polygon: {e}") from e
        mask = np.sum(decode_rle(rles, where, keep_parts=True), axis=2).astype(np.uint8)
    elif isinstance(segmentation, list):
        mask = decode_rle(segmentation, where)
    else:
        raise DatasetError(f"{where}: unsupported segmentation {type(segmentation).__name__}")
    if mask.shape != (height, width):
        raise DatasetError(f"{where}: mask is {mask.shape[0]}x{mask.shape[1]}, the image is {height}x{width}")
    return mask


def _split_matches(ref_split: str, split: str) -> bool:
    """REFER.getRefIds' rule: testA/B/C match any split containing the letter, test matches test*."""
    if split in ("testA", "testB", "testC"):
        return split[-1] in ref_split
    if split == "test":
        return "test" in ref_split
    return ref_split == split


def _image_dir(root: Path, image_root: Path | None) -> Path:
    if image_root is not None:
        if not image_root.is_dir():
            raise DatasetError(f"image root not found: {image_root}")
        return image_root
    for rel in IMAGE_DIR_CANDIDATES:
        if (root / rel).is_dir():
            return root / rel
    raise DatasetError(f"COCO train2014 images not found under {root} (looked in {', '.join(IMAGE_DIR_CANDIDATES)});"
                       " pass --image-root")


def read_refcoco(name: str, root: str | Path, split: str | None = None,
                 image_root: str | Path | None = None) -> ImageBenchmark:
    if name not in REFCOCO_VARIANTS:
        raise DatasetError(f"unknown image benchmark {name!r}; choose one of {', '.join(REFCOCO_VARIANTS)}")
    folder, split_by, splits = REFCOCO_VARIANTS[name]
    split = split or "val"
    if split not in splits:
        raise DatasetError(f"unknown {name} split {split!r}; choose one of {', '.join(splits)}")
    root = Path(root)
    refs_path = root / folder / f"refs({split_by}).p"
    instances_path = root / folder / "instances.json"
    refs = load_plain_pickle(refs_path, "refs file")
    instances = load_json(instances_path, "instances file")
    if not isinstance(refs, list):
        raise DatasetError(f"refs file {refs_path} must hold a list of refs")
    if not isinstance(instances, dict) or not {"images", "annotations"} <= instances.keys():
        raise DatasetError(f"instances file {instances_path} needs 'images' and 'annotations'")
    annotations = {ann["id"]: ann for ann in instances["annotations"]}
    image_infos = {img["id"]: img for img in instances["images"]}
    image_dir = _image_dir(root, Path(image_root) if image_root else None)

    by_image: dict[int, list[dict]] = {}
    for ref in refs:
        try:
            if _split_matches(ref["split"], split):
                by_image.setdefault(ref["image_id"], []).append(ref)
        except (KeyError, TypeError) as e:
            raise DatasetError(f"refs file {refs_path}: malformed ref {ref!r:.200}") from e
    images = []
    for image_id in sorted(by_image):
        info = image_infos.get(image_id)
        if info is None:
            raise DatasetError(f"instances file {instances_path}: no image {image_id} (used by {refs_path})")
        sentences = []
        for ref in by_image[image_id]:
            if ref["ann_id"] not in annotations:
                raise DatasetError(f"instances file {instances_path}: no annotation {ref['ann_id']} "
                                   f"(ref {ref.get('ref_id')} of {refs_path})")
            for sent in ref["sentences"]:
                sentences.append(Sentence(len(sentences), sent["sent"], ref["ann_id"]))
        path = image_dir / info["file_name"]
        if not path.is_file():
            raise DatasetError(f"image {image_id} not found: {path}")
        images.append(RefImage(image_id, path, int(info["height"]), int(info["width"]), tuple(sentences)))
    if not images:
        raise DatasetError(f"refs file {refs_path} has no refs in split {split!r}")
    return ImageBenchmark(name, split, root, images, annotations, instances_path)
