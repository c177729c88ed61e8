"""A TCP proxy on loopback that a test (or the load harness) can cut: a dependency going away on demand.

The application is pointed at the proxy instead of the server (PostgreSQL, an S3 endpoint); the server
itself keeps running and keeps its data, which a real outage of the network or of a managed service
does too (stopping moto would also forget every object it holds). Three things a test can do:

- ``cut()``: open connections are reset and new ones refused (nothing listens on the port), as when
  the server is down;
- ``restore()``: the port listens again and forwards as before;
- ``drop_connections()``: only the open connections are reset, as when the server restarted between
  two requests: a pool then holds connections that look alive and are not.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from tests.services import free_port

HOST = "127.0.0.1"


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``, one pair of threads per connection."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.connections = 0  # accepted since the start, for a test that wants to see traffic
        self.restore()

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    def restore(self) -> None:
        """Listen (again) on the same port."""
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((HOST, self.port))
            listener.listen(256)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name=f"proxy-{self.port}", daemon=True).start()

    def cut(self) -> None:
        """Stop listening (new connections are refused) and reset the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in its thread
            listener.close()
        self.drop_connections()

    def drop_connections(self) -> None:
        """Reset every open connection (both sides); the port keeps listening if it was."""
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _reset(sock)

    def close(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut: the listener was shut down
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _reset(client)
                    _reset(upstream)
                    return
                self._open.update((client, upstream))
                self.connections += 1
            pair = [client, upstream, 2]  # the two sockets, and the directions still running
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, pair), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, pair: list) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)  # pass the end of the stream on
        except OSError:  # reset by cut() or by a peer: the other direction goes too
            _reset(src)
            _reset(dst)
        finally:
            with self._lock:
                pair[2] -= 1
                last = pair[2] == 0
                if last:
                    self._open.discard(pair[0])
                    self._open.discard(pair[1])
            if last:
                for sock in pair[:2]:
                    with contextlib.suppress(OSError):
                        sock.close()


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a reset (SO_LINGER 0), so the peer sees the connection die; the shutdown first
    wakes a thread blocked reading it (closing alone would not)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
