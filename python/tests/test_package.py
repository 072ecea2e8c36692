"""The package itself: what it exports, that the light parts import without pandas, and (in CI)
that the installed copy is the one tested."""
import os
import subprocess
import sys

import pytest

import strata
from conftest import REPO


def test_exports_resolve():
    for name in strata.__all__:
        assert getattr(strata, name) is not None, name
    with pytest.raises(AttributeError):
        strata.no_such_thing  # noqa: B018


def test_twin_and_raw_reader_need_neither_pandas_nor_numpy():
    # A GPU machine's torch venv may have neither: the bench scripts import these two modules.
    # (torch blocked too: the twins then record shapes only, as on a machine without torch).
    code = ("import sys\nfor m in ('pandas', 'numpy', 'torch'): sys.modules[m] = None\n"
            "import strata.twin, strata.checkpoint, strata_ray\n"
            "print(len(strata.twin.state_dict_shapes(strata.twin.build_named('resnet20'))))")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(strata.__file__)))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 100


@pytest.mark.skipif(not os.environ.get("STRATA_TEST_INSTALLED"), reason="only after `pip install ./python` (CI)")
def test_installed_copy_is_tested():
    import strata_ray
    source = os.path.join(REPO, "python")
    for module in (strata, strata_ray):
        assert not os.path.abspath(module.__file__).startswith(source + os.sep), module.__file__
    from importlib.metadata import distribution
    files = {str(f) for f in distribution("strata-results").files}
    assert "strata/twin.py" in files and "strata_ray/driver.py" in files


def test_twin_builds_from_specs_and_refuses_partial_models():
    from strata import twin
    shapes = twin.state_dict_shapes(twin.build({"family": "cnn", "cnn": {"filters": [4, 6], "hidden": [8]}}))
    assert shapes["features.3.weight"] == (6, 4, 3, 3) and shapes["classifier.0.weight"] == (8, 6 * 8 * 8)
    shapes = twin.state_dict_shapes(twin.build_named("resnet20"))
    assert shapes["layer3.2.bn2.num_batches_tracked"] == () and shapes["fc.weight"] == (10, 64)
    assert not any("downsample" in k for k in shapes)  # option A: no projection
    with pytest.raises(ValueError, match="partly grown"):
        twin.build({"family": "cnn", "cnn": {"filters": [4, 4]}, "activeStages": 1})
    with pytest.raises(ValueError, match="unknown family"):
        twin.build({"family": "mlp"})
    assert twin.shape_mismatches({"a": (1,), "b": (2,)}, {"b": (3,), "c": (1,), "optimizer.b.m": (2,)}) == (["a"], ["c"], ["b"])
