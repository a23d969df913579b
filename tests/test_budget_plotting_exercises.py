import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from dgm_course import budget, plotting
from dgm_course.data import toy2d
from dgm_course.exercises import Case, compare
from dgm_course.exercises.intro import cauchy_generator, check_cauchy_generator, check_silhouette


def test_budget_switch(monkeypatch):
    monkeypatch.delenv("DGM_BUDGET", raising=False)
    assert budget.current() == "book" and budget.pick(smoke=1, book=2, gpu=3) == 2
    monkeypatch.setenv("DGM_BUDGET", "smoke")
    assert budget.pick(smoke=1, book=2, gpu=3) == 1
    monkeypatch.setenv("DGM_BUDGET", "GPU")
    if torch.cuda.is_available():
        assert budget.pick(smoke=1, book=2, gpu=3) == 3
    else:
        with pytest.warns(RuntimeWarning, match="no CUDA"):
            assert budget.pick(smoke=1, book=2) == 2
    monkeypatch.setenv("DGM_BUDGET", "fast")
    with pytest.raises(ValueError, match="'fast' is not a budget; use one of smoke, book, gpu"):
        budget.current()


def test_plots_draw_what_they_are_given():
    x = toy2d.sample("moons", 100)
    ax = plotting.scatter(x, bound=4, title="moons")
    assert ax.collections[0].get_offsets().shape == (100, 2) and ax.get_xlim() == (-4, 4)
    ax = plotting.density(lambda p: toy2d.log_density("8gaussians", p), 4, n=50)
    img = ax.images[0].get_array()
    assert img.shape == (50, 50) and float(img.sum()) * (8 / 50) ** 2 == pytest.approx(1.0, abs=0.02)
    # origin lower: a bump at (0, +2) appears in the upper rows of the image
    ax = plotting.density(lambda p: -((p - torch.tensor([0.0, 2.0])) ** 2).sum(1), 4, n=50)
    img = ax.images[0].get_array()
    assert img[30:].sum() > 100 * img[:20].sum()
    ax = plotting.image_grid(torch.rand(10, 1, 8, 8), nrow=5)
    assert ax.images[0].get_array().shape == (2 * 9 + 1, 5 * 9 + 1)
    ax = plotting.image_grid(torch.rand(4, 3, 6, 6))
    assert ax.images[0].get_array().shape == (2 * 7 + 1, 2 * 7 + 1, 3)


def test_trajectories_and_animation_follow_the_path():
    t = torch.linspace(0, 1, 11)[:, None, None]
    start = torch.randn(30, 2, generator=torch.Generator().manual_seed(0))
    path = (1 - t) * start + t * torch.tensor([1.0, 2.0])  # every point moves in a straight line to (1, 2)
    ax = plotting.trajectories(path, bound=3, lines=10)
    assert len(ax.lines) == 10
    assert ax.collections[1].get_offsets().tolist() == [[1.0, 2.0]] * 10  # end points in red
    animation = plotting.animate(path, bound=3)
    animation._func(7)  # draw frame 7
    frame = animation._fig.axes[0]
    assert frame.collections[0].get_offsets() == pytest.approx(path[7].numpy())
    assert frame.get_title() == "t = 0.70"
    html = plotting.animation_html(animation)
    assert "<script" in html and "fa-play" in html and "http" not in html  # nothing fetched from the network


def test_plots_reject_bad_input():
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        plotting.scatter(torch.zeros(10, 3))
    with pytest.raises(ValueError, match="channels"):
        plotting.image_grid(torch.zeros(2, 2, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        plotting.image_grid(torch.full((1, 1, 2, 2), float("nan")))
    with pytest.raises(ValueError, match=r"shape \(batch,\)"):
        plotting.density(lambda p: p, 4, n=10)
    with pytest.raises(ValueError, match=r"\(times >= 2, n, 2\)"):
        plotting.trajectories(torch.zeros(5, 2))
    with pytest.raises(ValueError, match="NaN"):
        plotting.animate(torch.full((3, 4, 2), float("nan")), bound=1)


def test_compare_reports_what_is_wrong():
    cases = [Case((torch.tensor([1.0, 2.0]),), "x = [1, 2]")]
    ok = compare(lambda x: 2 * x, lambda x: x + x, cases, name="double")
    assert ok and str(ok) == "✅ double: all 1 checks passed"
    wrong = compare(lambda x: 3 * x, lambda x: x + x, cases, name="double", hint="add x to itself")
    assert not wrong and ("x = [1, 2]: expected tensor of shape (2,) [2, 4], got tensor of shape (2,) [3, 6]"
                          in str(wrong))
    assert "hint: add x to itself" in str(wrong)
    shape = compare(lambda x: x.sum(), lambda x: x + x, cases, name="double")
    assert "expected shape (2,), got shape ()" in str(shape)
    dtype = compare(lambda x: (2 * x).double(), lambda x: x + x, cases, name="double")
    assert "expected dtype torch.float32, got torch.float64" in str(dtype)
    raised = compare(lambda x: x.nope(), lambda x: x + x, cases, name="double")
    assert "your function raised AttributeError" in str(raised)
    assert "expected a function" in str(compare(3, lambda x: x, cases, name="f"))


def test_intro_checkers_accept_the_solution_and_reject_mistakes():
    assert check_cauchy_generator(cauchy_generator)
    assert check_cauchy_generator(lambda z: -torch.tan(torch.pi * (0.5 - z)))  # an equivalent form
    assert not check_cauchy_generator(lambda z: torch.tan(torch.pi * z))
    assert not check_cauchy_generator(lambda z: torch.distributions.Normal(0.0, 1.0).icdf(z))

    def wrong_silhouette(x, labels):  # forgets to leave point i out of a(i)
        d = torch.cdist(x.double(), x.double())
        s = []
        for i in range(len(x)):
            same = labels == labels[i]
            a = d[i, same].mean()
            others = [d[i, labels == k].mean() for k in labels.unique() if k != labels[i]]
            b = min(others)
            s.append(float((b - a) / max(a, b)))
        return sum(s) / len(s)

    report = check_silhouette(wrong_silhouette)
    assert not report and "hint" in str(report)
