"""U-Net / UNet++: parameter counts, wiring against the reference, pruning, modes, precision."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from unetpp.choices import BLOCKS, arch_help, inference_outputs
from unetpp.errors import UnetppError
from unetpp.losses import supervised_loss
from unetpp.models import (
    ARCHITECTURES,
    BUILDERS,
    ModelError,
    NestedUNet,
    UNet,
    build_model,
    count_parameters,
    output_forward,
)
from unetpp.models.blocks import check_input, l2_kernels
from unetpp.models.flops import count_forward_flops, flops_table

torch.set_num_threads(2)
SMALL = (4, 8, 16, 32, 64)  # same graph, 1/64 of the work: for checks where width does not matter


def _model(arch: str, seed: int = 0, **kwargs: object) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(arch, **kwargs)


def _randomise_bn_stats(model: nn.Module, seed: int = 1) -> None:
    """Give eval-mode BN non-trivial running statistics, so eval checks mean something."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)


# --- registry and parameter counts -------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "expected"), [("unet", 7_852_545), ("nested_unet", 9_163_329), ("nested_unet_ds", 9_163_428)]
)
def test_default_parameter_counts_match_the_reference(arch: str, expected: int) -> None:
    assert count_parameters(build_model(arch)) == expected


@pytest.mark.parametrize(
    ("arch", "expected"), [("unet", 7_760_097), ("nested_unet", 9_042_177), ("nested_unet_ds", 9_042_276)]
)
def test_authors_block_parameter_counts_match_their_keras_models(arch: str, expected: int) -> None:
    """The Keras docstrings give 7,759,521 (U-Net) and 9,041,601 (UNet++) for one input channel: 576 less,
    the first 3x3 convolution's 2 x 9 x 32 kernel weights; deep supervision adds three 1x1 heads of 33."""
    model = build_model(arch, block="authors")
    assert count_parameters(model) == expected
    assert count_parameters(build_model(arch, block="authors", in_channels=1)) == expected - 576
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_authors_block_layers_initialisation_and_l2_kernels() -> None:
    torch.manual_seed(0)
    model = build_model("nested_unet_ds", block="authors")
    unit = model.nodes["x0_0"]
    assert [type(m).__name__ for m in unit] == ["HeConv2d", "ReLU", "HalfDropout", "HeConv2d", "ReLU", "HalfDropout"]
    assert unit[2].p == unit[5].p == 0.5
    up = model.ups["x0_1"]
    assert isinstance(up, nn.ConvTranspose2d) and up.kernel_size == (2, 2) and up.stride == (2, 2)
    assert (up.in_channels, up.out_channels) == (64, 32)  # Conv2DTranspose(nb_filter[0]) on level 1
    assert all(h.kernel_size == (1, 1) for h in model.heads)
    # He-normal, truncated at 2 sd: the 3x3 kernels of the 64-channel x1_0's second conv have fan_in 576.
    w = model.nodes["x1_0"][3].weight
    std = (2 / 576) ** 0.5
    assert w.abs().max() <= 2 * std and 0.8 * std < w.std() < 0.95 * std  # a 2-sd truncation keeps 0.88 sd
    assert all(not m.bias.detach().any() for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d))
    # The L2 covers the 15 units' 30 3x3 kernels and the 4 heads, not the 10 transposed convolutions or biases.
    kernels = l2_kernels(model)
    assert len(kernels) == 34 and all(k.dim() == 4 for k in kernels)
    assert sum(k.numel() for k in kernels) == sum(
        m.weight.numel() for m in model.modules() if type(m) is not nn.ConvTranspose2d and isinstance(m, nn.Conv2d)
    )
    assert l2_kernels(build_model("nested_unet_ds")) == []
    with pytest.raises(ModelError, match="block 'resnet' is unknown"):
        build_model("unet", block="resnet")
    with pytest.raises(ModelError, match="vgg block only"):
        build_model("unet", block="authors", upsample_mode="nearest")


def test_dropout_acts_in_training_only() -> None:
    model = _model("unet", filters=SMALL, block="authors")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x), model(x))
        model.eval()
        assert torch.equal(model(x), model(x))


def test_registry_names_and_help() -> None:
    assert list(ARCHITECTURES) == ["unet", "nested_unet", "nested_unet_ds"]
    assert list(BUILDERS) == list(ARCHITECTURES)  # a builder for every name the CLI offers, and no other
    assert isinstance(build_model("unet"), UNet)
    assert build_model("nested_unet").deep_supervision is False
    assert build_model("nested_unet_ds").deep_supervision is True
    text = arch_help()
    for name in ARCHITECTURES:
        assert name in text


def test_build_model_refuses_unknown_or_contradictory_options() -> None:
    with pytest.raises(UnetppError, match="unknown architecture 'unet3'.*unet, nested_unet, nested_unet_ds"):
        build_model("unet3")
    with pytest.raises(ModelError, match="always has deep_supervision=False"):
        build_model("nested_unet", deep_supervision=True)
    with pytest.raises(TypeError, match="deep_supervision"):
        build_model("unet", deep_supervision=True)
    # Consistent explicit values are fine (checkpoints store model_kwargs).
    assert build_model("nested_unet_ds", deep_supervision=True, filters=SMALL).deep_supervision


def test_constructor_arguments_are_explicit_and_used() -> None:
    model = build_model("nested_unet", in_channels=1, num_classes=2, filters=(4, 8, 16), upsample_mode="nearest")
    assert model.depth == 2
    assert {up.mode for up in model.ups.values()} == {"nearest"} and model.ups["x0_1"].align_corners is None
    assert set(model.nodes) == {"x0_0", "x1_0", "x2_0", "x0_1", "x1_1", "x0_2"}
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 1, 8, 12)).shape == (1, 2, 8, 12)
    assert all(up.align_corners is True for up in build_model("unet").ups)
    with pytest.raises(ModelError, match="upsample mode 'trilinear'"):
        build_model("unet", upsample_mode="trilinear")
    with pytest.raises(ModelError, match="at least two positive"):
        build_model("unet", filters=(32,))


def test_align_corners_is_configurable_and_changes_the_output() -> None:
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = _model("unet", filters=SMALL).eval()(x)
        b = _model("unet", filters=SMALL, align_corners=False).eval()(x)
    assert not torch.allclose(a, b)


# --- wiring: the reference's forward written out by hand ---------------------------------------


def _reference_unet_forward(m: UNet, x: torch.Tensor) -> torch.Tensor:
    e, d, up, pool = m.encoder, m.decoder, m.ups, m.pool
    x0_0 = e[0](x)
    x1_0 = e[1](pool(x0_0))
    x2_0 = e[2](pool(x1_0))
    x3_0 = e[3](pool(x2_0))
    x4_0 = e[4](pool(x3_0))
    x3_1 = d[3](torch.cat([x3_0, up[3](x4_0)], 1))
    x2_2 = d[2](torch.cat([x2_0, up[2](x3_1)], 1))
    x1_3 = d[1](torch.cat([x1_0, up[1](x2_2)], 1))
    x0_4 = d[0](torch.cat([x0_0, up[0](x1_3)], 1))
    return m.head(x0_4)


def _reference_nested_forward(m: NestedUNet, x: torch.Tensor) -> list[torch.Tensor]:
    n, up, pool = m.nodes, m.ups, m.pool
    x0_0 = n["x0_0"](x)
    x1_0 = n["x1_0"](pool(x0_0))
    x0_1 = n["x0_1"](torch.cat([x0_0, up["x0_1"](x1_0)], 1))
    x2_0 = n["x2_0"](pool(x1_0))
    x1_1 = n["x1_1"](torch.cat([x1_0, up["x1_1"](x2_0)], 1))
    x0_2 = n["x0_2"](torch.cat([x0_0, x0_1, up["x0_2"](x1_1)], 1))
    x3_0 = n["x3_0"](pool(x2_0))
    x2_1 = n["x2_1"](torch.cat([x2_0, up["x2_1"](x3_0)], 1))
    x1_2 = n["x1_2"](torch.cat([x1_0, x1_1, up["x1_2"](x2_1)], 1))
    x0_3 = n["x0_3"](torch.cat([x0_0, x0_1, x0_2, up["x0_3"](x1_2)], 1))
    x4_0 = n["x4_0"](pool(x3_0))
    x3_1 = n["x3_1"](torch.cat([x3_0, up["x3_1"](x4_0)], 1))
    x2_2 = n["x2_2"](torch.cat([x2_0, x2_1, up["x2_2"](x3_1)], 1))
    x1_3 = n["x1_3"](torch.cat([x1_0, x1_1, x1_2, up["x1_3"](x2_2)], 1))
    x0_4 = n["x0_4"](torch.cat([x0_0, x0_1, x0_2, x0_3, up["x0_4"](x1_3)], 1))
    return [x0_1, x0_2, x0_3, x0_4]


# The wiring tests compare the model with a hand-written forward pass of the same layers on the same input:
# the same kernels in the same order, so assert_close's tight fp32 defaults (rtol 1.3e-6, atol 1e-5) hold on
# every CPU; a miswired skip or head would differ by O(1).
@pytest.mark.parametrize("block", list(BLOCKS))
def test_unet_matches_the_reference_wiring(block: str) -> None:
    model = _model("unet", filters=SMALL, block=block).eval()
    _randomise_bn_stats(model)
    x = torch.randn(1, 3, 32, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model(x), _reference_unet_forward(model, x))


@pytest.mark.parametrize("block", list(BLOCKS))
def test_nested_unet_matches_the_reference_wiring_and_heads(block: str) -> None:
    model = _model("nested_unet_ds", filters=SMALL, block=block).eval()
    _randomise_bn_stats(model)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        heads = [head(f) for head, f in zip(model.heads, _reference_nested_forward(model, x))]
        torch.testing.assert_close(model(x), heads[3])
        for got, expected in zip(model.forward_heads(x), heads, strict=True):
            torch.testing.assert_close(got, expected)
        torch.testing.assert_close(model.forward_mean(x), torch.stack(heads).mean(0))
        for level in range(1, 5):
            torch.testing.assert_close(model.forward_level(x, level), heads[level - 1])
        # The output names of --inference-output reach the same methods.
        torch.testing.assert_close(output_forward(model, "last")(x), heads[3])
        torch.testing.assert_close(output_forward(model, "mean")(x), torch.stack(heads).mean(0))
        torch.testing.assert_close(output_forward(model, "L2")(x), heads[1])


# --- forward shapes, deep supervision, modes ---------------------------------------------------


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("size", [(96, 96), (128, 160)])
def test_forward_shape_in_eval_mode(arch: str, size: tuple[int, int]) -> None:
    model = _model(arch).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *size))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (1, 1, *size)
    assert torch.isfinite(out).all()


def test_deep_supervision_gives_four_head_logits_and_forward_the_deepest_in_both_modes() -> None:
    model = _model("nested_unet_ds", filters=SMALL)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        outs = model.train().forward_heads(x)
        deepest = model(x)
        assert isinstance(model.eval()(x), torch.Tensor)
    torch.testing.assert_close(deepest, outs[3])  # train-mode BN: same batch statistics, same result
    assert isinstance(outs, list) and len(outs) == 4
    assert all(o.shape == (2, 1, 32, 32) for o in outs)
    # Logits, not probabilities: an untrained head gives values outside [0, 1].
    assert any(bool(((o < 0) | (o > 1)).any()) for o in outs)
    # They are four different heads, not one repeated.
    assert not torch.allclose(outs[0], outs[3])


@pytest.mark.parametrize("arch", ["unet", "nested_unet"])
def test_without_deep_supervision_one_head_in_both_modes(arch: str) -> None:
    model = _model(arch, filters=SMALL)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for mode in (True, False):
            model.train(mode)
            assert isinstance(model(x), torch.Tensor)
            (head,) = model.forward_heads(x)
            assert torch.equal(head, model(x))


def test_inference_output_choices_follow_the_model_and_are_checked() -> None:
    with pytest.raises(ModelError, match="'mean' is not available.*choose one of last.*need deep supervision"):
        output_forward(build_model("nested_unet"), "mean")
    with pytest.raises(ModelError, match="'L5' is not available.*last, mean, L1, L2, L3, L4$"):
        output_forward(build_model("nested_unet_ds"), "L5")
    with pytest.raises(ModelError, match="'L1' is not available.*need deep supervision"):
        output_forward(build_model("unet"), "L1")
    with pytest.raises(ModelError, match="no head at level 2: its heads are at level\\(s\\) 4 .*deep supervision"):
        build_model("nested_unet").forward_level(torch.zeros(1, 3, 32, 32), 2)
    unet = build_model("unet")
    assert output_forward(unet, "last") is unet
    assert build_model("nested_unet_ds").inference_choices == ("last", "mean", "L1", "L2", "L3", "L4")
    assert build_model("nested_unet").inference_choices == unet.inference_choices == ("last",)
    # A shallower network offers fewer levels: the list follows the depth.
    shallow = build_model("nested_unet_ds", filters=(4, 8, 16))
    assert shallow.inference_choices == ("last", "mean", "L1", "L2") == inference_outputs(2)


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_pruned_level_runs_only_the_nodes_its_head_needs(level: int) -> None:
    model = _model("nested_unet_ds", filters=SMALL).eval()
    ran: list[str] = []
    for name, node in model.nodes.items():
        node.register_forward_hook(lambda _m, _i, _o, name=name: ran.append(name))
    for k, head in enumerate(model.heads):
        head.register_forward_hook(lambda _m, _i, _o, k=k: ran.append(f"head{k + 1}"))
    with torch.no_grad():
        model.forward_level(torch.randn(1, 3, 32, 32), level)
    expected = {f"x{i}_{j}" for i in range(5) for j in range(5) if i + j <= level} | {f"head{level}"}
    assert set(ran) == expected
    assert len(ran) == len(expected)  # each node once
    if level == 1:
        assert set(ran) == {"x0_0", "x1_0", "x0_1", "head1"}


def test_forward_flops_at_96_match_the_published_figures() -> None:
    """PyTorch's FlopCounterMode: 2 FLOPs per multiply-add, convolutions only."""
    table = flops_table(96)
    assert {k: round(v, 2) for k, v in table.items()} == {
        "unet": 3.92,
        "nested_unet": 9.70,
        "nested_unet_ds": 9.70,
        "nested_unet_ds:mean": 9.70,
        "nested_unet_ds:L1": 1.12,
        "nested_unet_ds:L2": 2.90,
        "nested_unet_ds:L3": 5.71,
        "nested_unet_ds:L4": 9.70,
    }
    levels = [table[f"nested_unet_ds:L{k}"] for k in range(1, 5)]
    assert levels == sorted(levels) and len(set(levels)) == 4
    assert table["nested_unet_ds:L4"] == table["nested_unet"]  # L4 is the whole network


def test_flop_count_leaves_the_model_untouched() -> None:
    ds = _model("nested_unet_ds", filters=SMALL)
    before = copy.deepcopy(ds.state_dict())
    assert count_forward_flops(ds, (2, 3, 32, 32), "L1") == 2 * count_forward_flops(ds, (1, 3, 32, 32), "L1")
    assert ds.training
    assert all(torch.equal(before[k], v) for k, v in ds.state_dict().items())


def test_flop_convention_is_two_per_multiply_add_of_each_convolution() -> None:
    model = build_model("unet", filters=SMALL).eval()
    macs = []

    def hook(conv: nn.Conv2d, _inputs: object, out: torch.Tensor) -> None:
        k_h, k_w = conv.kernel_size
        macs.append(conv.in_channels * conv.out_channels * k_h * k_w * out.shape[-2] * out.shape[-1])

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    for handle in handles:
        handle.remove()
    flops = count_forward_flops(model, (1, 3, 32, 32))
    assert len(macs) == 19  # 9 VGG blocks x 2 convs + the head
    assert flops == 2 * sum(macs)


# --- input checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_size_not_divisible_by_16_is_a_clear_error(arch: str) -> None:
    model = _model(arch, filters=SMALL).eval()
    with pytest.raises(ModelError) as info:
        model(torch.zeros(1, 3, 100, 96))
    message = str(info.value)
    assert "divisible by 16" in message and "100x96" in message and "pad" in message
    assert isinstance(info.value, UnetppError) and isinstance(info.value, ValueError)
    with pytest.raises(ModelError, match="96x40"):
        model(torch.zeros(1, 3, 96, 40))


def test_wrong_channels_or_rank_is_a_clear_error() -> None:
    model = _model("unet", filters=SMALL).eval()
    with pytest.raises(ModelError, match="input has 4 channels but the model expects 3.*RGB"):
        model(torch.zeros(1, 4, 32, 32))
    with pytest.raises(ModelError, match=r"\(N, C, H, W\)"):
        model(torch.zeros(3, 32, 32))


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
def test_input_checks_are_skipped_while_tracing_or_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    """As smp's check_input_shape: eager calls are checked; a trace or a compiled graph holds no Python check."""
    bad = torch.zeros(1, 4, 30, 30)
    with pytest.raises(ModelError):
        check_input(bad, 3, 4)
    for flag in ("torch.compiler.is_compiling", "torch.jit.is_tracing"):
        with monkeypatch.context() as patch:
            patch.setattr(flag, lambda: True)
            check_input(bad, 3, 4)
    model = _model("nested_unet_ds", filters=SMALL).eval()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = model(x)
        traced = torch.jit.trace(model, x)
        torch.testing.assert_close(traced(x), expected)
        with pytest.raises(RuntimeError):  # the trace has no ModelError branch: torch's own error
            traced(torch.zeros(1, 4, 32, 32))
        compiled = torch.compile(model.forward_level, backend="eager", fullgraph=True)
        torch.testing.assert_close(compiled(x, 2), model.forward_level(x, 2))


# --- training behaviour ------------------------------------------------------------------------


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_gradients_reach_every_parameter(arch: str) -> None:
    model = _model(arch).train()
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    target = (torch.rand(2, 1, 32, 32, generator=gen) > 0.5).float()
    supervised_loss(model.forward_heads(x), target).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_batchnorm_statistics_update_only_in_training() -> None:
    model = _model("nested_unet_ds", filters=SMALL)
    before = copy.deepcopy(model.state_dict())
    x = torch.randn(2, 3, 32, 32) * 3 + 1
    with torch.no_grad():
        model.eval()(x)
    after_eval = model.state_dict()
    assert all(torch.equal(before[k], after_eval[k]) for k in before)
    with torch.no_grad():
        model.train()(x)
    after_train = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after_train[k])]
    assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_eval_output_is_deterministic_and_independent_of_the_batch(arch: str) -> None:
    model = _model(arch, filters=SMALL).eval()
    _randomise_bn_stats(model)
    gen = torch.Generator().manual_seed(5)
    a, b = torch.randn(1, 3, 32, 32, generator=gen), torch.randn(1, 3, 32, 32, generator=gen) * 5
    with torch.no_grad():
        alone = model(a)
        again = model(a)
        in_batch = model(torch.cat([a, b]))[:1]
    assert torch.equal(alone, again)  # the same kernels on the same input: bit-identical on any one CPU
    # In a batch of 2 oneDNN may pick another blocking and so another fp32 summation order: equal to rounding
    # (assert_close's fp32 defaults, rtol 1.3e-6, atol 1e-5), not bit for bit.
    torch.testing.assert_close(in_batch, alone)
    # In training mode BN uses batch statistics, so the same image changes with its batch mates.
    model.train()
    with torch.no_grad():
        first = model(torch.cat([a, b]))
        second = model(torch.cat([a, b * 0.1]))
    assert not torch.allclose(first[:1], second[:1])


# --- memory format and precision ---------------------------------------------------------------


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_channels_last_gives_the_same_output(arch: str) -> None:
    model = _model(arch, filters=SMALL).eval()
    _randomise_bn_stats(model)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        reference = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last))
    assert out.shape == (1, 1, 32, 32)
    # Another layout means other oneDNN kernels and another fp32 summation order through ~20 conv+BN layers of
    # randomised statistics: differences of ~1e-6 relative that grow with depth; 1e-4 covers AVX2 and AVX-512.
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_bfloat16_autocast_gives_finite_outputs_of_the_right_shape(arch: str) -> None:
    model = _model(arch, filters=SMALL).to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last)
    target = (torch.rand(2, 1, 32, 32) > 0.5).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outs = model.train().forward_heads(x)
        loss = supervised_loss(outs, target)
    assert len(outs) == (4 if arch == "nested_unet_ds" else 1)
    assert all(o.shape == (2, 1, 32, 32) and torch.isfinite(o).all() for o in outs)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.eval()(x)
    assert out.shape == (2, 1, 32, 32) and torch.isfinite(out).all()
