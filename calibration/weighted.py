"""Least squares in CIEDE2000's own metric, and the plane of light across a card.

The colour models of :mod:`calibration.fit` are linear in their parameters (a matrix applied to
linear camera RGB or to root-polynomial terms of it), so a fit that weighs each patch's error
as CIEDE2000 does stays one linear solve: each patch's three residuals are multiplied by the
root of CIEDE2000's local quadratic form at that patch's reference colour
(:func:`perceptual_metric_roots`). Leaving a patch out then has a closed form (the PRESS
identity for 3-row blocks, :func:`leave_one_out`).

A card is rarely lit evenly (a lamp to one side, a window): a patch near the bright end
reads lighter than its colour. :func:`fit_with_light_plane` fits, with the model, a light
level exp(a x + b y) over the card (x, y in the chart's millimetres / 100 from its centre),
so that the correction is the one at the card's centre; a and b are searched on grids (the
model is linear once they are fixed).

Every fit takes an optional `penalty`: a ridge, (p,) non-negative weights added to the normal
equations' diagonal (the parameters in :func:`design_matrix`'s order). It is fixed for a
photo, whatever the patches left out, so the leave-one-out shortcuts stay exact for it.
"""

from __future__ import annotations

import numpy as np

from imaging.color import ciede2000, linear_rgb_to_lab

__all__ = ["LIGHT_PLANE_LIMIT", "design_matrix", "fit_with_light_plane", "fold_predictions",
           "leave_one_out", "light_plane_leave_one_out", "model_terms", "parameters_to_matrix",
           "perceptual_metric_roots", "weighted_fit"]

_METRIC_STEP = 1e-4  # linear sRGB step of the finite differences of the metric
# Largest light slope searched, per 100 chart-mm (|a|, |b|): 0.3 is a third brighter across
# 100 mm; a card lit more unevenly than that is not one light.
LIGHT_PLANE_LIMIT = 0.3
# The slopes searched: a 7 x 7 grid (steps of 0.1), then steps of 0.025 within 0.05 of the
# coarse best (light levels within 1.25 % at 100 mm).
_COARSE_SLOPES = np.array([(a, b) for a in np.linspace(-LIGHT_PLANE_LIMIT, LIGHT_PLANE_LIMIT, 7)
                           for b in np.linspace(-LIGHT_PLANE_LIMIT, LIGHT_PLANE_LIMIT, 7)])
_FINE_OFFSETS = np.array([(a, b) for a in np.linspace(-0.05, 0.05, 5)
                          for b in np.linspace(-0.05, 0.05, 5)])


def perceptual_metric_roots(reference: np.ndarray) -> np.ndarray:
    """(n, 3, 3) R_i with R_i^T R_i the local metric of CIEDE2000 at each reference colour in
    linear sRGB: for a small error d, Delta-E00^2 ~ d^T R_i^T R_i d.

    Least squares on R_i-whitened errors weighs each patch's error in each direction as
    CIEDE2000 (what the calibration is judged by) does: a dark patch's error counts more than
    a light one's, a neutral's chroma error more than a saturated patch's. The quadratic form
    is read from CIEDE2000 itself by polarisation: G_ab = (f(h(e_a + e_b)) - f(h(e_a - e_b)))
    / 4h^2 with f(d) = Delta-E00(ref, ref + d)^2.
    """
    reference = np.asarray(reference, np.float64)
    reference_lab = linear_rgb_to_lab(reference)
    h = _METRIC_STEP
    basis = np.eye(3)
    metric = np.zeros((len(reference), 3, 3))
    for a in range(3):
        for b in range(a, 3):
            plus, minus = (ciede2000(reference_lab, linear_rgb_to_lab(
                reference + h * (basis[a] + sign * basis[b]))) for sign in (1.0, -1.0))
            metric[:, a, b] = metric[:, b, a] = (plus**2 - minus**2) / (4.0 * h * h)
    eigenvalues, vectors = np.linalg.eigh(metric)
    eigenvalues = np.maximum(eigenvalues, 1e-6 * eigenvalues.max(axis=1, keepdims=True))
    return np.einsum("iab,ib,icb->iac", vectors, np.sqrt(eigenvalues), vectors)


def model_terms(linear: np.ndarray, model: str) -> np.ndarray:
    """The model's terms of linear camera RGB (..., 3): RGB; RGB and 1 ("affine"); or
    R, G, B, sqrt(RG), sqrt(GB), sqrt(RB) ("root-polynomial-2", negatives clipped)."""
    if model == "root-polynomial-2":
        rgb = np.maximum(linear, 0.0)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        return np.stack([r, g, b, np.sqrt(r * g), np.sqrt(g * b), np.sqrt(r * b)], axis=-1)
    if model == "affine":
        return np.concatenate([linear, np.ones(linear.shape[:-1] + (1,))], axis=-1)
    return linear


def design_matrix(terms: np.ndarray, model: str) -> np.ndarray:
    """(..., m, 3, p): each patch's linear sRGB as a linear function of the model's parameters
    (the matrix's columns stacked; per-channel gains ("diagonal") one per channel), for terms
    (..., m, k)."""
    k = terms.shape[-1]
    if model == "diagonal":
        design = np.zeros(terms.shape[:-1] + (3, 3))
        design[..., np.arange(3), np.arange(3)] = terms
        return design
    design = np.zeros(terms.shape[:-1] + (3, 3 * k))
    for c in range(3):
        design[..., c, c * k:(c + 1) * k] = terms
    return design


def parameters_to_matrix(theta: np.ndarray, k: int, model: str) -> np.ndarray:
    """The parameters of :func:`design_matrix` as the (k, 3) matrix: terms @ matrix."""
    if model == "diagonal":
        return np.diag(theta)
    return theta.reshape(3, k).T


def _whiten(terms: np.ndarray, target: np.ndarray, metric_roots: np.ndarray,
            model: str) -> tuple[np.ndarray, np.ndarray]:
    design = np.einsum("iab,...ibp->...iap", metric_roots, design_matrix(terms, model))
    return design, np.einsum("iab,ib->ia", metric_roots, target)


def weighted_fit(terms: np.ndarray, target: np.ndarray, metric_roots: np.ndarray,
                 model: str, *, penalty: np.ndarray | None = None) -> np.ndarray:
    """The (k, 3) matrix minimising the sum of |R_i (terms_i @ matrix - target_i)|^2 (plus
    sum_j penalty_j theta_j^2)."""
    design, target_w = _whiten(terms, target, metric_roots, model)
    flat = design.reshape(-1, design.shape[2])
    if penalty is None:
        theta, *_ = np.linalg.lstsq(flat, target_w.ravel(), rcond=None)
    else:
        theta = np.linalg.solve(_with_ridge(flat.T @ flat, penalty), flat.T @ target_w.ravel())
    return parameters_to_matrix(theta, terms.shape[1], model)


def _with_ridge(gram: np.ndarray, penalty: np.ndarray | None) -> np.ndarray:
    """Normal equations' Gram matrices (..., p, p) with the ridge `penalty` (..., p) on their
    diagonals; unchanged without one."""
    if penalty is None:
        return gram
    diagonal = np.arange(gram.shape[-1])
    gram = gram.copy()
    gram[..., diagonal, diagonal] += penalty
    return gram


def _left_out_residuals(hat: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Each patch's whitened residual (..., m, 3, 1) when it is left out of the fit: (I -
    H_ii)^-1 times its in-sample `residual` (..., m, 3), `hat` its (..., m, 3, 3) block of the
    hat matrix (the PRESS identity for blocks; the 1e-9 keeps a patch the fit passes exactly
    through, H_ii = I, finite)."""
    return np.linalg.solve(np.eye(3) * (1.0 + 1e-9) - hat, residual[..., None])


def leave_one_out(terms: np.ndarray, target: np.ndarray, metric_roots: np.ndarray,
                  model: str, *, penalty: np.ndarray | None = None) -> np.ndarray:
    """Each patch's prediction (..., m, 3) by the fit to all the others, from one fit; terms
    (..., m, k) (several tone curves' at once), `penalty` (..., p) or (p,) a fixed ridge.

    Leaving a patch out removes its three whitened rows: its left-out residual is
    (I - H_ii)^-1 times its in-sample one, H_ii its 3 x 3 block of the hat matrix (the PRESS
    identity for blocks, which holds for a fixed ridge too), so no refit is needed.
    """
    design, target_w = _whiten(terms, target, metric_roots, model)  # (..., m, 3, p), (m, 3)
    flat = design.reshape(*design.shape[:-3], -1, design.shape[-1])  # (..., 3m, p)
    flat_t = np.swapaxes(flat, -1, -2)
    gram_inv = np.linalg.pinv(_with_ridge(flat_t @ flat, penalty))
    theta = gram_inv @ (flat_t @ target_w.reshape(-1, 1))  # (..., p, 1)
    residual = target_w - (design @ theta[..., None, :, :])[..., 0]
    hat = (design @ gram_inv[..., None, :, :]) @ np.swapaxes(design, -1, -2)  # 3 x 3 blocks
    loo_residual = _left_out_residuals(hat, residual)
    return target - np.linalg.solve(metric_roots, loo_residual)[..., 0]


def fold_predictions(fold_terms: np.ndarray, left_out: np.ndarray, target: np.ndarray,
                     metric_roots: np.ndarray, model: str, *,
                     penalty: np.ndarray | None = None) -> np.ndarray:
    """Patch `left_out[f]`'s prediction (f, 3) by the model fitted to all the other patches on
    `fold_terms[f]` (f, m, k): the terms of a tone curve that was itself fitted without that
    patch, so the PRESS identity of :func:`leave_one_out` does not apply.

    Every fold's least squares at once, by its normal equations (as :func:`leave_one_out`):
    the left-out patch's whitened rows are zeroed (a zero row adds nothing to the fit) and
    one batched solve does every fold, where one ``lstsq`` per fold spent more on its own
    overhead than on the solve. `penalty` (f, p) or (p,): each fold's fixed ridge.
    """
    folds = np.arange(len(left_out))
    design, target_w = _whiten(fold_terms, target, metric_roots, model)
    target_w = np.broadcast_to(target_w, design.shape[:-1]).copy()
    design[folds, left_out] = 0.0
    target_w[folds, left_out] = 0.0
    flat = design.reshape(len(folds), -1, design.shape[-1])  # (f, 3m, p)
    flat_t = flat.transpose(0, 2, 1)
    gram = _with_ridge(flat_t @ flat, penalty)
    rhs = flat_t @ target_w.reshape(len(folds), -1, 1)
    try:
        theta = np.linalg.solve(gram, rhs)
    except np.linalg.LinAlgError:  # a degenerate fold (terms that do not vary): least norm
        theta = np.linalg.pinv(gram) @ rhs
    own_design = design_matrix(fold_terms[folds, left_out], model)  # (f, 3, p)
    return (own_design @ theta)[..., 0]


def _grid_fits(camera: np.ndarray, xy: np.ndarray, target: np.ndarray,
               metric_roots: np.ndarray, model: str, slopes: np.ndarray,
               penalty: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The model fitted to camera / exp(a x + b y) at every (a, b) of `slopes` (s, 2), with
    all the patches and without each one.

    Returns (sum of squares (s,), parameters (s, 3k), sum of squares without patch i (s, m),
    patch i's prediction by the fit without it (s, m, 3)). A patch's whitened design is
    R_i (x) t_i (its metric root and its terms), so the normal equations are sums of
    G_i (x) t_i t_i^T and (G_i y_i) (x) t_i with G_i = R_i^T R_i: one matrix product over
    the patches for all slopes. Leaving patch i out: its whitened residual e_i becomes
    (I - H_ii)^-1 e_i and the sum of squares drops by e_i^T (I - H_ii)^-1 e_i (H_ii its
    3 x 3 block of the hat matrix), so no refit is needed.
    """
    m = len(xy)
    light = np.exp(-(slopes @ xy.T))  # (s, m)
    terms = model_terms(camera[None] * light[..., None], model)  # (s, m, k)
    n_slopes, k = terms.shape[0], terms.shape[-1]
    metric = np.einsum("iba,ibc->iac", metric_roots, metric_roots)  # (m, 3, 3)
    outer = (terms[..., :, None] * terms[..., None, :]).reshape(n_slopes, m, k * k)
    # einsum rather than BLAS: these products are small, and a threaded BLAS spends more CPU
    # on them than it saves
    gram = np.einsum("sin,iab->sanb", outer, metric).reshape(n_slopes, 3, k, k, 3)
    gram = gram.transpose(0, 1, 2, 4, 3).reshape(n_slopes, 3 * k, 3 * k)
    gram_inv = np.linalg.inv(_with_ridge(gram, penalty) + 1e-12 * np.eye(3 * k))
    weighted_target = np.einsum("iab,ib->ia", metric, target)  # (m, 3)
    rhs = np.einsum("sij,ia->saj", terms, weighted_target).reshape(n_slopes, 3 * k)
    theta = (gram_inv @ rhs[..., None])[..., 0]
    whitened = (metric_roots[None, :, :, :, None] * terms[:, :, None, None, :]).reshape(
        n_slopes, m, 3, 3 * k)
    target_w = np.einsum("iab,ib->ia", metric_roots, target)
    residual = target_w[None] - (whitened @ theta[:, None, :, None])[..., 0]
    hat = (whitened @ gram_inv[:, None]) @ whitened.transpose(0, 1, 3, 2)  # (s, m, 3, 3)
    loo_residual = _left_out_residuals(hat, residual)
    sse = (residual**2).sum(axis=(1, 2))
    fold_sse = sse[:, None] - (residual * loo_residual[..., 0]).sum(axis=2)
    predicted = target[None] - (np.linalg.inv(metric_roots)[None] @ loo_residual)[..., 0]
    return sse, theta, fold_sse, predicted


def _search(camera: np.ndarray, xy: np.ndarray, target: np.ndarray,
            metric_roots: np.ndarray, model: str, folds: np.ndarray | None,
            penalty: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The slopes with the least sum of squares, coarse then fine, for the fit with all the
    patches (`folds` None) or for each fit without patch i, i in `folds`.

    Returns (slopes (f, 2), parameters with all the patches at them (f, 3k), predictions of
    the left-out patches at them (f, 3); zeros for the fit with all). Every fit picks its own
    slopes from its own sums of squares; the fine grids of all the fits are searched at once.
    """
    best = None
    for stage in ("coarse", "fine"):
        if stage == "coarse":
            slopes = _COARSE_SLOPES
        else:
            slopes = np.unique(np.round(np.clip(
                (best[:, None] + _FINE_OFFSETS[None]).reshape(-1, 2),
                -LIGHT_PLANE_LIMIT, LIGHT_PLANE_LIMIT), 6), axis=0)
        sse, theta, fold_sse, predicted = _grid_fits(camera, xy, target, metric_roots, model,
                                                     slopes, penalty)
        score = sse[:, None] if folds is None else fold_sse[:, folds]  # (s, f)
        if stage == "fine":  # each fit searches within its own coarse best's neighbourhood
            near = (np.abs(slopes[:, None] - best[None]) <= 0.05 + 1e-6).all(axis=2)
            score = np.where(near, score, np.inf)
        pick = np.argmin(score, axis=0)  # (f,)
        best = slopes[pick]
    if folds is None:
        return best, theta[pick], np.zeros((1, 3))
    return best, theta[pick], predicted[pick, folds]


def fit_with_light_plane(camera: np.ndarray, xy: np.ndarray, target: np.ndarray,
                         metric_roots: np.ndarray, model: str, *,
                         penalty: np.ndarray | None = None
                         ) -> tuple[np.ndarray, tuple[float, float]]:
    """The model's (k, 3) matrix and the light's slopes (a, b) fitted together (the least
    weighted sum of squares, see :func:`_search`). `model` is "matrix" or
    "root-polynomial-2" (a full matrix of the terms)."""
    _check_plane_model(model)
    slopes, theta, _ = _search(camera, xy, target, metric_roots, model, None, penalty)
    k = model_terms(camera[:1], model).shape[1]
    return (parameters_to_matrix(theta[0], k, model),
            (float(slopes[0, 0]), float(slopes[0, 1])))


def light_plane_leave_one_out(camera: np.ndarray, folds: dict[int, np.ndarray],
                              xy: np.ndarray, target: np.ndarray, metric_roots: np.ndarray,
                              model: str, *, penalty: np.ndarray | None = None
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Each patch's prediction (m, 3) by the model and light fitted without it (the slopes
    with the least sum of squares without it, see :func:`_search`): under the light of the
    card's centre (what the chart's colours are compared with), and under its own place's
    light (what the corrected photo shows there, the light left in). `folds` {i: linear
    camera RGB (m, 3) of the tone curve fitted without patch i} replace `camera` for those
    patches (the neutral ones, which the curve is fitted on)."""
    _check_plane_model(model)
    m = len(xy)
    slopes, _, centre = _search(camera, xy, target, metric_roots, model, np.arange(m),
                                penalty)
    for i, fold_camera in folds.items():
        fold_slopes, _, fold_centre = _search(fold_camera, xy, target, metric_roots, model,
                                              np.array([i]), penalty)
        slopes[i], centre[i] = fold_slopes[0], fold_centre[0]
    # Both models' terms scale with the light, so its own place's prediction is the centre's
    # divided by the light factor the fit applied there.
    own_light = np.exp(-(slopes * xy).sum(axis=1))
    return centre, centre / own_light[:, None]


def _check_plane_model(model: str) -> None:
    if model not in ("matrix", "root-polynomial-2"):
        raise ValueError(f"a plane of light is fitted with a full matrix, not {model!r}")
