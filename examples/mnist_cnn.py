"""A plain PyTorch training script — data, model and loop written the usual way — that
hypertui watches with three lines (marked `# hypertui`).

    python examples/mnist_cnn.py --lr 1e-3 --seed 0     # train; watch it with `hypertui`
    hypertui run examples/sweep_mnist_cnn.toml --detach # sweep `main` over lr x 3 seeds

MNIST is read with torchvision from --data (default: $HYPERTUI_DATA, else ./data; a sweep
reads it from there too); it is downloaded there when it is missing and the machine can
reach the internet.
"""

import argparse
import os
import time

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Subset

import hypertui  # hypertui


class Net(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc = nn.Linear(2 * width * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def loaders(config):
    transform = torchvision.transforms.Compose(
        [torchvision.transforms.ToTensor(), torchvision.transforms.Normalize((0.1307,), (0.3081,))]
    )
    root = config.get("data") or os.environ.get("HYPERTUI_DATA", "data")
    train = torchvision.datasets.MNIST(root, train=True, download=True, transform=transform)
    train = Subset(train, range(config["train_samples"]))
    val = torchvision.datasets.MNIST(root, train=False, download=True, transform=transform)
    val = Subset(val, range(2000))
    generator = torch.Generator().manual_seed(config["seed"])
    return (
        DataLoader(train, batch_size=config["batch_size"], shuffle=True, generator=generator),
        DataLoader(val, batch_size=500),
    )


def evaluate(model, loader):
    model.eval()
    loss = correct = n = 0
    with torch.no_grad():
        for x, y in loader:
            out = model(x)
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            n += len(y)
    model.train()
    return loss / n, correct / n


def main(config, run):
    """One training run. hypertui sweeps call it as main(config, run)."""
    torch.manual_seed(config["seed"])
    train_loader, val_loader = loaders(config)
    model = Net(config["width"])
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    for epoch in range(config["epochs"]):
        start, total, batches = time.time(), 0.0, 0
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
        val_loss, val_acc = evaluate(model, val_loader)
        print(f"epoch {epoch}: val_acc {val_acc:.4f} ({time.time() - start:.1f} s)")
        run.log(  # hypertui
            {"train_loss": total / batches, "val_loss": val_loss, "val_acc": val_acc},
            epoch=epoch,
        )
    return val_acc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-samples", type=int, default=12_000)
    parser.add_argument("--data", default=os.environ.get("HYPERTUI_DATA", "data"))
    config = vars(parser.parse_args())
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    with hypertui.init(name="mnist-cnn", config=config, metric="val_acc") as run:  # hypertui
        main(config, run)
