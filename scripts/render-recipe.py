"""Renders recipe/recipe.yaml with rattler-build (py-rattler-build) for each platform conda-forge
would build it for, and checks what a build would need from the recipe: the version equals the
workspace's, the test runs `gatehouse --version` and `gatehouse check` on the bundled example, the
crate licences are bundled. Rendering needs no conda channel; building does, and none is
reachable on these machines, so the package itself is not built here.

Run by scripts/lint-workflows.sh with its virtual environment's python.
"""

import re
import sys
from pathlib import Path

from rattler_build import RenderConfig, Stage0Recipe, VariantConfig
from rattler_build.tool_config import PlatformConfig

root = Path(__file__).resolve().parent.parent
cargo = (root / "Cargo.toml").read_text(encoding="utf-8")
version = re.search(r'^version = "([^"]+)"$', cargo, re.M).group(1)

# What conda-forge's pinning gives the compiler functions (conda-forge-pinning's
# conda_build_config.yaml), reduced to one value each.
variants = {
    "linux-64": {"c_compiler": ["gcc"], "c_stdlib": ["sysroot"], "c_stdlib_version": ["2.17"]},
    "osx-arm64": {"c_compiler": ["clang"], "c_stdlib": ["macosx_deployment_target"], "c_stdlib_version": ["11.0"]},
    "win-64": {"c_compiler": ["vs2022"], "c_stdlib": ["vs"], "c_stdlib_version": ["2022"]},
}

problems = []
recipe = Stage0Recipe.from_file(root / "recipe" / "recipe.yaml")
for platform, variant in variants.items():
    config = VariantConfig({"rust_compiler": ["rust"], **variant})
    rendered = recipe.render(config, RenderConfig(platform=PlatformConfig(target_platform=platform)))
    if len(rendered) != 1:
        problems.append(f"{platform}: {len(rendered)} variants, expected 1")
        continue
    stage1 = rendered[0].recipe
    doc = stage1.to_dict() if hasattr(stage1, "to_dict") else None
    text = repr(doc if doc is not None else stage1)
    package = doc["package"] if doc else {}
    if str(package.get("version")) != version:
        problems.append(f"{platform}: package version {package.get('version')} is not the workspace's {version}")
    for needle in ["gatehouse --version", "gatehouse check examples/conda-forge", "cargo-bundle-licenses", "THIRDPARTY.yml"]:
        if needle not in text:
            problems.append(f"{platform}: the rendered recipe lacks `{needle}`")
    build_reqs = " ".join(str(r) for r in doc["requirements"]["build"]) if doc else ""
    print(f"recipe: {platform}: {package.get('name')} {package.get('version')}; build: {build_reqs}")

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print("recipe: rendered for " + ", ".join(variants) + " (not built: no conda channel is reachable here)")
