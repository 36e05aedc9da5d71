"""2-D optimizer test surfaces: values, minima, gradients, windows, errors."""

from __future__ import annotations

import math

import pytest
import torch

from smithing.data import surfaces as sf

ALL = ("rosenbrock", "beale", "himmelblau", "saddle", "quadratic")


def grad(s: sf.Surface, point) -> torch.Tensor:
    xy = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(s(xy), xy)
    return g


def hessian(s: sf.Surface, point) -> torch.Tensor:
    return torch.autograd.functional.hessian(s.f, torch.tensor(point, dtype=torch.float64))


def test_registry():
    assert set(ALL) <= set(sf.names())
    with pytest.raises(ValueError, match="unknown surface 'rosenbrok'.*did you mean 'rosenbrock'"):
        sf.surface("rosenbrok")


@pytest.mark.parametrize("name", ALL)
def test_minima_are_stationary_with_known_value(name):
    s = sf.surface(name)
    assert s.name == name and s.description
    for m in s.minima:
        value = s(torch.tensor(m, dtype=torch.float64))
        assert value.item() == pytest.approx(s.f_min, abs=1e-20)
        assert grad(s, m).abs().max() < 1e-9
        assert torch.linalg.eigvalsh(hessian(s, m)).min() > 0  # a strict minimum
        assert s.xlim[0] < m[0] < s.xlim[1] and s.ylim[0] < m[1] < s.ylim[1]
    # the start is inside the window and not stationary
    assert s.xlim[0] < s.start[0] < s.xlim[1] and s.ylim[0] < s.start[1] < s.ylim[1]
    assert grad(s, s.start).norm() > 1e-3


def test_known_values():
    def at(name, x, y, **kw):
        return sf.surface(name, **kw)(torch.tensor([x, y], dtype=torch.float64)).item()

    assert at("rosenbrock", 1.0, 1.0) == 0.0
    assert at("rosenbrock", 0.0, 0.0) == 1.0
    assert at("rosenbrock", -1.2, 1.0) == pytest.approx(24.2)  # Rosenbrock's start
    assert at("rosenbrock", 2.0, 4.0, a=2.0) == 0.0
    assert at("beale", 3.0, 0.5) == 0.0
    assert at("beale", 0.0, 7.0) == pytest.approx(1.5**2 + 2.25**2 + 2.625**2)
    assert at("himmelblau", 3.0, 2.0) == 0.0
    assert at("himmelblau", 0.0, 0.0) == 170.0
    assert at("saddle", 1.0, 2.0) == -3.0
    assert at("quadratic", 1.0, 1.0, condition=10.0) == 5.5


def test_himmelblau_four_minima():
    s = sf.surface("himmelblau")
    assert len(s.minima) == 4 and len({(round(x, 3), round(y, 3)) for x, y in s.minima}) == 4


def test_rosenbrock_gradient_matches_formula():
    s = sf.surface("rosenbrock", a=1.0, b=100.0)
    for x, y in [(-1.2, 1.0), (0.3, -0.7), (2.0, 1.5)]:
        expected = torch.tensor(
            [-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)], dtype=torch.float64
        )
        torch.testing.assert_close(grad(s, (x, y)), expected)


def test_saddle_has_no_minimum():
    s = sf.surface("saddle")
    assert s.minima == () and s.f_min is None and s.saddles == ((0.0, 0.0),)
    assert grad(s, (0.0, 0.0)).abs().max() == 0
    eig = torch.linalg.eigvalsh(hessian(s, (0.0, 0.0)))
    torch.testing.assert_close(eig, torch.tensor([-2.0, 2.0], dtype=torch.float64))


@pytest.mark.parametrize("angle", [0.0, 0.7])
def test_quadratic_condition_number(angle):
    s = sf.surface("quadratic", condition=25.0, angle=angle)
    eig = torch.linalg.eigvalsh(hessian(s, (0.3, -0.2)))  # constant Hessian A
    torch.testing.assert_close(eig, torch.tensor([1.0, 25.0], dtype=torch.float64))
    # the steep axis is the rotation of the y axis
    steep = torch.tensor([-math.sin(angle), math.cos(angle)], dtype=torch.float64)
    torch.testing.assert_close(hessian(s, (0.0, 0.0)) @ steep, 25.0 * steep)


def test_broadcasting_and_grid():
    s = sf.surface("himmelblau")
    pts = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = s(pts)
    assert out.shape == (3, 4)
    torch.testing.assert_close(out[1, 2], s(pts[1, 2]))
    X, Y, Z = s.grid(50)
    assert X.shape == Y.shape == Z.shape == (50, 50)
    assert X[0, 0].item() == s.xlim[0] and X[0, -1].item() == s.xlim[1]  # x along columns
    assert Y[0, 0].item() == s.ylim[0] and Y[-1, 0].item() == s.ylim[1]
    torch.testing.assert_close(Z[7, 11], s(torch.stack([X[7, 11], Y[7, 11]])))


def test_errors():
    s = sf.surface("beale")
    with pytest.raises(ValueError, match=r"xy must have shape \(\.\.\., 2\), got \(3,\)"):
        s(torch.zeros(3))
    with pytest.raises(ValueError, match="b=-1.0 is invalid: expected a positive number"):
        sf.surface("rosenbrock", b=-1.0)
    with pytest.raises(ValueError, match="condition=0.5 is invalid: expected a number >= 1"):
        sf.surface("quadratic", condition=0.5)
    with pytest.raises(ValueError, match="n=1 is invalid"):
        s.grid(1)
    with pytest.raises(TypeError):
        sf.surface("beale", a=1.0)
