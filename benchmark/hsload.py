#!/usr/bin/env python3
"""Scenario f of the wsguard benchmark: WSS handshake rate (run by benchmark/run.sh).

CONCURRENCY workers, each in a loop: open a TCP connection, a full TLS handshake, the HTTP upgrade
with an Origin and an `Authorization: Bearer` token, expect 101, send a close frame, read the close
reply, close the socket; then the next one. Warm-up seconds are not counted, then DURATION seconds
are. Appends one row to the results TSV (the columns of Bench.Target.writeAs): handshakes/s, the
handshake latency (connect to 101) p50/p99/max in µs, and the target's CPU µs per handshake from
/proc/PID/stat (user + system, summed over --pids).

Why Python: the TLS client is OpenSSL, which costs a fraction of a millisecond per handshake. A JDK
client (Jetty's, tried first) spent several ms of CPU per handshake in pure-Java elliptic-curve
code on this 2-core machine and set the pace for every leg.

No TLS session is ever resumed: Python's ssl module resumes only when given a session object, which
this client never does, and session tickets are refused on top (OP_NO_TICKET). Every leg is driven
by the same client, so every handshake is a full one everywhere.
"""
import argparse
import asyncio
import base64
import os
import ssl
import sys
import time


def cpu_micros(pids, clk_tck):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            pass
    return total * 1_000_000 / clk_tck


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


class Load:
    def __init__(self, args, tokens):
        self.args = args
        self.tokens = tokens
        self.next_token = 0
        self.attempts = 0
        self.measuring = False
        self.stopping = False
        self.handshakes = 0
        self.latencies = []
        self.failures = 0
        self.resumed = 0
        self.first_failure = None
        url = args.url
        assert url.startswith("wss://"), "--url: expected wss://HOST:PORT/PATH"
        hostport, _, path = url[len("wss://"):].partition("/")
        self.host, _, port = hostport.partition(":")
        self.port = int(port or 443)
        self.path = "/" + path
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the benchmark's own self-signed certificate
        ctx.options |= ssl.OP_NO_TICKET
        self.ctx = ctx

    def request(self):
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode(),
            "Sec-WebSocket-Version: 13",
        ]
        if self.args.origin:
            lines.append("Origin: " + self.args.origin)
        if self.tokens:
            token = self.tokens[self.next_token % len(self.tokens)]
            self.next_token += 1
            lines.append("Authorization: Bearer " + token)
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def one(self):
        self.attempts += 1
        start = time.perf_counter()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, ssl=self.ctx), 10)
        try:
            writer.write(self.request())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else head[:20]
            if status != b"101":
                raise RuntimeError("HTTP " + status.decode(errors="replace"))
            latency = time.perf_counter() - start
            if writer.get_extra_info("ssl_object").session_reused:
                self.resumed += 1  # never expected; reported so that it cannot go unnoticed
            if self.measuring:
                self.handshakes += 1
                self.latencies.append(latency)
            # A masked close frame, code 1000; then the peer's close reply and its end of the stream.
            mask = os.urandom(4)
            payload = (1000).to_bytes(2, "big")
            writer.write(bytes([0x88, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
            frame = await asyncio.wait_for(reader.readexactly(2), 10)
            await asyncio.wait_for(reader.readexactly(frame[1] & 0x7F), 10)
            try:
                await asyncio.wait_for(reader.read(), 2)
            except (asyncio.TimeoutError, ConnectionError, ssl.SSLError):
                pass
        finally:
            writer.transport.abort()

    async def worker(self):
        while not self.stopping:
            try:
                await self.one()
            except Exception as e:  # noqa: BLE001 - counted and reported, the worker goes on
                if self.measuring:
                    self.failures += 1
                if self.first_failure is None:
                    self.first_failure = f"{type(e).__name__}: {e}"
                await asyncio.sleep(0.01)

    async def run(self):
        a = self.args
        workers = [asyncio.create_task(self.worker()) for _ in range(a.concurrency)]
        await asyncio.sleep(a.warmup)
        self.measuring = True
        cpu0 = cpu_micros(a.pids, a.clk_tck)
        t0 = time.perf_counter()
        await asyncio.sleep(a.duration)
        self.measuring = False
        seconds = time.perf_counter() - t0
        cpu1 = cpu_micros(a.pids, a.clk_tck)
        self.stopping = True
        await asyncio.wait(workers, timeout=15)
        return seconds, cpu1 - cpu0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--leg", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--pids", default="")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--tokens", help="file, one token per line")
    p.add_argument("--distinct", action="store_true", help="a different token per handshake (else the first every time)")
    p.add_argument("--offset", type=int, default=0, help="with --distinct: start at this line (0-based)")
    p.add_argument("--count", type=int, default=0, help="with --distinct: use at most this many lines from --offset (0: to the end)")
    p.add_argument("--origin")
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--duration", type=float, default=5)
    p.add_argument("--out", required=True)
    p.add_argument("--clk-tck", type=int, default=os.sysconf("SC_CLK_TCK"))
    a = p.parse_args()
    a.pids = [x for x in a.pids.split(",") if x.strip()]
    tokens = []
    if a.tokens:
        with open(a.tokens) as f:
            tokens = [line.strip() for line in f if line.strip()]
        end = a.offset + a.count if a.count > 0 else len(tokens)
        tokens = tokens[a.offset:end] if a.distinct else tokens[:1]
    load = Load(a, tokens)
    seconds, cpu = asyncio.run(load.run())
    lat = sorted(x * 1e6 for x in load.latencies)
    rate = load.handshakes / seconds if seconds > 0 else 0
    note = f"{a.concurrency} concurrent; cpu µs per handshake, p50/p99/max = handshake latency"
    if not tokens:
        note += "; no token"
    elif not a.distinct:
        note += "; same token"
    elif load.next_token <= len(tokens):
        note += f"; {load.next_token} distinct tokens used of {len(tokens)}"
    else:
        note += f"; TOKENS REUSED: {load.next_token} handshakes over {len(tokens)} tokens (wsguard's cache hit on the reused ones; raise HS_TOKENS)"
    if load.resumed:
        note += f"; {load.resumed} TLS SESSIONS RESUMED"
    if load.failures:
        note += f"; {load.failures} failed: {load.first_failure}"

    def fmt(x):
        return "" if x != x else f"{x:.2f}"  # NaN -> empty

    cpu_per = cpu / load.handshakes if a.pids and load.handshakes else float("nan")
    if load.handshakes == 0:
        row = [a.leg, a.scenario, "wss", "0", "", "", "", "", "", "", "", "", f"failed: {load.first_failure}"]
    else:
        row = [a.leg, a.scenario, "wss", str(a.concurrency), fmt(rate), "", fmt(percentile(lat, 50)),
               fmt(percentile(lat, 99)), fmt(lat[-1]), fmt(cpu_per), "", "", note]
    with open(a.out, "a") as f:
        f.write("\t".join(row) + "\n")
    print(" ".join(row))
    return 0 if load.handshakes else 1


if __name__ == "__main__":
    sys.exit(main())
