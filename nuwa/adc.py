"""ADC.Split: generation orders and the plan they induce (pure index math, no tensors).

A :class:`Plan` is the single source of truth for "which patches may the patch of step ``s`` see":
the training mask (``nuwa.model.masks``), the Nearby Context Pool (``nuwa.ncp``) and the sampler all
read it. Per step it holds the patch id, its context (already-processed patches within the extent
``(e_h, e_w, e_f)``: ``|drow| <= e_h``, ``|dcol| <= e_w``, ``0 <= dframe <= e_f``) and the offset
of each context patch (for ADC.Emb). When each patch may leave the pool depends on which steps run
together: ``nuwa.schedule``.

Orders (paper §3.1; frames are always outermost, i.e. every patch of frame f before frame f+1):

* ``omega``      columns left->right, each column top->bottom (extend right, wide canvases)
* ``omega_star`` columns right->left, each column top->bottom (extend left)
* ``zeta``       rows top->bottom, each row left->right (raster; extend down)
* ``zeta_star``  rows bottom->top, each row left->right (extend up)
* ``spiral``     rings outward around the given region (or a centre), clockwise from the top:
  the all-direction outpainting order of paper Fig. 4. The paper does not define its composed
  order; rings by Chebyshev distance give every new patch a known neighbour on its inner side.

Any order can be composed with a given region (outpainting, animation): the given patches are
processed first (pre-caching, paper Algorithm 2), in that order, then the rest in that order.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from nuwa.layout import PatchGrid

ORDERS = ("omega", "omega_star", "zeta", "zeta_star")
"""The four basic orders; training samples one of them per example."""

DIRECTION_ORDERS = {"right": "omega", "left": "omega_star", "down": "zeta", "up": "zeta_star"}
"""The basic order that extends a canvas in each direction (paper §3.1, the four basic orders)."""


class ExtentWarning(UserWarning):
    """The extent reaches past the grid, so the grid, not the extent, bounds the context."""


@dataclass(frozen=True)
class Extent:
    """NCP extent in patches: ``h`` rows and ``w`` columns either side, ``f`` frames back."""

    h: int
    w: int
    f: int = 0

    def __post_init__(self) -> None:
        if min(self.h, self.w, self.f) < 0:
            raise ValueError(f"extent components must be >= 0, got {self}")

    @property
    def table_size(self) -> int:
        """Number of ADC.Emb vectors: ``(f + 1)(2h + 1)(2w + 1)`` (paper Fig. 5: 18 for (1,1,1))."""
        return (self.f + 1) * (2 * self.h + 1) * (2 * self.w + 1)

    def covers(self, other: Extent) -> bool:
        """True when every offset within ``other`` is also within ``self``."""
        return other.h <= self.h and other.w <= self.w and other.f <= self.f

    def offset_index(self, dframe: int, drow: int, dcol: int) -> int:
        """ADC.Emb row of a context patch at ``(dframe back, drow, dcol)`` from the current patch.

        Rows run frame-major (``dframe = 0..f``), then ``drow = -h..h``, then ``dcol = -w..w``,
        matching the a..r labelling of paper Fig. 5. ``(0, 0, 0)`` is the current patch.
        """
        if not (0 <= dframe <= self.f and abs(drow) <= self.h and abs(dcol) <= self.w):
            raise ValueError(f"offset {(dframe, drow, dcol)} lies outside extent {self}")
        return (dframe * (2 * self.h + 1) + drow + self.h) * (2 * self.w + 1) + dcol + self.w

    @property
    def centre(self) -> int:
        """ADC.Emb row of the current patch itself."""
        return self.offset_index(0, 0, 0)


def order_patches(grid: PatchGrid, order: str) -> list[int]:
    """Patch ids of ``grid`` in one of the four basic :data:`ORDERS`."""
    frames, rows, cols = range(grid.frames), range(grid.rows), range(grid.cols)
    if order == "omega":
        return [grid.patch_id(f, r, c) for f in frames for c in cols for r in rows]
    if order == "omega_star":
        return [grid.patch_id(f, r, c) for f in frames for c in reversed(cols) for r in rows]
    if order == "zeta":
        return [grid.patch_id(f, r, c) for f in frames for r in rows for c in cols]
    if order == "zeta_star":
        return [grid.patch_id(f, r, c) for f in frames for r in reversed(rows) for c in cols]
    raise ValueError(f"unknown order {order!r}; expected one of {ORDERS} or 'spiral'")


def spiral_order(
    grid: PatchGrid, given: Iterable[int] = (), centre: tuple[int, int] | None = None
) -> list[int]:
    """All-direction order: rings outward from the given region's bounding box, frame by frame.

    Ring ``k`` holds the patches at Chebyshev distance ``k`` from the box (the given patches'
    bounding box, else the cell ``centre`` = (row, col), default the grid's centre cell). Inside a
    ring the patches go clockwise starting straight above the box centre.
    """
    given = sorted(set(given))
    if given:
        rows = [grid.coords(p)[1] for p in given]
        cols = [grid.coords(p)[2] for p in given]
        r0, r1, c0, c1 = min(rows), max(rows), min(cols), max(cols)
    else:
        r, c = centre if centre is not None else ((grid.rows - 1) // 2, (grid.cols - 1) // 2)
        if not (0 <= r < grid.rows and 0 <= c < grid.cols):
            raise ValueError(
                f"spiral centre {(r, c)} lies outside the {grid.rows}x{grid.cols} grid"
            )
        r0 = r1 = r
        c0 = c1 = c
    mid_r, mid_c = (r0 + r1) / 2, (c0 + c1) / 2

    def key(patch: int) -> tuple[int, int, float, int]:
        f, r, c = grid.coords(patch)
        ring = max(max(r0 - r, 0, r - r1), max(c0 - c, 0, c - c1))
        angle = math.atan2(c - mid_c, -(r - mid_r)) % (2 * math.pi)  # 0 = up, clockwise
        return f, ring, angle, patch

    return sorted(range(grid.num_patches), key=key)


@dataclass(frozen=True)
class Plan:
    """Processing order plus, per step, its NCP context; drives training and sampling alike.

    Attributes:
        grid: the patch grid.
        extent: the NCP extent the contexts were selected with.
        order: patch id processed at each step (a permutation of the grid).
        num_given: the first ``num_given`` steps are given patches (pre-cached, never sampled).
        context: per step, the context patch ids, in processing order.
        deltas: per step, ``(dframe back, drow, dcol)`` of each context patch (for ADC.Emb).
        name: the order's name, for logs.
    """

    grid: PatchGrid
    extent: Extent
    order: tuple[int, ...]
    num_given: int
    context: tuple[tuple[int, ...], ...]
    deltas: tuple[tuple[tuple[int, int, int], ...], ...]
    name: str = "custom"

    @property
    def num_steps(self) -> int:
        return len(self.order)

    @cached_property
    def step_of(self) -> dict[int, int]:
        """Patch id -> the step that processes it."""
        return {patch: step for step, patch in enumerate(self.order)}

    @property
    def max_context(self) -> int:
        """The largest context (in patches) of any step."""
        return max((len(c) for c in self.context), default=0)

    def without_context(self) -> Plan:
        """The same order with every context emptied: the "w/o caches" ablation (paper Table 5)."""
        return _build_plan(self.grid, self.extent, self.order, self.num_given, self.name, False)

    def prefix(self, num_steps: int) -> Plan:
        """The plan of the first ``num_steps`` steps only (contexts never look ahead)."""
        grid, extent, name = self.grid, self.extent, self.name
        given = min(self.num_given, num_steps)
        plan = _build_plan(grid, extent, self.order[:num_steps], given, name, True, partial=True)
        return plan


def make_plan(
    grid: PatchGrid,
    extent: Extent | tuple[int, int, int],
    order: str | Sequence[int] = "omega",
    given: Iterable[int] = (),
) -> Plan:
    """Build the plan of a canvas.

    Args:
        grid: the patch grid to generate (including any given region).
        extent: NCP extent ``(e_h, e_w, e_f)``.
        order: a name from :data:`ORDERS`, ``"spiral"``, or an explicit permutation of patch ids.
        given: patch ids that are known (outpainting input, animation's first frame). They are
            processed first, in the order's own sequence; an explicit order must list them first.

    Warns :class:`ExtentWarning` when the extent reaches past the grid in some axis (the context
    then is the whole axis). Raises ``ValueError`` on an unknown order or a bad permutation.
    """
    extent = extent if isinstance(extent, Extent) else Extent(*extent)
    given_set = set(given)
    if any(not 0 <= p < grid.num_patches for p in given_set):
        raise ValueError(f"given patch ids must lie in [0, {grid.num_patches})")
    if isinstance(order, str):
        name = order
        base = spiral_order(grid, given_set) if order == "spiral" else order_patches(grid, order)
        sequence = [p for p in base if p in given_set] + [p for p in base if p not in given_set]
    else:
        name, sequence = "custom", list(order)
        if sorted(sequence) != list(range(grid.num_patches)):
            raise ValueError("an explicit order must be a permutation of all patch ids of the grid")
        if set(sequence[: len(given_set)]) != given_set:
            raise ValueError("an explicit order must list the given patches first")
    if (
        extent.h >= grid.rows
        or extent.w >= grid.cols
        or (grid.frames > 1 and extent.f >= grid.frames)
    ):
        warnings.warn(
            f"extent (e_h={extent.h}, e_w={extent.w}, e_f={extent.f}) reaches past the "
            f"{grid.rows}x{grid.cols}x{grid.frames} patch grid; the grid bounds the context",
            ExtentWarning,
            stacklevel=2,
        )
    return _build_plan(grid, extent, tuple(sequence), len(given_set), name, True)


def _build_plan(
    grid: PatchGrid,
    extent: Extent,
    order: tuple[int, ...],
    num_given: int,
    name: str,
    with_context: bool,
    partial: bool = False,
) -> Plan:
    """Select the contexts of ``order`` (``partial``: a prefix of a grid's order)."""
    step_of = {patch: step for step, patch in enumerate(order)}
    if not partial:
        assert len(step_of) == grid.num_patches
    context, deltas = [], []
    for step, patch in enumerate(order):
        f, r, c = grid.coords(patch)
        found = []
        if with_context:
            for df in range(min(extent.f, f) + 1):
                for q_r in range(max(0, r - extent.h), min(grid.rows, r + extent.h + 1)):
                    for q_c in range(max(0, c - extent.w), min(grid.cols, c + extent.w + 1)):
                        q_step = step_of.get(grid.patch_id(f - df, q_r, q_c))
                        if q_step is not None and q_step < step:
                            found.append((q_step, (df, q_r - r, q_c - c)))
        found.sort()
        context.append(tuple(order[s] for s, _ in found))
        deltas.append(tuple(d for _, d in found))
    return Plan(
        grid=grid,
        extent=extent,
        order=order,
        num_given=num_given,
        context=tuple(context),
        deltas=tuple(deltas),
        name=name,
    )
