"""
=======================================
Watching training: the loss curve
=======================================

:func:`sklae.plot_loss_curve` draws the training loss per epoch and, with
``early_stopping=True``, the loss on the held-out rows and the epoch whose
weights were kept. ``verbose=1`` prints the same numbers as a table while
training runs.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from sklae import AutoencoderTransformer, plot_loss_curve

X = load_digits().data / 16.0
model = AutoencoderTransformer(
    code_size=8,
    early_stopping=True,
    validation_fraction=0.2,
    n_iter_no_change=15,
    learning_rate_init=3e-3,
    max_iter=300,
    verbose=1,
    random_state=0,
).fit(X)

# %%
# Training stopped once the validation loss had not improved for
# ``n_iter_no_change`` epochs; the best epoch's weights were restored.
print(f"{model.n_iter_} epochs; best validation MSE {-model.best_validation_score_:.4f}")
plot_loss_curve(model)
plt.show()
