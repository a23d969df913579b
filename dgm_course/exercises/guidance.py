r"""Checkers for the exercises of the guided-diffusion chapter.

The exercise: the classifier-free guided score (``eq-cfg``, in scores)

.. math::
    \tilde s(x, y) = (1 + w)\,\nabla_x\log p_t(x \mid y) - w\,\nabla_x\log p_t(x)

of a two-class mixture :math:`x_0 \sim \sum_{k \in \{0, 1\}} p(y = k)\,\mathcal N(c_k, \tau^2 I)` in
:math:`\mathbb R^d`, noised at time :math:`t` (:math:`x_t = \alpha_t x_0 + \sigma_t\varepsilon`), so that class
:math:`k` of :math:`x_t` is :math:`\mathcal N(\alpha_t c_k, (\alpha_t^2\tau^2 + \sigma_t^2) I)`. The reference takes
both scores by autograd of the exact log-densities (:func:`dgm_course.data.toy2d.noised_mixture`, the formula behind
:func:`dgm_course.diffusion.exact.mixture`), not from the closed form the student is expected to write.

:class:`ExactLabelledMixture` is the same mixture as a labelled network for :func:`dgm_course.diffusion.guided`: the
exact noise predictions that a :class:`~dgm_course.diffusion.LabelledField` trained on it would try to reach. The
chapter guides it at several weights, with no training.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..data.toy2d import noised_mixture
from ..diffusion import Schedule
from .core import Case, Report, compare

GuidedScore = Callable[[Tensor, Tensor, float, Tensor, float, float, float, Tensor], Tensor]


class ExactLabelledMixture(nn.Module):
    r"""The exact noise predictions of :math:`x_0 \sim \sum_k p(y = k)\,\mathcal N(c_k, \tau^2 I)` (``centres``
    :math:`c_k` of shape (classes, d), ``prior`` :math:`p(y)`, equal unless given) noised under ``schedule``, read as a
    labelled network ``net(t, x, y)``: for the label :math:`k`, :math:`-\sigma_t\nabla_x\log p_t(x \mid k) =
    \sigma_t(x - \alpha_t c_k)/v_t` with :math:`v_t = \alpha_t^2\tau^2 + \sigma_t^2`; for the null label :attr:`null`
    = classes, :math:`-\sigma_t\nabla_x\log p_t(x)`, the same averaged with the posterior :math:`p_t(k \mid x)`. With
    :func:`~dgm_course.diffusion.guided` it gives the guided score ``eq-cfg`` with exact scores; every sampler takes
    it. In closed form (the tests check it against :func:`reference_guided_score`, which differentiates the
    log-densities)."""

    centres: Tensor  # buffers: the class centres and the log prior
    log_prior: Tensor

    def __init__(self, centres: Tensor, tau: float, schedule: Schedule, prior: Tensor | None = None) -> None:
        super().__init__()
        centres = torch.as_tensor(centres)
        if centres.ndim != 2:
            raise ValueError(f"centres must have shape (classes, d); got {tuple(centres.shape)}")
        self.dim, self.classes = centres.shape[1], len(centres)
        prior = torch.full((self.classes,), 1 / self.classes) if prior is None else torch.as_tensor(prior)
        if prior.shape != (self.classes,) or (prior <= 0).any() or abs(float(prior.sum()) - 1) > 1e-6:
            raise ValueError(f"prior must be {self.classes} positive numbers summing to 1; got {prior.tolist()}")
        if not tau > 0:
            raise ValueError(f"tau must be positive; got {tau!r}")
        self.null, self.schedule, self.tau = self.classes, schedule, float(tau)
        self.register_buffer("centres", centres)
        self.register_buffer("log_prior", prior.log())

    def forward(self, t: Tensor, x: Tensor, y: Tensor) -> Tensor:
        r"""The exact noise predictions (batch, d) at times ``t`` (batch,) and points ``x`` (batch, d) for the labels
        ``y`` (batch,): :math:`-\sigma_t\nabla_x\log p_t(x \mid y)`, or :math:`-\sigma_t\nabla_x\log p_t(x)` where
        ``y`` is :attr:`null`."""
        a = self.schedule.alpha(t).to(x.dtype)[:, None, None]
        s = self.schedule.sigma(t).to(x.dtype)[:, None, None]
        v = a**2 * self.tau**2 + s**2
        diff = x[:, None, :] - a * self.centres.to(x)[None]  # (batch, classes, d)
        eps = s * diff / v  # -sigma_t grad log p_t(x | k)
        posterior = torch.softmax(self.log_prior.to(x) - (diff**2).sum(-1) / (2 * v[..., 0]), dim=1)  # p_t(k | x)
        eps = torch.cat([eps, (posterior[..., None] * eps).sum(1, keepdim=True)], dim=1)  # and the mixture's
        return eps[torch.arange(len(x)), y]


def _grad(log_density: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    with torch.enable_grad():
        y = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(log_density(y).sum(), y)
    return grad


def _scores(x: Tensor, y: Tensor, centres: Tensor, tau: float, alpha_t: float, sigma_t: float,
            prior: Tensor) -> tuple[Tensor, Tensor]:
    r""":math:`\nabla_x\log p_t(x \mid y)` (each row at its own label) and :math:`\nabla_x\log p_t(x)`, by autograd."""
    a = torch.full((len(x), 1), alpha_t, dtype=x.dtype)
    s = torch.full((len(x), 1), sigma_t, dtype=x.dtype)
    zero = torch.zeros(1, dtype=x.dtype)
    def of_class(k: int) -> Callable[[Tensor], Tensor]:  # the log-density of class k alone
        return lambda z: noised_mixture(z, centres[k:k + 1], zero, tau, a, s)

    per_class = [_grad(of_class(k), x) for k in (0, 1)]
    conditional = torch.where((y == 0)[:, None], per_class[0], per_class[1])
    unconditional = _grad(lambda z: noised_mixture(z, centres, prior.log(), tau, a, s), x)
    return conditional, unconditional


def reference_guided_score(x: Tensor, y: Tensor, w: float, centres: Tensor, tau: float, alpha_t: float,
                           sigma_t: float, prior: Tensor) -> Tensor:
    r"""The guided score :math:`(1 + w)\nabla\log p_t(x \mid y) - w\nabla\log p_t(x)` of the two-class mixture
    (module docstring) at the rows of ``x`` (batch, d), each for its label ``y`` (batch,) in {0, 1}; ``centres``
    (2, d) are :math:`c_0, c_1`, ``prior`` (2,) is :math:`p(y)`. Both scores by autograd of the exact log-densities."""
    conditional, unconditional = _scores(x, y, centres, tau, alpha_t, sigma_t, prior)
    return (1 + w) * conditional - w * unconditional


def _mistakes(case: Case) -> list[tuple[str, Tensor]]:
    """What common slips return on ``case``, each with its description."""
    x, y, w, centres, tau, alpha_t, sigma_t, prior = case.args
    cond, unc = _scores(x, y, centres, tau, alpha_t, sigma_t, prior)
    equal = torch.full_like(prior, 0.5)
    _, unc_equal = _scores(x, y, centres, tau, alpha_t, sigma_t, equal)
    # the noised class law without alpha_t: N(c_k, (tau^2 + sigma_t^2) I)
    cond_na, unc_na = _scores(x, y, centres, (tau**2 + sigma_t**2) ** 0.5, 1.0, 0.0, prior)
    out = [
        ("(1 - w) s(x | y) + w s(x): the sign of w is flipped", (1 - w) * cond + w * unc),
        ("the unconditional score s(x) alone: it was used in both terms", unc),
        ("the two scores swapped, (1 + w) s(x) - w s(x | y)", (1 + w) * unc - w * cond),
        ("the unconditional score with equal class weights: p_t(x) weighs class k by p(y = k)",
         (1 + w) * cond - w * unc_equal),
        ("the scores of the un-noised mixture scaled wrongly: class k of x_t is N(alpha_t c_k, "
         "(alpha_t^2 tau^2 + sigma_t^2) I), not N(c_k, (tau^2 + sigma_t^2) I)", (1 + w) * cond_na - w * unc_na),
        ("minus the guided score: a score points towards higher density, -(x - alpha_t c_k) / v_t",
         -((1 + w) * cond - w * unc)),
    ]
    if w != 0:
        out.insert(2, ("the conditional score s(x | y) alone: the weight w was not applied", cond))
    return out


def _diagnose(student: GuidedScore, case: Case) -> str:
    try:
        got = student(*case.args)
        for text, value in _mistakes(case):
            if isinstance(got, Tensor) and got.shape == value.shape and torch.allclose(
                    got.detach().double(), value.double(), atol=1e-9, rtol=1e-9):
                return f" -- your output equals {text}"
    except Exception:  # noqa: BLE001 - compare already reported the error
        pass
    return ""


def _cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    f64 = torch.float64
    cases = []
    plans = [  # (schedule, t, w, centres, tau, prior, what the case tests)
        ("linear", 0.3, 1.0, [[-1.0, 0.0], [1.0, 0.0]], 0.5, [0.5, 0.5], "w = 1, equal classes"),
        ("linear", 0.05, 3.0, [[-1.0, 0.5], [1.5, -0.5]], 0.4, [0.5, 0.5], "w = 3 near the data"),
        ("linear", 0.9, 8.0, [[-1.0, 0.0], [1.0, 0.0]], 0.5, [0.5, 0.5], "w = 8 near the noise"),
        ("cosine", 0.5, 0.0, [[0.0, 2.0], [0.0, -2.0]], 0.7, [0.5, 0.5], "w = 0 (the conditional score itself)"),
        ("linear", 0.4, 2.0, [[-1.0, 0.0], [1.0, 0.0]], 0.6, [0.8, 0.2], "w = 2, unequal classes p(y) = (0.8, 0.2)"),
        ("cosine", 0.6, 0.5, [[1.0, -1.0, 0.5], [-0.5, 1.0, 0.0]], 0.3, [0.3, 0.7],
         "w = 0.5 in 3 dimensions, p(y) = (0.3, 0.7)"),
    ]
    for kind, t, w, centres, tau, prior, what in plans:
        sched = Schedule(kind)
        alpha_t, sigma_t = float(sched.alpha(t)), float(sched.sigma(t))
        c = torch.tensor(centres, dtype=f64)
        x = 1.5 * torch.randn(8, c.shape[1], generator=gen, dtype=f64)
        y = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
        cases.append(Case((x, y, w, c, tau, alpha_t, sigma_t, torch.tensor(prior, dtype=f64)),
                          f"{what}, the {kind} schedule at t = {t} (alpha_t = {alpha_t:.4f}, sigma_t = {sigma_t:.4f})"))
    x = torch.tensor([[0.0, 0.0]], dtype=f64)  # on the boundary of two equal classes
    cases.append(Case((x, torch.tensor([1]), 4.0, torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=f64), 0.5, 0.8, 0.6,
                       torch.tensor([0.5, 0.5], dtype=f64)), "one point halfway between the classes, w = 4"))
    return cases


def check_guided_score(guided_score: GuidedScore) -> Report:
    r"""Check a student's ``guided_score(x, y, w, centres, tau, alpha_t, sigma_t, prior)``: the classifier-free guided
    score :math:`(1 + w)\nabla\log p_t(x \mid y) - w\nabla\log p_t(x)` of the two-class mixture
    :math:`\sum_k p(y = k)\,\mathcal N(c_k, \tau^2 I)` noised to :math:`\alpha_t x_0 + \sigma_t\varepsilon`, at the rows
    of ``x`` (batch, d) each for its label ``y[i]`` in {0, 1}; ``centres`` (2, d), ``prior`` (2,) (float64 tensors),
    ``w``, ``tau``, ``alpha_t``, ``sigma_t`` numbers. Against :func:`reference_guided_score` (autograd of the exact
    log-densities) on seven inputs: times of the linear and cosine schedules, w from 0 to 8, unequal classes, three
    dimensions, one point on the boundary. A failed input names the slip when the output is a common one."""
    name, hint = "guided_score", ("class k of x_t is N(alpha_t c_k, v_t I) with v_t = alpha_t^2 tau^2 + sigma_t^2; "
                                  "p_t(x) is the mixture of these with weights p(y = k), and its score is the "
                                  "conditional scores averaged with the weights p_t(y = k | x)")
    if not callable(guided_score):
        return compare(guided_score, reference_guided_score, [], name=name)
    cases = _cases()
    failures = []
    for case in cases:
        report = compare(guided_score, reference_guided_score, [case], name=name, atol=1e-9, rtol=1e-9)
        failures += [line + _diagnose(guided_score, case) for line in report.failures]
    return Report(name, len(cases), failures, hint if failures else "")
