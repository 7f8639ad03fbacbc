"""The option combinations the template tests bake: one table, used by every per-project test.

The 16 rows are a pairwise (2-way) covering set over the five options that change the
output (python_version x license x ci_provider x use_docker x use_pre_commit): every value
of every option appears, and so does every pair of values of any two options.
16 is the least possible, since python_version and license have four values each.
``test_matrix_is_pairwise`` checks this claim. Some rows also rename the project and the
upstream, so names derived from answers are exercised too.
"""

from __future__ import annotations

from typing import Any

OPTIONS: dict[str, list[Any]] = {
    "python_version": ["3.11", "3.12", "3.13", "3.14"],
    "license": ["MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"],
    "ci_provider": ["github", "gitlab", "none"],
    "use_docker": [True, False],
    "use_pre_commit": [True, False],
}

_COLUMNS = ("python_version", "license", "ci_provider", "use_docker", "use_pre_commit")
_ROWS = [
    ("3.11", "MIT", "none", False, True),
    ("3.11", "Apache-2.0", "none", False, False),
    ("3.11", "BSD-3-Clause", "github", True, True),
    ("3.11", "Proprietary", "gitlab", False, True),
    ("3.12", "MIT", "none", False, True),
    ("3.12", "Apache-2.0", "gitlab", True, True),
    ("3.12", "BSD-3-Clause", "github", False, True),
    ("3.12", "Proprietary", "github", True, False),
    ("3.13", "MIT", "gitlab", False, True),
    ("3.13", "Apache-2.0", "github", True, False),
    ("3.13", "BSD-3-Clause", "gitlab", False, False),
    ("3.13", "Proprietary", "none", True, True),
    ("3.14", "MIT", "github", True, False),
    ("3.14", "Apache-2.0", "github", False, True),
    ("3.14", "BSD-3-Clause", "none", False, False),
    ("3.14", "Proprietary", "gitlab", False, False),
]

# Extra answers for some rows: other project names and upstreams give other module names.
_RENAMES: dict[int, dict[str, str]] = {
    # The longest names pre_gen accepts (32-character package, 40-character client class):
    # generated code must still pass ruff's 100-column checks.
    0: {
        "project_name": "Abcdefghij Klmnopqrst Uvwxyzabcd",
        "upstream_name": "Abcdefghij Klmnopqrst Uvwxyzabcd Abcd",
    },
    2: {"project_name": "Billing Gateway", "upstream_name": "Stripe v2"},
    5: {"project_name": "weather2 relay", "upstream_name": "Open-Meteo"},
    10: {"project_name": "Inventory", "upstream_name": "Acme Warehouse API"},
    13: {"project_name": "Geo Lookup Service", "upstream_name": "Nominatim"},
}

COMBINATIONS: list[dict[str, Any]] = [
    {**dict(zip(_COLUMNS, row, strict=True)), **_RENAMES.get(index, {})}
    for index, row in enumerate(_ROWS)
]


def combination_id(answers: dict[str, Any]) -> str:
    return "-".join(
        [
            "py" + answers["python_version"].replace(".", ""),
            answers["license"].lower(),
            answers["ci_provider"],
            "docker" if answers["use_docker"] else "nodocker",
            "precommit" if answers["use_pre_commit"] else "noprecommit",
        ]
    )
