"""
======================================================
Denoising a photograph from the noisy photograph alone
======================================================

Only a noisy photograph is at hand: no clean version, and the noise level is
unknown. A :class:`~sklae.DenoisingAutoencoder` with its defaults, fit on the
8 x 8 patches of that photograph, estimates the level from them
(:func:`~sklae.estimate_noise_level`) and learns from pairs of independent
noisy copies drawn from each patch (Recorrupted-to-Recorrupted), so it never
sees a clean pixel. :func:`~sklae.denoise_image` then denoises the whole
photograph: every overlapping patch is denoised and each pixel averages its
estimates. PCA on the same patches and scikit-image's non-local means (given
the true noise level, which the autoencoder was not) are shown beside it.

The photograph ships with scikit-image (``pip install scikit-image``).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from skimage import data
from skimage.restoration import denoise_nl_means
from sklearn.decomposition import PCA
from sklearn.feature_extraction.image import extract_patches_2d

from sklae import DenoisingAutoencoder, denoise_image, estimate_noise_level

noise_level = 0.1
rng = np.random.default_rng(0)


clean = data.camera()[96:352, 128:384] / 255.0  # a 256 x 256 crop, kept for scoring only
noisy_photo = clean + rng.normal(scale=noise_level, size=clean.shape)

patches = extract_patches_2d(noisy_photo, (8, 8), max_patches=8000, random_state=0)
rows = patches.reshape(len(patches), -1)
print(
    f"{len(rows)} noisy patches; noise level estimated from them: {estimate_noise_level(rows):.3f}"
)

# %%
# Defaults only: the level is estimated, the code size follows from it.
denoiser = DenoisingAutoencoder(random_state=0).fit(rows)
print(f"code size {denoiser.code_size_}, {denoiser.n_iter_} epochs")
pca = PCA(n_components=denoiser.code_size_).fit(rows)


class PCADenoiser:
    """PCA's projection as a patch denoiser, for denoise_image."""

    def predict(self, X):
        return pca.inverse_transform(pca.transform(X))


results = {
    "noisy": noisy_photo,
    f"PCA({denoiser.code_size_}) on patches": denoise_image(PCADenoiser(), noisy_photo, (8, 8)),
    "sklae, defaults": denoise_image(denoiser, noisy_photo, (8, 8)),
    "non-local means": denoise_nl_means(
        noisy_photo, h=0.8 * noise_level, sigma=noise_level, patch_size=5, patch_distance=6
    ),
}


def psnr(image):
    return 10 * np.log10(1 / np.mean((np.clip(image, 0, 1) - clean) ** 2))


for name, image in results.items():
    print(f"{name:>24}: {psnr(image):.2f} dB")

# %%
# The clean crop, its noisy version and the three denoised versions.
fig, axes = plt.subplots(1, 5, figsize=(15, 3.4))
for ax, (name, image) in zip(axes, {"clean": clean, **results}.items()):
    ax.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(name if name == "clean" else f"{name}\n{psnr(image):.2f} dB", fontsize=9)
    ax.axis("off")
plt.tight_layout()
plt.show()
