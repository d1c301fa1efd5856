"""Write dvc.yaml from the stage modules (developer tool; run it after changing a stage's Params/Paths).

Usage: python tools/gen_dvc.py [--check]

Every stage runs its notebook with papermill, passing each parameter (``-r name ${stage.name}``: raw
text, converted strictly by the stage's ``Params``) and each path (from the ``paths`` variables at the
top of dvc.yaml, which this tool keeps as they are).  Its deps are the notebook, the import closure of
its module inside the package (folders where every file of a folder is used) and its inputs; its outs
are the executed notebook and its outputs (tables and figures kept in git, ``cache: false``; caches
``persist: true``); metrics JSON files are DVC metrics.  ``--check`` exits 1 when dvc.yaml differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from secmine.stages import STAGES, module_name, stage_module  # noqa: E402
from secmine.stages.contract import ROLE_CACHE, ROLE_INPUT, ROLE_OUTPUT  # noqa: E402
from secmine.stages.imports import NOTEBOOK_NORMALISER, stage_closure  # noqa: E402

DVC_FILE = ROOT / "dvc.yaml"

# A path field is passed from the variable of its name, unless named here.
ALIASES = {"replication_dir": "replication", "model_dir": "model", "archive_dir": "archive",
           "embeddings_dir": "embeddings"}
STAGE_ALIASES = {
    ("classify", "input"): "corpus",
    ("classify", "output"): "classified",
    ("classify", "checkpoint_dir"): "classify_checkpoints",
    ("keywords", "matches"): "keywords",
    ("train", "predictions"): "train_predictions",
    ("train", "checkpoint_dir"): "train_checkpoints",
    ("train", "data"): "train_data",
    ("train-tagger", "model_dir"): "tagger_model",
    ("train-tagger", "embedding_cache"): "tagger_embeddings",
    ("train-tagger", "descriptions"): "code_descriptions",
    ("tag", "model_dir"): "tagger_model",
    ("tag", "input"): "corpus",
    ("tag", "output"): "tagged",
    ("tag", "coded_sample"): "run_coding",
}
PER_STAGE = {"tables_dir": "${paths.tables}/%s", "figures_dir": "${paths.figures}/%s",
             "metrics": "${paths.metrics}/%s.json"}
SHARED = {"paper_tables_dir": "${paths.tables}/paper", "paper_figures_dir": "${paths.figures}/paper",
          "metrics_dir": "${paths.metrics}", "reports_tables": "${paths.tables}", "reports_figures": "${paths.figures}",
          "notebooks_dir": "reports/notebooks", "notebooks_html": "reports/notebooks", "page": "reports/index.html",
          "parameters": "params.yaml", "source_code": "src", "stage_notebooks": "notebooks",
          "sample_metrics": "${paths.metrics}/sample.json"}
HEADER = """\
# The pipeline.  Written by tools/gen_dvc.py from the stage modules (src/secmine/stages/): edit the
# `paths` variables here, the parameters in params.yaml, and rerun the tool after changing a stage.
# Every path a stage reads or writes is passed to its notebook from here (nothing is typed twice).
"""


def path_expression(stage: str, name: str) -> str:
    if name in PER_STAGE:
        return PER_STAGE[name] % stage
    if name in SHARED:
        return SHARED[name]
    return "${paths.%s}" % STAGE_ALIASES.get((stage, name), ALIASES.get(name, name))


def compact_deps(files: set[Path]) -> list[str]:
    """Package files, a whole folder where every .py file of it (and below) is in ``files``."""
    src = ROOT / "src" / "secmine"
    chosen: list[str] = []
    covered: set[Path] = set()
    folders = sorted({p.parent for p in files if p.parent != src}, key=lambda p: len(p.parts))
    for folder in folders:
        if any(folder.is_relative_to(c) for c in covered):
            continue
        everything = {p for p in folder.rglob("*.py") if "__pycache__" not in p.parts}
        if everything and everything <= files:
            covered.add(folder)
            chosen.append(folder.relative_to(ROOT).as_posix())
    for path in sorted(files):
        if not any(path.is_relative_to(c) for c in covered):
            chosen.append(path.relative_to(ROOT).as_posix())
    return sorted(chosen)


def stage_spec(stage: str, variables: dict[str, str]) -> dict:
    module = stage_module(stage)
    params, paths = module.Params, module.Paths
    notebook = f"notebooks/{module_name(stage)}.ipynb"
    executed = f"reports/notebooks/{module_name(stage)}.ipynb"
    words = [f"papermill {notebook} {executed} -k python3 --log-output"]
    block = params.stage  # the params.yaml block (the stage name with _ for -)
    for name in params.field_names():
        words.append(f"-r {name} '${{{block}.{name}}}'")
    for shared, kind in params.shared_blocks().items():  # a block several stages read, passed flat
        for name in kind.field_names():
            words.append(f"-r {shared}_{name} '${{{shared}.{name}}}'")
    deps = [notebook, *compact_deps(stage_closure(module.__name__))]
    outs: list = [{executed: {"cache": False}}]  # committed: a clone shows the study without running it
    metrics: list = []
    for spec in paths.specs():
        expression = path_expression(stage, spec.name)
        words.append(f"-r {spec.name} '{expression}'")
        role = spec.metadata["role"]
        resolved = expression.replace("${paths.", "").rstrip("}")
        if expression.startswith("${paths.") and "/" not in expression and resolved not in variables:
            raise SystemExit(f"{stage}.{spec.name}: add `{resolved}:` to the paths variables of dvc.yaml")
        empty = expression.startswith("${paths.") and not variables.get(resolved, "x")
        files = spec.metadata.get("files")
        tracked = [f"{expression}/{file}" for file in files] if files else [expression]
        if role == ROLE_INPUT:
            if not empty:
                deps.extend(tracked)
        elif role == ROLE_CACHE:
            outs.append({expression: {"persist": True}})
        elif role == ROLE_OUTPUT:
            for path in tracked:
                if spec.name == "metrics":
                    metrics.append({path: {"cache": False}})
                elif spec.metadata.get("committed") or path.startswith(("${paths.tables}", "${paths.figures}", "reports/")):
                    outs.append({path: {"cache": False}})  # kept in git
                else:
                    outs.append(path)
    # the executed notebook, made the same bytes on every run (no timestamps, no progress output)
    words.append(f"&& python -m {NOTEBOOK_NORMALISER} {executed}")
    spec = {"cmd": "\n".join(words), "deps": deps, "params": [block, *params.shared_blocks()], "outs": outs}
    if metrics:
        spec["metrics"] = metrics
    return spec


def _vars_text() -> str:
    """The ``vars:`` section of dvc.yaml as it is written (comments kept)."""
    text = DVC_FILE.read_text(encoding="utf-8")
    start = text.index("vars:")
    end = text.index("\nstages:", start)
    return text[start:end].rstrip() + "\n"


def render() -> str:
    current = yaml.safe_load(DVC_FILE.read_text(encoding="utf-8")) if DVC_FILE.exists() else {}
    variables: dict[str, str] = {}
    for entry in current.get("vars", []) or []:
        if isinstance(entry, dict) and "paths" in entry:
            variables = dict(entry["paths"])
    if not variables:
        raise SystemExit("dvc.yaml has no `vars: - paths:` block to keep")
    stages = {stage: stage_spec(stage, variables) for stage in STAGES}
    commands = {stage: spec.pop("cmd") for stage, spec in stages.items()}
    # The command as a folded block, one option a line (YAML folds single line breaks into spaces).
    stages = {stage: {"cmd": f"@CMD:{stage}@", **spec} for stage, spec in stages.items()}
    body = _vars_text() + yaml.safe_dump({"stages": stages}, sort_keys=False, width=110)
    for stage, cmd in commands.items():
        block = ">-\n" + "\n".join(f"      {line}" for line in cmd.split("\n"))
        body = body.replace(f"'@CMD:{stage}@'", block).replace(f"@CMD:{stage}@", block)
    return HEADER + body


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        same = DVC_FILE.read_text(encoding="utf-8") == text
        print("dvc.yaml is up to date" if same else "dvc.yaml differs: run python tools/gen_dvc.py")
        return 0 if same else 1
    DVC_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {DVC_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
