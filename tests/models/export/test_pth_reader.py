import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from models.export.pth_reader import PthFormatError, read_state_dict


def test_reads_what_torch_save_writes(torch, tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    state = OrderedDict(
        weight=torch.randn(8, 3, 3, 3),
        transposed=base.transpose(0, 2),  # non-contiguous view: strides matter
        offset_view=base[1, 1:],  # shares storage with a non-zero offset
        running_var=torch.rand(5, dtype=torch.float64),
        num_batches_tracked=torch.tensor(7),  # 0-d int64
        half=torch.randn(4).half(),
        mask=torch.tensor([True, False]),
        small=torch.tensor([1, -2], dtype=torch.int8),
    )
    path = tmp_path / "state.pth"
    torch.save(state, path)
    loaded = read_state_dict(path)
    assert list(loaded) == list(state)
    for key, tensor in state.items():
        expected = tensor.numpy()
        assert loaded[key].dtype == expected.dtype, key
        np.testing.assert_array_equal(loaded[key], expected, err_msg=key)


def test_reads_a_nested_checkpoint_and_a_module_state_dict(torch, tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": module.state_dict(), "epoch": 3}, path)
    loaded = read_state_dict(path)
    assert set(loaded) == set(module.state_dict())
    np.testing.assert_array_equal(loaded["0.weight"], module.state_dict()["0.weight"].numpy())


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_refuses_code_in_the_pickle(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"x": _Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        read_state_dict(path)


def test_rejects_a_file_that_is_not_a_zip_checkpoint(tmp_path):
    path = tmp_path / "legacy.pth"
    path.write_bytes(b"\x80\x02not a zip")
    with pytest.raises(PthFormatError, match="not a torch zip checkpoint"):
        read_state_dict(path)
