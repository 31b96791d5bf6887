"""Plots for fitted sklae estimators. Needs matplotlib (``pip install matplotlib``).

matplotlib is imported only when a plot is drawn, so sklae itself does not
depend on it.
"""

from sklearn.utils.validation import check_is_fitted

__all__ = ["plot_loss_curve"]


def _import_pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "sklae.plot_loss_curve needs matplotlib, an optional dependency: pip install matplotlib"
        ) from error
    return plt


def plot_loss_curve(estimator, ax=None):
    """Plot the training loss per epoch, and the validation loss when there is one.

    Parameters
    ----------
    estimator : AutoencoderTransformer, VariationalAutoencoder or DenoisingAutoencoder
        A fitted estimator: its ``loss_curve_`` is drawn, and with
        ``early_stopping=True`` the validation loss (``-validation_scores_``)
        and the epoch whose weights were kept.

    ax : matplotlib.axes.Axes or None, default=None
        Axes to draw on; a new figure is made when None.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on, with a logarithmic loss axis.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from sklae import AutoencoderTransformer, plot_loss_curve
    >>> X = load_digits().data / 16.0
    >>> model = AutoencoderTransformer(code_size=8, max_iter=5, random_state=0).fit(X)
    >>> ax = plot_loss_curve(model)
    >>> len(ax.get_lines())
    3
    """
    check_is_fitted(estimator, "loss_curve_")
    plt = _import_pyplot()
    if ax is None:
        _, ax = plt.subplots()
    epochs = range(1, len(estimator.loss_curve_) + 1)
    ax.plot(epochs, estimator.loss_curve_, label="training loss")
    validation_scores = getattr(estimator, "validation_scores_", None)
    if validation_scores:
        validation_losses = [-score for score in validation_scores]
        # After warm starts the validation record may cover only the last fits.
        first_epoch = len(estimator.loss_curve_) - len(validation_losses) + 1
        validation_epochs = range(first_epoch, first_epoch + len(validation_losses))
        ax.plot(validation_epochs, validation_losses, label="validation loss")
        # sklae's estimators say which epoch they kept (0: the start), also when
        # an epoch scored better than the start but not beyond the noise.
        kept_epoch = getattr(estimator, "best_epoch_", None)
        if kept_epoch is None:
            best = min(range(len(validation_losses)), key=validation_losses.__getitem__)
            kept_epoch = validation_epochs[best]
            if -estimator.best_validation_score_ < validation_losses[best]:
                # No epoch beat the weights training started from, which were kept.
                kept_epoch = first_epoch - 1
        ax.axvline(kept_epoch, color="grey", linestyle=":", label="weights kept")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({getattr(estimator, 'loss', 'training objective')})")
    ax.set_title(type(estimator).__name__)
    if validation_scores:
        ax.legend()
    return ax
