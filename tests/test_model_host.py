"""autograder.model_host: student models are admitted from their config, then built elsewhere.

The in-process `LocalModelHost` runs the same host code (model_side) as the sandboxed
one; tests/test_hostile.py grades models that attack the grader's memory for real.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from autograder.config import Limits
from autograder.exceptions import AutograderError, BridgeError, UnsafeModel
from autograder.model_host import LocalModelHost, StudentModel, admit
from autograder.modelspec import ModelSpec
from autograder.sandbox import capabilities


@pytest.fixture(scope="module")
def keras():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    return pytest.importorskip("keras")


@pytest.fixture
def host():
    h = LocalModelHost()
    yield h
    h.close()


def _sequential(keras, *layers, shape=(4,)):
    return keras.Sequential([keras.Input(shape=shape), *layers])


def _saved(tmp_path, model, name="m.keras"):
    path = tmp_path / name
    model.save(path)
    return path


def _archive(tmp_path, config, name="m.keras"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
    return path


@pytest.mark.slow
def test_a_plain_sequential_as_plain_data_and_predictions(tmp_path, keras, host):
    model = _sequential(keras, keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2))
    model.compile(optimizer="adam", loss="mse")
    got = host.model(_saved(tmp_path, model), tmp_path, "loading")
    assert isinstance(got, StudentModel)
    assert [layer.class_name for layer in got.layers] == ["Dense", "Dense"]
    assert got.input_shape == (None, 4) and got.output_shape == (None, 2)
    assert got.count_params() == model.count_params() == 4 * 3 + 3 + 3 * 2 + 2
    assert got.layers[0].config["units"] == 3 and got.layers[0].params == 15
    assert got.compile_config["optimizer"]["class_name"] == "Adam"
    x = np.ones((5, 4), np.float32)
    described = got.spec
    np.testing.assert_allclose(got.predict(x), np.asarray(model(x)), rtol=1e-5)
    assert got.spec is described  # built before the call: not described again


@pytest.mark.slow
def test_shared_models_of_one_architecture_are_loaded_once(tmp_path, keras, host, monkeypatch):
    """`call_model`'s calls that build the same architecture again (by position, then by
    keyword) share one load; a submitted file, or another architecture, never does."""

    def build(units):
        return _sequential(keras, keras.layers.Dense(units), keras.layers.Dense(2))

    loads = []
    real_load = host.load
    monkeypatch.setattr(host, "load", lambda key, *a: loads.append(key) or real_load(key, *a))
    first = host.model(_saved(tmp_path, build(3), "a.keras"), tmp_path, "loading", share=True)
    again = host.model(_saved(tmp_path, build(3), "b.keras"), tmp_path, "loading", share=True)
    other = host.model(_saved(tmp_path, build(5), "c.keras"), tmp_path, "loading", share=True)
    alone = host.model(_saved(tmp_path, build(3), "d.keras"), tmp_path, "loading")
    assert again is first and other is not first and alone is not first
    assert len(loads) == 3
    x = np.ones((1, 4), np.float32)
    assert got_shape(again.predict(x)) == (1, 2)


@pytest.mark.slow
def test_config_digest_is_one_for_an_architecture_built_twice(tmp_path, keras):
    """Keras names a second build's layers `conv2d_2`... (and its optimizer `adam_1`), and
    refers to layers by name."""
    from autograder.modelspec import config_digest, read_config

    def branches(filters):
        x = keras.Input((8, 8, 1))
        a, b = keras.layers.Conv2D(filters, 3)(x), keras.layers.Conv2D(filters, 3)(x)
        return keras.Model(x, keras.layers.Dense(2)(keras.layers.Add()([a, b])))

    def seq(units):  # compiled: the optimizer is numbered too (adam, adam_1)
        inner = _sequential(keras, keras.layers.Dense(units))
        model = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss="mse")
        return model

    def digest(model):
        return config_digest(read_config(_saved(tmp_path, model).read_bytes()))

    assert digest(branches(2)) == digest(branches(2)) != digest(branches(3))
    assert digest(seq(3)) == digest(seq(3)) != digest(seq(4))
    a, b = branches(2), branches(2)  # they differ in their names only
    assert [x.name for x in a.layers] != [x.name for x in b.layers]


def got_shape(y):
    return tuple(np.asarray(y).shape)


@pytest.mark.slow
def test_an_unbuilt_model_builds_on_its_first_prediction(tmp_path, keras, host):
    model = keras.Sequential([keras.layers.Dense(2)])
    got = host.model(_saved(tmp_path, model), tmp_path, "loading")
    with pytest.raises(AutograderError, match="not built"):
        got.count_params()
    assert got.predict(np.ones((1, 3), np.float32)).shape == (1, 2)
    assert got.count_params() == 8


@pytest.mark.slow
def test_nested_models_list_their_layers(tmp_path, keras, host):
    inner = _sequential(keras, keras.layers.Dense(3, name="inner_dense"))
    inputs = keras.Input(shape=(4,))
    outer = keras.Model(inputs, keras.layers.Dense(1, name="top")(inner(inputs)))
    got = host.model(_saved(tmp_path, outer), tmp_path, "loading")
    paths = [layer.path for layer in got.layers]
    assert any(p.endswith("/inner_dense") for p in paths) and "top" in paths


@pytest.mark.slow
def test_a_failing_model_is_a_clear_error(tmp_path, keras, host):
    model = _sequential(keras, keras.layers.Dense(2))
    got = host.model(_saved(tmp_path, model), tmp_path, "loading")
    with pytest.raises(BridgeError, match="running the model"):
        got.predict(np.ones((1, 7), np.float32))


@pytest.mark.slow
def test_lambda_and_custom_layers_are_refused(tmp_path, keras, host):
    lam = _sequential(keras, keras.layers.Lambda(lambda t: t * 2), keras.layers.Dense(1))
    with pytest.raises(UnsafeModel, match="Lambda layer"):
        host.model(_saved(tmp_path, lam, "lambda.keras"), tmp_path, "loading")

    @keras.saving.register_keras_serializable(package="evil")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2

    custom = _sequential(keras, Doubler(), keras.layers.Dense(1))
    with pytest.raises(UnsafeModel, match="Doubler"):
        host.model(_saved(tmp_path, custom, "custom.keras"), tmp_path, "loading")


def test_non_archives_and_links_are_refused(tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UnsafeModel, match="not a valid .keras"):
        admit(bad, tmp_path, Limits())
    noconfig = tmp_path / "noconfig.keras"
    with zipfile.ZipFile(noconfig, "w") as zf:
        zf.writestr("metadata.json", "{}")
    with pytest.raises(UnsafeModel, match="not a valid .keras"):
        admit(noconfig, tmp_path, Limits())
    link = tmp_path / "link.keras"
    link.symlink_to(bad)
    with pytest.raises(BridgeError):
        admit(link, tmp_path, Limits())


def test_an_archive_is_refused_from_its_directory_size_before_zipfile_reads_it(tmp_path):
    """1.4 million directory entries behind a valid config.json cost the grader 580 MB in
    zipfile; a zip64 end record could claim a directory of any size past a small one."""
    many = tmp_path / "many.keras"
    with zipfile.ZipFile(many, "w") as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
        for i in range(2000):
            zf.writestr(f"padding/{i:06d}", b"")
    with pytest.raises(UnsafeModel, match="lists 2,001 files in"):
        admit(many, tmp_path, Limits())
    plain = tmp_path / "plain.keras"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
    data = plain.read_bytes()
    end = data.rfind(b"PK\x05\x06")
    zip64 = tmp_path / "zip64.keras"
    zip64.write_bytes(data[:end] + b"PK\x06\x07" + bytes(16) + data[end:])
    with pytest.raises(UnsafeModel, match="zip64"):
        admit(zip64, tmp_path, Limits())


def test_a_description_of_too_many_layers_is_refused():
    """A model of 4,300 parallel branches cost 5 s of grader CPU in the structure checks."""
    from autograder.modelspec import MAX_LAYERS

    layer = {"name": "d", "class_name": "Dense", "path": "d", "config": {}}
    data = {"class_name": "Functional", "layers": [layer] * (MAX_LAYERS + 1)}
    with pytest.raises(UnsafeModel, match="the model has 1,001 layers"):
        ModelSpec.from_host(data, {})
    assert len(ModelSpec.from_host({**data, "layers": [layer] * MAX_LAYERS}, {}).layers) == 1000


@pytest.mark.parametrize(
    "config, words",
    [
        ({"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda"}]}}, "Lambda"),
        ({"class_name": "TFOpLambda"}, "TFOpLambda"),
        ({"class_name": "Evil", "module": "builtins"}, "builtins.Evil"),
        (
            {"class_name": "Dense", "module": "keras.layers", "registered_name": "my>Evil"},
            "my>Evil",
        ),
        ({"nested": [{"class_name": "X", "module": "os"}]}, "os.X"),
        ({"class_name": "TextClassifier", "module": "keras_hub.models"}, "keras_hub.models"),
        ({"class_name": "function", "module": "builtins", "config": "os.system"}, "builtins"),
        (
            {
                "class_name": "function",
                "module": "builtins",
                "config": "relu",
                "registered_name": "evil>relu",
            },
            "builtins.function",
        ),
    ],
)
def test_config_vetting_before_keras_reads_it(tmp_path, config, words):
    with pytest.raises(UnsafeModel, match=words.replace(">", ".")):
        admit(_archive(tmp_path, config), tmp_path, Limits())


def test_keras_functions_saved_by_name_are_admitted(tmp_path):
    """`compile(loss=keras.losses.sparse_categorical_crossentropy)` is saved as a builtins
    function named in the config; Keras resolves that name in its own modules only."""
    config = _dense_model(10)
    config["compile_config"] = {
        "optimizer": "adam",
        "loss": {
            "module": "builtins",
            "class_name": "function",
            "config": "sparse_categorical_crossentropy",
            "registered_name": "function",
        },
        "metrics": [{"module": "builtins", "class_name": "function", "config": "accuracy"}],
    }
    admit(_archive(tmp_path, config), tmp_path, Limits())


def _dense_model(units: int, inputs: int = 784) -> dict:
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": {"batch_shape": [None, inputs]},
                },
                {"module": "keras.layers", "class_name": "Dense", "config": {"units": units}},
            ]
        },
    }


def test_a_declared_huge_layer_is_refused_before_any_keras_object(tmp_path, monkeypatch):
    """The attack: a rewritten config.json declaring one 1.6-billion-parameter Dense layer."""
    import sys

    monkeypatch.delitem(sys.modules, "keras", raising=False)
    path = _archive(tmp_path, _dense_model(2_000_000))
    with pytest.raises(UnsafeModel, match=r"declares 1,570,000,000 parameters.*'dense'|Dense"):
        admit(path, tmp_path, Limits())
    assert "keras" not in sys.modules  # refused from JSON alone
    admit(_archive(tmp_path, _dense_model(100), "small.keras"), tmp_path, Limits())


def test_a_declared_huge_activation_is_refused(tmp_path):
    config = _dense_model(10)
    config["config"]["layers"].insert(
        1,
        {
            "module": "keras.layers",
            "class_name": "UpSampling1D",
            "config": {"size": 100_000},
        },
    )
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 784, 1]
    with pytest.raises(UnsafeModel, match="outputs 784,000,000 values"):
        admit(_archive(tmp_path, config), tmp_path, Limits())


@pytest.mark.slow
def test_each_layer_names_its_inbound_layers(tmp_path, keras, host):
    """Branches are visible as data: a layer fed by two others names both (Functional),
    a Sequential layer names the one before it; get_config() alone says neither."""
    inputs = keras.Input(shape=(6, 6, 1))
    a = keras.layers.Conv2D(2, 3, name="a")(inputs)
    b = keras.layers.Conv2D(2, 3, name="b")(inputs)
    merged = keras.layers.Concatenate(name="merged")([a, b])
    out = keras.layers.Dense(3, name="out")(keras.layers.Flatten(name="flat")(merged))
    model = host.model(_saved(tmp_path, keras.Model(inputs, out)), tmp_path, "functional")
    inbound = {layer.name: layer.inbound for layer in model.layers}
    assert inbound["a"] == inbound["b"] == (model.layers[0].name,)
    assert inbound["merged"] == ("a", "b")
    assert inbound["flat"] == ("merged",) and inbound["out"] == ("flat",)

    seq = _sequential(keras, keras.layers.Dense(3, name="d1"), keras.layers.Dense(2, name="d2"))
    model = host.model(_saved(tmp_path, seq, "s.keras"), tmp_path, "sequential")
    assert [layer.inbound for layer in model.layers][1] == ("d1",)


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.skipif(not capabilities().isolated, reason="bubblewrap is not usable here")
def test_a_warm_host_forgets_each_submissions_models_and_is_recycled(tmp_path, keras, monkeypatch):
    from autograder import model_host

    monkeypatch.setattr(model_host, "RECYCLE_AFTER", 2)
    env = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    host = model_host.warm_host(Limits(), env, [])
    try:
        assert model_host.warm_host(Limits(), dict(env), []) is host  # one per settings
        model = _sequential(keras, keras.layers.Dense(2))
        first = host.model(_saved(tmp_path, model), tmp_path, "loading")
        assert first.predict(np.ones((1, 4))).shape == (1, 2)
        kernel = host._kernel
        host.reset()  # the first submission is graded
        assert host._kernel is kernel and kernel.is_alive()  # kept warm...
        with pytest.raises(BridgeError, match="already graded"):
            first.predict(np.ones((1, 4)))  # ...but its models are gone
        second = host.model(_saved(tmp_path, model, "n.keras"), tmp_path, "loading")
        assert second.predict(np.ones((3, 4))).shape == (3, 2)
        host.reset()  # RECYCLE_AFTER submissions: a fresh host next time
        assert host._kernel is None and not kernel.is_alive()
    finally:
        model_host.close_warm_hosts()


def _model_zoo(keras):
    """Sequential models as students write them: with an Input, built by `build()`, never
    built, nested in a functional model, and one nested in another Sequential."""
    layers = keras.layers
    with_input = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(6, 3, activation="relu"),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(3, activation="softmax"),
        ]
    )
    built_later = keras.Sequential([layers.Dense(5, activation="relu"), layers.Dense(2)])
    built_later.build((None, 4))
    never_built = keras.Sequential([layers.Dense(5), layers.Dense(2)])
    inner = keras.Sequential([layers.Dense(5, activation="relu"), layers.Dense(3)])
    inputs = keras.Input(shape=(4,))
    functional = keras.Model(inputs, layers.Dense(2)(inner(inputs)))
    outer = keras.Sequential(
        [keras.Input(shape=(4,)), keras.Sequential([layers.Dense(3)]), layers.Dense(2)]
    )
    return {
        "with_input": (with_input, (2, 8, 8, 1)),
        "built_later": (built_later, (2, 4)),
        "never_built": (never_built, None),
        "functional": (functional, (2, 4)),
        "outer": (outer, (2, 4)),
    }


@pytest.mark.slow
def test_the_host_loads_sequentials_as_keras_does(tmp_path, keras, monkeypatch):
    """model_side.load builds each Sequential once instead of once per layer (and reuses
    Keras's skip-sets): same structure, same weights, same outputs as keras's own load."""
    from keras.src.backend.common import global_state

    from autograder import model_side

    zoo = _model_zoo(keras)
    builds = []
    build = keras.Sequential.build
    monkeypatch.setattr(
        keras.Sequential, "build", lambda self, *a: builds.append(1) or build(self, *a)
    )
    path = _saved(tmp_path, zoo["with_input"][0], "counted.keras")
    keras.saving.load_model(path, safe_mode=True, compile=False)
    keras_builds = len(builds)  # Keras 3.15: 6, once per layer added after the Input
    builds.clear()
    model_side.load(str(path))
    assert len(builds) == 1 <= keras_builds
    assert global_state.get_global_attribute("saving_attr_skiplist_Layer") is not None
    monkeypatch.undo()

    rng = np.random.default_rng(0)
    for name, (model, shape) in zoo.items():
        path = _saved(tmp_path, model, f"{name}.keras")
        mine = model_side.load(str(path))
        theirs = keras.saving.load_model(path, safe_mode=True, compile=False)
        assert model_side.describe(mine) == model_side.describe(theirs), name
        assert mine.built == theirs.built, name
        for a, b in zip(mine.get_weights(), theirs.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        if shape is not None:
            x = rng.normal(size=shape).astype("float32")
            np.testing.assert_array_equal(np.asarray(mine(x)), np.asarray(theirs(x)))
    assert keras.Sequential.add.__name__ == "add"  # the class is restored afterwards


def test_a_killed_graders_archive_copies_are_removed_by_the_next_host(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    import tempfile

    from autograder import model_host

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    from autograder.safeio import _host_tag

    left = tmp_path / f"{model_host.STORE_PREFIX}{dead}-{_host_tag()}-abc"
    (left / "archives").mkdir(parents=True)
    (left / "archives" / "k.keras").write_bytes(b"student bytes")
    host = LocalModelHost()
    try:
        assert not left.exists()
        mine = [p.name for p in tmp_path.iterdir()]
        assert len(mine) == 1 and mine[0].startswith(f"{model_host.STORE_PREFIX}{os.getpid()}-")
        assert (tmp_path / mine[0]).stat().st_mode & 0o777 == 0o700
    finally:
        host.close()
    assert list(tmp_path.iterdir()) == []


def _repacked(path, out, config=None, weights=None, extra=None):
    """A copy of the archive at `path`: its config.json text changed by `config(text)`,
    its weights member replaced by `weights` (bytes), members in `extra` added."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "config.json" and config is not None:
                data = config(data.decode()).encode()
            if name == "model.weights.h5" and weights is not None:
                data = weights
            dst.writestr(name, data)
        for name, data in (extra or {}).items():
            dst.writestr(name, data)
    return out


@pytest.mark.slow
def test_a_model_kept_by_its_config_takes_the_next_archives_weights(tmp_path, keras):
    """A built model is kept after its submission, by config, and loaded with the next
    archive's weights: the same description and outputs as a fresh load of that archive."""
    from autograder import model_side

    rng = np.random.default_rng(1)
    zoo = _model_zoo(keras)
    zoo["batch_norm"] = (
        keras.Sequential(
            [
                keras.Input(shape=(6, 6, 2)),
                keras.layers.Conv2D(3, 3),
                keras.layers.BatchNormalization(),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(2, activation="softmax"),
            ]
        ),
        (2, 6, 6, 2),
    )
    for name, (model, shape) in zoo.items():
        first = _saved(tmp_path, model, f"{name}-a.keras")
        model.set_weights([w + rng.random(size=w.shape) for w in model.get_weights()])
        second = _saved(tmp_path, model, f"{name}-b.keras")
        x = None if shape is None else rng.normal(size=shape).astype("float32")
        host = LocalModelHost()
        used = host.model(first, tmp_path, "loading", share=True)
        if x is not None:
            used.predict(x)  # the first submission runs it, then is graded
        host.close()
        kept = [m for models in model_side.IDLE.values() for m, _ in models]
        assert len(kept) == (0 if name == "never_built" else 1), name  # built when loaded
        host = LocalModelHost()
        try:
            got = host.model(second, tmp_path, "loading", share=True)
            if kept:
                assert model_side.MODELS[got.key] is kept[0], name  # taken, not built again
            fresh = keras.saving.load_model(second, safe_mode=True, compile=False)
            expected = ModelSpec.from_host(model_side.describe(fresh), got.spec.compile_config)
            assert got.spec == expected, name
            if x is not None:
                np.testing.assert_allclose(got.predict(x), np.asarray(fresh(x)), rtol=1e-5)
        finally:
            host.close()
        model_side.IDLE.clear()


def _digest(path):
    from autograder.modelspec import config_digest, read_config

    return config_digest(read_config(path.read_bytes()))


@pytest.mark.slow
def test_a_kept_model_takes_the_names_of_the_archive_it_serves(tmp_path, keras):
    """Two kernels number Keras's layer names differently (`conv2d` and `conv2d_7`): the
    same architecture is still one kept model, and it then describes itself, runs and
    fails with the second archive's names, never the first student's."""
    from autograder import model_side

    def build(prefix):
        return keras.Sequential(
            [
                keras.Input(shape=(6, 6, 1), name=f"{prefix}_in"),
                keras.layers.Conv2D(2, 3, name=f"{prefix}_conv"),
                keras.layers.Flatten(name=f"{prefix}_flat"),
                keras.layers.Dense(3, activation="softmax", name=f"{prefix}_out"),
            ],
            name=f"{prefix}_model",
        )

    first = _saved(tmp_path, build("alice"), "alice.keras")
    second = _saved(tmp_path, build("bob"), "bob.keras")
    assert _digest(first) == _digest(second)
    host = LocalModelHost()
    host.model(first, tmp_path, "loading", share=True)
    host.close()
    [(kept, _)] = model_side.IDLE[_digest(first)]
    host = LocalModelHost()
    try:
        got = host.model(second, tmp_path, "loading", share=True)
        assert model_side.MODELS[got.key] is kept
        fresh = keras.saving.load_model(second, safe_mode=True, compile=False)
        assert got.spec == ModelSpec.from_host(model_side.describe(fresh), got.spec.compile_config)
        assert [layer.name for layer in got.layers] == ["bob_conv", "bob_flat", "bob_out"]
        x = np.random.default_rng(0).normal(size=(2, 6, 6, 1)).astype("float32")
        np.testing.assert_allclose(got.predict(x), np.asarray(fresh(x)), rtol=1e-5)
        with pytest.raises(AutograderError) as failed:
            got.predict(np.ones((2, 5, 5, 1), "float32"))
        assert "alice" not in str(failed.value)
    finally:
        host.close()
        model_side.IDLE.clear()


@pytest.mark.slow
def test_a_model_with_state_outside_its_variables_is_never_kept(tmp_path, keras):
    """A stateful RNN carries its last batch's state, which no weights file resets."""
    from autograder import model_side

    model = keras.Sequential(
        [keras.Input(batch_shape=(2, 3, 4)), keras.layers.LSTM(5, stateful=True)]
    )
    host = LocalModelHost()
    got = host.model(_saved(tmp_path, model), tmp_path, "loading", share=True)
    got.predict(np.ones((2, 3, 4)))
    host.close()
    assert model_side.IDLE == {}


@pytest.mark.slow
def test_only_plain_archives_are_kept_and_shared_ids_do_not_split_configs(tmp_path, keras):
    import re

    from autograder import model_side

    model = _sequential(keras, keras.layers.Dense(2))
    path = _saved(tmp_path, model)
    renumbered = _repacked(
        path, tmp_path / "r.keras", lambda t: re.sub(r'("shared_object_id": )\d+', r"\g<1>7", t)
    )
    assert _digest(path) == _digest(renumbered)
    other = _repacked(path, tmp_path / "o.keras", lambda t: t.replace('"units": 2', '"units": 3'))
    assert _digest(other) != _digest(path)
    assets = _repacked(path, tmp_path / "a.keras", extra={"assets/vocabulary.txt": "a\nb\n"})
    assert model_side._plain(str(path)) and not model_side._plain(str(assets))
    host = LocalModelHost()
    host.model(assets, tmp_path, "loading", share=True)
    host.close()
    assert model_side.IDLE == {}  # built, but the archive held more than config and weights


@pytest.mark.slow
def test_weights_a_kept_model_refuses_are_the_archives_own_error(tmp_path, keras):
    """Same config, weights of another shape: one kept model is dropped (the archive is at
    fault, not the others), and the archive is loaded in full, which fails as it would have
    without keeping. So does a weights member larger than the model's parameters need."""
    from autograder import model_side

    model = _sequential(keras, keras.layers.Dense(2, name="out"))
    good = _saved(tmp_path, model, "good.keras")
    wider = _saved(tmp_path, _sequential(keras, keras.layers.Dense(3, name="out")), "w.keras")

    with zipfile.ZipFile(wider) as src:
        bad = _repacked(good, tmp_path / "bad.keras", weights=src.read("model.weights.h5"))
    huge = _repacked(good, tmp_path / "huge.keras", weights=b"\0" * (2 << 20))
    hosts = [LocalModelHost(), LocalModelHost()]
    for host in hosts:
        host.model(good, tmp_path, "loading", share=True)
    for host in hosts:
        host.close()
    assert len(model_side.IDLE[_digest(good)]) == 2
    for archive, left in ((bad, 1), (huge, 0)):
        host = LocalModelHost()
        try:
            with pytest.raises(UnsafeModel, match="cannot be loaded"):
                host.model(archive, tmp_path, "loading", share=True)
            assert sum(map(len, model_side.IDLE.values())) == left
        finally:
            host.close()


def test_models_kept_idle_are_capped(monkeypatch):
    from autograder import model_side

    class Fake:
        def __init__(self, params):
            self.params = params

        def count_params(self):
            return self.params

    for name in ("IDLE", "MODELS", "REUSABLE"):
        monkeypatch.setattr(model_side, name, {})
    monkeypatch.setattr(model_side, "IDLE_PARAMS", 100)
    monkeypatch.setattr(model_side, "IDLE_MODELS", 3)
    for key, params in enumerate([60, 50, 30, 5, 5]):
        model_side.MODELS[f"k{key}"], model_side.REUSABLE[f"k{key}"] = Fake(params), ("d", [])
        model_side.release(f"k{key}")
    # 60 + 50 > 100: the oldest goes; then 4 models > 3: the oldest again
    assert [m.params for m, _ in model_side.IDLE["d"]] == [30, 5, 5]
    model_side.MODELS["k9"], model_side.REUSABLE["k9"] = Fake(20), ("e", [])
    model_side.release("k9")  # another config: the least recently kept digest gives way
    assert [m.params for m, _ in model_side.IDLE["d"]] == [5, 5]
    assert list(model_side.IDLE) == ["d", "e"]
    model_side.MODELS["k8"], model_side.REUSABLE["k8"] = Fake(101), ("f", [])
    model_side.release("k8")  # over the cap on its own: not kept
    assert "f" not in model_side.IDLE
    model_side.IDLE.clear()


# -- the bridge's plain form (kernel_side.save_model): config.json + weights.npz


def _plain_saved(tmp_path, model, name):
    from autograder import kernel_side

    path = tmp_path / name
    kernel_side.save_model(model, str(path))
    return path


def _plain_zoo(keras):
    """The zoo, with what the plain form must keep apart: two branches of one shape (their
    weights differ only by order), batch statistics, and a Sequential built by a call."""
    layers = keras.layers
    zoo = _model_zoo(keras)
    inputs = keras.Input(shape=(5,))
    left, right = layers.Dense(3, name="left")(inputs), layers.Dense(3, name="right")(inputs)
    zoo["branches"] = (keras.Model(inputs, layers.Add()([left, right])), (2, 5))
    zoo["batch_norm"] = (
        keras.Sequential(
            [
                keras.Input(shape=(6, 6, 2)),
                layers.Conv2D(3, 3),
                layers.BatchNormalization(),
                layers.GlobalAveragePooling2D(),
                layers.Dense(2, activation="softmax"),
            ]
        ),
        (2, 6, 6, 2),
    )
    called = keras.Sequential([layers.Dense(4), layers.Dense(2)])
    called(np.ones((1, 3), "float32"))
    zoo["called"] = (called, (2, 3))
    return zoo


@pytest.mark.slow
def test_the_plain_form_is_the_model_keras_would_load(tmp_path, keras, host):
    """Every model of the zoo travels in the plain form and comes back, in the host, as
    Keras's own load of its .keras file: same description, weights and outputs."""
    from autograder import kernel_side, model_side

    rng = np.random.default_rng(2)
    for name, (model, shape) in _plain_zoo(keras).items():
        weights = model.get_weights()  # moving statistics too: not the initial values
        model.set_weights([w + rng.random(size=w.shape).astype(w.dtype) for w in weights])
        plain = _plain_saved(tmp_path, model, f"{name}.plain")
        with zipfile.ZipFile(plain) as archive:
            assert sorted(archive.namelist()) == ["config.json", "weights.npz"], name
        assert model_side._plain(str(plain)), name
        theirs = keras.saving.load_model(
            _saved(tmp_path, model, f"{name}.keras"), safe_mode=True, compile=False
        )
        mine = model_side.load(str(plain))
        assert model_side.describe(mine) == model_side.describe(theirs), name
        for a, b in zip(mine.get_weights(), theirs.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        got = host.model(plain, tmp_path, "loading")
        if shape is not None:
            assert got.count_params() == model.count_params(), name
            x = rng.normal(size=shape).astype("float32")
            np.testing.assert_allclose(got.predict(x), np.asarray(theirs(x)), rtol=1e-5)
    assert kernel_side.STATE_IN_VARIABLES >= {"Conv2D", "Dense", "BatchNormalization"}


@pytest.mark.slow
def test_a_fresh_draw_travels_as_its_config_alone(tmp_path, keras, host):
    """`call_model`'s models leave their weights behind: the host builds each from its
    config alone, with its own draw, and describes it as Keras's own load of the full
    archive; a model that cannot travel plain still goes as a .keras file, weights and all."""
    from autograder import kernel_side, model_side

    rng = np.random.default_rng(4)
    for name, (model, shape) in _plain_zoo(keras).items():
        path = tmp_path / f"{name}.fresh"
        kernel_side.save_model(model, str(path), weights=False)
        with zipfile.ZipFile(path) as archive:
            assert archive.namelist() == ["config.json"], name
        assert model_side._plain(str(path)), name
        theirs = keras.saving.load_model(
            _saved(tmp_path, model, f"{name}.keras"), safe_mode=True, compile=False
        )
        assert model_side.describe(model_side.load(str(path))) == model_side.describe(theirs)
        got = host.model(path, tmp_path, "loading", share=True)
        if shape is not None:
            assert got.count_params() == model.count_params(), name
            y = got.predict(rng.normal(size=shape).astype("float32"))
            assert y.shape == np.asarray(theirs(np.zeros(shape, "float32"))).shape, name
            assert np.isfinite(y).all(), name
    rnn = keras.Sequential(
        [keras.Input(batch_shape=(2, 3, 4)), keras.layers.LSTM(5, stateful=True)]
    )
    kernel_side.save_model(rnn, str(tmp_path / "rnn.keras"), weights=False)
    with zipfile.ZipFile(tmp_path / "rnn.keras") as archive:
        assert "model.weights.h5" in archive.namelist()


@pytest.mark.slow
def test_a_kept_model_serves_a_fresh_draw_as_it_is(tmp_path, keras):
    """A config-only archive takes a kept model of its config without touching its
    weights: the next draw is as random as the last."""
    from autograder import kernel_side, model_side

    model, shape = _plain_zoo(keras)["batch_norm"]
    first = tmp_path / "first.fresh"
    kernel_side.save_model(model, str(first), weights=False)
    host = LocalModelHost()
    x = np.random.default_rng(5).normal(size=shape).astype("float32")
    before = host.model(first, tmp_path, "loading", share=True).predict(x)
    host.close()
    [(kept, _)] = model_side.IDLE[_digest(first)]
    second = tmp_path / "second.fresh"
    kernel_side.save_model(model, str(second), weights=False)
    assert _digest(second) == _digest(first)
    host = LocalModelHost()
    try:
        got = host.model(second, tmp_path, "loading", share=True)
        assert model_side.MODELS[got.key] is kept
        np.testing.assert_array_equal(got.predict(x), before)
    finally:
        host.close()
        model_side.IDLE.clear()


@pytest.mark.slow
def test_a_handed_in_model_is_never_kept(tmp_path, keras):
    """Only fresh draws (`share`) are kept: no kept model holds weights a student gave."""
    from autograder import model_side

    model, _ = _plain_zoo(keras)["batch_norm"]
    host = LocalModelHost()
    host.model(_plain_saved(tmp_path, model, "trained.keras"), tmp_path, "loading")
    host.model(_saved(tmp_path, model, "trained2.keras"), tmp_path, "loading")
    host.close()
    assert model_side.IDLE == {}


@pytest.mark.slow
def test_a_model_with_state_beyond_its_variables_travels_as_a_keras_file(tmp_path, keras):
    from autograder import kernel_side

    model = keras.Sequential(
        [keras.Input(batch_shape=(2, 3, 4)), keras.layers.LSTM(5, stateful=True)]
    )
    assert not kernel_side.state_in_variables(model)
    with zipfile.ZipFile(_plain_saved(tmp_path, model, "rnn.keras")) as archive:
        assert "model.weights.h5" in archive.namelist()


def _npy(array_or_header: np.ndarray | bytes) -> bytes:
    if isinstance(array_or_header, bytes):
        return array_or_header
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array_or_header, allow_pickle=True)
    return buffer.getvalue()


def _with_weights(path, out, arrays: dict):
    """The plain archive at `path` with its weights.npz holding `arrays` (name -> array or
    raw .npy bytes) instead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as npz:
        for name, value in arrays.items():
            npz.writestr(name, _npy(value))
    return _repacked_member(path, out, "weights.npz", buffer.getvalue())


def _repacked_member(path, out, member, data):
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, data if name == member else src.read(name))
    return out


@pytest.mark.slow
def test_crafted_plain_weights_are_refused(tmp_path, keras):
    """The weights of a plain archive are the student's bytes: each array must be one of
    the model's variables, of its shape and of plain numbers, and no bigger than that,
    whatever its header or the archive claims."""
    model = _sequential(keras, keras.layers.Dense(3), keras.layers.Dense(2))  # 4 variables
    good = _plain_saved(tmp_path, model, "good.plain")
    weights = {f"w{i}.npy": w for i, w in enumerate(model.get_weights())}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, np.lib.format.header_data_from_array_1_0(np.zeros((4, 3), "float32"))
    )
    short = header.getvalue() + b"\0" * 8  # declares 48 bytes, holds 8
    cases = {
        "missing": {k: v for k, v in weights.items() if k != "w3.npy"},
        "extra": {**weights, "w4.npy": np.zeros(2, "float32")},
        "renamed": {
            **{k: v for k, v in weights.items() if k != "w0.npy"},
            "x.npy": weights["w0.npy"],
        },
        "shape": {**weights, "w0.npy": np.zeros((3, 4), "float32")},
        "objects": {**weights, "w1.npy": np.array([1, "a", None], dtype=object)},
        "strings": {**weights, "w1.npy": np.array(["a", "b", "c"])},
        "short": {**weights, "w0.npy": short},
        "header_only": {**weights, "w0.npy": short[: len(header.getvalue())]},
    }
    for name, arrays in cases.items():
        bad = _with_weights(good, tmp_path / f"{name}.plain", arrays)
        host = LocalModelHost()
        try:
            with pytest.raises(UnsafeModel, match="cannot be loaded"):
                host.model(bad, tmp_path, "loading")
        finally:
            host.close()
    oversize = _repacked_member(good, tmp_path / "oversize.plain", "weights.npz", b"\0" * (2 << 20))
    host = LocalModelHost()
    try:
        with pytest.raises(UnsafeModel, match="cannot be loaded"):
            host.model(oversize, tmp_path, "loading")
        host.model(good, tmp_path, "loading")  # and the untouched one loads
    finally:
        host.close()


@pytest.mark.slow
def test_a_kept_model_takes_plain_weights_and_refuses_crafted_ones(tmp_path, keras):
    """The common path in a batch: a model kept from one submission's plain archive takes
    the next plain archive's weights (same outputs as Keras's own load of that model);
    weights of another shape drop the kept model and fail as a fresh load would."""
    from autograder import model_side

    rng = np.random.default_rng(3)
    model, shape = _plain_zoo(keras)["batch_norm"]
    first = _plain_saved(tmp_path, model, "first.keras")
    host = LocalModelHost()
    host.model(first, tmp_path, "loading", share=True)
    host.close()
    [(kept, _)] = model_side.IDLE[_digest(first)]
    model.set_weights([w + rng.random(size=w.shape).astype(w.dtype) for w in model.get_weights()])
    second = _plain_saved(tmp_path, model, "second.keras")
    x = rng.normal(size=shape).astype("float32")
    host = LocalModelHost()
    try:
        got = host.model(second, tmp_path, "loading", share=True)
        assert model_side.MODELS[got.key] is kept
        np.testing.assert_allclose(got.predict(x), np.asarray(model(x)), rtol=1e-5)
    finally:
        host.close()
    weights = {f"w{i}.npy": w for i, w in enumerate(model.get_weights())}
    wrong = _with_weights(second, tmp_path / "wrong.keras", {**weights, "w0.npy": np.zeros(3)})
    host = LocalModelHost()
    try:
        with pytest.raises(UnsafeModel, match="cannot be loaded"):
            host.model(wrong, tmp_path, "loading", share=True)
        assert model_side.IDLE == {}
    finally:
        host.close()
