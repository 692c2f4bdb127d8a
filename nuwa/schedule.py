"""Schedules: which steps of a plan run together, and the pool slots that takes.

A plan fixes each step's context: the patches processed before it within the extent. Nothing
else about the plan's order matters to a patch, so a step can run as soon as its context is done,
beside every other step whose context is done. A *wave* is such a set: no step of a wave is in
another's context, and every context patch ran in an earlier wave. Running a plan wave by wave
gives each patch the same context, hence the same distribution, as running it step by step.

* :func:`sequential`: one step per wave, in the plan's order (training, NAR / P-NAR sampling).
* :func:`wavefront`: the given steps one per wave (pre-caching), then every generated step in the
  earliest wave its context allows. Under omega with extent ``(e_h, e_w)`` patch ``(r, c)`` needs
  ``(r - 1, c)`` and ``(r + e_h, c - 1)``, so it lands in wave ``r + (e_h + 1) c``: an 8 x 152
  canvas takes 461 waves at extent 2 instead of 1,216 steps.

A schedule also says when the pool may drop a patch (after the last wave whose context holds it)
and so how many slots the pool needs: the peak, over waves, of the patches still needed plus the
wave's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from nuwa.adc import Plan

MAX_WAVE = 16
"""Patches per wave at most. Real plans stay far below it (an omega front of R rows at extent e
holds about R / (e + 1) patches), but a plan without contexts (the no-cache ablation) would
otherwise run its whole canvas as one batch, with a pool as large as the canvas."""


@dataclass(frozen=True, repr=False)
class Schedule:
    """A plan's steps grouped into waves, and the pool lifetime of each patch.

    Attributes:
        plan: the plan the waves run.
        waves: per wave, its steps in ascending order; every step appears once.
        released: per wave, the patch ids the pool may drop once the wave is done (NCP.Remove).
        capacity: pool slots needed: the peak over waves of live context patches + the wave's.
    """

    plan: Plan
    waves: tuple[tuple[int, ...], ...]
    released: tuple[tuple[int, ...], ...]
    capacity: int

    def __repr__(self) -> str:
        return (
            f"Schedule({self.plan.name}, {self.plan.num_steps} steps in {self.num_waves} waves,"
            f" capacity {self.capacity})"
        )

    @property
    def num_waves(self) -> int:
        return len(self.waves)

    @property
    def max_wave(self) -> int:
        """The most steps in one wave (sizes the batch of a wave)."""
        return max((len(w) for w in self.waves), default=0)

    @cached_property
    def wave_of(self) -> dict[int, int]:
        """Step -> the wave that runs it."""
        return _wave_of(self.waves)


def sequential(plan: Plan) -> Schedule:
    """One step per wave, in plan order."""
    return _schedule(plan, [(step,) for step in range(plan.num_steps)])


def wavefront(plan: Plan, max_wave: int = MAX_WAVE) -> Schedule:
    """Given steps one per wave, then each generated step in the earliest wave its context
    allows (one more than the latest wave of its generated context patches); a front of more
    than ``max_wave`` steps runs as consecutive waves of at most that many."""
    if max_wave < 1:
        raise ValueError(f"max_wave must be >= 1, got {max_wave}")
    depth: list[int] = []
    for step in range(plan.num_given, plan.num_steps):
        context_steps = (plan.step_of[p] - plan.num_given for p in plan.context[step])
        depth.append(1 + max((depth[s] for s in context_steps if s >= 0), default=-1))
    fronts: list[list[int]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for offset, d in enumerate(depth):
        fronts[d].append(plan.num_given + offset)
    waves = [(step,) for step in range(plan.num_given)]
    for front in fronts:
        waves += [tuple(front[i : i + max_wave]) for i in range(0, len(front), max_wave)]
    return _schedule(plan, waves)


def _wave_of(waves: list[tuple[int, ...]] | tuple[tuple[int, ...], ...]) -> dict[int, int]:
    return {step: wave for wave, steps in enumerate(waves) for step in steps}


def _schedule(plan: Plan, waves: list[tuple[int, ...]]) -> Schedule:
    """Releases and capacity of ``waves`` (which must respect every context of ``plan``)."""
    wave_of = _wave_of(waves)
    last_wave = [wave_of[step] for step in range(plan.num_steps)]  # itself, if never context
    for step, context in enumerate(plan.context):
        for patch in context:
            used = plan.step_of[patch]
            assert wave_of[used] < wave_of[step], "a wave runs before one of its context patches"
            last_wave[used] = max(last_wave[used], wave_of[step])
    released: list[list[int]] = [[] for _ in waves]
    for step, wave in enumerate(last_wave):
        released[wave].append(plan.order[step])
    live = capacity = 0
    for wave, steps in enumerate(waves):
        capacity = max(capacity, live + len(steps))
        live += len(steps) - len(released[wave])
    return Schedule(
        plan=plan,
        waves=tuple(waves),
        released=tuple(tuple(r) for r in released),
        capacity=capacity,
    )
