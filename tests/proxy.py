"""A TCP proxy for tests that need a bad network: it can cut its first connection after
some bytes from the server, and slow every connection down."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class Proxy:
    def __init__(self, upstream: int, cut: int | None = None, rate: int | None = None) -> None:
        self.upstream, self.cut, self.rate = upstream, cut, rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            limit = self.cut if self.connections == 1 else None
            threading.Thread(target=self._pipe, args=(client, limit), daemon=True).start()

    def _forward(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    sink.sendall(data[: limit - sent])
                    break
                sink.sendall(data)
                sent += len(data)
                if self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the other direction, sends FIN

    def _pipe(self, client: socket.socket, limit: int | None) -> None:
        server = socket.create_connection(("127.0.0.1", self.upstream))
        up = threading.Thread(target=self._forward, args=(client, server, None), daemon=True)
        up.start()
        self._forward(server, client, limit)
        up.join(5)
        client.close()
        server.close()

    def close(self) -> None:
        self.listener.close()
