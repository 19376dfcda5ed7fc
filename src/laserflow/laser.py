"""The LASER interventions: rank reduction (exact or randomized SVD), zeroing and magnitude pruning."""

from __future__ import annotations

import torch

from .edits import Edit, Level
from .families import Family, Target, num_layers
from .io import LaserflowError
from .settings import SVD_MODES


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


def write_matrix(param: torch.nn.Parameter, target: Target, value: torch.Tensor) -> None:
    """Store ``value`` (the target's W, out × in) into its parameter, in the parameter's dtype."""
    oriented = param.data.T if target.transposed else param.data
    index = _row_index(target)
    with torch.no_grad():
        if index is None:
            oriented.copy_(value.to(device=param.device, dtype=param.dtype))
        else:
            oriented[index] = value.to(device=param.device, dtype=param.dtype)


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
    """The original code's approximation: torch.svd_lowrank(W.float(), q=r, niter), seeded."""
    torch.manual_seed(seed)
    U, S, V = torch.svd_lowrank(weight.detach().to(torch.float32), q=rank, niter=niter)
    return U @ torch.diag(S) @ V.T


def magnitude_prune(weight: torch.Tensor, level: Level) -> torch.Tensor:
    """The original's 'dropout': zero every entry with |w| ≤ the (1−ρ)·n-th smallest |w|."""
    flat = weight.detach().to(torch.float32).abs().flatten()
    position = int((1 - level.fraction) * flat.numel()) if level.rho is not None else int(level.rate * 0.1 * flat.numel())
    alpha = torch.sort(flat).values[position]
    pruned = weight.detach().to(torch.float32).clone()
    pruned[pruned.abs() <= alpha] = 0
    return pruned


def kept_rank_checked(level: Level, shape: tuple[int, int]) -> int:
    rank = level.kept_rank(shape)
    if rank < 1:
        raise LaserflowError(
            f"{level.label} keeps rank {rank} of a {shape[0]}x{shape[1]} matrix; choose a larger fraction"
        )
    return rank


def edited_weight(
    weight: torch.Tensor,
    edit: Edit,
    factors: dict[str, torch.Tensor] | None = None,
    svd_mode: str = "exact",
    seed: int = 0,
    niter: int = 2,
) -> torch.Tensor:
    """The new value (float32) of one matrix under ``edit``."""
    if edit.intervention == "zero":
        return torch.zeros_like(weight, dtype=torch.float32)
    if edit.intervention == "prune":
        return magnitude_prune(weight, edit.level)
    rank = kept_rank_checked(edit.level, tuple(weight.shape))
    if svd_mode == "randomized":
        return randomized_low_rank(weight, rank, niter, seed)
    return truncate(factors if factors is not None else svd_factors(weight), rank, weight)


def apply_edits(
    model: torch.nn.Module,
    family: Family,
    edits: list[Edit],
    svd_cache: dict[str, dict[str, torch.Tensor]] | None = None,
    svd_mode: str = "exact",
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Edit the model in place; return the original values of the touched parameters.

    Every edit is validated before any weight changes, so a bad edit leaves the model intact.
    ``svd_cache`` maps target keys (``Target.key``) to exact SVD factors of their matrix W; missing
    ones are computed here.
    """
    if svd_mode not in SVD_MODES:
        raise LaserflowError(f"unknown svd mode '{svd_mode}'; valid: {', '.join(SVD_MODES)}")
    targets = [(edit, select_targets(model, family, edit.tau, edit.layer)) for edit in edits]
    for edit, selected in targets:
        if edit.intervention == "laser":
            for target, param in selected:
                kept_rank_checked(edit.level, matrix_shape(param.shape, target))
    originals: dict[str, torch.Tensor] = {}
    for edit, selected in targets:
        for target, param in selected:
            factors = (svd_cache or {}).get(target.key)
            new = edited_weight(matrix_of(param.data, target), edit, factors, svd_mode, seed, family.randomized_niter)
            originals.setdefault(target.parameter, param.data.clone())
            write_matrix(param, target, new)
    return originals
