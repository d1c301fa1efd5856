"""Every stage has the same shape: Params equal to its params.yaml block and its notebook's parameters
cell, Paths equal to what dvc.yaml passes and declares, deps that cover the code it runs, and values
converted strictly whatever DVC renders."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from secmine import config
from secmine.stages import STAGES, module_name, stage_module
from secmine.stages.contract import (
    ROLE_CACHE,
    ROLE_INPUT,
    ROLE_OUTPUT,
    ParamsError,
    PathsError,
    convert,
    rendered_stage,
)
from secmine.stages.imports import stage_closure

ROOT = config.PROJECT_ROOT
DVC_TEXT = (ROOT / "dvc.yaml").read_text(encoding="utf-8")
DVC = yaml.safe_load(DVC_TEXT)


def _parameters_cell(stage: str) -> dict[str, object]:
    nb = nbformat.read(ROOT / "notebooks" / f"{module_name(stage)}.ipynb", as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{stage}: needs one cell tagged 'parameters'"
    values: dict[str, object] = {}
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, f"{stage}: the parameters cell only assigns"
        values[node.targets[0].id] = ast.literal_eval(node.value)  # type: ignore[attr-defined]
    return values


def _covered(path: str, deps: tuple[str, ...]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


def test_dvc_yaml_lists_the_stages_in_pipeline_order() -> None:
    assert list(DVC["stages"]) == list(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_notebook_parameters_equal_params_and_paths(stage: str) -> None:
    module = stage_module(stage)
    expected = {**module.Params.parameter_defaults(), **{name: None for name in module.Paths.field_names()}}
    assert _parameters_cell(stage) == expected


@pytest.mark.parametrize("stage", STAGES)
def test_params_yaml_block_equals_params(stage: str) -> None:
    module = stage_module(stage)
    block = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))[module.Params.stage]
    assert sorted(block) == sorted(module.Params.field_names()), f"{stage}: params.yaml keys differ from Params"
    loaded = module.Params.load()
    assert loaded == module.Params(), f"{stage}: params.yaml values differ from Params' defaults"
    for name, kind in module.Params.shared_blocks().items():
        shared = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))[name]
        assert sorted(shared) == sorted(kind.field_names()), f"{name}: params.yaml keys differ from {kind.__name__}"
        assert getattr(loaded, name) == kind(), f"{name}: params.yaml values differ from {kind.__name__}'s defaults"


def test_every_params_block_is_a_stage_or_a_shared_block_a_stage_reads() -> None:
    blocks = set(yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8")))
    stages = {stage_module(stage).Params.stage for stage in STAGES}
    shared = {name for stage in STAGES for name in stage_module(stage).Params.shared_blocks()}
    assert not stages & shared
    assert blocks == stages | shared
    assert "compute" in shared  # keywords and classify read it


def test_a_shared_block_is_read_from_its_own_block_and_checked_strictly(tmp_path: Path) -> None:
    from secmine.stages import classify, keywords

    assert set(keywords.Params.shared_blocks()) == set(classify.Params.shared_blocks()) == {"compute"}
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["compute"]["engine"] = "ray"
    params["compute"]["actors"] = 3
    file = tmp_path / "params.yaml"
    file.write_text(yaml.safe_dump(params), encoding="utf-8")
    loaded = keywords.Params.load(file)
    assert (loaded.compute.engine, loaded.compute.actors) == ("ray", 3)
    assert loaded.as_dict() == keywords.Params().as_dict()  # the stage's own keys untouched
    assert classify.Params.load(file).compute == loaded.compute  # one block, read by both stages
    # flat names in notebooks and on the command line, converted strictly
    assert keywords.Params().replace(compute_engine="ray", compute_actors="4").compute.actors == 4
    namespace = {**keywords.Params().parameters(), "compute_engine": "ray"}
    assert keywords.Params.from_namespace(namespace).compute.engine == "ray"
    with pytest.raises(ParamsError, match="compute.engine"):
        keywords.Params().replace(compute_engine="spark")
    params["compute"]["engin"] = "ray"
    file.write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(ParamsError, match=rf"{file}: unknown key compute.engin"):
        keywords.Params.load(file)
    del params["compute"]
    file.write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(ParamsError, match="no block 'compute'"):
        keywords.Params.load(file)
    del namespace["compute_actors"]
    with pytest.raises(ParamsError, match="missing key compute.actors"):
        keywords.Params.from_namespace(namespace)


@pytest.mark.parametrize("stage", STAGES)
def test_params_and_paths_names_do_not_clash(stage: str) -> None:
    module = stage_module(stage)
    names = list(module.Params.parameter_names()) + list(module.Paths.field_names()) + ["params_file", "out"]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("stage", STAGES)
def test_dvc_passes_every_param_and_path_and_nothing_else(stage: str) -> None:
    module = stage_module(stage)
    rendered = rendered_stage(stage)
    assert set(rendered.parameters) == set(module.Params.parameter_names()) | set(module.Paths.field_names())
    block = module.Params.stage
    assert block == module_name(stage), f"{stage}: its params block is {block!r}, not {module_name(stage)!r}"
    for name in module.Params.field_names():
        assert f"-r {name} '${{{block}.{name}}}'" in DVC_TEXT, f"{block}.{name} is not passed from params.yaml"
    shared = module.Params.shared_blocks()
    for name, kind in shared.items():
        for key in kind.field_names():
            assert f"-r {name}_{key} '${{{name}.{key}}}'" in rendered_stage_text(stage), f"{name}.{key} not passed"
    assert rendered.params == (block, *shared), f"{stage}: tracks params {rendered.params}, not its blocks"
    words = rendered.cmd.split()
    nb = f"notebooks/{module_name(stage)}.ipynb"
    assert words[:3] == ["papermill", nb, f"reports/notebooks/{module_name(stage)}.ipynb"]
    assert words[words.index("-k") + 1] == "python3"


@pytest.mark.parametrize("stage", STAGES)
def rendered_stage_text(stage: str) -> str:
    """The stage's command as written in dvc.yaml (before DVC resolves ``${...}``)."""
    return " ".join(str(DVC["stages"][stage]["cmd"]).split())


@pytest.mark.parametrize("stage", STAGES)
def test_dvc_outs_equal_paths_outputs(stage: str) -> None:
    module = stage_module(stage)
    rendered = rendered_stage(stage)
    paths = module.Paths.declared()
    declared = {p.as_posix() for p in paths.tracked(ROLE_OUTPUT) + paths.tracked(ROLE_CACHE)}
    assert set(rendered.outs) == declared | {f"reports/notebooks/{module_name(stage)}.ipynb"}
    assert set(rendered.persist) == {p.as_posix() for p in paths.caches().values()}


@pytest.mark.parametrize("stage", STAGES)
def test_dvc_deps_cover_the_code_and_the_inputs(stage: str) -> None:
    module = stage_module(stage)
    rendered = rendered_stage(stage)
    closure = sorted(p.relative_to(ROOT).as_posix() for p in stage_closure(module.__name__))
    missing = [path for path in closure if not _covered(path, rendered.deps)]
    assert not missing, f"{stage}: dvc.yaml deps lack {missing} (python tools/gen_dvc.py)"
    for dep in rendered.deps:
        if dep.startswith("src/"):
            assert any(_covered(path, (dep,)) for path in closure), f"{stage}: {dep} is a dep the stage never runs"
    inputs = {p.as_posix() for p in module.Paths.declared().tracked(ROLE_INPUT)}
    assert inputs <= set(rendered.deps), f"{stage}: inputs {sorted(inputs - set(rendered.deps))} are not deps"
    data = {d for d in rendered.deps if not d.startswith(("src/", "notebooks/"))}
    assert data <= inputs, f"{stage}: deps {sorted(data - inputs)} are not inputs of its Paths"


def test_dvc_yaml_and_notebooks_are_what_the_tools_write() -> None:
    import subprocess
    import sys

    for tool in ("tools/gen_dvc.py", "tools/sync_notebooks.py"):
        done = subprocess.run([sys.executable, tool, "--check"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def _flipped_stage(tmp_path: Path, stage: str, key: str, value: object, block: str | None = None):
    """The stage as DVC renders it from a params.yaml where ``stage.key`` (``block.key``) is ``value``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params[block or module_name(stage)][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    (repo / ".dvc").mkdir()  # a DVC project without git (what `dvc init --no-scm` writes)
    (repo / ".dvc" / "config").write_text("[core]\n    no_scm = True\n", encoding="utf-8")
    return rendered_stage(stage, repo / "dvc.yaml")


BOOLEANS = [
    (stage, name)
    for stage in STAGES
    for name, default in stage_module(stage).Params.defaults().items()
    if default in (True, False) and stage_module(stage).Params.parameter_hints()[name] is bool
]


@pytest.mark.parametrize("stage", ["keywords", "classify"])
def test_a_shared_block_changed_in_params_yaml_reaches_the_stage_through_dvc(tmp_path: Path, stage: str) -> None:
    module = stage_module(stage)
    rendered = _flipped_stage(tmp_path, stage, "engine", "ray", block="compute")
    assert rendered.params == (module.Params.stage, "compute")
    params = module.Params.from_namespace(rendered.parameters)
    assert params.compute.engine == "ray"
    assert params.compute.ray_address == "" and params.as_dict() == module.Params().as_dict()


@pytest.mark.parametrize(("stage", "key"), BOOLEANS)
def test_every_boolean_flipped_through_dvc_arrives_as_a_bool(tmp_path: Path, stage: str, key: str) -> None:
    module = stage_module(stage)
    flipped = not module.Params.defaults()[key]
    rendered = _flipped_stage(tmp_path, stage, key, flipped)
    assert rendered.parameters[key] in ("true", "false")  # DVC writes YAML booleans in lowercase
    params = module.Params.from_namespace(rendered.parameters)
    assert getattr(params, key) is flipped


def test_there_are_booleans_to_flip() -> None:
    assert ("collect", "include_replication") in BOOLEANS and ("keywords", "word_boundary") in BOOLEANS


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [("true", bool, True), ("False", bool, False), (True, bool, True), ("12", int, 12), ("2.0e-04", float, 2e-4),
     (3, float, 3.0), ("x", str, "x"), ("", int | None, None)],
)
def test_convert_accepts_exact_forms(value: object, annotation: object, expected: object) -> None:
    assert convert(value, annotation, key="k", where="w") == expected


@pytest.mark.parametrize(
    ("value", "annotation"),
    [("yes", bool), ("1", bool), (1, bool), ("1.5", int), (True, int), ("ten", float), (False, float), (5, str)],
)
def test_convert_refuses_everything_else(value: object, annotation: object) -> None:
    with pytest.raises(ParamsError, match=r"w, key 'k': expected"):
        convert(value, annotation, key="k", where="w")


def test_unknown_and_missing_keys_name_the_key_and_the_file(tmp_path: Path) -> None:
    from secmine.stages import thematic

    params = tmp_path / "params.yaml"
    params.write_text("thematic:\n  cooccurrence_multiplicity: true\n  multiplicty: false\n", encoding="utf-8")
    with pytest.raises(ParamsError, match=rf"{params}: unknown key thematic.multiplicty"):
        thematic.Params.load(params)
    params.write_text("thematic: {}\n", encoding="utf-8")
    with pytest.raises(ParamsError, match=rf"{params}: missing key thematic.cooccurrence_multiplicity"):
        thematic.Params.load(params)
    params.write_text("rq1:\n  top_n: 3\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="no block 'thematic'"):
        thematic.Params.load(params)


def test_a_string_boolean_is_refused_not_truthy() -> None:
    from secmine.stages import collect

    with pytest.raises(ParamsError, match="include_replication"):
        collect.Params().replace(include_replication="no")
    assert collect.Params().replace(include_replication="false").include_replication is False


def test_paths_need_every_required_path() -> None:
    from secmine.stages import keywords

    declared = {name: "x" for name in keywords.Paths.field_names()}
    del declared["matches"]
    with pytest.raises(PathsError, match="no path for 'matches'"):
        keywords.Paths.from_mapping(declared, where="test")


def test_interactive_paths_read_declared_inputs_and_write_under_scratch() -> None:
    from secmine.stages import rq1

    paths = rq1.Paths.from_namespace({name: None for name in rq1.Paths.field_names()})
    assert paths.classified == Path("data/processed/classified.parquet")
    for path in paths.outputs().values():
        assert path.parts[:2] == ("scratch", "rq1")


def test_roles_are_known() -> None:
    for stage in STAGES:
        for spec in stage_module(stage).Paths.specs():
            assert spec.metadata["role"] in (ROLE_INPUT, ROLE_OUTPUT, ROLE_CACHE)


def test_every_stage_module_says_what_the_command_line_prints() -> None:
    for stage in STAGES:
        assert callable(stage_module(stage).summary), stage


def test_include_replication_false_from_dvc_drops_the_replication_posts(
    tmp_path: Path, tiny_replication: Path, fixtures_dir: Path
) -> None:
    from secmine.collect.corpus import read_corpus
    from secmine.stages import collect

    rendered = _flipped_stage(tmp_path, "collect", "include_replication", False)
    params = collect.Params.from_namespace(rendered.parameters)
    assert params.include_replication is False

    def corpus_sources(params: collect.Params, out: Path) -> set[str]:
        paths = collect.Paths.from_mapping(
            {"snapshot": fixtures_dir / "detect" / "threads.jsonl", "replication_dir": tiny_replication,
             "corpus": out / "corpus", "tables_dir": out / "tables", "metrics": out / "m.json",
             "archive_dir": out / "archive"},
            where="test",
        )
        collect.run(params, paths)
        return set(read_corpus(out / "corpus", columns=["source"])["source"].str.split(":").str[0])

    assert "replication" not in corpus_sources(params, tmp_path / "without")
    assert "replication" in corpus_sources(params.replace(include_replication=True), tmp_path / "with")


def test_outputs_kept_in_git_are_not_cached_by_dvc() -> None:
    """DVC refuses to cache a file git tracks ("already tracked by SCM"), so every committed output
    is a `cache: false` out (reports/ and the external data's manifest)."""
    import subprocess

    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split())
    for name, spec in DVC["stages"].items():
        for out in spec.get("outs", []):
            path, options = (next(iter(out.items())) if isinstance(out, dict) else (out, {}))
            resolved = rendered_stage(name).outs[[str(o) for o in spec["outs"]].index(str(out))]
            if resolved in tracked or any(t.startswith(resolved.rstrip("/") + "/") for t in tracked):
                assert options.get("cache") is False, f"{name}: {resolved} is in git but cached by DVC"


@pytest.mark.parametrize("stage", STAGES)
def test_no_import_of_the_notebook_shadows_a_parameter(stage: str) -> None:
    """`Params/Paths.from_namespace(globals())` reads the notebook's globals: an imported name equal to a
    parameter (the stage module `sample` beside the path `sample`) would replace the value dvc.yaml gave."""
    import ast

    import nbformat

    module = stage_module(stage)
    names = set(module.Params.field_names()) | set(module.Paths.field_names())
    nb = nbformat.read(config.PROJECT_ROOT / "notebooks" / f"{module_name(stage)}.ipynb", as_version=4)
    imported: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    assert not imported & names, f"notebooks/{module_name(stage)}.ipynb imports {sorted(imported & names)}"
