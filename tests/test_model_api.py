"""Model API: presets and parameter counts, losses of the three local decoders, samplers, text
tower, checkpoints, and clear errors on bad input."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from test_model_exactness import one_thread  # noqa: F401 (autouse fixture)

from nuwa.adc import Extent, make_plan
from nuwa.io import sha256_file
from nuwa.layout import Layout, PatchGrid
from nuwa.model import Nuwa, count_parameters, preset
from nuwa.model.checkpoint import CheckpointMismatchError, load_model, save_model
from nuwa.sampling import SamplerOptions, pick, sample
from nuwa.text import TEXT_PRESETS, TextConfig, TextEncoder, TextTruncationWarning, tokenize

pytestmark = pytest.mark.filterwarnings("ignore::nuwa.adc.ExtentWarning")  # toy grids

QUIET = SamplerOptions(progress=False)


def test_paper_preset_parameter_counts_match_the_paper_without_allocating():
    large, base = count_parameters(preset("paper-large")), count_parameters(preset("paper-base"))
    assert abs(large["decoder"] / 809e6 - 1) < 0.005  # paper Table 6b: 809M
    assert abs(base["decoder"] / 202e6 - 1) < 0.005  # 202M
    assert 60e6 < large["text_tower"] < 66e6  # CLIP ViT-B/32 text tower, excluded as in the paper
    small = count_parameters(preset("small"))
    assert small["total"] * 2 < 15e6  # bundle-able in fp16


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="pos_emb must be one of"):
        preset("tiny", pos_emb="rope")
    with pytest.raises(ValueError, match="unknown model preset"):
        preset("huge")
    model = Nuwa(preset("tiny", extent=(1, 1, 0)))
    with pytest.raises(ValueError, match="exceeds the model's ADC.Emb extent"):
        model.new_pool(make_plan(PatchGrid(3, 3), Extent(2, 2, 0)), 1)


@pytest.mark.parametrize("decoder", ["ar", "nar", "pnar"])
def test_patch_loss_trains_every_decoder_and_caches_without_gradient(decoder):
    model = Nuwa(preset("tiny", local_decoder=decoder))
    plan = make_plan(PatchGrid(2, 2), model.extent, "zeta")
    pool = model.new_pool(plan, 2)
    tokens = torch.randint(0, model.codebook_size, (2, plan.num_steps, model.tokens_per_patch))
    for step in range(plan.num_steps):
        loss = model.patch_loss(tokens[:, step], pool, step, label_smoothing=0.1)
        assert torch.isfinite(loss) and loss.requires_grad
        model.zero_grad()
        loss.backward()  # one optimizer step per patch would go here (render and optimize)
        assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert not pool.kv.requires_grad and pool.occupancy == 0
    # the caches patch_loss wrote are the unmasked teacher-forced ones, exactly what sampling uses
    with torch.no_grad():
        reference = model.forward_plan(tokens, plan)
        pool = model.new_pool(plan, 2)
        for step in range(plan.num_steps - 1):
            model.patch_loss(tokens[:, step], pool, step)
        last = model.forward_patch(tokens[:, -1], pool, plan.num_steps - 1)
    torch.testing.assert_close(last, reference[:, -1], atol=1e-5, rtol=1e-5)


def test_forward_is_the_patch_loss_with_text_encoded_inside():
    """``model(...)`` is what DDP / FSDP wrap: the patch loss, text tower included in the call."""
    model = Nuwa(preset("tiny", text="clip-tiny"))
    plan = make_plan(PatchGrid(1, 2), model.extent, "omega")
    tokens = torch.randint(0, model.codebook_size, (2, 2, model.tokens_per_patch))
    ids = tokenize(["a beach", "a forest"])
    pool_a, pool_b = model.new_pool(plan, 2), model.new_pool(plan, 2)
    for step in range(2):
        via_forward = model(tokens[:, step], pool_a, step, text_ids=ids)
        direct = model.patch_loss(tokens[:, step], pool_b, step, text=model.encode_text(ids))
        torch.testing.assert_close(via_forward, direct)
    via_forward.backward()
    assert model.text.tower.token_embedding.weight.grad is not None  # trainable from scratch


def test_random_input_mask_follows_the_decoder():
    shape = torch.Size((64, 16))
    assert Nuwa(preset("tiny", local_decoder="nar")).random_input_mask(shape).all()
    counts = Nuwa(preset("tiny", local_decoder="pnar")).random_input_mask(shape).sum(1)
    assert counts.min() >= 1 and counts.max() <= 16 and counts.float().std() > 0


def test_no_cache_ablation_sees_no_context():
    model = Nuwa(preset("tiny", use_context=False)).eval()
    plan = make_plan(PatchGrid(2, 3), model.extent, "omega")
    assert model.new_pool(plan, 1).capacity == 1
    patches = torch.randint(0, model.codebook_size, (1, plan.num_steps, model.tokens_per_patch))
    with torch.no_grad():
        alone = torch.cat(
            [
                model.forward_plan(patches[:, s : s + 1], make_plan(PatchGrid(1, 1), model.extent))
                for s in range(6)
            ],
            1,
        )
        torch.testing.assert_close(model.forward_plan(patches, plan), alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("decoder", ["ar", "nar", "pnar"])
def test_sampling_outpaints_around_given_tokens(decoder):
    model = Nuwa(preset("tiny", local_decoder=decoder)).eval()
    grid = PatchGrid(2, 3)
    plan = make_plan(grid, model.extent, "omega", given=grid.region(cols=slice(0, 1)))
    layout = Layout(model.cfg.patch_size)
    given = torch.randint(0, model.codebook_size, (2, *layout.token_shape(grid)))
    seen = {}
    drawn = dict(top_k=8, top_p=0.9, pnar_steps=4, progress=False)
    kwargs = dict(given_tokens=given, options=SamplerOptions(seed=3, **drawn))
    out = sample(model, plan, on_patch=lambda p, toks: seen.__setitem__(p, toks), **kwargs).tokens
    assert out.shape == given.shape and out.min() >= 0 and out.max() < model.codebook_size
    assert torch.equal(out[..., :4], given[..., :4])  # the given column is kept
    assert sorted(seen) == sorted(plan.order[2:])
    for patch, toks in seen.items():
        assert torch.equal(layout.patch_tokens(out, grid, patch), toks)
    again = sample(model, plan, **kwargs).tokens
    other = sample(model, plan, given_tokens=given, options=SamplerOptions(seed=4, **drawn)).tokens
    assert torch.equal(out, again) and not torch.equal(out, other)
    with pytest.raises(ValueError, match="given_tokens"):
        sample(model, plan, options=QUIET)


def test_sampling_a_text_model_needs_text_and_batches_prompts():
    model = Nuwa(preset("tiny", text="clip-tiny")).eval()
    with pytest.raises(ValueError, match="pass text"):
        sample(model, PatchGrid(1, 1), options=QUIET)
    guided = SamplerOptions(cfg_scale=2.0, progress=False)
    out = sample(model, PatchGrid(1, 2), text=["a", "b", "c"], options=guided).tokens
    assert out.shape == (3, 1, 4, 8)
    with pytest.raises(ValueError, match="not text-conditioned"):
        sample(Nuwa(preset("tiny")).eval(), PatchGrid(1, 1), text="x", options=QUIET)


def uniforms(n: int) -> torch.Tensor:
    """``n`` float64 draws in [0, 1), as a patch's stream gives them."""
    return torch.rand(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize(
    "top_k,top_p,support",
    [(None, None, [0, 1, 2, 3]), (2, None, [0, 1]), (None, 0.7, [0, 1]), (None, 0.5, [0]),
     (3, 0.7, [0, 1]), (1, None, [0])],
)  # fmt: skip
def test_pick_draws_in_proportion_from_the_filtered_support(top_k, top_p, support):
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])[[2, 0, 3, 1]]  # shuffled: filters must sort
    codes = torch.tensor([2, 0, 3, 1])  # rank of each entry
    logits = probs.log().expand(20_000, 4)
    drawn = pick(logits, temperature=1.0, top_k=top_k, top_p=top_p, uniform=uniforms(len(logits)))
    counts = torch.bincount(codes[drawn], minlength=4).float() / len(drawn)
    expected = torch.zeros(4)
    expected[support] = torch.tensor([0.5, 0.3, 0.15, 0.05])[support]
    expected /= expected.sum()
    assert torch.allclose(counts, expected, atol=0.015)  # 3+ standard errors at n=20,000
    assert (counts[len(support) :] == 0).all()  # filtered codes are never drawn


def test_pick_does_not_depend_on_the_float_type_or_the_order_top_k_returns(monkeypatch):
    """float32 and float64 draw from one random stream, and the k codes kept by top-k are put
    in id order, so only the probabilities decide the token, not which kernel found them."""
    logits = torch.randn(4_000, 64, generator=torch.Generator().manual_seed(1))

    def draws(x, **kw):
        return pick(x, temperature=1.0, top_p=None, uniform=uniforms(len(x)), **kw)

    torch.testing.assert_close(draws(logits, top_k=8), draws(logits.double(), top_k=8))
    torch.testing.assert_close(draws(logits, top_k=None), draws(logits.double(), top_k=None))
    topk = torch.Tensor.topk

    def reversed_topk(self, k, dim=-1, largest=True, sorted=True):
        values, ids = topk(self, k, dim=dim, largest=largest, sorted=sorted)
        return values.flip(dim), ids.flip(dim)  # the same set, another order

    expected = draws(logits, top_k=8)
    monkeypatch.setattr(torch.Tensor, "topk", reversed_topk)
    torch.testing.assert_close(draws(logits, top_k=8), expected)


def test_pick_is_greedy_at_temperature_zero_and_never_draws_zero_probability():
    logits = torch.tensor([[0.0, 3.0, float("-inf"), 1.0]]).expand(5_000, 4)
    assert (pick(logits, temperature=0, top_k=None, top_p=None, uniform=None) == 1).all()
    drawn = pick(logits, temperature=1.0, top_k=None, top_p=None, uniform=uniforms(len(logits)))
    assert not (drawn == 2).any() and set(drawn.tolist()) == {0, 1, 3}


def test_text_over_77_tokens_is_truncated_with_a_warning():
    with pytest.warns(TextTruncationWarning, match="only the first 77"):
        ids = tokenize("mountains " * 100)
    assert ids.shape == (1, 77) and ids[0, -1] == 49407  # ends with the end-of-text token
    ids = tokenize(["a small lake"])
    assert (ids != 0).sum() == 5


def test_pretrained_text_weights_are_checked_and_frozen(tmp_path):
    cfg = TEXT_PRESETS["clip-tiny"]()
    source = TextEncoder(cfg)
    state = {k: v.clone() for k, v in source.tower.state_dict().items() if k != "attn_mask"}
    state["visual.conv1.weight"] = torch.zeros(1)  # a full CLIP file also holds the image tower
    path = tmp_path / "clip.safetensors"
    save_file(state, str(path))
    digest = sha256_file(path)
    frozen = TextEncoder(
        TextConfig(width=32, layers=1, heads=2, weights=str(path), weights_sha256=digest)
    )
    assert frozen.pretrained and not any(p.requires_grad for p in frozen.parameters())
    assert not frozen.train().training
    ids = tokenize(["a river"])
    torch.testing.assert_close(frozen(ids)[0], source.eval()(ids)[0])
    with pytest.raises(ValueError, match="expected 0000"):
        TextEncoder(
            TextConfig(width=32, layers=1, heads=2, weights=str(path), weights_sha256="0000")
        )
    with pytest.raises(FileNotFoundError, match="put a CLIP ViT-B-32"):
        TextEncoder(
            TextConfig(
                width=32, layers=1, heads=2, weights=str(tmp_path / "no"), weights_sha256=digest
            )
        )
    with pytest.raises(ValueError, match="not a CLIP text tower of width 64"):
        TextEncoder(
            TextConfig(width=64, layers=1, heads=2, weights=str(path), weights_sha256=digest)
        )


def test_checkpoint_roundtrip_and_mismatch_errors(tmp_path):
    model = Nuwa(preset("tiny", text="clip-tiny"))
    path = tmp_path / "model.safetensors"
    save_model(model, path, {"step": 7})
    loaded = load_model(path)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(
        CheckpointMismatchError, match="n_layer=2 in the checkpoint, 3 in the config"
    ):
        load_model(path, preset("tiny", text="clip-tiny", n_layer=3))
    load_model(path, preset("tiny", text="clip-tiny", dropout=0.1))  # runtime fields may differ
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(Exception, match="expected 'nuwa-model'"):
        load_model(tmp_path / "other.safetensors")


def test_init_from_adds_qk_norm_to_a_checkpoint_trained_without_it(tmp_path):
    from nuwa.model.checkpoint import init_from

    old = Nuwa(preset("tiny", qk_norm=False))
    save_model(old, tmp_path / "old.safetensors", {"preset": "tiny"})
    new = init_from(tmp_path / "old.safetensors", preset("tiny", qk_norm=True))
    state, before = new.state_dict(), old.state_dict()
    gains = [k for k in state if k.endswith(("q_norm.weight", "k_norm.weight"))]
    assert gains and all(torch.equal(state[k], torch.ones_like(state[k])) for k in gains)
    assert all(torch.equal(state[k], before[k]) for k in before)
