"""Typed errors of the node readers.

Every reader raises a subclass of :class:`NodedocError` whose message is one line a person can act on.
The CLI prints that line and exits non-zero; the screens turn it into a notification.
"""

from __future__ import annotations


class NodedocError(Exception):
    """Base of the errors nodedoc expects and explains; the message is the whole explanation."""


class CriError(NodedocError):
    """The CRI runtime could not be reached or did not answer as a CRI runtime."""


class EndpointNotFound(CriError):
    """No CRI socket answered."""


class EndpointPermissionDenied(CriError):
    """The socket exists but this user may not connect to it."""


class NotCriRuntime(CriError):
    """Something listens on the socket but it does not speak CRI."""


class CriTimeout(CriError):
    """The runtime did not answer within the timeout."""


class CriCallFailed(CriError):
    """The runtime answered a call with an error; ``code`` is the gRPC status code when there was one."""

    code: object = None


class ConfigError(NodedocError):
    """A configuration file nodedoc reads is malformed."""


class KnowledgeBaseError(NodedocError):
    """The known-issues knowledge base is malformed."""
