"""EfficientAT's MobileNetV3 audio taggers (`mn04_as`, `mn05_as`, `mn10_as`, …): the network, its AudioSet
weights loaded strictly, and the frozen clip embedder built on them.

The body is torchvision's MobileNetV3-Large layout with every channel count scaled by `width` and
rounded to a multiple of 8; convolutions carry no bias and are followed by BatchNorm2d(eps=1e-3,
momentum=0.01); squeeze-excitation is channel-wise with a plain sigmoid. State-dict keys and
shapes equal the official checkpoints' (`features.N.block.M.0.weight`, `…conc_se_layers.0.fc1`,
`classifier.5.weight`), which is what lets them load with strict=True.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

AUDIOSET_CLASSES = 527
# Inverted residual blocks at width 1.0: kernel, expanded channels, output channels, squeeze-excitation,
# activation (ReLU or Hardswish), stride. Each block's input is the previous block's output.
BLOCKS = (
    (3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hardswish", 2), (3, 200, 80, False, "hardswish", 1), (3, 184, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1), (3, 480, 112, True, "hardswish", 1), (3, 672, 112, True, "hardswish", 1),
    (5, 672, 160, True, "hardswish", 2), (5, 960, 160, True, "hardswish", 1), (5, 960, 160, True, "hardswish", 1),
)
STEM, HIDDEN = 16, 1280
ACTIVATIONS = {"relu": nn.ReLU, "hardswish": nn.Hardswish}


class WeightsError(ValueError):
    """A pretrained weights file that cannot be used; the message names the file and what was expected."""


def make_divisible(value: float, divisor: int = 8) -> int:
    """The nearest multiple of divisor (at least divisor), never more than 10% below value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_act(c_in: int, c_out: int, kernel: int, activation: str | None, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv2d without bias, BatchNorm2d and an optional activation."""
    layers = [
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01),
    ]
    return nn.Sequential(*layers, ACTIVATIONS[activation]()) if activation else nn.Sequential(*layers)


def half_span(span: int) -> int:
    """Columns either side of a column that a mean over `span` columns (rounded up to odd) centred on it reads."""
    return (span | 1) // 2


def centred_mean(x: torch.Tensor, span: int) -> torch.Tensor:
    """Mean of x (B, C, T) over the span columns (rounded up to odd) centred on each column, fewer at the ends. Pooled
    as an image one row high: onnxruntime pools that 2.7x faster than the same 1-D pooling (the same values)."""
    half = half_span(span)
    return F.avg_pool2d(x[:, :, None], (1, 2 * half + 1), stride=1, padding=(0, half), count_include_pad=False)[:, :, 0]


class ChannelGate(nn.Module):
    """Mean over frequency and time, Linear, ReLU, Linear, sigmoid: one gate per channel, multiplied in. With a
    `span` (see localise_gates), the mean over time is over the span columns centred on each column instead."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(channels, squeezed), nn.Linear(squeezed, channels)
        self.span: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.span is None:
            gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
            return x * gate[:, :, None, None]
        means = centred_mean(x.mean(dim=2), self.span).transpose(1, 2)  # (B, T, C)
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(means))))
        return x * gate.transpose(1, 2)[:, :, None, :]


class SqueezeExcite(nn.Module):
    """Channel-wise squeeze-excitation; the ModuleList name is the checkpoints' key (`conc_se_layers.0`)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelGate(channels, make_divisible(channels // 4))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    """1x1 expansion (when it widens), depthwise conv, optional squeeze-excitation, 1x1 projection; a shortcut
    when the shape is kept."""

    def __init__(self, c_in: int, kernel: int, expanded: int, c_out: int, se: bool, activation: str, stride: int) -> None:
        super().__init__()
        layers = [conv_bn_act(c_in, expanded, 1, activation)] if expanded != c_in else []
        layers.append(conv_bn_act(expanded, expanded, kernel, activation, stride, groups=expanded))
        layers += [SqueezeExcite(expanded)] if se else []
        layers.append(conv_bn_act(expanded, c_out, 1, None))
        self.block = nn.Sequential(*layers)
        self.shortcut = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.shortcut else self.block(x)


class MobileNetAT(nn.Module):
    """Log-mels (B, 128, frames) to logits (B, n_classes); `embed` gives the pooled clip embedding (B, dims)."""

    def __init__(self, n_classes: int = AUDIOSET_CLASSES, width: float = 0.4, dropout: float = 0.2) -> None:
        super().__init__()
        self.width = width
        channels = make_divisible(STEM * width)
        layers: list[nn.Module] = [conv_bn_act(1, channels, 3, "hardswish", stride=2)]
        for kernel, expanded, c_out, se, activation, stride in BLOCKS:
            c_next = make_divisible(c_out * width)
            layers.append(InvertedResidual(channels, kernel, make_divisible(expanded * width), c_next, se, activation, stride))
            channels = c_next
        self.dims = 6 * channels
        layers.append(conv_bn_act(channels, self.dims, 1, "hardswish"))
        self.features = nn.Sequential(*layers)
        hidden = make_divisible(HIDDEN * width)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(self.dims, hidden), nn.Hardswish(),
            nn.Dropout(dropout), nn.Linear(hidden, n_classes),
        )

    @property
    def head(self) -> nn.Module:
        """The part after the convolutional body; fine-tuning may give it a higher learning rate."""
        return self.classifier

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The body's output (B, dims, frequency, time)."""
        return self.features(x.unsqueeze(1))

    def from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits from the feature map averaged over frequency and time (B, dims)."""
        return self.classifier[2:](pooled)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The body's output averaged over frequency and time: (B, dims)."""
        return self.feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.feature_map(x))


def localise_gates(model: nn.Module, probe: Callable[[], object]) -> nn.Module:
    """Give each ChannelGate in the model the span of columns its input has during probe() (a window alone), so
    that over a longer input each column is gated as in the window centred on it; returns the model."""
    gates = [m for m in model.modules() if isinstance(m, ChannelGate)]
    spans: dict[ChannelGate, int] = {}

    def record(gate: nn.Module, args: tuple[torch.Tensor]) -> None:
        spans[gate] = args[0].shape[-1]

    hooks = [gate.register_forward_pre_hook(record) for gate in gates]
    probe()
    for hook in hooks:
        hook.remove()
    for gate in gates:
        gate.span = spans[gate]
    return model


class SplitRows(nn.Module):
    """(B, rows, frames) to (B, *shape, frames), the rows split into `shape`. Unlike nn.Unflatten, a graph traced
    through it leaves the number of frames free for what follows (an exported graph reads any length)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape, -1)


def split_at_first_gate(network: MobileNetAT, bins: int) -> tuple[nn.Sequential, nn.Sequential]:
    """The body, log-mels (B, bins, frames) to the feature map (B, C, F, columns), as two modules run one after the
    other: the layers before the first squeeze-excitation gate, whose columns depend only on nearby frames, to
    (B, rows, columns) (channels and frequency as rows), then the rest. They share the network's layers."""
    layers = list(network.features)
    first = next(i for i, layer in enumerate(layers) if any(isinstance(m, SqueezeExcite) for m in layer.modules()))
    if layers[first].shortcut:
        raise ValueError(f"block {first} adds its input to its output: its gate cannot split the body")
    block = list(layers[first].block)
    gate = next(i for i, layer in enumerate(block) if isinstance(layer, SqueezeExcite))
    prefix = nn.Sequential(SplitRows((1, bins)), *layers[:first], *block[:gate])
    with torch.no_grad():
        shape = prefix(torch.zeros(1, bins, 64)).shape[1:3]
    return (nn.Sequential(*prefix, nn.Flatten(1, 2)),
            nn.Sequential(SplitRows(tuple(shape)), *block[gate:], *layers[first + 1:]))


def finer_time(network: MobileNetAT, time_stride: int) -> MobileNetAT:
    """The network with its last strided convolutions keeping the time axis (stride (2, 1)), so that a column of its
    feature map is `time_stride` frames instead of 32; the weights are unchanged. ValueError for other strides."""
    strided = [m for m in network.features.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    kept = {2 ** k: len(strided) - 5 + k for k in range(6)}.get(time_stride)
    if kept is None or kept < 0:
        raise ValueError(f"time_stride {time_stride}: must be a power of 2 from 1 to 32")
    for conv in strided[kept:]:
        conv.stride = (2, 1)
    return network


def efficientat(n_classes: int, width: float = 0.4, dropout: float = 0.2) -> MobileNetAT:
    """An EfficientAT MobileNetV3 of this width for n_classes, randomly initialised."""
    return MobileNetAT(n_classes, width, dropout)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_weights(path: str | Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """A plain state dict from a file, optionally checked against its SHA-256; FileNotFoundError when absent,
    WeightsError when unreadable or different."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"pretrained weights {path} not found")
    if sha256 is not None and file_sha256(path) != sha256:
        raise WeightsError(f"{path}: not the weights the embeddings were made with (SHA-256 differs); rerun the embed stage")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, pickled objects: RuntimeError, UnpicklingError, ...
        raise WeightsError(f"{path}: not a readable PyTorch weights file ({str(exc).splitlines()[0]})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a plain state_dict of tensors (an EfficientAT mn*_as release file)")
    return state


def load_audioset(path: str | Path, width: float, sha256: str | None = None) -> MobileNetAT:
    """The AudioSet tagger of this width with the file's weights (checked against sha256 when given), loaded
    strictly, in eval mode."""
    network = MobileNetAT(AUDIOSET_CLASSES, width)
    state = read_weights(path, sha256)
    expected = network.state_dict()
    wrong = [
        f"{key} {tuple(state[key].shape)} instead of {tuple(value.shape)}"
        for key, value in expected.items() if key in state and state[key].shape != value.shape
    ]
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if wrong or missing or unexpected:
        found = f"its stem has {state['features.0.0.weight'].shape[0]} channels" if "features.0.0.weight" in state else ""
        details = "; ".join(filter(None, [
            f"{len(wrong)} tensors of another shape, e.g. {wrong[0]}" if wrong else "",
            f"{len(missing)} missing, e.g. {missing[0]}" if missing else "",
            f"{len(unexpected)} unexpected, e.g. {unexpected[0]}" if unexpected else "", found,
        ]))
        raise WeightsError(
            f"{path}: not an EfficientAT AudioSet model of width {width} "
            f"(stem {make_divisible(STEM * width)} channels): {details}; set the width the file was made for "
            "(mn04_as 0.4, mn05_as 0.5, mn10_as 1.0, mn20_as 2.0)"
        )
    network.load_state_dict(state, strict=True)
    return network.eval()


def init_from_audioset(model: MobileNetAT, path: str | Path) -> None:
    """Copy the AudioSet weights of the model's width into everything but its new output layer."""
    source = load_audioset(path, model.width).state_dict()
    kept = {k: v for k, v in source.items() if not k.startswith("classifier.5.")}
    missing, unexpected = model.load_state_dict(kept, strict=False)
    if sorted(missing) != ["classifier.5.bias", "classifier.5.weight"] or unexpected:
        raise WeightsError(f"{path}: does not fit the model ({missing + unexpected})")
