"""Wide-ResNet-50-2 in Keras with torchvision's exact layout.

Layer names are torchvision's module paths with "." replaced by "_" (``layer1.0.conv1`` ->
``layer1_0_conv1``), so one rule maps a torchvision state_dict onto this model (torch_port.py).
Padding is torch's symmetric zero padding followed by a "valid" convolution: Keras "same" pads
asymmetrically on stride 2, which would shift every feature map by one pixel.
"""

from __future__ import annotations

import keras
from keras import layers

BLOCKS_PER_STAGE = (3, 4, 6, 3)
STAGE_PLANES = (64, 128, 256, 512)
WIDTH_FACTOR = 2  # width_per_group = 128 = 64 * 2
EXPANSION = 4
BN_EPSILON = 1e-5  # torch BatchNorm2d default
BN_MOMENTUM = 0.9  # torch momentum 0.1 means "keep 0.9 of the old statistic"


def _conv(x, filters: int, kernel: int, stride: int, name: str):
    pad = kernel // 2
    if pad:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    return layers.Conv2D(filters, kernel, strides=stride, use_bias=False, name=name)(x)


def _bn(x, name: str):
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)(x)


def _bottleneck(x, planes: int, stride: int, name: str, downsample: bool):
    width = planes * WIDTH_FACTOR
    identity = x
    out = layers.ReLU(name=f"{name}_relu1")(_bn(_conv(x, width, 1, 1, f"{name}_conv1"), f"{name}_bn1"))
    # torchvision (v1.5) puts the stride on the 3x3 conv, not on the first 1x1.
    out = layers.ReLU(name=f"{name}_relu2")(_bn(_conv(out, width, 3, stride, f"{name}_conv2"), f"{name}_bn2"))
    out = _bn(_conv(out, planes * EXPANSION, 1, 1, f"{name}_conv3"), f"{name}_bn3")
    if downsample:
        identity = _bn(_conv(x, planes * EXPANSION, 1, stride, f"{name}_downsample_0"), f"{name}_downsample_1")
    out = layers.Add(name=f"{name}_add")([out, identity])
    return layers.ReLU(name=f"{name}_out")(out)


def build_wide_resnet50_2(num_classes: int = 1000) -> keras.Model:
    """Float input (already normalised, NHWC) -> logits, as torchvision's model."""
    inputs = keras.Input((None, None, 3), name="normalised")
    x = _conv(inputs, 64, 7, 2, "conv1")
    x = layers.ReLU(name="relu")(_bn(x, "bn1"))
    # Zero padding equals torch's -inf padding here because the input is post-ReLU (>= 0).
    x = layers.ZeroPadding2D(1, name="maxpool_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="maxpool")(x)
    in_channels = 64
    for stage, (blocks, planes) in enumerate(zip(BLOCKS_PER_STAGE, STAGE_PLANES, strict=True), start=1):
        for block in range(blocks):
            stride = 2 if (block == 0 and stage > 1) else 1
            downsample = block == 0 and (stride != 1 or in_channels != planes * EXPANSION)
            x = _bottleneck(x, planes, stride, f"layer{stage}_{block}", downsample)
            in_channels = planes * EXPANSION
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    logits = layers.Dense(num_classes, name="fc")(x)
    return keras.Model(inputs, logits, name="wide_resnet50_2")
