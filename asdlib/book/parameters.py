"""A page's parameters and the run they name.

The build decides the profile and the data for every page at once: ``make book PROFILE=paper
DATA_ROOT=~/mimii`` sets the environment variables :data:`PROFILE_ENV` and :data:`DATA_ROOT_ENV`,
which a page's ``profile = None`` and ``data_root = None`` defer to. Papermill passes ``-p machines
'["fan"]'`` as a string; list parameters accept JSON or YAML text. :func:`load_run` turns a page's
parameters into a spec and a finished results store (running or resuming the grid when needed).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..experiments import ExperimentSpec, default_results_dir, spec_from_parameters


PROFILE_ENV = "ASDLIB_PROFILE"


DATA_ROOT_ENV = "ASDLIB_DATA_ROOT"


DEFAULT_PROFILE = "book"


LIST_PARAMETERS = ("machines", "mic_pairs", "alphas", "seeds", "models", "pairs")


def build_profile(profile: str | None = None) -> str:
    """``profile`` if given, else ``$ASDLIB_PROFILE``, else ``"book"``."""
    return profile or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE


def build_data_root(data_root: str | None = None) -> str | None:
    """``data_root`` if given, else ``$ASDLIB_DATA_ROOT`` (empty: the simulator), else None."""
    value = data_root if data_root is not None else os.environ.get(DATA_ROOT_ENV) or None
    return str(Path(value).expanduser()) if value else None


def parse_list(value: Any, name: str = "parameter") -> list | None:
    """A list parameter as given by Python, or as the JSON/YAML text papermill passes (``'["fan"]'``).

    A bare word (``fan``) or comma-separated words (``fan,valve``) become a list of words.

    Raises
    ------
    ValueError
        The text is not a list (nor words), naming the parameter.
    """
    if value is None or isinstance(value, (list, tuple)):
        return None if value is None else list(value)
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ValueError(f"{name}={value!r} is not a list; write it as JSON, e.g. '[\"fan\", \"valve\"]' ({err})") from None
        if isinstance(parsed, list):
            return parsed
        if isinstance(parsed, str):
            return [w.strip() for w in parsed.split(",") if w.strip()]
        if isinstance(parsed, (int, float)):
            return [parsed]
    raise ValueError(f"{name}={value!r} is not a list; write it as JSON, e.g. '[\"fan\", \"valve\"]'")


def parse_overrides(overrides: Any) -> dict:
    """A page's ``overrides`` parameter as a dict: a dict, None, or the JSON/YAML text papermill's ``-p`` passes.

    Raises
    ------
    ValueError
        The text is not a mapping of spec fields.
    """
    if overrides is None:
        return {}
    if isinstance(overrides, str):
        try:
            overrides = yaml.safe_load(overrides) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"overrides={overrides!r} is not a mapping; write it as JSON, e.g. '{{\"n_train\": 50}}' ({err})") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"overrides={overrides!r} is not a mapping of spec fields; e.g. '{{\"n_train\": 50}}'")
    return dict(overrides)


def merge_parameters(overrides: Any = None, **named: Any) -> dict:
    """A page's named parameters over its ``overrides``: None values dropped (they keep the profile's).

    ``merge_parameters('{"n_train": 3}', machines=["fan"], epochs=None) == {"n_train": 3, "machines": ["fan"]}``.
    """
    return {**parse_overrides(overrides), **{k: v for k, v in named.items() if v is not None}}


def make_spec(profile: str | None = None, data_root: str | None = None, overrides: Any = None, **parameters: Any) -> ExperimentSpec:
    """The spec a page's parameters describe: named parameters (None keeps the profile's value) over
    ``overrides`` (any other spec field; a dict or its JSON text)."""
    parameters = merge_parameters(overrides, **parameters)
    for key in LIST_PARAMETERS:
        if key in parameters:
            parameters[key] = parse_list(parameters[key], key)
    if parameters.get("device") is None:
        parameters.pop("device", None)
    return spec_from_parameters(build_profile(profile), data_root=build_data_root(data_root), **parameters)


def page_machine(machine: str | None, spec: ExperimentSpec) -> str:
    """The machine type a data page shows: its ``machine`` parameter, or the first of ``spec.machines``
    when that is None.

    Raises
    ------
    ValueError
        ``machine`` is not among the spec's machine types, in one line naming both parameters and the fix.
    """
    if machine is None:
        return spec.machines[0]
    if machine not in spec.machines:
        raise ValueError(f"machine={machine!r} is not among machines {list(spec.machines)}: the page shows a clip of one of "
                         f"them; choose one, e.g. -p machine {spec.machines[0]}, or add {machine} to machines")
    return machine


def load_run(profile: str | None = None, data_root: str | None = None, results_dir: str | Path | None = None,
             overrides: Any = None, progress: bool = False, **parameters: Any):
    """The spec of a page's parameters and its finished results store.

    Runs (or resumes) the grid when some cell is missing; a build that ran the experiment first finds
    every cell done and returns at once.

    Returns
    -------
    spec : ExperimentSpec
    store : asdlib.results.ResultsStore
    """
    from ..runner import run_experiment

    spec = make_spec(profile, data_root, overrides, **parameters)
    store = run_experiment(spec, results_dir or default_results_dir(), progress=progress)
    return spec, store
