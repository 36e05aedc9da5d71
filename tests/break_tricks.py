# ruff: noqa: E501  (a table of source lines and test ids, kept one per line)
"""Break each trick by hand and check that the test of its defining property fails.

Each entry of :data:`BREAKS` names a trick, the property that makes it that trick, a one-line
edit of ``src/`` that breaks the property (``old`` -> ``new``, ``old`` must occur exactly once
in the file) and the tests that must then fail. For each entry the script applies the edit,
runs those tests in a fresh interpreter (no bytecode written, so no stale ``.pyc`` can hide an
edit), and restores the file, whatever happens.

Run from the repository root (it edits the files of *this* checkout and restores them)::

    PYTHONPATH=$PWD/src python tests/break_tricks.py            # all, a summary line each
    PYTHONPATH=$PWD/src python tests/break_tricks.py --only dae  # names containing "dae"
    PYTHONPATH=$PWD/src python tests/break_tricks.py --markdown  # the table of docs/guide/testing.md

Exit status 1 when a break survives (its tests pass) or its ``old`` text is gone (the source
moved: update the entry). Not collected by pytest (the name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
S = "src/smithing/"
P = "tests/pretrain/"
PP = "tests/pretrain/test_pretrain_properties.py"
TP = "tests/test_trick_properties.py"
RS = "tests/test_reference_steps_pretrain.py"


@dataclass(frozen=True)
class Break:
    trick: str
    prop: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str  # the break, in words


BREAKS: list[Break] = [
    # ------------------------------------------------------------ initialization
    Break(
        "he / lecun (fan rules)",
        "Var W = gain^2 / fan_in (fan_out with mode)",
        S + "init/rules.py",
        'return fan_in if mode == "fan_in" else fan_out',
        'return fan_out if mode == "fan_in" else fan_in',
        ("tests/test_init.py::test_variance_matches_formula",),
        "fan_in and fan_out swapped",
    ),
    Break(
        "Glorot uniform",
        "U(+-gain sqrt(6 / (fan_in + fan_out)))",
        S + "init/rules.py",
        "nn.init.xavier_uniform_(w, gain=gain, generator=generator)  # eq. 16",
        "nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=generator)  # eq. 16",
        ("tests/test_init.py::test_variance_matches_formula",),
        "torch's nn.Linear default instead",
    ),
    Break(
        "Glorot normal",
        "N(0, gain^2 2 / (fan_in + fan_out))",
        S + "init/rules.py",
        "nn.init.xavier_normal_(w, gain=gain, generator=generator)",
        "nn.init.kaiming_normal_(w, generator=generator)",
        ("tests/test_init.py::test_variance_matches_formula",),
        "He normal instead",
    ),
    Break(
        "He / LeCun uniform",
        "U(+-b), b = sqrt(3) std",
        S + "init/rules.py",
        "bound = math.sqrt(3.0) * (gain / math.sqrt(_fan(w, mode)))",
        "bound = math.sqrt(2.0) * (gain / math.sqrt(_fan(w, mode)))",
        ("tests/test_init.py::test_variance_matches_formula",),
        "bound sqrt(2) std",
    ),
    Break(
        "pretrained (stack unrolled)",
        "the MLP starts from the stack's encoders",
        S + "pretrain/greedy.py",
        "linear.weight.copy_(W)  # (out, in): nn.Linear layout already",
        "linear.weight.copy_(W * 0.5)  # (out, in): nn.Linear layout already",
        (
            "tests/pretrain/test_stack.py::test_unrolled_mlp_starts_from_the_stack",
            "tests/pretrain/test_dbn.py::test_dbn_to_mlp_reproduces_upward_pass_exactly",
        ),
        "weights halved",
    ),
    Break(
        "orthogonal",
        "W^T W = gain^2 I (orthonormal columns or rows)",
        S + "init/structured.py",
        "w.copy_((gain * q).reshape(w.shape))  # W = gain * Q",
        "w.copy_((gain * a / a.norm(dim=0)).reshape(w.shape))  # W = gain * Q",
        ("tests/test_init.py::test_orthogonal_rows_or_columns_orthonormal",),
        "unit-norm Gaussian columns instead of Q",
    ),
    Break(
        "orthogonal",
        "Q Haar-distributed (Mezzadri's sign fix)",
        S + "init/structured.py",
        "q = u * d  # (rows, cols) = U D, orthonormal columns, Haar",
        "q = u  # (rows, cols) = U D, orthonormal columns, Haar",
        ("tests/test_init.py::test_orthogonal_is_haar_distributed",),
        "sign fix dropped (U as LAPACK returns it)",
    ),
    Break(
        "identity",
        "W = scale * I",
        S + "init/structured.py",
        "w.mul_(scale)  # W = scale * I",
        "w.mul_(1.0)  # W = scale * I",
        (
            "tests/test_init.py::test_identity_exact_and_rectangular",
            "tests/nn/test_rnn.py::test_identity_init_is_exact",
        ),
        "scale ignored",
    ),
    Break(
        "sparse",
        "exactly k non-zero weights per unit",
        S + "init/structured.py",
        "idx = keys.argsort(dim=1)[:, :k]",
        "idx = keys.argsort(dim=1)[:, : k + 1]",
        ("tests/test_init.py::test_sparse_exactly_k_per_row",),
        "k + 1 non-zeros",
    ),
    Break(
        "sparse",
        "the non-zeros are N(0, sigma^2)",
        S + "init/structured.py",
        "vals = torch.randn(out, k, generator=generator, dtype=w.dtype, device=w.device) * sigma",
        "vals = torch.randn(out, k, generator=generator, dtype=w.dtype, device=w.device)",
        (
            "tests/test_defining_properties.py::test_sparse_init_nonzeros_have_variance_sigma_squared",
        ),
        "sigma ignored",
    ),
    Break(
        "LSUV",
        "each layer's output variance 1 (W <- W / sqrt(Var))",
        S + "init/lsuv.py",
        "w.div_(math.sqrt(v))  # W_L <- W_L / sqrt(Var(B_L))",
        "w.div_(v)  # W_L <- W_L / sqrt(Var(B_L))",
        ("tests/test_init.py::test_lsuv_unit_output_variance_per_layer",),
        "divide by Var instead of its sqrt",
    ),
    Break(
        "LSUV",
        "iterate until |Var - 1| < tol",
        S + "init/lsuv.py",
        "if abs(v - 1.0) < tol:",
        "if True:",
        ("tests/test_init.py::test_lsuv_unit_output_variance_per_layer",),
        "no rescaling at all",
    ),
    Break(
        "pretrained init",
        "the layers get the given W, b",
        S + "init/pretrained.py",
        "module.weight.copy_(W)",
        "module.weight.copy_(W * 0.5)",
        ("tests/test_init.py::test_pretrained_pairs_and_callable_and_registry",),
        "weights halved",
    ),
    # ------------------------------------------------------------ RBM
    Break(
        "RBM CD-k",
        "k Gibbs sweeps from the data",
        S + "pretrain/rbm/training.py",
        "for step in range(k_now):  # CD-k",
        "for step in range(1):  # CD-k",
        (PP + "::test_cd_k_runs_k_gibbs_sweeps",),
        "one sweep whatever k",
    ),
    Break(
        "RBM CD-k schedule",
        "epoch e runs k_e sweeps",
        S + "pretrain/rbm/training.py",
        "k_now = k_at(epoch)",
        "k_now = k_at(1)",
        (P + "test_rbm_k_schedule.py::test_epoch_e_runs_k_e_sweeps",),
        "the first epoch's k throughout",
    ),
    Break(
        "RBM re-binarized batches",
        "each use of a batch is a fresh Bernoulli draw of its probabilities",
        S + "pretrain/rbm/training.py",
        "v0 = sample_bernoulli(v0, generator)",
        "v0 = (v0 > 0.5).to(v0.dtype)",
        (P + "test_rbm_k_schedule.py::test_each_use_of_a_batch_is_a_fresh_binarization",),
        "one fixed threshold instead",
    ),
    Break(
        "RBM CD-k",
        "positive phase from the data's hidden probabilities",
        S + "pretrain/rbm/training.py",
        "grad = rbm.cd_gradient(v0, ph0, v_neg, ph_neg)",
        "grad = rbm.cd_gradient(v0, h, v_neg, ph_neg)",
        (P + "test_rbm.py::test_train_rbm_matches_manual_transcription",),
        "positive statistics from the sampled h",
    ),
    Break(
        "RBM weight-cost",
        "g_W -= weight_decay W",
        S + "pretrain/rbm/training.py",
        'grad["W"] = grad["W"] - weight_decay * rbm.W',
        'grad["W"] = grad["W"]',
        (P + "test_rbm.py::test_train_rbm_matches_manual_transcription",),
        "weight decay dropped",
    ),
    Break(
        "RBM sparsity target",
        "q <- damping q + (1 - damping) q_batch",
        S + "pretrain/rbm/training.py",
        "q = sparsity_damping * q + (1 - sparsity_damping) * batch_q",
        "q = batch_q",
        (P + "test_rbm.py::test_train_rbm_matches_manual_transcription",),
        "no running mean",
    ),
    Break(
        "RBM schedule",
        "delta = mu delta + lr schedule(epoch) g",
        S + "pretrain/rbm/training.py",
        "p.grad = -(lr_for(p) * factor) * grad[name]",
        "p.grad = -(lr_for(p)) * grad[name]",
        (P + "test_rbm.py::test_train_rbm_k_negative_visible_and_schedules_match_transcription",),
        "schedule ignored",
    ),
    Break(
        "PCD",
        "the persistent chains continue across updates",
        S + "pretrain/rbm/training.py",
        "v = chains.v  # PCD: continue the persistent chains",
        "v = v0  # PCD: continue the persistent chains",
        (PP + "::test_pcd_k_sweeps_continue_the_chains_across_batches",),
        "chains restarted at the data",
    ),
    Break(
        "Gaussian RBM",
        "v ~ N(b + W h, sigma^2) in the negative phase",
        S + "pretrain/rbm/training.py",
        "return sample_gaussian(mean, rbm.log_var, generator)",
        "return mean",
        (PP + "::test_gaussian_rbm_cd_samples_real_valued_visibles",),
        "no visible noise",
    ),
    Break(
        "Gaussian RBM",
        "statistics divide v by sigma^2",
        S + "pretrain/rbm/functional.py",
        '"W": (v * inv_var).transpose(-1, -2) @ h / n,',
        '"W": v.transpose(-1, -2) @ h / n,',
        (PP + "::test_gaussian_rbm_cd_samples_real_valued_visibles",),
        "1 / sigma^2 dropped from <v h>",
    ),
    Break(
        "Gaussian RBM (learned variance)",
        "d(-E)/d log sigma^2 = ((v-b)^2/2 - v Wh)/sigma^2",
        S + "pretrain/rbm/functional.py",
        'out["log_var"] = (inv_var * (0.5 * (v - _row(b)) ** 2 - v * wh)).mean(-2)',
        'out["log_var"] = (inv_var * ((v - _row(b)) ** 2 - v * wh)).mean(-2)',
        (
            P + "test_rbm.py::test_gaussian_gradient_with_exact_samples_matches_autograd",
            RS + "::test_gaussian_rbm_learned_variance_steps",
        ),
        "the 1/2 dropped",
    ),
    # ------------------------------------------------------------ AIS
    Break(
        "AIS",
        "log w accumulates f_beta_k(v_k) / f_beta_{k-1}(v_k), ends at f_1",
        S + "pretrain/ais.py",
        "logw += log_f(1.0, t_a, dt, x)  # + log f_1(v_K)",
        "logw += log_f(0.999, t_a, dt, 0.999 * x)  # + log f_1(v_K)",
        (
            P + "test_ais.py::test_ais_within_error_bar_of_exact_log_z",
            TP + "::test_ais_log_weights_match_a_transcription_of_neal_and_salakhutdinov",
        ),
        "last intermediate at beta 0.999 instead of 1",
    ),
    Break(
        "AIS",
        "each transition leaves p_beta invariant",
        S + "pretrain/ais.py",
        "h = sample_bernoulli(torch.sigmoid(bx), generator)  # h ~ p_beta(h | v)",
        "h = sample_bernoulli(torch.sigmoid(x), generator)  # h ~ p_beta(h | v)",
        (
            P + "test_ais.py::test_ais_within_error_bar_of_exact_log_z",
            TP + "::test_ais_log_weights_match_a_transcription_of_neal_and_salakhutdinov",
        ),
        "h drawn at beta = 1",
    ),
    # ------------------------------------------------------------ DBN / stacks
    Break(
        "DBN / SdA greedy",
        "layer l trains on the codes (probabilities) of layer l-1",
        S + "pretrain/greedy.py",
        'x = layer.transform(x, sample=propagate == "samples", generator=generator)',
        "x = layer.transform(x, sample=True, generator=generator)",
        (
            "tests/pretrain/test_stack.py::test_greedy_layers_train_on_the_codes_below",
            "tests/pretrain/test_dbn.py::test_greedy_stack_feeds_codes_upward",
        ),
        "samples fed upward instead of probabilities",
    ),
    Break(
        "DBN generation",
        "down pass samples the intermediate layers",
        S + "pretrain/dbn.py",
        'h = mean if (i == 0 or down == "probs") else',
        "h = mean if True else",
        (PP + "::test_dbn_sample_down_pass_samples_intermediate_layers",),
        "means on the way down",
    ),
    # ------------------------------------------------------------ autoencoders
    Break(
        "DAE",
        "target = clean x, encoder sees x~",
        S + "pretrain/autoencoder/training.py",
        "losses = model.loss(xb, x_tilde, weights=weights, contractive=contractive)",
        "losses = model.loss(x_tilde, x_tilde, weights=weights, contractive=contractive)",
        (PP + "::test_dae_reconstructs_the_clean_input_from_the_corrupted_one",),
        "target = corrupted input",
    ),
    Break(
        "DAE masking noise",
        "destroyed components set to 0",
        S + "pretrain/autoencoder/functional.py",
        "return torch.where(mask, torch.zeros_like(x), x), mask",
        "return torch.where(mask, torch.full_like(x, 0.5), x), mask",
        (P + "test_autoencoder.py::test_masking_rate_and_mask",),
        "set to 0.5",
    ),
    Break(
        "DAE salt-and-pepper",
        "corrupted components 0 or 1, 1/2 each",
        S + "pretrain/autoencoder/functional.py",
        "salt = _uniform(x, generator) < 0.5",
        "salt = _uniform(x, generator) < 0.8",
        (P + "test_autoencoder.py::test_salt_and_pepper_rate",),
        "salt with probability 0.8",
    ),
    Break(
        "DAE salt-and-pepper",
        "the mask marks the corrupted components (emphasis weighs them)",
        S + "pretrain/autoencoder/functional.py",
        "return torch.where(mask, noise, x), mask",
        "return torch.where(mask, noise, x), torch.zeros_like(mask)",
        (RS + "::test_autoencoder_steps_match_transcription",),
        "empty mask",
    ),
    Break(
        "DAE Gaussian noise",
        "x~ = x + rate * N(0, 1)",
        S + "pretrain/autoencoder/functional.py",
        "return x + rate * _normal(x, generator)",
        "return x + rate * rate * _normal(x, generator)",
        (P + "test_autoencoder.py::test_gaussian_rate_is_the_std",),
        "std rate^2",
    ),
    Break(
        "tied autoencoder",
        "W' = W^T, gradient = encoder + decoder parts",
        S + "pretrain/autoencoder/functional.py",
        "Wd = _t(W) if W_dec is None else W_dec",
        "Wd = _t(W).detach() if W_dec is None else W_dec",
        (
            P
            + "test_autoencoder.py::test_tied_gradient_is_sum_of_untied_encoder_and_decoder_gradients",
        ),
        "decoder part of the tied gradient dropped",
    ),
    Break(
        "contractive AE",
        "penalty sum_j s'(a_j)^2 ||W_j||^2",
        S + "pretrain/autoencoder/functional.py",
        "return (d * d * _row(row_norms)).sum(-1).mean(-1)",
        "return (d * _row(row_norms)).sum(-1).mean(-1)",
        (P + "test_autoencoder.py::test_contractive_penalty_equals_autograd_jacobian",),
        "s'(a) not squared",
    ),
    Break(
        "contractive AE",
        "Jacobian at the clean x",
        S + "pretrain/autoencoder/functional.py",
        "hc, ac = (h, a) if x_tilde is x else _encode(x, W, b, activation)",
        "hc, ac = (h, a)",
        (PP + "::test_contractive_penalty_is_taken_at_the_clean_input",),
        "penalty at the corrupted x~",
    ),
    Break(
        "emphasized DAE",
        "alpha on corrupted, beta on other components",
        S + "pretrain/autoencoder/training.py",
        "weights = torch.where(mask, alpha, beta).to(dtype)",
        "weights = torch.where(mask, beta, alpha).to(dtype)",
        (PP + "::test_dae_emphasis_weights_alpha_on_the_corrupted_components",),
        "alpha and beta swapped",
    ),
    # ------------------------------------------------------------ classification RBM
    Break(
        "class RBM discriminative",
        "exact grad of log p(y|x) (eq. 3)",
        S + "pretrain/hybrid/functional.py",
        "a = t - logp.exp()  # 2008 eq. 3",
        "a = t - 0.5 * logp.exp()  # 2008 eq. 3",
        (
            P
            + "test_hybrid.py::test_discriminative_gradient_matches_autograd_of_exact_log_likelihood",
            RS + "::test_class_rbm_steps_match_transcription",
        ),
        "p(y|x) halved",
    ),
    Break(
        "class RBM hybrid",
        "L_disc + alpha L_gen",
        S + "pretrain/hybrid/functional.py",
        '"hybrid": lambda alpha: (1.0, float(alpha)),',
        '"hybrid": lambda alpha: (1.0, 1.0),',
        (RS + "::test_class_rbm_steps_match_transcription",),
        "alpha ignored (weight 1)",
    ),
    Break(
        "class RBM generative",
        "k joint Gibbs sweeps",
        S + "pretrain/hybrid/functional.py",
        "    for step in range(k):\n        if step > 0:\n            ph = joint_hidden_probs",
        "    for step in range(1):\n        if step > 0:\n            ph = joint_hidden_probs",
        (
            PP + "::test_class_rbm_generative_gradient_runs_k_joint_gibbs_sweeps",
            RS + "::test_class_rbm_steps_match_transcription",
        ),
        "one sweep whatever k",
    ),
    Break(
        "class RBM semi-supervised",
        "+ beta * grad log p(x_u)",
        S + "pretrain/hybrid/loop.py",
        "grad = {nm: grad[nm] + cfg.beta * gu[nm] for nm in PARAMS}",
        "grad = {nm: grad[nm] + gu[nm] for nm in PARAMS}",
        (
            PP + "::test_class_rbm_semi_supervised_term_is_weighted_by_beta",
            RS + "::test_class_rbm_steps_match_transcription",
        ),
        "beta ignored",
    ),
    Break(
        "class RBM semi-supervised",
        "positive phase y ~ p(y | x_u)",
        S + "pretrain/hybrid/functional.py",
        "ys = sample_onehot(p, generator)  # y ~ p(y|x)",
        "ys = sample_onehot(torch.full_like(p, 1 / p.shape[-1]), generator)  # y ~ p(y|x)",
        (RS + "::test_class_rbm_steps_match_transcription",),
        "uniform labels in the positive phase",
    ),
    Break(
        "class RBM semi-supervised",
        "expected positive phase E_{p(y|x)}",
        S + "pretrain/hybrid/functional.py",
        '"d": p.mean(-2),\n        }',
        '"d": ys.mean(-2),\n        }',
        (
            P
            + "test_hybrid.py::test_unlabeled_expected_positive_phase_is_gradient_of_free_energy_of_x",
            RS + "::test_class_rbm_steps_match_transcription",
        ),
        "sampled label in the expected form",
    ),
    Break(
        "class RBM weight decay",
        "L2 on W and U only",
        S + "pretrain/hybrid/loop.py",
        'grad["U"] = grad["U"] - cfg.weight_decay * U',
        'grad["U"] = grad["U"]',
        (PP + "::test_class_rbm_weight_decay_is_l2_on_w_and_u_only",),
        "decay on U dropped",
    ),
    Break(
        "class RBM momentum",
        "delta <- mu delta + lr g",
        S + "pretrain/hybrid/loop.py",
        '"momentum", [{"params": list(p.values())} for p in params], 1.0, momentum=cfg.momentum',
        '"momentum", [{"params": list(p.values())} for p in params], 1.0, momentum=0.0',
        (RS + "::test_class_rbm_steps_match_transcription",),
        "momentum ignored",
    ),
    # ------------------------------------------------------------ optimizers and schedules
    Break(
        "SGD",
        "x -= lr (dx + wd x)",
        S + "optim/optimizers.py",
        "return torch.optim.SGD(params, lr=lr, momentum=0.0, weight_decay=weight_decay)",
        "return torch.optim.SGD(params, lr=lr, momentum=0.0, weight_decay=0.0)",
        ("tests/test_optim.py::test_sgd_is_steepest_descent",),
        "weight decay dropped",
    ),
    Break(
        "Nesterov",
        "look-ahead gradient (Sutskever form)",
        S + "optim/optimizers.py",
        "params, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay",
        "params, lr=lr, momentum=momentum, nesterov=False, weight_decay=weight_decay",
        ("tests/test_optim.py::test_nesterov_is_sutskever_in_look_ahead_variable",),
        "look-ahead dropped (classical momentum)",
    ),
    Break(
        "AdaGrad",
        "lr / (1 + (t-1) lr_decay) dx / (sqrt(sum dx^2) + eps)",
        S + "optim/optimizers.py",
        "lr_decay=lr_decay,\n",
        "lr_decay=0.0,\n",
        ("tests/test_optim.py::test_adagrad_matches_duchi",),
        "lr_decay ignored",
    ),
    Break(
        "RMSprop",
        "cache = decay cache + (1 - decay) dx^2",
        S + "optim/optimizers.py",
        "alpha=alpha,\n        eps=eps,\n        momentum=momentum,",
        "alpha=0.99,\n        eps=eps,\n        momentum=momentum,",
        ("tests/test_optim.py::test_rmsprop_matches_tieleman_hinton",),
        "decay fixed at 0.99",
    ),
    Break(
        "RMSprop centered",
        "divide by sqrt(E[g^2] - E[g]^2) (Graves)",
        S + "optim/optimizers.py",
        "centered=centered,",
        "centered=False,",
        ("tests/test_optim.py::test_rmsprop_centered_with_momentum_matches_graves",),
        "not centered",
    ),
    Break(
        "Adam",
        "bias-corrected m / (sqrt(v) + eps), betas",
        S + "optim/optimizers.py",
        "torch.optim.Adam(\n        params,\n        lr=lr,\n        betas=(float(betas[0]), float(betas[1])),",
        "torch.optim.Adam(\n        params,\n        lr=lr,\n        betas=(0.9, 0.999),",
        (
            "tests/train/test_train_properties.py::test_adam_with_betas_amsgrad_and_weight_decay_matches_algorithm_1",
        ),
        "betas ignored",
    ),
    Break(
        "cosine schedule",
        "(1 + cos(pi t / T)) / 2",
        S + "optim/schedules.py",
        "(1 + math.cos(math.pi * t / period)) / 2",
        "(1 + math.cos(math.pi * (t + 1) / period)) / 2",
        (
            "tests/test_schedules.py::test_closed_forms",
            "tests/test_schedules.py::test_factor_equals_torch_scheduler",
        ),
        "off by one epoch",
    ),
    Break(
        "warm-up schedule",
        "linear from start_factor to 1 over warmup epochs",
        S + "optim/schedules.py",
        "return start_factor + (1 - start_factor) * min(t, warmup) / warmup",
        "return start_factor + (1 - start_factor) * min(t + 1, warmup) / warmup",
        (
            "tests/test_schedules.py::test_closed_forms",
            "tests/test_schedules.py::test_factor_equals_torch_scheduler",
        ),
        "off by one epoch",
    ),
    Break(
        "step schedule",
        "gamma ** floor(t / step)",
        S + "optim/schedules.py",
        "lambda t, epochs, step_size, gamma: gamma ** (t // step_size),",
        "lambda t, epochs, step_size, gamma: gamma ** (t / step_size),",
        (
            "tests/test_schedules.py::test_closed_forms",
            "tests/test_schedules.py::test_factor_equals_torch_scheduler",
        ),
        "no floor (exponential)",
    ),
    Break(
        "inverse-time schedule",
        "1 / (1 + decay t)",
        S + "optim/schedules.py",
        "lambda t, epochs, decay: 1 / (1 + decay * t),",
        "lambda t, epochs, decay: 1 / (1 + decay * (t + 1)),",
        ("tests/test_schedules.py::test_closed_forms",),
        "off by one epoch",
    ),
    Break(
        "schedule over the steps (fit_sequence)",
        "step t + 1 runs at lr_0 factor(t)",
        S + "train/sequence.py",
        "factor = float(factor_at(step - 1))",
        "factor = float(factor_at(0))",
        (
            "tests/train/test_sequence_schedule.py::test_a_callable_schedule_gives_each_step_its_rate",
            "tests/train/test_sequence_schedule.py::test_cosine_decays_over_the_steps_to_min_factor",
        ),
        "the first step's rate throughout",
    ),
    # ------------------------------------------------------------ early stopping
    Break(
        "early stopping",
        "improvement beats best by > min_delta",
        S + "callbacks.py",
        "improved = v < self.best - self.min_delta",
        "improved = v < self.best",
        (
            "tests/train/test_train_properties.py::test_early_stopping_improvement_must_beat_best_by_min_delta",
        ),
        "min_delta ignored",
    ),
    Break(
        "early stopping",
        "stop after patience epochs without improvement",
        S + "callbacks.py",
        "stop = not improved and self.wait >= self.patience",
        "stop = not improved and self.wait > self.patience",
        (
            "tests/train/test_train_properties.py",
            "tests/studies/test_early_stopping.py",
            "tests/train/test_loop.py",
        ),
        "one epoch too late",
    ),
    Break(
        "early stopping",
        "mode='max': larger is better",
        S + "callbacks.py",
        "v = self.sign * float(value)",
        "v = float(value)",
        (
            "tests/train/test_train_properties.py::test_early_stopping_mode_max_treats_larger_as_better",
        ),
        "mode ignored",
    ),
    Break(
        "early stopping",
        "the best epoch's weights restored, whatever ended training",
        S + "train/loop.py",
        "                model.load_state_dict(best_state)\n    if hist.best_epoch is None",
        "                pass\n    if hist.best_epoch is None",
        ("tests/train/test_loop.py::test_early_stopping_always_restores_best_weights",),
        "last weights kept",
    ),
    # ------------------------------------------------------------ regularization
    Break(
        "L2 penalty",
        "lam / (2n) sum w^2",
        S + "regularize/penalties.py",
        'coef = per_member(lam, w, members_axis, "lam") / (2 * per_member(n, w, members_axis, "n"))',
        'coef = per_member(lam, w, members_axis, "lam") / per_member(n, w, members_axis, "n")',
        ("tests/regularize/test_penalties.py::test_l2_value_and_gradient_match_formula",),
        "the 1/2 dropped",
    ),
    Break(
        "L1 penalty",
        "lam / n sum |w|",
        S + "regularize/penalties.py",
        "return _sum_per_member(coef * w.abs(), members_axis)",
        "return _sum_per_member(coef * w, members_axis)",
        ("tests/regularize/test_penalties.py::test_l1_subgradient_is_sign_with_sign0_zero",),
        "w instead of |w|",
    ),
    Break(
        "proximal L1",
        "soft threshold: exact zeros",
        S + "regularize/penalties.py",
        "shrunk = (w.abs() - t).clamp_(min=0)",
        "shrunk = w.abs() - t",
        ("tests/regularize/test_penalties.py::test_soft_threshold_formula_and_exact_zeros",),
        "no clamp at 0",
    ),
    Break(
        "proximal L1",
        "threshold lr * l1 / n",
        S + "regularize/penalties.py",
        'per_member(lr, w, m, "lr")\n                * per_member(self.l1, w, m, "l1")',
        'per_member(self.l1, w, m, "l1")',
        (
            "tests/regularize/test_penalties.py::test_proximal_l1_gives_lasso_solution_with_exact_zeros",
            TP + "::test_proximal_l1_step_is_a_soft_threshold_by_lr_times_lambda_over_n",
        ),
        "threshold without the learning rate",
    ),
    Break(
        "decoupled weight decay",
        "w <- (1 - lr wd) w before the step",
        S + "regularize/penalties.py",
        "decay_(w, factor, members_axis=self.members_axis)",
        "pass",
        (
            "tests/regularize/test_penalties.py::test_l2_and_decoupled_differ_for_adam_and_match_adam_adamw",
        ),
        "decay not applied",
    ),
    Break(
        "max-norm",
        "each unit's incoming vector (norm over dims 1..)",
        S + "regularize/constraints.py",
        "dims = tuple(range(1, ndim))",
        "dims = tuple(range(0, ndim - 1))",
        ("tests/regularize/test_constraints.py::test_axis_is_incoming_rows_of_linear_weight",),
        "wrong axis (outgoing vectors)",
    ),
    Break(
        "max-norm",
        "w_j * min(1, c / ||w_j||): never scales up",
        S + "regularize/constraints.py",
        "scale = (c_t / norms).clamp_(max=1.0)",
        "scale = c_t / norms",
        ("tests/regularize/test_constraints.py",),
        "short rows stretched to c",
    ),
    Break(
        "dropout (inverted)",
        "train y = m x / (1 - p), eval y = x",
        S + "nn/dropout.py",
        "return x * mask / self.keep  # y = m * x / (1 - p)",
        "return x * mask  # y = m * x / (1 - p)",
        ("tests/nn/test_dropout.py::test_training_mean_equals_inference_output_statistically",),
        "no rescale at train time",
    ),
    Break(
        "dropout (lecture)",
        "eval y = (1 - p) x",
        S + "nn/dropout.py",
        'return x * self.keep if self.mode == "lecture" else x  # (1-p) x | x',
        "return x  # (1-p) x | x",
        (
            "tests/nn/test_dropout.py::test_lecture_mlp_equals_inverted_mlp_with_scaled_weights_at_inference",
        ),
        "no scaling at inference",
    ),
    Break(
        "dropout (keep probability)",
        "m ~ Bernoulli(1 - p)",
        S + "nn/dropout.py",
        "return (torch.rand_like(x) < self.keep).to(x.dtype)  # m ~ Bernoulli(1 - p)",
        "return (torch.rand_like(x) < self.p).to(x.dtype)  # m ~ Bernoulli(1 - p)",
        ("tests/nn/test_dropout.py", TP + "::test_dropout_drops_a_fraction_p"),
        "p is the retain probability",
    ),
    Break(
        "dropout (Gaussian)",
        "r ~ N(1, p / (1 - p))",
        S + "nn/dropout.py",
        "sigma = math.sqrt(self.p / self.keep)",
        "sigma = math.sqrt(self.p)",
        (
            "tests/nn/test_dropout.py",
            TP + "::test_gaussian_dropout_noise_has_variance_p_over_1_minus_p",
        ),
        "variance p",
    ),
    Break(
        "DropConnect moments",
        "sigma^2 = p (1 - p) (W*W)(v*v)",
        S + "nn/dropconnect.py",
        "var = p * keep * (v.square() @ weight.square().T)",
        "var = keep * (v.square() @ weight.square().T)",
        ("tests/nn/test_dropconnect.py::test_moments_equal_enumeration_of_all_masks",),
        "the factor p dropped",
    ),
    Break(
        "DropConnect inference",
        "mean of a(u), u ~ N(mu, sigma^2)",
        S + "nn/dropconnect.py",
        "total = total + self.act(mu + std * eps).sum(dim=0)",
        "total = total + self.act(mu + eps).sum(dim=0)",
        ("tests/nn/test_dropconnect.py::test_gaussian_inference_matches_monte_carlo_average",),
        "unit variance",
    ),
    Break(
        "DropConnect inference",
        "mu = (1 - p)(W v + b)",
        S + "nn/dropconnect.py",
        "mu = keep * (v @ weight.T)  # (batch, out), (1-p) W v",
        "mu = v @ weight.T  # (batch, out), (1-p) W v",
        ("tests/nn/test_dropconnect.py",),
        "mean without (1 - p)",
    ),
    Break(
        "DropConnect training",
        "a mask per example",
        S + "nn/dropconnect.py",
        "if not self.per_example:",
        "if True:",
        ("tests/nn/test_dropconnect.py::test_training_forward_uses_per_example_masks",),
        "one mask per batch",
    ),
    Break(
        "magnitude pruning",
        "prune the smallest |w|",
        S + "regularize/prune/saliency.py",
        "return w.abs()\n",
        "return w\n",
        ("tests/regularize/test_prune.py::test_magnitude_prunes_the_asked_fraction",),
        "smallest w (negatives first)",
    ),
    Break(
        "OBD",
        "s_k = h_kk w_k^2 / 2",
        S + "regularize/prune/saliency.py",
        "return 0.5 * h_diag * w.square()",
        "return 0.5 * w.square()",
        (
            "tests/regularize/test_prune.py::test_obd_saliency_is_half_hkk_wk2_and_exact_for_one_weight",
        ),
        "Hessian ignored",
    ),
    Break(
        "OBS",
        "L_q = w_q^2 / (2 [H^-1]_qq)",
        S + "regularize/prune/saliency.py",
        "sal = w.square() / (2 * d)",
        "sal = w.square() / 2",
        ("tests/regularize/test_prune.py::test_obs_prune_equals_a_transcription_of_hassibi_stork",),
        "inverse Hessian ignored",
    ),
    Break(
        "OBS",
        "compensating update dw = -(w_q / [H^-1]_qq) H^-1 e_q",
        S + "regularize/prune/saliency.py",
        "w = w + obs_update(w, h_inv, q)  # w + dw, eq. 5",
        "w = w  # w + dw, eq. 5",
        ("tests/regularize/test_prune.py::test_obs_iterative_equals_constrained_minimum",),
        "no compensation",
    ),
    Break(
        "OBS",
        "H^-1 downdated after each removal",
        S + "regularize/prune/saliency.py",
        "return h_inv - torch.outer(col, h_inv[q, :]) / h_inv[q, q]",
        "return h_inv",
        ("tests/regularize/test_prune.py::test_obs_downdate_equals_inverse_of_submatrix",),
        "no downdate",
    ),
    Break(
        "pruning masks",
        "pruned gradients are 0",
        S + "regularize/prune/masks.py",
        "g.masked_fill_(~m.to(g.device), 0)",
        "g.mul_(1)",
        ("tests/regularize/test_regularize_properties.py",),
        "gradient mask not applied",
    ),
    # ------------------------------------------------------------ gradients
    Break(
        "clip by norm",
        "g <- g min(1, c / ||g||), one global norm",
        S + "train/clipping.py",
        "torch.nn.utils.clip_grads_with_norm_(params_, max_norm, total)",
        "torch.nn.utils.clip_grads_with_norm_(params_, max_norm, total * 0.5)",
        (
            "tests/train/test_clipping.py::test_clip_grad_norm_equals_torch",
            TP + "::test_clipping_by_norm_and_by_value_match_their_formulas",
        ),
        "wrong norm",
    ),
    Break(
        "clip by value",
        "g <- clamp(g, -c, c)",
        S + "train/clipping.py",
        "torch.nn.utils.clip_grad_value_([p for _, p, _ in named], clip_value)",
        "torch.nn.utils.clip_grad_value_([p for _, p, _ in named], 2 * clip_value)",
        (
            "tests/train/test_clipping.py::test_clip_grad_value_equals_torch",
            TP + "::test_clipping_by_norm_and_by_value_match_their_formulas",
        ),
        "clamped at 2c",
    ),
    Break(
        "clip per member",
        "each member's own norm",
        S + "train/clipping.py",
        "coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)",
        "coef = torch.clamp(max_norm / (total.max() + 1e-6), max=1.0)",
        ("tests/train/test_clipping.py::test_per_member_equals_clipping_each_member_separately",),
        "one norm for all members",
    ),
    Break(
        "gradient norms",
        "||dL/dW||_F per layer",
        S + "train/diagnostics/stats.py",
        "torch.linalg.vector_norm(g) if g is not None",
        "g.abs().max() if g is not None",
        ("tests/train/test_diagnostics.py::test_layer_gradient_norms_and_grad_untouched",),
        "max instead of the 2-norm",
    ),
    Break(
        "saturation",
        "sigmoid saturated when a < 0.01 or a > 0.99",
        S + "train/diagnostics/stats.py",
        'out["saturated"] = ((a < lo) | (a > hi)).float().mean()',
        'out["saturated"] = (a > hi).float().mean()',
        ("tests/train/test_diagnostics.py::test_saturation_on_crafted_input",),
        "low side ignored",
    ),
    Break(
        "first/last ratio",
        "first layer's gradient norm over the last's",
        S + "train/diagnostics/monitor.py",
        'add("global", "first_last_ratio", norms[first] / norms[last])',
        'add("global", "first_last_ratio", norms[last] / norms[first])',
        ("tests/train/test_diagnostics.py",),
        "inverted",
    ),
    # ------------------------------------------------------------ recurrent
    Break(
        "IRNN",
        "W_hh = I",
        S + "nn/rnn/inits.py",
        '_init.initialize(w, "identity", generator=generator)  # W = I',
        '_init.initialize(w, "orthogonal", generator=generator)  # W = I',
        ("tests/nn/test_rnn.py::test_identity_init_is_exact",),
        "orthogonal instead of I",
    ),
    Break(
        "IRNN constraint",
        "||W - I||_2 <= radius",
        S + "nn/rnn/constraints.py",
        "d = u @ (s.clamp(max=radius).unsqueeze(-1) * vh)",
        "d = u @ (s.clamp(max=2 * radius).unsqueeze(-1) * vh)",
        (
            "tests/nn/test_rnn.py::test_identity_ball_constraint_holds_after_steps",
            "tests/nn/test_rnn.py::test_projections_are_nearest_points_float64",
        ),
        "radius doubled",
    ),
    Break(
        "spectral constraint",
        "singular values clipped to [min, max]",
        S + "nn/rnn/constraints.py",
        "s = s.clamp(min_value, max_value)",
        "s = s.clamp(min_value, 2 * max_value)",
        ("tests/nn/test_rnn.py::test_spectral_constraint_holds_after_steps",),
        "bound doubled",
    ),
]


def run_break(b: Break, timeout: int = 900) -> tuple[str, str]:
    """Apply ``b``, run its tests, restore; return ``(verdict, detail)``."""
    path = ROOT / b.path
    text = path.read_text()
    count = text.count(b.old)
    if count != 1:
        return "STALE", f"old text found {count} times in {b.path}"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT / "src"))
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-m", "not gpu", *b.tests]  # fmt: skip
    try:
        path.write_text(text.replace(b.old, b.new))
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
    finally:
        path.write_text(text)
    tail = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode == 1:
        return "caught", tail
    if proc.returncode == 0:
        return "SURVIVED", tail
    return f"ERROR rc={proc.returncode}", tail + proc.stderr[-300:]


def markdown(rows: list[tuple[Break, str]]) -> str:
    def cell(s: str) -> str:
        for ch, esc in (("|", "\\|"), ("*", "\\*"), ("<", "&lt;"), (">", "&gt;")):
            s = s.replace(ch, esc)
        return s

    lines = [
        "| trick | defining property | test | break tried | fails? |",
        "|---|---|---|---|---|",
    ]
    for b, verdict in rows:
        tests = "<br>".join(f"`{t.removeprefix('tests/')}`" for t in b.tests)
        fails = "yes" if verdict == "caught" else verdict
        lines.append(f"| {cell(b.trick)} | {cell(b.prop)} | {tests} | {cell(b.what)} | {fails} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--only",
        default="",
        help="the entries whose trick or tests contain one of these (comma-separated)",
    )
    ap.add_argument("--markdown", action="store_true", help="print the table at the end")
    args = ap.parse_args(argv)
    keys = [k.strip().lower() for k in args.only.split(",")]
    chosen = [
        b for b in BREAKS if any(k in b.trick.lower() or any(k in t for t in b.tests) for k in keys)
    ]
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT,
                           capture_output=True, text=True).stdout  # fmt: skip
    if dirty.strip():
        print(f"src/ has uncommitted changes; commit or revert them first:\n{dirty}")
        return 2

    def stop(signum, frame):  # restore the edited file (the finally in run_break) on kill
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    rows, bad = [], 0
    for b in chosen:
        verdict, detail = run_break(b)
        bad += verdict != "caught"
        rows.append((b, verdict))
        print(f"{verdict:9s} {b.trick}: {b.what}  [{detail}]", flush=True)
    if args.markdown:
        print(markdown(rows))
    print(f"{len(chosen) - bad} of {len(chosen)} breaks caught")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
