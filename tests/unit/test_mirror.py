"""Reading the host's Debian mirrors from apt sources, and the sources an image gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from onebox.errors import NotFound
from onebox.images.mirror import (
    AptSource,
    archive_uri,
    host_sources,
    image_sources,
    parse_deb822,
    parse_one_line,
    suite_kind,
)

DEB822 = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.example/archive/debian-security/20250520T000000Z
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/etc/apt/keyrings/d.gpg] http://one.example/debian/ bookworm main contrib
deb-src http://one.example/debian bookworm main
deb http://one.example/debian-security bookworm-security main  # trailing comment
"""


def test_deb822_reads_uris_and_suites_and_ignores_comment_lines() -> None:
    assert parse_deb822(DEB822) == [
        AptSource("http://mirror.example/debian", ("bookworm", "bookworm-updates"), ("main",)),
        AptSource("http://security.example/debian-security", ("bookworm-security",), ("main",)),
    ]


def test_deb822_skips_source_only_and_disabled_stanzas() -> None:
    text = (
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\n"
        "Enabled: no\n"
    )
    assert parse_deb822(text) == []


def test_deb822_gives_one_source_per_uri_and_follows_continuation_lines() -> None:
    text = "Types: deb\nURIs: http://a.example/debian\n http://b.example/debian\nSuites: bookworm\n"
    assert [source.uri for source in parse_deb822(text)] == [
        "http://a.example/debian",
        "http://b.example/debian",
    ]


def test_one_line_reads_deb_lines_with_options_and_ignores_comments_and_deb_src() -> None:
    assert parse_one_line(ONE_LINE) == [
        AptSource("http://one.example/debian", ("bookworm",), ("main", "contrib")),
        AptSource("http://one.example/debian-security", ("bookworm-security",), ("main",)),
    ]


@pytest.mark.parametrize(
    ("suite", "kind"),
    [
        ("bookworm", ""),
        ("bookworm-updates", "updates"),
        ("bookworm-security", "security"),
        ("buster/updates", "updates"),
        ("stable", ""),
    ],
)
def test_suite_kind_is_the_part_after_the_codename(suite: str, kind: str) -> None:
    assert suite_kind(suite) == kind


def test_archive_uri_is_the_mirror_that_carries_the_release() -> None:
    sources = parse_deb822(DEB822)
    assert archive_uri(sources) == "http://mirror.example/debian"
    assert archive_uri(sources, "security") == "http://security.example/debian-security"


def test_archive_uri_without_a_release_says_what_to_add() -> None:
    with pytest.raises(NotFound) as caught:
        archive_uri(parse_one_line("# deb http://x.example/debian bookworm main\n"))
    assert caught.value.fix is not None and "sources.list" in caught.value.fix


def test_image_sources_follow_the_host_mirrors_for_each_kind_of_suite() -> None:
    text = image_sources(parse_one_line(ONE_LINE), "bookworm")
    assert parse_deb822(text) == [
        AptSource(
            "http://one.example/debian", ("bookworm", "bookworm-updates"), ("main", "contrib")
        ),
        AptSource("http://one.example/debian-security", ("bookworm-security",), ("main",)),
    ]
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in text


def test_image_sources_leave_out_security_when_the_host_names_no_mirror_for_it() -> None:
    host = [AptSource("http://mirror.example/debian", ("bookworm",), ("main",))]
    assert [source.suites for source in parse_deb822(image_sources(host, "bookworm"))] == [
        ("bookworm", "bookworm-updates")
    ]


def test_image_sources_name_the_image_release_even_on_a_newer_host() -> None:
    host = [AptSource("http://mirror.example/debian", ("trixie", "trixie-updates"), ("main",))]
    assert parse_deb822(image_sources(host, "bookworm"))[0].suites == (
        "bookworm",
        "bookworm-updates",
    )


def test_host_sources_reads_sources_list_then_its_directory_in_order(tmp_path: Path) -> None:
    apt = tmp_path / "etc/apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text("deb http://first.example/debian bookworm main\n")
    (apt / "sources.list.d/b.sources").write_text(DEB822)
    (apt / "sources.list.d/a.list").write_text("deb http://second.example/debian sid main\n")
    (apt / "sources.list.d/c.sources.disabled").write_text(DEB822)
    uris = [source.uri for source in host_sources(tmp_path)]
    assert uris == [
        "http://first.example/debian",
        "http://second.example/debian",
        "http://mirror.example/debian",
        "http://security.example/debian-security",
    ]
