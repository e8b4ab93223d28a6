"""Path injection: user values that climb out of the app's directory or replace the path fire;
file names and relative paths that stay inside do not."""

from __future__ import annotations

import os.path
import posixpath

import pytest

from bastion.detect.pathinject import climbs_out, injected

UPLOADS = "/srv/app/uploads"
WINDOWS_UPLOADS = "C:\\app\\uploads\\"

# Names users give to uploaded files: dots, spaces, brackets, accents, other scripts.
FILE_NAMES = [
    "report.pdf", "my photo (1).jpg", "résumé.docx", "数据.csv", "archive.tar.gz",
    "v1..2.txt", "file..txt", "..hidden", "...", "notes 2024-03-01.md", "Ω-test.txt",
    "a b c.txt", "ünïcödé.png", ".env.example", "x.y.z.w", "name with  two spaces.txt",
    "100% done.txt", "[draft] plan.odt", "O'Brien.txt", "smile 😀.gif",
]
# Relative paths under the folder, some with `.` and `..` that stay inside.
NESTED = [
    "2024/03/report.pdf", "a/./b.txt", "a/../b.txt", "team/docs/../specs/x.md",
    "deep/a/b/c/d.txt", "x/y/../../z.txt", "./photo.png", "a/b/../../c/../d.txt",
    "img/thumbs/../full/1.jpg", "2024\\03\\report.pdf",
]


def sinks(value: str) -> list[str]:
    """Ways applications build a path from a user's value."""
    return [
        os.path.join(UPLOADS, value),
        f"{UPLOADS}/{value}",
        f"{UPLOADS}/{value}.json",
        posixpath.join(UPLOADS, "user-42", value),
        WINDOWS_UPLOADS + value,
    ]


LEGITIMATE = [(path, value) for value in FILE_NAMES + NESTED for path in sinks(value)]


@pytest.mark.parametrize(("path", "value"), LEGITIMATE)
def test_names_and_paths_inside_the_folder_pass(path: str, value: str) -> None:
    assert not injected(path, value)


ATTACKS = [
    (os.path.join(UPLOADS, "../../etc/passwd"), "../../etc/passwd"),
    (f"{UPLOADS}/../../../../etc/shadow.txt", "../../../../etc/shadow"),
    (os.path.join(UPLOADS, "/etc/passwd"), "/etc/passwd"),  # join drops the folder
    ("/proc/self/environ", "/proc/self/environ"),
    (WINDOWS_UPLOADS + "..\\..\\windows\\win.ini", "..\\..\\windows\\win.ini"),
    ("C:\\Windows\\System32\\drivers\\etc\\hosts", "C:\\Windows\\System32\\drivers\\etc\\hosts"),
    ("//fileserver/share/secrets.txt", "//fileserver/share/secrets.txt"),
    (f"{UPLOADS}/a/../../config.py", "a/../../config.py"),
    (f"{UPLOADS}/./../../etc/passwd", "./../../etc/passwd"),
    (f"{UPLOADS}/..//..//etc/passwd", "..//..//etc/passwd"),
    (f"{UPLOADS}/../settings.py", "../settings.py"),
    ("/home/app/files/../.ssh/id_rsa", "../.ssh/id_rsa"),
    (f"{UPLOADS}/../../etc/passwd\x00.png", "../../etc/passwd\x00"),
    ("D:\\data\\..\\..\\..\\boot.ini", "..\\..\\..\\boot.ini"),
    (f"{UPLOADS}/sub/../../../etc/hosts", "sub/../../../etc/hosts"),
    ("/srv/app/templates/../../app/secrets.html", "../../app/secrets"),
    (f"{UPLOADS}/../uploads-other/x", "../uploads-other/x"),
    ("../../etc/passwd", "../../etc/passwd"),  # opened relative to the working directory
    (f"{UPLOADS}/..\\..\\etc\\passwd", "..\\..\\etc\\passwd"),  # Windows separators
    (f"{UPLOADS}/{'../' * 12}etc/passwd", "../" * 12 + "etc/passwd"),
]


@pytest.mark.parametrize(("path", "value"), ATTACKS)
def test_traversal_and_absolute_paths_fire(path: str, value: str) -> None:
    assert injected(path, value)


def test_value_must_be_in_the_path() -> None:
    assert not injected(f"{UPLOADS}/report.pdf", "../../etc/passwd")
    assert not injected("/etc/passwd", "")


def test_absolute_value_inside_the_path_is_not_a_replacement() -> None:
    # String concatenation keeps the folder: /srv/app/uploads//etc/passwd stays inside.
    assert not injected(f"{UPLOADS}//etc/passwd", "/etc/passwd")


def test_dotdot_written_by_the_app_is_not_blamed_on_the_user() -> None:
    assert not injected(f"{UPLOADS}/report/../../shared/x", "report")


def test_climbing_out_then_back_in_stays_inside() -> None:
    assert not injected(f"{UPLOADS}/../uploads/x.png", "../uploads/x.png")


def test_dotdot_glued_to_the_app_prefix_is_a_name() -> None:
    # "img_" + "../../x": "img_.." is a directory name, so one ".." only returns to the folder.
    assert not injected(f"{UPLOADS}/img_../../x", "../../x")
    assert injected(f"{UPLOADS}/img_../../../x", "../../../x")


def test_climbs_out_reads_percent_encoded_dots_when_asked() -> None:
    path = "/v1/files/%2e%2e/%2E%2E/admin"
    start = path.index("%")
    assert climbs_out(path, start, len(path), percent_dots=True)
    assert not climbs_out(path, start, len(path))
