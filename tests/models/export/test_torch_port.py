"""The Keras WRN-50-2 with a ported state_dict computes what torchvision's layout computes."""

import numpy as np
import pytest

from models.export.catalog import CATALOG, build_classifier
from models.export.pth_reader import read_state_dict
from models.export.torch_port import load_torch_state_dict
from models.export.weights import synthetic_images
from models.export.wide_resnet import build_wide_resnet50_2

TORCHVISION_PARAMETERS = 68_883_240


def test_parameter_count_matches_torchvision():
    model = build_wide_resnet50_2()
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == TORCHVISION_PARAMETERS


@pytest.fixture(scope="module")
def torch_reference(torch, tmp_path_factory):
    from tests.torch_wide_resnet import WideResNet50x2

    torch.manual_seed(0)
    model = WideResNet50x2()
    # Non-trivial BN statistics and affine terms, so a swapped mean/var or gamma/beta would show.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    model.train()
    rng = np.random.default_rng(1)
    with torch.no_grad():
        for _ in range(2):
            model(_normalise(torch, synthetic_images(rng, 4)))
    model.eval()
    path = tmp_path_factory.mktemp("torch") / "wrn.pth"
    torch.save(model.state_dict(), path)
    return model, path


def _normalise(torch, images: np.ndarray):
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    x = (images.astype(np.float32) / 255.0 - mean) / std
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def test_ported_model_matches_torch_reference(torch, torch_reference):
    reference, path = torch_reference
    entry = CATALOG["wide_resnet50_2"]
    core = entry.build_core(None)
    load_torch_state_dict(core, read_state_dict(path))
    classifier = build_classifier(entry, core)

    images = synthetic_images(np.random.default_rng(2), 4)
    with torch.no_grad():
        expected = torch.softmax(reference(_normalise(torch, images)), dim=1).numpy()
    got = np.asarray(classifier(images))
    assert got.shape == (4, 1000)
    difference = np.abs(got - expected).max()
    print(f"softmax max abs difference Keras vs torch: {difference:.2e}")
    assert difference < 1e-4
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert expected.max() > 5e-3, "reference outputs are flat; the comparison would prove nothing"


def test_port_refuses_a_state_dict_that_does_not_fit(torch_reference):
    _, path = torch_reference
    state = read_state_dict(path)
    core = build_wide_resnet50_2()
    with pytest.raises(ValueError, match="missing"):
        load_torch_state_dict(core, {k: v for k, v in state.items() if not k.startswith("fc.")})
    state["fc.weight"] = state["fc.weight"][:10]
    with pytest.raises(ValueError, match="shape"):
        load_torch_state_dict(core, state)
