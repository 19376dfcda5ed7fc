"""Configurations as data: an edit is (intervention, τ, ℓ, level), a composite several edits
applied together; no torch dependency.

The level says how much of a matrix is kept, either as the original code's legacy ``rate`` in
[0, 10) (ρ = 1 − 0.1·rate) or as ρ in (0, 1] directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .io import LaserflowError

INTERVENTIONS = ("laser", "zero", "prune")
_LEVEL_LABEL = re.compile(r"^(rate|rho)(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Level:
    """Fraction of a matrix kept: exactly one of ``rate`` (legacy, [0, 10)) or ``rho`` ((0, 1])."""

    rate: float | None = None
    rho: float | None = None

    def __post_init__(self):
        if (self.rate is None) == (self.rho is None):
            raise LaserflowError("a level needs exactly one of rate or rho")
        if self.rate is not None and not 0 <= self.rate < 10:
            raise LaserflowError(f"rate {self.rate:g} is outside [0, 10)")
        if self.rho is not None and not 0 < self.rho <= 1:
            raise LaserflowError(f"rho {self.rho:g} is outside (0, 1]")

    @classmethod
    def parse(cls, label: str) -> "Level":
        match = _LEVEL_LABEL.match(label)
        if not match:
            raise LaserflowError(f"level '{label}' is neither rate<number> nor rho<number>")
        kind, value = match.groups()
        return cls(**{kind: float(value)})

    @property
    def label(self) -> str:
        return f"rate{self.rate:g}" if self.rate is not None else f"rho{self.rho:g}"

    @property
    def fraction(self) -> float:
        """ρ as the original code computes it: (10 − rate)·0.1 in floating point."""
        return (10 - self.rate) * 0.1 if self.rate is not None else self.rho

    @property
    def nominal_rho(self) -> float:
        """ρ rounded for display (0.009999999999999966 → 0.01)."""
        return round(self.fraction, 10)

    def kept_rank(self, shape: tuple[int, int]) -> int:
        """int(min(m, n) · ρ), with ρ evaluated exactly as the original code does."""
        return int(min(shape) * self.fraction)


@dataclass(frozen=True)
class Edit:
    """One transformation: ``intervention`` applied to matrix type ``tau`` of layer ``layer``."""

    intervention: str
    tau: str
    layer: int
    level: Level | None  # None only for "zero"

    def __post_init__(self):
        if self.intervention not in INTERVENTIONS:
            raise LaserflowError(
                f"unknown intervention '{self.intervention}'; valid: {', '.join(INTERVENTIONS)}"
            )
        if (self.level is None) != (self.intervention == "zero"):
            raise LaserflowError(
                f"intervention '{self.intervention}' "
                + ("takes no level" if self.intervention == "zero" else "needs a rate or rho")
            )

    @property
    def edits(self) -> tuple["Edit", ...]:
        """The edits of this configuration: itself (see ``Composite``)."""
        return (self,)

    @property
    def label(self) -> str:
        """``intervention-τ-ℓ-level``, e.g. ``laser-fc_in-2-rate9.9`` (a part of a composite's label)."""
        return f"{self.intervention}-{self.tau}-{self.layer}-{level_label(self.level)}"

    def describe(self) -> dict:
        out = {"intervention": self.intervention, "tau": self.tau, "layer": self.layer}
        if self.level is not None:
            out |= {"level": self.level.label, "rho": self.level.nominal_rho}
            if self.level.rate is not None:
                out["rate"] = self.level.rate
        return out

    @classmethod
    def from_description(cls, described: dict) -> "Edit":
        """``describe()``'s inverse (extra keys, such as the kept ranks of a summary, are ignored)."""
        return cls(described["intervention"], described["tau"], int(described["layer"]),
                   parse_level(described.get("level", "none")))


_EDIT_LABEL = re.compile(r"^([a-z]+)-([a-z_]+)-(\d+)-(none|(?:rate|rho)\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Composite:
    """Several edits applied together, as one configuration with one target (its ``label``)."""

    edits: tuple[Edit, ...]
    intervention = "composite"  # never a selection candidate on its own (only single LASER edits are)

    def __post_init__(self):
        if len(self.edits) < 2:
            raise LaserflowError("a composite needs at least two edits")

    @property
    def label(self) -> str:
        """The edits' labels joined by ``+`` in their order, e.g. ``laser-fc_in-2-rate9.9+zero-fc_out-1-none``."""
        return "+".join(edit.label for edit in self.edits)

    @classmethod
    def parse(cls, label: str) -> "Composite":
        edits = []
        for part in label.split("+"):
            match = _EDIT_LABEL.match(part)
            if not match:
                raise LaserflowError(f"composite '{label}': '{part}' is not intervention-tau-layer-level")
            intervention, tau, layer, level = match.groups()
            edits.append(Edit(intervention, tau, int(layer), parse_level(level)))
        return cls(tuple(edits))

    def describe(self) -> dict:
        return {"composite": self.label, "edits": [edit.describe() for edit in self.edits]}


def level_label(level: Level | None) -> str:
    return "none" if level is None else level.label


def parse_level(label: str) -> Level | None:
    return None if label == "none" else Level.parse(label)
