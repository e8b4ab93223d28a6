"""Tokenizer-based shell (OS command) injection detection.

A value is dangerous when, pasted into a shell command line by the application, it makes the
shell run a command the application did not intend.  The shell decides that with its lexer, so
we run a simplified but faithful POSIX sh / bash lexer (with the Windows cmd.exe caret escape
and PowerShell command names on top) over the value and judge what it produces:

* words are normalised the way the shell would build them: quotes are removed and their content
  joined (``c''at``, ``c"a"t``), backslash escapes resolved (``c\\at``), empty expansions dropped
  (``c$@at``, ``cat$u``, ``pi$()ng``, ``${x}``), ``$IFS`` turned into a word break, variables
  assigned earlier in the value substituted (``a=nc;$a -e sh``), brace expansions expanded
  (``{,ifconfig}``) and unquoted globs matched against command names (``/bin/ca?``);
* the command position of every simple command is found: the start of the value, after a
  separator (``;`` ``|`` ``||`` ``&&`` ``&`` newline), inside a command substitution
  (``$(...)``, backticks) or a process substitution (``<(...)``, ``>(...)``), after wrapper
  commands such as ``time``, ``nohup``, ``sudo`` or ``env``;
* the word found there is looked up in a curated table of Unix and Windows utilities and
  interpreters, in three tiers, and judged with its arguments.

The tiers keep natural language out: a word such as ``cat``, ``time`` or ``ping`` is an English
word, so it only counts when the shell structure around it is unambiguous (inside a
substitution, right after a separator that opens the value, or followed by shell-looking
arguments such as options, system paths, redirections or variables).  Non-English tool names
(``whoami``, ``ifconfig``, ``wget``) count after any separator.  Prose stop-words in the
arguments ("rm -rf is dangerous") mark a sentence, not a command.

The value is lexed in three contexts: as is, and as if the application had put it inside a
single- or a double-quoted string (the attacker then starts by closing that quote).

Everything is hand-written scanning in linear time; no regular expressions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = ["Token", "is_shi", "normalize_word", "tokenize"]

# ---------------------------------------------------------------- command tables


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Tier 1: tool names that are not natural-language words.  Such a value on its own, or at the
# start of a value followed by a few plain arguments, is a command invocation.
_STRONG: Final = _names(
    """
    whoami ifconfig ipconfig visudo netstat nslookup wget uname chmod chown chgrp chattr
    useradd adduser usermod userdel groupadd passwd crontab systemctl iptables ip6tables
    ncat netcat socat busybox sudo doas bash zsh ksh csh tcsh fish powershell pwsh
    certutil bitsadmin mshta regsvr32 rundll32 wmic cscli ansible ansible-playbook
    ansible-galaxy ansible-vault ansible-console ansible-config ansible-doc ansible-inventory
    ansible-pull chef-client chef-shell chef-vault chef-run chef-solo knife msfconsole msfvenom
    nmap masscan hping3 tcpdump tshark xxd lsof pkill killall htop lastlog lastlogin aptitude
    apt-get yum dnf zypper pacman pip pip3 pipx gcc cc1 g++ clang tftp ssh-copy-id ssh-keygen
    sshpass zstdcat zcat gunzip unxz bunzip2 xzcat bzcat lzcat printenv getent sysctl modprobe
    insmod rmmod dmesg journalctl setfacl getfacl capsh setcap getcap nohup strace ltrace
    gdb python python2 python3 perl php ruby irb lua luajit node nodejs jrunscript jjs
    cmd cmd.exe powershell.exe conhost reg regedit schtasks sc.exe net1 vssadmin wevtutil
    bcdedit bcdboot msiexec cscript wscript installutil regasm regsvcs msbuild cmstp
    invoke-webrequest invoke-expression invoke-restmethod invoke-command invoke-item
    start-process new-object iwr iex irm iwmi set-executionpolicy get-wmiobject
    invoke-wmimethod downloadstring downloadfile tasklist taskkill systeminfo whoami.exe
    nc.exe rcp rsh rlogin rexec telnet ssh scp sftp rsync ftp curl base64 base32 openssl
    mkfifo mknod setsid nsenter unshare chroot pkexec runuser su sudoedit
    awk gawk mawk nawk sed grep egrep fgrep xargs ls ps pwd uname id nc sh dash ash tclsh
    nano vim emacs dd rm cp mv mkdir rmdir chmod
    shutdown reboot poweroff telinit systemd-run atq atrm
    docker kubectl podman crictl runc mysql psql sqlite3 redis-cli bsdtar aa-disable
    aa-enforce aa-complain aa-teardown
    """
)

# Words of tier 1 that are ordinary words or very short, so they are not trusted when they
# stand alone at the start of a value ("id", "ls", "more", "expect", "python is great").
_NOT_ALONE: Final = _names(
    """
    python python2 perl php ruby lua node nodejs ssh scp sftp rsync ftp curl telnet base64
    base32 openssl ls ps pwd id nc sh dash ash nano emacs dd rm cp mv mkdir rmdir
    docker kubectl mysql psql su reg net1 cmd knife gdb irb grep sed awk xargs apt-get pip
    pip3 sudo bash zsh ksh csh fish wget lastlog lastlogin regedit
    """
)

# Tier 2: commands that are also natural-language words; they need shell structure around
# them (substitution, opening separator, or shell-looking arguments).
_WEAK: Final = _names(
    """
    cat head tail find top set who w env echo printf print kill sort cut date file test
    watch dir type copy del erase move ren rename start net which man tr rev fold column comm
    bridge flock cpulimit perf rmt rmt-tar rmt-dump trap alias unalias sleep ping tar zip
    unzip gzip bzip2 xz zstd 7z touch make nice renice time timeout exec eval source export
    unset read wait jobs fg bg disown history logout exit cd pushd popd mount umount chef
    lwp-download lwp-request fetch links lynx w3m mail sendmail mailx uconv iconv od hexdump
    strings split join paste nl fmt pr wc diff patch uniq shuf tac look last lastb finger
    users groups host dig whois traceroute tracert pathping route arp ip ss ssh-agent
    shred wipe truncate install chcon runcon script screen tmux nohup.exe call goto
    findstr forfiles where robocopy xcopy icacls takeown attrib cipher format diskpart
    nbtstat netsh sc query tasklist.exe hostname ver vol pause cls title color systeminfo.exe
    rc env.exe c89 c99 cc ld as nm objdump readelf gcore pidof pgrep renice ionice stdbuf
    logger write wall ll la less more tee at batch cron ed ex vi wish expect halt init
    lxc ctr mongo ln
    """
)

# Wrappers: the next word is itself a command.
_WRAPPERS: Final = _names(
    """
    time nohup strace ltrace sudo doas env nice ionice timeout xargs exec command builtin
    busybox watch stdbuf chroot cpulimit flock setsid nsenter unshare runuser pkexec
    su nohup.exe start call cmd /c
    """
)

_INTERPRETERS: Final = _names(
    """
    sh bash zsh ksh csh tcsh dash ash fish busybox python python2 python3 perl php ruby irb lua
    node nodejs powershell pwsh cmd cmd.exe powershell.exe tclsh expect
    """
)

_ALL_COMMANDS: Final = _STRONG | _WEAK
_SEP_OK: Final = _STRONG  # after a separator, tier-1 names fire without further evidence

_BIN_DIRS: Final = _names(
    """
    /bin /sbin /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin /usr/libexec /opt/bin
    /system/bin /system/xbin
    """
)

# Files and directories whose mention in an argument is telling.
_SENSITIVE_WORDS: Final = _names(
    """
    passwd shadow environ id_rsa id_dsa id_ecdsa id_ed25519 authorized_keys .bash_history
    .htpasswd .htaccess win.ini boot.ini system.ini sam hosts sudoers gshadow master.passwd
    """
)
_SENSITIVE_PREFIXES: Final = (
    "/etc/", "/proc/", "/dev/", "/var/log", "/var/www", "/tmp/", "/root", "/home/", "/bin/",
    "/sbin/", "/usr/", "/boot/", "/sys/", "/var/run", "/var/lib", "/opt/", "~/", "../",
    "c:/windows", "%systemroot%", "%windir%", "%temp%", "/dev/tcp", "/dev/udp",
)

_STOPWORDS: Final = _names(
    """
    a an the is are was were be been am of to in on at for with and or but not no if then
    than that this these those it its as by from into about over under my your our their his
    her we you they he she i me us them do does did have has had will would can could should
    may might must very so too also just how what why when where who which there here
    any some most much many such only own same other le la les de des du et est un une
    der die das und ist ein eine el los las y es en por para que il di che non
    """
)

# Words after which '(' still opens a subshell.
_PAREN_KEYWORDS: Final = frozenset(
    {"if", "elif", "while", "until", "then", "else", "do", "!", "{", "time"})

_SEPARATORS: Final = frozenset({";", "|", "||", "&&", "&", "\n", "|&", ";;"})
_IDENT_START: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_IDENT: Final = _IDENT_START + "0123456789"
_SPECIAL_PARAMS: Final = "@*#?$!-_0123456789"
_WS: Final = " \t\r\f\v"
_ARITH: Final = "0123456789+-*/%()[]<>=!&|^~ \t$?#xXabcdefABCDEF"
_WORD_END: Final = _WS + ";|&<>)\n"

# Unquoted glob and brace characters are kept as private-use sentinels inside word text so that
# quoted look-alikes stay literal.
_STAR, _QMARK, _LBRACK, _RBRACK = "\ue000", "\ue001", "\ue002", "\ue003"
_LBRACE, _COMMA, _RBRACE = "\ue004", "\ue005", "\ue006"
_SENTINELS: Final = {_STAR: "*", _QMARK: "?", _LBRACK: "[", _RBRACK: "]",
              _LBRACE: "{", _COMMA: ",", _RBRACE: "}"}

_MAX_DEPTH: Final = 3
_MAX_LEN: Final = 8192


@dataclass
class Token:
    """A lexer token.  `kind` is 'word', 'sep', 'redir', 'open' (a substitution or subshell
    starts: its commands follow) or 'close'."""

    kind: str
    text: str
    obfuscated: bool = False  # quotes/escapes/empty expansions inside the word
    expanded: bool = False  # an expansion ($x, $(..)) contributed to the word
    glob: bool = False  # unquoted glob characters
    quoted: bool = False  # some part of the word was quoted
    ifs: bool = False  # $IFS used as a word separator
    inner: list[list[Token]] = field(default_factory=list)  # substitutions inside the word


def plain(text: str) -> str:
    """Word text with the glob/brace sentinels turned back into their characters."""
    if not any(ch in text for ch in _SENTINELS):
        return text
    return "".join(_SENTINELS.get(ch, ch) for ch in text)


# ---------------------------------------------------------------- lexer


def _looks_like_markup(text: str) -> bool:
    """`<tag ...>`, `</tag>`, `<?xml ...?>`: angle brackets of a markup language, not
    redirections."""
    i = text.find("<")
    while 0 <= i < len(text) - 2:
        nxt = text[i + 1]
        if (nxt.isalpha() or nxt in "/?!") and text[i + 2].isalnum() and ">" in text[i + 2:]:
            return True
        i = text.find("<", i + 1)
    return False


class _Lexer:
    def __init__(self, text: str, variables: dict[str, str], depth: int) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0
        self.vars = variables
        self.depth = depth
        self.tokens: list[Token] = []
        self.unterminated = False
        self.markup = _looks_like_markup(text)
        # word under construction
        self.buf: list[str] = []
        self.in_word = False
        self.obf = False
        self.expanded = False
        self.glob = False
        self.quoted = False
        self.ifs = False
        self.inner: list[list[Token]] = []

    # -- word assembly
    def _flush(self) -> None:
        if self.in_word:
            text = "".join(self.buf)
            tok = Token("word", text, self.obf, self.expanded, self.glob, self.quoted,
                        self.ifs, self.inner)
            self.tokens.append(tok)
            eq = text.find("=")
            if (eq > 0 and text[0] in _IDENT_START and len(self.vars) < 64
                    and all(c in _IDENT for c in text[:eq])):
                self.vars[text[:eq]] = text[eq + 1:]
        self.buf = []
        self.in_word = False
        self.obf = self.expanded = self.glob = self.quoted = self.ifs = False
        self.inner = []

    def _mark_inner_obf(self) -> None:
        """An empty quote, escape or expansion in the middle of letters is obfuscation."""
        self.obf = True

    def _emit(self, kind: str, text: str) -> None:
        self._flush()
        self.tokens.append(Token(kind, text))

    # -- helpers
    def _matching(self, start: int, open_ch: str, close_ch: str) -> int:
        """Index of the character closing the group opened just before `start`, -1 if none."""
        depth = 1
        i = start
        s = self.s
        while i < self.n:
            c = s[i]
            if c == "\\":
                i += 2
                continue
            if c == "'":
                j = s.find("'", i + 1)
                if j < 0:
                    return -1
                i = j + 1
                continue
            if c == open_ch:
                depth += 1
            elif c == close_ch:
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        return -1

    def _substitution(self, body: str) -> None:
        """A command substitution inside the word being built: its output is unknown."""
        self.in_word = True
        self.expanded = True
        if not body.strip():
            self._mark_inner_obf()
            return
        if self.depth < _MAX_DEPTH:
            sub = _Lexer(body, self.vars, self.depth + 1)
            self.inner.append(sub.run())

    def _variable(self, name: str) -> None:
        self.in_word = True
        self.expanded = True
        if name == "IFS":
            self.ifs = True
            self._flush_ifs()
            return
        value = self.vars.get(name)
        if value is None:
            self.obf = True  # unknown variable: expands to nothing
            return
        for ch in value:
            if ch in (_STAR, _QMARK, _RBRACK):
                self.glob = True
            self.buf.append(ch)

    def _flush_ifs(self) -> None:
        ifs_used = True
        self._flush()
        if self.tokens:
            self.tokens[-1].ifs = ifs_used

    def _add_char(self, ch: str, literal: bool) -> None:
        self.in_word = True
        if not literal:
            if ch == "*":
                ch = _STAR
                self.glob = True
            elif ch == "?":
                ch = _QMARK
                self.glob = True
            elif ch == "[":
                ch = _LBRACK
            elif ch == "]":
                ch = _RBRACK
                if _LBRACK in self.buf:
                    self.glob = True
            elif ch == "{":
                ch = _LBRACE
            elif ch == ",":
                ch = _COMMA
            elif ch == "}":
                ch = _RBRACE
        self.buf.append(ch)

    # -- dollar forms
    def _dollar(self, in_dquote: bool) -> None:
        s, i = self.s, self.i
        nxt = s[i + 1] if i + 1 < self.n else ""
        if nxt == "(":
            if i + 2 < self.n and s[i + 2] == "(":  # $(( arithmetic ))
                end = self._matching(i + 3, "(", ")")
                self.in_word = True
                self.expanded = True
                self.tokens.append(Token("arith", s[i + 3:end if end > 0 else self.n]))
                self.i = self.n if end < 0 else end + 2
                return
            end = self._matching(i + 2, "(", ")")
            if end < 0:
                self.unterminated = True
                end = self.n
            self._substitution(s[i + 2:end])
            self.i = end + 1
            return
        if nxt == "[":  # $[ arithmetic ] (obsolete bash)
            end = s.find("]", i + 2)
            self.in_word = True
            self.expanded = True
            self.tokens.append(Token("arith", s[i + 2:end if end > 0 else self.n]))
            self.i = self.n if end < 0 else end + 1
            return
        if nxt == "{":
            end = self._matching(i + 2, "{", "}")
            if end < 0:
                self.in_word = True
                self.buf.append("$")
                self.i += 1
                return
            inner = s[i + 2:end]
            name = ""
            for c in inner:
                if c in _IDENT:
                    name += c
                else:
                    break
            if "`" in inner or "$(" in inner:
                body = inner[inner.find("`") + 1:] if "`" in inner else inner[inner.find("$(") + 2:]
                self._substitution(body.strip("`)"))
            if name and name == inner:
                self._variable(name)
            elif name and len(inner) > len(name) and inner[len(name)] in "#%/:^," and any(
                    ch in inner[len(name):] for ch in "{}`$"):
                self.tokens.append(Token("paramop", inner))
                self.in_word = True
                self.expanded = True
                self.obf = True
            else:
                self.in_word = True
                self.expanded = True
                self.obf = True
            self.i = end + 1
            return
        if nxt == '"' and not in_dquote:  # $"locale" reads as "..."
            self.i = i + 1
            return
        if nxt == "'" and not in_dquote:  # $'ANSI-C'
            j = i + 2
            out: list[str] = []
            while j < self.n and s[j] != "'":
                c = s[j]
                if c == "\\" and j + 1 < self.n:
                    e = s[j + 1]
                    if e == "x":
                        hexd = ""
                        k = j + 2
                        while k < self.n and len(hexd) < 2 and s[k] in "0123456789abcdefABCDEF":
                            hexd += s[k]
                            k += 1
                        out.append(chr(int(hexd, 16)) if hexd else "x")
                        j = k
                        continue
                    if e in "01234567":
                        octd = ""
                        k = j + 1
                        while k < self.n and len(octd) < 3 and s[k] in "01234567":
                            octd += s[k]
                            k += 1
                        out.append(chr(int(octd, 8)))
                        j = k
                        continue
                    out.append({"n": "\n", "t": "\t", "r": "\r"}.get(e, e))
                    j += 2
                    continue
                out.append(c)
                j += 1
            self.quoted = True
            self.obf = self.obf or self.in_word
            for c in out:
                self._add_char(c, literal=True)
            self.in_word = True
            self.i = j + 1
            return
        if nxt and nxt in _IDENT_START:
            j = i + 1
            while j < self.n and s[j] in _IDENT:
                j += 1
            name = s[i + 1:j]
            self.i = j
            if name[0] == "_" and name not in self.vars and len(name) > 1:
                # `$_at`: treated as the special parameter $_ followed by text, the way the
                # obfuscation is meant to be read.
                self.in_word = True
                self.expanded = True
                self.obf = True
                self.i = i + 2
                return
            self._variable(name)
            return
        if nxt and nxt in _SPECIAL_PARAMS:
            self.in_word = True
            self.expanded = True
            self.obf = True
            self.i = i + 2
            return
        self._add_char("$", literal=True)
        self.i = i + 1

    # -- main loop
    def run(self) -> list[Token]:
        s = self.s
        while self.i < self.n:
            c = s[self.i]
            if c in _WS:
                self._flush()
                self.i += 1
            elif c == "\n":
                self._emit("sep", "\n")
                self.i += 1
            elif c == ";":
                self._emit("sep", ";")
                self.i += 1
            elif c == "|":
                if s.startswith("||", self.i):
                    self._emit("sep", "||")
                    self.i += 2
                else:
                    self._emit("sep", "|")
                    self.i += 1
            elif c == "&":
                if s.startswith("&&", self.i):
                    self._emit("sep", "&&")
                    self.i += 2
                elif s.startswith("&>", self.i):
                    self._emit("redir", "&>")
                    self.i += 2
                else:
                    self._emit("sep", "&")
                    self.i += 1
            elif c in "<>" and self.markup and not s.startswith(("<(", ">(", "<<<", ">&"), self.i):
                self._add_char(c, literal=True)
                self.i += 1
            elif c in "<>":
                if self.i + 1 < self.n and s[self.i + 1] == "(":
                    end = self._matching(self.i + 2, "(", ")")
                    if end < 0:
                        end = self.n
                    body = s[self.i + 2:end]
                    if self.in_word and not body.strip():
                        self._mark_inner_obf()
                        self.i = end + 1
                        continue
                    self._flush()
                    self._substitution(body)
                    self._flush()
                    self.i = end + 1
                    continue
                j = self.i
                while j < self.n and s[j] in "<>&" and j - self.i < 3:
                    j += 1
                op = s[self.i:j]
                # a digit right before is the file descriptor: 2>, 0>&1
                if self.in_word and self.buf and all(ch.isdigit() for ch in self.buf):
                    self.buf = []
                    self.in_word = False
                self._emit("redir", op)
                self.i = j
            elif c == "(":
                if self.in_word and s.startswith("()", self.i):
                    self._flush()
                    self.tokens.append(Token("funcdef", "()"))
                    self.i += 2
                    continue
                # `word(`: a call in some other language, a syntax error for the shell
                self._emit("call" if self.in_word else "open", "(")
                self.i += 1
            elif c == ")":
                self._emit("close", ")")
                self.i += 1
            elif c == "`":
                end = s.find("`", self.i + 1)
                if end < 0:
                    self.unterminated = True
                    end = self.n
                body = s[self.i + 1:end]
                had_word = self.in_word
                self._substitution(body)
                if not body.strip() and not had_word:
                    self.in_word = had_word or bool(self.buf)
                self.i = end + 1
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    self.unterminated = True
                    end = self.n
                content = s[self.i + 1:end]
                glued = end + 1 < self.n and s[end + 1] not in _WORD_END
                if self.in_word or not content or glued:
                    self.obf = True
                self.quoted = True
                self.in_word = True
                for ch in content:
                    self.buf.append(ch)
                self.i = end + 1
            elif c == '"':
                self._double_quoted()
            elif c == "\\":
                if self.i + 1 < self.n:
                    nxt = s[self.i + 1]
                    if nxt == "\n":
                        self.i += 2
                        continue
                    if nxt.isalnum():
                        self.obf = True
                    self._add_char(nxt, literal=True)
                    self.i += 2
                else:
                    self.i += 1
            elif c == "^":  # cmd.exe escape
                if self.i + 1 < self.n:
                    if self.in_word:
                        self.obf = True
                    self._add_char(s[self.i + 1], literal=True)
                    self.i += 2
                else:
                    self.i += 1
            elif c == "$":
                self._dollar(in_dquote=False)
            else:
                self._add_char(c, literal=False)
                self.i += 1
        self._flush()
        return self.tokens

    def _double_quoted(self) -> None:
        s = self.s
        j = self.i + 1
        start_in_word = self.in_word
        self.in_word = True
        self.quoted = True
        empty = True
        while j < self.n and s[j] != '"':
            c = s[j]
            empty = False
            if c == "\\" and j + 1 < self.n and s[j + 1] in '"\\$`\n':
                self.buf.append(s[j + 1])
                j += 2
                continue
            if c == "$":
                self.i = j
                self._dollar(in_dquote=True)
                j = self.i
                continue
            if c == "`":
                end = s.find("`", j + 1)
                if end < 0:
                    end = self.n
                self._substitution(s[j + 1:end])
                j = end + 1
                continue
            self.buf.append(c)
            j += 1
        if j >= self.n:
            self.unterminated = True
        if start_in_word or empty or (j + 1 < self.n and s[j + 1] not in _WS + ";|&<>)\n"):
            self.obf = True
        self.i = j + 1


def tokenize(value: str) -> list[Token]:
    """The shell tokens of `value` read as a command line (bash rules, cmd carets)."""
    return _Lexer(value[:_MAX_LEN], {}, 0).run()


# ---------------------------------------------------------------- word normalisation


def _glob_match(pattern: str, name: str) -> bool:
    """Match `name` against a word whose unquoted glob characters are sentinels."""
    p, n = 0, 0
    star_p, star_n = -1, 0
    lp, ln = len(pattern), len(name)
    while n < ln:
        if p < lp:
            pc = pattern[p]
            if pc == _QMARK:
                p += 1
                n += 1
                continue
            if pc == _STAR:
                star_p, star_n = p, n
                p += 1
                continue
            if pc == _LBRACK:
                end = pattern.find(_RBRACK, p + 1)
                if end > p:
                    chars = pattern[p + 1:end]
                    if _QMARK in chars or _STAR in chars:  # `[?]`: read as a wildcard
                        p = end + 1
                        n += 1
                        continue
                    negate = chars[:1] in ("!", "^")
                    if negate:
                        chars = chars[1:]
                    hit = False
                    k = 0
                    while k < len(chars):
                        if k + 2 < len(chars) and chars[k + 1] == "-":
                            if chars[k] <= name[n] <= chars[k + 2]:
                                hit = True
                            k += 3
                        else:
                            if chars[k] == name[n]:
                                hit = True
                            k += 1
                    if hit != negate:
                        p = end + 1
                        n += 1
                        continue
                elif pc == name[n]:
                    p += 1
                    n += 1
                    continue
            elif pc == name[n]:
                p += 1
                n += 1
                continue
        if star_p >= 0:
            p = star_p + 1
            star_n += 1
            n = star_n
            continue
        return False
    while p < lp and pattern[p] == _STAR:
        p += 1
    return p == lp


def _expand_braces(text: str) -> list[str]:
    """`{a,b}` brace expansion of one level (sentinel braces only)."""
    start = text.find(_LBRACE)
    if start < 0:
        return [text]
    end = text.find(_RBRACE, start)
    if end < 0 or _COMMA not in text[start:end]:
        return [text]
    prefix, body, suffix = text[:start], text[start + 1:end], text[end + 1:]
    return [prefix + alt + suffix for alt in body.split(_COMMA)]


def _strip_version(name: str) -> str:
    """python3.10 -> python3 -> python; gcc7.4 -> gcc."""
    end = len(name)
    while end > 1 and (name[end - 1].isdigit() or name[end - 1] == "."):
        end -= 1
    return name[:end]


_EXE_SUFFIXES: Final = (".exe", ".com", ".bat", ".cmd", ".ps1", ".sh")


def normalize_word(text: str) -> str:
    """The command name a word stands for: lower case, path and .exe stripped."""
    name = plain(text).lower()
    slash = max(name.rfind("/"), name.rfind("\\"))
    if slash >= 0:
        name = name[slash + 1:]
    for suffix in _EXE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return name


def _lookup(name: str) -> str | None:
    """Canonical command for `name`, with version suffixes tolerated."""
    if name in _ALL_COMMANDS or name in _WRAPPERS:
        return name
    stripped = _strip_version(name)
    if stripped != name and (stripped in _ALL_COMMANDS):
        return stripped
    return None


# The command names a glob is tried against, in a fixed order: the evidence names the first
# that matches, the same in every process (a set's order changes with string hashing).
_GLOB_NAMES: Final = tuple(sorted(name for name in _SEP_OK | _WEAK if len(name) >= 2))


def _glob_command(word: str) -> str | None:
    """A globbed word (`/???/c?t`, `ca?`) that matches a command name."""
    text = word.lower()
    slash = text.rfind("/")
    base = text[slash + 1:]
    if not base or all(ch in (_STAR, _QMARK) for ch in base):
        return None
    for name in _GLOB_NAMES:
        if _glob_match(base, name):
            return name
    return None


def _glob_sensitive(word: str) -> bool:
    """A globbed path (`/et*/pa??wd`) matching a sensitive file or a binary directory."""
    text = word.lower()
    if "/" not in text or sum(ch.isalnum() for ch in text) < 2:
        return False
    candidates = ("/etc/passwd", "/etc/shadow", "/etc/hosts", "/etc/group", "/proc/self/environ",
                  "/bin/bash", "/bin/sh", "/usr/bin/", "/bin/", "/etc/", "/usr/sbin/")
    for cand in candidates:
        if _glob_match(text, cand) or (cand.endswith("/") and _glob_match(text, cand + "x")):
            return True
    parts = text.split("/")
    if len(parts) >= 3 and parts[0] == "":
        dirs = ("bin", "sbin", "usr", "etc", "dev", "proc", "tmp", "var", "local", "lib")
        if all(any(_glob_match(p, d) for d in dirs) for p in parts[1:-1] if p):
            return _glob_command(parts[-1]) is not None or any(
                _glob_match(parts[-1], w) for w in _SENSITIVE_WORDS)
    return False


# ---------------------------------------------------------------- judging commands


@dataclass
class _Command:
    words: list[Token]
    ctx: str  # 'start', 'sep', 'subst'
    opening: bool  # the separator before it opens the value (nothing prose-like before)
    redirected: bool = False


def _split_commands(tokens: list[Token], ctx: str) -> list[_Command]:
    """Group tokens into simple commands with the context of their command position."""
    commands: list[_Command] = []
    current: list[Token] = []
    current_ctx = ctx
    opening = ctx not in ("start", "arg")
    redirected = False
    seen_prose = False
    stack: list[str] = []
    for tok in tokens:
        if tok.kind == "word":
            current.append(tok)
            continue
        if tok.kind == "redir":
            redirected = True
            current.append(Token("redir", tok.text))
            continue
        if (current or redirected) and current_ctx != "arg":
            commands.append(_Command(current, current_ctx, opening, redirected))
        if current or redirected:
            if current_ctx in ("start", "arg") and len(current) > 1:
                seen_prose = True
            if current and current_ctx != "start" and len(current) > 2:
                seen_prose = True
        before = current
        current = []
        redirected = False
        if tok.kind == "sep":
            current_ctx = "subst" if stack and stack[-1] == "subst" else "sep"
            opening = not seen_prose and (
                not before or (len(before) == 1 and not plain(before[0].text).isalpha()))
        elif tok.kind == "open":  # subshell: commands follow
            stack.append("sub")
            prev = plain(before[-1].text) if before else ""
            if prev not in _PAREN_KEYWORDS and prev.replace("-", "").replace(".", "").isalnum():
                # "char (fish)", "Paris (France)", "v2 (node)": '(' after an ordinary word is a
                # syntax error in sh, so nothing inside runs; it is a parenthetical remark
                current_ctx = "arg"
            else:
                current_ctx = "sep"
            opening = not seen_prose and not before
        elif tok.kind == "call":
            stack.append("call")
            current_ctx = "arg"
            opening = False
        elif tok.kind == "close":
            if stack:
                stack.pop()
            current_ctx = "sep"
            opening = False
        elif tok.kind in ("funcdef", "arith"):
            current_ctx = "sep"
    if (current or redirected) and current_ctx != "arg":
        commands.append(_Command(current, current_ctx, opening, redirected))
    return commands


def _prose_word(text: str) -> bool:
    """A plain alphabetic word (a sentence fragment rather than a value like 1.2.3.4)."""
    return text.isalpha() and len(text) > 1


def _foreign_prose(text: str) -> bool:
    """A word in a non-Latin script or with CJK/full-width punctuation ("命令会删除整个目录吗？",
    "удаляет"): a sentence in another language, not a file name an attacker passes."""
    letters = sum(1 for ch in text if ch.isalpha() and not ch.isascii())
    return letters >= 2 and (letters * 2 >= len(text)
                             or any("\u3000" <= ch <= "\u303f" or "\uff01" <= ch <= "\uff1f"
                                    for ch in text))


def _is_option(text: str) -> bool:
    t = plain(text)
    if len(t) >= 2 and t[0] == "-" and (t[1].isalpha() or (t[1] == "-" and t[2:3].isalpha())):
        return True
    # cmd.exe switch: /c, /e, /q
    return len(t) in (2, 3) and t[0] == "/" and t[1:].isalpha()


def _hard_arg(tok: Token) -> str | None:
    """Evidence that an argument is aimed at the system: sensitive path, variables, globs."""
    text = plain(tok.text)
    low = text.lower()
    if "://" in low:
        return None
    for prefix in _SENSITIVE_PREFIXES:
        if low.startswith(prefix) or (("/" + prefix.strip("/") + "/") in low and prefix[0] == "/"):
            return "path " + text
    base = low.rstrip("/").rsplit("/", 1)[-1]
    if base in _SENSITIVE_WORDS:
        return "file " + text
    if tok.glob and sum(ch.isalpha() for ch in text) >= 3 and _glob_sensitive(tok.text):
        return "glob " + text
    if tok.ifs:
        return "$IFS"
    return None


def _soft_arg(tok: Token) -> str | None:
    text = plain(tok.text)
    if _is_option(tok.text):
        return "option " + text
    if "://" in text:
        return "url " + text
    if text.startswith(("/", "./", "~")) and len(text) > 1:
        return "path " + text
    if tok.expanded and text == "":
        return "expansion"
    dot = text.find(".")
    if 0 < dot < len(text) - 1 and all(ch.isalnum() or ch in ".-_@:" for ch in text):
        if text.replace(".", "").isdigit() and text.count(".") < 3:
            return None  # a version or a decimal (18.2, 3.11.4), not an address or a file
        return "name " + text
    return None


def _command_word(words: list[Token]) -> tuple[int, str | None]:
    """Index and canonical name of the command word, skipping assignments and wrappers."""
    i = 0
    n = len(words)
    while i < n:
        tok = words[i]
        text = plain(tok.text)
        if tok.kind == "redir":
            i += 2
            continue
        eq = text.find("=")
        if eq > 0 and text[0] in _IDENT_START and all(c in _IDENT for c in text[:eq]):
            i += 1
            continue
        if text == "" and tok.expanded:
            i += 1
            continue
        name = normalize_word(tok.text)
        if name in _WRAPPERS and i + 1 < n:
            # skip the wrapper's own options and numbers
            j = i + 1
            while j < n and (_is_option(words[j].text) or plain(words[j].text).isdigit()):
                j += 1
            if j < n:
                nxt = _lookup(normalize_word(words[j].text))
                if nxt is not None:
                    i = j
                    continue
        found = _lookup(name)
        if found is None and tok.glob:
            found = _glob_command(tok.text)
        return i, found
    return n, None


def _judge(cmd: _Command, prose_value: bool) -> str | None:
    words = cmd.words
    if not words:
        return None
    idx, name = _command_word(words)
    for word in words:
        for inner in word.inner:
            found = _analyze(inner, "subst", prose_value)
            if found:
                return found
    if idx >= len(words):
        return None
    if (idx > 0 and words[idx - 1].expanded and plain(words[idx - 1].text) == ""
            and plain(words[idx].text) in ("-c", "-e")):
        return "variable used as command with " + plain(words[idx].text)
    tok = words[idx]
    raw = plain(tok.text)
    args = words[idx + 1:]
    # a fully qualified binary: /bin/x, /usr/bin/x
    low = raw.lower()
    slash = low.rfind("/")
    if slash > 0 and low[:slash] in _BIN_DIRS and low[slash + 1:]:
        return f"binary path {raw}"
    if tok.glob and slash >= 0 and _glob_sensitive(tok.text):
        return f"globbed binary path {raw}"
    if name is None:
        return None
    hard = next((ev for ev in map(_hard_arg, args) if ev and ev[0] != "r"), None)
    soft = next((ev for ev in map(_soft_arg, args) if ev), None)
    plain_args = [plain(a.text).lower() for a in args if a.kind == "word"]
    prose = any(a in _STOPWORDS or _foreign_prose(a) for a in plain_args)
    if cmd.redirected and soft is None and not prose:
        soft = "redirection"
    evidence = f"{cmd.ctx}:{name}"
    if name in _INTERPRETERS or name in ("eval", "trap", "watch", "su"):
        for k, arg in enumerate(args):
            text = plain(arg.text)
            if arg.kind != "word" or " " not in text.strip():
                continue
            if name in ("eval", "trap") or (k > 0 and plain(args[k - 1].text) in ("-c", "-e")):
                found = _analyze(_Lexer(text, {}, _MAX_DEPTH - 1).run(), "subst", prose_value)
                if found:
                    return f"{name} running: {found}"
    if tok.obfuscated and len(name) > 1:
        return f"obfuscated command {raw!r} ({name})"
    if tok.glob and any(ch in _SENTINELS for ch in tok.text[tok.text.rfind("/") + 1:]):
        return f"globbed command {raw} ({name})"
    if cmd.ctx == "subst" and (not prose_value or (name in _STRONG and name not in _NOT_ALONE)):
        return f"command substitution running {name}"
    if cmd.ctx == "subst" and prose_value and not hard:
        return None
    if name == "alias" and any("=" in a for a in plain_args):
        return "alias definition"
    if hard:
        return f"{evidence} with {hard}"
    if cmd.ctx == "sep":
        if name in _SEP_OK and not (prose and len(plain_args) > 2):
            return f"{name} after separator"
        if cmd.opening and not plain_args and name in _ALL_COMMANDS:
            return f"{name} after opening separator"
        if soft and not prose:
            return f"{evidence} with {soft}"
        return None
    # at the start of the value
    if prose:
        return None
    # "python3.11" alone is a version label; with arguments it is an invocation
    versioned = name != normalize_word(tok.text) and name in _STRONG and bool(plain_args)
    if (versioned or (name in _STRONG and name not in _NOT_ALONE)) and len(plain_args) <= 4:
        return f"command {name}"
    softs = [ev for ev in map(_soft_arg, args) if ev]
    if name in _STRONG and softs:
        return f"{evidence} with {softs[0]}"
    if any(a.startswith("--") and a[2:3].isalpha() for a in plain_args) and len(plain_args) <= 3:
        return f"{evidence} with long option"
    for item in plain_args:
        if item in _STRONG and item not in _NOT_ALONE and len(plain_args) <= 6:
            return f"{evidence} running {item}"
    if len(softs) >= 2 and len(plain_args) <= 6:
        return f"{evidence} with {softs[0]}, {softs[1]}"
    return None


def _analyze(tokens: list[Token], ctx: str, prose_value: bool = False) -> str | None:
    for tok in tokens:
        if tok.kind == "paramop":
            return "obfuscated parameter expansion ${" + tok.text + "}"
        if tok.kind == "arith":
            body = tok.text
            if all(ch in _ARITH for ch in body):
                return "shell arithmetic expansion"
            if "$(" in body or "`" in body:
                found = _analyze(_Lexer(body, {}, _MAX_DEPTH - 1).run(), "subst", prose_value)
                if found:
                    return found
    expanded: list[Token] = []
    for tok in tokens:
        if tok.kind == "word" and _LBRACE in tok.text and _COMMA in tok.text:
            alts = [a for a in _expand_braces(tok.text) if a]
            for alt in alts:
                expanded.append(Token("word", alt, tok.obfuscated, tok.expanded, tok.glob,
                                      tok.quoted, tok.ifs, tok.inner))
            if alts:
                expanded[-len(alts)].obfuscated = True
        else:
            expanded.append(tok)
    for cmd in _split_commands(expanded, ctx):
        found = _judge(cmd, prose_value)
        if found:
            return found
    return None


def _structural(value: str) -> str | None:
    """Shell constructs that are telling whatever the command: reverse shells, $IFS."""
    low = value.lower()
    if "/dev/tcp/" in low or "/dev/udp/" in low:
        return "/dev/tcp redirection"
    if "$ifs" in low or "${ifs" in low:
        return "$IFS word splitting"
    return None


# ---------------------------------------------------------------- fast pre-check

_FAST_TABLE: Final = bytearray(range(256))
for _b in range(256):
    _c = chr(_b)
    if not ("a" <= _c <= "z" or _c in "-_"):
        _FAST_TABLE[_b] = 0x20
_FAST_BYTES: Final = bytes(_FAST_TABLE)


_FAST_NOISE: Final = frozenset(
    {b"exe", b"ini", b"win", b"boot", b"system", b"com", b"tar", b"dump"}
)


def _fast_words() -> frozenset[bytes]:
    words: set[bytes] = set()
    for name in _ALL_COMMANDS | _WRAPPERS | _SENSITIVE_WORDS | {"ifs", "bin", "sbin"}:
        for piece in name.encode().translate(_FAST_BYTES).split():
            if len(piece) >= 2 and piece not in _FAST_NOISE:
                words.add(piece)
    return frozenset(words)


_FAST_WORDS: Final = _fast_words()
_FAST_NAMES: Final = frozenset(w.decode() for w in _FAST_WORDS)


def _needs_scan(value: str) -> bool:
    if value.isalnum():
        return value.lower() in _FAST_NAMES
    if (
        "$" in value
        or "`" in value
        or "\\" in value
        or "^" in value
        or "''" in value
        or '""' in value
        or "{" in value
        or "()" in value
        or "<(" in value
        or ">(" in value
        or value.count("'") > 1
        or value.count('"') > 1
    ):
        return True
    if "/" in value and ("?" in value or "*" in value or "[" in value) and "://" not in value:
        return True
    words = value.encode("utf-8", "surrogatepass").lower().translate(_FAST_BYTES).split()
    return not _FAST_WORDS.isdisjoint(words)


def is_shi(value: str) -> str | None:
    """Return evidence (e.g. 'whoami after separator') when `value`, placed into a shell
    command line, would run a command of the attacker's choosing; else None."""
    if len(value) < 2 or not _needs_scan(value):
        return None
    if value in _SINGLE_NAME_VERDICTS:
        # A lone command name ("sort", "date", "whoami"): a common parameter name or value,
        # whose verdict never changes; computed once at import instead of on every request.
        return _SINGLE_NAME_VERDICTS[value]
    return _full_check(value)


def _full_check(value: str) -> str | None:
    found = _structural(value)
    if found:
        return found
    value = value[:_MAX_LEN]
    found = _scan(value)
    if found:
        return found
    # an undecoded form body (name=value&name=value): read each value on its own too
    eq = value.find("=")
    if 0 < eq < 64 and all(ch in _IDENT or ch in ".[]-" for ch in value[:eq]):
        for pair in value.split("&"):
            field_value = pair.partition("=")[2]
            if len(field_value) > 1 and field_value != value:
                found = _scan(field_value)
                if found:
                    return found
    return None


def _scan(value: str) -> str | None:
    # a sentence around `code` or $(...) is documentation, unless the code itself is telling
    plain_words = [w.strip(".,;:!?\"()") for w in value.lower().split()]
    prose_value = sum(1 for w in plain_words if w in _STOPWORDS) >= 2 or sum(
        1 for w in plain_words if len(w) > 1 and w.isalpha() and w not in _ALL_COMMANDS) >= 3
    contexts = [""]
    if "'" in value:
        contexts.append("'")
    if '"' in value:
        contexts.append('"')
    for quote in contexts:
        lexer = _Lexer(quote + value + quote if quote else value, {}, 0)
        tokens = lexer.run()
        if quote and lexer.unterminated:
            continue
        if not (not quote and lexer.unterminated):
            # (with a stray quote the word "test'" is not obfuscated: the shell would stop
            # at the quote; the value is read without it below)
            found = _analyze(tokens, "arg" if quote else "start", prose_value)
            if found:
                return found
        if not quote and lexer.unterminated:
            # a stray quote (closing one the application opened): read the value without it
            for ch in "'\"":
                if value.count(ch) % 2:
                    stripped = value.replace(ch, "", 1)
                    found = _analyze(_Lexer(stripped, {}, 0).run(), "start", prose_value)
                    if found:
                        return found
    return None


# ---------------------------------------------------------------- trigger for the engine
# A regular expression that matches every single-line ASCII value `_needs_scan` accepts (the
# engine runs it inside its shared Hyperscan scan and calls `is_shi` only where it matched).
# Built from the same tables as the fast path, so the two cannot drift apart.


def _trigger_parts() -> tuple[str, str]:
    """(what triggers wherever it stands, a command name at the start of a word): a name must
    also end its word, at a character that cannot continue it or at the end of the value."""
    words = "|".join(
        "".join(c if c.isalnum() or c == "_" else f"\\x{ord(c):02x}" for c in w.decode())
        for w in sorted(_FAST_WORDS)
    )
    anywhere = r"[$`\\^{'\"]|\(\)|<\(|>\(|/[^\n]*[?*\[]|[?*\[][^\n]*/"
    return anywhere, rf"(?:^|[^a-zA-Z_\-])(?:{words})"


_ANYWHERE, _NAME = _trigger_parts()
TRIGGER: Final = rf"{_ANYWHERE}|{_NAME}(?:[^a-zA-Z_\-]|$)"
# The same test in the line form the engine scans (see bastion.waf.operators.Detector): from a
# hit to the end of its line, where a name may also end.
TRIGGER_LINE: Final = rf"(?:{_ANYWHERE})[^\n]*$|{_NAME}(?:[^a-zA-Z_\-\n][^\n]*)?$"


_SINGLE_NAME_VERDICTS: Final[dict[str, str | None]] = {
    name: _full_check(name) for name in sorted(_FAST_NAMES) if len(name) >= 2
}
