"""A small web app for reverse-proxy scenarios, run inside a lab machine with the
standard library only: echoes request headers, streams big bodies both ways, answers
chunked, and echoes WebSocket messages. Its source is handed to `python3 -c`."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOCK = bytes(range(256)) * 4096  # 1 MiB; a download of N MiB is this block N times
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def send_json(self, data: object) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/headers":
            self.send_json({k.lower(): v for k, v in self.headers.items()})
        elif path == "/big":
            self.send_big(int(query or "1"))
        elif path == "/chunked":
            self.send_chunked()
        elif path == "/ws":
            self.websocket()
        else:
            self.send_json({"path": self.path})

    def do_POST(self) -> None:
        digest, size = hashlib.sha256(), 0
        for piece in self.body():
            digest.update(piece)
            size += len(piece)
        self.send_json(
            {
                "bytes": size,
                "sha256": digest.hexdigest(),
                "chunked": "chunked" in self.headers.get("Transfer-Encoding", ""),
            }
        )

    def body(self):  # type: ignore[no-untyped-def]
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        left = int(self.headers.get("Content-Length", "0"))
        while left:
            piece = self.rfile.read(min(left, 1 << 16))
            left -= len(piece)
            yield piece

    def send_big(self, mebibytes: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(mebibytes * len(BLOCK)))
        self.end_headers()
        for _ in range(mebibytes):
            self.wfile.write(BLOCK)

    def send_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for word in (b"one ", b"two ", b"three"):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(word), word))
        self.wfile.write(b"0\r\n\r\n")

    def websocket(self) -> None:
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            self.wfile.write(frame(opcode, data))
            self.wfile.flush()
            if opcode == 0x8:
                return


def frame(opcode: int, data: bytes, mask: bytes = b"") -> bytes:
    """One final WebSocket frame; clients must mask, servers must not."""
    size = len(data)
    bit = 0x80 if mask else 0
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, bit | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, bit | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, bit | 127, size)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return head + mask + data


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
