"""``saetools browse``: a local web app to search, steer and click through a store's features
(docs/browse.md)."""

from __future__ import annotations

from .app import Browser, create_app

__all__ = ["Browser", "browse", "create_app"]

DEFAULT_PORT = 8050


def _check_port(port: int) -> None:
    """A one-line error when ``port`` cannot be listened on (werkzeug would exit instead)."""
    import socket

    from ..errors import SaetoolsError

    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SaetoolsError(
                f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; choose another "
                "--port (0 picks a free one)"
            ) from None


def browse(
    data,
    *,
    compare=None,
    port: int = DEFAULT_PORT,
    source=None,
    families=None,
    ready=None,
    progress: bool = True,
    **kwargs,
) -> None:
    """Serve the browser for ``data`` (a store, or a data file encoded first) on
    http://127.0.0.1:PORT until interrupted; ``compare``: a second store or data file for the
    diff view; ``port=0`` picks a free port; ``families``: the family graph's
    :class:`saetools.options.FamiliesOptions`; keywords: :class:`saetools.options.Source` fields.
    ``ready(url)`` is called once the server listens."""
    from werkzeug.serving import make_server

    from ..options import Source, merged
    from ..store.cache import store_for

    _check_port(port)  # before any model loads
    source = merged(source, Source, kwargs)
    if kwargs:
        raise TypeError(f"unexpected keyword(s): {', '.join(sorted(kwargs))}")
    store = store_for(data, source, progress=progress)
    other = None if compare is None else store_for(compare, source, progress=progress)
    if other is not None:
        store.check_comparable(other)
    app = create_app(Browser(store, other, device=source.device, families=families))
    server = make_server("127.0.0.1", port, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}/"
    if ready is not None:
        ready(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
