"""The one loader of the project's TOML files (shape profiles, parity budgets, latency targets).

Each file is read and validated in full — types, ranges, unknown keys — before any work starts, and a bad file
is one ConfigFileError naming the file, the table and the key, never a traceback minutes later. The schemas
are pydantic models in the modules that own the concept (profiles.py, budgets.py, latency_targets.py); this
module reads the TOML and turns a pydantic ValidationError into that one line.

The shipped files live inside the package (`hrm_export/profiles/`, `hrm_export/budgets/`), so an installed
wheel finds them wherever it runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator

from hrm_export.core.errors import ConfigFileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # hrm_export/
PROFILE_DIR = PACKAGE_DIR / "profiles"
BUDGET_DIR = PACKAGE_DIR / "budgets"

Schema = TypeVar("Schema")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):  # "1" and true are not numbers here
        raise ValueError("Input should be a number")
    return float(value)


Number = Annotated[float, BeforeValidator(_number)]  # an int or float in the file; no strings, no booleans


def read_toml(path: str | Path, example: Path) -> dict[str, Any]:
    """The TOML table of `path`; ConfigFileError if it is missing, not a file or not TOML."""
    path = Path(path)
    if not path.is_file():
        what = "a directory" if path.is_dir() else "no such file"
        raise ConfigFileError(f"{path}: {what}", hint=f"pass a TOML file like {example}")
    try:
        return tomllib.loads(path.read_text())
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path}: not a text file", hint=f"pass a TOML file like {example}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigFileError(f"{path}: not valid TOML ({e})", hint=f"fix the file; see {example}") from None


def validate(schema: type[Schema], data: Any, path: str | Path, where: str = "", example: Path | None = None
             ) -> Schema:
    """`schema.model_validate(data)`, with the first error as one line: file, [table.key], what is wrong."""
    from pydantic import ValidationError

    try:
        return schema.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in (where, *err["loc"]) if p != "")
        got = f" (got {err['input']!r})" if err["type"] != "missing" and not isinstance(err["input"], dict) else ""
        more = f"; {len(e.errors()) - 1} more error(s)" if len(e.errors()) > 1 else ""
        raise ConfigFileError(f"{path}: [{loc}] {_message(err)}{got}{more}",
                              hint=f"fix that key; see {example}" if example else "fix that key") from None


def _message(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "missing key"
    return err["msg"].removeprefix("Value error, ")
