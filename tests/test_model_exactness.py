"""The pool path equals the training-mask path: teacher-forced and greedy-sampled, to fp32 noise.

Models are the ``tiny`` preset with weights re-drawn at unit scale, so attention is sharp and the
logits are O(30): a wrong context, offset or mask changes them by O(1), far above the tolerance.
"""

from __future__ import annotations

import math
import warnings
from functools import cache

import pytest
import torch

from nuwa.adc import ExtentWarning, Plan, make_plan
from nuwa.device import cpu_threads
from nuwa.layout import Layout, PatchGrid
from nuwa.model import Nuwa, preset
from nuwa.model.decoding import PatchDecoder
from nuwa.sampling import SamplerOptions, sample
from nuwa.text import tokenize

# Tolerance as a fraction of the largest reference logit. The two paths sum in different orders, so
# they differ by a few fp32 ulps: at most 4.7e-7 of the scale over every case here on an AMD EPYC
# (1.2e-5 at |logit| ~ 27), which already broke a flat atol of 1e-5. 2e-6 keeps 4x headroom and is
# still ~1e-4 absolute, four orders below the O(1) change a wrong context makes.
SCALE_TOL = 2e-6
GRIDS = {
    "1x1": PatchGrid(1, 1),
    "2x3": PatchGrid(2, 3),
    "3x5": PatchGrid(3, 5),
    "2x2x3": PatchGrid(2, 2, 3),
}
ORDER_CASES = ("omega", "omega_star", "zeta", "zeta_star", "outpaint", "spiral")
EXTENTS = ((1, 1, 0), (2, 2, 0), (1, 1, 1))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Thousands of tiny kernels: one thread avoids thread-pool overhead on a shared 2-core box."""
    with cpu_threads(1):
        yield


@cache
def sharp_model(extent=(1, 1, 0), pos_emb="pre", local_decoder="ar", text=None) -> Nuwa:
    torch.manual_seed(1)
    model = Nuwa(
        preset("tiny", extent=extent, pos_emb=pos_emb, local_decoder=local_decoder, text=text)
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and not name.startswith("text."):
                p.normal_(
                    0, 1.0 if ("emb" in name or "pos_table" in name) else 1 / math.sqrt(p.shape[-1])
                )
    return model.eval()


def assert_logits_close(actual: torch.Tensor, reference: torch.Tensor) -> None:
    """``actual`` equals ``reference`` (any shape) to ``SCALE_TOL`` of the reference's scale."""
    atol = SCALE_TOL * reference.abs().max().item()
    torch.testing.assert_close(actual, reference, atol=atol, rtol=0)


def case_plan(grid: PatchGrid, extent, order: str) -> Plan:
    """A plan; "outpaint" gives the left columns (images) or the first frame (videos) first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtentWarning)
        if order == "outpaint":
            given = (
                grid.region(frames=slice(0, 1))
                if grid.frames > 1
                else grid.region(cols=slice(0, grid.cols // 2))
            )
            return make_plan(grid, extent, "omega", given=given)
        if order == "spiral":
            return make_plan(
                grid, extent, "spiral", given=[grid.patch_id(0, grid.rows // 2, grid.cols // 2)]
            )
        return make_plan(grid, extent, order)


def plan_patches(model: Nuwa, plan: Plan, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Random codes ``[B, N, T]`` for every step of ``plan``, in step order."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(
        0, model.codebook_size, (batch, plan.num_steps, model.tokens_per_patch), generator=g
    )


@torch.no_grad()
def pool_logits(model: Nuwa, plan: Plan, patches: torch.Tensor, text=None) -> torch.Tensor:
    """Teacher-forced, patch by patch through the NCP -> ``[B, N, T, V]``."""
    pool = model.new_pool(plan, patches.shape[0])
    out = [model.forward_patch(patches[:, s], pool, s, text=text) for s in range(plan.num_steps)]
    assert pool.peak_occupancy <= pool.capacity and pool.occupancy == 0
    return torch.stack(out, 1)


@torch.no_grad()
def token_logits(
    model: Nuwa, plan: Plan, patches: torch.Tensor, text=None, waves: bool = False
) -> torch.Tensor:
    """Teacher-forced, token by token through the NCP (the sampler's path) -> ``[B, N, T, V]``;
    ``waves``: each wave of the wavefront schedule as one batch, as the sampler runs it."""
    batch = patches.shape[0]
    decoder = PatchDecoder(model, model.new_pool(plan, batch, waves=waves), text)
    out = [None] * plan.num_steps
    for wave, steps in enumerate(decoder.pool.schedule.waves):
        decoder.begin(wave)
        fed = patches[:, list(steps)].transpose(0, 1).flatten(0, 1)  # [W * B, T], patch-major
        logits = [decoder.feed(i, token) for i, token in enumerate([None, *fed.unbind(1)])]
        decoder.end()
        logits = torch.stack(logits[:-1], 1).unflatten(0, (len(steps), batch))
        for step, step_logits in zip(steps, logits, strict=True):
            out[step] = step_logits
    assert decoder.pool.peak_occupancy <= decoder.pool.capacity and decoder.pool.occupancy == 0
    return torch.stack(out, 1)


@pytest.mark.parametrize("pos_emb", ["pre", "post"])
@pytest.mark.parametrize("extent", EXTENTS, ids=str)
@pytest.mark.parametrize("grid", GRIDS.values(), ids=GRIDS.keys())
def test_incremental_decoding_equals_training_mask_pass(grid, extent, pos_emb):
    model = sharp_model(extent, pos_emb)
    for order in ORDER_CASES:
        plan = case_plan(grid, extent, order)
        patches = plan_patches(model, plan)
        with torch.no_grad():
            reference = model.forward_plan(patches, plan)
        assert reference.abs().max() > 1.0  # sharp enough for the tolerance to mean something
        assert_logits_close(pool_logits(model, plan, patches), reference)
        assert_logits_close(token_logits(model, plan, patches), reference)
        assert_logits_close(token_logits(model, plan, patches, waves=True), reference)


def test_exactness_covers_text_no_position_and_masked_decoders():
    grid, extent = PatchGrid(2, 3), (1, 1, 0)
    text_model = sharp_model(extent, "pre", "ar", "clip-tiny")
    plan = case_plan(grid, extent, "outpaint")
    patches = plan_patches(text_model, plan)
    text = text_model.encode_text(tokenize(["a lake at dawn", "snowy peaks"]))
    with torch.no_grad():
        reference = text_model.forward_plan(patches, plan, text=text)
    assert_logits_close(pool_logits(text_model, plan, patches, text), reference)
    assert_logits_close(token_logits(text_model, plan, patches, text), reference)
    assert_logits_close(token_logits(text_model, plan, patches, text, waves=True), reference)
    no_position = sharp_model(extent, "none")
    with torch.no_grad():
        reference = no_position.forward_plan(patches, plan)
    assert_logits_close(token_logits(no_position, plan, patches, waves=True), reference)
    for model in (
        no_position,
        sharp_model(extent, "pre", "nar"),
        sharp_model(extent, "post", "pnar"),
    ):
        with torch.no_grad():
            reference = model.forward_plan(patches, plan)
        assert_logits_close(pool_logits(model, plan, patches), reference)


def test_the_last_token_of_a_patch_reaches_later_patches():
    """Input shifting never feeds a patch's last token as input of its own patch; both pool paths
    must still cache its K/V (the extra position / extra feed), or later patches would miss it."""
    model = sharp_model((1, 1, 0), "pre")
    plan = case_plan(GRIDS["2x3"], (1, 1, 0), "zeta")
    patches = plan_patches(model, plan)
    changed = patches.clone()
    changed[:, 0, -1] = (changed[:, 0, -1] + 1) % model.codebook_size
    for path in (pool_logits, token_logits):
        before, after = path(model, plan, patches), path(model, plan, changed)
        assert_logits_close(before[:, 0], after[:, 0])  # patch 0 never sees it
        assert (before[:, 1] - after[:, 1]).abs().amax() > 1e-2  # its neighbour does


def test_the_oracle_is_sensitive_to_context():
    model = sharp_model((1, 1, 0), "pre")
    plan = case_plan(GRIDS["2x3"], (1, 1, 0), "zeta")
    patches = plan_patches(model, plan)
    with torch.no_grad():
        full = model.forward_plan(patches, plan)
        alone = model.forward_plan(patches, plan.without_context())
    assert (full - alone)[:, 1:].abs().amax() > 1.0  # patches with context differ by O(1)
    assert_logits_close(full[:, 0], alone[:, 0])  # the first has none


@torch.no_grad()
def naive_greedy(
    model: Nuwa, plan: Plan, given: torch.Tensor | None, text=None, cfg_scale=1.0, batch=1
):
    """Reference sampler: recomputes every context from scratch (whole-prefix pass per token)."""
    layout = Layout(model.cfg.patch_size)
    canvas = torch.zeros(batch, *layout.token_shape(plan.grid), dtype=torch.long)
    if given is not None:
        canvas[:] = given
    texts = None
    if text is not None:
        texts = [
            model.encode_text(tokenize([text] * batch)),
            model.encode_text(tokenize([""] * batch)),
        ]
    for step in range(plan.num_given, plan.num_steps):
        prefix = plan.prefix(step + 1)
        patches = torch.stack([layout.patch_tokens(canvas, plan.grid, p) for p in prefix.order], 1)
        for i in range(model.tokens_per_patch):
            if texts is None:
                logits = model.forward_plan(patches, prefix)[:, step, i]
            else:
                cond, uncond = (
                    model.forward_plan(patches, prefix, text=t)[:, step, i] for t in texts
                )
                logits = uncond + cfg_scale * (cond - uncond)
            patches[:, step, i] = logits.argmax(-1)
        layout.write_patch(canvas, plan.grid, plan.order[step], patches[:, step])
    return canvas


@pytest.mark.parametrize("grid, order", [("2x3", "zeta"), ("2x2x3", "outpaint")])
def test_greedy_sample_equals_naive_reference_sampler(grid, order):
    model = sharp_model((1, 1, 1), "pre")
    grid = GRIDS[grid]
    plan = case_plan(grid, (1, 1, 1), order)
    layout = Layout(model.cfg.patch_size)
    given = torch.randint(0, model.codebook_size, (2, *layout.token_shape(grid)))
    finished = []
    tokens = sample(
        model,
        plan,
        given_tokens=given,
        options=SamplerOptions(temperature=0, progress=False),
        on_patch=lambda patch, toks: finished.append(patch),
    ).tokens
    assert torch.equal(tokens, naive_greedy(model, plan, given, batch=2))
    assert finished == list(plan.order[plan.num_given :])


def test_classifier_free_guidance_equals_naive_reference():
    model = sharp_model((1, 1, 0), "post", "ar", "clip-tiny")
    plan = case_plan(PatchGrid(1, 2), (1, 1, 0), "omega")
    for scale in (1.0, 3.0):
        greedy = SamplerOptions(temperature=0, cfg_scale=scale, progress=False)
        tokens = sample(model, plan, text="a red barn", options=greedy).tokens
        assert torch.equal(
            tokens, naive_greedy(model, plan, None, text="a red barn", cfg_scale=scale)
        )
