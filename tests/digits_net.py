"""A small reference CNN with BatchNorm + ReLU blocks, trained on scikit-learn's digits.

The digits set (1797 grey 8x8 images of the digits 0-9, 16 intensity levels) ships inside
scikit-learn, so the network trains offline in a few seconds on one CPU core.  It exists to
give the analysis tools *real* activations: every ReLU sits right after a BatchNorm, which is
the setting where HWGQ (Cai et al. 2017) argues that the pre-activation is close to
$\\mathcal{N}(0, 1)$ per channel and the ReLU output close to the half-wave Gaussian

$$ p(x) = \\tfrac12\\,\\delta(x) + \\phi(x)\\,\\mathbf{1}[x > 0]. $$

Layout (``width`` = $w$, input $1\\times 8\\times 8$)::

    conv1 (1->w, 3x3)  bn1  relu1                 8x8
    conv2 (w->w, 3x3)  bn2  relu2  pool2          8x8 -> 4x4
    conv3 (w->2w, 3x3) bn3  relu3  pool3          4x4 -> 2x2
    flatten  fc4 (8w->32)  bn4 (BatchNorm1d)  relu4
    fc5 (32->10)

Convolutions and ``fc4`` carry no bias (the BatchNorm after them has one).  With $w = 16$
the model has about 11.7 k parameters; its ``torch.save`` state dict is about 55 KB.

torch and scikit-learn are imported lazily.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lloydmax.errors import InvalidInputError, MissingDependencyError

__all__ = ["DigitsData", "TrainedDigitsNet", "load_digits_split", "make_digits_net",
           "train_digits_net", "accuracy"]


def _import_torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "the digits network needs PyTorch: pip install 'lloydmax[torch]'") from None
    return torch


@dataclass(frozen=True)
class DigitsData:
    """A fixed train / test split of the scikit-learn digits.

    Images are float32 arrays of shape ``(n, 1, 8, 8)`` scaled to $[0, 1]$ (pixel / 16);
    labels are int64 arrays of shape ``(n,)``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    seed: int


@dataclass(frozen=True)
class TrainedDigitsNet:
    """The result of :func:`train_digits_net`: the model (in eval mode) and its accuracies."""

    model: object
    train_accuracy: float
    test_accuracy: float
    epochs: int
    seed: int
    data: DigitsData


def load_digits_split(seed: int = 0, test_size: float = 0.25) -> DigitsData:
    """Load scikit-learn's digits and split them, stratified by class, with a fixed seed.

    Parameters
    ----------
    seed : int
        ``random_state`` of :func:`sklearn.model_selection.train_test_split`.
    test_size : float
        Fraction held out for testing, in (0, 1).

    Returns
    -------
    DigitsData
    """
    if not 0.0 < float(test_size) < 1.0:
        raise InvalidInputError(f"test_size must lie in (0, 1), got {test_size!r}")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise MissingDependencyError(
            "the digits data set needs scikit-learn: pip install scikit-learn") from None
    digits = load_digits()
    images = (digits.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_size, random_state=seed, stratify=labels)
    return DigitsData(np.ascontiguousarray(x_train), y_train,
                      np.ascontiguousarray(x_test), y_test, int(seed))


def make_digits_net(width: int = 16):
    """Build the (untrained) reference network as a named ``torch.nn.Sequential``.

    The module names (``conv1``, ``bn1``, ``relu1``, ...) are what the collectors report.

    Parameters
    ----------
    width : int
        Channels of the first two convolutions; the third has ``2 * width``.
    """
    torch = _import_torch()
    from collections import OrderedDict

    nn = torch.nn
    width = int(width)
    if width < 1:
        raise InvalidInputError(f"width must be a positive integer, got {width}")
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, width, 3, padding=1, bias=False)),
        ("bn1", nn.BatchNorm2d(width)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(width, width, 3, padding=1, bias=False)),
        ("bn2", nn.BatchNorm2d(width)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),
        ("conv3", nn.Conv2d(width, 2 * width, 3, padding=1, bias=False)),
        ("bn3", nn.BatchNorm2d(2 * width)),
        ("relu3", nn.ReLU()),
        ("pool3", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc4", nn.Linear(2 * width * 4, 32, bias=False)),
        ("bn4", nn.BatchNorm1d(32)),
        ("relu4", nn.ReLU()),
        ("fc5", nn.Linear(32, 10)),
    ]))


def accuracy(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 512) -> float:
    """Fraction of ``images`` whose arg-max logit equals ``labels`` (model run in eval mode)."""
    torch = _import_torch()
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                logits = model(torch.from_numpy(np.ascontiguousarray(
                    images[start:start + batch_size], dtype=np.float32)))
                pred = logits.argmax(dim=1).numpy()
                correct += int((pred == labels[start:start + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / len(images)


def train_digits_net(*, seed: int = 0, epochs: int = 8, width: int = 16,
                     batch_size: int = 32, lr: float = 0.01,
                     data: DigitsData | None = None) -> TrainedDigitsNet:
    """Train the reference network with Adam and cross-entropy, reproducibly.

    Weight initialisation and batch order come from ``seed``.  The global torch RNG is
    forked (``torch.random.fork_rng``) so the caller's random state is left as it was;
    deterministic algorithms and a single intra-op thread are set for the duration of the
    call only, so the weights do not depend on the machine's core count.
    The learning rate falls linearly to zero over the last half of the epochs.

    Parameters
    ----------
    seed : int
        Seed for initialisation and shuffling (and for the data split when ``data`` is None).
    epochs, width, batch_size, lr
        Training schedule and network width.
    data : DigitsData, optional
        A split from :func:`load_digits_split`; by default ``load_digits_split(seed)``.

    Returns
    -------
    TrainedDigitsNet
        The trained model in eval mode, with train and held-out accuracies.
    """
    torch = _import_torch()
    if int(epochs) < 1 or int(batch_size) < 1:
        raise InvalidInputError("epochs and batch_size must be positive integers")
    if data is None:
        data = load_digits_split(seed)
    x_train = torch.from_numpy(data.x_train)
    y_train = torch.from_numpy(data.y_train)
    n = len(x_train)
    steps_per_epoch = -(-n // batch_size)
    total_steps = steps_per_epoch * int(epochs)

    def lr_factor(step):
        # constant for the first half, then linear decay: a late low rate settles the
        # BatchNorm running statistics and the weights without a validation loop.
        half = total_steps / 2
        return 1.0 if step < half else max(0.0, (total_steps - step) / half)

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    n_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    # one intra-op thread: the float reductions then run in the same order on every
    # machine (the weights would otherwise depend on the core count), and these tiny
    # batches gain nothing from threads that spin against other processes
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = make_digits_net(width)
            generator = torch.Generator().manual_seed(seed)
            optimizer = torch.optim.Adam(model.parameters(), lr=lr)
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
            loss_fn = torch.nn.CrossEntropyLoss()
            model.train()
            for _ in range(int(epochs)):
                order = torch.randperm(n, generator=generator)
                for start in range(0, n, batch_size):
                    idx = order[start:start + batch_size]
                    if len(idx) < 2:  # BatchNorm1d cannot train on a batch of one
                        continue
                    optimizer.zero_grad()
                    loss = loss_fn(model(x_train[idx]), y_train[idx])
                    loss.backward()
                    optimizer.step()
                    schedule.step()
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(n_threads)
    model.eval()
    return TrainedDigitsNet(
        model=model,
        train_accuracy=accuracy(model, data.x_train, data.y_train),
        test_accuracy=accuracy(model, data.x_test, data.y_test),
        epochs=int(epochs), seed=int(seed), data=data)
