"""Your own images, loaded once into tensors (no DataLoader in the training loop).

`path` may be any of:
  - a folder of class subfolders (torchvision's ImageFolder layout): path/cat/1.png, ...;
    split 70/15/15 with the fixed seed;
  - FashionMNIST (or any MNIST-style IDX set) in torchvision's layout: path/FashionMNIST/raw/
    or path/raw/ or path itself holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz];
  - CIFAR-10 in torchvision's layout: path/cifar-10-batches-py/ (read with an unpickler that
    admits numpy arrays only) or the binary path/cifar-10-batches-bin/.
Standard sets keep their test split; 10% of their training images are held out for
validation. Every image is resized to `image_size` (antialiased bilinear) and normalised
per channel with the training split's mean and std.

Every file is checked as it is read, so that a bad one is a one-line DataError naming it
before anything trains: an image PIL cannot read or refuses as too large (a decompression
bomb), a batch of the wrong shape, a label outside 0-9 (an IndexError mid-training before),
labels that are not whole numbers or not one per image.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hypertui.engine.core.errors import DataError
from hypertui.engine.data.mnist import _NumpyOnlyUnpickler, read_idx
from hypertui.engine.data.sources import (
    IDX_NAMES,
    cifar_folder,
    class_folders,
    describe_layout,
    idx_folder,
    idx_path,
)

FRACTIONS = (0.70, 0.15)
VAL_FRACTION = 0.10  # of a standard set's training images
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def load_images(path: Path, size: int, seed: int):
    from hypertui.engine.data.dataset import Dataset, Split

    layout = describe_layout(path)
    rng = np.random.default_rng(seed)
    if layout == "folder":
        x, y, classes = _read_folder(path, size)
        order = rng.permutation(len(y))
        n_train, n_val = int(FRACTIONS[0] * len(y)), max(1, int(FRACTIONS[1] * len(y)))
        parts = np.split(order, [n_train, n_train + n_val])
        if min(len(p) for p in parts) == 0:
            raise DataError(f"{path}: {len(y)} images are too few for a 70/15/15 split")
        train, val, test = ((x[p], y[p]) for p in parts)
        note = f"image folder {path}: {len(classes)} classes, split 70/15/15 with seed {seed}"
    else:
        (train_x, train_y), test, classes, where = _read_standard(path, layout)
        order = rng.permutation(len(train_y))
        n_val = int(VAL_FRACTION * len(train_y))
        val = (train_x[order[:n_val]], train_y[order[:n_val]])
        train = (train_x[order[n_val:]], train_y[order[n_val:]])
        note = f"{where}: its test split; {n_val} training images held out (seed {seed})"

    def to_tensor(images: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(images.astype(np.float32)).div_(255.0)  # [N, C, H, W], a copy
        if t.shape[-1] != size or t.shape[-2] != size:
            t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True)
        return t

    tx = to_tensor(train[0])
    mean, std = tx.mean(dim=(0, 2, 3), keepdim=True), tx.std(dim=(0, 2, 3), keepdim=True)
    std = std.clamp_min(1e-6)

    def split(images: np.ndarray, labels: np.ndarray, t: torch.Tensor | None = None) -> Split:
        t = to_tensor(images) if t is None else t
        return Split((t - mean) / std, torch.from_numpy(labels.astype(np.int64)))

    return Dataset(
        "images",
        split(*train, tx),
        split(*val),
        split(*test),
        notes=(note, f"{tx.shape[1]} channel(s), resized to {size}x{size}"),
        classes=tuple(classes),
    )


# -- layouts ---------------------------------------------------------------------------------


def _read_folder(path: Path, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from PIL import Image, UnidentifiedImageError

    classes = class_folders(path)
    files = [(f, i) for i, (_, fs) in enumerate(classes) for f in fs]
    images, mode = [], ""
    for f, _ in files:
        try:
            with Image.open(f) as im:
                if not mode:  # the first image decides: grayscale stays one channel
                    mode = "L" if im.mode in ("L", "1", "I;16", "I") else "RGB"
                im = im.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
                images.append(np.asarray(im, dtype=np.uint8))
        except Image.DecompressionBombError as exc:  # an Exception, not an OSError
            raise DataError(f"{f}: too large to load ({exc}); resize it") from None
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError, EOFError) as exc:
            # PIL's plugins report a damaged file with any of these
            raise DataError(f"{f}: not a readable image ({exc})") from None
    x = np.stack(images)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # [N, C, H, W]
    return x, np.array([i for _, i in files]), [name for name, _ in classes]


def _read_standard(path: Path, layout: str):
    if layout == "idx":
        raw = idx_folder(path)
        files = [idx_path(raw, n) for n in IDX_NAMES]
        arrays = [read_idx(f) for f in files]
        for images, labels, f in ((*arrays[:2], files[:2]), (*arrays[2:], files[2:])):
            if images.ndim != 3:
                raise DataError(f"{f[0]}: images of shape {images.shape}, expected (N, H, W)")
            _check_labels(labels, len(images), f[1], "IDX")
        train = (arrays[0][:, None], arrays[1])
        test = (arrays[2][:, None], arrays[3])
        fashion = "fashion" in str(raw).lower()
        classes = FASHION_CLASSES if fashion else tuple(str(i) for i in range(10))
        return train, test, classes, f"{'FashionMNIST' if fashion else 'IDX images'} in {raw}"
    kind = "py" if layout == "cifar-py" else "bin"
    folder = cifar_folder(path, kind)
    suffix = ".bin" if kind == "bin" else ""
    read = _cifar_bin if kind == "bin" else _cifar_pickle
    parts = [read(folder / f"data_batch_{i}{suffix}") for i in range(1, 6)]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, read(folder / f"test_batch{suffix}"), CIFAR_CLASSES, f"CIFAR-10 in {folder}"


def _cifar_bin(file: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.frombuffer(file.read_bytes(), dtype=np.uint8)
    if raw.size % 3073:
        raise DataError(f"{file}: not a CIFAR-10 binary batch (records of 1 + 3072 bytes)")
    records = raw.reshape(-1, 3073)
    labels = records[:, 0].astype(np.int64)
    _check_labels(labels, len(records), file, "CIFAR-10")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _cifar_pickle(file: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(file.read_bytes()), encoding="bytes").load()
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    except Exception as exc:  # unpickling arbitrary bytes can raise any kind of error
        # (ValueError for protocol 9, IndexError, struct.error...); all mean a bad file
        raise DataError(f"{file}: not a CIFAR-10 batch ({exc})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{file}: images of shape {data.shape}, expected (N, 3072)")
    if not np.issubdtype(data.dtype, np.integer) or (
        data.size and not 0 <= data.min() <= data.max() <= 255
    ):
        raise DataError(f"{file}: pixels are not whole numbers 0-255 ({data.dtype})")
    _check_labels(labels, len(data), file, "CIFAR-10")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _check_labels(labels: np.ndarray, n_images: int, file: Path, name: str) -> None:
    """Labels are whole numbers 0-9, one per image: a label of 200 was an IndexError in the
    middle of training, text labels a ValueError."""
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        first = labels.flat[0] if labels.size else ""
        raise DataError(
            f"{file}: labels are not whole numbers 0-9 (a {labels.dtype} array of shape "
            f"{labels.shape}, first {_plain(first)!r})"
        )
    if len(labels) != n_images:
        raise DataError(f"{file}: {n_images} images but {len(labels)} labels")
    if labels.size and not 0 <= labels.min() <= labels.max() <= 9:
        bad = labels.max() if labels.max() > 9 else labels.min()
        raise DataError(f"{file}: label {bad} is out of range ({name} labels are 0-9)")


def _plain(value):
    return value.item() if hasattr(value, "item") else value
