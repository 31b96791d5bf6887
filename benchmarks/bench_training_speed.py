"""Training speed of sklae against a bare PyTorch loop, in one run.

Two workloads, each trained by every method in turn, interleaved (A, B, A, B...),
and summarised by medians, so that the machine's speed swings hit all methods
alike:

* ``mnist``: 60000 x 784 MNIST pixels in [0, 1], a 784-256-64-8 autoencoder
  (ReLU, sigmoid output, MSE), Adam 1e-3, batch 256.
* ``tabular``: 20000 x 50 synthetic rows, a 50-32-8-32-50 autoencoder, batch 128,
  5 epochs, where per-step overhead dominates.

The bare loop is what a careful PyTorch user writes: one float32 tensor, a fresh
``randperm`` each epoch, ``index_select`` per batch, no DataLoader. It trains the
same network as sklae's (:class:`MLPAutoencoder` below: the layers sklae builds,
created in the same order, so the same initial weights for a seed) with the same
loss, optimiser, epochs and batch size.

Usage::

    python benchmarks/bench_training_speed.py            # both workloads, writes results
    python benchmarks/bench_training_speed.py --quick    # fewer repeats and rows, no file

Results go to ``benchmarks/results/training_speed_<device>.md`` (``--output-dir``,
``--output``); ``--quick`` writes ``training_speed_quick_<device>.md`` only when
``--output-dir`` or ``--output`` is given.
"""

import argparse
import statistics
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import Timer, add_common_arguments, format_provenance_markdown, parse_args, provenance
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from threadpoolctl import threadpool_limits

from sklae import AutoencoderTransformer
from sklae.datasets import load_mnist_like


class MLPAutoencoder(torch.nn.Module):
    """The fully connected autoencoder of ``AutoencoderTransformer(hidden_layer_sizes=
    hidden, code_size=code_size)`` in plain torch: ReLU between linear layers, a
    linear code, a mirrored decoder; ``forward`` returns the decoder's output before
    the output activation, and the code."""

    def __init__(self, n_features, code_size, hidden):
        super().__init__()
        widths = [n_features, *hidden]
        self.encoder = self._stack([*widths, code_size])
        self.decoder = self._stack([code_size, *widths[::-1]])

    @staticmethod
    def _stack(widths):
        layers = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
        return torch.nn.Sequential(*layers[:-1])

    def forward(self, x):
        code = self.encoder(x)
        return self.decoder(code), code


def reconstruction_loss(output_activation):
    """Mean squared error after the output activation, as sklae's ``loss="mse"``."""

    def loss(pre_activation, target):
        if output_activation == "sigmoid":
            pre_activation = torch.sigmoid(pre_activation)
        return torch.nn.functional.mse_loss(pre_activation, target)

    return loss


def bare_torch_loop(X, hidden, code_size, output_activation, batch_size, epochs, device, seed=0):
    """Train the reference way; returns the final epoch's mean loss."""
    torch.manual_seed(seed)
    model = MLPAutoencoder(X.shape[1], code_size, hidden).to(device)
    criterion = reconstruction_loss(output_activation)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.from_numpy(X).to(device)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=generator).to(device)
        total = torch.zeros((), device=device)
        for start in range(0, len(data), batch_size):
            batch = data.index_select(0, order[start : start + batch_size])
            optimizer.zero_grad()
            loss = criterion(model(batch)[0], batch)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(batch)
    return float(total) / len(data)


def torch_dataloader_loop(X, hidden, code_size, output_activation, batch_size, epochs, device):
    """The textbook loop with ``TensorDataset`` + ``DataLoader(shuffle=True)``."""
    torch.manual_seed(0)
    model = MLPAutoencoder(X.shape[1], code_size, hidden).to(device)
    criterion = reconstruction_loss(output_activation)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)
    for _ in range(epochs):
        for (batch,) in loader:
            batch = batch.to(device)
            optimizer.zero_grad()
            loss = criterion(model(batch)[0], batch)
            loss.backward()
            optimizer.step()


class ReconstructionLoss(torch.nn.Module):
    """:func:`reconstruction_loss` as the module skorch's ``criterion`` expects."""

    def __init__(self, output_activation):
        super().__init__()
        self.loss = reconstruction_loss(output_activation)

    def forward(self, pre_activation, target):
        return self.loss(pre_activation, target)


class ReconstructionOnly(torch.nn.Module):
    """An sklae module whose forward returns the reconstruction alone, as skorch expects."""

    def __init__(self, autoencoder):
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, x):
        return self.autoencoder(x)[0]


def plain_skorch(X, hidden, code_size, output_activation, batch_size, epochs, device):
    """skorch's NeuralNetRegressor with its default DataLoader, no validation split."""
    from skorch import NeuralNetRegressor

    torch.manual_seed(0)
    net = NeuralNetRegressor(
        ReconstructionOnly(MLPAutoencoder(X.shape[1], code_size, hidden)),
        criterion=ReconstructionLoss(output_activation),
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=epochs,
        batch_size=batch_size,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
        device=device,
    )
    net.fit(X, X)


def sklae_fit(X, hidden, code_size, output_activation, batch_size, epochs, device):
    estimator = AutoencoderTransformer(
        code_size=code_size,
        hidden_layer_sizes=hidden,
        output_activation=output_activation,
        max_iter=epochs,
        batch_size=batch_size,
        n_iter_no_change=epochs + 1,
        # The same work as the bare loop: every row trained, no validation
        # pass, no PCA start.
        early_stopping=False,
        init="random",
        random_state=0,
        device=device,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X)
    return estimator.loss_curve_[-1]


def sklearn_mlp(X, hidden, code_size, output_activation, batch_size, epochs, device):
    """MLPRegressor().fit(X, X) with the same widths, batch and epochs (CPU, float64)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPRegressor(
            hidden_layer_sizes=(*hidden, code_size, *hidden[::-1]),
            batch_size=batch_size,
            max_iter=epochs,
            random_state=0,
        ).fit(X, X)


def time_interleaved(methods, arguments, repeats):
    """Median seconds of each method over ``repeats`` rounds, methods alternating.

    One untimed round first: torch initialises kernels and thread pools lazily.
    """
    for method in methods.values():
        method(*arguments)
    seconds = {name: [] for name in methods}
    for _ in range(repeats):
        for name, method in methods.items():
            with Timer(arguments[-1]) as timer:
                method(*arguments)
            seconds[name].append(timer.seconds)
    return {name: statistics.median(values) for name, values in seconds.items()}, seconds


def synthetic_tabular(n_rows=20000, n_features=50, rank=8, seed=0):
    """Rows near a non-linear 8-dimensional manifold, standardised."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_rows, rank))
    mixing = rng.normal(size=(rank, n_features))
    X = np.tanh(latent @ mixing / np.sqrt(rank)) + 0.05 * rng.normal(size=(n_rows, n_features))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(np.float32)


def run(args):
    device = args.device
    sections = []

    X_tab = synthetic_tabular(5000 if args.quick else 20000)
    tab_args = (X_tab, (32,), 8, "identity", 128, 5, device)
    tab_methods = {
        "bare torch (tensor slices)": bare_torch_loop,
        "sklae AutoencoderTransformer": sklae_fit,
        "torch DataLoader": torch_dataloader_loop,
        "plain skorch NeuralNetRegressor": plain_skorch,
    }
    if device == "cpu":
        tab_methods["sklearn MLPRegressor"] = sklearn_mlp
    with threadpool_limits(limits=args.threads):
        tab_median, tab_all = time_interleaved(tab_methods, tab_args, args.repeats_tabular)
    sections.append(("tabular", f"{X_tab.shape[0]} x {X_tab.shape[1]}", tab_median, tab_all))

    if not args.skip_mnist:
        X_mnist, _ = load_mnist_like("mnist", "train", args.data_dir)
        if args.quick:
            X_mnist = X_mnist[:10000]
        mnist_args = (X_mnist, (256, 64), 8, "sigmoid", 256, args.mnist_epochs, device)
        mnist_methods = {
            "bare torch (tensor slices)": bare_torch_loop,
            "sklae AutoencoderTransformer": sklae_fit,
        }
        if args.with_skorch_mnist:
            mnist_methods["plain skorch NeuralNetRegressor"] = plain_skorch
        mnist_median, mnist_all = time_interleaved(mnist_methods, mnist_args, args.repeats_mnist)
        for name in mnist_median:
            mnist_median[name] /= args.mnist_epochs
            mnist_all[name] = [value / args.mnist_epochs for value in mnist_all[name]]
        sections.append(
            ("mnist", f"{X_mnist.shape[0]} x {X_mnist.shape[1]}", mnist_median, mnist_all)
        )
    return sections


def format_results(sections, args, stamp):
    lines = [
        "# Training speed: sklae against a bare PyTorch loop",
        "",
        format_provenance_markdown(stamp),
        f"{args.threads} torch/BLAS thread(s). "
        "Each method ran in turn, interleaved; the tables give medians (all runs in brackets).",
        "",
    ]
    for workload, shape, median, every in sections:
        bare = median["bare torch (tensor slices)"]
        unit = "s / epoch" if workload == "mnist" else "s for 5 epochs"
        if workload == "mnist":
            title = (
                f"## MNIST-sized: {shape}, 784-256-64-8 autoencoder, batch 256, "
                f"{args.mnist_epochs} epochs per fit"
            )
        else:
            title = f"## Small tabular: {shape}, 50-32-8-32-50 autoencoder, batch 128, 5 epochs"
        header = f"| method | {unit} | ratio to bare torch | runs |"
        lines += [title, "", header, "|---|---:|---:|---|"]
        for name, value in median.items():
            runs = ", ".join(f"{v:.2f}" for v in every[name])
            lines.append(f"| {name} | {value:.3f} | {value / bare:.2f}x | {runs} |")
        if "sklearn MLPRegressor" in median:
            ratio = median["sklae AutoencoderTransformer"] / median["sklearn MLPRegressor"]
            lines.append("")
            lines.append(f"sklae / MLPRegressor: {ratio:.2f}x")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats-tabular", type=int, default=5)
    parser.add_argument("--repeats-mnist", type=int, default=3)
    parser.add_argument("--mnist-epochs", type=int, default=2)
    parser.add_argument("--with-skorch-mnist", action="store_true")
    parser.add_argument("--skip-mnist", action="store_true")
    parser.add_argument("--quick", action="store_true", help="fewer rows, for a smoke test")
    parser.add_argument(
        "--output",
        default=None,
        help="markdown file to write (default: OUTPUT_DIR/training_speed_<device>.md)",
    )
    add_common_arguments(
        parser, device=True, threads=1, threads_help="torch and BLAS threads (default 1)"
    )
    args = parse_args(parser, argv)
    if args.quick:
        args.repeats_tabular, args.repeats_mnist, args.mnist_epochs = 2, 1, 1
    torch.set_num_threads(args.threads)
    stamp = provenance(device=args.device, threads=args.threads, argv=argv, script=__file__)
    report = format_results(run(args), args, stamp)
    print(report)
    output = args.output
    if output is None and (args.output_dir_given or not args.quick):
        stem = "training_speed_quick" if args.quick else "training_speed"
        output = args.output_dir / f"{stem}_{args.device}.md"
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(report + "\n")
        print(f"written to {output}")


if __name__ == "__main__":
    main()
