from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import Postgres, Seaweed


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """One SeaweedFS for the whole run; each user of it makes its own bucket."""
    service = Seaweed(tmp_path_factory.mktemp("seaweed")).start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Postgres:
    """One PostgreSQL for the whole run (stopped and deleted at exit); each user of it
    makes its own database."""
    return Postgres(tmp_path_factory.mktemp("postgres")).start()
