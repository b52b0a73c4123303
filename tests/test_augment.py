"""`unetpp train --augment`: the dihedral ops, colour changes and their seeding; the authors' L2 as Adam's decay."""

from __future__ import annotations

import math

import pytest
import torch

from unetpp.choices import AUGMENTS
from unetpp.models import build_model, l2_kernels
from unetpp.training.augment import COLOUR_RANGES, GREY_PROBABILITY, dihedral, epoch_augment, recolour
from unetpp.training.optimizer import AUTHORS_L2, make_optimizer

CPU = torch.device("cpu")


def test_the_eight_elements_are_the_dihedral_group_of_the_square() -> None:
    grid = torch.arange(16.0).view(1, 1, 4, 4)
    out = dihedral(grid.expand(8, 1, 4, 4), torch.arange(8))
    assert torch.equal(out[0], grid[0])  # element 0: identity
    assert torch.equal(out[1, 0], torch.rot90(grid[0, 0], 1))
    assert torch.equal(out[4, 0], grid[0, 0].flip(-1))
    assert len({tuple(o.flatten().tolist()) for o in out}) == 8  # eight different permutations of the pixels
    for o in out:
        assert sorted(o.flatten().tolist()) == list(range(16))


def test_the_mask_moves_with_the_image_and_colour_leaves_it_alone() -> None:
    gen = torch.Generator().manual_seed(0)
    masks = (torch.rand(12, 1, 16, 16, generator=gen) > 0.7).float()
    images = torch.cat([masks, torch.rand(12, 2, 16, 16, generator=gen)], dim=1)  # red channel = mask
    index = torch.arange(12)
    plan = epoch_augment("flips", 12, seed=3, epoch=1, device=CPU)
    x, y = plan.apply(index, images, masks)
    assert torch.equal(x[:, :1], y)  # the same permutation for both
    assert not torch.equal(y, masks)
    colour = epoch_augment("flips_colour", 12, seed=3, epoch=1, device=CPU)
    assert torch.equal(colour.element, plan.element)  # the same flips; colour is drawn after them
    x2, y2 = colour.apply(index, images, masks)
    assert torch.equal(y2, y) and y2.unique().tolist() == [0.0, 1.0]  # geometric ops only on the mask
    assert not torch.allclose(x2, x) and x2.min() >= 0 and x2.max() <= 1


def test_parameters_depend_on_seed_and_epoch_only() -> None:
    first = epoch_augment("flips_colour", 500, seed=0, epoch=4, device=CPU)
    torch.manual_seed(123)  # the global RNG (dropout's) plays no part
    torch.rand(10)
    again = epoch_augment("flips_colour", 500, seed=0, epoch=4, device=CPU)
    assert torch.equal(first.element, again.element) and torch.equal(first.colour, again.colour)
    assert not torch.equal(first.element, epoch_augment("flips", 500, seed=0, epoch=5, device=CPU).element)
    assert not torch.equal(first.element, epoch_augment("flips", 500, seed=1, epoch=4, device=CPU).element)
    assert epoch_augment("none", 500, seed=0, epoch=4, device=CPU) is None
    # Every element is used, and the factors stay in their documented ranges.
    assert set(first.element.tolist()) == set(range(8))
    for k, (low, high) in enumerate(COLOUR_RANGES.values()):
        column = first.colour[:, k]
        assert low <= float(column.min()) and float(column.max()) <= high and float(column.std()) > 0
    assert set(first.colour[:, 4].tolist()) == {0.0, 1.0}
    assert abs(float(first.colour[:, 4].mean()) - GREY_PROBABILITY) < 0.05


def test_help_text_states_the_ranges_the_code_uses() -> None:
    text = AUGMENTS["flips_colour"]
    for name, (low, high) in COLOUR_RANGES.items():
        if name == "hue":
            assert f"hue +-{high / (2 * math.pi):.2f} turn" in text
        else:
            assert f"{name} x{low:.1f}-{high:.1f}" in text
    assert f"1 image in {round(1 / GREY_PROBABILITY)}" in text


def test_colour_factors_do_what_they_say() -> None:
    gen = torch.Generator().manual_seed(1)
    image = 0.2 + 0.5 * torch.rand(1, 3, 8, 8, generator=gen)
    identity = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0]])
    torch.testing.assert_close(recolour(image, identity), image, atol=2e-6, rtol=0)  # via HSV and back
    brighter = recolour(image, torch.tensor([[1.2, 1.0, 1.0, 0.0, 0.0]]))
    torch.testing.assert_close(brighter, (image * 1.2).clamp(0, 1), atol=2e-6, rtol=0)
    grey = recolour(image, torch.tensor([[1.0, 1.0, 1.0, 0.0, 1.0]]))
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    desaturated = recolour(image, torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(desaturated, grey, atol=2e-6, rtol=0)
    # A third of a turn of hue sends red to green.
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 0.8
    green = recolour(red, torch.tensor([[1.0, 1.0, 1.0, 2 * math.pi / 3, 0.0]]))
    torch.testing.assert_close(green[0, :, 0, 0], torch.tensor([0.0, 0.8, 0.0]), atol=1e-5, rtol=0)


def _one_step(optimizer_for, penalty: bool, x: torch.Tensor, initial: dict) -> dict[str, torch.Tensor]:
    """The weights after one Adam step on mean(logits^2) (+ the Keras penalty), from `initial`."""
    model = build_model("unet", filters=(4, 8, 16, 32, 64), block="authors").eval()  # eval: no dropout draws
    model.load_state_dict(initial)
    optimizer = optimizer_for(model)
    loss = model(x).square().mean()
    if penalty:
        loss = loss + AUTHORS_L2 * sum(k.square().sum() for k in l2_kernels(model))
    loss.backward()
    optimizer.step()
    return model.state_dict()


def test_adam_weight_decay_is_the_gradient_of_the_keras_l2_penalty() -> None:
    """One step of make_optimizer equals Adam without decay on loss + 1e-4 * sum(w^2) over the L2 kernels."""
    torch.manual_seed(0)
    initial = build_model("unet", filters=(4, 8, 16, 32, 64), block="authors").state_dict()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    model = build_model("unet", filters=(4, 8, 16, 32, 64), block="authors")
    assert [g["weight_decay"] for g in make_optimizer(model, 3e-4).param_groups] == [2e-4, 0.0]

    decayed = _one_step(lambda m: make_optimizer(m, lr=3e-4), False, x, initial)
    keras = _one_step(lambda m: torch.optim.Adam(m.parameters(), lr=3e-4), True, x, initial)
    bare = _one_step(lambda m: torch.optim.Adam(m.parameters(), lr=3e-4), False, x, initial)
    for name in initial:
        torch.testing.assert_close(decayed[name], keras[name], rtol=1e-6, atol=1e-9, msg=name)
    # Without the penalty the step lands elsewhere, so the comparison above can fail.
    assert any(not torch.allclose(decayed[name], bare[name], rtol=1e-6, atol=1e-9) for name in initial)


def test_vgg_models_keep_the_reference_optimizer() -> None:
    model = build_model("unet", filters=(4, 8, 16, 32, 64))
    optimizer = make_optimizer(model, lr=3e-4)
    assert len(optimizer.param_groups) == 1 and optimizer.param_groups[0]["weight_decay"] == 0
    assert optimizer.param_groups[0]["params"] == list(model.parameters())


@pytest.mark.parametrize("kind", ["flips", "flips_colour"])
def test_augmentation_runs_on_the_batch_device(kind: str) -> None:
    device = torch.device("cuda") if torch.cuda.is_available() else CPU
    plan = epoch_augment(kind, 4, seed=0, epoch=1, device=device)
    x, y = plan.apply(torch.arange(4, device=device), torch.rand(4, 3, 8, 8, device=device),
                      torch.ones(4, 1, 8, 8, device=device))
    assert x.device.type == device.type and plan.element.device.type == device.type and y.sum() == 4 * 64
