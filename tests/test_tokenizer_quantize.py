"""Vector quantizer: straight-through gradients, commitment beta, EMA updates, dead-code restart."""

from __future__ import annotations

import torch

from nuwa.tokenizer.quantize import VectorQuantizer


def quantizer(codebook_size=8, dim=4, **overrides) -> VectorQuantizer:
    kwargs = dict(
        dim=dim,
        codebook_size=codebook_size,
        codebook_dim=dim,
        use_cosine=False,
        ema_decay=0.5,
        beta=0.25,
        dead_code_threshold=0.0,
    )
    return VectorQuantizer(**(kwargs | overrides))


def test_straight_through_gradient_is_identity_and_beta_is_on_the_encoder_term():
    vq = quantizer().train()
    z = torch.randn(2, 4, 3, 5, requires_grad=True)
    out = vq(z)
    weights = torch.randn_like(out.z_q)
    (out.z_q * weights).sum().backward()
    assert torch.allclose(z.grad, weights)  # d z_q / d z = I

    z.grad = None
    out = vq(z)
    codes = out.z_q.detach()  # the forward value is the chosen code e
    out.commit_loss.backward()
    expected = 0.25 * 2 * (z - codes) / z.numel()  # beta * d/dz ||z - sg(e)||^2 (mean)
    assert torch.allclose(z.grad, expected, atol=1e-7)


def test_usage_and_perplexity_of_a_known_assignment():
    vq = quantizer(codebook_size=4).eval()
    codes = vq.vq.codebook.detach().clone()  # [4, 4]
    z = codes[[0, 0, 1, 1]].T.reshape(1, 4, 2, 2)  # two codes, each used twice
    out = vq(z)
    assert out.indices.flatten().tolist() == [0, 0, 1, 1]
    assert out.usage.item() == 0.5
    assert abs(out.perplexity.item() - 2.0) < 1e-5


def test_ema_update_moves_codes_to_the_data_only_in_training_mode():
    torch.manual_seed(0)
    vq = quantizer(codebook_size=2, dim=2, ema_decay=0.5)
    centres = torch.tensor([[5.0, 5.0], [-5.0, -5.0]])
    z = centres.repeat(8, 1).T.reshape(1, 2, 4, 4)  # 8 copies of each centre

    vq.eval()
    before = vq.vq.codebook.clone()
    vq(z)
    assert torch.equal(vq.vq.codebook, before)  # no EMA step outside training

    vq.train()
    for _ in range(30):
        vq(z)
    codebook = vq.vq.codebook.detach()
    distance = torch.cdist(centres, codebook).min(dim=1).values
    assert distance.max() < 0.1, codebook


def test_dead_codes_restart_from_the_batch_with_their_ema_state_reset():
    torch.manual_seed(0)
    vq = quantizer(codebook_size=16, dim=3, dead_code_threshold=0.5).train()
    z = torch.randn(1, 3, 4, 4) + 10.0  # far from every initial code
    vq(z)  # first call: initialises, then every unused code is below the threshold
    book = vq.vq._codebook
    batch = z.flatten(2)[0].T  # [16, 3]
    book.cluster_size.data[0, :4] = 0.0  # kill 4 codes explicitly
    vq(z)
    restarted = book.embed[0, :4]
    # every restarted code is one of this batch's vectors, and its count starts at the threshold
    assert torch.cdist(restarted, batch).min(dim=1).values.max() < 1e-5
    assert torch.all(book.cluster_size[0, :4] >= 0.5 - 1e-6)
