"""The manual and the README cannot rot: the site builds with warnings as errors, and every
``bash`` and ``python`` block is run or checked, or says on the line before it why not.

How each command of a block is checked (docs/how-to/contribute.md says the same to writers):

- ``python -m experiments ...``: its overrides composed with Hydra (every value of a sweep)
  and validated as a run would be, without training;
- ``python -m experiments.study ...``: each command the study would start, checked the same way;
- ``python -m experiments.compare|predict|explain ...`` and any ``--help``: run in this
  process against one small store trained once for this file;
- ``pip install -e ".[extras]"``: the extras exist; ``sphinx-build``: the options built with here;
- Python blocks: run in the folder of that store;
- ``<!-- not run: <reason> -->`` before a block: skipped, with its reason;
  ``<!-- same as: <path> -->``: the file must still hold the block's text.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import tomllib
from helpers import in_process

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)]
BUILD = ["-W", "--keep-going", "docs", "docs/_build/html"]  # as the README and the manual say
RUN = {"bash", "sh", "shell", "python"}
MARKER = re.compile(r"^<!-- (not run|same as): (.+) -->$")
PLACEHOLDERS = {"path/to/images": "data/shapes", "my_images": "data/shapes"}
STORE_RUN = [  # the small store's one run: the tutorial's dataset, shrunk
    "dataset=shapes",
    "dataset.image_size=32",
    "dataset.per_class=8",
    "trainer.epochs=1",
    "trainer.verbose=0",
    "cost=quick",
    "interpretation=off",
    "mlflow.samples=4",
]


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, from 1
    lang: str
    text: str
    marker: tuple[str, str] | None

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with the marker on the line before each."""
    found, lines, i = [], page.read_text().splitlines(), 0
    while i < len(lines):
        opening = re.match(r"^(```+|~~~+)\s*([^\s`]*)", lines[i])
        if not opening:
            i += 1
            continue
        fence, start = opening.group(1), i
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            i += 1
        before = next((line for line in reversed(lines[:start]) if line.strip()), "")
        marker = MARKER.match(before.strip())
        text = "\n".join(lines[start + 1 : i])
        found.append(Block(page, start + 1, opening.group(2), text, marker and marker.groups()))
        i += 1
    return found


ALL = [block for page in PAGES for block in blocks(page)]
CHECKED = [b for b in ALL if b.lang in RUN and b.marker is None]
SKIPPED = [b for b in ALL if b.lang in RUN and b.marker and b.marker[0] == "not run"]
SAME_AS = [b for b in ALL if b.marker and b.marker[0] == "same as"]


def commands(text: str) -> list[list[str]]:
    """The commands of a shell block: lines joined at ``\\``, comments dropped, split at
    ``&&``, ``;`` and ``|``."""
    joined = re.sub(r"\\\n\s*", " ", text)
    result = []
    for line in joined.splitlines():
        argv: list[str] = []
        for token in shlex.split(line, comments=True):
            if token in ("&&", ";", "|"):
                result.append(argv)
                argv = []
            else:
                argv.append(token)
        result.append(argv)
    return [argv for argv in result if argv]


# --- how each kind of command is checked ---------------------------------------------------


def check_app(args: list[str]) -> None:
    """Compose ``python -m experiments args`` as Hydra would, each sweep value, and validate."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from experiments.tracking import sweeps
    from experiments.training import settings

    overrides, skip = [], False
    for arg in args:
        if skip or arg in ("-m", "--multirun", "--help", "--resolve"):
            skip = False
            continue
        skip = arg in ("--cfg", "--package")
        if not skip:
            overrides.append(arg)
    parsed = OverridesParser.create().parse_overrides(overrides)
    first = {o.input_line: _sweep_values(o)[0] for o in parsed}
    swept = {o.key_or_group for o in parsed if o.is_sweep_override() and "." not in o.key_or_group}
    variants = [dict(first)]
    for o in parsed:
        variants += [{**first, o.input_line: value} for value in _sweep_values(o)[1:]]
    for variant in variants:
        line = list(variant.values())
        with initialize_config_dir(config_dir=str(settings.schema.CONF_DIR), version_base="1.3"):
            cfg = compose("config", line, return_hydra_config=True)
        with mock.patch.object(sweeps, "swept_groups", lambda: swept):
            settings.validate(cfg)


def _sweep_values(override) -> list[str]:
    key = override.get_key_element()
    if not override.is_sweep_override():
        return [override.input_line]
    return [f"{key}={value}" for value in override.sweep_string_iterator()]


def check_study(args: list[str]) -> None:
    from experiments.commands import study

    for command in study.commands(args, animals_present=False, stamp="docs"):
        module, rest = command[2], command[3:]
        if module == "experiments":
            check_app(rest)
        else:
            from experiments.commands.cli_args import parse
            from experiments.commands.compare import CompareArgs

            parse(rest, CompareArgs, module)


def check_extras(spec: str) -> None:
    extras = re.fullmatch(r"\.\[([a-z,]+)\]", spec)
    assert extras, f"pip install -e {spec}: expected .[extra,...]"
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for extra in extras.group(1).split(","):
        assert extra in declared["optional-dependencies"], f"no extra {extra!r} in pyproject.toml"


def check_markers(args: list[str]) -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    markers = {line.split(":")[0] for line in declared["ini_options"]["markers"]}
    for flag, expression in zip(args, args[1:], strict=False):
        if flag == "-m":
            names = set(re.findall(r"[a-z_]+", expression)) - {"not", "and", "or"}
            assert names <= markers, f"pytest -m {expression!r}: no marker {names - markers}"


def run_command(module: str, args: list[str], store: dict) -> None:
    """``python -m module args`` in this process, in the small store's folder."""
    import importlib

    main = importlib.import_module(f"experiments.commands.{module.split('.', 1)[1]}").main
    args = [_substitute(arg, store) for arg in args]
    env = {"MLFLOW_TRACKING_URI": store["uri"]}
    result = in_process(main, *args, cwd=store["folder"], env=env)
    assert result.returncode == 0, (result.stdout[-1500:], result.stderr[-1500:])


def _substitute(arg: str, store: dict) -> str:
    for placeholder, value in {**PLACEHOLDERS, **store["placeholders"]}.items():
        arg = arg.replace(placeholder, value)
    assert "<" not in arg, f"{arg}: a placeholder this test does not know"
    return arg


def check(argv: list[str], store: dict) -> None:
    if argv[0] in ("python", "python3") and argv[1:2] == ["-m"]:
        module, args = argv[2], argv[3:]
    elif argv[0] == "experiments":
        module, args = "experiments", argv[1:]
    else:
        module, args = None, argv
    if module == "experiments":
        check_app([_substitute(arg, {"placeholders": {"<run_id>": "0" * 32}}) for arg in args])
    elif module == "experiments.study":
        check_study(args)
    elif module and module.startswith("experiments.") and "--help" in args:
        run_command(module, ["--help"], store)
    elif module in ("experiments.compare", "experiments.predict", "experiments.explain"):
        run_command(module, args, store)
    elif argv[:3] == ["pip", "install", "-e"] and len(argv) == 4:
        check_extras(argv[3])
    elif argv[0] == "sphinx-build":
        assert argv[1:] == BUILD, f"the test builds with {BUILD}"
    elif argv[0] == "pytest":  # the suite that runs this check: its markers must exist
        check_markers(argv[1:])
    else:
        pytest.fail(f"no way to check {shlex.join(argv)!r}: run it here or mark the block")


# --- the small store -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One tiny run on shapes, its model registered as ``shapes@champion``, made the child of
    a sweep's parent run; ``<run_id>`` and ``<sweep_run_id>`` stand for them in the pages."""
    import mlflow

    from experiments.tracking.logged_models import register_champion
    from experiments.training import train
    from experiments.training.settings import compose

    folder = tmp_path_factory.mktemp("docs")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        train.run(compose([*STORE_RUN, f"mlflow.tracking_uri={uri}"]))
        client = mlflow.MlflowClient(uri)
        experiment = client.get_experiment_by_name("experiments")
        (run,) = client.search_runs([experiment.experiment_id])
        parent = client.create_run(experiment.experiment_id, run_name="sweep")
        client.set_tag(run.info.run_id, "mlflow.parentRunId", parent.info.run_id)
        client.set_terminated(parent.info.run_id)
        register_champion(uri, run.info.run_id, "shapes", "mlflow.register_as")
    placeholders = {"<run_id>": run.info.run_id, "<sweep_run_id>": parent.info.run_id}
    return {"folder": folder, "uri": uri, "placeholders": placeholders}


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("block", CHECKED, ids=str)
def test_block_runs(block, store):
    if block.lang == "python":
        namespace: dict = {}
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(store["folder"])
            patch.setenv("MLFLOW_TRACKING_URI", store["uri"])
            exec(compile(block.text, str(block), "exec"), namespace)
        return
    for argv in commands(block.text):
        try:
            check(argv, store)
        except Exception as exc:
            pytest.fail(f"{block}: {shlex.join(argv)}\n{type(exc).__name__}: {exc}")


def test_every_block_is_run_or_says_why_not():
    for block in SKIPPED:
        assert len(block.marker[1]) > 10, f"{block}: say why the block is not run"
    unknown = [b for b in ALL if b.lang in ("sh", "shell", "console", "zsh", "py")]
    assert not unknown, f"use ```bash or ```python so that the test runs them: {unknown}"


@pytest.mark.parametrize("block", SAME_AS, ids=str)
def test_copied_block_is_still_in_its_file(block):
    source = ROOT / block.marker[1]
    assert block.text.strip() in source.read_text(), f"{block}: no longer in {source}"


def test_readme_is_a_front_door_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for target in re.findall(r"\]\(((?:docs|benchmarks)/[^)#]+)", readme):
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
    picture = ROOT / "docs" / "_static" / "comparison.png"
    assert picture.stat().st_size < 100_000


def test_no_paragraph_is_on_two_pages():
    seen: dict[str, Path] = {}
    for page in PAGES:
        for paragraph in re.split(r"\n\s*\n", page.read_text()):
            text = " ".join(paragraph.split())
            if len(text) < 120 or text.startswith(("|", "```", "<!--")):
                continue
            assert text not in seen, f"on {seen[text].name} and {page.name}: {text[:80]}..."
            seen[text] = page


@pytest.mark.slow
def test_site_builds_without_a_warning(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", *BUILD[:3], str(tmp_path / "html")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    configuration = (tmp_path / "html" / "reference" / "configuration.html").read_text()
    assert "trainer.early_stopping.patience" in configuration


@pytest.mark.slow  # its module fixture trains a run (8.5 s of the fast tier)
def test_every_metric_and_tag_of_a_run_is_in_the_reference(store):
    """docs/reference/run-contents.md names what the small store's run logged (written by hand)."""
    import mlflow

    page = (DOCS / "reference" / "run-contents.md").read_text()
    run = mlflow.MlflowClient(store["uri"]).get_run(store["placeholders"]["<run_id>"])
    logged = [*run.data.metrics, *(t for t in run.data.tags if not t.startswith("mlflow."))]
    missing = sorted(name for name in logged if f"`{name}`" not in page)
    assert not missing, f"logged but not in docs/reference/run-contents.md: {missing}"
