"""`hrm-export info`: the model card — parameter table beside the plan, memory per precision, config."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hrm_export.cli.options import CheckpointOpt, JsonOpt
from hrm_export.cli.output import json_text


def info(checkpoint: CheckpointOpt = None, as_json: JsonOpt = False) -> None:
    """Print the model card: parameters per part against the plan, bytes per precision, the config."""
    from hrm_export.core.model_card import model_card

    card = model_card(checkpoint)
    if as_json:
        print(json_text(card, indent=2))
        return
    console = Console()
    console.print(f"[bold]HRM model card[/] — checkpoint: {card['checkpoint']}")
    table = Table(title="Parameters by part (plan: latency and memory plan)")
    for col in ("part", "params", "plan", "Δ vs plan", "fp32 MB", "bf16 MB", "int8 MB"):
        table.add_column(col, justify="right" if col != "part" else "left")
    for row in card["parts"]:
        table.add_row(
            row["part"], f"{row['params'] / 1e6:.3f}M", row["plan"], row["delta"],
            *(f"{row['bytes'][p] / 1e6:.1f}" for p in ("fp32", "bf16", "int8")),
        )
    console.print(table)
    console.print("config: " + ", ".join(f"{k}={v}" for k, v in card["config"].items()))
