import pytest

from hypertui.engine.core.config import (
    DEFAULT_FEATURES,
    Config,
    ConfigError,
    make_config,
    parse_value,
)
from hypertui.engine.data.sources import checked_config


def test_defaults_follow_the_problem():
    house = make_config()
    mnist = make_config(problem="mnist")
    assert (house.loss, house.model, house.batch_size) == ("mse", "mlp", 10)
    assert (mnist.loss, mnist.model, mnist.optimizer) == ("cross_entropy", "cnn", "adam")
    assert house.features == DEFAULT_FEATURES and house.target_scale == 1e5


def test_config_is_frozen_and_lists_become_tuples():
    c = Config(hidden=[10, 10])
    assert c.hidden == (10, 10)
    with pytest.raises(AttributeError):
        c.lr = 1.0  # type: ignore[misc]
    assert c.to_dict()["hidden"] == [10, 10]


def test_unknown_key_names_it_and_suggests_the_nearest():
    with pytest.raises(ConfigError, match=r"unknown config key 'lrate'.*did you mean 'lr'"):
        make_config(lrate=0.1)
    with pytest.raises(ConfigError, match="did you mean 'batch_size'"):
        make_config({"batchsize": 4})


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("problem", "cifar", "problem = 'cifar'"),
        ("model", "rnn", "mlp | cnn"),
        ("hidden", [10, 0], "positive ints"),
        ("hidden", "10", "positive ints"),
        ("channels", [], "at least one block"),
        ("activation", "rleu", "did you mean 'relu'"),
        ("loss", "mae", "allowed"),
        ("optimizer", "adamm", "did you mean 'adam'"),
        ("lr", 0.0, r"a float in \(0, 1e\+06\]"),
        ("lr", -1.0, r"a float in \(0, 1e\+06\]"),
        ("lr", float("nan"), r"a float in \(0, 1e\+06\]"),
        ("lr", 1e308, r"a float in \(0, 1e\+06\]"),
        ("seed", 2**32, r"an int in \[0, 4294967295\]"),
        ("seed", -1, r"an int in \[0, 4294967295\]"),
        ("lr", "fast", "not a number"),
        ("momentum", 1.0, r"\[0, 1\)"),
        ("weight_decay", -0.1, ">= 0"),
        ("batch_size", 0, ">= 1"),
        ("batch_size", 2.5, "not an integer"),
        ("batch_size", True, "not an integer"),
        ("epochs", 0, ">= 1"),
        ("time_budget_s", 0, "> 0, or none"),
        ("train_samples", 0, ">= 1"),
        ("seed", "one", "not an integer"),
        ("device", "gpu", "auto | cpu | cuda"),
        ("features", [], "non-empty"),
        ("features", ["Gr Liv Area", "Gr Liv Area"], "listed twice"),
        ("target_scale", 0, "> 0"),
    ],
)
def test_bad_values_name_field_value_and_what_is_allowed(field, value, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        make_config({field: value})
    assert field in str(err.value)


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"model": "cnn"}, "needs problem = 'mnist'"),
        ({"problem": "mnist", "loss": "gaussian_nll"}, "does not fit problem = 'mnist'"),
        ({"loss": "cross_entropy"}, "does not fit problem = 'house'"),
        ({"features": ["Gr Liv Areaa"]}, "did you mean 'Gr Liv Area'"),
        ({"features": ["Neighborhood"]}, "not a numeric column"),
        ({"features": ["SalePrice"]}, "is the target"),
        ({"optimizer": "adam", "momentum": 0.9}, "only applies to sgd and rmsprop"),
        ({"problem": "mnist", "channels": [8, 8, 8, 8, 8]}, "at most 4 blocks"),
    ],
)
def test_impossible_combinations_are_refused(values, fragment):
    with pytest.raises(ConfigError, match=fragment):
        checked_config(values)  # make_config, then the data checks (house features)


def test_other_numeric_features_are_accepted():
    c = make_config(features=["Lot Area", "Year Built"])
    assert c.features == ("Lot Area", "Year Built")


@pytest.mark.parametrize(
    "key, text, expected",
    [
        ("lr", "0.01", 0.01),
        ("lr", "1e-3", 0.001),
        ("batch_size", "64", 64),
        ("hidden", "10-10-10-10", (10, 10, 10, 10)),
        ("hidden", "[10, 20]", (10, 20)),
        ("hidden", "[]", ()),
        ("activation", "tanh", "tanh"),
        ("activation", '"tanh"', "tanh"),
        ("time_budget_s", "none", None),
        ("time_budget_s", "30", 30.0),
        ("features", "Lot Area, Year Built", ("Lot Area", "Year Built")),
        ("device", "cuda:1", "cuda:1"),
    ],
)
def test_parse_value_reads_command_line_text(key, text, expected):
    assert parse_value(key, text) == expected


def test_parse_value_validates_like_presets():
    with pytest.raises(ConfigError, match="batch_size = 'ten'"):
        parse_value("batch_size", "ten")
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        parse_value("epoch", "3")


def test_the_hidden_field_documents_the_spelling_that_works():
    from hypertui.engine.core.config import field_docs, parse_value

    doc = field_docs()["hidden"]
    assert "[] is a linear model" in doc and "()" not in doc
    assert parse_value("hidden", "[]") == () == parse_value("hidden", "()")


def test_configs_built_per_seed_equal_configs_built_alone():
    from hypertui.engine.core.config import make_configs

    stored = [make_config(lr=lr, seed=s, hidden=[4]).to_dict() for lr in (0.1, 0.2) for s in (0, 7)]
    assert make_configs(stored) == [make_config(v) for v in stored]
    with pytest.raises(ConfigError, match="seed"):
        make_config().with_seed(-1)  # the seed alone is still checked
    with pytest.raises(ConfigError, match="seed"):
        make_configs([{"seed": 0}, {"seed": 2**40}])
