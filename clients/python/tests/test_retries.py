"""Retries: an idempotent request survives a connection reset; a plain POST is never sent twice."""
import json
import socket
import struct
import threading
import unittest

from latentbase import Client


class ResettingServer:
    """Accepts connections; resets the first `resets` of them (RST, as a crashed proxy would), answers the rest."""

    def __init__(self, resets: int):
        self.resets = resets
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.recv(65536)
            if self.connections <= self.resets:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                continue
            body = json.dumps({"encoders": []}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
            conn.close()

    def close(self):
        self.sock.close()


class RetryTests(unittest.TestCase):
    def test_a_get_is_repeated_after_connection_resets(self):
        server = ResettingServer(resets=2)
        try:
            self.assertEqual(Client(server.url, retries=3).encoders.list(), [])
            self.assertEqual(server.connections, 3)
        finally:
            server.close()

    def test_retries_are_bounded(self):
        server = ResettingServer(resets=10)
        try:
            with self.assertRaises(Exception):
                Client(server.url, retries=2).encoders.list()
            self.assertEqual(server.connections, 3)
        finally:
            server.close()

    def test_a_post_without_an_idempotency_key_is_not_repeated(self):
        server = ResettingServer(resets=1)
        try:
            with self.assertRaises(Exception):
                Client(server.url, retries=3).clusters("ds_x", 2)
            self.assertEqual(server.connections, 1)
        finally:
            server.close()


if __name__ == "__main__":
    unittest.main()
