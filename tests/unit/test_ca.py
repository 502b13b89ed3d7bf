"""The lab CA: made once and kept, leaves that verify for their names only, a name
constraint that keeps the CA to the lab domain, and reissue when the CA changes."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from onebox.proxy import ca

DOMAIN = "lab1.internal"


def verify(authority: ca.Authority, cert_pem: bytes, name: str) -> None:
    store = Store([x509.load_pem_x509_certificate(authority.cert_pem)])
    leaf = x509.load_pem_x509_certificate(cert_pem)
    verifier = (
        PolicyBuilder()
        .store(store)
        .time(datetime.datetime.now(datetime.UTC))
        .build_server_verifier(x509.DNSName(name))
    )
    verifier.verify(leaf, [])


def test_authority_is_made_once_and_loaded_after(tmp_path: Path) -> None:
    first = ca.ensure_authority(tmp_path, "lab1", DOMAIN)
    again = ca.ensure_authority(tmp_path, "lab1", DOMAIN)
    assert first.cert_pem == again.cert_pem
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o077 == 0


def test_leaf_verifies_for_its_names_and_wildcards(tmp_path: Path) -> None:
    authority = ca.ensure_authority(tmp_path, "lab1", DOMAIN)
    files = authority.ensure_leaf(("web.lab1.internal", "*.shop.lab1.internal"))
    pem = files.cert.read_bytes()
    verify(authority, pem, "web.lab1.internal")
    verify(authority, pem, "a.shop.lab1.internal")
    with pytest.raises(VerificationError):
        verify(authority, pem, "other.lab1.internal")
    assert files.key.stat().st_mode & 0o077 == 0


def test_ca_cannot_vouch_for_names_outside_the_lab_domain(tmp_path: Path) -> None:
    authority = ca.ensure_authority(tmp_path, "lab1", DOMAIN)
    outside, _ = authority.issue(["bank.example.com"])
    with pytest.raises(VerificationError):
        verify(authority, outside, "bank.example.com")


def test_leaf_is_kept_for_the_same_names(tmp_path: Path) -> None:
    authority = ca.ensure_authority(tmp_path, "lab1", DOMAIN)
    first = authority.ensure_leaf(("web.lab1.internal",)).cert.read_bytes()
    assert authority.ensure_leaf(("web.lab1.internal",)).cert.read_bytes() == first


def test_leaf_from_an_older_ca_is_issued_again(tmp_path: Path) -> None:
    old = ca.ensure_authority(tmp_path, "lab1", DOMAIN)
    stale = old.ensure_leaf(("web.lab1.internal",)).cert.read_bytes()
    for path in (tmp_path / "ca").iterdir():
        path.unlink()
    new = ca.ensure_authority(tmp_path, "lab1", DOMAIN)
    fresh = new.ensure_leaf(("web.lab1.internal",)).cert.read_bytes()
    assert fresh != stale
    verify(new, fresh, "web.lab1.internal")
