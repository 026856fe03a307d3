"""Build hook: a built wheel carries the embedded catalog and the reference device measurements.

`model_cards/` stays at the top of the repository (it is the source, and diffs well in git); a
wheel gets a copy as `hf_spider/_model_cards/`, and one of the cost model's reference runs and
cache seeds (`benchmarks/results/device_cost_third_pass.jsonl`, `cost_facts.json`,
`cost_card_configs.json`) as `hf_spider/_reference/`, where `hf_spider._paths` finds them
when the package is not running from a source tree. Everything else is declared in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CATALOG_FILES = ("catalog.jsonl", "README.md")
# the cost model's reference runs and the seeds of its caches (hf_spider._paths.REFERENCE_FILES)
REFERENCE_FILES = (
    "device_cost_third_pass.jsonl",
    "device_cost_siblings.jsonl",
    "cost_facts.json",
    "cost_card_configs.json",
)


class BuildPyWithCatalog(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads model_cards/ in place
        source = Path(__file__).resolve().parent / "model_cards"
        target = Path(self.build_lib) / "hf_spider" / "_model_cards"
        target.mkdir(parents=True, exist_ok=True)
        for name in CATALOG_FILES:
            shutil.copyfile(source / name, target / name)
        results = source.parent / "benchmarks" / "results"
        reference = Path(self.build_lib) / "hf_spider" / "_reference"
        reference.mkdir(parents=True, exist_ok=True)
        for name in REFERENCE_FILES:
            shutil.copyfile(results / name, reference / name)


setup(cmdclass={"build_py": BuildPyWithCatalog})
