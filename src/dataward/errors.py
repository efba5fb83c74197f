"""The one error hierarchy of dataward.

Every error raised on purpose derives from :class:`Error` and carries a one-line message that names the
file, record, rule or principal concerned, plus advice a user can act on. The CLI catches :class:`Error`
once, at the top, prints both lines and exits non-zero; anything else is a bug.
"""

from __future__ import annotations

#: exit status of a CI gate (`check`, `redteam`, `scan-model`) that ran and failed; no error exits with it
EXIT_GATE_FAILED = 1
#: exit status of an error of no more specific kind (a model that will not load, a scheduler that is down)
EXIT_OTHER_ERROR = 10


class Error(Exception):
    """Base of all dataward errors."""

    #: process exit status the CLI uses for this kind of error (never EXIT_GATE_FAILED)
    exit_code: int = EXIT_OTHER_ERROR
    #: default advice when the raiser gives none
    default_advice: str = ""

    def __init__(self, message: str, *, advice: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice if advice is not None else self.default_advice

    def __str__(self) -> str:
        return self.message


class InputError(Error):
    """Bad input: a malformed, unreadable, empty or hostile file or argument."""

    exit_code = 2
    default_advice = "Fix the input named above and run the command again."


class NotFoundError(Error):
    """A named workspace object (source, batch, principal, key, version...) does not exist."""

    exit_code = 2
    default_advice = "Check the name; list what exists with the matching `list` command."


class WorkspaceError(Error):
    """The workspace is missing, of an unknown schema version, or otherwise unusable."""

    exit_code = 2
    default_advice = "Create a workspace with `dataward init DIR` or point DATAWARD_WORKSPACE at one."


class IntegrityError(Error):
    """Stored or delivered data does not match its recorded digests, Merkle roots or log."""

    exit_code = 3
    default_advice = (
        "Treat the data as tampered with: do not use it; investigate with `dataward verify` and the audit log."
    )


class SignatureError(IntegrityError):
    """A signature is missing, forged, made with an unknown, expired, retired or revoked key."""

    default_advice = "Check that the signer's key is registered, valid at signing time, and not revoked."


class AuthorizationError(Error):
    """The acting principal's roles do not allow the action (deny by default)."""

    exit_code = 4
    default_advice = "Ask an admin to grant the needed role, or act as a principal that has it (--as)."


class PolicyError(Error):
    """A policy rule refuses the action, or the policy file itself is invalid."""

    exit_code = 5
    default_advice = "Run `dataward policy check` to see every rule and what it needs."


class ConflictError(Error):
    """The action conflicts with the current state (wrong lifecycle state, duplicate name, concurrent change)."""

    exit_code = 6
    default_advice = "Inspect the current state with the matching `show` command and retry."


#: exit status of a storage failure (object store, catalog or key directory cannot be read or written);
#: the CLI also uses it for a catalog failure reported by the database layer (docs/exit-codes.md)
EXIT_STORAGE = 7


class StorageError(Error):
    """The workspace's own storage failed: disk full, read-only or unwritable object store, catalog or keys.

    The message names the path; the input is not to blame."""

    exit_code = EXIT_STORAGE
    default_advice = "Free space or fix the permissions of the path named above, then run the command again."


class CatalogError(StorageError):
    """The catalog database failed beneath an operation (locked, refused a statement, damaged, went away).

    Raised by the storage boundary (:mod:`dataward.store._errors`) in place of the driver's exception, so
    the Python API and the console see it as well as the CLI."""

    default_advice = "Retry; if it persists, check the catalog with `dataward log verify` and its database."


def storage_error(path: str, exc: OSError, doing: str) -> StorageError:
    """A :class:`StorageError` for an OS error while ``doing`` something at ``path``, with the right fix."""
    import errno

    code = exc.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        why, fix = "the disk is full", f"Free space on the filesystem holding {path}, then retry."
    elif code == errno.EROFS:
        why, fix = "the filesystem is read-only", f"Remount {path} read-write or move the workspace, then retry."
    elif code in (errno.EACCES, errno.EPERM):
        access = "read" if doing.startswith(("read", "open", "list")) else "write"
        why, fix = "permission denied", f"Give the user running dataward {access} access to {path}, then retry."
    elif code == errno.EFBIG:
        why, fix = "the file size limit was reached", "Raise the file size limit (ulimit -f), then retry."
    else:
        why, fix = exc.strerror or str(exc), f"Check the storage at {path}, then retry."
    return StorageError(f"cannot {doing} {path}: {why}", advice=fix)


#: every exit status the CLI uses, with its meaning: the one table (docs/exit-codes.md mirrors it, tested)
EXIT_CODES: dict[int, str] = {
    0: "success; also an admin change proposed under an admin threshold above 1 (pending: ChangePending)",
    EXIT_GATE_FAILED: "a CI gate ran and failed: findings at or above --fail-on (`check`, `scan-model`), "
    "a failed red-team check (`redteam run`), divergences found by `log replay --check`",
    2: "bad input, unknown name, unusable workspace, or a command-line usage error (InputError, NotFoundError, "
    "WorkspaceError, ScreenError, DetectionError, LimitError, SandboxError)",
    3: "integrity: data, digests, signatures or the log do not verify (IntegrityError, SignatureError; "
    "`verify`, `log verify`, `diff --verify` that find problems)",
    4: "not authorised (AuthorizationError)",
    5: "a policy refuses the action (PolicyError), or the gate did not pass (`policy check`)",
    6: "conflict with the current state (ConflictError)",
    7: "storage: the object store, catalog or key directory cannot be read or written (StorageError, catalog failures)",
    EXIT_OTHER_ERROR: "an error of no more specific kind (Error itself: a model that will not load, a scheduler "
    "that is down)",
    130: "aborted by the user (Ctrl-C at a prompt)",
}


class ChangePending(Exception):
    """Not an error: an admin change was proposed and waits for more admin signatures (admin threshold > 1).

    Raised by the library call that would have made the change (``principals.add_principal`` and the other
    admin changes, see :mod:`dataward.admin`) once the proposal is logged; the CLI prints it and exits 0.
    """

    def __init__(self, change: str, action: str, subject: str, signatures: int, required: int) -> None:
        super().__init__(f"{action} of {subject} is pending as change {change}: {signatures} of {required} signatures")
        self.change = change
        self.action = action
        self.subject = subject
        self.signatures = signatures
        self.required = required

    @property
    def message(self) -> str:
        """One line: what is pending, its CHANGE id and the signatures it has."""
        return str(self)

    def to_json(self) -> dict[str, object]:
        """What ``--json`` prints for a proposed change."""
        return {
            "pending": True,
            "change": self.change,
            "action": self.action,
            "subject": self.subject,
            "valid_signatures": self.signatures,
            "required": self.required,
        }
