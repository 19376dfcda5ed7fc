"""The LASER interventions: rank reduction (exact or randomized SVD), zeroing and magnitude pruning.

Every new value is computed on the CPU in float32, as the original does (it edits before moving
the model to its device), so an edit does not depend on the device that scores it.
"""

from __future__ import annotations

import logging

import torch

from .edits import Edit, Level
from .families import Family, Target, num_layers
from .io import LaserflowError
from .settings import SVD_MODES

log = logging.getLogger(__name__)
_warned_rank_zero: set[tuple[str, str]] = set()  # (parameter, level): a job warns once for each


def select_targets(model: torch.nn.Module, family: Family, tau: str, layer: int) -> list[tuple[Target, torch.nn.Parameter]]:
    """The matrices an edit of (τ, ℓ) changes and their parameters, checked against the model's layer count."""
    layers = num_layers(model.config)
    if not 0 <= layer < layers:
        raise LaserflowError(f"layer {layer} is outside the model's layers 0..{layers - 1}")
    params = dict(model.named_parameters())
    selected = []
    for target in family.targets(tau, layer, model.config):
        if target.parameter not in params:
            raise LaserflowError(
                f"matrix type '{tau}' at layer {layer} selects no parameter: "
                f"the model has no '{target.parameter}' ({family.name} family mapping)"
            )
        selected.append((target, params[target.parameter]))
    return selected


def _row_index(target: Target) -> slice | torch.Tensor | None:
    """The output rows a part target covers (None: all of them)."""
    if not target.rows:
        return None
    if len(target.rows) == 1:
        return slice(*target.rows[0])
    return torch.cat([torch.arange(start, stop) for start, stop in target.rows])


def matrix_shape(shape: tuple[int, ...], target: Target) -> tuple[int, int]:
    """The shape (out × in) of the target's matrix, from its parameter's stored shape."""
    rows, columns = (shape[1], shape[0]) if target.transposed else tuple(shape)
    return sum(stop - start for start, stop in target.rows) or rows, columns


def matrix_of(weight: torch.Tensor, target: Target) -> torch.Tensor:
    """The target's matrix W (out × in) in float32, read from its stored parameter value."""
    oriented = weight.detach().T if target.transposed else weight.detach()
    index = _row_index(target)
    return (oriented if index is None else oriented[index]).to(torch.float32)


def with_matrix(weight: torch.Tensor, target: Target, value: torch.Tensor) -> torch.Tensor:
    """A copy of a parameter's value with the target's matrix (out × in) replaced by ``value``."""
    out = weight.detach().clone()
    oriented = out.T if target.transposed else out
    index = _row_index(target)
    with torch.no_grad():
        if index is None:
            oriented.copy_(value.to(device=out.device, dtype=out.dtype))
        else:
            oriented[index] = value.to(device=out.device, dtype=out.dtype)
    return out


def svd_factors(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """Exact thin SVD of a matrix in float32: W = U diag(S) Vh."""
    U, S, Vh = torch.linalg.svd(weight.detach().to(torch.float32), full_matrices=False)
    return {"U": U.contiguous(), "S": S.contiguous(), "Vh": Vh.contiguous()}


def truncate(factors: dict[str, torch.Tensor], rank: int, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Best rank-r approximation from cached exact SVD factors (Eckart–Young).

    Given the weight, a truncation keeping more than half the rank subtracts the dropped
    components from it instead, W − U[:, r:] S[r:] Vh[r:]: the same matrix (W = U S Vh) from
    the smaller product.
    """
    U, S, Vh = factors["U"], factors["S"], factors["Vh"]
    if weight is not None and 2 * rank > len(S):
        return weight.detach().to(torch.float32) - (U[:, rank:] * S[rank:]) @ Vh[rank:]
    return (U[:, :rank] * S[:rank]) @ Vh[:rank]


def randomized_low_rank(weight: torch.Tensor, rank: int, niter: int, seed: int) -> torch.Tensor:
    """The original code's approximation: torch.svd_lowrank(W.float(), q=r, niter) on the CPU, seeded."""
    torch.manual_seed(seed)
    U, S, V = torch.svd_lowrank(weight.detach().to("cpu", torch.float32), q=rank, niter=niter)
    return U @ torch.diag(S) @ V.T


def magnitude_prune(weight: torch.Tensor, level: Level) -> torch.Tensor:
    """The original's 'dropout': zero every entry with |w| ≤ the (1−ρ)·n-th smallest |w|."""
    flat = weight.detach().to(torch.float32).abs().flatten()
    position = int((1 - level.fraction) * flat.numel()) if level.rho is not None else int(level.rate * 0.1 * flat.numel())
    alpha = torch.sort(flat).values[position]
    pruned = weight.detach().to(torch.float32).clone()
    pruned[pruned.abs() <= alpha] = 0
    return pruned


def edited_weight(
    weight: torch.Tensor,
    edit: Edit,
    factors: dict[str, torch.Tensor] | None = None,
    svd_mode: str = "exact",
    seed: int = 0,
    niter: int = 2,
) -> torch.Tensor:
    """The new value (float32) of one matrix under ``edit``.

    A level that keeps rank 0 gives the zero matrix, the best rank-0 approximation (the original's
    SVD then returns empty factors, whose product is zero).
    """
    if edit.intervention == "zero":
        return torch.zeros_like(weight, dtype=torch.float32)
    if edit.intervention == "prune":
        return magnitude_prune(weight, edit.level)
    rank = edit.level.kept_rank(tuple(weight.shape))
    if rank == 0:
        return torch.zeros_like(weight, dtype=torch.float32)
    if svd_mode == "randomized":
        return randomized_low_rank(weight, rank, niter, seed)
    return truncate(factors if factors is not None else svd_factors(weight), rank, weight)


def edited_parameters(
    model: torch.nn.Module,
    family: Family,
    edits: list[Edit],
    svd_cache: dict[str, dict[str, torch.Tensor]] | None = None,
    svd_mode: str = "exact",
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """The new value of every parameter ``edits`` touch (the parameter's dtype and device), the
    edits applied in order; the model is not changed.

    Every edit is validated before any value is computed. ``svd_cache`` maps target keys
    (``Target.key``) to exact SVD factors of their matrix W (out × in); missing ones are computed
    here.
    """
    if svd_mode not in SVD_MODES:
        raise LaserflowError(f"unknown svd mode '{svd_mode}'; valid: {', '.join(SVD_MODES)}")
    targets = [(edit, select_targets(model, family, edit.tau, edit.layer)) for edit in edits]
    for edit, selected in targets:
        for target, param in selected:
            shape = matrix_shape(param.shape, target)
            if edit.intervention == "laser" and edit.level.kept_rank(shape) == 0:
                warn_rank_zero(target.key, edit.level, shape)
    values: dict[str, torch.Tensor] = {}
    for edit, selected in targets:
        for target, param in selected:
            factors = (svd_cache or {}).get(target.key)
            # On the CPU in float32, as the original computes every edit.
            current = values.get(target.parameter, param.data).to("cpu")
            new = edited_weight(matrix_of(current, target), edit, factors, svd_mode, seed, family.randomized_niter)
            values[target.parameter] = with_matrix(current, target, new).to(device=param.device, dtype=param.dtype)
    return values


def apply_edits(model: torch.nn.Module, family: Family, edits: list[Edit], *args, **kwargs) -> dict[str, torch.Tensor]:
    """Edit the model in place (the arguments as ``edited_parameters``); return the original
    values of the touched parameters. A bad edit leaves the model intact."""
    values = edited_parameters(model, family, edits, *args, **kwargs)
    params = dict(model.named_parameters())
    originals = {name: params[name].data.clone() for name in values}
    with torch.no_grad():
        for name, value in values.items():
            params[name].data.copy_(value)
    return originals


def restore_weights(model: torch.nn.Module, originals: dict[str, torch.Tensor]) -> None:
    """Put back the parameter values ``apply_edits`` returned, exactly as they were before it."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in originals.items():
            params[name].data.copy_(value)


def warn_rank_zero(name: str, level: Level, shape: tuple[int, int]) -> None:
    """Log, once per job, that a level keeps rank 0 of a matrix and so writes the zero matrix."""
    if (name, level.label) not in _warned_rank_zero:
        _warned_rank_zero.add((name, level.label))
        log.warning("%s keeps rank 0 of %s (%dx%d): writing the zero matrix, as the original does",
                    level.label, name, *shape)


def describe_edits(model: torch.nn.Module, family: Family, edits: list[Edit]) -> list[dict]:
    """Each edit's description; a LASER edit's adds, per matrix (``Target.key``), its shape (out ×
    in) and the rank it kept."""
    described = []
    for edit in edits:
        record = edit.describe()
        if edit.intervention == "laser":
            record["matrices"] = {}
            for target, param in select_targets(model, family, edit.tau, edit.layer):
                shape = matrix_shape(param.shape, target)
                record["matrices"][target.key] = {"shape": list(shape), "kept_rank": edit.level.kept_rank(shape)}
        described.append(record)
    return described
