"""The generated project's fuzz test is not a formality: a document that disagrees with the app
fails it. (The document itself, and the app against it, are tested in every baked project and
in test_runtime_contract.py against the started service.)"""

from __future__ import annotations

import pytest
from conftest import Bake, Install, run
from matrix import DEFAULT_PYTHON

pytestmark = pytest.mark.slow


def test_schemathesis_catches_a_document_that_disagrees_with_the_app(
    bake: Bake, install: Install
) -> None:
    project = bake()
    python = install(project, DEFAULT_PYTHON)
    fuzz = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "keeps_to_its_document"]
    assert run(fuzz, project, check=False).returncode == 0  # as generated: it agrees
    # The deliberate mismatch: the document now says error bodies carry "message".
    document = project / "src" / "my_async_service" / "web" / "openapi.py"
    with document.open("a", encoding="utf-8") as f:
        f.write('ERROR["required"] = ["message"]\n')

    result = run(fuzz, project, check=False)

    assert result.returncode != 0
    assert "Response violates schema" in result.stdout, result.stdout[-3000:]
