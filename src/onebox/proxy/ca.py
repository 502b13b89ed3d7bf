"""The lab's certificate authority: an EC P-256 key made once in the gateway's data
volume, so it outlives gateway recreation, and the leaf certificates it signs for the
lab's names. The CA is name-constrained to the lab domain: a user who trusts it trusts
it for nothing else. Reading the CA out of a gateway for `onebox ca export` lives here
too; issuing happens only inside the gateway."""

from __future__ import annotations

import datetime
import hashlib
import io
import logging
import os
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import docker.errors
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from onebox.engine import Engine
from onebox.errors import NotFound, OperationFailed

log = logging.getLogger(__name__)

CA_DIR = "ca"
CERTS_DIR = "certs"
CA_VALIDITY = datetime.timedelta(days=3650)
# Browsers refuse leaf certificates valid for longer than 398 days.
LEAF_VALIDITY = datetime.timedelta(days=397)
RENEW_BEFORE = datetime.timedelta(days=30)
# A certificate dated a little in the past still verifies on a client whose clock lags.
BACKDATE = datetime.timedelta(hours=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Writes whole files only: a reader sees the old file or the new one, never half."""
    partial = path.with_name(f".{path.name}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


def _key_usage(signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class LeafFiles:
    """Where nginx finds one certificate and its key."""

    cert: Path
    key: Path


class Authority:
    """One lab's CA, loaded from (or first made in) `directory`."""

    def __init__(
        self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, directory: Path
    ) -> None:
        self.key = key
        self.cert = cert
        self.directory = directory
        self._key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())

    @property
    def cert_path(self) -> Path:
        return self.directory / CA_DIR / "ca.pem"

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, names: Sequence[str]) -> tuple[bytes, bytes]:
        """A server certificate for `names` (the first is its subject), and its key."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        # Clients match the SAN; a common name holds at most 64 characters, so a longer
        # name is left out of the subject rather than refused.
        common = [x509.NameAttribute(NameOID.COMMON_NAME, names[0])] if len(names[0]) <= 64 else []
        subject = x509.Name(common)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + LEAF_VALIDITY)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signs_certificates=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(self._key_id),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def ensure_leaf(self, names: Sequence[str]) -> LeafFiles:
        """The certificate for exactly these names, issued on first need and kept in the
        data volume; a new one when it nears its end or another CA signed it."""
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:20]
        folder = self.directory / CERTS_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        files = LeafFiles(cert=folder / f"{digest}.pem", key=folder / f"{digest}.key")
        if self._still_good(files):
            return files
        log.info("Issuing a certificate for %s", ", ".join(names))
        cert, key = self.issue(names)
        _write(files.key, key, 0o600)
        _write(files.cert, cert, 0o644)
        return files

    def _still_good(self, files: LeafFiles) -> bool:
        if not (files.cert.exists() and files.key.exists()):
            return False
        try:
            cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
            issuer_id = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        except (ValueError, x509.ExtensionNotFound):
            return False
        same_ca = issuer_id.value.key_identifier == self._key_id.digest
        return same_ca and cert.not_valid_after_utc - _now() > RENEW_BEFORE


def ensure_authority(directory: Path, lab: str, domain: str) -> Authority:
    """Loads the lab's CA from `directory`, making it on the first start."""
    folder = directory / CA_DIR
    key_path, cert_path = folder / "ca.key", folder / "ca.pem"
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise OperationFailed(
                f"The CA key at {key_path} is not an EC key",
                f"move {folder} away and restart the gateway for a new CA",
            )
        return Authority(key, x509.load_pem_x509_certificate(cert_path.read_bytes()), directory)
    log.info("Creating the certificate authority of lab '%s'", lab)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(key, lab, domain)
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Authority(key, cert, directory)


def _self_signed(key: ec.EllipticCurvePrivateKey, lab: str, domain: str) -> x509.Certificate:
    now = _now()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "onebox"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"onebox lab {lab} CA ({domain})"[:64]),
        ]
    )
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(
            x509.NameConstraints(permitted_subtrees=[x509.DNSName(domain)], excluded_subtrees=None),
            critical=True,
        )
        .add_extension(key_id, critical=False)
        .sign(key, hashes.SHA256())
    )


def export(
    engine: Engine, lab: str, data_dir: str = "/var/lib/onebox", wait: float = 10.0
) -> bytes:
    """The CA certificate (PEM) of a lab's gateway, waiting a little for a gateway that
    is still making it on its first start."""
    gateway = engine.gateway(lab)
    if gateway is None:
        raise NotFound(f"Lab '{lab}' has no gateway", f"bring it up with `onebox up --lab {lab}`")
    path = f"{data_dir}/{CA_DIR}/ca.pem"
    deadline = time.monotonic() + wait
    while True:
        try:
            stream, _ = engine.client.api.get_archive(gateway.id, path)
            return _single_file(b"".join(stream))
        except docker.errors.NotFound as exc:
            if time.monotonic() > deadline:
                raise OperationFailed(
                    f"The gateway of lab '{lab}' has no CA certificate at {path}",
                    f"check `docker logs {gateway.name}`; `onebox up --lab {lab}` starts it",
                ) from exc
        time.sleep(0.2)


def _single_file(archive: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member else None
        if handle is None:
            raise OperationFailed(
                "The gateway sent an empty archive for the CA certificate",
                "run `onebox ca export` again",
            )
        return handle.read()
