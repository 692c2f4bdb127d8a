"""NUWA-Infinity's vision decoder: embeddings, blocks, and the two forward paths that share them.

* :meth:`Nuwa.forward_patch` runs one patch against its context in a :class:`~nuwa.ncp.ContextPool`
  and writes the patch's K/V into the pool: render-and-optimize training (paper Algorithm 1),
  pre-caching of given patches (Algorithm 2) and the NAR / P-NAR samplers.
* :meth:`Nuwa.forward_plan` is one teacher-forced pass over every patch of a plan with the
  training mask (``nuwa.model.masks``): the accumulated-loss ablation (Table 6c) and the oracle
  the pool path is tested against.

Token-by-token AR sampling lives in ``nuwa.model.decoding`` and uses the same blocks.

Sequences per patch: the AR decoder reads ``[BOS, t_0 .. t_{T-1}]`` (``T + 1`` positions;
position ``i`` predicts ``t_i``; the last position only supplies ``t_{T-1}``'s K/V to later
patches). NAR and P-NAR read the ``T`` tokens with some replaced by MASK and predict every position.
Token ``t_i`` gets the axial embedding of its own cell ``(i // P, i % P)`` inside the patch; nothing
encodes where the patch sits on the canvas, so the canvas can grow without bound.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nuwa.adc import Extent, Plan
from nuwa.layout import Layout
from nuwa.model.blocks import Block, attend, biased_mask
from nuwa.model.config import NuwaConfig
from nuwa.model.masks import plan_attention
from nuwa.ncp import ContextPool
from nuwa.schedule import sequential, wavefront
from nuwa.text import TEXT_PRESETS, TextEncoder

TextStates = tuple[torch.Tensor, torch.Tensor]
"""``(states [B, 77, d], keep [B, 77] bool)`` from :meth:`Nuwa.encode_text`."""


class Nuwa(nn.Module):
    """The vision decoder (plus its text tower when ``cfg.text`` is set)."""

    def __init__(self, cfg: NuwaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.extent = Extent(*cfg.extent)
        self.codebook_size = cfg.codebook_size
        self.bos_id, self.mask_id = cfg.codebook_size, cfg.codebook_size + 1
        self.tok_emb = nn.Embedding(cfg.codebook_size + 2, cfg.d_model)  # codes, BOS, MASK
        self.row_emb = nn.Parameter(torch.empty(cfg.patch_size, cfg.d_model))
        self.col_emb = nn.Parameter(torch.empty(cfg.patch_size, cfg.d_model))
        self.blocks = nn.ModuleList(
            Block(cfg, i, self.extent.table_size) for i in range(cfg.n_layer)
        )
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.text: TextEncoder | None = None
        self.text_proj: nn.Linear | None = None
        if cfg.text:
            if cfg.text not in TEXT_PRESETS:
                raise ValueError(
                    f"unknown text tower {cfg.text!r}; choose from {sorted(TEXT_PRESETS)}"
                )
            text_cfg = TEXT_PRESETS[cfg.text]()
            text_cfg.weights, text_cfg.weights_sha256 = cfg.text_weights, cfg.text_weights_sha256
            self.text = TextEncoder(text_cfg)
            self.text_proj = nn.Linear(text_cfg.width, cfg.d_model, bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2 init: N(0, 0.02); residual output projections scaled by 1/sqrt(2 n_layer)."""
        residual_std = 0.02 / math.sqrt(2 * self.cfg.n_layer)
        for name, p in self.named_parameters():
            if name.startswith("text.") or p.dim() < 2:
                continue  # the text tower keeps open_clip's init; LayerNorms keep ones/zeros
            std = residual_std if name.endswith(("proj.weight", "down.weight")) else 0.02
            nn.init.normal_(p, std=std)

    # ----------------------------------------------------------------- inputs and outputs

    @property
    def tokens_per_patch(self) -> int:
        return self.cfg.tokens_per_patch

    @property
    def layout(self) -> Layout:
        """Where this model's patches sit in a token grid (``nuwa.layout.Layout``)."""
        return Layout(self.cfg.patch_size)

    def axial(self) -> torch.Tensor:
        """In-patch axial embedding ``[T, d]`` (row + column, raster order)."""
        return (self.row_emb[:, None] + self.col_emb[None, :]).flatten(0, 1)

    def embed_patch(
        self, tokens: torch.Tensor, input_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``tokens [B, T]`` -> ``[B, T + 1, d]`` (AR: BOS first) or ``[B, T, d]`` (NAR, P-NAR).

        ``input_mask [B, T]`` (NAR / P-NAR only): True where the input is the MASK token.
        """
        if self.cfg.local_decoder == "ar":
            if input_mask is not None:
                raise ValueError("input_mask is for the nar / pnar local decoders only")
            bos = self.tok_emb.weight[self.bos_id].expand(tokens.shape[0], 1, -1)
            x = torch.cat([bos, self.tok_emb(tokens) + self.axial()], dim=1)
        else:
            ids = tokens if input_mask is None else tokens.masked_fill(input_mask, self.mask_id)
            x = self.tok_emb(ids) + self.axial()
        return self.drop(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[..., d]`` -> code logits ``[..., V]`` (head tied to the embedding)."""
        return F.linear(self.ln_f(x), self.tok_emb.weight[: self.codebook_size])

    def encode_text(self, ids: torch.Tensor) -> TextStates:
        """CLIP ids ``[B, 77]`` (``nuwa.text.tokenize``) -> ``(states [B, 77, d], keep [B, 77])``.

        With a trainable text tower and per-patch optimizer steps, call this again for every patch
        step (the graph of a previous call is stale after the optimizer updates the tower).
        """
        if self.text is None:
            raise ValueError("this model has no text tower (cfg.text is None); pass text=None")
        states, keep = self.text(ids)
        return self.text_proj(states), keep

    def text_kv(self, text: TextStates | None) -> list:
        """Per layer ``(k, v)`` of the cross-attention to ``text`` (``None`` without text)."""
        if (text is None) != (self.text is None):
            raise ValueError(
                "this model is text-conditioned: pass text"
                if text is None
                else "this model has no text tower: pass text=None"
            )
        if text is None:
            return [None] * self.cfg.n_layer
        return [blk.cross.text_kv(text[0]) for blk in self.blocks]

    # ----------------------------------------------------------------- plans and pools

    def effective_plan(self, plan: Plan) -> Plan:
        """``plan`` as run by this model: extent checked; no contexts if ``use_context`` is off."""
        if not self.extent.covers(plan.extent):
            raise ValueError(
                f"plan extent {plan.extent} exceeds the model's ADC.Emb extent {self.extent}"
            )
        return plan if self.cfg.use_context else plan.without_context()

    def new_pool(
        self,
        plan: Plan,
        batch_size: int,
        dtype: torch.dtype | None = None,
        *,
        waves: bool = False,
    ) -> ContextPool:
        """A preallocated :class:`ContextPool` for ``plan`` and ``batch_size`` (model's device).

        ``dtype`` defaults to the weights' (pass e.g. ``torch.bfloat16`` under autocast).
        ``waves``: run the plan on its wavefront schedule (``nuwa.schedule.wavefront``) rather
        than step by step.
        """
        p = self.tok_emb.weight
        plan = self.effective_plan(plan)
        return ContextPool(
            wavefront(plan) if waves else sequential(plan),
            n_layer=self.cfg.n_layer,
            batch=batch_size,
            n_head=self.cfg.n_head,
            head_dim=self.cfg.d_model // self.cfg.n_head,
            tokens_per_patch=self.tokens_per_patch,
            device=p.device,
            dtype=dtype or p.dtype,
        )

    def key_offsets(
        self, plan: Plan, step: int, own: int, slots: int | None = None
    ) -> torch.Tensor:
        """ADC.Emb row of every key step ``step`` attends to, ``[slots * T + own]``: each context
        patch's row once per token, left-padded with the centre row to ``slots`` patches
        (padding is masked out by the caller; default: no padding), then ``own`` keys of the
        current patch at the centre."""
        centre = self.extent.centre
        rows = [self.extent.offset_index(*d) for d in plan.deltas[step]]
        rows = [centre] * ((slots or len(rows)) - len(rows)) + rows
        per_key = [row for row in rows for _ in range(self.tokens_per_patch)] + [centre] * own
        return torch.tensor(per_key, dtype=torch.long, device=self.tok_emb.weight.device)

    # ----------------------------------------------------------------- forward paths

    def forward_patch(
        self,
        tokens: torch.Tensor,
        pool: ContextPool,
        step: int,
        *,
        text: TextStates | None = None,
        input_mask: torch.Tensor | None = None,
        write: bool = True,
    ) -> torch.Tensor:
        """One patch of ``pool.plan`` (step ``step``) against its context in ``pool``.

        Args:
            tokens: ``[B, T]`` the patch's codes (teacher forcing; raster inside the patch).
            pool: the plan's pool (:meth:`~nuwa.ncp.ContextPool.begin_step`).
            text: ``encode_text`` output for text models.
            input_mask: ``[B, T]`` NAR / P-NAR only: positions fed as MASK.
            write: store this patch's K/V in the pool and end the step (NCP.Add + Remove). A call
                with ``write=False`` leaves the step open (e.g. the masked NAR loss pass), so a
                later call for the same step can write the cache of the unmasked tokens.

        Returns logits ``[B, T, V]``: position ``i`` predicts token ``i``.
        """
        if write and input_mask is not None and bool(input_mask.any()):
            raise ValueError("a masked input cannot be written as the patch's cache")
        wave = pool.begin_step(step)
        ar = self.cfg.local_decoder == "ar"
        x = self.embed_patch(tokens, input_mask)
        seq, t = x.shape[1], self.tokens_per_patch
        key_offsets = self.key_offsets(pool.plan, step, own=seq)
        visible = torch.ones(seq, pool.num_context * t + seq, dtype=torch.bool, device=x.device)
        if ar:
            visible[:, pool.num_context * t :] = torch.ones(seq, seq, dtype=torch.bool).tril()

        def attend_fn(attn, q, k, v):
            if write:
                own = slice(1, None) if ar else slice(None)  # AR: BOS stays private
                pool.write(attn.layer, k[:, :, own], v[:, :, own])
            k_ctx, v_ctx = pool.gather(attn.layer)
            keys = attn.keys_at(torch.cat([k_ctx, k], 2), key_offsets)
            mask = biased_mask(visible, attn.logit_bias(key_offsets))
            return attend(q, keys, torch.cat([v_ctx, v], 2), mask)

        for blk, kv in zip(self.blocks, self.text_kv(text), strict=True):
            x = blk(x, attend_fn, kv, None if text is None else text[1])
        if write:
            pool.end(wave)
        return self.logits(x[:, :t])

    def forward_plan(
        self, patches: torch.Tensor, plan: Plan, *, text: TextStates | None = None
    ) -> torch.Tensor:
        """Teacher-forced pass over every patch of ``plan`` at once, with the training mask.

        Args:
            patches: ``[B, N, T]`` codes of every step's patch, in plan step order
                (``Layout.patchify(grid)[:, plan.order]``).
        Returns logits ``[B, N, T, V]`` in step order. For NAR / P-NAR models this is the
        unmasked pass (the one that fills caches), not a training loss. Memory is O((N (T+1))^2)
        per head: meant for small grids (the ablation and the exactness tests).
        """
        plan = self.effective_plan(plan)
        b, n, t = patches.shape
        ar = self.cfg.local_decoder == "ar"
        x = self.embed_patch(patches.reshape(b * n, t))
        seq = x.shape[1]
        x = x.reshape(b, n * seq, -1)
        visible, offset = plan_attention(plan, self.extent, seq, causal=ar, first_real=int(ar))
        visible, offset = visible.to(x.device), offset.to(x.device)

        def attend_fn(attn, q, k, v):
            return attend(q, k, v, biased_mask(visible, attn.pair_logit_bias(q, offset)))

        for blk, kv in zip(self.blocks, self.text_kv(text), strict=True):
            x = blk(x, attend_fn, kv, None if text is None else text[1])
        return self.logits(x.reshape(b, n, seq, -1)[:, :, :t])

    # ----------------------------------------------------------------- training loss

    def forward(
        self,
        tokens: torch.Tensor,
        pool: ContextPool,
        step: int,
        *,
        text_ids: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The render-and-optimize loss of one patch: :meth:`patch_loss` with the text encoded
        inside the call, so DDP / FSDP wrappers see every parameter used. ``text_ids [B, 77]``."""
        text = None if text_ids is None else self.encode_text(text_ids)
        return self.patch_loss(
            tokens, pool, step, text=text, label_smoothing=label_smoothing, generator=generator
        )

    def patch_loss(
        self,
        tokens: torch.Tensor,
        pool: ContextPool,
        step: int,
        *,
        text: TextStates | None = None,
        label_smoothing: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Render-and-optimize loss of one patch (paper Algorithm 1) for any local decoder.

        ``tokens [B, T]`` -> scalar cross-entropy; the patch's cache is written to ``pool`` and the
        step ended. AR: teacher-forced next-token loss. NAR: every token fed as MASK, loss on all.
        P-NAR: a cosine-scheduled random fraction fed as MASK, loss on those; NAR / P-NAR then run a
        no-grad unmasked pass to cache the patch's real tokens, as sampling does.
        """
        if self.cfg.local_decoder == "ar":
            logits = self.forward_patch(tokens, pool, step, text=text)
            return F.cross_entropy(
                logits.flatten(0, 1), tokens.flatten(), label_smoothing=label_smoothing
            )
        masked = self.random_input_mask(tokens.shape, generator)
        logits = self.forward_patch(tokens, pool, step, text=text, input_mask=masked, write=False)
        loss = F.cross_entropy(logits[masked], tokens[masked], label_smoothing=label_smoothing)
        with torch.no_grad():
            self.forward_patch(tokens, pool, step, text=text)
        return loss

    def random_input_mask(
        self, shape: torch.Size, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Which inputs to feed as MASK, ``[B, T]`` bool.

        NAR: all. P-NAR: ``ceil(T cos(pi r / 2))`` random positions per row, ``r ~ U(0, 1)``
        (MaskGIT's cosine schedule; at least one).
        """
        b, t = shape
        device = self.tok_emb.weight.device
        if self.cfg.local_decoder == "nar":
            return torch.ones(b, t, dtype=torch.bool, device=device)
        r = torch.rand(b, 1, generator=generator, device=device)
        count = torch.ceil(t * torch.cos(math.pi / 2 * r)).clamp(1, t)
        rank = torch.rand(b, t, generator=generator, device=device).argsort(1).argsort(1)
        return rank < count


def count_parameters(cfg: NuwaConfig) -> dict[str, int]:
    """Parameter counts of a config, built on the meta device (no memory is allocated).

    Returns ``{"decoder": ..., "text_tower": ..., "total": ...}``; ``decoder`` is what the paper's
    809M / 202M count (no text encoder, no VQGAN; it includes the text projection into d).
    """
    with torch.device("meta"):
        model = Nuwa(cfg)
    text = sum(p.numel() for p in model.text.parameters()) if model.text is not None else 0
    total = sum(p.numel() for p in model.parameters())
    return {"decoder": total - text, "text_tower": text, "total": total}
