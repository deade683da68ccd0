#!/usr/bin/env python3
"""Adversarial checks of the network scenario's HTTP server, with raw sockets.

Each check is what a real client or an attacker does: framing that request smugglers use, HEAD,
Expect: 100-continue, half-closed clients, chunked bodies, oversized requests (the client must
read the status, not a RST), idle and slow clients, running out of descriptors, a burst of 3000
connects, bad command lines. Usage: adversarial.py HTTP_SERVER_BINARY WORK_DIR [--sanitized]
(--sanitized: the server is an ASan/TSan build, whose runtime needs descriptors of its own, so
the descriptor-exhaustion check is skipped with that reason).
Exits 1 and names every check that failed.
"""
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time

BIN, WORK = sys.argv[1], sys.argv[2]
SANITIZED = "--sanitized" in sys.argv[3:]
failures = []


def check(name, ok, detail=""):
    print(f"  {'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(name)


class Server:
    def __init__(self, *args, nofile=None):
        os.makedirs(WORK, exist_ok=True)
        port_file = os.path.join(WORK, "adversarial.port")
        if os.path.exists(port_file):
            os.remove(port_file)

        def limits():
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen([BIN, "--port", "0", "--port-file", port_file, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=limits)
        for _ in range(100):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        self.port = int(open(port_file).read())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=20)
        return self.proc.returncode, out.decode(errors="replace")


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_all(s, limit=10.0):
    """Everything until the server closes; raises on a reset."""
    data = b""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            return data, True
        data += chunk
    return data, False


def responses(data, head_only=()):
    """Splits a byte stream into (status line, headers dict, body) by Content-Length; the
    responses whose index is in head_only answer HEAD requests and carry no body."""
    out = []
    while data:
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            break
        lines = data[:head_end].decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = lines[0]
        length = 0 if " 100 " in status + " " or len(out) in head_only else int(headers.get("content-length", "0"))
        out.append((status, headers, data[head_end + 4:head_end + 4 + length]))
        data = data[head_end + 4 + length:]
    return out


def exchange(port, raw, limit=10.0, head_only=()):
    s = connect(port)
    s.sendall(raw)
    try:
        data, closed = read_all(s, limit)
    except ConnectionResetError:
        return None, "reset"
    finally:
        s.close()
    return responses(data, head_only), closed


def status_of(port, raw):
    rs, closed = exchange(port, raw)
    if rs is None:
        return "connection reset"
    return rs[0][0] if rs else "no response"


def main():
    srv = Server("--idle-timeout", "2", "--request-timeout", "2")
    p = srv.port

    # --- framing (RFC 9112 section 6; request smuggling) ---
    # 2^64-1 is a well-formed length, larger than the server takes: 413 (RFC 9110 section 15.5.14),
    # then a close; what follows must never be served as a request.
    rs, closed = exchange(p, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n"
                             b"GET /hello/smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    check("Content-Length 2^64-1 is refused (413) and nothing after it is served",
          rs is not None and len(rs) == 1 and rs[0][0].endswith("413 Content Too Large") and closed, repr(rs))
    check("Content-Length beyond 64 bits is 400",
          status_of(p, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999999999999999\r\n\r\n")
          .endswith("400 Bad Request"))
    check("space before the colon is 400",
          status_of(p, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 41\r\n\r\n").endswith("400 Bad Request"))
    check("two different Content-Length values are 400",
          status_of(p, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
          .endswith("400 Bad Request"))
    rs, _ = exchange(p, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n"
                        b"Connection: close\r\n\r\nabc")
    check("two equal Content-Length values are accepted", rs and rs[0][0].endswith("200 OK") and rs[0][2] == b"abc")
    check("Content-Length with Transfer-Encoding is 400",
          status_of(p, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"0\r\n\r\n").endswith("400 Bad Request"))
    check("an unknown Transfer-Encoding is 501",
          status_of(p, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
          .endswith("501 Not Implemented"))
    check("a missing Host (HTTP/1.1) is 400", status_of(p, b"GET /hello/a HTTP/1.1\r\n\r\n").endswith("400 Bad Request"))
    check("two Host fields are 400",
          status_of(p, b"GET /hello/a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").endswith("400 Bad Request"))
    check("HTTP/1.0 without Host is served", status_of(p, b"GET /hello/a HTTP/1.0\r\n\r\n").endswith("200 OK"))
    check("a NUL in a field is 400",
          status_of(p, b"GET /hello/a HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n").endswith("400 Bad Request"))
    check("a bare CR is 400", status_of(p, b"GET /hello/a HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n").endswith("400 Bad Request"))
    check("a bare-LF request is answered (400), not left hanging",
          status_of(p, b"GET /hello/a HTTP/1.1\nHost: x\n\n").endswith("400 Bad Request"))
    check("HTTP/2.0 in a request line is 505",
          status_of(p, b"GET /hello/a HTTP/2.0\r\nHost: x\r\n\r\n").endswith("505 HTTP Version Not Supported"))

    # --- HEAD: the GET's head, no body (RFC 9110 section 9.3.2); the next response follows at once ---
    rs, _ = exchange(p, b"HEAD /hello/h HTTP/1.1\r\nHost: x\r\n\r\nGET /hello/g HTTP/1.1\r\nHost: x\r\n"
                        b"Connection: close\r\n\r\n", head_only=(0,))
    ok = rs is not None and len(rs) == 2 and rs[0][0].endswith("200 OK")
    ok = ok and rs[0][1].get("content-length") == str(len(b"hello /hello/h\n")) and rs[0][2] == b""
    check("HEAD has Content-Length and no body", ok, repr(rs))
    check("the response after a HEAD is intact", ok and rs[1][2] == b"hello /hello/g\n", repr(rs))

    # --- chunked request bodies ---
    rs, _ = exchange(p, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                        b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n")
    check("a chunked body (extensions, trailer) is decoded", rs and rs[0][2] == b"hello, world", repr(rs))
    check("a malformed chunk size is 400",
          status_of(p, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n")
          .endswith("400 Bad Request"))
    check("an overflowing chunk size is refused",
          status_of(p, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"fffffffffffffffffffff\r\n").split(" ", 1)[1][:3] in ("400", "413"))

    # --- Expect: 100-continue is answered before the body is sent ---
    s = connect(p)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    s.settimeout(0.5)
    try:
        interim = s.recv(4096)
    except socket.timeout:
        interim = b""
    s.settimeout(5)
    s.sendall(b"ping")
    s.shutdown(socket.SHUT_WR)
    rest, _ = read_all(s)
    s.close()
    check("Expect: 100-continue gets 100 Continue at once", interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"),
          repr(interim))
    final = responses((interim + rest)[len(b"HTTP/1.1 100 Continue\r\n\r\n"):])
    check("then the body is echoed", final and final[0][2] == b"ping", repr(final))

    # --- a client that half-closes after its request gets the response, every time ---
    answered = 0
    for i in range(50):
        s = connect(p)
        s.sendall(b"GET /hello/half%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        s.shutdown(socket.SHUT_WR)
        data, closed = read_all(s)
        s.close()
        rs = responses(data)
        answered += bool(rs and rs[0][2] == b"hello /hello/half%d\n" % i and closed)
    check("shutdown(SHUT_WR) after a request: answered, then closed (50 of 50)", answered == 50, f"{answered} of 50")

    # --- oversized requests: the client reads the status, not a reset ---
    s = connect(p)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    try:
        s.sendall(b"x" * 100000)
        data, _ = read_all(s)
        got = data.split(b"\r\n", 1)[0]
    except (ConnectionResetError, BrokenPipeError) as e:
        got = repr(e).encode()
    s.close()
    check("413 is readable although the body was sent", got == b"HTTP/1.1 413 Content Too Large", got)
    s = connect(p)
    try:
        s.sendall(b"GET /hello/big HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n")
        data, _ = read_all(s)
        got = data.split(b"\r\n", 1)[0]
    except (ConnectionResetError, BrokenPipeError) as e:
        got = repr(e).encode()
    s.close()
    check("431 is readable although the header kept coming", got == b"HTTP/1.1 431 Request Header Fields Too Large",
          got)

    # --- timeouts: idle connections are closed, slow requests get 408, others are served meanwhile ---
    idle = connect(p)
    t0 = time.monotonic()
    data, closed = read_all(idle, 6)
    check("an idle connection is closed after the idle timeout (2 s)", closed and data == b"" and
          time.monotonic() - t0 < 4.5, f"closed={closed} after {time.monotonic() - t0:.1f} s")
    idle.close()
    slow = [connect(p) for _ in range(300)]
    for s in slow:
        s.sendall(b"GET /hello/slow HTTP/1.1\r\nHost: x\r\n")  # never finished
    t0 = time.monotonic()
    rs, _ = exchange(p, b"GET /hello/fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    check("300 slow clients do not delay a normal one", rs and rs[0][2] == b"hello /hello/fast\n" and
          time.monotonic() - t0 < 1.0)
    timed_out = 0
    for s in slow:
        data, closed = read_all(s, 6)
        timed_out += data.startswith(b"HTTP/1.1 408 Request Timeout") and closed
        s.close()
    check("a request not finished within the request timeout gets 408 and a close (300 of 300)", timed_out == 300,
          f"{timed_out} of 300")

    # --- a burst of 3000 concurrent connects: every one answered ---
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 3000
    if hard != resource.RLIM_INFINITY and hard < want + 200:
        want = max(100, hard - 200)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want + 200) if hard != resource.RLIM_INFINITY
                                                else want + 200, hard))
    rc, out = srv.stop()
    check("the server exits cleanly on SIGTERM", rc == 0, out)
    srv = Server()  # started after raising the limit: it inherits it
    p = srv.port
    sel = selectors.DefaultSelector()
    pending = {}
    t0 = time.monotonic()
    for i in range(want):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", p))
        sel.register(s, selectors.EVENT_WRITE, i)
        pending[s] = b""
    answered = 0
    while pending and time.monotonic() - t0 < 60:
        for key, ev in sel.select(timeout=1):
            s = key.fileobj
            if ev & selectors.EVENT_WRITE:
                try:
                    s.send(b"GET /hello/burst HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                except OSError:
                    sel.unregister(s)
                    s.close()
                    del pending[s]
                    continue
                sel.modify(s, selectors.EVENT_READ, key.data)
            else:
                try:
                    chunk = s.recv(4096)
                except OSError:
                    chunk = b""
                pending[s] += chunk
                if not chunk:
                    answered += pending[s].endswith(b"hello /hello/burst\n")
                    sel.unregister(s)
                    s.close()
                    del pending[s]
    for s in pending:
        s.close()
    check(f"{want} concurrent connects all answered within 60 s", answered == want,
          f"{answered} of {want} in {time.monotonic() - t0:.1f} s")
    print(f"  ({want} connects answered in {time.monotonic() - t0:.2f} s)")
    srv.stop()

    # --- out of descriptors: refuse the extra ones, keep serving ---
    if SANITIZED:
        print("  skip out of descriptors: a sanitizer runtime opens descriptors of its own and aborts without them")
    else:
        out_of_descriptors()

    usage_errors()
    if failures:
        print(f"adversarial: {len(failures)} checks failed")
        sys.exit(1)
    print("adversarial: all checks passed")


def out_of_descriptors():
    srv = Server(nofile=64)
    p = srv.port
    held = []
    refused = served = 0
    for _ in range(120):
        try:
            s = connect(p, timeout=3)
            s.sendall(b"GET /hello/many HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(s)
        except OSError:
            pass
    for s in held:
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        served += data.startswith(b"HTTP/1.1 200 OK")
        refused += data.startswith(b"HTTP/1.1 503")
    for s in held:
        s.close()
    time.sleep(0.3)
    alive = srv.proc.poll() is None
    check("out of descriptors (ulimit -n 64, 120 clients): the server keeps running", alive)
    check("every client is served or told 503", served + refused == len(held) == 120,
          f"{served} served, {refused} refused of {len(held)}")
    check("a request after the crowd left is served", alive and status_of(p, b"GET /hello/after HTTP/1.1\r\nHost: x\r\n"
                                                                            b"Connection: close\r\n\r\n")
          .endswith("200 OK"))
    if alive:
        srv.stop()


def usage_errors():
    # --- bad command lines are usage errors, not crashes ---
    for args in (["--ring", "0"], ["--ring", "99999999999999"], ["--port", "abc"], ["--idle-timeout", "-1"],
                 ["--ring"], ["--bogus", "1"]):
        r = subprocess.run([BIN, *args], capture_output=True, timeout=10)
        check(f"http_server {' '.join(args)}: exit 2 with usage", r.returncode == 2 and b"usage:" in r.stderr,
              f"exit {r.returncode}")


main()
