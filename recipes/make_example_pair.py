"""Build examples/a.jsonl and examples/b.jsonl: a pair with a real, visible difference.

A: docstrings of the standard library's file and data-storage modules; B: docstrings of its
networking and internet modules (both from examples/corpus.jsonl, PSF licence).

    python recipes/make_example_pair.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "examples"
FILES = (
    "os",
    "shutil",
    "pathlib",
    "glob",
    "fnmatch",
    "tempfile",
    "filecmp",
    "stat",
    "io",
    "zipfile",
    "tarfile",
    "gzip",
    "bz2",
    "lzma",
    "csv",
    "configparser",
    "json",
    "pickle",
    "shelve",
    "sqlite3",
    "dbm",
    "zipimport",
    "fileinput",
    "linecache",
    "mmap",
    "codecs",
    "plistlib",
    "netrc",
    "mimetypes",
    "genericpath",
    "posixpath",
    "ntpath",
    "tomllib",
    "copyreg",
    "marshal",
    "struct",
    "array",
    "zlib",
    "binascii",
    "base64",
    "quopri",
    "uu",
)
NETWORK = (
    "socket",
    "ssl",
    "http",
    "urllib",
    "email",
    "smtplib",
    "ftplib",
    "poplib",
    "imaplib",
    "xmlrpc",
    "asyncio",
    "selectors",
    "socketserver",
    "wsgiref",
    "mailbox",
    "ipaddress",
    "nntplib",
    "telnetlib",
    "smtpd",
    "asynchat",
    "asyncore",
    "webbrowser",
    "uuid",
    "html",
    "cgi",
    "cgitb",
    "select",
    "concurrent",
    "multiprocessing",
    "queue",
    "threading",
)


def main() -> None:
    """Split the example corpus by module family."""
    rows = [json.loads(line) for line in open(ROOT / "corpus.jsonl")]
    a = [r for r in rows if r["id"].split(".")[0] in FILES]
    b = [r for r in rows if r["id"].split(".")[0] in NETWORK]
    for name, part in (("a.jsonl", a), ("b.jsonl", b)):
        with open(ROOT / name, "w") as fh:
            for row in part:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"wrote {len(part)} documents to examples/{name}")


if __name__ == "__main__":
    main()
