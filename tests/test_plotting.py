"""Tests of the notebook experience: the loss-curve plot, progress display, HTML repr."""

import builtins
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sklae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    DenoisingAutoencoder,
    VariationalAutoencoder,
    plot_loss_curve,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X = np.random.RandomState(0).rand(60, 5)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_loss_curve_draws_the_training_losses():
    # Without validation rows, so the training loss is the only line.
    model = AutoencoderTransformer(
        hidden_layer_sizes=(4,), max_iter=4, early_stopping=False, random_state=0
    ).fit(X)
    _, ax = plt.subplots()

    returned = plot_loss_curve(model, ax=ax)

    assert returned is ax
    (line,) = ax.get_lines()
    assert_allclose(line.get_xdata(), [1, 2, 3, 4])
    assert_allclose(line.get_ydata(), model.loss_curve_)
    assert ax.get_yscale() == "log"
    assert ax.get_title() == "AutoencoderTransformer"


def test_plot_loss_curve_marks_the_start_when_the_start_was_kept():
    # A PCA start that no epoch beats beyond the noise is kept: epoch 0 is marked.
    model = AutoencoderTransformer(hidden_layer_sizes=(4,), max_iter=6, random_state=0).fit(X[:40])
    assert model.best_validation_score_ > max(model.validation_scores_)

    _, _, kept = plot_loss_curve(model).get_lines()

    assert_allclose(kept.get_xdata(), [0, 0])


def test_plot_loss_curve_marks_the_start_kept_though_an_epoch_scored_better():
    # The one-standard-error rule kept the start over an epoch with a lower
    # validation loss, within the noise of 3 validation rows: epoch 0 is marked.
    rows = np.random.default_rng(1).standard_normal((30, 4))
    model = AutoencoderTransformer(code_size=2, max_iter=20, random_state=1).fit(rows)
    assert model.best_validation_score_ < max(model.validation_scores_)
    assert model.best_epoch_ == 0

    _, _, kept = plot_loss_curve(model).get_lines()

    assert_allclose(kept.get_xdata(), [0, 0])


def test_plot_loss_curve_draws_validation_losses_and_the_kept_epoch():
    model = AutoencoderTransformer(
        hidden_layer_sizes=(4,), max_iter=6, early_stopping=True, init="random", random_state=0
    ).fit(X)

    ax = plot_loss_curve(model)

    training, validation, kept = ax.get_lines()
    assert_allclose(validation.get_ydata(), [-score for score in model.validation_scores_])
    best_epoch = int(np.argmax(model.validation_scores_)) + 1
    assert_allclose(kept.get_xdata(), [best_epoch, best_epoch])
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "training loss",
        "validation loss",
        "weights kept",
    ]


def test_plot_loss_curve_makes_a_figure_when_no_axes_are_given():
    model = VariationalAutoencoder(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X)

    ax = plot_loss_curve(model)

    assert ax.figure is not None
    assert ax.get_title() == "VariationalAutoencoder"
    assert len(ax.get_lines()[0].get_ydata()) == 3


def test_plot_loss_curve_needs_a_fitted_estimator():
    with pytest.raises(NotFittedError):
        plot_loss_curve(AutoencoderTransformer())


def test_plot_loss_curve_explains_a_missing_matplotlib(monkeypatch):
    model = AutoencoderTransformer(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X)
    real_import = builtins.__import__

    def import_without_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", import_without_matplotlib)
    monkeypatch.delitem(sys.modules, "matplotlib.pyplot")

    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_loss_curve(model)


def test_verbose_prints_one_row_per_epoch(capsys):
    AutoencoderTransformer(
        hidden_layer_sizes=(4,), max_iter=3, early_stopping=True, verbose=1, random_state=0
    ).fit(X)

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "dur"]
    assert [line.split()[0] for line in lines[2:5]] == ["1", "2", "3"]


def test_skorch_progress_bar_counts_each_epochs_batches():
    pytest.importorskip("tqdm")
    from skorch.callbacks import ProgressBar

    model = AutoencoderTransformer(
        hidden_layer_sizes=(4,),
        batch_size=20,
        max_iter=2,
        early_stopping=False,  # all 60 rows trained, no validation batches
        callbacks=[ProgressBar()],
    ).fit(X)

    (progress_bar,) = [
        callback for _, callback in model.net_.callbacks_ if isinstance(callback, ProgressBar)
    ]
    # 60 rows in batches of 20: the last epoch's bar expected 3 batches and saw 3.
    assert (progress_bar.pbar_.total, progress_bar.pbar_.n) == (3, 3)


def test_verbose_2_adds_a_progress_bar_to_the_epoch_table(capsys):
    pytest.importorskip("tqdm")
    from skorch.callbacks import ProgressBar

    model = AutoencoderTransformer(
        hidden_layer_sizes=(4,), batch_size=20, max_iter=2, early_stopping=False, verbose=2
    ).fit(X)
    bars = [cb for _, cb in model.net_.callbacks_ if isinstance(cb, ProgressBar)]
    assert len(bars) == 1
    assert (bars[0].pbar_.total, bars[0].pbar_.n) == (3, 3)
    assert "train_loss" in capsys.readouterr().out
    quiet = AutoencoderTransformer(hidden_layer_sizes=(4,), max_iter=1, verbose=1).fit(X)
    assert not any(isinstance(cb, ProgressBar) for _, cb in quiet.net_.callbacks_)


@pytest.mark.parametrize(
    "estimator",
    [
        AutoencoderTransformer(code_size=3),
        VariationalAutoencoder(),
        DenoisingAutoencoder(noise="masking"),
        AutoencoderOutlierDetector(),
    ],
    ids=type,
)
def test_html_repr_names_the_estimator(estimator):
    html = estimator._repr_html_()

    assert html.lstrip().startswith("<")
    assert type(estimator).__name__ in html


def test_html_repr_of_a_pipeline_shows_the_autoencoder_and_its_changed_parameter():
    html = make_pipeline(MinMaxScaler(), AutoencoderTransformer(code_size=3))._repr_html_()

    assert "AutoencoderTransformer" in html
    assert "code_size" in html
