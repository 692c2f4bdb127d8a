"""Model configuration, named presets, and parameter counts computed without allocating weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

POS_EMBS = ("pre", "post", "none")
LOCAL_DECODERS = ("ar", "nar", "pnar")


@dataclass
class NuwaConfig:
    """The vision decoder (paper §2.3) and its NCP / ADC settings.

    Attributes:
        n_layer, d_model, n_head: transformer size (head dim = d_model / n_head).
        codebook_size: number of visual codes; must equal the tokenizer's codebook (paper 16384).
        patch_size: tokens per patch side (paper 16: 256 tokens per patch).
        extent: NCP extent ``(e_h, e_w, e_f)``; also sizes the ADC.Emb tables. Plans may use a
            smaller extent than the model's, never a larger one.
        pos_emb: ADC.Emb feed position. ``"pre"`` (paper default): a learned per-layer table of
            ``(e_f+1)(2e_h+1)(2e_w+1)`` d-vectors, one per context offset, added to the keys at
            attention time. A per-layer d-vector table (not HORIZON's per-head scalar) is the
            paper's e_n in R^{(1+N^c) x d}. ``"post"``: a per-head scalar bias on the attention
            logits per offset (Table 4's ablation). ``"none"``: no patch-level position at all.
        local_decoder: ``"ar"`` (default; token by token), ``"nar"`` (all tokens of a patch in one
            pass from mask tokens) or ``"pnar"`` (mask-predict, cosine schedule); paper Tables
            3b and 6a.
        use_context: False gives the "w/o caches" ablation (paper Table 5): every patch sees no
            context, in training and in sampling alike.
        text: name of a text tower preset in ``nuwa.text.TEXT_PRESETS`` for text-conditioned
            models (T2I, IO, T2V), or None (UIG, IA); adds cross-attention to every block.
        text_weights, text_weights_sha256: optional local pretrained CLIP weights (then frozen).
        dropout: residual dropout (paper silent; HORIZON uses 0.1). 0 keeps tests deterministic.
        ff_mult: GEGLU inner width multiple. GEGLU x4 is what makes the paper's 809M / 202M add up
            (paper Table 1: 24 x 20 x 1280² + head; 16 x 20 x 768² + head); a plain 2-matrix
            FFN would give ~650M.
        qk_norm: RMS-normalise each head's queries and keys (learned gain) before the dot
            product, so attention logits stay bounded. The paper is silent; without it the
            bundled CPU model's layer-0 key projection grew to spectral norm 145 (queries 3.2)
            and its logits to ~27,000, which made float32 sampling depend on the thread count.
            The "pre" ADC.Emb is added to the normalised keys.

    Choices the paper leaves open and we fixed (no option, to keep the model small to read): pre-LN,
    no bias in linear layers, no LayerScale, the output head tied to the token embedding (one
    V x d matrix, which lands the presets on the paper's counts), BOS + learned axial in-patch
    embedding (row + column), raster scan inside a patch, no canvas-level absolute position.
    """

    n_layer: int = 24
    d_model: int = 1280
    n_head: int = 20
    codebook_size: int = 16384
    patch_size: int = 16
    extent: tuple[int, int, int] = (2, 2, 0)
    pos_emb: str = "pre"
    local_decoder: str = "ar"
    use_context: bool = True
    text: str | None = "clip-vit-b-32"
    text_weights: str | None = None
    text_weights_sha256: str | None = None
    dropout: float = 0.0
    ff_mult: int = 4
    qk_norm: bool = True

    def __post_init__(self) -> None:
        self.extent = tuple(int(e) for e in self.extent)
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        if self.pos_emb not in POS_EMBS:
            raise ValueError(f"pos_emb must be one of {POS_EMBS}, got {self.pos_emb!r}")
        if self.local_decoder not in LOCAL_DECODERS:
            raise ValueError(
                f"local_decoder must be one of {LOCAL_DECODERS}, got {self.local_decoder!r}"
            )
        if len(self.extent) != 3 or min(self.extent) < 0:
            raise ValueError(
                f"extent must be three non-negative ints (e_h, e_w, e_f), got {self.extent}"
            )

    @property
    def tokens_per_patch(self) -> int:
        return self.patch_size * self.patch_size

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for checkpoints and results files)."""
        return {**asdict(self), "extent": list(self.extent)}


PRESETS: dict[str, NuwaConfig] = {
    # Paper Table 1 / 6b. Text-conditioned like the T2I/IO model; UIG/IA models set text=None.
    "paper-large": NuwaConfig(n_layer=24, d_model=1280, n_head=20),
    "paper-base": NuwaConfig(n_layer=16, d_model=768, n_head=12),
    # CPU presets: 8x8-token patches so a few-patch canvas trains in minutes on 2 cores, a
    # 1024-code tokenizer, and a narrow CLIP-architecture text tower (its 49408-token embedding
    # dominates the size). "small" is the bundled model (~6.5M params, ~13 MB in fp16).
    "small": NuwaConfig(
        n_layer=4, d_model=192, n_head=3, codebook_size=1024, patch_size=8, text="clip-small"
    ),
    # Unit tests only: 4x4-token patches, tiny widths, no text unless a test adds it.
    "tiny": NuwaConfig(
        n_layer=2, d_model=32, n_head=2, codebook_size=64, patch_size=4, extent=(1, 1, 0), text=None
    ),
}


def preset(name: str, **overrides) -> NuwaConfig:
    """A copy of a named preset with field overrides, e.g. ``preset("tiny", pos_emb="post")``."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)
