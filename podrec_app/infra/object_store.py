"""SeaweedFS as the S3-API object store of an ``s3a://`` lake whose endpoint is on loopback, with
mutual TLS between its parts."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from podrec.settings import PodrecSettings
from podrec_app.infra.supervisor import InfraError, Service


def object_store_service(settings: PodrecSettings) -> list[Service]:
    """SeaweedFS (master, volume server, filer and S3 gateway in one ``weed server``) for an
    ``s3a://`` lake whose ``PODREC_LAKE_S3_ENDPOINT`` is on loopback; none otherwise. Its one S3
    identity is the ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` of the environment, and its inner
    ports answer only its own parts (``seaweedfs_security``); it is healthy once the lake's bucket
    answers (created on the first start)."""
    lake = settings.lake
    if not (lake.on_object_store and lake.s3_endpoint):
        return []
    endpoint = urlsplit(lake.s3_endpoint)
    host, port = endpoint.hostname or "127.0.0.1", endpoint.port or 80
    bucket = urlsplit(lake.root).hostname or ""
    home = settings.data.path / "seaweedfs"
    binary = settings.cache.path / "bin" / "weed"
    store = settings.object_store

    def key_pair() -> tuple[str, str]:
        pair = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not (pair[0] and pair[1]):
            raise InfraError(
                "the local object store needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
                "environment (the cluster profile mints them under <data>/secrets)"
            )
        return pair[0], pair[1]

    def prepare() -> None:
        access, secret = key_pair()
        (home / "data").mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "podrec",
                    "credentials": [{"accessKey": access, "secretKey": secret}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        config = home / "s3.json"
        config.touch(mode=0o600)  # it holds the secret key: readable by its owner only
        config.write_text(json.dumps(identities))
        seaweedfs_security(home)

    def grpc(http_port: int) -> int:
        """SeaweedFS's convention (+ 10000), made explicit on the command line and port-checked."""
        return http_port + 10000

    def command() -> list[str]:
        if not binary.exists():
            raise InfraError(f"SeaweedFS is not built at {binary}; run `make setup` first.")
        # Every port is given, gRPC ones too, and the S3 gateway's Iceberg and Lance catalogs
        # (fixed ports 8181 and 9101 by default) are off, so two stores never collide.
        return [
            str(binary), f"-config_dir={home}", "server", f"-dir={home / 'data'}", f"-ip={host}",
            f"-ip.bind={host}",
            f"-master.port={store.master_port}", f"-master.port.grpc={grpc(store.master_port)}",
            "-master.volumeSizeLimitMB=1024",
            f"-volume.port={store.volume_port}", f"-volume.port.grpc={grpc(store.volume_port)}",
            "-volume.max=0",
            "-filer", f"-filer.port={store.filer_port}", f"-filer.port.grpc={grpc(store.filer_port)}",
            "-s3", f"-s3.port={port}", f"-s3.port.grpc={grpc(port)}", f"-s3.config={home / 's3.json'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]  # fmt: skip

    def probe() -> bool:
        from pyarrow import fs

        access, secret = key_pair()
        try:
            s3 = fs.S3FileSystem(
                access_key=access, secret_key=secret, endpoint_override=f"{host}:{port}",
                scheme=endpoint.scheme, region="us-east-1", allow_bucket_creation=True,
                connect_timeout=1, request_timeout=2,
            )  # fmt: skip
            if s3.get_file_info(bucket).type != fs.FileType.Directory:
                s3.create_dir(bucket)  # raises if the bucket cannot be made
            return True
        except OSError:
            return False

    ports = (store.master_port, store.volume_port, store.filer_port)
    return [
        Service(
            name="seaweedfs",
            host=host,
            port=port,
            extra_ports=(*ports, *(grpc(p) for p in (*ports, port))),
            setting="PODREC_LAKE_S3_ENDPOINT (the parts behind it: PODREC_OBJECT_STORE_*_PORT)",
            process_marker=str(home / "data"),
            command=command,
            prepare=prepare,
            probe=probe,
            state_dir=home,
        )
    ]


# The parts of `weed server` that serve gRPC, and its clients of them: one certificate for all (SeaweedFS
# checks no host name).
SEAWEEDFS_GRPC = ("master", "volume", "filer", "s3", "client")


def seaweedfs_security(home: Path) -> None:
    """SeaweedFS's own ``security.toml`` in ``home`` (owner-only; ``weed -config_dir`` reads it), new at
    every start, so its internal ports are closed to anyone on the machine who lacks its files:

    - the volume servers take a write (``[jwt.signing]``) or a read (``[jwt.signing.read]``) only with a
      token the master signed for that one file, and the filer's HTTP API only with one the S3 gateway
      signed (``[jwt.filer_signing]``, ``.read``), so the store's data is reached through the S3 API
      and its credentials alone;
    - every gRPC port (master, volume, filer, S3) requires mutual TLS (``[grpc]``) with a certificate
      of a CA made here and forgotten at once: its key is deleted after signing the one certificate.

    The keys live no longer than the process (a token expires in seconds), so nothing is kept between
    starts. ``WEED_JWT_*`` variables set by an operator still win, as SeaweedFS documents."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise InfraError("the local object store needs openssl for its certificates; run `make setup` first.")
    tls = home / "tls"
    shutil.rmtree(tls, ignore_errors=True)
    tls.mkdir(mode=0o700, parents=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    (tls / "node.ext").write_text(
        "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    steps = [
        ["req", "-x509", *ec, "-days", "3650", "-subj", "/CN=podrec-seaweedfs-ca",
         "-keyout", "ca.key", "-out", "ca.crt"],
        ["req", *ec, "-subj", "/CN=seaweedfs", "-keyout", "node.key", "-out", "node.csr"],
        ["x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-days", "3650", "-extfile", "node.ext", "-out", "node.crt"],
    ]  # fmt: skip
    try:
        for step in steps:
            done = subprocess.run([openssl, *step], cwd=tls, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise InfraError(f"making the object store's certificates failed:\n{done.stderr[-2000:]}")
    finally:
        for name in ("ca.key", "ca.srl", "node.csr", "node.ext"):
            (tls / name).unlink(missing_ok=True)
    keys = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
    sections = [f"[{name}]\nkey = {json.dumps(secrets.token_urlsafe(32))}" for name in keys]
    sections.append(f"[grpc]\nca = {json.dumps(str(tls / 'ca.crt'))}")
    cert, key = json.dumps(str(tls / "node.crt")), json.dumps(str(tls / "node.key"))
    sections += [f"[grpc.{part}]\ncert = {cert}\nkey = {key}" for part in SEAWEEDFS_GRPC]
    config = home / "security.toml"
    config.touch(mode=0o600)
    config.chmod(0o600)
    config.write_text("\n\n".join(sections) + "\n")
