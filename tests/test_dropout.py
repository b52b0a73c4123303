"""HalfDropout: nn.Dropout(0.5)'s values, with a mask of fair coins drawn 64 per generator call on the CPU."""

from __future__ import annotations

import pytest
import torch

from unetpp.models.dropout import HalfDropout, half_keep_scale

N = 1 << 20  # 2^20 coins: the kept fraction's sd is 0.0005


def test_each_element_is_kept_times_two_or_dropped_as_nn_dropout_does() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 8, 16, 16)
    y = HalfDropout().train()(x)
    kept = y != 0
    assert torch.equal(y[kept], 2 * x[kept])  # an exact scaling, as nn.Dropout's 1 / (1 - 0.5)
    assert 0.45 < kept.float().mean().item() < 0.55


def test_every_bit_of_every_word_is_a_fair_coin() -> None:
    # random_() alone leaves an int64's sign bit 0: bit 63 of each word would then always drop its element.
    torch.manual_seed(1)
    scale = half_keep_scale(torch.empty(N))
    assert set(scale.unique().tolist()) == {0.0, 2.0}
    per_bit = (scale.view(-1, 64) / 2).mean(dim=0)  # element k uses bit k % 64 of its word
    assert per_bit.min().item() > 0.48 and per_bit.max().item() < 0.52  # each bit: 16,384 coins, sd 0.004
    assert abs((scale / 2).mean().item() - 0.5) < 0.003


def test_the_global_seed_decides_the_mask_so_a_resumed_run_repeats_it() -> None:
    x = torch.ones(3, 5, 7, 11)  # 1155 elements: not a multiple of 64
    torch.manual_seed(7)
    first, second = HalfDropout()(x), HalfDropout()(x)
    torch.manual_seed(7)
    assert torch.equal(HalfDropout()(x), first) and not torch.equal(first, second)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_channels_last_and_dtype_are_kept_and_the_gradient_uses_the_same_mask(dtype: torch.dtype) -> None:
    torch.manual_seed(2)
    x = torch.randn(2, 6, 8, 8, dtype=dtype).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = HalfDropout()(x)
    assert y.dtype == dtype and y.is_contiguous(memory_format=torch.channels_last)
    y.sum().backward()
    assert torch.equal(x.grad, torch.where(y != 0, 2.0, 0.0).to(dtype))


def test_identity_in_eval_mode() -> None:
    x = torch.randn(2, 3, 4, 4)
    assert HalfDropout().eval()(x) is x


def test_bit_k_of_byte_i_of_the_drawn_words_decides_element_8i_plus_k() -> None:
    # Pinned: a training resumed under a later version must draw the same masks from the same generator state.
    like = torch.empty(2, 3, 10, 10, dtype=torch.bfloat16)  # 600 elements: 10 words, the last one partly used
    torch.manual_seed(3)
    words = torch.empty(10, dtype=torch.int64).random_(-(2**63), None)
    expected = torch.tensor([2.0 * ((byte >> k) & 1) for byte in words.view(torch.uint8).tolist() for k in range(8)])
    torch.manual_seed(3)
    assert torch.equal(half_keep_scale(like).flatten(), expected[:600].to(torch.bfloat16))
