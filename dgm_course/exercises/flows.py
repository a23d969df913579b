r"""The bijection checks, and the checkers of the normalizing-flows chapter.

:func:`check_bijection` is the one harness every bijection of the package passes in the tests, and the
checker a student's own bijection goes through. On a copy of the layer, in float64, with its parameters
moved away from their (often identity) initialisation, it checks the contract of :mod:`dgm_course.flows`:

1. ``forward(x)`` returns ``(y, logabsdet)`` of shapes (n, d) and (n,); so does ``inverse``;
2. :math:`f^{-1}(f(x)) = x` and :math:`f(f^{-1}(z)) = z` (to 1e-5);
3. ``logabsdet`` equals :math:`\log|\det \nabla f(x)|` of the Jacobian computed by autograd (to 1e-6);
4. the log-determinants of ``forward`` at :math:`x` and of ``inverse`` at :math:`f(x)` sum to zero;
5. every output is finite for :math:`|x_i| \le 10`;
6. every parameter receives a finite gradient that is not identically zero.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .core import Case, Report, compare


def _points(d: int, generator: torch.Generator) -> Tensor:
    """Gaussian points, uniform points up to 10 in each coordinate, and the corners of [-10, 10]^d."""
    gaussian = 2 * torch.randn(48, d, generator=generator, dtype=torch.float64)
    wide = 20 * torch.rand(32, d, generator=generator, dtype=torch.float64) - 10
    corners = torch.tensor([[10.0] * d, [-10.0] * d, [10.0, -10.0] * (d // 2) + [10.0] * (d % 2)], dtype=torch.float64)
    return torch.cat([gaussian, wide, corners])


def _jacobian_logdet(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    r""":math:`\log|\det \nabla f(x_i)|` per row by autograd. The rows of a batch do not interact, so the
    Jacobian of :math:`x \mapsto \sum_i f(x_i)` holds each row's Jacobian: d backward passes in all."""
    jac = torch.autograd.functional.jacobian(lambda v: f(v).sum(dim=0), x)  # (d, n, d)
    return torch.linalg.slogdet(jac.permute(1, 0, 2))[1]


def _randomized(bijection: nn.Module, scale: float, generator: torch.Generator) -> nn.Module:
    layer = copy.deepcopy(bijection).double().eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return layer


def bijection_failures(bijection: nn.Module, dim: int | None = None, randomize: float = 0.2,
                       seed: int = 0) -> tuple[int, list[str]]:
    """Run the checks of the module docstring; return how many ran and a message for each that failed."""
    d = dim if dim is not None else getattr(bijection, "dim", None)
    if not isinstance(d, int) or d < 1:
        return 1, ["the bijection has no integer `dim` attribute; pass dim= to the checker"]
    gen = torch.Generator().manual_seed(seed)
    f = _randomized(bijection, randomize, gen)
    x = _points(d, gen)
    failures: list[str] = []
    checks = 0

    def check(ok: bool, message: Callable[[], str]) -> bool:
        """Count a check; on failure, record its message (built only then)."""
        nonlocal checks
        checks += 1
        if not ok:
            failures.append(message())
        return ok

    def call(method: str, v: Tensor) -> tuple[Tensor, Tensor] | None:
        try:
            out = getattr(f, method)(v)
        except Exception as err:  # noqa: BLE001, F841 - reported to the student (the message is built at once)
            check(False, lambda: f"{method} raised {type(err).__name__}: {err}")
            return None
        ok = isinstance(out, tuple) and len(out) == 2 and all(isinstance(t, Tensor) for t in out)
        if not check(ok, lambda: f"{method} must return a tuple (points, logabsdet) of two tensors; "
                                 f"got {type(out).__name__}"):
            return None
        y, ld = (t.detach() for t in out)
        shapes = tuple(y.shape) == (len(v), d) and tuple(ld.shape) == (len(v),)
        if not check(shapes, lambda: f"{method} returned shapes {tuple(y.shape)} and {tuple(ld.shape)}; "
                     f"expected ({len(v)}, {d}) and ({len(v)},): logabsdet is one number per sample"):
            return None
        return y, ld

    out = call("forward", x)
    if out is None:
        return checks, failures
    y, ld = out
    finite = torch.isfinite(y).all(dim=1) & torch.isfinite(ld)
    if not check(bool(finite.all()), lambda: f"forward gives NaN or inf at {int((~finite).sum())} of {len(x)} points "
                 f"with |x_i| <= 10, first at x = {x[~finite][0].tolist()}"):
        return checks, failures
    back = call("inverse", y)
    if back is None:
        return checks, failures
    x_back, ld_back = back
    err = float((x_back - x).abs().max())
    check(err <= 1e-5, lambda: f"inverse(forward(x)) differs from x by up to {err:.3g} (allowed 1e-5)")
    err = float((ld + ld_back).abs().max())
    check(err <= 1e-6, lambda: f"the logabsdet of forward at x and of inverse at f(x) should sum to 0; "
          f"they sum to up to {err:.3g}")
    z = torch.randn(32, d, generator=gen, dtype=torch.float64)
    zz = call("inverse", z)
    if zz is not None:
        again = call("forward", zz[0])
        if again is not None:
            err = float((again[0] - z).abs().max())
            check(err <= 1e-5, lambda: f"forward(inverse(z)) differs from z by up to {err:.3g} (allowed 1e-5)")
    try:
        reference = _jacobian_logdet(lambda v: f(v)[0], x[:24])
        err = float((reference - ld[:24]).abs().max())
        check(err <= 1e-6, lambda: f"forward's logabsdet differs from log|det| of the autograd Jacobian "
              f"by up to {err:.3g} (allowed 1e-6), e.g. at x = {x[int((reference - ld[:24]).abs().argmax())].tolist()}")
        inverse: Callable[[Tensor], tuple[Tensor, Tensor]] = getattr(f, "inverse")  # the bijection's, duck-typed
        reference = _jacobian_logdet(lambda v: inverse(v)[0], z[:24])
        err = float((reference - zz[1][:24]).abs().max()) if zz is not None else 0.0
        check(err <= 1e-6, lambda: f"inverse's logabsdet differs from log|det| of the autograd Jacobian "
              f"by up to {err:.3g}")
    except RuntimeError as err:
        check(False, lambda: f"autograd cannot differentiate through the bijection ({err}); use torch operations only")
    params = list(f.parameters())
    if params:
        f.zero_grad()
        y, ld = f(x[:48])
        loss = y.square().sum() + ld.sum()
        if loss.requires_grad:
            loss.backward()
        dead = [name for name, p in f.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
                or not p.grad.abs().sum() > 0]
        check(not dead, lambda: f"these parameters get no (finite, non-zero) gradient: {', '.join(dead)}")
    return checks, failures


def check_bijection(bijection: nn.Module, dim: int | None = None) -> Report:
    """Check that ``bijection`` keeps the contract of :mod:`dgm_course.flows` (see the module docstring).

    The layer itself is not changed: the checks run on a float64 copy with perturbed parameters.
    """
    checks, failures = bijection_failures(bijection, dim)
    hint = ("check each formula on one point by hand; compare your logabsdet with "
            "torch.autograd.functional.jacobian on a single input") if failures else ""
    return Report(f"bijection {type(bijection).__name__}", checks, failures, hint)


def lognormal_log_prob(x: Tensor) -> Tensor:
    r"""Reference: the log-density of :math:`X = e^Z`, :math:`Z \sim \mathcal N(0, 1)`, by the change of variables
    :math:`\log p_X(x) = \log p_Z(\log x) - \log x`."""
    return -0.5 * torch.log(x) ** 2 - 0.5 * math.log(2 * math.pi) - torch.log(x)


def check_lognormal_log_prob(log_prob: Callable[[Tensor], Tensor]) -> Report:
    r"""Check a student's log-density of :math:`e^Z`, :math:`Z \sim \mathcal N(0, 1)`, for ``x > 0``."""
    gen = torch.Generator().manual_seed(0)
    cases = [
        Case((torch.tensor([1.0], dtype=torch.float64),), "x = 1"),
        Case((torch.tensor([0.5, 2.0, 10.0], dtype=torch.float64),), "x = 0.5, 2, 10"),
        Case((torch.rand(5, 3, generator=gen, dtype=torch.float64) * 5 + 0.01,), "a (5, 3) batch"),
        Case((torch.tensor([0.3, 3.0]),), "float32 input"),
    ]
    return compare(log_prob, lognormal_log_prob, cases, name="lognormal_log_prob", rtol=1e-4, atol=1e-5,
                   hint="x = g(z) = exp(z), so g^{-1}(x) = log x and |d g^{-1}/dx| = 1/x; add the logs.")
