"""Shell and command injection: did a user's value change what a command line runs?

A command line run by a shell (`os.system`, `subprocess.run(..., shell=True)`) is safe with a
user's value in it while the value stays inside one word, or one quoted string, of the line
the shell reads: `grep -- 'shoes' /srv/catalog.txt`. It is an exploit when the value brings
shell syntax of its own: separators (`; | & && ||`, newlines), substitutions (`$(..)`,
backticks, `$var`, `${..}`), redirections (`> <`), quotes that close the application's
quoting, a `#` that comments out the rest, a brace expansion, an unquoted space that adds
words, or when the value is the program that runs. `CommandLine` reads the line once, the
way a POSIX shell does, and records what every character is to the shell; a value is then
judged by the characters it covers.

An argv list (`subprocess.run([...])`, no shell) has no syntax, so there the value is an
exploit when it becomes the program, or an option (`-exec`, `--output=/etc/x`) in a place
where the application did not write one; `sh -c SCRIPT`, `cmd /c`, `powershell -Command` and
`eval` hand a script to a shell, which is judged as a command line.

Globs (`*`, `?`, `[..]`) and `~` are not flagged: they expand to existing names only.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Final

from bastion.detect.pathinject import occurrences

__all__ = ["CommandLine", "argv_injected", "injected"]

# What a character is to the shell.
_LITERAL: Final = 0  # part of a word's text (unquoted, quoted or escaped)
_SPACE: Final = 1  # unquoted blank: separates words
_OPERATOR: Final = 2  # ; & | ( ) < > newline, and a comment's '#'
_EXPANSION: Final = 3  # $(..), `..`, $x, ${..}, $((..)), <(..): the shell substitutes text
_QUOTE: Final = 4  # a quote character that opens or closes quoting
_BRACE: Final = 5  # unquoted { or }: brace expansion when the word also has , or ..
_INERT: Final = 6  # comment text: never runs

_SHELLS: Final = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "yash", "busybox"})
_RESERVED: Final = frozenset({
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "case", "esac", "for",
    "in", "select", "function", "!", "{", "}", "time", "coproc",
})
_WRAPPERS: Final = frozenset({
    "sudo", "doas", "env", "nohup", "nice", "ionice", "xargs", "exec", "command", "builtin",
    "time", "timeout", "stdbuf", "setsid", "busybox", "unbuffer", "chrt", "taskset",
})
_NAME_START: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_NAME: Final = _NAME_START + "0123456789"
_SPECIAL: Final = "@*#?$!-0123456789"
_MAX_DEPTH: Final = 3  # nested shells (sh -c 'sh -c ..') judged in turn
_MAX_NESTING: Final = 32  # $( $( ..: deeper text is taken as one expansion


def _program_name(word: str) -> str:
    """`/usr/bin/Bash.exe` -> `bash`: the name a path or a Windows file stands for."""
    name = word[max(word.rfind("/"), word.rfind("\\")) + 1:].lower()
    for suffix in (".exe", ".com", ".bat", ".cmd"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _covers_program(word: str, start: int, end: int) -> bool:
    """Whether word[start:end] holds the whole program name (its last path element), or
    climbs to another directory for it."""
    base = max(word.rfind("/"), word.rfind("\\")) + 1
    return (start <= base and end >= len(word)) or ".." in word[start:end]


def _is_assignment(word: str) -> bool:
    eq = word.find("=")
    return eq > 0 and word[0] in _NAME_START and all(c in _NAME for c in word[:eq])


def _is_script_flag(flag: str) -> bool:
    """`-c`, `-lc`, `-ec`: the next argument is the script a shell runs."""
    return len(flag) >= 2 and flag[0] == "-" and flag[1:].isalpha() and "c" in flag[1:]


class CommandLine:
    """One command line as a POSIX shell reads it, character by character."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.kinds = bytearray(len(text))
        self.word_of = [-1] * len(text)
        self.spans: list[tuple[int, int]] = []  # raw extent of each word
        self.values: list[str] = []  # each word after quote removal
        self.programs: set[int] = set()  # words in command position
        self.scripts: set[int] = set()  # words a nested shell runs (sh -c WORD, eval WORD)
        self._pos = 0
        self._nesting = 0
        self._commands("")

    # ------------------------------------------------------------------ reading

    def _mark(self, start: int, end: int, kind: int) -> None:
        self.kinds[start:end] = bytes([kind]) * (end - start)

    def _commands(self, closer: str) -> None:
        """Read a list of commands up to `closer` (')' or '`', '' for the end of the text)."""
        text, n = self.text, len(self.text)
        words: list[int] = []  # the words of the simple command being read
        chars: list[str] = []  # the current word's value
        word = -1
        expect_program = True
        redirect_target = False

        def end_word() -> None:
            nonlocal word, expect_program, redirect_target
            if word < 0:
                return
            value = "".join(chars)
            chars.clear()
            self.values[word] = value
            start = self.spans[word][0]
            self.spans[word] = (start, self._pos)
            if redirect_target:
                redirect_target = False
            elif expect_program and not (_is_assignment(value) or value in _RESERVED):
                self.programs.add(word)
                expect_program = False
                words.append(word)
            elif not expect_program:
                words.append(word)
            word = -1

        def start_word() -> None:
            nonlocal word
            if word < 0:
                word = len(self.spans)
                self.spans.append((self._pos, self._pos))
                self.values.append("")

        def end_command() -> None:
            nonlocal expect_program
            end_word()
            self._find_scripts(words)
            words.clear()
            expect_program = True

        while self._pos < n:
            i = self._pos
            c = text[i]
            if closer and c == closer:
                break
            if c in " \t\r":
                end_word()
                self.kinds[i] = _SPACE
                self._pos += 1
                continue
            if c == "#" and word < 0:
                end = text.find("\n", i)
                end = n if end < 0 else end
                self.kinds[i] = _OPERATOR
                self._mark(i + 1, end, _INERT)
                self._pos = end
                continue
            if c in "\n;&|()" and not (c == "&" and text.startswith(">", i + 1)):
                end_command()
                j = i + 1
                if c in "&|;" and j < n and text[j] in c + ("&" if c == "|" else ""):
                    j += 1
                self._mark(i, j, _OPERATOR)
                self._pos = j
                continue
            if c in "<>&":
                if text.startswith("(", i + 1):  # process substitution <(..) >(..)
                    start_word()
                    self._nested(i, 2, ")")
                    continue
                end_word()
                j = i + 1
                while j < n and j - i < 3 and text[j] in "<>&|":
                    j += 1
                self._mark(i, j, _OPERATOR)
                self._pos = j
                redirect_target = True
                continue
            start_word()
            self.word_of[i] = word
            if c == "\\":
                if i + 1 < n:
                    chars.append(text[i + 1])
                    self.word_of[i + 1] = word
                self._pos = min(i + 2, n)
            elif c == "'":
                self._single_quoted(chars, word)
            elif c == '"':
                self._double_quoted(chars, word)
            elif c == "$":
                self._dollar(chars, word, quoted=False)
            elif c == "`":
                self._nested(i, 1, "`")
            elif c in "{}":
                self.kinds[i] = _BRACE
                chars.append(c)
                self._pos += 1
            else:
                chars.append(c)
                self._pos += 1
        end_command()

    def _nested(self, start: int, opener: int, closer: str) -> None:
        """`$(..)`, `` `..` ``, `<(..)`: commands inside a word, read on their own."""
        if self._nesting >= _MAX_NESTING:
            self._mark(start, len(self.text), _EXPANSION)
            self._pos = len(self.text)
            return
        self._mark(start, start + opener, _EXPANSION)
        self._pos = start + opener
        self._nesting += 1
        self._commands(closer)
        self._nesting -= 1
        if self._pos < len(self.text):
            self.kinds[self._pos] = _EXPANSION
            self._pos += 1

    def _single_quoted(self, chars: list[str], word: int) -> None:
        i = self._pos
        end = self.text.find("'", i + 1)
        end = len(self.text) if end < 0 else end
        self.kinds[i] = _QUOTE
        chars.append(self.text[i + 1:end])
        for k in range(i, min(end + 1, len(self.text))):
            self.word_of[k] = word
        if end < len(self.text):
            self.kinds[end] = _QUOTE
        self._pos = min(end + 1, len(self.text))

    def _double_quoted(self, chars: list[str], word: int) -> None:
        text, n = self.text, len(self.text)
        self.kinds[self._pos] = _QUOTE
        self._pos += 1
        while self._pos < n:
            i = self._pos
            c = text[i]
            self.word_of[i] = word
            if c == '"':
                self.kinds[i] = _QUOTE
                self._pos += 1
                return
            if c == "\\" and i + 1 < n and text[i + 1] in '"\\$`\n':
                chars.append(text[i + 1])
                self.word_of[i + 1] = word
                self._pos += 2
            elif c == "$":
                self._dollar(chars, word, quoted=True)
            elif c == "`":
                self._nested(i, 1, "`")
            else:
                chars.append(c)
                self._pos += 1

    def _dollar(self, chars: list[str], word: int, quoted: bool) -> None:
        text, n, i = self.text, len(self.text), self._pos
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "(" and text.startswith("((", i + 1):
            end = text.find("))", i + 3)
            end = n if end < 0 else end + 2
            self._expansion(i, end, chars, word)
        elif nxt == "(":
            self._nested(i, 2, ")")
            chars.append(text[i:self._pos])
        elif nxt == "{":
            end = text.find("}", i + 2)
            self._expansion(i, n if end < 0 else end + 1, chars, word)
        elif nxt and (nxt in _NAME_START):
            end = i + 1
            while end < n and text[end] in _NAME:
                end += 1
            self._expansion(i, end, chars, word)
        elif nxt and nxt in _SPECIAL:
            self._expansion(i, i + 2, chars, word)
        elif nxt == "'" and not quoted:  # $'..': ANSI-C quoting, escapes resolved later
            self.kinds[i] = _QUOTE
            self._pos = i + 1
            self._single_quoted(chars, word)
        elif nxt == '"' and not quoted:  # $"..": a translated string
            self.kinds[i] = _QUOTE
            self._pos = i + 1
            self._double_quoted(chars, word)
        else:
            chars.append("$")
            self._pos = i + 1

    def _expansion(self, start: int, end: int, chars: list[str], word: int) -> None:
        self._mark(start, end, _EXPANSION)
        for k in range(start, end):
            self.word_of[k] = word
        chars.append(self.text[start:end])
        self._pos = end

    def _find_scripts(self, words: list[int]) -> None:
        """Note the words that a shell started by this simple command runs as a script."""
        if not words:
            return
        values = self.values
        program = _program_name(values[words[0]]) if words[0] < len(values) else ""
        if program == "eval":
            self.scripts.update(words[1:])
        elif program in _SHELLS:
            for before, after in pairwise(words[1:]):
                if _is_script_flag(values[before]):
                    self.scripts.add(after)
                    break

    # ------------------------------------------------------------------ judging

    def _brace_expands(self, word: int) -> bool:
        start, end = self.spans[word]
        braces = [k for k in range(start, end) if self.kinds[k] == _BRACE]
        inside = self.text[braces[0]:braces[-1]] if len(braces) > 1 else ""
        return "," in inside or ".." in inside

    def reshaped_by(self, start: int, end: int) -> bool:
        """Whether text[start:end] (a user's value) brings shell syntax or names the program:
        anything but literal text inside one word (blank edges aside)."""
        kinds = self.kinds
        while start < end and kinds[start] == _SPACE:
            start += 1
        while end > start and kinds[end - 1] == _SPACE:
            end -= 1
        if start >= end or all(kinds[k] == _INERT for k in range(start, end)):
            return False
        word = self.word_of[start]
        brace = False
        for k in range(start, end):
            kind = kinds[k]
            if kind in (_SPACE, _OPERATOR, _EXPANSION, _QUOTE) or self.word_of[k] != word:
                return True
            brace = brace or kind == _BRACE
        if word < 0 or (brace and self._brace_expands(word)):
            return True
        return word in self.programs and self._covers_program(word, start, end)

    def _covers_program(self, word: int, start: int, end: int) -> bool:
        """Whether text[start:end] is the whole name of the program `word` runs (quotes
        around it aside), or climbs to another directory for it."""
        word_start, word_end = self.spans[word]
        text = self.text
        base = max(text.rfind("/", word_start, start), text.rfind("\\", word_start, start)) + 1
        base = max(base, word_start)
        kinds = self.kinds
        return ".." in text[start:end] or (
            all(kinds[k] == _QUOTE for k in range(base, start))
            and all(kinds[k] == _QUOTE for k in range(end, word_end))
        )

    def injected(self, param: str, depth: int = 0) -> bool:
        """Whether `param`, wherever it appears in this line, reshapes it (see the module
        docstring); values run by a nested shell (`sh -c '..'`) are judged in that script."""
        if not param:
            return False
        for start in occurrences(self.text, param):
            end = start + len(param)
            if self.reshaped_by(start, end):
                return True
            word = self.word_of[start]
            script = self.values[word] if word in self.scripts else ""
            if depth < _MAX_DEPTH and param in script and CommandLine(script).injected(
                    param, depth + 1):
                return True
        return False


def injected(command: str, param: str) -> bool:
    """True when `param`, found in the shell `command` line, adds shell syntax to it or
    names the program it runs."""
    return CommandLine(command).injected(param)


# ---------------------------------------------------------------------- argv


def _is_option(value: str) -> bool:
    """`-x`, `--long`, `-exec`; a negative number (`-5`, `-1.5`) is a value."""
    if len(value) < 2 or value[0] != "-":
        return False
    return not value[1:].replace(".", "", 1).isdigit()


def _program_positions(argv: Sequence[str]) -> list[int]:
    """argv[0], and the program a wrapper (`sudo`, `env`, `timeout 5` ...) runs in turn."""
    positions = [0]
    index = 0
    while _program_name(argv[index]) in _WRAPPERS:
        index += 1
        while index < len(argv) and (
            argv[index].startswith("-") or _is_assignment(argv[index])
            or argv[index].rstrip("smhd").replace(".", "", 1).isdigit()
        ):
            index += 1
        if index >= len(argv):
            break
        positions.append(index)
    return positions


def _script(argv: Sequence[str]) -> str | None:
    """The script that argv hands to a shell: `sh -c S`, `cmd /c ..`, `powershell -Command ..`."""
    program = _program_name(argv[0])
    for index, arg in enumerate(argv[1:], 1):
        low = arg.lower()
        if program in _SHELLS and _is_script_flag(arg):
            return argv[index + 1] if index + 1 < len(argv) else None
        if program == "cmd" and low in ("/c", "/k", "/r"):
            return " ".join(argv[index + 1:])
        if program in ("powershell", "pwsh") and low in ("-c", "-command"):
            return " ".join(argv[index + 1:])
    return None


def argv_injected(argv: Sequence[str], param: str) -> bool:
    """True when `param` becomes the program of `argv` (or of a wrapper in it), an option
    where the application wrote none (before any `--`), or shell syntax in a script that
    `argv` hands to a shell."""
    if not param or not argv:
        return False
    programs = _program_positions(argv)
    option = _is_option(param)
    options_ended = False
    for index, arg in enumerate(argv):
        if index in programs:
            for start in occurrences(arg, param):
                if _covers_program(arg, start, start + len(param)):
                    return True
            continue
        if arg == "--" and not options_ended:
            options_ended = True
            continue
        if option and not options_ended and arg.startswith(param):
            return True
    script = _script(argv)
    return script is not None and param in script and CommandLine(script).injected(param)
