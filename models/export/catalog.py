"""The models the stack serves: how to build each one and how its input must be prepared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol.contract import IMAGE_SIZE, INPUT_DTYPE, INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:  # Keras loads lazily so that the CLI can reject bad arguments instantly.
    import keras

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class WeightsFile:
    url: str
    sha256_prefix: str  # torch.hub convention: the file name carries the first hex digits


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build_core: Callable[[str | None], keras.Model]  # weights path/"imagenet"/None -> float model
    normalise: Callable[[keras.KerasTensor], keras.KerasTensor]
    resize_shorter: int  # gateway policy: shorter side to this, then centre-crop IMAGE_SIZE
    interpolation: str
    imagenet_weights: WeightsFile | None  # None: Keras downloads and checks them itself
    logits: bool  # core returns logits (softmax added on top) or probabilities


def _torch_normalise(x: keras.KerasTensor) -> keras.KerasTensor:
    scale = [1.0 / (255.0 * s) for s in IMAGENET_STD]
    offset = [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    from keras import layers

    return layers.Rescaling(scale, offset, name="normalise")(x)


def _keras_preprocessing_inside(x: keras.KerasTensor) -> keras.KerasTensor:
    # MobileNetV3 from Keras rescales 0..255 itself (include_preprocessing=True); just cast.
    from keras import layers

    return layers.Rescaling(1.0, name="to_float")(x)


def _wide_resnet_core(_weights: str | None) -> keras.Model:
    from models.export.wide_resnet import build_wide_resnet50_2

    return build_wide_resnet50_2()


def _mobilenet_core(weights: str | None) -> keras.Model:
    import keras

    return keras.applications.MobileNetV3Large(
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        weights=weights,
        include_preprocessing=True,
        classifier_activation="softmax",
    )


CATALOG: dict[str, ModelEntry] = {
    "wide_resnet50_2": ModelEntry(
        name="wide_resnet50_2",
        build_core=_wide_resnet_core,
        normalise=_torch_normalise,
        resize_shorter=232,  # torchvision IMAGENET1K_V2 eval transform
        interpolation="bilinear",
        imagenet_weights=WeightsFile(
            url="https://download.pytorch.org/models/wide_resnet50_2-9ba9bcbe.pth",
            sha256_prefix="9ba9bcbe",
        ),
        logits=True,
    ),
    "mobilenet_v3_large": ModelEntry(
        name="mobilenet_v3_large",
        build_core=_mobilenet_core,
        normalise=_keras_preprocessing_inside,
        resize_shorter=256,
        interpolation="bilinear",
        imagenet_weights=None,
        logits=False,
    ),
}


def build_classifier(entry: ModelEntry, core: keras.Model) -> keras.Model:
    """Wrap a float model into the serving contract: uint8 RGB [N,224,224,3] -> softmax [N,1000]."""
    import keras
    from keras import layers

    images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=INPUT_DTYPE, name=INPUT_NAME)
    outputs = core(entry.normalise(images))
    if entry.logits:
        outputs = layers.Softmax(name=OUTPUT_NAME)(outputs)
    return keras.Model(images, outputs, name=entry.name)
