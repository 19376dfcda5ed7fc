"""The LASER interventions: rank reduction (exact or randomized SVD), zeroing and magnitude pruning."""

from __future__ import annotations

import torch

from .edits import Edit, Level
from .families import Family, num_layers
from .io import LaserflowError
from .settings import SVD_MODES


def select_parameters(model: torch.nn.Module, family: Family, tau: str, layer: int) -> dict[str, torch.nn.Parameter]:
    """The parameters an edit of (τ, ℓ) touches, checked against the model's layer count."""
    layers = num_layers(model.config)
    if not 0 <= layer < layers:
        raise LaserflowError(f"layer {layer} is outside the model's layers 0..{layers - 1}")
    params = dict(model.named_parameters())
    selected = {}
    for name in family.parameter_names(tau, layer):
        if name not in params:
            raise LaserflowError(
                f"matrix type '{tau}' at layer {layer} selects no parameter: "
                f"the model has no '{name}' ({family.name} family mapping)"
            )
        selected[name] = params[name]
    return selected


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
    ``svd_cache`` maps parameter names to exact SVD factors; missing ones are computed here.
    """
    if svd_mode not in SVD_MODES:
        raise LaserflowError(f"unknown svd mode '{svd_mode}'; valid: {', '.join(SVD_MODES)}")
    targets = [(edit, select_parameters(model, family, edit.tau, edit.layer)) for edit in edits]
    for edit, params in targets:
        if edit.intervention == "laser":
            for param in params.values():
                kept_rank_checked(edit.level, tuple(param.shape))
    originals: dict[str, torch.Tensor] = {}
    for edit, params in targets:
        for name, param in params.items():
            factors = (svd_cache or {}).get(name)
            new = edited_weight(param.data, edit, factors, svd_mode, seed, family.randomized_niter)
            originals.setdefault(name, param.data.clone())
            with torch.no_grad():
                param.data.copy_(new.to(device=param.device, dtype=param.dtype))
    return originals


def restore_weights(model: torch.nn.Module, originals: dict[str, torch.Tensor]) -> None:
    """Put back the parameter values ``apply_edits`` returned, exactly as they were before it."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in originals.items():
            params[name].data.copy_(value)
