"""Fixtures of the SDK's integration tests: real ``augsvc serve`` processes (started by
tests/conftest.py's ``start_augsvc``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sdk_tests.helpers import TcpProxy, proxies

from tests.sdk_integration.keys import ADMIN_KEY, READ_KEY


@pytest.fixture(scope="session")
def augsvc_url(start_augsvc) -> str:
    """An open server with default limits."""
    return start_augsvc().url


@pytest.fixture(scope="session")
def keyed_augsvc_url(start_augsvc) -> str:
    """A server that needs keys: ADMIN_KEY (admin scope) and READ_KEY (read scope)."""
    return start_augsvc(AUGSVC_API_KEYS=f"{ADMIN_KEY}:admin,{READ_KEY}:read").url


@pytest.fixture(scope="session")
def small_augsvc_url(start_augsvc) -> str:
    """A server with tiny limits: 4 images and 64 KiB per request."""
    return start_augsvc(AUGSVC_MAX_IMAGES="4", AUGSVC_MAX_REQUEST_BYTES=str(64 * 1024)).url


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[..., TcpProxy]]:
    """``tcp_proxy(upstream, cut_after=N)``: a proxy that cuts the first response after N
    bytes."""
    yield from proxies()
