"""The examples run and show what they claim."""

import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_perceptron_learns_and_or_but_not_xor(capsys):
    results = load("perceptron").main()
    assert results["AND"] == 1.0 and results["OR"] == 1.0
    assert results["XOR"] <= 0.75  # no line separates XOR
    assert "XOR" in capsys.readouterr().out


def test_xor_mlp_solves_xor():
    accuracy, loss = load("xor_mlp").main(steps=1500)
    assert accuracy == 1.0
    assert loss < 0.05
