"""Whether a tracking server answers: one GET of its ``/health``, no retries.

MLflow's client retries a request with back-off before it gives up (seconds with the short
settings ``outbox`` sets, minutes with MLflow's own), so asking it whether a server is
there costs that long each time the server is not. The commands ask here first: before
training (``store.check_server``), and each time a run whose server went away looks
whether it is back (``outbox``).
"""

from __future__ import annotations


def unanswered(uri: str, timeout: float) -> str | None:
    """Why the server at ``uri`` did not answer its health check; None when it did."""
    # Here, not at the top: every command imports this module (through ``store``), and
    # ``--help`` or a bad override should not pay for urllib.request (about 12 ms).
    import base64
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(uri)
    netloc = parts.netloc.rpartition("@")[2]
    request = urllib.request.Request(f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}/health")
    if parts.username is not None:  # user:password@ in the URI: send it as MLflow's client does
        user, password = (urllib.parse.unquote(v or "") for v in (parts.username, parts.password))
        token = f"{user}:{password}"
        request.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
    try:
        urllib.request.urlopen(request, timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # it answered: a proxy or an older server without /health
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))
    return None
