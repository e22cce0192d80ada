"""Save feeds and reference outputs in Polygraphy's JSON formats, so that

    polygraphy run l_module.onnx --onnxrt --load-inputs inputs.json --load-outputs ref.json --atol ... --rtol ...

re-checks a verify run with an independent tool (its own runner, its own comparator).
"""

from __future__ import annotations

from pathlib import Path

from hrm_export.core.errors import require
from hrm_export.verify.run import RunResult
from model_src.atomic import atomic_output

REFERENCE_RUNNER = "hrm-export-torch-reference"


def save_inputs(results: list[RunResult], path: str | Path) -> None:
    """A list of feed dicts (one per iteration): what `--load-inputs` reads."""
    pj = require("polygraphy.json", "pip install 'hrm-export[ort]'")
    from polygraphy.logger import G_LOGGER

    with atomic_output(path) as tmp, G_LOGGER.verbosity(G_LOGGER.ERROR):  # no "[I] Saving ... .partial" lines
        pj.save_json([{k: v.numpy() for k, v in r.feeds.items()} for r in results], str(tmp))


def save_outputs(results: list[RunResult], path: str | Path) -> None:
    """The reference's outputs as a Polygraphy RunResults (one runner, one iteration per feed dict)."""
    require("polygraphy", "pip install 'hrm-export[ort]'")
    from polygraphy.comparator import IterationResult, RunResults
    from polygraphy.logger import G_LOGGER

    iterations = [IterationResult({k: v.numpy() for k, v in r.ref.items()}, runner_name=REFERENCE_RUNNER)
                  for r in results]
    run_results = RunResults()
    run_results.append((REFERENCE_RUNNER, iterations))
    with atomic_output(path) as tmp, G_LOGGER.verbosity(G_LOGGER.ERROR):
        run_results.save(str(tmp))
