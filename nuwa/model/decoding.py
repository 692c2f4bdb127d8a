"""Token-by-token AR decoding through the Nearby Context Pool, one wave of patches at a time.

A wave is one patch (sequential sampling) or several whose contexts are complete (wavefront
sampling, ``nuwa.schedule``); its ``W`` patches run as one batch of ``W * B`` rows, patch-major.
Per layer, an attention window ``[W_max * B, H, N_max * T + T + 1, D]`` is allocated once per
canvas. At the start of a wave each patch's context K (plus the ADC.Emb "pre" term) and V are
copied from the pool into the window's front, left-padded to the wave's largest context ``N``
(padding is masked out; a wave of one patch has none); each fed token then writes its own K (plus
the current patch's "pre" term) and V in place behind them, at the same column for every row, and
attends to the window's filled prefix. The raw K/V of the wave's tokens go to the pool when the
wave ends. So a token step is a fixed number of kernel calls whatever the context or canvas size.
"""

from __future__ import annotations

import torch

from nuwa.model.blocks import attend
from nuwa.model.transformer import Nuwa, TextStates
from nuwa.ncp import ContextPool


class PatchDecoder:
    """Feeds one AR wave at a time: ``begin(wave)``, ``feed(0..T)``, ``end()``.

    Position ``0`` feeds BOS and position ``i`` feeds token ``i - 1``; the logits of position
    ``i < T`` predict token ``i``. Feeding position ``T`` (the last token) computes its K/V and its
    logits are unused; ``end`` then stores the wave's K/V in the pool and closes the wave. Run it
    without gradients (``sample`` uses inference mode): K/V are written in place.
    """

    def __init__(self, model: Nuwa, pool: ContextPool, text: TextStates | None = None) -> None:
        if model.cfg.local_decoder != "ar":
            raise ValueError("PatchDecoder is for the AR local decoder")
        cfg, self.model, self.pool = model.cfg, model, pool
        self.t = model.tokens_per_patch
        rows = pool.schedule.max_wave * pool.batch
        head_dim = cfg.d_model // cfg.n_head
        width = pool.plan.max_context * self.t + self.t + 1
        self.window = pool.kv.new_empty(cfg.n_layer, 2, rows, cfg.n_head, width, head_dim)
        self.own = pool.kv.new_empty(cfg.n_layer, 2, rows, cfg.n_head, self.t, head_dim)
        self.visible = torch.ones(rows, 1, 1, width, dtype=torch.bool, device=pool.kv.device)
        centre = torch.tensor([model.extent.centre], device=pool.kv.device)
        post = model.blocks[0].attn.logit_bias(centre) is not None  # ADC.Emb as logit biases
        self.bias = pool.kv.new_empty(cfg.n_layer, rows, cfg.n_head, 1, width) if post else None
        self.text = text
        self.axial = model.axial()
        self.bos = model.tok_emb.weight[model.bos_id]
        self.centre_k = [  # what the current patch's key gains per layer, [H, 1, D]
            blk.attn.keys_at(self.own.new_zeros(cfg.n_head, 1, head_dim), centre)
            for blk in model.blocks
        ]
        self.masks: list[torch.Tensor | None] = [None] * cfg.n_layer
        self._text_by_size: dict[int, tuple[list, torch.Tensor | None]] = {}
        self.rows, self.front, self.padded = 0, 0, False
        self.text_kv, self.text_keep = self._text(1)

    @property
    def nbytes(self) -> int:
        """Bytes of the attention windows (the pool's K/V are ``pool.kv.nbytes`` on top)."""
        bias = 0 if self.bias is None else self.bias.nbytes
        return self.window.nbytes + self.own.nbytes + bias + self.visible.nbytes

    def _text(self, patches: int) -> tuple[list, torch.Tensor | None]:
        """Per-layer text K/V for a wave of ``patches`` patches, cut to the text positions some
        row keeps (padding of every row adds nothing to attention, and a 77-key CLIP context is
        mostly padding), and the keep mask, ``None`` once every remaining position is kept."""
        if patches not in self._text_by_size:
            kv = self.model.text_kv(self.text)
            if self.text is None:
                self._text_by_size[patches] = kv, None
            else:
                keep = self.text[1]
                used = keep.any(0).nonzero()[:, 0]
                kv = [
                    tuple(x.index_select(2, used).repeat(patches, 1, 1, 1) for x in pair)
                    for pair in kv
                ]
                keep = keep.index_select(1, used)
                keep = None if bool(keep.all()) else keep.repeat(patches, 1)
                self._text_by_size[patches] = kv, keep
        return self._text_by_size[patches]

    def begin(self, wave: int) -> None:
        """Open ``wave`` in the pool and load each patch's context into every layer's window."""
        pool, t = self.pool, self.t
        pool.begin(wave)
        steps = pool.steps
        patches, n = len(steps), pool.num_context
        self.rows, self.front = patches * pool.batch, n * t
        self.text_kv, self.text_keep = self._text(patches)
        offsets = torch.stack(  # [W, 1, L]: each patch's key rows, the same for its B rows
            [self.model.key_offsets(pool.plan, s, own=t + 1, slots=n) for s in steps]
        )[:, None]
        self.padded = pool.context_valid is not None
        if self.padded:
            valid = pool.context_valid.repeat_interleave(t, 1).repeat_interleave(pool.batch, 0)
            self.visible[: self.rows, 0, 0, : self.front] = valid
            self.visible[: self.rows, 0, 0, self.front :] = True
        visible = self.visible[: self.rows] if self.padded else None
        for layer, blk in enumerate(self.model.blocks):
            attn = blk.attn
            k_ctx, v_ctx = pool.gather(layer)
            k_ctx = attn.keys_at(k_ctx.unflatten(0, (patches, -1)), offsets[..., : self.front])
            self.window[layer, 0, : self.rows, :, : self.front] = k_ctx.flatten(0, 1)
            self.window[layer, 1, : self.rows, :, : self.front] = v_ctx
            bias = attn.logit_bias(offsets)  # [W, 1, H, 1, L] or None
            if bias is None:
                self.masks[layer] = visible
                continue
            rows = self.bias[layer, : self.rows, ..., : bias.shape[-1]]
            rows[:] = bias.expand(-1, pool.batch, -1, -1, -1).flatten(0, 1)
            if self.padded:
                rows.masked_fill_(~visible[..., : bias.shape[-1]], float("-inf"))
            self.masks[layer] = rows

    def feed(self, position: int, token: torch.Tensor | None) -> torch.Tensor:
        """Feed BOS (``position 0``, ``token None``) or ``token [W * B]`` at ``position 1..T``.

        Returns logits ``[W * B, V]`` for token ``position`` (meaningless at ``position == T``).
        """
        model, rows = self.model, self.rows
        if position == 0:
            x = self.bos.expand(rows, 1, -1)
        else:
            x = (model.tok_emb(token) + self.axial[position - 1])[:, None]
        end = self.front + position + 1

        def attend_fn(attn, q, k, v):
            layer = attn.layer
            keys = self.window[layer, 0, :rows, :, :end]
            values = self.window[layer, 1, :rows, :, :end]
            if position > 0:  # the token's raw K/V, for the pool (BOS stays private)
                self.own[layer, 0, :rows, :, position - 1 : position] = k
                self.own[layer, 1, :rows, :, position - 1 : position] = v
            torch.add(k, self.centre_k[layer], out=keys[:, :, -1:])
            values[:, :, -1:] = v
            mask = self.masks[layer]
            return attend(q, keys, values, None if mask is None else mask[..., :end])

        for blk, kv in zip(model.blocks, self.text_kv, strict=True):
            x = blk(x, attend_fn, kv, self.text_keep)
        return model.logits(x[:, 0])

    def end(self) -> None:
        """Close the wave: its tokens' K/V go into their pool slots (NCP.Add); Remove."""
        for layer in range(len(self.model.blocks)):
            self.pool.write(layer, self.own[layer, 0, : self.rows], self.own[layer, 1, : self.rows])
        self.pool.end(self.pool.wave)
