"""Load a torchvision ResNet-family state_dict into the Keras model of wide_resnet.py.

The one key mapping: ``<module path>.<tensor>`` -> Keras layer ``<module path with "_">``:
  conv ``weight`` [out, in, kh, kw]      -> ``kernel`` [kh, kw, in, out]
  bn ``weight``/``bias``                 -> ``gamma``/``beta``
  bn ``running_mean``/``running_var``    -> ``moving_mean``/``moving_variance``
  fc ``weight`` [out, in] / ``bias``     -> Dense ``kernel`` [in, out] / ``bias``
  ``num_batches_tracked``                -> dropped (training-time counter)
Every Keras weight must be filled and every torch tensor used, or the port fails loudly.
"""

from __future__ import annotations

from collections import defaultdict

import keras
import numpy as np

_BN_ORDER = ("weight", "bias", "running_mean", "running_var")  # Keras BN: gamma, beta, mean, var


def _group_by_layer(state_dict: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    grouped: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for key, value in state_dict.items():
        module, tensor = key.rsplit(".", 1)
        if tensor != "num_batches_tracked":
            grouped[module.replace(".", "_")][tensor] = np.asarray(value, dtype=np.float32)
    return grouped


def _keras_weights(layer: keras.layers.Layer, tensors: dict[str, np.ndarray]) -> list[np.ndarray]:
    if isinstance(layer, keras.layers.Conv2D):
        return [tensors["weight"].transpose(2, 3, 1, 0)]
    if isinstance(layer, keras.layers.BatchNormalization):
        return [tensors[name] for name in _BN_ORDER]
    if isinstance(layer, keras.layers.Dense):
        return [tensors["weight"].T, tensors["bias"]]
    raise TypeError(f"no mapping for layer {layer.name} ({type(layer).__name__})")


def load_torch_state_dict(model: keras.Model, state_dict: dict[str, np.ndarray]) -> None:
    grouped = _group_by_layer(state_dict)
    weighted = [layer for layer in model.layers if layer.weights]
    missing = [layer.name for layer in weighted if layer.name not in grouped]
    unused = sorted(set(grouped) - {layer.name for layer in weighted})
    if missing or unused:
        raise ValueError(f"state_dict does not match the model: missing {missing[:5]}, unused {unused[:5]}")
    for layer in weighted:
        new = _keras_weights(layer, grouped[layer.name])
        for current, value in zip(layer.get_weights(), new, strict=True):
            if current.shape != value.shape:
                raise ValueError(f"{layer.name}: shape {value.shape} from torch, Keras expects {current.shape}")
        layer.set_weights(new)
