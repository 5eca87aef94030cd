"""Request bodies against a real server over raw sockets: memory follows the bytes that
arrived (never an announced length), a stalled or dribbling body is dropped with a 408
problem and a closed connection, a client that goes away is no server error, and a
boundary the multipart parser cannot take is the client's 400."""

from __future__ import annotations

import http.client
import json
import re
import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.imagegen import jpeg_bytes

GAP_S = 2.0  # AUGSVC_BODY_READ_TIMEOUT_S of the server under test
DEADLINE_S = 8.0  # AUGSVC_BODY_READ_DEADLINE_S
MARGIN_S = 6.0  # two shared cores: the answer may come this much after its clock ran out
ANNOUNCED = 60_000_000
RECIPE = {"ops": [{"op": "hflip"}], "output": {"size": [24, 32]}}
AUGMENT = "/v1/augment?recipe=bodies&seed=1"
BOUNDARY = "augsvcbodies"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(start_augsvc):
    server = start_augsvc(
        AUGSVC_BODY_READ_TIMEOUT_S=str(GAP_S), AUGSVC_BODY_READ_DEADLINE_S=str(DEADLINE_S)
    )
    with server.client() as client:
        assert client.put("/v1/recipes/bodies", json=RECIPE).status_code == 201
    return server


def address(server) -> tuple[str, int]:
    url = urlsplit(server.url)
    return url.hostname or "127.0.0.1", url.port or 80


def rss_bytes(pid: int) -> int:
    """The process's resident set now (VmRSS, which /proc reports in kB)."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def multipart(name: str, data: bytes, boundary: str = BOUNDARY) -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )


def head(path: str, length: int, boundary: str = BOUNDARY) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: augsvc\r\nContent-Length: {length}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    ).encode()


def read_until_closed(sock: socket.socket, deadline: float) -> tuple[bytes, bool]:
    """What the server wrote before closing, and whether it closed before ``deadline``."""
    data = b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def status_and_problem(raw: bytes) -> tuple[int, str, dict]:
    """The status, Content-Type and JSON body of one raw HTTP/1.1 answer."""
    header, _, body = raw.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = dict(line.split(": ", 1) for line in lines[1:])
    fields = {k.lower(): v for k, v in fields.items()}
    return status, fields.get("content-type", ""), json.loads(body) if body else {}


def send_in_chunks(server, path: str, body: bytes, chunks: int, pause_s: float):
    """POST ``body`` in ``chunks`` pieces ``pause_s`` apart; the answer, or None when the
    server closed the connection before it."""
    host, port = address(server)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.putrequest("POST", path, skip_accept_encoding=True)
    conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    step = -(-len(body) // chunks)
    try:
        for start in range(0, len(body), step):
            time.sleep(pause_s)
            conn.send(body[start : start + step])
    except (BrokenPipeError, ConnectionResetError):
        pass  # dropped before the last piece: the 408 is still there to read
    response = conn.getresponse()
    answer = (response.status, response.getheader("content-type"), response.read())
    conn.close()
    return answer


def requests_counted(server, status: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    pattern = (
        r'augsvc_http_requests_total\{method="POST",route="/v1/augment",status="'
        + status
        + r'"\} ([0-9.e+]+)'
    )
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


@pytest.fixture
def healthy_after(server) -> Iterator[None]:
    yield
    assert httpx.get(f"{server.url}/healthz", timeout=10).json() == {"status": "ok"}


def test_announced_lengths_reserve_no_memory_and_stalled_bodies_are_dropped(server, healthy_after):
    """Twenty clients announce 60 MB each and send 6 bytes: the server holds what they
    sent, not what they announced, and answers each with a 408 that closes it."""
    pid = server.process.pid
    idle = rss_bytes(pid)
    sockets = []
    for _ in range(20):
        sock = socket.create_connection(address(server))
        sock.sendall(head(AUGMENT, ANNOUNCED) + f"--{BOUNDARY[:4]}".encode())
        sockets.append(sock)
    sent_at = time.monotonic()
    peak = idle
    while time.monotonic() < sent_at + GAP_S * 0.8:  # while all twenty are held
        peak = max(peak, rss_bytes(pid))
        time.sleep(0.05)
    answers = [read_until_closed(sock, sent_at + GAP_S + MARGIN_S) for sock in sockets]
    for sock in sockets:
        sock.close()
    assert peak - idle < 100 * 2**20, f"RSS grew by {(peak - idle) / 2**20:.0f} MiB"
    assert all(closed for _, closed in answers), "a stalled connection was left open"
    for raw, _ in answers:
        status, content_type, problem = status_and_problem(raw)
        assert (status, content_type, problem["code"]) == (408, PROBLEM, "request-timeout")
        assert "AUGSVC_BODY_READ_TIMEOUT_S" in problem["detail"]
        assert "after 6 bytes" in problem["detail"]


def test_a_body_arriving_slowly_but_steadily_is_accepted(server, healthy_after):
    """Each piece comes well inside the gap, the whole takes longer than one gap."""
    body = multipart("slow.jpg", jpeg_bytes(64, 48))
    started = time.monotonic()
    status, content_type, data = send_in_chunks(server, AUGMENT, body, chunks=8, pause_s=0.5)
    assert (status, content_type) == (200, "application/x-safetensors"), data[:300]
    assert time.monotonic() - started > GAP_S * 1.5


def test_a_body_dripping_slower_than_the_gap_is_dropped(server, healthy_after):
    body = multipart("drip.jpg", jpeg_bytes(64, 48))
    started = time.monotonic()
    status, content_type, data = send_in_chunks(server, AUGMENT, body, chunks=3, pause_s=GAP_S * 2)
    took = time.monotonic() - started
    assert (status, content_type) == (408, PROBLEM)
    problem = json.loads(data)
    assert problem["code"] == "request-timeout"
    assert "AUGSVC_BODY_READ_TIMEOUT_S" in problem["detail"]
    assert GAP_S < took < GAP_S * 2 + GAP_S + MARGIN_S


def test_a_body_dribbling_inside_every_gap_is_dropped_at_the_deadline(server, healthy_after):
    """A byte just inside each gap would otherwise hold the connection for ever."""
    host, port = address(server)
    with socket.create_connection((host, port)) as sock:
        sock.sendall(head(AUGMENT, 10_000))
        started = time.monotonic()
        while time.monotonic() < started + DEADLINE_S + MARGIN_S:
            answered, _, _ = select.select([sock], [], [], GAP_S / 2)
            if answered:
                break
            try:
                sock.sendall(b"x")
            except OSError:
                break
        raw, _ = read_until_closed(sock, started + DEADLINE_S + MARGIN_S)
    took = time.monotonic() - started
    status, content_type, problem = status_and_problem(raw)
    assert (status, content_type, problem["code"]) == (408, PROBLEM, "request-timeout")
    assert "AUGSVC_BODY_READ_DEADLINE_S" in problem["detail"]
    assert DEADLINE_S <= took < DEADLINE_S + MARGIN_S


def test_a_client_that_goes_away_mid_upload_is_no_server_error(server, healthy_after):
    before = {status: requests_counted(server, status) for status in ("499", "500")}
    log_before = len(server.stderr_tail(10**9))
    with socket.create_connection(address(server)) as sock:
        sock.sendall(head(AUGMENT, 100_000) + b"-" * 1000)
        time.sleep(0.3)  # the server is reading the body now
    deadline = time.monotonic() + 10
    while requests_counted(server, "499") == before["499"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert requests_counted(server, "499") == before["499"] + 1
    assert requests_counted(server, "500") == before["500"]
    log = server.stderr_tail(10**9)[log_before:]
    assert "Traceback" not in log and "ClientDisconnect" not in log, log
    assert "client closed the connection" in log


@pytest.mark.parametrize("path", [AUGMENT, "/v1/preview", "/v1/recipes/bodies/preview"])
def test_a_boundary_longer_than_the_parser_takes_is_a_400_naming_it(server, path):
    boundary = "b" * 300
    body = multipart("a.jpg", jpeg_bytes(64, 48), boundary)
    response = httpx.post(
        f"{server.url}{path}",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "bad-request"
    assert "boundary" in problem["detail"] and "300" in problem["detail"]
