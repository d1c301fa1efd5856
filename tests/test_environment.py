"""requirements.txt and environment.yml carry the same pins; torch is the pinned CPU release."""

from __future__ import annotations

import yaml

from secmine import config


def _requirements() -> set[str]:
    lines = (config.PROJECT_ROOT / "requirements.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith(("#", "-"))}


def test_environment_mirrors_requirements() -> None:
    env = yaml.safe_load((config.PROJECT_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert {p for p in pip if not p.startswith("-")} == _requirements()
    assert "python=3.11" in env["dependencies"]


def test_every_requirement_is_pinned_and_torch_is_2_13() -> None:
    reqs = _requirements()
    assert all("==" in r for r in reqs), [r for r in reqs if "==" not in r]
    assert "torch==2.13.0" in reqs


def test_test_doubles_live_outside_the_product_package() -> None:
    """The fake API and the fake clock are in ``secmine_testing``, which the package discovery of
    pyproject.toml ships beside ``secmine``; nothing in ``secmine`` imports them."""
    import tomllib

    from setuptools import find_packages

    root = config.PROJECT_ROOT
    found = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = set(find_packages(where=str(root / found["where"][0]), include=found.get("include", ["*"])))
    assert {"secmine", "secmine.collect", "secmine_testing"} <= packages
    assert not (root / "src" / "secmine" / "collect" / "testing.py").exists()
    product = root / "src" / "secmine"
    offenders = [
        p.relative_to(root).as_posix()
        for p in product.rglob("*.py")
        if "secmine_testing" in p.read_text(encoding="utf-8") or "FakeClock" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []
