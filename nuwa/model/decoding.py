"""Token-by-token AR decoding of one patch at a time through the Nearby Context Pool.

Per layer, an attention window ``[B, H, N_max * T + T + 1, D]`` is allocated once per canvas. At
the start of a patch its context K (plus the ADC.Emb "pre" term) and V are copied from the pool
into the window's front, once per patch; each fed token then writes its own K (plus the current
patch's "pre" term, looked up once per canvas) and V in place behind them, and its raw K/V into its
pool slot, and attends to the window's filled prefix. So a token step is a fixed number of kernel
calls whatever the context size or canvas size, and nothing is concatenated.
"""

from __future__ import annotations

import torch

from nuwa.model.blocks import attend
from nuwa.model.transformer import Nuwa, TextStates
from nuwa.ncp import ContextPool


class PatchDecoder:
    """Feeds one AR patch at a time: ``begin(step)``, ``feed(0..T)``, ``end()``.

    Position ``0`` feeds BOS and position ``i`` feeds token ``i - 1``; the logits of position
    ``i < T`` predict token ``i``. Feeding position ``T`` (the last token) stores its K/V and its
    logits are unused; ``end`` then closes the step in the pool. K/V go into the attention window
    and the pool slot in place, so run it without gradients (``sample`` uses inference mode).
    """

    def __init__(self, model: Nuwa, pool: ContextPool, text: TextStates | None = None) -> None:
        if model.cfg.local_decoder != "ar":
            raise ValueError("PatchDecoder is for the AR local decoder")
        cfg, self.model, self.pool = model.cfg, model, pool
        self.t = model.tokens_per_patch
        batch, head_dim = pool.kv.shape[3], cfg.d_model // cfg.n_head
        width = pool.plan.max_context * self.t + self.t + 1
        self.window = pool.kv.new_empty(cfg.n_layer, 2, batch, cfg.n_head, width, head_dim)
        self.keys, self.values = self.window.unbind(1)  # per layer [B, H, width, D] views
        self.own: list[tuple[torch.Tensor, torch.Tensor]] = []  # the step's pool slot per layer
        self.bias = pool.kv.new_empty(
            cfg.n_layer, cfg.n_head, 1, width if cfg.pos_emb == "post" else 0
        )
        self.text_kv, self.text_keep = self._text(model, text)
        self.axial = model.axial()
        self.bos = model.tok_emb.weight[model.bos_id].expand(batch, 1, -1)
        self.centre = torch.tensor([model.extent.centre], device=pool.kv.device)
        self.centre_k = [  # the current patch's "pre" ADC.Emb per layer, [H, 1, D]
            blk.attn.key_pos(self.centre) if cfg.pos_emb == "pre" else None for blk in model.blocks
        ]
        self.step, self.front = -1, 0

    @property
    def nbytes(self) -> int:
        """Bytes of the attention windows (the pool's K/V are ``pool.kv.nbytes`` on top)."""
        return self.window.nbytes + self.bias.nbytes

    @staticmethod
    def _text(model: Nuwa, text: TextStates | None) -> tuple[list, torch.Tensor | None]:
        """Per-layer text K/V, cut to the text positions some row keeps (padding of every row
        adds nothing to attention, and a 77-key CLIP context is mostly padding), and the keep
        mask, ``None`` once every remaining position is kept by every row."""
        kv = model.text_kv(text)
        if text is None:
            return kv, None
        keep = text[1]
        used = keep.any(0).nonzero()[:, 0]
        kv = [(k.index_select(2, used), v.index_select(2, used)) for k, v in kv]
        keep = keep.index_select(1, used)
        return kv, None if bool(keep.all()) else keep

    def begin(self, step: int) -> None:
        """Open ``step`` in the pool and load its context into every layer's window."""
        self.pool.begin(step)
        self.step, self.front = step, self.pool.num_context * self.t
        offsets = self.model.context_offsets(self.pool.plan, step)
        for layer, blk in enumerate(self.model.blocks):
            attn = blk.attn
            k_ctx, v_ctx = self.pool.gather(layer)
            if attn.pos_emb == "pre":
                k_ctx = k_ctx + attn.key_pos(offsets).repeat_interleave(self.t, dim=1)
            elif attn.pos_emb == "post":
                bias = self.bias[layer, :, 0]
                bias[:, : self.front] = attn.logit_pos(offsets).repeat_interleave(self.t, 1)
                bias[:, self.front :] = attn.logit_pos(self.centre)
            self.keys[layer][:, :, : self.front] = k_ctx
            self.values[layer][:, :, : self.front] = v_ctx
        self.own = [self.pool.slot_view(layer) for layer in range(len(self.model.blocks))]

    def feed(self, position: int, token: torch.Tensor | None) -> torch.Tensor:
        """Feed BOS (``position 0``, ``token None``) or ``token [B]`` at ``position 1..T``.

        Returns logits ``[B, V]`` for token ``position`` (meaningless at ``position == T``).
        """
        model = self.model
        if position == 0:
            x = self.bos
        else:
            x = (model.tok_emb(token) + self.axial[position - 1])[:, None]
        end = self.front + position + 1

        def attend_fn(attn, q, k, v):
            layer = attn.layer
            keys, values = self.keys[layer][:, :, :end], self.values[layer][:, :, :end]
            if position > 0:  # NCP.Add, one token at a time (BOS stays private)
                own_k, own_v = self.own[layer]
                own_k[:, :, position - 1 : position] = k
                own_v[:, :, position - 1 : position] = v
            if attn.pos_emb == "pre":
                torch.add(k, self.centre_k[layer], out=keys[:, :, -1:])
            else:
                keys[:, :, -1:] = k
            values[:, :, -1:] = v
            mask = self.bias[layer, :, :, :end] if attn.pos_emb == "post" else None
            return attend(q, keys, values, mask)

        for blk, kv in zip(model.blocks, self.text_kv, strict=True):
            x = blk(x, attend_fn, kv, self.text_keep)
        return model.logits(x[:, 0])

    def end(self) -> None:
        """Close the step: the patch's K/V are already in its pool slot (NCP.Add); Remove."""
        self.pool.end(self.step)
        self.step = -1
