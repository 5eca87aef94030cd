"""Augmentation + dropout + L2 on a small CNN: does regularization help on a tiny data set?

scikit-learn's handwritten digits (ships inside the package, no download), upsampled
from 8x8 to 32x32 greyscale, with a deliberately small training split (300 images) and
separate validation (300) and test (the remaining 1197) splits. The same small CNN is
trained in four settings:

1. ``none``     - no regularization (it overfits: ~100% training accuracy);
2. ``aug``      - every epoch's training images are augmented by a running ``augsvc``
                  service and streamed to the trainer (a new epoch number each epoch);
3. ``drop+l2``  - dropout between the dense layers + L2 on the kernel weights
                  (``augsvc_client.regularization.set_dropout`` / ``WeightPenalty``);
4. ``all``      - all three;
5. ``all+mix``  - (with ``--mix``) all three plus MixUp / CutMix with label smoothing,
                  mixed in the training step by ``augsvc_client.regularization.Mixup``
                  (keyed by epoch and dataset index, so a run mixes the same way every
                  time) and trained with ``SoftTargetCrossEntropy``; its L2 / dropout are
                  setting 4's choice and its mixing strength is chosen on validation.

The dropout rate and L2 strength of settings 3 and 4 are chosen on the VALIDATION split
with a small grid (mean validation accuracy over the seeds); the test split is only
used for the reported numbers. The script starts ``augsvc serve`` itself on a free
127.0.0.1 port (``--port N`` for a fixed one), writes the training images as PNG files
into an ImageFolder tree under a temporary data root, registers that dataset and the
augmentation recipe, and stops the service at exit.

    python examples/train_cnn.py            # full run (3 seeds, full grid), a few minutes
    python examples/train_cnn.py --quick    # shortened smoke run (1 seed, tiny grid)
    python examples/train_cnn.py --mix      # adds setting 5 (MixUp / CutMix)
    python examples/train_cnn.py --port 8123  # its service on 127.0.0.1:8123

Writes ``results.json``, ``results.md`` and ``learning_curves.png`` to ``--out``
(default ``examples/out/``). Needs the ``example`` extra (scikit-learn, matplotlib).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
import torch
from augsvc_client import Client
from augsvc_client.regularization import Mixup, SoftTargetCrossEntropy, WeightPenalty, set_dropout
from PIL import Image
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
DATASET = "digits-train"
RECIPE_NAME = "digits-train"
#: Mild geometric jitter that keeps a digit a digit: no flips (a mirrored 2 is not a 2),
#: rotation up to 10 degrees, shifts up to 8% of the size, 0.9-1.1x scale, 5 degrees of
#: shear, all composed into one warp back to 32x32. Digits are light strokes on black, so
#: the constant fill 0 matches the background. (Picked by hand among three candidates on
#: VALIDATION accuracy during development; the stronger ones, with an area crop or 15
#: degrees / 12% shifts, did worse: the 8x8 digits fill their frame, so crops cut strokes.)
RECIPE = {
    "ops": [
        {"op": "affine", "degrees": 10, "translate": [0.08, 0.08], "scale": [0.9, 1.1], "shear": 5},
    ],
    "output": {"channels": 1, "size": [32, 32]},
}
SETTINGS = ("none", "aug", "drop+l2", "all")
MIX_SETTING = "all+mix"
SETTING_TITLES = {
    "none": "1. no regularization",
    "aug": "2. augmentation (streamed)",
    "drop+l2": "3. dropout + L2",
    "all": "4. augmentation + dropout + L2",
    MIX_SETTING: "5. augmentation + dropout + L2 + MixUp/CutMix",
}
#: Setting 5's candidates (timm's Mixup parameters), chosen on validation accuracy:
#: light MixUp alone, and light MixUp or CutMix half of the time each (timm's switch).
MIX_GRID: dict[str, dict[str, float]] = {
    "mixup0.2": {"mixup_alpha": 0.2, "cutmix_alpha": 0.0},
    "mixup0.2+cutmix1.0": {"mixup_alpha": 0.2, "cutmix_alpha": 1.0, "switch_prob": 0.5},
}
LABEL_SMOOTHING = 0.1
NUM_CLASSES = 10
IMAGE_SIZE = 32


@dataclass(frozen=True)
class Config:
    epochs: int = 40
    seeds: tuple[int, ...] = (0, 1, 2)
    l2_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    dropout_grid: tuple[float, ...] = (0.25, 0.5)
    #: "grid": setting 4 searches the same grid with augmentation on;
    #: "reuse": setting 4 takes setting 3's choice (half the runs).
    all_selection: str = "grid"
    batch_size: int = 32
    lr: float = 3e-3
    n_train: int = 300
    n_val: int = 300
    split_seed: int = 20240601
    #: Run setting 5 (MixUp / CutMix on top of setting 4) over these MIX_GRID cells.
    mix_grid: tuple[str, ...] = ()

    @classmethod
    def quick(cls) -> Config:
        return cls(
            epochs=10, seeds=(0,), l2_grid=(1e-3,), dropout_grid=(0.25, 0.5),
            all_selection="reuse",
        )  # fmt: skip

    @property
    def settings(self) -> tuple[str, ...]:
        return (*SETTINGS, MIX_SETTING) if self.mix_grid else SETTINGS


# --- data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Splits:
    x_train: np.ndarray  # uint8 (N, 1, 32, 32)
    y_train: np.ndarray  # int64 (N,)
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_splits(config: Config) -> Splits:
    """Digits upsampled to 32x32 uint8 greyscale, split stratified with a fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    small = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    big = np.stack(
        [
            np.asarray(
                Image.fromarray(img).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
            )
            for img in small
        ]
    )[:, None]
    labels = digits.target.astype(np.int64)
    idx = np.arange(len(labels))
    idx_train, idx_rest = train_test_split(
        idx, train_size=config.n_train, stratify=labels, random_state=config.split_seed
    )
    idx_val, idx_test = train_test_split(
        idx_rest,
        train_size=config.n_val,
        stratify=labels[idx_rest],
        random_state=config.split_seed + 1,
    )
    return Splits(
        big[idx_train], labels[idx_train], big[idx_val], labels[idx_val],
        big[idx_test], labels[idx_test],
    )  # fmt: skip


def write_image_folder(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """One PNG per image in ``folder/<class>/``; class folders sort to labels 0..9."""
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        class_dir = folder / str(int(label))
        class_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0]).save(class_dir / f"{i:05d}.png")


# --- the service ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _augsvc_command() -> list[str]:
    script = Path(sys.executable).with_name("augsvc")
    if script.exists():
        return [str(script)]
    if found := shutil.which("augsvc"):
        return [found]
    return [sys.executable, "-m", "augsvc.cli"]


@contextlib.contextmanager
def running_service(
    data_root: Path, log_path: Path, timeout_s: float = 60.0, port: int = 0
) -> Iterator[str]:
    """Start ``augsvc serve`` on 127.0.0.1:``port`` (0: a free port) with ``data_root`` as
    its only data root; yield its base URL once /healthz answers; stop it on exit (also
    on errors/Ctrl-C)."""
    port = port or _free_port()
    env = dict(os.environ)
    env.pop("AUGSVC_REDIS_URL", None)  # the embedded in-memory store is all we need
    env.pop("AUGSVC_API_KEYS", None)
    env["AUGSVC_DATA_ROOTS"] = str(data_root)
    # One engine thread: the trainer uses the other core(s) while the service works ahead.
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [*_augsvc_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--log-level", "warning"]
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"augsvc serve exited with {process.returncode}; log:\n"
                    + log_path.read_text(errors="replace")[-3000:]
                )
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"augsvc serve did not answer /healthz in {timeout_s:.0f}s")
            time.sleep(0.2)
        yield base_url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def stream_epoch(
    client: Client, seed: int, epoch: int, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of the training set, augmented by the service: (uint8 N,1,H,W, labels,
    sample keys for Mixup).

    The service shuffles (a permutation fixed by seed and epoch) and augments every
    sample with draws keyed by (recipe, seed, epoch, position), so every epoch gets new
    augmentations and a run is reproducible.
    """
    for batch in client.stream(DATASET, RECIPE_NAME, seed=seed, epoch=epoch, batch_size=batch_size):
        yield batch.images, batch.labels, sample_keys(epoch, batch.indices)


# --- model and training --------------------------------------------------------------------


class SmallCNN(nn.Module):
    """conv(1->8)-relu-pool, conv(8->16)-relu-pool, dense(1024->128)-relu-dropout-dense(10).

    The dropout layer is always there (rate 0 = identity); ``set_dropout`` sets its rate.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 8 * 8, 128),
            nn.ReLU(),
            nn.Dropout(0.0),
            nn.Linear(128, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def sample_keys(epoch: int, indices: np.ndarray | torch.Tensor) -> np.ndarray:
    """One key per (epoch, dataset index): what Mixup draws each sample's mixing from."""
    return (np.int64(epoch) << np.int64(32)) + np.asarray(indices, dtype=np.int64)


def to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(images).float().div_(255.0)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
    return correct / len(x)


@dataclass
class RunResult:
    setting: str
    seed: int
    l2: float
    dropout: float
    train_acc: float
    val_acc: float
    test_acc: float
    val_curve: list[float] = field(default_factory=list)
    train_curve: list[float] = field(default_factory=list)
    seconds: float = 0.0
    mix: str = ""


@dataclass(frozen=True)
class Tensors:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @classmethod
    def of(cls, s: Splits) -> Tensors:
        y = torch.as_tensor
        return cls(
            to_input(s.x_train), y(s.y_train), to_input(s.x_val), y(s.y_val),
            to_input(s.x_test), y(s.y_test),
        )  # fmt: skip


Batch = tuple[torch.Tensor, torch.Tensor, np.ndarray]  # inputs, labels, sample keys
EpochBatches = Callable[[int, int], Iterator[Batch]]


def local_epoch(data: Tensors, batch_size: int) -> EpochBatches:
    """The un-augmented training set, reshuffled each epoch (seeded)."""

    def batches(seed: int, epoch: int) -> Iterator[Batch]:
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(len(data.y_train), generator=gen)
        for i in range(0, len(order), batch_size):
            take = order[i : i + batch_size]
            yield data.x_train[take], data.y_train[take], sample_keys(epoch, take)

    return batches


Streamed = tuple[np.ndarray, np.ndarray, np.ndarray]


class StreamedEpochs:
    """Training batches streamed from the service, one epoch ahead.

    While the trainer works through epoch ``e``, a background thread already receives
    epoch ``e + 1`` from the service (the service does all of the augmentation; this
    only overlaps its work and the transfer with training). ``frames`` / ``samples``
    count what the trainer consumed (reported in results.json, so a run shows it really
    trained on the stream).
    """

    def __init__(self, client: Client, batch_size: int, epochs: int) -> None:
        self.client = client
        self.batch_size = batch_size
        self.epochs = epochs
        self.frames = 0
        self.samples = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="stream-prefetch")
        self._ahead: dict[tuple[int, int], Future[list[Streamed]]] = {}

    def _fetch(self, seed: int, epoch: int) -> list[Streamed]:
        return list(stream_epoch(self.client, seed, epoch, self.batch_size))

    def _submit(self, seed: int, epoch: int) -> Future[list[Streamed]]:
        return self._pool.submit(self._fetch, seed, epoch)

    def __call__(self, seed: int, epoch: int) -> Iterator[Batch]:
        current = self._ahead.pop((seed, epoch), None) or self._submit(seed, epoch)
        if epoch + 1 < self.epochs:
            self._ahead[(seed, epoch + 1)] = self._submit(seed, epoch + 1)
        for images, labels, keys in current.result():
            self.frames += 1
            self.samples += len(labels)
            yield to_input(images), torch.as_tensor(labels), keys

    def close(self) -> None:
        for future in self._ahead.values():
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


def train_one(
    setting: str,
    seed: int,
    l2: float,
    dropout: float,
    data: Tensors,
    epoch_batches: EpochBatches,
    config: Config,
    log: Callable[[str], None] | None = None,
    mix: str = "",
) -> RunResult:
    started = time.perf_counter()
    torch.manual_seed(seed)
    model = SmallCNN()
    set_dropout(model, dropout)
    penalty = WeightPenalty(model, l2=l2)  # default selection: Linear/Conv weights only
    # MixUp / CutMix in the same step as dropout and the L2 penalty; its draws come from
    # (seed, sample keys), so the run mixes the same way however batches are formed.
    mixup = (
        Mixup(**MIX_GRID[mix], mode="elem", label_smoothing=LABEL_SMOOTHING,
              num_classes=NUM_CLASSES, seed=seed)
        if mix else None
    )  # fmt: skip
    soft_loss = SoftTargetCrossEntropy()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    # Cosine decay to 0 over the run: the last epoch's model is a settled one, so the
    # final-epoch accuracies compared below are not one noisy step of a constant-lr walk.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    val_curve, train_curve = [], []
    for epoch in range(config.epochs):
        model.train()
        for images, labels, keys in epoch_batches(seed, epoch):
            if mixup is not None:
                mixed, targets = mixup(images, labels, keys)
                loss = soft_loss(model(mixed), targets)
            else:
                loss = F.cross_entropy(model(images), labels)
            if l2 > 0:
                loss = loss + penalty()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
        val_curve.append(accuracy(model, data.x_val, data.y_val))
        train_curve.append(accuracy(model, data.x_train, data.y_train))
    result = RunResult(
        setting=setting,
        seed=seed,
        l2=l2,
        dropout=dropout,
        train_acc=train_curve[-1],  # clean (un-augmented) training images, eval mode
        val_acc=val_curve[-1],
        test_acc=accuracy(model, data.x_test, data.y_test),
        val_curve=val_curve,
        train_curve=train_curve,
        seconds=time.perf_counter() - started,
        mix=mix,
    )
    if log is not None:
        log(
            f"    {setting:8s} seed {seed} l2={l2:g} p={dropout:g}{' ' + mix if mix else ''}:"
            f" train {result.train_acc:.3f}"
            f" val {result.val_acc:.3f} test {result.test_acc:.3f} ({result.seconds:.1f} s)"
        )
    return result


# --- experiment ----------------------------------------------------------------------------


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def grid_search(
    setting: str,
    data: Tensors,
    epoch_batches: EpochBatches,
    config: Config,
    log: Callable[[str], None],
) -> tuple[tuple[float, float], dict[tuple[float, float], list[RunResult]]]:
    """Every (l2, p) of the grid over all seeds; pick the best mean VALIDATION accuracy.

    Returns the choice and every cell's runs. The chosen cell's runs are the ones
    reported: the test split played no part in the choice.
    """
    cells: dict[tuple[float, float], list[RunResult]] = {}
    for l2 in config.l2_grid:
        for p in config.dropout_grid:
            cells[(l2, p)] = [
                train_one(setting, s, l2, p, data, epoch_batches, config, log) for s in config.seeds
            ]
            val = mean_std([r.val_acc for r in cells[(l2, p)]])
            log(f"  [{setting}] grid l2={l2:g} p={p:g}: val {val[0]:.4f} ± {val[1]:.4f}")
    # Ties (equal mean val accuracy) go to the first cell in grid order (the weaker L2).
    best = max(cells, key=lambda cell: statistics.fmean(r.val_acc for r in cells[cell]))
    return best, cells


def mix_search(
    l2_p: tuple[float, float],
    data: Tensors,
    epoch_batches: EpochBatches,
    config: Config,
    log: Callable[[str], None],
) -> tuple[str, dict[str, list[RunResult]]]:
    """Setting 5: every mixing candidate on top of setting 4's choice, over all seeds;
    pick the best mean VALIDATION accuracy (ties go to the first, the lighter one)."""
    l2, p = l2_p
    cells: dict[str, list[RunResult]] = {}
    for mix in config.mix_grid:
        cells[mix] = [
            train_one(MIX_SETTING, s, l2, p, data, epoch_batches, config, log, mix=mix)
            for s in config.seeds
        ]
        val = mean_std([r.val_acc for r in cells[mix]])
        log(f"  [{MIX_SETTING}] {mix}: val {val[0]:.4f} ± {val[1]:.4f}")
    best = max(cells, key=lambda cell: statistics.fmean(r.val_acc for r in cells[cell]))
    return best, cells


def grid_table(cells: dict[tuple[float, float], list[RunResult]], best: tuple) -> list[dict]:
    return [
        {"l2": l2, "dropout": p, **summarize(runs), "chosen": (l2, p) == best}
        for (l2, p), runs in cells.items()
    ]


def summarize(runs: list[RunResult]) -> dict:
    out: dict = {}
    for key in ("train_acc", "val_acc", "test_acc"):
        mean, std = mean_std([getattr(r, key) for r in runs])
        out[key] = {"mean": mean, "std": std, "per_seed": [getattr(r, key) for r in runs]}
    return out


def markdown_table(results: dict) -> str:
    lines = [
        "| setting | L2 λ | dropout p | train acc | val acc | test acc |",
        "|---|---|---|---|---|---|",
    ]
    for name in results["settings"]:
        row = results["settings"][name]

        def cell(key: str, row: dict = row) -> str:
            return f"{row[key]['mean']:.3f} ± {row[key]['std']:.3f}"

        lam = f"{row['l2']:g}" if row["l2"] else "-"
        p = f"{row['dropout']:g}" if row["dropout"] else "-"
        title = SETTING_TITLES[name] + (f" ({row['mix']})" if row.get("mix") else "")
        lines.append(
            f"| {title} | {lam} | {p} | "
            f"{cell('train_acc')} | {cell('val_acc')} | {cell('test_acc')} |"
        )
    return "\n".join(lines)


def plot_curves(results: dict, runs: dict[str, list[RunResult]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for name in runs:
        for ax, key in zip(axes, ("val_curve", "train_curve"), strict=True):
            curves = np.array([getattr(r, key) for r in runs[name]])
            mean, std = curves.mean(0), curves.std(0)
            epochs = np.arange(1, len(mean) + 1)
            (line,) = ax.plot(epochs, mean, label=SETTING_TITLES[name], lw=1.6)
            if len(curves) > 1:
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    n_seeds = len(results["config"]["seeds"])
    axes[0].set_title(f"validation accuracy (mean over {n_seeds} seed(s))")
    axes[1].set_title("training accuracy (clean images, eval mode)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(0.5, 1.005)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(
        f"digits 32x32, {results['config']['n_train']} training images: "
        "augmentation (augsvc stream) vs dropout + L2"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_experiment(
    config: Config, out_dir: Path, log: Callable[[str], None], port: int = 0
) -> dict:
    started = time.perf_counter()
    splits = load_splits(config)
    data = Tensors.of(splits)
    log(
        f"digits 32x32: train {len(splits.y_train)}, val {len(splits.y_val)}, "
        f"test {len(splits.y_test)}; {config.epochs} epochs, seeds {list(config.seeds)}"
    )
    runs: dict[str, list[RunResult]] = {}
    chosen: dict[str, tuple[float, float]] = {}
    grids: dict[str, list[dict]] = {}
    grid_runs: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="augsvc-digits-") as tmp:
        data_root = Path(tmp) / "data"
        write_image_folder(data_root / DATASET, splits.x_train, splits.y_train)
        out_dir.mkdir(parents=True, exist_ok=True)
        with (
            running_service(data_root, out_dir / "augsvc-serve.log", port=port) as base_url,
            Client(base_url) as client,
            contextlib.closing(
                StreamedEpochs(client, config.batch_size, config.epochs)
            ) as streamed,
        ):
            log(f"augsvc serving at {base_url} (data root {data_root})")
            client.put_dataset(DATASET, "folder", DATASET)
            recipe = client.put_recipe(RECIPE_NAME, RECIPE)
            log(f"recipe {RECIPE_NAME}@{recipe['version']} {recipe['digest'][:19]}")
            local = local_epoch(data, config.batch_size)

            for setting, batches in (("none", local), ("aug", streamed)):
                runs[setting] = [
                    train_one(setting, s, 0.0, 0.0, data, batches, config, log)
                    for s in config.seeds
                ]
            for setting, batches in (("drop+l2", local), ("all", streamed)):
                if setting == "all" and config.all_selection == "reuse":
                    l2, p = chosen["drop+l2"]
                    chosen[setting] = (l2, p)
                    runs[setting] = [
                        train_one(setting, s, l2, p, data, batches, config, log)
                        for s in config.seeds
                    ]
                    continue
                chosen[setting], cells = grid_search(setting, data, batches, config, log)
                runs[setting] = cells[chosen[setting]]
                grids[setting] = grid_table(cells, chosen[setting])
                grid_runs += [r for rs in cells.values() for r in rs]
            log(f"  chosen on validation: drop+l2 {chosen['drop+l2']}, all {chosen['all']}")
            if config.mix_grid:
                mix_choice, mix_cells = mix_search(chosen["all"], data, streamed, config, log)
                chosen[MIX_SETTING] = chosen["all"]
                runs[MIX_SETTING] = mix_cells[mix_choice]
                grids[MIX_SETTING] = [
                    {"mix": cell, **summarize(rs), "chosen": cell == mix_choice}
                    for cell, rs in mix_cells.items()
                ]
                grid_runs += [r for rs in mix_cells.values() for r in rs]

    results: dict = {
        "dataset": "sklearn digits, 8x8 upsampled to 32x32 (bilinear), greyscale uint8",
        "config": asdict(config),
        "recipe": RECIPE,
        "selection": {
            "drop+l2": "grid on validation accuracy (mean over seeds)",
            "all": (
                "grid on validation accuracy with augmentation on (mean over seeds)"
                if config.all_selection == "grid"
                else "reused setting 3's choice"
            ),
            MIX_SETTING: "setting 4's L2 / dropout; mixing chosen on validation accuracy",
        },
        "grids": grids,
        "settings": {},
    }
    for name in config.settings:
        l2, p = chosen.get(name, (0.0, 0.0))
        results["settings"][name] = {
            "title": SETTING_TITLES[name],
            "l2": l2,
            "dropout": p,
            "mix": runs[name][0].mix,
            **summarize(runs[name]),
            "val_curve_mean": np.mean([r.val_curve for r in runs[name]], axis=0).tolist(),
        }
    ungridded = [name for name in config.settings if name not in grids]
    reported = [r for name in ungridded for r in runs[name]]
    results["runs"] = [asdict(r) for r in reported + grid_runs]
    results["train_seconds"] = sum(r.seconds for r in reported + grid_runs)
    results["streamed"] = {"frames": streamed.frames, "samples": streamed.samples}
    results["wall_seconds"] = time.perf_counter() - started
    results["table_markdown"] = markdown_table(results)

    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    (out_dir / "results.md").write_text(results["table_markdown"] + "\n")
    plot_curves(results, runs, out_dir / "learning_curves.png")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, few epochs, tiny grid")
    parser.add_argument("--out", type=Path, default=ROOT / "examples" / "out")
    parser.add_argument("--epochs", type=int, default=None, help="override the epoch count")
    parser.add_argument(
        "--port", type=int, default=0,
        help="the port of the augsvc serve it starts on 127.0.0.1 (0 or absent: a free one)",
    )  # fmt: skip
    parser.add_argument(
        "--mix",
        action="store_true",
        help="add setting 5: MixUp / CutMix (SDK Mixup) on top of setting 4",
    )
    parser.add_argument(
        "--all-selection",
        choices=["grid", "reuse"],
        default=None,
        help="setting 4: search the grid with augmentation on (default) or reuse 3's choice",
    )
    args = parser.parse_args(argv)

    config = Config.quick() if args.quick else Config()
    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.all_selection is not None:
        overrides["all_selection"] = args.all_selection
    if args.mix:  # the quick run tries the heavier candidate only
        overrides["mix_grid"] = tuple(MIX_GRID)[-1:] if args.quick else tuple(MIX_GRID)
    if overrides:
        config = Config(**{**asdict(config), **overrides})

    torch.set_num_threads(2)
    # Ctrl-C raises KeyboardInterrupt; make SIGTERM unwind the same way so the service stops.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    def log(message: str) -> None:
        print(message, flush=True)

    try:
        results = run_experiment(config, args.out, log, port=args.port)
    except KeyboardInterrupt:
        print("interrupted (the service was stopped)", file=sys.stderr)
        return 130
    log("")
    log(results["table_markdown"])
    log("")
    log(f"setting 4 selection: {results['selection']['all']}")
    log(f"wrote {args.out}/results.json, results.md, learning_curves.png")
    log(f"wall time {results['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
