"""Errors the `lake` command reports as one readable line and an exit code."""

from __future__ import annotations


class LakeError(Exception):
    """Base class; `exit_code` is what the command exits with."""

    exit_code = 1


class NoCredentials(LakeError):
    exit_code = 3


class UnknownDataset(LakeError):
    exit_code = 4


class PartitionNotFound(LakeError):
    exit_code = 5


class ExecutionNotFailed(LakeError):
    exit_code = 6


class NotSupportedLocally(LakeError):
    exit_code = 7
