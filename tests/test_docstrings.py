"""Every public docstring documents exactly the parameters of its signature.

The public names are those of the package's ``__all__`` lists; for classes,
the constructor's parameters and every public method defined by sklae are
checked. Each public class and function also has an Examples section (which
``pytest --doctest-modules`` runs).
"""

import importlib
import inspect
import pkgutil

import pytest

import sklae

docscrape = pytest.importorskip("numpydoc.docscrape")


def public_modules():
    """sklae and its public submodules (those not starting with an underscore)."""
    modules = [sklae]
    for info in pkgutil.iter_modules(sklae.__path__):
        if not info.name.startswith("_"):
            modules.append(importlib.import_module(f"sklae.{info.name}"))
    return modules


def public_objects():
    seen = {}
    for module in public_modules():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(seen.items())


def public_methods(cls):
    """Public methods whose code is sklae's (inherited ones from scikit-learn are its own)."""
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("_") or not member.__module__.startswith("sklae"):
            continue
        yield f"{cls.__name__}.{name}", member


def signature_parameters(function, skip_self=False):
    names = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            names.append(f"*{parameter.name}")
        elif parameter.kind is parameter.VAR_KEYWORD:
            names.append(f"**{parameter.name}")
        else:
            names.append(parameter.name)
    return names[1:] if skip_self else names


def documented_parameters(doc):
    names = []
    for parameter in doc["Parameters"]:
        # "a, b : int" documents two parameters at once.
        names.extend(name.strip() for name in parameter.name.split(","))
    return names


PUBLIC_OBJECTS = public_objects()
CALLABLES = []
for qualified_name, obj in PUBLIC_OBJECTS:
    if inspect.isclass(obj):
        if "__init__" in vars(obj) or any(
            "__init__" in vars(base) and base.__module__.startswith("sklae")
            for base in obj.__mro__[1:]
        ):
            CALLABLES.append((qualified_name, obj.__init__, obj, True))
        for method_name, method in public_methods(obj):
            CALLABLES.append((f"{obj.__module__}.{method_name}", method, None, True))
    else:
        CALLABLES.append((qualified_name, obj, None, False))


def test_the_public_api_is_found():
    names = {name.rsplit(".", 1)[-1] for name, _ in PUBLIC_OBJECTS}
    assert {
        "AutoencoderTransformer",
        "VariationalAutoencoder",
        "DenoisingAutoencoder",
        "AutoencoderOutlierDetector",
        "TrainingDivergedError",
        "plot_loss_curve",
        "load_mnist_like",
    } <= names


@pytest.mark.parametrize(
    ("name", "function", "documented_by", "is_method"),
    CALLABLES,
    ids=[name for name, *_ in CALLABLES],
)
def test_docstring_documents_exactly_the_signature(name, function, documented_by, is_method):
    # A class documents its constructor's parameters in the class docstring.
    if documented_by is not None:
        doc = docscrape.ClassDoc(documented_by)
    else:
        doc = docscrape.FunctionDoc(function)
    expected = signature_parameters(function, skip_self=is_method)
    documented = documented_parameters(doc)
    assert documented == expected, (
        f"{name}: the docstring documents {documented}, the signature has {expected}"
    )


@pytest.mark.parametrize(("name", "obj"), PUBLIC_OBJECTS, ids=[name for name, _ in PUBLIC_OBJECTS])
def test_public_docstring_has_a_runnable_example(name, obj):
    doc = docscrape.ClassDoc(obj) if inspect.isclass(obj) else docscrape.FunctionDoc(obj)
    examples = "\n".join(doc["Examples"])
    assert ">>>" in examples, f"{name} has no Examples section with doctest lines"
