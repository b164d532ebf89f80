"""Every public name of lamproof, lamproof.strategies and lamproof.claims states its contract and
shows a doctest (run by `pytest --doctest-modules lamproof` in .ci/run)."""

import doctest
import importlib
import inspect

import pytest

MODULES = ("lamproof", "lamproof.strategies", "lamproof.claims")
FINDER = doctest.DocTestFinder(recurse=False)


def _examples(obj, name: str) -> list:
    return [t for t in FINDER.find(obj, name) if t.examples]


def _public():
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            yield module, name


@pytest.mark.parametrize("module, name", list(_public()), ids=lambda x: getattr(x, "__name__", x))
def test_public_name_has_a_docstring_and_a_doctest(module, name):
    obj = getattr(module, name)
    if inspect.isfunction(obj) or inspect.isclass(obj):
        assert len(inspect.getdoc(obj) or "") > 40, f"{module.__name__}.{name}: no contract in its docstring"
        assert _examples(obj, name), f"{module.__name__}.{name}: no doctest"
    else:  # a constant: documented and shown in its module's docstring
        shown = " ".join(e.source for t in _examples(module, module.__name__) for e in t.examples)
        assert name in shown, f"{module.__name__}.{name}: not shown in the module's doctest"
