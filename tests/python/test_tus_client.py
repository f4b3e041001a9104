"""The real `tuspy` client (tus 1.0) against a running Tenfold: checksummed
chunks, and a resume after a dropped connection."""

import hashlib
import random
import socket
import time
import urllib.parse

import requests
from tusclient import client as tus_client
from tusclient.uploader import Uploader

SIGN_UP = "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }"
VERSION = "query($id: ID!) { node(id: $id) { ... on DatasetVersion { status sha256 sizeBytes stats validation { kind status } } } }"


class Sha256Uploader(Uploader):
    """tuspy checksums with sha1 unless told otherwise; we offer both."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def graphql(base_url: str, query: str, variables: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    res = requests.post(f"{base_url}/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=30)
    body = res.json()
    assert "errors" not in body, body
    return body["data"]


def sign_up(base_url: str, email: str) -> str:
    data = graphql(base_url, SIGN_UP, {"i": {"email": email, "password": "correct horse battery", "organizationName": "Tus Co"}})
    return data["signUp"]["accessToken"]


def ratings_csv(path, rows: int = 20_000) -> bytes:
    """A real interactions table: 400 users rating 150 items."""
    rng = random.Random(7)
    lines = ["user_id,item_id,rating,timestamp"]
    lines += [f"u{rng.randrange(400)},i{rng.randrange(150)},{rng.randint(1, 5)},{1_600_000_000 + n}" for n in range(rows)]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(data)
    return data


def ready_version(base_url: str, token: str, upload_url: str) -> dict:
    """The dataset version an upload became, once validated."""
    head = requests.head(upload_url, headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}, timeout=30)
    assert head.status_code == 200, head.status_code
    version_id = head.headers["Tenfold-Dataset-Version"]
    for _ in range(600):
        node = graphql(base_url, VERSION, {"id": version_id}, token)["node"]
        if node["status"] != "PENDING":
            return node
        time.sleep(0.1)
    raise AssertionError(f"version {version_id} still PENDING")


def test_tuspy_uploads_a_file_in_checksummed_chunks(base_url, fresh_email, tmp_path):
    token = sign_up(base_url, fresh_email)
    data = ratings_csv(tmp_path / "ratings.csv")
    client = tus_client.TusClient(f"{base_url}/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    uploader = Sha256Uploader(
        file_path=str(tmp_path / "ratings.csv"),
        client=client,
        chunk_size=64 * 1024,
        metadata={"filename": "ratings.csv", "family": "RECOMMENDATION", "dataset": "ratings"},
        upload_checksum=True,
    )
    uploader.upload()
    assert uploader.offset == len(data)
    version = ready_version(base_url, token, uploader.url)
    assert version["status"] == "READY", version
    assert version["sha256"] == hashlib.sha256(data).hexdigest()
    assert version["validation"] == {"kind": "VALIDATE", "status": "SUCCEEDED"}
    assert version["stats"]["interactions"] == 20_000


def drop_mid_patch(upload_url: str, token: str, body: bytes, sent: int) -> None:
    """Starts a PATCH of `body` and drops the connection after `sent` bytes."""
    url = urllib.parse.urlsplit(upload_url)
    head = (
        f"PATCH {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
        f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head + body[:sent])
        time.sleep(0.5)
        sock.shutdown(socket.SHUT_RDWR)


def test_tuspy_resumes_an_upload_after_a_dropped_connection(base_url, fresh_email, tmp_path):
    token = sign_up(base_url, fresh_email)
    data = ratings_csv(tmp_path / "ratings.csv")
    client = tus_client.TusClient(f"{base_url}/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    metadata = {"filename": "ratings.csv", "family": "RECOMMENDATION"}
    first = Uploader(file_path=str(tmp_path / "ratings.csv"), client=client, metadata=metadata)
    url = first.create_url()
    # The whole file in one PATCH, cut off after 200 kB: the bytes that
    # arrived are kept, and HEAD says where to resume.
    drop_mid_patch(url, token, data, 200_000)
    headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    for _ in range(100):
        if int(requests.head(url, headers=headers, timeout=30).headers["Upload-Offset"]) > 0:
            break
        time.sleep(0.1)
    resumed = Uploader(file_path=str(tmp_path / "ratings.csv"), client=client, url=url, chunk_size=128 * 1024)
    assert 0 < resumed.offset <= 200_000, resumed.offset
    resumed.upload()
    assert resumed.offset == len(data)
    version = ready_version(base_url, token, url)
    assert version["status"] == "READY", version
    assert version["sha256"] == hashlib.sha256(data).hexdigest()
    assert version["sizeBytes"] == len(data)
