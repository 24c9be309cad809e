"""A variational autoencoder of Gram features that generates, interpolates and in-fills motifs.

The model (chapter 6) follows Kingma & Welling [KW14]_: an encoder maps the 36 normalised Gram
features of a motif (:mod:`teachlib.motifs`) to the mean μ and log-variance log σ² of a
Gaussian over an 8-dimensional latent code z; a decoder maps z back to 36 features::

    encoder  36 → 28 → 18 (tanh) → μ (8), log σ² (8)   (linear heads)
    decoder   8 → 18 → 28 (tanh) → 36                    (linear output)

Training maximises the evidence lower bound: the loss per motif is

    Σ_f (x_f − x̂_f)² / (2 s²)  +  KL( N(μ, σ²) ‖ N(0, I) ),

a Gaussian likelihood of the features with a fixed noise level ``s`` (in normalised units: it
sets how much detail the code keeps) plus the Kullback–Leibler divergence, whose per-dimension
terms show which latent dimensions carry information and which have *collapsed* onto the prior.

Also here: in-filling (find the latent code whose decoded motif matches the atoms that are
given, :func:`infill_vae`) and the two baselines it is compared with — the nearest training
motif (:func:`infill_nearest`) and a Gaussian model of the 36 features
(:class:`GaussianModel`), which is what PCA keeping every component amounts to.

References:
    .. [KW14] D. P. Kingma and M. Welling, "Auto-encoding variational Bayes", ICLR 2014.

>>> import jax
>>> model = VAE()
>>> params = model.init(jax.random.PRNGKey(0), np.zeros((1, 36)), jax.random.PRNGKey(1))
>>> mu, log_var = model.apply(params, np.zeros((5, 36)), method="encode")
>>> mu.shape, model.apply(params, mu, method="decode").shape
((5, 8), (5, 36))
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from teachlib import motifs as mt
from teachlib import train

# --------------------------------------------------------------------------------------------
# The model and its loss
# --------------------------------------------------------------------------------------------


class VAE(nn.Module):
    """Encoder 36-28-18-(8, 8) and mirrored decoder 8-18-28-36, tanh hidden layers."""

    n_features: int = 36
    hidden: tuple[int, ...] = (28, 18)
    latent: int = 8

    def setup(self):
        self.encoder = [nn.Dense(width) for width in self.hidden]
        self.mu_head = nn.Dense(self.latent)
        self.log_var_head = nn.Dense(self.latent)
        self.decoder = [nn.Dense(width) for width in reversed(self.hidden)]
        self.output = nn.Dense(self.n_features)

    def encode(self, x):
        """Features (B, 36) → μ (B, 8), log σ² (B, 8)."""
        h = x
        for layer in self.encoder:
            h = jnp.tanh(layer(h))  # (B, 28), then (B, 18)
        return self.mu_head(h), self.log_var_head(h)

    def decode(self, z):
        """Latent codes (B, 8) → reconstructed features (B, 36)."""
        h = z
        for layer in self.decoder:
            h = jnp.tanh(layer(h))  # (B, 18), then (B, 28)
        return self.output(h)

    def __call__(self, x, key):
        """Encode, draw z = μ + σ·ε (the reparameterisation trick), decode."""
        mu, log_var = self.encode(x)
        eps = jax.random.normal(key, mu.shape, mu.dtype)
        z = mu + jnp.exp(0.5 * log_var) * eps  # (B, 8)
        return self.decode(z), mu, log_var


def kl_per_dimension(mu, log_var):
    """KL(N(μ, σ²) ‖ N(0, 1)) of each latent dimension, averaged over the batch: (latent,)."""
    return jnp.mean(0.5 * (mu**2 + jnp.exp(log_var) - 1.0 - log_var), axis=0)


def loss_terms(params, model: VAE, x, key, *, noise: float):
    """Reconstruction term and per-dimension KL of a batch ``x`` (B, 36), both per motif."""
    x_hat, mu, log_var = model.apply(params, x, key)
    reconstruction = jnp.mean(jnp.sum((x - x_hat) ** 2, axis=-1)) / (2.0 * noise**2)
    return reconstruction, kl_per_dimension(mu, log_var)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def train_vae(model: VAE, train_x, val_x, *, epochs: int, batch_size: int,
              learning_rate: float, noise: float, seed: int, kl_warmup: int = 0,
              checkpoint_dir=None, progress: bool = True) -> train.FitResult:
    """Train the VAE with the book's training loop; keep the parameters of the best validation loss.

    :func:`teachlib.train.fit` with ``step_info=True``: every step gets fresh noise for the
    reparameterisation from a key that follows from ``seed``, the epoch and the step, and the
    KL weight grows linearly from 0 to 1 over the first ``kl_warmup`` epochs of training (the
    validation loss is always the full loss, at weight 1, with the same noise every epoch).

    Args:
        model: a :class:`VAE`.
        train_x, val_x: normalised features (N, 36) and (N_val, 36).
        epochs, batch_size, learning_rate: the usual.
        noise: the likelihood's noise level ``s`` (normalised units).
        seed: initialisation, batch order and reparameterisation noise follow from it.
        kl_warmup: epochs over which the KL weight grows linearly from 0 to 1 (0: none).
        checkpoint_dir: save and resume the training there (:func:`teachlib.train.fit`).

    Returns:
        A :class:`teachlib.train.FitResult`; ``history`` has per-epoch ``train_loss``,
        ``val_loss``, ``val_reconstruction``, ``val_kl`` and, for the returned parameters,
        ``kl_per_dimension`` on the validation set.
    """
    init_key = jax.random.PRNGKey(seed)
    params = model.init(init_key, jnp.zeros((1, model.n_features)), init_key)

    def loss(params, x, info: train.StepInfo):
        reconstruction, kl = loss_terms(params, model, x, info.key, noise=noise)
        ramp = jnp.minimum(1.0, (info.epoch + 1) / kl_warmup) if kl_warmup else 1.0
        weight = jnp.where(info.training, ramp, 1.0)
        return reconstruction + weight * jnp.sum(kl), {"reconstruction": reconstruction, "kl": jnp.sum(kl)}

    result = train.fit(loss, params, jnp.asarray(train_x, jnp.float32),
                       val_data=jnp.asarray(val_x, jnp.float32), epochs=epochs,
                       batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                       has_aux=True, step_info=True, checkpoint_dir=checkpoint_dir,
                       progress=progress, desc="VAE")
    eval_key = jax.random.fold_in(init_key, 1)
    _, kl = loss_terms(result.params, model, jnp.asarray(val_x, jnp.float32), eval_key, noise=noise)
    result.history["kl_per_dimension"] = np.asarray(kl).tolist()
    return result


# --------------------------------------------------------------------------------------------
# Using a trained model: reconstruct, sample, interpolate
# --------------------------------------------------------------------------------------------


def encode(model: VAE, params, features):
    """μ and log σ² (N, 8) of normalised features (N, 36)."""
    mu, log_var = model.apply(params, jnp.asarray(features, jnp.float32), method="encode")
    return np.asarray(mu), np.asarray(log_var)


def decode(model: VAE, params, z):
    """Normalised features (N, 36) decoded from latent codes (N, 8)."""
    return np.asarray(model.apply(params, jnp.asarray(z, jnp.float32), method="decode"))


def reconstruct(model: VAE, params, normaliser: mt.Normaliser, x):
    """Motifs (N, 8, 3) → encode (μ) → decode → coordinates (N, 8, 3), up to O(3)."""
    features = normaliser.normalise(mt.gram_features(x))
    mu, _ = encode(model, params, features)
    return mt.coordinates_from_features(decode(model, params, mu), normaliser)


def feature_rmse(model: VAE, params, features) -> float:
    """Root-mean-square error of the reconstructed (normalised) features, decoding z = μ.

    The noise level at which the model's likelihood is *calibrated*: in-filling weighs how well
    a code fits the given atoms on this scale.
    """
    mu, _ = encode(model, params, features)
    return float(np.sqrt(np.mean((decode(model, params, mu) - np.asarray(features)) ** 2)))


def pca_reconstruct(train_features, features, n_components: int):
    """Project features (N, F) onto the top ``n_components`` principal directions of the
    training features and back: the best *linear* code of that size.

    >>> f = np.random.default_rng(0).normal(size=(100, 36))
    >>> np.allclose(pca_reconstruct(f, f, 36), f)
    True
    """
    train_features = np.asarray(train_features)
    mean = train_features.mean(axis=0)
    _, _, vt = np.linalg.svd(train_features - mean, full_matrices=False)
    basis = vt[:n_components]  # (q, F)
    return mean + (np.asarray(features) - mean) @ basis.T @ basis


def sample(model: VAE, params, normaliser: mt.Normaliser, key, n: int):
    """``n`` new motifs (n, 8, 3): z ~ N(0, I), decoded, rebuilt from the Gram matrix."""
    z = jax.random.normal(key, (n, model.latent))
    return mt.coordinates_from_features(decode(model, params, z), normaliser)


def interpolate(model: VAE, params, normaliser: mt.Normaliser, x_a, x_b, n_points: int):
    """Motifs (n_points, 8, 3) decoded along the straight latent path from x_a to x_b.

    Each motif is rotated (or reflected) onto its predecessor, the first onto ``x_a``, so
    that the path can be watched as a movie.
    """
    mu, _ = encode(model, params, normaliser.normalise(mt.gram_features(np.stack([x_a, x_b]))))
    t = np.linspace(0.0, 1.0, n_points)[:, None]
    z = (1.0 - t) * mu[0] + t * mu[1]  # (n_points, 8)
    path = mt.coordinates_from_features(decode(model, params, z), normaliser)
    previous = np.asarray(x_a)
    for k in range(n_points):
        path[k] = path[k] @ mt.kabsch(path[k], previous)
        previous = path[k]
    return path


# --------------------------------------------------------------------------------------------
# In-filling: given some neighbours (the fixed atoms), find the others
# --------------------------------------------------------------------------------------------


def known_features(fixed):
    """Which Gram features (B, 36) the fixed atoms (B, 8) bools determine: both ends fixed."""
    fixed = np.asarray(fixed)
    rows, cols = np.triu_indices(fixed.shape[-1])
    return fixed[..., rows] & fixed[..., cols]


def random_fixed(n_motifs: int, n_fixed: int, rng: np.random.Generator, n: int = 8):
    """(n_motifs, n) bools with ``n_fixed`` randomly chosen neighbours fixed in each motif."""
    keys = rng.random((n_motifs, n))
    return np.argsort(np.argsort(keys, axis=1), axis=1) < n_fixed


def complete_motifs(gram_predicted, x_true, fixed):
    """In-filled motifs (B, 8, 3): the given atoms kept, the free ones placed by the model's G.

    The fixed atoms stay where they are.  Each free atom u is placed where its dot products
    with the fixed atoms best match the predicted Gram entries ``G_uf``: a linear least-squares
    problem ``X_F x_u ≈ G_uF`` (at least five fixed atoms, three unknowns).  Only the entries
    between free and fixed atoms are used, so an error in the model's guess of one free atom
    cannot move the others or the fixed ones.
    """
    g = np.asarray(gram_predicted, dtype=float)
    out = np.array(x_true, dtype=float)
    for b in range(len(out)):
        f, u = np.flatnonzero(fixed[b]), np.flatnonzero(~fixed[b])
        x_fixed = out[b, f]  # (k, 3)
        out[b, u] = np.linalg.lstsq(x_fixed, g[b][np.ix_(f, u)], rcond=None)[0].T  # (8-k, 3)
    return out


def infill_error(x_predicted, x_true, fixed, slots=None):
    """RMS error (Å) of the free atoms of each motif, (B,).

    Free atoms of the same shell are interchangeable (their order is by distance only), so the
    predicted free atoms are first matched one-to-one to the true ones (Hungarian assignment);
    the fixed atoms, which define the frame, are not moved.  With ``slots`` (e.g.
    ``range(4)``, the bonded neighbours) only the free atoms in those slots count, matched among
    themselves; motifs with none get NaN.

    >>> x = np.array([[[1., 0, 0], [0, 2, 0], [0, 0, 3]]])
    >>> swapped = x[:, [0, 2, 1]]
    >>> infill_error(swapped, x, np.array([[True, False, False]])).tolist()
    [0.0]
    """
    from scipy.optimize import linear_sum_assignment

    x_predicted, x_true = np.asarray(x_predicted), np.asarray(x_true)
    counted = np.ones(x_true.shape[1], dtype=bool)
    if slots is not None:
        counted = np.isin(np.arange(x_true.shape[1]), list(slots))
    errors = np.full(len(x_true), np.nan)
    for b in range(len(x_true)):
        free = ~np.asarray(fixed[b]) & counted
        if not free.any():
            continue
        p, t = x_predicted[b][free], x_true[b][free]
        cost = np.sum((p[:, None, :] - t[None, :, :]) ** 2, axis=-1)  # (n_free, n_free)
        rows, cols = linear_sum_assignment(cost)
        errors[b] = np.sqrt(cost[rows, cols].mean())
    return errors


def infill_vae(model: VAE, params, normaliser: mt.Normaliser, x_true, fixed, *, noise: float,
               key, n_starts: int = 8, steps: int = 300, learning_rate: float = 0.05):
    """In-fill motifs with the VAE: the most probable latent code given the fixed atoms.

    Minimises over z, for each motif, ``Σ_known (decode(z)_f − x_f)² / (2 s²) + |z|²/2`` —
    the negative log posterior of z given the Gram features that the fixed atoms determine —
    with Adam from ``n_starts`` starting points (z = 0 and draws from the prior), keeps the
    best, decodes it and completes the motif with :func:`complete_motifs`.

    Args:
        x_true: (B, 8, 3) motifs; only their fixed atoms are used.
        fixed: (B, 8) bools.
        noise: the likelihood noise ``s`` the model was trained with.

    Returns:
        (B, 8, 3) in-filled motifs in the frame of ``x_true``.
    """
    target = jnp.asarray(normaliser.normalise(mt.gram_features(x_true)), jnp.float32)  # (B, 36)
    mask = jnp.asarray(known_features(fixed), jnp.float32)  # (B, 36)
    z0 = jax.random.normal(key, (target.shape[0], n_starts, model.latent))
    z0 = z0.at[:, 0].set(0.0)  # (B, S, 8)
    optimizer = optax.adam(learning_rate)

    def objective(z, target, mask):  # z: (8,) for one motif and one start
        x_hat = model.apply(params, z[None], method="decode")[0]
        return jnp.sum(mask * (x_hat - target) ** 2) / (2 * noise**2) + 0.5 * jnp.sum(z**2)

    batched = jax.vmap(jax.vmap(objective, (0, None, None)), (0, 0, 0))  # (B, S)

    @jax.jit
    def optimise(z):
        def total(z):
            return jnp.sum(batched(z, target, mask))

        def step(carry, _):
            z, state = carry
            grads = jax.grad(total)(z)
            updates, state = optimizer.update(grads, state, z)
            return (optax.apply_updates(z, updates), state), None

        (z, _), _ = jax.lax.scan(step, (z, optimizer.init(z)), None, length=steps)
        return z, batched(z, target, mask)

    z, values = optimise(z0)
    best = jnp.argmin(values, axis=1)  # (B,)
    z_best = np.asarray(z[jnp.arange(z.shape[0]), best])  # (B, 8)
    features = normaliser.denormalise(decode(model, params, z_best))
    return complete_motifs(mt.gram_from_features(features), x_true, fixed)


def infill_vae_mean(model: VAE, params, normaliser: mt.Normaliser, x_true, fixed, *,
                    noise: float, key, n_samples: int = 4096):
    """In-fill motifs with the VAE's posterior mean of the Gram matrix given the fixed atoms.

    Draws ``n_samples`` codes from the prior, decodes them once, and weighs each by the
    likelihood of the Gram features the fixed atoms determine,
    ``w ∝ exp(−Σ_known (decode(z)_f − x_f)² / (2 s²))`` (importance sampling with the prior as
    proposal).  The weighted mean of the decoded Gram matrices then places the free atoms
    (:func:`complete_motifs`; the placement is linear in G, so this is also the posterior
    mean of the free atoms' positions).  Where :func:`infill_vae` picks the single most
    probable code, this averages over every code that fits: the better guess when several
    arrangements of the free atoms are about equally likely.

    Returns:
        (in-filled motifs (B, 8, 3), effective sample sizes (B,)).
    """
    z = jax.random.normal(key, (n_samples, model.latent))
    decoded = decode(model, params, z)  # (S, 36) normalised
    target = normaliser.normalise(mt.gram_features(x_true))  # (B, 36)
    known = known_features(fixed).astype(float)  # (B, 36)
    # Σ_f known_bf (decoded_sf − target_bf)², for every motif b and sample s: (B, S)
    sq = (known @ (decoded**2).T - 2.0 * (known * target) @ decoded.T
          + np.sum(known * target**2, axis=1, keepdims=True))
    log_w = -sq / (2.0 * noise**2)
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)  # (B, S)
    features = normaliser.denormalise(w @ decoded)  # (B, 36) in Å²
    ess = 1.0 / np.sum(w**2, axis=1)
    return complete_motifs(mt.gram_from_features(features), x_true, fixed), ess


def infill_nearest(train_x, x_true, fixed):
    """Baseline: copy the training motif whose fixed atoms look most like the given ones.

    Compares the Gram entries of the fixed atoms (Å², alignment-free) with those of the same
    neighbour slots in every training motif, takes the closest, and aligns it onto the given
    fixed atoms; its other atoms are the in-fill (the given atoms are kept as they are).
    """
    train_g = mt.gram_matrix(np.asarray(train_x))  # (N, 8, 8)
    true_g = mt.gram_matrix(np.asarray(x_true))  # (B, 8, 8)
    out = np.empty_like(np.asarray(x_true, dtype=float))
    for b in range(len(out)):
        both = fixed[b][:, None] & fixed[b][None, :]
        distance = np.sum((train_g[:, both] - true_g[b][both]) ** 2, axis=1)  # (N,)
        match = np.asarray(train_x[np.argmin(distance)])
        out[b] = match @ mt.kabsch(match[fixed[b]], x_true[b][fixed[b]])
        out[b][fixed[b]] = x_true[b][fixed[b]]
    return out


@dataclasses.dataclass(frozen=True)
class GaussianModel:
    """A Gaussian model of the normalised features: probabilistic PCA (Tipping & Bishop 1999).

    With ``n_components = q`` the covariance is ``W Wᵀ + σ² I``: q principal directions plus
    isotropic noise of the variance left over — the linear counterpart of a VAE with a
    q-dimensional code (``x = m + W z + σ ε``).  With ``n_components=None`` it keeps every
    direction: the full sample covariance.

    >>> f = np.random.default_rng(0).normal(size=(500, 36))
    >>> model = GaussianModel.fit(f, n_components=8)
    >>> model.sample(np.random.default_rng(1), 3).shape
    (3, 36)
    """

    mean: np.ndarray  # (F,)
    cov: np.ndarray  # (F, F)

    @classmethod
    def fit(cls, features, n_components: int | None = None, ridge: float = 1e-6):
        """Fit to features (N, F); ``ridge`` is added to the diagonal of the covariance."""
        features = np.asarray(features, dtype=float)
        cov = np.cov(features, rowvar=False)
        if n_components is not None:
            values, vectors = np.linalg.eigh(cov)  # ascending
            values, vectors = values[::-1], vectors[:, ::-1]
            noise = values[n_components:].mean()  # σ²: the variance the q directions miss
            w = vectors[:, :n_components] * np.sqrt(values[:n_components] - noise)  # (F, q)
            cov = w @ w.T + noise * np.eye(len(cov))
        return cls(features.mean(axis=0), cov + ridge * np.eye(len(cov)))

    def sample(self, rng: np.random.Generator, n: int):
        """``n`` draws (n, F)."""
        return rng.multivariate_normal(self.mean, self.cov, size=n)

    def conditional_mean(self, values, known):
        """E[x | x_known]: the unknown features (``known`` False) predicted from the known.

        Args:
            values: (B, F); only the known entries are read.
            known: (B, F) bools.

        Returns:
            (B, F): the known entries unchanged, the others
            ``m_u + C_uk C_kk⁻¹ (x_k − m_k)``.
        """
        out = np.array(values, dtype=float)
        for b in range(len(out)):
            k, u = known[b], ~known[b]
            weights = np.linalg.solve(self.cov[np.ix_(k, k)], out[b, k] - self.mean[k])
            out[b, u] = self.mean[u] + self.cov[np.ix_(u, k)] @ weights
        return out


def infill_gaussian(gaussian: GaussianModel, normaliser: mt.Normaliser, x_true, fixed):
    """Baseline: in-fill with the conditional mean of a Gaussian model of the features."""
    values = normaliser.normalise(mt.gram_features(x_true))
    features = normaliser.denormalise(gaussian.conditional_mean(values, known_features(fixed)))
    return complete_motifs(mt.gram_from_features(features), x_true, fixed)
