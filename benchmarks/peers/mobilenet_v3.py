"""MobileNetV3-Large in plain torch, with torchvision's architecture and module layout.

PyPI's torchvision wheel is built against the CUDA torch wheel: with the CPU torch wheel its C++
ops (``torchvision::nms``) do not load, and since ``import torchvision`` registers fake kernels for
them, the import itself fails. Its MobileNetV3 needs none of those ops, so this module writes the
same network (torchvision.models.mobilenet_v3_large: the 15 inverted-residual blocks of the paper's
Table 1, squeeze-excitation with Hardsigmoid, BatchNorm eps 0.001, classifier 960 -> 1280 -> 1000,
its weight initialisation) from torch.nn alone. The weights are random, like our export's.
"""

from __future__ import annotations

from torch import Tensor, nn

# input channels, kernel, expanded channels, output channels, squeeze-excitation, hard-swish, stride
BLOCKS = (
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(inputs: int, outputs: int, kernel: int, stride: int = 1, groups: int = 1, activation=None) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(inputs, outputs, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(outputs, eps=0.001, momentum=0.01),
    ]
    if activation is not None:
        layers.append(activation(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        squeezed = make_divisible(channels // 4)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class InvertedResidual(nn.Module):
    def __init__(self, inputs: int, kernel: int, expanded: int, outputs: int, se: bool, hard_swish: bool, stride: int):
        super().__init__()
        activation = nn.Hardswish if hard_swish else nn.ReLU
        self.use_res_connect = stride == 1 and inputs == outputs
        layers: list[nn.Module] = []
        if expanded != inputs:
            layers.append(conv_bn(inputs, expanded, 1, activation=activation))
        layers.append(conv_bn(expanded, expanded, kernel, stride, groups=expanded, activation=activation))
        if se:
            layers.append(SqueezeExcitation(expanded))
        layers.append(conv_bn(expanded, outputs, 1))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return out + x if self.use_res_connect else out


class MobileNetV3Large(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        last = BLOCKS[-1][3]
        self.features = nn.Sequential(
            conv_bn(3, 16, 3, 2, activation=nn.Hardswish),
            *(InvertedResidual(*block) for block in BLOCKS),
            conv_bn(last, 6 * last, 1, activation=nn.Hardswish),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(6 * last, 1280),
            nn.Hardswish(inplace=True),
            nn.Dropout(0.2, inplace=True),
            nn.Linear(1280, num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))
