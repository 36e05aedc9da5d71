"""Two-dimensional test surfaces for watching optimizers move (the race of the optimizers).

Each surface is a :class:`Surface`: a differentiable ``f(xy) -> value`` on points ``xy`` of shape
``(..., 2)`` (any leading shape: a batch of points, or one point per ensemble member), its global
minima, a suggested start point and a plot window for contour plots. Surfaces are built by name
from the registry :data:`SURFACES`, with parameters::

    s = surface("rosenbrock", b=100.0)
    xy = torch.tensor(s.start, requires_grad=True)
    s(xy).backward()

Built in: ``rosenbrock``, ``beale``, ``himmelblau``, ``saddle``, ``quadratic`` (ill-conditioned).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from smithing._registry import Registry, check

__all__ = [
    "Point",
    "Surface",
    "SURFACES",
    "surface",
    "names",
    "rosenbrock",
    "beale",
    "HIMMELBLAU_MINIMA",
    "himmelblau",
    "saddle",
    "quadratic",
]

Point = tuple[float, float]


@dataclass(frozen=True)
class Surface:
    """A 2-D test function with what a contour plot and an optimizer race need.

    ``minima`` are the global minimizers (empty when the function is unbounded below, as for the
    saddle), ``f_min`` the value there (None when unbounded), ``saddles`` known saddle points.
    """

    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    minima: tuple[Point, ...]
    start: Point
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    description: str
    f_min: float | None = 0.0
    saddles: tuple[Point, ...] = ()

    def __call__(self, xy: torch.Tensor) -> torch.Tensor:
        return self.f(xy)

    def grid(
        self, n: int = 200, dtype: torch.dtype = torch.float64
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(X, Y, Z)``, each (n, n), of ``f`` on an ``n x n`` grid over the plot window
        (``X`` varies along columns: ready for ``matplotlib``'s ``contour(X, Y, Z)``)."""
        check(isinstance(n, int) and n >= 2, "n", n, "an integer >= 2")
        xs = torch.linspace(*self.xlim, n, dtype=dtype)
        ys = torch.linspace(*self.ylim, n, dtype=dtype)
        X, Y = torch.meshgrid(xs, ys, indexing="xy")  # (n, n) each
        with torch.no_grad():
            Z = self.f(torch.stack([X, Y], dim=-1))  # (n, n)
        return X, Y, Z


#: name -> factory ``(**params) -> Surface``
SURFACES: Registry[Callable[..., Surface]] = Registry("surface")


def surface(name: str, **params) -> Surface:
    """The surface ``name`` (see :func:`names`) built with ``params`` (e.g. ``b=100.0``)."""
    return SURFACES.get(name)(**params)


def names() -> list[str]:
    return SURFACES.names()


def _xy(xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if xy.dim() == 0 or xy.shape[-1] != 2:
        raise ValueError(f"xy must have shape (..., 2), got {tuple(xy.shape)}")
    return xy[..., 0], xy[..., 1]


def _finite(name: str, value: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    check(ok, name, value, "a finite number")


# ------------------------------------------------------------------------------------------------


@SURFACES.register("rosenbrock", description="Rosenbrock's banana valley (a=1, b=100)")
def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """``f(x, y) = (a - x)^2 + b (y - x^2)^2``; one minimum, ``f(a, a^2) = 0``.

    Rosenbrock, "An automatic method for finding the greatest or least value of a function",
    The Computer Journal 3(3), 1960. A long, curved, flat-bottomed valley: easy to reach, slow
    to follow. Start ``(-1.2, 1)``, Rosenbrock's own.
    """
    _finite("a", a)
    _finite("b", b)
    check(b > 0, "b", b, "a positive number")

    def f(xy: torch.Tensor) -> torch.Tensor:
        x, y = _xy(xy)
        return (a - x) ** 2 + b * (y - x**2) ** 2

    return Surface(
        name="rosenbrock",
        f=f,
        minima=((float(a), float(a) ** 2),),
        start=(-1.2, 1.0),
        xlim=(min(-2.0, a - 1.0), max(2.0, a + 1.0)),
        ylim=(min(-1.0, a * a - 1.0), max(3.0, a * a + 1.0)),
        description=f"Rosenbrock valley (a={a:g}, b={b:g}), minimum f({a:g}, {a * a:g}) = 0",
    )


@SURFACES.register("beale", description="Beale's function: flat plateaus, sharp ridges")
def beale() -> Surface:
    """``f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2``.

    Beale, "On an iterative method for finding a local minimum of a function of more than one
    variable", Technical Report 25, Princeton University, 1958. One minimum ``f(3, 0.5) = 0``
    in the usual window [-4.5, 4.5]^2; flat along x = 0 (f = 14.203125 there), steep corners.
    """

    def f(xy: torch.Tensor) -> torch.Tensor:
        x, y = _xy(xy)
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2

    return Surface(
        name="beale",
        f=f,
        minima=((3.0, 0.5),),
        start=(1.0, 1.5),
        xlim=(-4.5, 4.5),
        ylim=(-4.5, 4.5),
        description="Beale function, minimum f(3, 0.5) = 0",
    )


HIMMELBLAU_MINIMA: tuple[Point, ...] = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286169),
    (3.5844283403304917, -1.8481265269644034),
)  # the last three found by Newton's method in float64 (|grad| < 1e-12)


@SURFACES.register("himmelblau", description="Himmelblau's function: four equal minima")
def himmelblau() -> Surface:
    """``f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2``; four global minima, all ``f = 0``.

    Himmelblau, "Applied Nonlinear Programming", McGraw-Hill, 1972. Minima at (3, 2),
    (-2.805118, 3.131313), (-3.779310, -3.283186), (3.584428, -1.848127); a local maximum at
    (-0.270845, -0.923039). Which minimum an optimizer reaches from the start (0, 0) depends on
    its path.
    """

    def f(xy: torch.Tensor) -> torch.Tensor:
        x, y = _xy(xy)
        return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2

    return Surface(
        name="himmelblau",
        f=f,
        minima=HIMMELBLAU_MINIMA,
        start=(0.0, 0.0),
        xlim=(-5.0, 5.0),
        ylim=(-5.0, 5.0),
        description="Himmelblau function, four minima with f = 0",
    )


@SURFACES.register("saddle", description="the saddle x^2 - y^2 (no minimum)")
def saddle() -> Surface:
    """``f(x, y) = x^2 - y^2``: a saddle point at the origin, unbounded below, no minimum.

    ``minima`` is empty and ``f_min`` None. The start (-1.5, 0.01) lies just off the ridge
    y = 0, so plain gradient descent first slides towards the saddle and escapes only slowly
    (the y-component grows by a factor (1 + 2 lr) per step), while momentum escapes sooner.
    """

    def f(xy: torch.Tensor) -> torch.Tensor:
        x, y = _xy(xy)
        return x**2 - y**2

    return Surface(
        name="saddle",
        f=f,
        minima=(),
        start=(-1.5, 0.01),
        xlim=(-2.0, 2.0),
        ylim=(-2.0, 2.0),
        description="saddle x^2 - y^2: saddle point at (0, 0), unbounded below, no minimum",
        f_min=None,
        saddles=((0.0, 0.0),),
    )


@SURFACES.register("quadratic", description="ill-conditioned quadratic (condition number 50)")
def quadratic(condition: float = 50.0, angle: float = 0.0) -> Surface:
    """``f(z) = 1/2 z^T A z`` with ``A = R diag(1, condition) R^T``, ``R`` the rotation by
    ``angle`` radians; minimum ``f(0, 0) = 0``.

    The condition number of ``A`` is ``condition``: gradient descent must take steps
    ``lr < 2 / condition`` to stay stable along the steep axis and then crawls along the flat
    one at rate ``1 - lr`` per step; momentum and per-coordinate methods (AdaGrad, RMSprop,
    Adam) help, the latter only when the axes are aligned with the coordinates (``angle=0``).
    """
    _finite("condition", condition)
    check(condition >= 1, "condition", condition, "a number >= 1")
    _finite("angle", angle)
    c, s = math.cos(angle), math.sin(angle)
    # A = R diag(1, k) R^T, R = [[c, -s], [s, c]]
    a11 = c * c + condition * s * s
    a22 = s * s + condition * c * c
    a12 = (1.0 - condition) * c * s

    def f(xy: torch.Tensor) -> torch.Tensor:
        x, y = _xy(xy)
        return 0.5 * (a11 * x * x + 2.0 * a12 * x * y + a22 * y * y)  # 1/2 z^T A z

    lim = (-5.0, 5.0)
    return Surface(
        name="quadratic",
        f=f,
        minima=((0.0, 0.0),),
        start=(-4.0, 2.0),
        xlim=lim,
        ylim=(-3.0, 3.0) if angle == 0 else lim,
        description=f"ill-conditioned quadratic, condition number {condition:g}, "
        f"axes rotated by {angle:g} rad; minimum f(0, 0) = 0",
    )
