"""smithing.optim optimizers: PyTorch's step against float64 transcriptions of the lecture's and
the papers' update rules, the per-member learning-rate trick, and validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smithing import optim

DIM = 6
STEPS = 15
RTOL = 1e-12
ATOL = 1e-13


# --------------------------------------------------------------------------- problems


def _quadratic(seed: int = 0):
    """f(x) = 1/2 x^T A x - b^T x with A positive definite; grad = A x - b."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((DIM, DIM))
    a = q @ q.T / DIM + 0.1 * np.eye(DIM)  # (DIM, DIM)
    b = rng.standard_normal(DIM)
    return lambda x: a @ x - b


def _logistic(seed: int = 1):
    """Mean logistic loss log(1 + exp(-y w.x)) on 20 random points; grad = -X^T (y s(-y Xw)) / n."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((20, DIM))  # (n, DIM)
    y = np.sign(rng.standard_normal(20))  # (n,)

    def grad(w):
        s = 1.0 / (1.0 + np.exp(y * (x @ w)))  # sigmoid(-y x.w), (n,)
        return -(x.T @ (y * s)) / len(y)

    return grad


PROBLEMS = {"quadratic": _quadratic, "logistic": _logistic}
NAMES = {
    "sgd": torch.optim.SGD,
    "momentum": torch.optim.SGD,
    "nesterov": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adadelta": torch.optim.Adadelta,
    "adamw": torch.optim.AdamW,
}


def _x0() -> np.ndarray:
    return np.random.default_rng(7).standard_normal(DIM)


def _torch_iterates(name, grad, lr, steps=STEPS, lrs=None, **options):
    """PyTorch's iterates x_1..x_steps; the gradient is the same numpy formula (bitwise)."""
    p = torch.tensor(_x0(), dtype=torch.float64, requires_grad=True)
    opt = optim.make(name, [p], lr, **options)
    out = []
    for t in range(steps):
        if lrs is not None:
            for g in opt.param_groups:
                g["lr"] = lrs[t]
        p.grad = torch.from_numpy(grad(p.detach().numpy()))
        opt.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)  # (steps, DIM)


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------- transcriptions


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_sgd_is_steepest_descent(problem, weight_decay):
    grad, lr = PROBLEMS[problem](), 0.3
    x, ref = _x0(), []
    for _ in range(STEPS):
        x = x - lr * (grad(x) + weight_decay * x)  # x += -lr * dx (dx with the L2 term)
        ref.append(x)
    _close(_torch_iterates("sgd", grad, lr, weight_decay=weight_decay), ref)


def _momentum_lecture(grad, lrs, mu):
    x, v, out = _x0(), np.zeros(DIM), []
    for lr in lrs:
        v = mu * v - lr * grad(x)  # cs231n: v = mu * v - learning_rate * dx
        x = x + v  # x += v
        out.append(x)
    return np.array(out)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_momentum_matches_lecture_for_constant_lr(problem):
    grad, lr, mu = PROBLEMS[problem](), 0.1, 0.8
    _close(
        _torch_iterates("momentum", grad, lr, momentum=mu),
        _momentum_lecture(grad, [lr] * STEPS, mu),
    )


def test_momentum_with_changing_lr_is_pytorch_form_not_lecture_form():
    """PyTorch's b = mu*b + dx; x -= lr_t*b rescales the past velocity by the current lr."""
    grad, mu = _quadratic(), 0.8
    lrs = [0.1 * 0.8**t for t in range(STEPS)]
    x, b, ref = _x0(), np.zeros(DIM), []
    for lr in lrs:
        b = mu * b + grad(x)
        x = x - lr * b
        ref.append(x)
    got = _torch_iterates("momentum", grad, 1.0, lrs=lrs, momentum=mu)
    _close(got, ref)
    assert np.abs(got - _momentum_lecture(grad, lrs, mu)).max() > 1e-4


@pytest.mark.parametrize("problem", PROBLEMS)
def test_nesterov_is_sutskever_in_look_ahead_variable(problem):
    grad, lr, mu = PROBLEMS[problem](), 0.1, 0.9
    got = _torch_iterates("nesterov", grad, lr, momentum=mu)
    # cs231n: v_prev = v; v = mu * v - lr * dx; x += -mu * v_prev + (1 + mu) * v
    x, v, cs231n = _x0(), np.zeros(DIM), []
    for _ in range(STEPS):
        v_prev = v
        v = mu * v - lr * grad(x)
        x = x - mu * v_prev + (1 + mu) * v
        cs231n.append(x)
    # Sutskever et al. 2013 eqs. 3-4: v = mu v - lr grad f(theta + mu v); theta += v.
    theta, v, look_ahead = _x0(), np.zeros(DIM), []
    for _ in range(STEPS):
        v = mu * v - lr * grad(theta + mu * v)
        theta = theta + v
        look_ahead.append(theta + mu * v)  # PyTorch's parameters are the look-ahead iterates
    _close(got, cs231n)
    _close(got, look_ahead)
    assert np.abs(got[-1] - theta).max() > 1e-6  # ... not theta itself


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize(
    "options",
    [{}, {"initial_accumulator_value": 0.1, "eps": 1e-3}, {"lr_decay": 0.1, "weight_decay": 0.02}],
)
def test_adagrad_matches_duchi(problem, options):
    grad, lr = PROBLEMS[problem](), 0.5
    eps = options.get("eps", 1e-10)
    lr_decay, wd = options.get("lr_decay", 0.0), options.get("weight_decay", 0.0)
    x, ref = _x0(), []
    cache = np.full(DIM, options.get("initial_accumulator_value", 0.0))
    for t in range(1, STEPS + 1):
        dx = grad(x) + wd * x
        cache = cache + dx**2  # cache += dx**2
        x = x - lr / (1 + (t - 1) * lr_decay) * dx / (np.sqrt(cache) + eps)  # eps outside sqrt
        ref.append(x)
    _close(_torch_iterates("adagrad", grad, lr, **options), ref)


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("decay", [0.9, 0.99])
def test_rmsprop_matches_tieleman_hinton(problem, decay):
    grad, lr, eps = PROBLEMS[problem](), 0.01, 1e-8
    x, cache, ref = _x0(), np.zeros(DIM), []
    for _ in range(STEPS):
        dx = grad(x)
        cache = decay * cache + (1 - decay) * dx**2  # cache = decay * cache + (1 - decay) dx^2
        x = x - lr * dx / (np.sqrt(cache) + eps)
        ref.append(x)
    _close(_torch_iterates("rmsprop", grad, lr, alpha=decay, eps=eps), ref)


def test_rmsprop_centered_with_momentum_matches_graves():
    grad, lr, decay, mu, eps = _logistic(), 0.01, 0.9, 0.5, 1e-8
    x, cache, mean, b, ref = _x0(), np.zeros(DIM), np.zeros(DIM), np.zeros(DIM), []
    for _ in range(STEPS):
        dx = grad(x)
        cache = decay * cache + (1 - decay) * dx**2
        mean = decay * mean + (1 - decay) * dx
        b = mu * b + dx / (np.sqrt(cache - mean**2) + eps)  # Graves 2013 eq. 38-40, momentum
        x = x - lr * b
        ref.append(x)
    got = _torch_iterates("rmsprop", grad, lr, alpha=decay, eps=eps, momentum=mu, centered=True)
    _close(got, ref)


def _adam_reference(grad, lr, b1, b2, eps, steps=STEPS, eps_hat=False, decoupled=0.0):
    x, m, v, out = _x0(), np.zeros(DIM), np.zeros(DIM), []
    for t in range(1, steps + 1):
        dx = grad(x)
        m = b1 * m + (1 - b1) * dx  # Algorithm 1: biased first moment
        v = b2 * v + (1 - b2) * dx**2  # biased second raw moment
        if eps_hat:  # end of Sec. 2: lr_t = lr sqrt(1-b2^t)/(1-b1^t); x -= lr_t m/(sqrt(v)+eps^)
            step = lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        else:
            m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)  # bias correction
            step = lr * m_hat / (np.sqrt(v_hat) + eps)
        x = x - step - decoupled * x  # AdamW Algorithm 2: - eta * lambda * x (eta = 1)
        out.append(x)
    return np.array(out)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_adam_matches_kingma_ba_algorithm_1(problem):
    grad, lr, (b1, b2), eps = PROBLEMS[problem](), 0.05, (0.8, 0.95), 1e-8
    got = _torch_iterates("adam", grad, lr, betas=(b1, b2), eps=eps)
    _close(got, _adam_reference(grad, lr, b1, b2, eps))


def test_adam_eps_hat_form_differs_for_the_same_eps():
    """Sec. 2's eps_hat is Algorithm 1's eps * sqrt(1 - b2**t): different numbers, same method."""
    grad, lr, (b1, b2), eps = _quadratic(), 0.05, (0.9, 0.999), 1e-2
    got = _torch_iterates("adam", grad, lr, betas=(b1, b2), eps=eps)
    assert np.abs(got - _adam_reference(grad, lr, b1, b2, eps, eps_hat=True)).max() > 1e-4
    # with a step-dependent eps_hat_t = eps * sqrt(1 - b2**t) the two forms coincide
    x = _x0()
    m = v = np.zeros(DIM)
    for t in range(1, 4):
        dx = grad(x)
        m, v = b1 * m + (1 - b1) * dx, b2 * v + (1 - b2) * dx**2
        alg1 = lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        sec2 = lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps * np.sqrt(1 - b2**t))
        _close(alg1, sec2)
        x = x - alg1


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("lr", [1.0, 0.5])
def test_adadelta_matches_zeiler(problem, lr):
    grad, rho, eps = PROBLEMS[problem](), 0.95, 1e-6
    x, eg2, ed2, ref = _x0(), np.zeros(DIM), np.zeros(DIM), []
    for _ in range(STEPS):
        dx = grad(x)
        eg2 = rho * eg2 + (1 - rho) * dx**2  # accumulate gradient: E[g^2]
        step = -np.sqrt(ed2 + eps) / np.sqrt(eg2 + eps) * dx  # -RMS[dx]_{t-1} / RMS[g]_t * g
        ed2 = rho * ed2 + (1 - rho) * step**2  # accumulate the (unscaled) update
        x = x + lr * step  # lr = 1: the paper; PyTorch scales only the applied step
        ref.append(x)
    _close(_torch_iterates("adadelta", grad, lr, rho=rho, eps=eps), ref)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_adamw_matches_loshchilov_hutter_algorithm_2(problem):
    grad, lr, wd, (b1, b2), eps = PROBLEMS[problem](), 0.05, 0.1, (0.9, 0.99), 1e-8
    got = _torch_iterates("adamw", grad, lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    # Algorithm 2 with eta = 1, alpha = lr, lambda = lr * weight_decay (PyTorch's scaling)
    _close(got, _adam_reference(grad, lr, b1, b2, eps, decoupled=lr * wd))


# --------------------------------------------------------------------------- per-member lr


LR_CASES = [
    ("sgd", {"weight_decay": 0.05}),
    ("momentum", {}),
    ("momentum", {"dampening": 0.3, "weight_decay": 0.05}),
    ("nesterov", {"weight_decay": 0.05}),
    ("adagrad", {"lr_decay": 0.2, "weight_decay": 0.05, "initial_accumulator_value": 0.1}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.5, "centered": True, "weight_decay": 0.05}),
    ("adam", {"weight_decay": 0.05}),
    ("adam", {"amsgrad": True}),
    ("adadelta", {"weight_decay": 0.05}),
    ("adamw", {"weight_decay": 0.1}),
    ("adamw", {"weight_decay": 0.1, "amsgrad": True}),
]


def _stacked_grad(grad):
    return lambda p: np.stack([grad(row) for row in p])  # (members, DIM)


@pytest.mark.parametrize(("name", "options"), LR_CASES)
def test_lr_one_scaled_equals_per_member_lr(name, options):
    """One optimizer at lr=1 over stacked members, update scaled by lr_m, equals M optimizers."""
    assert optim.lr_scales_update(name)
    grad = _stacked_grad(_logistic())
    lrs = np.array([0.3, 0.01, 1.7])  # (members,)
    x0 = np.random.default_rng(3).standard_normal((len(lrs), DIM))  # (members, DIM)

    stacked = torch.tensor(x0, requires_grad=True)
    shared = optim.make(name, [stacked], 1.0, **options)
    singles = [torch.tensor(row, requires_grad=True) for row in x0]
    own = [optim.make(name, [p], float(lr), **options) for p, lr in zip(singles, lrs, strict=True)]
    scale = torch.from_numpy(lrs)[:, None]  # (members, 1)
    for _ in range(10):
        stacked.grad = torch.from_numpy(grad(stacked.detach().numpy()))
        before = stacked.detach().clone()
        shared.step()
        with torch.no_grad():
            stacked.copy_(before + scale * (stacked - before))  # p_old + lr_m (p_after - p_old)
        for m, (p, opt) in enumerate(zip(singles, own, strict=True)):
            p.grad = torch.from_numpy(grad(p.detach().numpy()[None])[0])
            opt.step()
            np.testing.assert_allclose(stacked[m].detach(), p.detach(), rtol=1e-11, atol=1e-13)
            # the state evolves independently of lr
            s_shared, s_own = shared.state[stacked], opt.state[p]
            assert s_shared.keys() == s_own.keys()
            for key, value in s_own.items():
                if torch.is_tensor(value) and value.ndim > 0:
                    np.testing.assert_allclose(s_shared[key][m], value, rtol=1e-11, atol=1e-13)


def test_lr_scaling_with_a_schedule():
    """p_old + lr_m * f_t * (p_after - p_old) equals PyTorch with a scheduler (momentum)."""
    grad, lr_m, epochs = _quadratic(), 0.02, 8
    a = torch.tensor(_x0(), requires_grad=True)
    b = torch.tensor(_x0(), requires_grad=True)
    opt_a, opt_b = optim.make("momentum", [a], lr_m), optim.make("momentum", [b], 1.0)
    sched = optim.make_schedule("warmup-cosine", opt_a, epochs=epochs, warmup=3)
    for t in range(epochs):
        f_t = optim.schedule_factor("warmup-cosine", t, epochs=epochs, warmup=3)
        a.grad = torch.from_numpy(grad(a.detach().numpy()))
        opt_a.step()
        sched.step()
        b.grad = torch.from_numpy(grad(b.detach().numpy()))
        before = b.detach().clone()
        opt_b.step()
        with torch.no_grad():
            b.copy_(before + lr_m * f_t * (b - before))
        np.testing.assert_allclose(a.detach(), b.detach(), rtol=1e-12, atol=1e-13)


def test_every_optimizer_is_documented_for_lr_scaling():
    assert set(optim.names()) == set(NAMES)
    assert all(optim.lr_scales_update(n) for n in optim.names())
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'.*did you mean 'adam'"):
        optim.lr_scales_update("adamm")


# --------------------------------------------------------------------------- API and validation


@pytest.mark.parametrize("name", NAMES)
def test_make_builds_the_torch_class_with_defaults(name):
    p = torch.zeros(3, requires_grad=True)
    opt = optim.make(name, [p], 0.1)
    assert type(opt) is NAMES[name]
    group = opt.param_groups[0]
    assert group["lr"] == 0.1
    for key, value in optim.defaults(name).items():
        assert group[key] == value, key
    if name in ("momentum", "nesterov"):
        assert group["momentum"] == 0.9
        assert group["nesterov"] == (name == "nesterov")
    doc = optim.describe(name)
    assert "PyTorch" in doc and "x" in doc


def test_describe_states_the_rules():
    assert "v = mu * v - lr * dx; x += v" in optim.describe("momentum")
    assert "x += -mu * v_prev + (1 + mu) * v" in optim.describe("nesterov")
    assert "Sutskever" in optim.describe("nesterov")
    assert "cache += dx**2" in optim.describe("adagrad")
    assert "Duchi" in optim.describe("adagrad")
    assert "alpha" in optim.describe("rmsprop") and "Tieleman" in optim.describe("rmsprop")
    assert "eps_hat" in optim.describe("adam") and "Kingma" in optim.describe("adam")
    assert "Zeiler" in optim.describe("adadelta")
    assert "Loshchilov" in optim.describe("adamw")


def test_unknown_optimizer_lists_valid_names():
    match = r"unknown optimizer 'nesterof'; valid: adadelta, adagrad, .*did you mean 'nesterov'"
    with pytest.raises(ValueError, match=match):
        optim.make("nesterof", [torch.zeros(1, requires_grad=True)], 0.1)


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        (
            "sgd",
            {"momentum": 0.9},
            "optimizer 'sgd' has no option 'momentum'; valid options: weight_decay",
        ),
        ("adam", {"beta": (0.9, 0.99)}, "has no option 'beta'.*did you mean 'betas'"),
        ("adam", {"betas": (0.9, 1.0)}, r"betas=\(0.9, 1.0\) is invalid: expected a pair"),
        ("adam", {"betas": 0.9}, "betas=0.9 is invalid"),
        ("momentum", {"momentum": 1.0}, r"momentum=1.0 is invalid: expected a number in \[0, 1\)"),
        ("nesterov", {"momentum": 0.0}, r"momentum=0.0 is invalid: expected a number in \(0, 1\)"),
        ("rmsprop", {"alpha": -0.1}, "alpha=-0.1 is invalid"),
        ("rmsprop", {"centered": 1}, "centered=1 is invalid: expected True or False"),
        ("adagrad", {"eps": -1.0}, "eps=-1.0 is invalid: expected a finite number >= 0"),
        ("adadelta", {"eps": 0.0}, "eps=0.0 is invalid: expected a number > 0"),
        ("adadelta", {"rho": 1.5}, "rho=1.5 is invalid"),
        ("adamw", {"weight_decay": float("nan")}, "weight_decay=nan is invalid"),
    ],
)
def test_bad_options_raise_naming_them(name, options, match):
    with pytest.raises(ValueError, match=match):
        optim.make(name, [torch.zeros(1, requires_grad=True)], 0.1, **options)


@pytest.mark.parametrize("lr", [0.0, -1.0, float("inf"), "0.1", True])
def test_bad_lr_raises(lr):
    with pytest.raises(ValueError, match="lr=.* is invalid: expected a finite number > 0"):
        optim.make("sgd", [torch.zeros(1, requires_grad=True)], lr)


# ------------------------------------------------ resolve / resolve_schedule: inputs and messages
_P = [torch.zeros(1, requires_grad=True)]
RESOLVE_ERRORS = [
    (
        lambda: optim.resolve(torch.optim.SGD(_P, lr=0.1), _P, 0.1, {"momentum": 0.9}),
        "optimizer_options={'momentum': 0.9} is invalid: expected None with a ready optimizer "
        "(its options are its own)",
    ),
    (
        lambda: optim.resolve(3, _P, 0.1),
        f"optimizer='int' is invalid: expected a name in {optim.names()} or a "
        "torch.optim.Optimizer",
    ),
    (
        lambda: optim.resolve_schedule(None, 5, {"min_factor": 0.1}),
        "schedule_options={'min_factor': 0.1} is invalid: expected None without a schedule",
    ),
    (
        lambda: optim.resolve_schedule("constant", 5, {"min_factor": 0.1}),
        "schedule_options={'min_factor': 0.1} is invalid: expected None without a schedule",
    ),
    (
        lambda: optim.resolve_schedule(lambda e: 1.0, 5, {"min_factor": 0.1}),
        "schedule_options={'min_factor': 0.1} is invalid: expected None with a callable schedule",
    ),
    (
        lambda: optim.resolve_schedule(2.0, 5),
        f"schedule='float' is invalid: expected a name in {optim.schedule_names()}, a callable "
        "epoch -> factor, or None",
    ),
]


@pytest.mark.parametrize("call,message", RESOLVE_ERRORS, ids=range(len(RESOLVE_ERRORS)))
def test_resolve_invalid_inputs_raise_their_messages(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_resolve_and_resolve_schedule_valid_inputs():
    ready = torch.optim.SGD(_P, lr=0.1)
    assert optim.resolve(ready, _P, 0.5) is ready
    made = optim.resolve("adam", _P, 0.01, {"betas": (0.8, 0.9)})
    assert isinstance(made, torch.optim.Adam) and made.param_groups[0]["betas"] == (0.8, 0.9)
    assert optim.resolve_schedule(None, 5) is None
    assert optim.resolve_schedule("constant", 5) is None
    f = lambda e: 0.5  # noqa: E731
    assert optim.resolve_schedule(f, 5) is f
    cos = optim.resolve_schedule("cosine", 4)
    assert [cos(e) for e in range(4)] == [
        optim.schedule_factor("cosine", e, epochs=4) for e in range(4)
    ]
    one = optim.resolve_schedule("cosine", 1)  # a one-epoch run: epochs = 1 exactly
    assert one(0) == optim.schedule_factor("cosine", 0, epochs=1)
