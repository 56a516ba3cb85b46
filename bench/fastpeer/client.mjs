// A fast fan-out client for bench.fanout: S streamed requests on raw sockets, their SSE frames counted.
//
// Why: bench.fanout's trio client spends tens of microseconds of Python per frame received; at 51,200 frames/s
// it cannot keep up on the core it shares with the upstream. This one reads on raw `net` sockets and only
// counts `data: ` occurrences (a few microseconds per read).
//
// Usage: node bench/fastpeer/client.mjs --port P --request FILE --streams S [--host 127.0.0.1] [--ramp SECONDS]
//        [--done "[DONE]"] [--sources K] [--timeout SECONDS] [--cold]
//
// FILE holds one whole HTTP/1.1 request (head and body), sent as is on each stream's connection. The client
// first opens every connection, then sends the requests, stream i's i x ramp / S seconds after the first:
// time to first frame is from the request's bytes to the first `data: ` (the usual TTFT, that of a client
// holding a keep-alive connection), not the TCP handshake, which on a shared core costs the rig itself ~100 ms
// for 1,024 connections opened at once. `--cold` connects each stream at its slot instead and counts from
// there (what bench.fanout's python rig does). A stream ends at its first `--done` marker (the Chat stream's
// `[DONE]`; `message_stop` for an Anthropic one), at a close, or at an error. `--sources K` spreads the
// connections over K loopback source addresses (127.0.0.1 .. 127.0.0.K): Relay closes a connection from an
// address that already has `max_pending_per_address` (256) connections without a complete request head, and
// 1,024 connections open before their requests from one address are just that; a fan-out of many clients
// comes from many addresses.
//
// While it runs it prints `mark start` when every stream has had its first frame and `mark end` when the
// first stream ends (the window bench.fanout samples Relay's CPU over), or `mark missed` when the first stream
// ended before the last one had its first frame. Its last line is one JSON document:
//   {"streams": [[status, frames, first_frame_ms | null, last_frame_ms, ended, error], ...],
//    "window": {"frames": F, "seconds": S, "missed": bool}, "span_s": first request sent to last frame,
//    "frames": every frame, "cpu_s": this process's user + system seconds}
// first_frame_ms is from the stream's own request; last_frame_ms from the first request.

import fs from "node:fs";
import net from "node:net";
import { performance } from "node:perf_hooks";

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const HOST = option("--host", "127.0.0.1");
const PORT = Number(option("--port", "0"));
const REQUEST = fs.readFileSync(option("--request", "/dev/stdin"));
const STREAMS = Number(option("--streams", "1"));
const RAMP_MS = Number(option("--ramp", "0")) * 1000;
const DONE = Buffer.from(option("--done", "[DONE]"), "latin1");
const SOURCES = Number(option("--sources", "1"));
const TIMEOUT_MS = Number(option("--timeout", "120")) * 1000;
const COLD = process.argv.includes("--cold");
const FRAME = Buffer.from("data: ", "latin1");
const HEAD_END = Buffer.from("\r\n\r\n", "latin1");
// Every socket reads into this one buffer (`onread`): no allocation and no stream machinery per read, which
// cuts the client's CPU per frame by ~20 %. What outlives a read (a partial head, the tails) is copied out of it.
const READ_BUFFER = Buffer.alloc(256 * 1024);

/** Counts a needle's occurrences in a byte stream read in pieces, those split across reads included. It keeps
 * the stream's last needle.length - 1 bytes in a buffer of its own (never a reference into a read buffer). */
class Scanner {
  constructor(needle) {
    this.needle = needle;
    this.carry = Buffer.alloc(needle.length - 1);
    this.kept = 0;
  }

  count(data) {
    const { needle, carry } = this;
    let n = 0;
    // Occurrences that start in the kept bytes and end in this read.
    for (let p = 0; p < this.kept; p++) {
      let j = 0;
      for (; j < needle.length; j++) {
        const at = p + j;
        const byte = at < this.kept ? carry[at] : at - this.kept < data.length ? data[at - this.kept] : -1;
        if (byte !== needle[j]) break;
      }
      if (j === needle.length) n++;
    }
    for (let at = data.indexOf(needle); at >= 0; at = data.indexOf(needle, at + needle.length)) n++;
    // Keep the last bytes of (kept + data).
    const room = carry.length;
    if (data.length >= room) {
      data.copy(carry, 0, data.length - room);
      this.kept = room;
    } else {
      const keep = Math.min(this.kept, room - data.length);
      carry.copy(carry, 0, this.kept - keep, this.kept);
      data.copy(carry, keep);
      this.kept = keep + data.length;
    }
    return n;
  }
}

const window = { waiting: STREAMS, open: false, started: false, missed: false, frames: 0, at: 0, seconds: 0 };
const streams = [];
let began = 0;
let live = 0;

function mark(what) {
  process.stdout.write(`mark ${what}\n`);
}

class Stream {
  constructor(index) {
    this.status = 0;
    this.frames = 0;
    this.first = null;
    this.last = 0;
    this.ended = false;
    this.error = "";
    this.over = false;
    this.head = null;
    this.frameScanner = new Scanner(FRAME);
    this.doneScanner = new Scanner(DONE);
    this.sent = 0;
    const source = SOURCES > 1 && HOST === "127.0.0.1" ? `127.0.0.${1 + (index % SOURCES)}` : undefined;
    this.created = performance.now();
    const onread = { buffer: READ_BUFFER, callback: (n, buffer) => this.receive(buffer.subarray(0, n)) };
    this.socket = net.connect({ host: HOST, port: PORT, localAddress: source, noDelay: true, onread });
    this.ready = false;
    this.socket.on("connect", () => (COLD ? this.send() : this.connected()));
    this.socket.on("error", (err) => {
      if (!this.ended && !this.error) this.error = `${err.code || err.message}`;
    });
    this.socket.on("close", () => this.finish());
    live++;
  }

  /** Connected (or failed to): the requests go out once every stream is. */
  connected() {
    if (this.ready) return;
    this.ready = true;
    connected();
  }

  send() {
    this.sent = COLD ? this.created : performance.now();
    if (!this.over) this.socket.write(REQUEST);
  }

  receive(data) {
    if (this.over) return;
    if (this.status === 0) {
      this.head = this.head === null ? Buffer.from(data) : Buffer.concat([this.head, data]);
      const end = this.head.indexOf(HEAD_END);
      if (end < 0) return;
      this.status = Number(this.head.subarray(9, 12).toString("latin1"));
      data = this.head.subarray(end + HEAD_END.length);
      this.head = null;
      if (this.status !== 200) {
        this.error = `status ${this.status}`;
        this.socket.destroy();
        return;
      }
    }
    const seen = this.frameScanner.count(data);
    if (seen) {
      const now = performance.now();
      if (this.first === null) {
        this.first = now - this.sent;
        if (--window.waiting === 0 && !window.missed) {
          window.open = true;
          window.started = true;
          window.at = now;
          mark("start");
        }
      }
      this.frames += seen;
      this.last = now - began;
      if (window.open) window.frames += seen;
    }
    if (this.doneScanner.count(data)) {
      this.ended = true;
      this.socket.destroy();
    }
  }

  /** The stream is over (its end, a close, an error): the window closes at the first one. */
  finish() {
    if (this.over) return;
    this.over = true;
    if (!COLD) this.connected();
    if (!this.ended && !this.error) this.error = this.status ? "closed before the end" : "closed before the head";
    if (window.open) {
      window.open = false;
      window.seconds = (performance.now() - window.at) / 1000;
      mark("end");
    } else if (!window.started && !window.missed) {
      window.missed = true;
      mark("missed");
    }
    if (--live === 0 && streams.length === STREAMS) report();
  }
}

function report() {
  clearTimeout(deadline);
  const cpu = process.cpuUsage();
  const rows = streams.map((s) => [s.status, s.frames, s.first, s.last, s.ended, s.error]);
  const document = {
    streams: rows,
    window: { frames: window.frames, seconds: window.seconds, missed: window.missed },
    span_s: Math.max(0, ...streams.map((s) => s.last)) / 1000,
    frames: streams.reduce((sum, s) => sum + s.frames, 0),
    cpu_s: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(JSON.stringify(document) + "\n", () => process.exit(0));
}

const deadline = setTimeout(() => {
  for (const s of streams) {
    if (!s.over) {
      s.error = "timed out";
      s.socket.destroy();
    }
  }
}, TIMEOUT_MS);

/** Connects every stream first (unless --cold), then sends the requests on the ramp's schedule. */
let connectedCount = 0;
function connected() {
  if (++connectedCount === STREAMS) {
    began = performance.now();
    send();
  }
}

let sendNext = 0;
function send() {
  const ramped = (i) => began + (i * RAMP_MS) / STREAMS;
  while (sendNext < STREAMS && performance.now() >= ramped(sendNext) - 0.5) streams[sendNext++].send();
  if (sendNext < STREAMS) setTimeout(send, Math.max(0, ramped(sendNext) - performance.now()));
}

function open() {
  const ramped = (i) => began + (i * RAMP_MS) / STREAMS;
  while (streams.length < STREAMS && performance.now() >= ramped(streams.length) - 0.5) {
    streams.push(new Stream(streams.length));
  }
  if (streams.length < STREAMS) setTimeout(open, Math.max(0, ramped(streams.length) - performance.now()));
}

began = performance.now();
if (COLD) open();
else for (let i = 0; i < STREAMS; i++) streams.push(new Stream(i));
