// A fast mock upstream for bench.fanout: OpenAI Chat and Anthropic Messages over HTTP/1.1, streamed or whole.
//
// Why: `relay mock-upstream` (Python, trio) costs tens of microseconds per frame; at 1,024 streams x 64 deltas
// 20 ms apart (51,200 frames/s) it and the Python client saturate the core they share and the benchmark
// measures the rig instead of Relay. This one costs a few microseconds per frame:
//
// - raw `net` sockets and a hand-written HTTP/1.1 parser (request line, headers, Content-Length body,
//   keep-alive, pipelined requests queued behind a running answer) instead of node:http's machinery;
// - every frame prebuilt once per (dialect, model, chunks, usage) and kept as a Buffer that already carries its
//   chunked-transfer framing: a tick is one socket.write of a shared Buffer per stream;
// - one timer per cadence bucket (delay, phase in whole ms), not a setTimeout per stream: at most `delay`
//   timers per delay, each on a fixed schedule (start + k x delay) so that a late tick does not push the
//   following ones back.
//
// Answers: `POST /v1/chat/completions` (Chat SSE: a role chunk at once, N content chunks D ms apart, the last
// one followed in the same write by the finish chunk, the usage chunk when `stream_options.include_usage`, and
// `data: [DONE]`) and `POST /v1/messages` (Anthropic SSE: message_start and content_block_start at once, N
// content_block_delta D ms apart, the last followed by content_block_stop, message_delta with usage and
// message_stop); `"stream": false` answers the whole message as JSON. N and D come from `mock:chunks=N
// mock:delay_ms=D` in the last user message (Relay's mock directive syntax), else from --chunks/--delay-ms.
// A stream's content therefore ends N x D ms after its request, the ideal pace bench.fanout measures against.
//
// Usage: node bench/fastpeer/mock.mjs [--host 127.0.0.1] [--port 0] [--chunks 64] [--delay-ms 20]
// Prints `fastpeer mock: listening on HOST:PORT` once it accepts (what bench/procs.py Server waits for).
// SIGTERM/SIGINT exit at once (status 0).

import net from "node:net";
import { performance } from "node:perf_hooks";

const MAX_HEAD = 64 * 1024;
const MAX_BODY = 32 * 1024 * 1024;
const MAX_CACHE = 256;
const WORDS = ["Hello", " from", " the", " fast", " mock", " upstream", ",", " one", " piece", " at", " a", " time."];

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const HOST = option("--host", "127.0.0.1");
const PORT = Number(option("--port", "0"));
const DEFAULT_CHUNKS = Number(option("--chunks", "64"));
const DEFAULT_DELAY = Number(option("--delay-ms", "20"));

// ---- the frames -------------------------------------------------------------------------------------------

/** One HTTP/1.1 chunk carrying `text` (the chunked transfer coding a provider streams with). */
function chunk(text) {
  const body = Buffer.from(text, "utf8");
  return Buffer.concat([Buffer.from(body.length.toString(16) + "\r\n", "latin1"), body, Buffer.from("\r\n")]);
}

const STREAM_HEAD =
  "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n" +
  "transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n";
const CHUNKED_END = "0\r\n\r\n";

function sse(data, event) {
  return (event ? `event: ${event}\n` : "") + `data: ${JSON.stringify(data)}\n\n`;
}

function pieces(n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(WORDS[i % WORDS.length]);
  return out;
}

/** {open: Buffer, deltas: Buffer[], close: Buffer} of a Chat Completions stream. */
function chatFrames(model, n, usage, promptTokens) {
  const head = { id: "chatcmpl-fastpeer", object: "chat.completion.chunk", created: 1700000000, model };
  const frame = (delta, finish) =>
    sse({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish ?? null }] });
  let tail = frame({}, "stop");
  if (usage) {
    const counts = { prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n };
    tail += sse({ ...head, choices: [], usage: counts });
  }
  tail += "data: [DONE]\n\n";
  return {
    open: Buffer.from(STREAM_HEAD + chunk(frame({ role: "assistant", content: "" })).toString("latin1"), "latin1"),
    deltas: pieces(n).map((p) => chunk(frame({ content: p }))),
    close: Buffer.concat([chunk(tail), Buffer.from(CHUNKED_END)]),
  };
}

/** {open, deltas, close} of an Anthropic Messages stream. */
function anthropicFrames(model, n, promptTokens) {
  const message = {
    id: "msg_fastpeer",
    type: "message",
    role: "assistant",
    model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: promptTokens, output_tokens: 1 },
  };
  const opening =
    sse({ type: "message_start", message }, "message_start") +
    sse({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }, "content_block_start");
  const tail =
    sse({ type: "content_block_stop", index: 0 }, "content_block_stop") +
    sse(
      {
        type: "message_delta",
        delta: { stop_reason: "end_turn", stop_sequence: null },
        usage: { input_tokens: promptTokens, output_tokens: n },
      },
      "message_delta",
    ) +
    sse({ type: "message_stop" }, "message_stop");
  const delta = (text) =>
    sse({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text } }, "content_block_delta");
  return {
    open: Buffer.from(STREAM_HEAD + chunk(opening).toString("latin1"), "latin1"),
    deltas: pieces(n).map((p) => chunk(delta(p))),
    close: Buffer.concat([chunk(tail), Buffer.from(CHUNKED_END)]),
  };
}

const cache = new Map();

/** The prebuilt frames of one kind of answer, built once: every stream of a fan-out shares them. */
function frames(dialect, model, n, usage, promptTokens) {
  const key = `${dialect}\0${model}\0${n}\0${usage}\0${promptTokens}`;
  let found = cache.get(key);
  if (found === undefined) {
    if (cache.size >= MAX_CACHE) cache.clear();
    found = dialect === "chat" ? chatFrames(model, n, usage, promptTokens) : anthropicFrames(model, n, promptTokens);
    cache.set(key, found);
  }
  return found;
}

function wholeAnswer(dialect, model, n, promptTokens) {
  const text = pieces(n).join("");
  if (dialect === "chat") {
    return {
      id: "chatcmpl-fastpeer",
      object: "chat.completion",
      created: 1700000000,
      model,
      choices: [
        { index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: "stop" },
      ],
      usage: { prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n },
    };
  }
  return {
    id: "msg_fastpeer",
    type: "message",
    role: "assistant",
    model,
    content: [{ type: "text", text }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { input_tokens: promptTokens, output_tokens: n },
  };
}

// ---- the request --------------------------------------------------------------------------------------------

function textOf(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .filter((p) => p && typeof p.text === "string" && (p.type === undefined || p.type === "text"))
      .map((p) => p.text)
      .join(" ");
  }
  return "";
}

/** `mock:chunks=N` and `mock:delay_ms=D` in the last user message, as relay/mock/directives.py reads them. */
function directives(payload) {
  const messages = Array.isArray(payload.messages) ? payload.messages : [];
  let text = "";
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i] && messages[i].role === "user") {
      text = textOf(messages[i].content);
      break;
    }
  }
  let chunks = DEFAULT_CHUNKS;
  let delay = DEFAULT_DELAY;
  for (const m of text.matchAll(/mock:([a-z_]+)=(\d+)/g)) {
    const value = Math.min(Number(m[2]), 1_000_000);
    if (m[1] === "chunks") chunks = value;
    else if (m[1] === "delay_ms") delay = value;
  }
  return { chunks, delay, promptTokens: Math.max(1, Math.ceil(text.length / 4)) };
}

function jsonResponse(status, reason, body) {
  const data = Buffer.from(JSON.stringify(body));
  const head =
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${data.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), data]);
}

function errorResponse(status, reason, message) {
  return jsonResponse(status, reason, { error: { message, type: "invalid_request_error", param: null, code: null } });
}

// ---- the cadence buckets ------------------------------------------------------------------------------------

/** delay ms -> phase ms -> Bucket: the streams whose content chunks fall due at phase + k x delay. */
const buckets = new Map();

class Bucket {
  constructor(delay, phase, due) {
    this.delay = delay;
    this.phase = phase;
    this.due = due;
    this.streams = new Set();
    this.timer = null;
  }

  schedule() {
    this.timer = setTimeout(() => this.tick(), Math.max(0, this.due - performance.now()));
  }

  tick() {
    if (performance.now() < this.due) {
      this.schedule(); // libuv's timers count from a cached, whole-ms loop time and may fire a little early
      return;
    }
    const now = this.due;
    for (const s of this.streams) {
      if (s.due > now) continue; // joined after this tick's schedule was set: its first chunk is next tick
      s.step();
      if (s.done) this.streams.delete(s);
    }
    if (this.streams.size === 0) {
      buckets.get(this.delay).delete(this.phase);
      return;
    }
    this.due += this.delay;
    this.schedule();
  }
}

/** A streamed answer in progress: its content chunks written one per tick of its bucket. */
class Stream {
  constructor(conn, set, delay) {
    this.conn = conn;
    this.set = set;
    this.next = 0;
    this.done = false;
    this.due = Math.ceil(performance.now() + delay);
    const phase = this.due % delay;
    let byPhase = buckets.get(delay);
    if (byPhase === undefined) buckets.set(delay, (byPhase = new Map()));
    let bucket = byPhase.get(phase);
    if (bucket === undefined) {
      bucket = new Bucket(delay, phase, this.due);
      byPhase.set(phase, bucket);
      bucket.schedule();
    }
    bucket.streams.add(this);
    this.bucket = bucket;
  }

  step() {
    if (this.conn.socket.destroyed) {
      this.done = true;
      return;
    }
    const { deltas } = this.set;
    if (this.next + 1 < deltas.length) {
      this.conn.socket.write(deltas[this.next++]);
      return;
    }
    this.conn.socket.write(deltas.length ? Buffer.concat([deltas[this.next], this.set.close]) : this.set.close);
    this.done = true;
    this.conn.finished();
  }

  cancel() {
    this.done = true;
    this.bucket.streams.delete(this);
  }
}

// ---- connections --------------------------------------------------------------------------------------------

class Connection {
  constructor(socket) {
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.stream = null;
    socket.setNoDelay(true);
    socket.on("data", (data) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, data]) : data;
      if (this.stream === null) this.serve();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      if (this.stream !== null) this.stream.cancel();
    });
  }

  /** Answers every complete request in the buffer, stopping at a streamed one until it ends. */
  serve() {
    while (this.stream === null && !this.socket.destroyed) {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end < 0) {
        if (this.buffer.length > MAX_HEAD) this.fail(431, "Request Header Fields Too Large", "head too large");
        return;
      }
      const lines = this.buffer.subarray(0, end).toString("latin1").split("\r\n");
      const [method, target] = lines[0].split(" ");
      let length = 0;
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i].indexOf(":");
        const name = lines[i].slice(0, colon).trim().toLowerCase();
        if (name === "content-length") length = Number(lines[i].slice(colon + 1).trim());
        else if (name === "transfer-encoding") return this.fail(501, "Not Implemented", "chunked request bodies");
      }
      if (!Number.isSafeInteger(length) || length < 0 || length > MAX_BODY) {
        return this.fail(400, "Bad Request", "bad content-length");
      }
      if (this.buffer.length < end + 4 + length) return;
      const body = this.buffer.subarray(end + 4, end + 4 + length);
      this.buffer = this.buffer.subarray(end + 4 + length);
      this.answer(method, target.split("?")[0], body);
    }
  }

  fail(status, reason, message) {
    this.socket.end(errorResponse(status, reason, message));
  }

  answer(method, path, body) {
    const dialect = path === "/v1/chat/completions" ? "chat" : path === "/v1/messages" ? "anthropic" : null;
    if (method !== "POST" || dialect === null) {
      this.socket.write(errorResponse(404, "Not Found", `no route for ${method} ${path}`));
      return;
    }
    let payload;
    try {
      payload = JSON.parse(body.toString("utf8"));
    } catch {
      this.socket.write(errorResponse(400, "Bad Request", "the body is not JSON"));
      return;
    }
    if (payload === null || typeof payload !== "object" || typeof payload.model !== "string") {
      this.socket.write(errorResponse(400, "Bad Request", "model is required"));
      return;
    }
    const { chunks, delay, promptTokens } = directives(payload);
    if (payload.stream !== true) {
      this.socket.write(jsonResponse(200, "OK", wholeAnswer(dialect, payload.model, chunks, promptTokens)));
      return;
    }
    const usage = dialect === "chat" && payload.stream_options?.include_usage === true;
    const set = frames(dialect, payload.model, chunks, usage, promptTokens);
    if (delay <= 0 || chunks === 0) {
      this.socket.write(Buffer.concat([set.open, ...set.deltas, set.close]));
      return;
    }
    this.socket.write(set.open);
    this.stream = new Stream(this, set, delay);
  }

  /** The streamed answer ended: answer what the client pipelined behind it. */
  finished() {
    this.stream = null;
    if (this.buffer.length) this.serve();
  }
}

const server = net.createServer({ noDelay: true }, (socket) => new Connection(socket));
server.on("error", (err) => {
  process.stderr.write(`fastpeer mock: cannot listen on ${HOST}:${PORT}: ${err.message}\n`);
  process.exit(2);
});
server.listen({ host: HOST, port: PORT, backlog: 4096 }, () => {
  const { address, port } = server.address();
  process.stdout.write(`fastpeer mock: listening on ${address}:${port}\n`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
