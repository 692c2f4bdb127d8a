"""Transformer blocks of the vision decoder: self-attention with ADC.Emb, cross-attention, GEGLU.

A block only projects and mixes; *which* keys a query sees (context patches from the pool, the
current patch, a whole plan at once) is decided by the caller through the ``attend`` callback, so
the per-patch, per-token and whole-plan paths share every weight and every line of block math.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from nuwa.model.config import NuwaConfig


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Scaled dot-product attention ``[B, H, Lq, D] x [B, H, Lk, D] -> [B, H, Lq, D]``.

    ``mask`` is boolean (True = visible) or additive float, broadcastable to ``[B, H, Lq, Lk]``.
    """
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def biased_mask(visible: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The attention mask for ``attend``: boolean ``visible`` alone, or ``bias`` with the keys a
    query may not see set to ``-inf`` (both broadcast to ``[B, H, Lq, Lk]``)."""
    return visible if bias is None else bias.masked_fill(~visible, float("-inf"))


@contextmanager
def attention_probe(
    record: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
) -> Iterator[list[tuple[int, int]]]:
    """Call ``record(q, k)`` before every self-attention of the model, training pass and
    incremental decoding alike; by default collect ``(queries, keys)`` lengths into the yielded
    list (cost tests). It wraps ``attend`` where the transformer and the decoder call it, so the
    sampling path itself checks nothing."""
    from nuwa.model import decoding, transformer

    calls: list[tuple[int, int]] = []
    record = record or (lambda q, k: calls.append((q.shape[-2], k.shape[-2])))
    originals = transformer.attend, decoding.attend

    def probed(q, k, v, mask=None):
        record(q, k)
        return attend(q, k, v, mask)

    transformer.attend = decoding.attend = probed
    try:
        yield calls
    finally:
        transformer.attend, decoding.attend = originals


def merge_heads(y: torch.Tensor) -> torch.Tensor:
    """``[B, H, L, D]`` -> ``[B, L, H * D]``.

    Head splits and merges use view/transpose rather than einops: the per-token sampling step does
    about 24 of them, and ``chunk`` + three ``rearrange`` took 15 us against 3 us for
    view/permute/unbind (batch 8, small preset, one thread).
    """
    b, h, l, d = y.shape
    return y.transpose(1, 2).reshape(b, l, h * d)


AttendFn = Callable[["SelfAttention", torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class SelfAttention(nn.Module):
    """Multi-head self-attention whose keys/values the caller assembles, plus this layer's ADC.Emb.

    ``pos_table`` (ADC.Emb, one per layer): ``[table_size, d_model]`` for ``"pre"`` (added to the
    keys of every token of a patch at the patch's offset) or ``[table_size, n_head]`` for
    ``"post"`` (added to the attention logits), absent for ``"none"``.
    """

    def __init__(self, cfg: NuwaConfig, layer: int, table_size: int) -> None:
        super().__init__()
        self.layer, self.n_head = layer, cfg.n_head
        self.head_dim = cfg.d_model // cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.pos_emb = cfg.pos_emb
        width = {"pre": cfg.d_model, "post": cfg.n_head}.get(cfg.pos_emb)
        self.pos_table = nn.Parameter(torch.empty(table_size, width)) if width else None
        self.q_norm = nn.RMSNorm(self.head_dim) if cfg.qk_norm else None
        self.k_norm = nn.RMSNorm(self.head_dim) if cfg.qk_norm else None

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x [B, L, d]`` -> ``q, k, v`` each ``[B, H, L, D]`` (no positional term yet)."""
        b, l, _ = x.shape
        qkv = self.qkv(x).view(b, l, 3, self.n_head, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        return q, k, v

    # ADC.Emb (paper §3.3): the one place that knows how each ``pos_emb`` variant enters attention.
    # Offsets are rows of the table (``nuwa.adc.Extent.offset_index``), one per key.

    def keys_at(self, k: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Keys ``k [..., H, L, D]`` with "pre" ADC.Emb added at each key's offset ``[..., L]``
        (broadcast over leading dimensions); unchanged for "post" and "none"."""
        if self.pos_emb != "pre":
            return k
        pos = self.pos_table[offsets].unflatten(-1, (self.n_head, self.head_dim))
        return k + pos.transpose(-3, -2)

    def logit_bias(self, offsets: torch.Tensor) -> torch.Tensor | None:
        """ "post" ADC.Emb of keys at ``offsets [..., L]`` as logit biases ``[..., H, 1, L]``, the
        same for every query; None for "pre" and "none"."""
        if self.pos_emb != "post":
            return None
        return self.pos_table[offsets].transpose(-1, -2).unsqueeze(-2)

    def pair_logit_bias(self, q: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor | None:
        """ADC.Emb as logit biases ``[B, H, Lq, Lk]`` when each query-key pair has its own offset
        ``offsets [Lq, Lk]`` (a whole plan at once). "pre" uses q . (k + e) = q . k + q . e, so
        it adds the scaled q . e; "post" adds the table entry; None for "none"."""
        if self.pos_emb == "none":
            return None
        if self.pos_emb == "post":
            return self.pos_table.t()[:, offsets]
        table = self.pos_table.view(-1, self.n_head, self.head_dim)
        q_e = torch.einsum("bhld,nhd->bhln", q, table) / math.sqrt(self.head_dim)
        return q_e.gather(3, offsets.expand(*q.shape[:2], -1, -1))

    def forward(self, x: torch.Tensor, attend_fn: AttendFn) -> torch.Tensor:
        """``x [B, L, d]`` -> ``[B, L, d]``; ``attend_fn(self, q, k, v) -> [B, H, L, D]``."""
        q, k, v = self.heads(x)
        return self.proj(merge_heads(attend_fn(self, q, k, v)))


class CrossAttention(nn.Module):
    """Attention from the visual tokens to the 77 projected text states (paper Eq. 9-10)."""

    def __init__(self, cfg: NuwaConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.q = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def text_kv(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Text states ``[B, 77, d]`` -> ``k, v`` each ``[B, H, 77, D]`` (once per text)."""
        b, s, _ = text.shape
        kv = self.kv(text).view(b, s, 2, self.n_head, -1)
        return kv.permute(2, 0, 3, 1, 4).unbind(0)

    def forward(
        self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], keep: torch.Tensor | None
    ) -> torch.Tensor:
        """``x [B, L, d]``, text ``kv``, ``keep [B, S]`` (False = padding; None = all kept)
        -> ``[B, L, d]``."""
        b, l, _ = x.shape
        q = self.q(x).view(b, l, self.n_head, -1).transpose(1, 2)
        mask = None if keep is None else keep[:, None, None, :]
        return self.proj(merge_heads(F.scaled_dot_product_attention(q, *kv, attn_mask=mask)))


class GEGLU(nn.Module):
    """Feed-forward ``d -> 2 * mult * d`` (value, gate) ``-> mult * d -> d`` with a GELU gate."""

    def __init__(self, cfg: NuwaConfig) -> None:
        super().__init__()
        inner = cfg.ff_mult * cfg.d_model
        self.up = nn.Linear(cfg.d_model, 2 * inner, bias=False)
        self.down = nn.Linear(inner, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.up(x).chunk(2, dim=-1)
        return self.down(value * F.gelu(gate))


class Block(nn.Module):
    """Pre-LN block: self-attention, cross-attention to text (text models only), GEGLU FFN."""

    def __init__(self, cfg: NuwaConfig, layer: int, table_size: int) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg, layer, table_size)
        self.ln_cross = nn.LayerNorm(cfg.d_model) if cfg.text else None
        self.cross = CrossAttention(cfg) if cfg.text else None
        self.ln_ff = nn.LayerNorm(cfg.d_model)
        self.ff = GEGLU(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        attend_fn: AttendFn,
        text_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        text_keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x [B, L, d]`` -> ``[B, L, d]``; ``text_kv`` from this layer's ``cross.text_kv``."""
        x = x + self.drop(self.attn(self.ln_attn(x), attend_fn))
        if self.cross is not None:
            x = x + self.drop(self.cross(self.ln_cross(x), text_kv, text_keep))
        return x + self.drop(self.ff(self.ln_ff(x)))
