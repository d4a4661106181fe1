#!/usr/bin/env python3
"""Writes packaging/man/wikistream-archiver.1 from the binary's own help text (`help SUB` for
each subcommand), so the man page lists exactly the flags --help does; a unit test in
src/cli checks the two agree. Run by `make man` after changing a flag.

Usage: generate.py BINARY > packaging/man/wikistream-archiver.1
"""
import re
import subprocess
import sys

binary = sys.argv[1]
version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split()[-1]


def roff(text):
    return text.replace("\\", "\\e").replace("-", "\\-")


def section_lines(topic, name):
    text = subprocess.run([binary, "help", topic], capture_output=True, text=True).stdout
    for block in text.split("\n\n"):
        if block.startswith(name):
            return block.splitlines()[1:]
    raise SystemExit(f"no {name} in help {topic}")


# The column where a flag's help starts in the help text (HELP_COLUMN in src/cli/help.rs).
HELP_COLUMN = 28
NAMES = r"(?:-\w, )?--?[\w-]+(?: [^ ]+)?"


def entry(line):
    """(names, help or None) when `line` starts a flag's entry: its names alone, or its names
    with the help starting at HELP_COLUMN; None for prose (a list of flags is prose)."""
    if not line.startswith("    -"):
        return None
    alone = re.match(rf"^    ({NAMES})$", line)
    if alone:
        return alone.group(1), None
    names, help_text = line[4:HELP_COLUMN], line[HELP_COLUMN:]
    if names.endswith(" ") and help_text[:1] not in ("", " ") and re.match(rf"^{NAMES} *$", names):
        return names.strip(), help_text
    return None


def options(lines):
    """Flag entries (names, then help from HELP_COLUMN, continued by deeper lines) as roff .TP
    items; everything else as text."""
    out = []
    for line in lines:
        found = entry(line)
        if found:
            out.append(".TP")
            out.append(".B " + roff(found[0]))
            if found[1]:
                out.append(roff(found[1]))
        else:
            out.append(roff(line.strip()))
    return out


print(f'.TH WIKISTREAM-ARCHIVER 1 "2026-12-01" "wikistream-archiver {version}" "User Commands"')
print(""".SH NAME
wikistream-archiver \\- archive Wikimedia EventStreams as rotating gzip NDJSON files
.SH SYNOPSIS
.B wikistream-archiver
.RB [ run ]
.RI [ options ]
.br
.B wikistream-archiver tail
.RI [ options ]
.br
.B wikistream-archiver cat
.RI [ options "] [" path ...]
.br
.B wikistream-archiver verify
.RI [ options ] " dir"
.br
.B wikistream-archiver parse
.RI [ file ]
.br
.B wikistream-archiver serve \\-\\-input
.IR path " ..."
.RI [ options ]
.br
.B wikistream-archiver ship \\-\\-to
.IR s3://bucket/prefix
.RI [ options ] " dir"
.br
.B wikistream-archiver schema
.RI [ options ] " dir"
.br
.B wikistream-archiver help
.RI [ subcommand ]
.br
.B wikistream-archiver completions
.BR bash | zsh | fish
.br
.B wikistream-archiver \\-\\-version
|
.B \\-\\-help
.SH DESCRIPTION
.B wikistream-archiver
keeps one HTTPS connection to a Wikimedia EventStreams stream (for example
.IR recentchange ),
reconnects with
.B Last-Event-ID
whenever the server drops it, and writes the
.B data
JSON of every event, verbatim, one per line, into gzip files.
Events that cannot be archived go to a rejects file; canary events and duplicates are counted
and dropped.
Every few seconds the open files are made durable and a checkpoint records where to resume,
so a crash, a reboot or a full disk loses and duplicates nothing.""")
for title, topic, name in [
    ("RUN OPTIONS", "run", "RUN OPTIONS"),
    ("SHIPPING", "run", "SHIPPING"),
    ("FILTERS", "run", "FILTERS"),
    ("TAIL", "tail", "TAIL"),
    ("CAT", "cat", "CAT"),
    ("VERIFY", "verify", "VERIFY"),
    ("PARSE", "parse", "PARSE"),
    ("SERVE OPTIONS", "serve", "SERVE OPTIONS"),
    ("SHIP", "ship", "SHIP"),
    ("SCHEMA", "schema", "SCHEMA"),
]:
    print(f".SH {title}")
    print("\n".join(options(section_lines(topic, name))))
print(""".SH EXIT STATUS
.TP
.B 0
success (also after SIGTERM or SIGINT, and for verify: no damage found)
.TP
.B 1
runtime failure (the first connection was refused, the directory is unusable, the checkpoint
is unreadable; verify: a damaged file or a duplicated event)
.TP
.B 2
usage error (a wrong flag or value)
.TP
.B 75
another wikistream\\-archiver holds the output directory
.SH FILES
.TP
.I DIR/STREAM/date=YYYY\-MM\-DD/STREAM\-TIME\-SEQ.ndjson.gz
the events of one stream and UTC day, TIME that of the first event (\fB.part\fR while open);
with \fB\-\-layout flat\fR, \fIDIR/STREAM\-TIME\-SEQ.ndjson.gz\fR, TIME when it was opened
.TP
.I DIR/_rejects/rejects\-TIME.ndjson.gz
events that could not be archived, with the reason (flat: \fIDIR/rejects\-TIME.ndjson.gz\fR)
.TP
.I DIR/_checkpoint.json
where to resume and the layout, rewritten every checkpoint (flat: \fIDIR/checkpoint.json\fR);
a file of another format version is refused
.TP
.I DIR/.lock
the one\\-writer lock (holds the pid)
.TP
.I DIR/_damaged/
bytes recovery could not read, kept rather than deleted
.TP
.I /etc/default/wikistream\\-archiver
settings of the packaged systemd unit, runit service and cron line
.TP
.I /var/lib/wikistream\\-archiver/archive
the packaged service's archive
.SH ENVIRONMENT
.TP
.B RUST_LOG
log filter (overrides \\-v and \\-q)
.TP
.B SSL_CERT_FILE
CA bundle to trust instead of /etc/ssl/certs/ca\\-certificates.crt
.TP
.B JOURNAL_STREAM
set by systemd; when it names stderr, log lines carry their syslog priority
.TP
.B NO_COLOR
no colour in tail output
.SH EXAMPLES
Archive recentchange into ./archive, with health on port 9110:
.PP
.RS
wikistream\\-archiver \\-\\-user\\-agent "mybot/1 (me@example.org)" \\-\\-status\\-port 9110
.RE
.PP
Count yesterday's events, then check the archive:
.PP
.RS
wikistream\\-archiver cat \\-\\-from 2025\\-01\\-30T00:00:00Z \\-\\-to 2025\\-01\\-31T00:00:00Z \\-\\-count archive
.br
wikistream\\-archiver verify archive
.RE
.PP
Replay an archive for a client written for EventStreams:
.PP
.RS
wikistream\\-archiver serve \\-\\-input archive \\-\\-port 8092
.RE
.SH SEE ALSO
.BR journalctl (1),
.BR systemd.exec (5)""")
