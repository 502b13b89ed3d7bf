"""authorized_keys parsing for the SSH entry: what is accepted, what is skipped or
refused, and that fingerprints match OpenSSH's `ssh-keygen -l`."""

from __future__ import annotations

from pathlib import Path

import pytest

from onebox.errors import InvalidInput, NotFound
from onebox.ssh import keys

ALICE = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK2hRfAF1DMIrKNCH2huUP2MJI3SHWp4HyqO/z1FZ84A "
    "alice@laptop"
)
ALICE_FP = "SHA256:rFW/A7I16iSaNBHZg9Fn/88ItlXcd7YwDeJRUyDATP8"
BOB = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMjX46Oku5BJStSM"
    "xnYIBSO6W3pdccgzve5WY9/f3jvIPsmtBGXCWxzZREZJMDPU0oQyB0V5y4x0TrfiZyInkWA= bob"
)
BOB_FP = "SHA256:cyP3+HKMuGv9Kjy2wrQTdvOKmkkAy6dM9MU3yoSK4P0"


def test_parse_gives_fingerprints_like_ssh_keygen() -> None:
    found, problems = keys.parse_authorized_keys(f"{ALICE}\n{BOB}\n", "f")
    assert problems == []
    assert [(k.fingerprint, k.comment) for k in found] == [
        (ALICE_FP, "alice@laptop"),
        (BOB_FP, "bob"),
    ]


def test_parse_skips_comments_blank_lines_and_keeps_comment_spaces() -> None:
    text = f"# header\n\n   \n{ALICE.rsplit(' ', 1)[0]} Alice on her laptop\n"
    found, problems = keys.parse_authorized_keys(text, "f")
    assert problems == []
    assert found[0].comment == "Alice on her laptop"


def test_parse_skips_bad_lines_and_keeps_the_good_ones() -> None:
    text = f"garbage here\nssh-ed25519 notbase64!!\nssh-ed25519\n{ALICE}\n"
    found, problems = keys.parse_authorized_keys(text, "authorized_keys")
    assert [k.fingerprint for k in found] == [ALICE_FP]
    assert [p.split(" ")[1] for p in problems] == ["1", "2", "3"]


def test_parse_refuses_options_before_the_key() -> None:
    found, problems = keys.parse_authorized_keys(f'command="/bin/true" {ALICE}\n', "f")
    assert found == []
    assert problems == ["Line 1 of f starts with 'command=\"/bin/true\"', not a key type"]


def test_problem_messages_never_contain_the_key_text() -> None:
    blob = ALICE.split()[1]
    broken = f"ssh-rsa {blob}"  # a real blob under the wrong type
    _, problems = keys.parse_authorized_keys(broken, "f")
    assert problems and all(blob not in p for p in problems)


def test_read_public_keys_refuses_a_private_key() -> None:
    text = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n"
    with pytest.raises(InvalidInput, match="holds a private key"):
        keys.read_public_keys(text, "id_ed25519")


def test_read_public_keys_refuses_an_empty_file_and_a_bad_line() -> None:
    with pytest.raises(InvalidInput, match="holds no public key"):
        keys.read_public_keys("# nothing\n", "x.pub")
    with pytest.raises(InvalidInput, match="Line 2 of 'x.pub'"):
        keys.read_public_keys(f"{ALICE}\nnot a key\n", "x.pub")


def test_render_then_parse_round_trips() -> None:
    found, _ = keys.parse_authorized_keys(f"{ALICE}\n{BOB}\n", "f")
    again, problems = keys.parse_authorized_keys(keys.render(found), "f")
    assert problems == [] and again == found


def test_merge_adds_only_new_keys() -> None:
    alice, bob = keys.read_public_keys(f"{ALICE}\n{BOB}\n", "f")
    combined, added = keys.merge([alice], [alice, bob, bob])
    assert combined == [alice, bob]
    assert added == [bob]


def test_without_accepts_the_fingerprint_with_or_without_its_prefix() -> None:
    alice, bob = keys.read_public_keys(f"{ALICE}\n{BOB}\n", "f")
    assert keys.without([alice, bob], BOB_FP, "lab")[0] == [alice]
    assert keys.without([alice, bob], BOB_FP.removeprefix("SHA256:"), "lab")[1] == bob
    with pytest.raises(NotFound, match="onebox ssh keys --lab lab"):
        keys.without([alice], BOB_FP, "lab")


def test_host_key_is_made_once_and_kept(tmp_path: Path) -> None:
    first = keys.ensure_host_key(tmp_path)
    second = keys.ensure_host_key(tmp_path)
    assert first.get_fingerprint() == second.get_fingerprint()
    assert (tmp_path / keys.HOST_KEY).stat().st_mode & 0o777 == 0o600
