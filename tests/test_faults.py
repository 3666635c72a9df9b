"""The reliability suite: bad inputs and faults through the real CLI.

Every case runs in a fresh $HYPERTUI_HOME that already holds a finished sweep, and asserts
what a user would see: the exit code, a clear message (one line on stderr for exit 2),
no traceback, no hang, and the stored sweep unchanged afterwards. A case is one row of
CASES: a name, the command line, a setup that writes the bad input, the expected exit
code and a piece of the expected message. Add a row to add a case.

Cases call the command's `main(argv)` in this process (a fresh interpreter a case cost
1.6 s, mostly imports); those marked `process=True` start `python -m hypertui` for real:
where a hang must be cut by a timeout (a FIFO), and a few that prove the entry point.
"""

from __future__ import annotations

import gzip
import os
import pickle
import random
import shutil
import sqlite3
import stat
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hypertui.engine.core.events import Progress
from hypertui.engine.data import mnist
from hypertui.engine.store.schema import SCHEMA_VERSION
from hypertui.engine.store.store import Store
from hypertui.tui.cli.main import main
from tests.fakes import make_sweep, write_image_folder

ROOT = Path(__file__).resolve().parents[1]
SWEEP = "5eed0001"  # the sweep every home starts with (tests/fakes.py)
TIMEOUT_S = 120  # a hang fails the case instead of the whole suite


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]  # after `python -m hypertui`; {home} and {data} are filled in
    rc: int
    message: str  # expected in stderr (exit 2) or stdout (exit 0)
    setup: Callable[[Path], None] = lambda home: None
    check: Callable[[Path, str], None] | None = None  # more checks on (home, stdout)
    process: bool = False  # run `python -m hypertui` in a process of its own


def user_preset(name: str, text: str) -> Callable[[Path], None]:
    def setup(home: Path) -> None:
        folder = home / "presets"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.toml").write_text(text)

    return setup


def fifo_preset(home: Path) -> None:
    (home / "presets").mkdir(parents=True, exist_ok=True)
    os.mkfifo(home / "presets" / "fifo.toml")


def fake_mnist(labels: list[int], damage: Callable[[Path], None] | None = None):
    def setup(home: Path) -> None:
        raw = home / "data" / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for kind in ("train", "t10k"):
            mnist.write_idx(raw / f"{kind}-images-idx3-ubyte", np.zeros((len(labels), 28, 28)))
            mnist.write_idx(raw / f"{kind}-labels-idx1-ubyte", np.array(labels, np.uint8))
        if damage:
            damage(raw)

    return setup


def not_gzip(raw: Path) -> None:
    (raw / "t10k-labels-idx1-ubyte").rename(raw / "t10k-labels-idx1-ubyte.gz")


def truncated_gzip(raw: Path) -> None:
    path = raw / "t10k-labels-idx1-ubyte"
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(path.read_bytes())[:-12])
    path.unlink()


def stored_sweep_named(name: str) -> Callable[[Path], None]:
    """A sweep stored before names were checked (an older store): its name is hostile."""

    def setup(home: Path) -> None:
        store = Store(home / "runs.sqlite")
        store.db.execute(
            "UPDATE sweeps SET preset=?, description=? WHERE id=?", (name, name, SWEEP)
        )
        store.db.commit()

    return setup


def diverged_to_inf(home: Path) -> None:
    store = Store(home / "runs.sqlite")
    run = next(r for r in store.runs(SWEEP) if r.status == "diverged")
    inf = float("inf")
    store.add_points([Progress(run.id, 3, 615, 6150, 0.3, inf, {"val_loss": inf, "val_mse": inf})])


def nothing_outside_exports(home: Path, stdout: str) -> None:
    written = [p for p in home.rglob("*.csv")]
    assert written and all(p.parent == home / "exports" for p in written), written
    assert not (home.parent / "x").exists()


def csv_on_stdout(home: Path, stdout: str) -> None:
    assert stdout.startswith("problem,") and not (Path.cwd() / "-").exists()


def no_escape_sequences(home: Path, stdout: str) -> None:
    assert "\x1b" not in stdout and "[/bold]" in stdout


def own_model(name: str, body: str) -> Callable[[Path], None]:
    """A preset `own` whose model is `name:build`, in the folder the command runs in (a
    name of its own per case: cases share this process's import path)."""

    def setup(home: Path) -> None:
        text = "import os, sys, torch\nprint('hello from my module')\n" + body
        (home.parent / f"{name}.py").write_text(text)
        user_preset("own", f'description = "x"\n[config]\nmodel = "{name}:build"\nepochs = 1\n')(
            home
        )

    return setup


BUILDS = "def build(config, input_shape, n_outputs):\n"


def only_json_on_stdout(home: Path, stdout: str) -> None:
    import json

    lines = stdout.splitlines()
    assert lines and all(json.loads(line) for line in lines), stdout


def the_trial_failed_with(reason: str) -> Callable[[Path, str], None]:
    def check(home: Path, stdout: str) -> None:
        store = Store(home / "runs.sqlite")
        sweep = next(s for s in store.sweeps() if s.preset == "own")
        runs = store.runs(sweep.id)
        assert [r.status for r in runs] == ["failed"] and reason in runs[0].reason
        store.close()

    return check


def no_sweep_left(home: Path, stdout: str) -> None:
    """An own model that cannot build is refused before a sweep exists (one build, in a
    process of its own)."""
    store = Store(home / "runs.sqlite")
    assert [s.id for s in store.sweeps()] == [SWEEP]
    store.close()


def a_link_to_dev_null(home: Path) -> None:
    (home / "null.csv").symlink_to("/dev/null")


def the_link_still_points_at_the_device(home: Path, stdout: str) -> None:
    link = home / "null.csv"
    assert link.is_symlink() and Path(os.readlink(link)) == Path("/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def a_fifo_with_a_reader(home: Path) -> None:
    """A FIFO as --out, read by a thread: the export must write into it, not replace it."""
    import threading

    fifo = home / "pipe.csv"
    os.mkfifo(fifo)

    def read() -> None:
        with open(fifo) as fh:
            (home / "from-the-pipe.txt").write_text(fh.read())

    threading.Thread(target=read, daemon=True).start()


def the_fifo_got_the_csv(home: Path, stdout: str) -> None:
    assert stat.S_ISFIFO(os.lstat(home / "pipe.csv").st_mode)
    for _ in range(200):  # the reader thread writes its copy once the pipe closes
        if (home / "from-the-pipe.txt").exists():
            break
        time.sleep(0.01)
    assert (home / "from-the-pipe.txt").read_text().startswith("problem,")


def no_folder_made(home: Path, stdout: str) -> None:
    assert not (home / "missing").exists()


def user_notes(home: Path) -> None:
    (home.parent / "STUDY.md").write_text("my notes\n")


def the_notes_are_kept(home: Path, stdout: str) -> None:
    assert (home.parent / "STUDY.md").read_text() == "my notes\n"


def table_preset(name: str, table: Callable[[Path], None], **config) -> Callable[[Path], None]:
    """A user preset of problem = "table" on a file `table(home)` makes beside it."""

    def setup(home: Path) -> None:
        table(home / "presets")
        lines = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in config.items())
        user_preset(name, f'description = "x"\n[config]\nproblem = "table"\n{lines}')(home)

    return setup


def fifo_table(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "t.csv")


def endless_table(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "t.csv").symlink_to("/dev/zero")


def rows_table(rows: list[str]) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "t.csv").write_text("\n".join(["a,y", *rows]) + "\n")

    return write


def image_preset(name: str, images: Callable[[Path], None]) -> Callable[[Path], None]:
    """A user preset of problem = "images" on a folder `images(folder)` fills beside it."""

    def setup(home: Path) -> None:
        images(home / "presets" / "imgs")
        config = 'problem = "images"\npath = "imgs"\nimage_size = 16\nchannels = [4]\n'
        user_preset(name, f'description = "x"\n[config]\n{config}')(home)

    return setup


def corrupt_first_image(folder: Path) -> None:
    write_image_folder(folder, n=4)
    (folder / "blue" / "0.png").write_bytes(b"not a PNG")  # blue/ sorts first


def png_claiming(width: int, height: int) -> bytes:
    """A few bytes of PNG whose header claims width x height pixels: PIL reads the header
    when it opens a file, so a 20000 x 20000 bomb costs nothing to make."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def a_bomb_among_the_images(folder: Path) -> None:
    write_image_folder(folder, n=4)
    (folder / "red" / "0.png").write_bytes(png_claiming(20000, 20000))


def cifar_py(batch: bytes) -> Callable[[Path], None]:
    """CIFAR-10's python layout, every batch file holding `batch`."""

    def write(folder: Path) -> None:
        folder = folder / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            (folder / name).write_bytes(batch)

    return write


def cifar_batch(data: np.ndarray, labels: list) -> bytes:
    return pickle.dumps({b"data": data, b"labels": labels}, protocol=2)  # as CIFAR's are


def cifar_bin_labelled(label: int) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        folder = folder / "cifar-10-batches-bin"
        folder.mkdir(parents=True)
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            records = np.zeros((4, 3073), np.uint8)
            records[:, 0] = [0, 1, 2, label]
            (folder / name).write_bytes(records.tobytes())

    return write


def fashion_labelled(label: int) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        raw = folder / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for kind in ("train", "t10k"):
            mnist.write_idx(raw / f"{kind}-images-idx3-ubyte", np.zeros((20, 28, 28)))
            mnist.write_idx(raw / f"{kind}-labels-idx1-ubyte", np.array([label] * 20, np.uint8))

    return write


def three_rows_trained(home: Path, stdout: str) -> None:
    store = Store(home / "runs.sqlite")
    assert [r.status for r in store.runs(store.latest_sweep().id)] == ["finished"]


def schema_version_minus_5(home: Path) -> None:
    db = sqlite3.connect(home / "runs.sqlite")
    db.execute("PRAGMA user_version = -5")
    db.commit()
    db.close()


def schema_version_back(home: Path, stdout: str) -> None:
    schema_version_back_to(home, SCHEMA_VERSION)


def schema_version_back_to(home: Path, version: int) -> None:
    """Put the version back, so that the stored sweep can be read for the last check."""
    db = sqlite3.connect(home / "runs.sqlite")
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


def damaged_store(*statements: str, page_of: str = "") -> Callable[[Path], None]:
    """Damage the store as a disk or a hand edit does, keeping a copy to put back: SQL
    statements run on it, or random bytes over the first page of table `page_of`."""

    def setup(home: Path) -> None:
        path = home / "runs.sqlite"
        shutil.copy(path, home / "runs.sqlite.bak")
        db = sqlite3.connect(path)
        for statement in statements:
            db.execute(statement)
        db.commit()
        if page_of:
            query = "SELECT rootpage FROM sqlite_master WHERE name=?"
            (root,) = db.execute(query, (page_of,)).fetchone()
            (size,) = db.execute("PRAGMA page_size").fetchone()
        db.close()
        if page_of:
            with open(path, "r+b") as fh:
                fh.seek((root - 1) * size)
                fh.write(random.Random(0).randbytes(size))

    return setup


def store_put_back(home: Path, stdout: str) -> None:
    shutil.copy(home / "runs.sqlite.bak", home / "runs.sqlite")


ZOMBIES: list[subprocess.Popen] = []  # killed runners, reaped by the case's check


def a_runner_just_killed(home: Path) -> None:
    """The sweep `running` under a process killed a moment ago and not yet reaped by its
    parent (as the app's runners are): a zombie, whose heartbeat is still fresh."""
    import signal
    import socket

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.send_signal(signal.SIGKILL)
    while open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
    ZOMBIES.append(child)
    store = Store(home / "runs.sqlite")
    store.db.execute(
        "UPDATE sweeps SET status='running', pid=?, host=?, heartbeat=? WHERE id=?",
        (child.pid, socket.gethostname(), time.time(), SWEEP),
    )
    store.close()


def reap_the_runner(home: Path, stdout: str) -> None:
    while ZOMBIES:
        ZOMBIES.pop().wait()


IDS = [f"{i},n{i}" for i in range(2000)]  # a name column as the target: not classes
BIG = "\n[sweep]\nlr = { log_uniform = [1e-4, 1e-1] }\n"
CASES = [
    Case(
        "markup in a preset name",
        ["run", "boom"],
        2,
        "a preset name is",
        user_preset("boom", 'name = "[/red]boom"\ndescription = "x"\n'),
    ),
    Case(
        "a name that climbs out of the exports folder",
        ["run", "pwn"],
        2,
        "a preset name is",
        user_preset("pwn", 'name = "../../../../tmp/x/pwn"\ndescription = "x"\n'),
    ),
    Case(
        "an absolute path as name",
        ["run", "abs"],
        2,
        "a preset name is",
        user_preset("abs", 'name = "/tmp/x/abs"\ndescription = "x"\n'),
    ),
    Case(
        "markup and an escape sequence in a description",
        ["presets"],
        0,
        "mine",
        user_preset("mine", 'description = "[/bold] \\u001b[31mred"\n'),
        no_escape_sequences,
    ),
    Case(
        "500 nested brackets: run",
        ["run", "deep"],
        2,
        "nested too deeply",
        user_preset("deep", 'description = "x"\n[config]\nhidden = ' + "[" * 500 + "]" * 500),
    ),
    Case(
        "500 nested brackets: listed as invalid",
        ["presets"],
        0,
        "nested too deeply",
        user_preset("deep", 'description = "x"\n[config]\nhidden = ' + "[" * 500 + "]" * 500),
    ),
    Case("a FIFO named *.toml", ["presets"], 0, "not a regular file", fifo_preset, process=True),
    Case(
        "print() in an own model's module with --json",
        ["run", "own", "--json"],
        0,
        '"status": "finished"',
        own_model(
            "loud_model", BUILDS + "    print('building')\n    return torch.nn.Linear(3, 1)\n"
        ),
        only_json_on_stdout,
        process=True,
    ),
    Case(
        "sys.exit(3) in an own model's build()",
        ["run", "own"],
        2,
        "your code called sys.exit(3)",
        own_model("exiting_model", BUILDS + "    sys.exit(3)\n"),
        no_sweep_left,
    ),
    Case(
        "os._exit(0) in an own model's module",
        ["run", "own"],
        2,
        "your code ended its process with exit code 0",
        own_model("os_exit_module", "os._exit(0)\n" + BUILDS + "    return None\n"),
        no_sweep_left,
    ),
    Case(
        "os._exit(0) in an own model's forward",
        ["run", "own"],
        1,
        "1 failed",
        own_model(
            "os_exit_model",
            "class M(torch.nn.Linear):\n    def forward(self, x):\n"
            "        if self.training:\n            os._exit(0)\n"
            "        return super().forward(x)\n" + BUILDS + "    return M(3, 1)\n",
        ),
        the_trial_failed_with("exit code 0"),
    ),
    Case(
        "an own model's build() returns a string",
        ["run", "own"],
        2,
        "returned str, not a torch.nn.Module",
        own_model("string_model", BUILDS + "    return 'a string'\n"),
        no_sweep_left,
    ),
    Case(
        "seeds = 10**12",
        ["run", "many"],
        2,
        "1,000,000,000,000 trials",
        user_preset("many", 'description = "x"\nseeds = 1000000000000\n'),
    ),
    Case(
        "trials = 10**9",
        ["run", "draws"],
        2,
        "1,000,000,000 trials",
        user_preset("draws", 'description = "x"\ntrials = 1000000000\n' + BIG),
    ),
    Case("--seeds 10**12", ["run", "quickstart", "--seeds", "1000000000000"], 2, "trials"),
    Case(
        "a seed past int64",
        ["run", "quickstart", "--set", "seed=9223372036854775807", "--seeds", "2"],
        2,
        "seed = 9223372036854775807",
    ),
    Case(
        "seeds that run past 2**32",
        ["run", "quickstart", "--set", "seed=4294967295", "--seeds", "2"],
        2,
        "past the largest seed",
    ),
    Case(
        "a negative sweep_seed",
        ["run", "negseed"],
        2,
        "sweep_seed",
        user_preset("negseed", 'description = "x"\nsweep_seed = -1\ntrials = 2\n' + BIG),
    ),
    Case("lr = 1e308", ["run", "quickstart", "--set", "lr=1e308"], 2, "lr = 1e+308"),
    Case("lr = nan", ["run", "quickstart", "--set", "lr=nan"], 2, "lr = nan"),
    Case("lr = inf", ["run", "quickstart", "--set", "lr=inf"], 2, "lr = inf"),
    Case(
        "a model of 10^10 parameters",
        ["run", "quickstart", "--set", "hidden=[100000, 100000]"],
        2,
        "parameters",
    ),
    Case("--full without a [full] table", ["run", "quickstart", "--full"], 2, "no full version"),
    Case(
        "--set that does not fit the preset",
        ["run", "quickstart", "--set", "loss=cross_entropy"],
        2,
        "quickstart with loss",
    ),
    Case(
        "--set with an unknown key",
        ["run", "quickstart", "--set", "lrr=0.1"],
        2,
        "did you mean 'lr'",
    ),
    Case(
        "--set nested too deeply",
        ["run", "quickstart", "--set", "hidden=" + "[" * 500],
        2,
        "nested too deeply",
    ),
    Case("an unknown preset", ["run", "quickstrat"], 2, "did you mean 'quickstart'", process=True),
    Case(
        "MNIST labels out of range",
        ["run", "mnist-fast", "--data-dir", "{home}/data"],
        2,
        "label 12 is out of range",
        fake_mnist([0, 1, 12]),
    ),
    Case(
        "MNIST .gz that is not gzip",
        ["run", "mnist-fast", "--data-dir", "{home}/data"],
        2,
        "cannot read",
        fake_mnist([0, 1, 2], not_gzip),
    ),
    Case(
        "MNIST .gz cut short",
        ["run", "mnist-fast", "--data-dir", "{home}/data"],
        2,
        "truncated gzip",
        fake_mnist([0, 1, 2], truncated_gzip),
    ),
    Case(
        "export --out - writes stdout",
        ["export", SWEEP, "--out", "-"],
        0,
        "run_id",
        check=csv_on_stdout,
    ),
    Case(
        "a stored sweep whose name climbs out",
        ["export", SWEEP],
        0,
        "wrote",
        stored_sweep_named("../../x/pwn"),
        nothing_outside_exports,
    ),
    Case(
        "markup in a stored sweep's name: runs",
        ["runs"],
        0,
        "[/red]boom",
        stored_sweep_named("[/red]boom"),
    ),
    Case(
        "markup in a stored sweep's name: runs SWEEP",
        ["runs", SWEEP],
        0,
        "[/red]boom",
        stored_sweep_named("[/red]boom"),
    ),
    Case(
        "show a diverged run whose curve holds inf",
        ["show", "0001r008"],
        0,
        "diverged",
        diverged_to_inf,
        process=True,
    ),
    Case(
        "export --out a symlink to /dev/null",
        ["export", SWEEP, "--out", "{home}/null.csv"],
        0,
        "wrote",
        a_link_to_dev_null,
        the_link_still_points_at_the_device,
    ),
    Case(
        "export --out a FIFO",
        ["export", SWEEP, "--out", "{home}/pipe.csv"],
        0,
        "wrote",
        a_fifo_with_a_reader,
        the_fifo_got_the_csv,
    ),
    Case("export --out ''", ["export", SWEEP, "--out", ""], 2, "--out needs a file name"),
    Case(
        "export --out into a missing folder",
        ["export", SWEEP, "--out", "{home}/missing/dir/x.csv"],
        2,
        "does not exist",
        check=no_folder_made,
    ),
    Case(
        "export --out ~nosuchuser/x.csv",
        ["export", SWEEP, "--out", "~nosuchuser/x.csv"],
        2,
        "no such user",
    ),
    Case(
        "report --out ~nosuchuser/STUDY.md",
        ["report", "--no-run", "--out", "~nosuchuser/STUDY.md"],
        2,
        "no such user 'nosuchuser'",
    ),
    Case(
        "a preset's path = ~nosuchuser/t.csv",
        ["run", "tilde"],
        2,
        "no such user 'nosuchuser'",
        table_preset("tilde", rows_table(["1,2"]), path="~nosuchuser/t.csv", target="y"),
    ),
    Case(
        "a preset's path = ~nosuchuser/t.csv: listed as invalid",
        ["presets"],
        0,
        "no such user 'nosuchuser'",
        table_preset("tilde", rows_table(["1,2"]), path="~nosuchuser/t.csv", target="y"),
    ),
    Case("run ~nosuchuser/p.toml", ["run", "~nosuchuser/p.toml"], 2, "no such user 'nosuchuser'"),
    Case("delete '' --yes", ["delete", "", "--yes"], 2, "too short"),
    Case("delete _ --yes", ["delete", "_", "--yes"], 2, "too short"),
    Case("delete %%%% --yes (LIKE wildcards)", ["delete", "%%%%", "--yes"], 2, "no sweep"),
    Case("delete ____ --yes (LIKE wildcards)", ["delete", "____", "--yes"], 2, "no sweep"),
    Case("show ''", ["show", ""], 2, "too short"),
    Case(
        "report over a user's STUDY.md",
        ["report", "--no-run"],
        2,
        "was not written by `hypertui report`",
        user_notes,
        the_notes_are_kept,
    ),
    Case(
        "a table path that is a FIFO",
        ["run", "fifo-table"],
        2,
        "not a regular file",
        table_preset("fifo-table", fifo_table, path="t.csv", target="y"),
        process=True,  # a regression would block: the timeout ends it
    ),
    Case(
        "a table path linked to /dev/zero",
        ["run", "zero-table"],
        2,
        "not a regular file",
        table_preset("zero-table", endless_table, path="t.csv", target="y"),
        process=True,
    ),
    Case(
        "a table of 3 rows trains on a 1/1/1 split",
        ["run", "three", "--set", "epochs=1"],
        0,
        "finished",
        table_preset("three", rows_table(["1,2.5", "2,3.5", "3,4.5"]), path="t.csv", target="y"),
        three_rows_trained,
    ),
    Case(
        "a table of 2 rows",
        ["run", "two"],
        2,
        "at least 3 rows",
        table_preset("two", rows_table(["1,2.5", "2,3.5"]), path="t.csv", target="y"),
    ),
    Case(
        "a constant whole-number target",
        ["run", "const"],
        2,
        "holds one value (7) in every row",
        table_preset("const", rows_table([f"{i},7" for i in range(20)]), path="t.csv", target="y"),
    ),
    Case(
        "a text target of 2,000 classes",
        ["run", "ids"],
        2,
        "2,000 distinct values",
        table_preset(
            "ids", rows_table([f"{i},n{i}" for i in range(2000)]), path="t.csv", target="y"
        ),
    ),
    Case(
        "an image folder whose first image is not an image",
        ["run", "corrupt"],
        2,
        "0.png: not a readable image",
        image_preset("corrupt", corrupt_first_image),
    ),
    Case(
        "a 20000 x 20000 PNG among the images",
        ["run", "bomb"],
        2,
        "0.png: too large to load",
        image_preset("bomb", a_bomb_among_the_images),
    ),
    Case(
        "CIFAR-10 pickles of the wrong shape",
        ["run", "shape"],
        2,
        "images of shape (4, 1000)",
        image_preset("shape", cifar_py(cifar_batch(np.zeros((4, 1000), np.uint8), [0, 1, 2, 3]))),
    ),
    Case(
        "a CIFAR-10 pickle of protocol 9",
        ["run", "proto9"],
        2,
        "unsupported pickle protocol",
        image_preset("proto9", cifar_py(b"\x80\x09" + cifar_batch(np.zeros((4, 3072)), [0])[2:])),
    ),
    Case(
        "CIFAR-10 pickles with text labels",
        ["run", "textlabels"],
        2,
        "labels are not whole numbers",
        image_preset(
            "textlabels", cifar_py(cifar_batch(np.zeros((4, 3072), np.uint8), list("abcd")))
        ),
    ),
    Case(
        "CIFAR-10 pickles with fewer labels than images",
        ["run", "fewlabels"],
        2,
        "4 images but 3 labels",
        image_preset("fewlabels", cifar_py(cifar_batch(np.zeros((4, 3072), np.uint8), [0, 1, 2]))),
    ),
    Case(
        "CIFAR-10 binary labels of 200",
        ["run", "label200"],
        2,
        "label 200 is out of range",
        image_preset("label200", cifar_bin_labelled(200)),
    ),
    Case(
        "FashionMNIST labels of 12",
        ["run", "label12"],
        2,
        "label 12 is out of range",
        image_preset("label12", fashion_labelled(12)),
    ),
    Case("a 5,000-character --store", ["runs", "--store", "x" * 5000], 2, "too long"),
    Case(
        "a store whose schema version is -5",
        ["runs"],
        2,
        "is damaged: its schema version is -5",
        schema_version_minus_5,
        schema_version_back,
    ),
    Case(
        "pause a sweep whose runner was just killed (a zombie)",
        ["pause", SWEEP],
        2,
        f"sweep {SWEEP} is not running (it is interrupted)",
        a_runner_just_killed,
        reap_the_runner,
    ),
    Case(
        "an overwritten page of the runs table: runs",
        ["runs"],
        2,
        ".recover",
        damaged_store(page_of="runs"),
        store_put_back,
    ),
    Case(
        "an overwritten page of the runs table: runs SWEEP",
        ["runs", SWEEP],
        2,
        "is damaged",
        damaged_store(page_of="runs"),
        store_put_back,
    ),
    Case(
        "an overwritten page of the runs table: show",
        ["show", "0001r001"],
        2,
        ".recover",
        damaged_store(page_of="runs"),
        store_put_back,
    ),
    Case(
        "an overwritten page of the runs table: export",
        ["export", SWEEP, "--out", "-"],
        2,
        "is damaged",
        damaged_store(page_of="runs"),
        store_put_back,
    ),
    Case(
        "a run's analysis that is not UTF-8: export lists the other runs",
        ["export", SWEEP, "--out", "-"],
        0,
        "0001r011",
        damaged_store("UPDATE runs SET analysis=CAST(x'7bff22' AS TEXT) WHERE id='0001r000'"),
        store_put_back,
    ),
    Case(
        "a metric stored as text: runs SWEEP lists the other runs",
        ["runs", SWEEP],
        0,
        "0001r011",
        damaged_store("""UPDATE runs SET final='{"val_mse": "abc"}' WHERE id='0001r000'"""),
        store_put_back,
    ),
    Case(
        "a seed stored as text: runs SWEEP lists the other runs",
        ["runs", SWEEP],
        0,
        "0001r011",
        damaged_store("UPDATE runs SET seed='abc' WHERE id='0001r000'"),
        store_put_back,
    ),
    Case(
        "a seed stored as text: show names the damage",
        ["show", "0001r000"],
        2,
        "holds a damaged run: run 0001r000: unreadable (seed is 'abc', not a number)",
        damaged_store("UPDATE runs SET seed='abc' WHERE id='0001r000'"),
        store_put_back,
    ),
    Case(
        "a curve point that is not JSON: show draws the rest",
        ["show", "0001r000"],
        0,
        "4 curve points",
        damaged_store("UPDATE points SET metrics='{oops' WHERE run_id='0001r000' AND seq=0"),
        store_put_back,
    ),
    Case(
        "a sweep's creation time stored as text: runs lists it",
        ["runs"],
        0,
        SWEEP,
        damaged_store("UPDATE sweeps SET created_at='abc'"),
        store_put_back,
    ),
]


def fingerprint(home: Path) -> list[tuple]:
    store = Store(home / "runs.sqlite")
    try:
        return [(r.id, r.status, r.final, r.epochs_done) for r in store.runs(SWEEP)]
    finally:
        store.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault(case: Case, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    store = Store(home / "runs.sqlite")
    make_sweep(store, SWEEP)
    store.close()
    before = fingerprint(home)  # before the setup: some setups damage the store
    case.setup(home)
    argv = [a.replace("{home}", str(home)) for a in case.argv]
    if case.process:
        rc, stdout, stderr = in_a_process(argv, home, tmp_path)
    else:
        rc, stdout, stderr = in_this_process(argv, home, tmp_path, monkeypatch, capsys)
    output = stdout + stderr
    assert "Traceback" not in output, output
    assert rc == case.rc, output
    if case.rc == 2:
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("hypertui: "), stderr
        assert case.message in lines[0]
    else:
        assert case.message in " ".join(stdout.split()), stdout
    if case.check:
        case.check(home, stdout)
    assert fingerprint(home) == before  # nothing stored was lost or changed


def in_a_process(argv: list[str], home: Path, cwd: Path) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "HYPERTUI_HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "80",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "hypertui", *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
        cwd=cwd,
    )
    return done.returncode, done.stdout, done.stderr


def in_this_process(argv, home: Path, cwd: Path, monkeypatch, capsys) -> tuple[int, str, str]:
    """main(argv) as the command runs it; an exception that escapes it is a traceback the
    user would have seen, so it fails the case with its own."""
    monkeypatch.setenv("HYPERTUI_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.chdir(cwd)
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_the_suite_counts_its_cases():
    # README quotes this number ("N bad inputs and faults, 0 tracebacks")
    assert len(CASES) >= 77
