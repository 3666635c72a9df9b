"""How much memory a run needs, estimated from its config before anything is built.

`hidden = [100000, 100000]` is ten billion parameters: building it ended in an
out-of-memory traceback. A model past `MAX_PARAMETERS` is refused when the config is
made; a smaller one that still does not fit the device's free memory fails its run with
the estimate as the reason (`training.devices.check_fits`), before a byte is allocated.
"""

from __future__ import annotations

MAX_PARAMETERS = 500_000_000  # 2 GB of fp32 weights, 8 GB with gradients and Adam's state
FLOAT = 4  # bytes; weights, gradients and optimizer state are fp32 (bf16 is autocast only)
EVAL_ROWS = 2048  # rows evaluated at once (hypertui.engine.training.losses.EVAL_CHUNK)
# Floats of activations a population evaluates at once (64 MiB), whatever its size: its
# rows go through in chunks of EVAL_ELEMENTS // (members x widest) (training/population.py).
EVAL_ELEMENTS = 2**24
IMAGE_SIDE, N_CLASSES = 28, 10


def image(config) -> tuple[int, int]:
    """(channels, side) of one input image: MNIST's 1 x 28, or an image folder's
    `image_size` with 3 channels (an upper bound: the folder is not read here)."""
    return (3, config.image_size) if config.problem == "images" else (1, IMAGE_SIDE)


def layer_sizes(config) -> list[tuple[int, int]]:
    """(fan in, fan out) of every weight layer; a 3x3 convolution counts 9 * c_in in."""
    c_in, side = image(config)
    if config.model == "cnn":
        sizes = []
        for c in config.channels:
            sizes.append((9 * c_in, c))
            c_in, side = c, side // 2
        return [*sizes, (c_in * side * side, N_CLASSES)]
    images = config.problem in ("mnist", "images")
    n_in = c_in * side * side if images else len(config.features)
    n_out = N_CLASSES if config.problem == "mnist" else 2 if config.loss == "gaussian_nll" else 1
    widths = [n_in, *config.hidden, n_out]
    return list(zip(widths, widths[1:], strict=False))


def parameters(config) -> int:
    return sum(n_in * n_out + n_out for n_in, n_out in layer_sizes(config))


def estimate_bytes(config, members: int = 1, rows: int | None = None) -> int:
    """Each member's weights, gradients, optimizer state and the activations of its batch,
    then an evaluation's activations: EVAL_ROWS rows of a single run, or a population's
    EVAL_ELEMENTS floats (it evaluates in chunks of that size however many members it has).

    `rows`, the largest split's size once the data is loaded: no batch and no evaluation
    chunk holds more (batch_size 4096 on a 300-row table was counted as 4096 rows)."""
    states = {"sgd": 1 if config.momentum else 0, "rmsprop": 2 if config.momentum else 1}
    per_param = FLOAT * (2 + states.get(config.optimizer, 2))  # adam, adamw: two moments
    widths = sum(n_out for _, n_out in layer_sizes(config))
    if config.model == "cnn":  # feature maps: channels x side^2, before pooling
        side = image(config)[1]
        widths = sum(c * (side >> i) ** 2 for i, c in enumerate(config.channels))
    batch_rows, eval_rows = config.batch_size, EVAL_ROWS
    if rows is not None:
        batch_rows, eval_rows = min(batch_rows, rows), min(eval_rows, rows)
    batch = 2 * batch_rows * widths * FLOAT  # kept for backward: count it twice
    evaluation = eval_rows * widths if members == 1 else EVAL_ELEMENTS
    return members * (parameters(config) * per_param + batch) + evaluation * FLOAT


def too_big(config) -> str:
    """A refusal for a model no machine here should build, or ""."""
    n = parameters(config)
    if n <= MAX_PARAMETERS:
        return ""
    field = "channels" if config.model == "cnn" else "hidden"
    return (
        f"{field} = {list(getattr(config, field))} makes a model of {n:,} parameters "
        f"(about {estimate_bytes(config) / 2**30:,.0f} GiB to train); "
        f"the limit is {MAX_PARAMETERS:,}"
    )
