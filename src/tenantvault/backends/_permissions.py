"""Refuse a store whose files others could read or replace, as ssh refuses an open private key.

The rule, for the data directory, the master key file (default or given) and the database
files, checked before any of them is read:

- no access at all for group and others (`mode & 0o077 == 0`). For the files: whoever can read
  them reads the key or the sealed data, whoever can write them plants a key or data of their
  own. For the directory, write lets others rename, delete or replace the files in it; read
  and search are refused too (ssh refuses only write) because the directory is the one guard
  of the files in it that are not checked one by one (the audit store, a backup copy, SQLite's
  temporary files), and its listing shows when secrets change;
- owned by the user running tenantvault or by root: another owner can change the mode back
  at any time. A symlink must be owned by one of those two as well (its owner can point it
  elsewhere); its target is then checked as above.

A path that does not exist yet passes: tenantvault creates it itself with 0700 / 0600.
`allow_insecure=True` logs each problem as a warning instead of refusing to start.
"""

from __future__ import annotations

import logging
import os
import shlex
import stat
import sys
from pathlib import Path
from typing import Final

from tenantvault._exceptions import ConfigurationError

__all__ = ["check_private"]

logger = logging.getLogger("tenantvault.backends")

_GROUP_AND_OTHERS: Final = 0o077
_OPT_OUT: Final = "--allow-insecure-permissions or allow_insecure_permissions=True"


def check_private(path: Path, *, kind: str, is_dir: bool, allow_insecure: bool) -> None:
    """Refuse `path` (a `kind`, e.g. "master key file") unless only its owner can use it."""
    problem = _problem(path, kind=kind, is_dir=is_dir)
    if problem is None:
        return
    if allow_insecure:
        logger.warning("%s; starting anyway, as insecure permissions are allowed", problem)
        return
    raise ConfigurationError(f"{problem} (to start anyway: {_OPT_OUT})")


def _problem(path: Path, *, kind: str, is_dir: bool) -> str | None:
    if sys.platform == "win32":
        return None  # no POSIX modes to check; NTFS ACLs are out of scope
    try:
        found = path.lstat()
    except OSError:
        return None  # absent (created later, privately) or unreadable (the open reports it)
    uid = os.geteuid()
    trusted = (uid, 0)
    quoted = shlex.quote(str(path))
    if stat.S_ISLNK(found.st_mode):
        if found.st_uid not in trusted:
            return (
                f"{kind} {path} is a symlink owned by uid {found.st_uid}, not by this user "
                f"(uid {uid}) or root, so its owner can point it elsewhere; fix: replace it "
                "with the real path or a link of your own"
            )
        try:
            found = path.stat()
        except OSError:
            return None  # dangling: the open that follows reports it
    if found.st_uid not in trusted:
        return (
            f"{kind} {path} is owned by uid {found.st_uid}, not by this user (uid {uid}) or "
            f"root, so its owner can change it; fix: chown {uid} {quoted}"
        )
    mode = stat.S_IMODE(found.st_mode)
    if mode & _GROUP_AND_OTHERS:
        return (
            f"{kind} {path} has mode {mode:04o}: group and others must have no access to it; "
            f"fix: chmod {'700' if is_dir else '600'} {quoted}"
        )
    return None
