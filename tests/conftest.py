"""Shared test settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """One torch thread: the tests use tiny tensors, and on a shared 2-core machine two threads
    spin against each other (measured 2-100x slower for small convolutions and LDPC decoding)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def allow_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's ``--allow-code`` opt-in: the tests' scenario files name a factory by module path."""
    from semcom.errors import ALLOW_CODE_ENV

    monkeypatch.setenv(ALLOW_CODE_ENV, "1")
