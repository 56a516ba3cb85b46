// The neutral mock upstream of the benchmark: OpenAI Chat Completions, OpenAI Responses, Anthropic Messages and
// Gemini generateContent over HTTP/1.1, whole or streamed, from frames built once (shapes.mjs).
//
// Why its own server: every target of the benchmark (Relay, LiteLLM, Portkey, or none: `direct`) is measured
// against this one upstream, so it must be neutral (no proxy's code in it, each dialect written from the API's
// documented wire format) and cheap, its cost a small fraction of any proxy's on the same lane (measured:
// bench/neutral/cost.py). It is what bench/fastpeer/mock.mjs is for bench.fanout, for all four dialects:
//
// - raw `net` sockets and a small HTTP/1.1 parser (request line, headers, a Content-Length or chunked body,
//   keep-alive, pipelined requests queued behind a running stream), no framework;
// - the frames of every (dialect, shape, model) prebuilt once; per request only the holes (its id, its token
//   counts) are filled in, so that no two answers are the same bytes;
// - one timer for every stream: a min-heap of due times in whole milliseconds, each stream on a fixed schedule
//   from its request's arrival (a late tick does not push the following frames back); a frame is written up to
//   1 ms before its due time, the resolution of libuv's timers.
//
// Routes: POST /v1/chat/completions, /v1/responses, /v1/messages, /v1beta/models/{model}:generateContent and
// :streamGenerateContent (SSE with ?alt=sse, else a JSON array; also without the /v1beta prefix, or under /v1); GET /v1/models; GET
// /_neutral/stats (requests, streams, frames and bytes answered so far, for the cost figures). The shape is the
// model name's `bench-<shape>` (instant, fixed, jitter, tools, reasoning; shapes.mjs). Any key is accepted.
//
// Usage: node bench/neutral/mock.mjs [--host 127.0.0.1] [--port 0] [--seed 15]
// Prints `neutral mock: listening on HOST:PORT` once it accepts (what bench/procs.py Server waits for).
// SIGTERM/SIGINT exit at once (status 0).

import net from "node:net";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { build, compile, completionTokens, render, shapes } from "./shapes.mjs";

const MAX_HEAD = 64 * 1024;
const MAX_BODY = 8 * 1024 * 1024;
const MAX_CACHE = 512;
/** How early (ms) a frame may be written: libuv's timer resolution. */
const EARLY = 1;

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const HOST = option("--host", "127.0.0.1");
const PORT = Number(option("--port", "0"));
const SHAPES = shapes(Number(option("--seed", "15")));
const SHAPE_NAMES = Object.keys(SHAPES);
const MODEL_SHAPE = new RegExp(`bench-(${SHAPE_NAMES.join("|")})`);

const stats = {
  requests: 0,
  streams: 0,
  frames: 0,
  bytes: 0,
  // Generation requests per dialect: which API a proxy really called (bench/targets checks each route with it).
  dialects: { openai_chat: 0, openai_responses: 0, anthropic: 0, gemini: 0 },
};

// ---- ids ----------------------------------------------------------------------------------------------------

const RUN = randomBytes(6).toString("hex"); // 12 characters: this process's
let counter = 0;

/** A 24-character id unique to this request. */
function nextId() {
  counter++;
  return RUN + counter.toString(36).padStart(12, "0");
}

// ---- the prebuilt answers -----------------------------------------------------------------------------------

const cache = new Map();

/** {open, steps, whole, due, frames} of (dialect, shape, model), compiled once. */
function answer(dialect, shapeName, model) {
  const key = `${dialect}\0${shapeName}\0${model}`;
  let found = cache.get(key);
  if (found === undefined) {
    if (cache.size >= MAX_CACHE) cache.clear();
    const shape = SHAPES[shapeName];
    const built = build(dialect, shape, model);
    found = {
      open: compile(built.open),
      steps: built.steps.map(compile),
      whole: compile(built.whole),
      due: shape.due,
      completion: completionTokens(shape),
      // Frames per stream (SSE events, or a JSON array's elements), counted once for the stats.
      frames:
        dialect === "gemini-array"
          ? built.steps.filter((step) => step).length
          : (built.open + built.steps.join("")).split("\n\n").length - 1,
      head: dialect === "gemini-array" ? ARRAY_HEAD : STREAM_HEAD,
    };
    cache.set(key, found);
  }
  return found;
}

// ---- HTTP ---------------------------------------------------------------------------------------------------

const STREAM_HEAD =
  "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n" +
  "transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n";
const ARRAY_HEAD =
  "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n";
const REASONS = { 200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large", 431: "Request Header Fields Too Large", 501: "Not Implemented" };

function chunk(text) {
  return text.length.toString(16) + "\r\n" + text + "\r\n";
}

function jsonHead(status, length) {
  return `HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\nconnection: keep-alive\r\n\r\n`;
}

/** An error answer in the dialect's own shape. */
function errorText(dialect, status, message) {
  let body;
  if (dialect === "gemini-array") dialect = "gemini";
  if (dialect === "anthropic") {
    body = { type: "error", error: { type: status === 404 ? "not_found_error" : "invalid_request_error", message } };
  } else if (dialect === "gemini") {
    body = { error: { code: status, message, status: status === 404 ? "NOT_FOUND" : "INVALID_ARGUMENT" } };
  } else {
    body = { error: { message, type: "invalid_request_error", param: null, code: null } };
  }
  const text = JSON.stringify(body);
  return jsonHead(status, Buffer.byteLength(text)) + text;
}

// ---- the timer ----------------------------------------------------------------------------------------------

/** Due time (whole ms of performance.now()) -> the streams with a step due then. */
const slots = new Map();
const heap = [];
let timer = null;
let timerAt = Infinity;

function heapPush(value) {
  heap.push(value);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent] <= value) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = value;
}

function heapPop() {
  const top = heap[0];
  const last = heap.pop();
  if (heap.length) {
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const child = left + 1 < heap.length && heap[left + 1] < heap[left] ? left + 1 : left;
      if (heap[child] >= last) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = last;
  }
  return top;
}

function wake(due, stream) {
  let list = slots.get(due);
  if (list === undefined) {
    slots.set(due, (list = []));
    heapPush(due);
    if (due < timerAt) arm(due);
  }
  list.push(stream);
}

function arm(due) {
  if (timer !== null) clearTimeout(timer);
  timerAt = due;
  timer = setTimeout(tick, Math.max(0, due - performance.now()));
}

function tick() {
  timer = null;
  timerAt = Infinity;
  // libuv's timers count whole milliseconds from a cached loop time and often fire a fraction of one early:
  // what falls due within EARLY ms is written now rather than after one more wake-up (which doubled the
  // mock's wake-ups, and its CPU, on paced streams).
  const now = performance.now() + EARLY;
  while (heap.length && heap[0] <= now) {
    const due = heapPop();
    const list = slots.get(due);
    slots.delete(due);
    for (const stream of list) stream.step(now);
  }
  if (heap.length) arm(heap[0]);
}

/** A streamed answer in progress: its steps written as they fall due. */
class Stream {
  constructor(conn, prepared, values, start, head) {
    this.conn = conn;
    // The response head and opening frames, written with the steps due at once (one write, one segment).
    this.head = head;
    this.prepared = prepared;
    this.values = values;
    this.start = start;
    this.next = 0;
    this.done = false;
  }

  /** Writes every step due by `now`, then waits for the next one (or ends the answer). */
  step(now) {
    if (this.done) return;
    const socket = this.conn.socket;
    if (socket.destroyed) {
      this.done = true;
      return;
    }
    const { steps, due } = this.prepared;
    let out = "";
    while (this.next < steps.length && this.start + due[this.next] <= now) {
      out += render(steps[this.next++], this.values);
    }
    const last = this.next >= steps.length;
    if (out) out = chunk(out);
    if (last) out += "0\r\n\r\n";
    if (this.head) {
      out = this.head + out;
      this.head = "";
    }
    if (out) {
      stats.bytes += out.length;
      socket.write(out, "latin1");
    }
    if (last) {
      this.done = true;
      this.conn.finished();
      return;
    }
    wake(Math.ceil(this.start + due[this.next]), this);
  }
}

// ---- requests -----------------------------------------------------------------------------------------------

/** (dialect, model from the path or null, streamed per the path or null) of a POST path, or null. */
function route(path, query) {
  if (path === "/v1/chat/completions" || path === "/chat/completions") return ["openai_chat", null, null];
  if (path === "/v1/responses" || path === "/responses") return ["openai_responses", null, null];
  if (path === "/v1/messages" || path === "/messages") return ["anthropic", null, null];
  const gemini = /^(?:\/v1beta|\/v1)?\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(path);
  if (gemini) {
    const streamed = gemini[2] === "streamGenerateContent";
    const array = streamed && !/(^|&)alt=sse(&|$)/.test(query);
    return [array ? "gemini-array" : "gemini", decodeURIComponent(gemini[1]), streamed];
  }
  return null;
}

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
      if (this.stream !== null) this.stream.done = true;
    });
  }

  /** Answers every complete request in the buffer, stopping at a streamed one until it ends. */
  serve() {
    while (this.stream === null && !this.socket.destroyed) {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end < 0) {
        if (this.buffer.length > MAX_HEAD) this.fail(null, 431, "request head too large");
        return;
      }
      const lines = this.buffer.subarray(0, end).toString("latin1").split("\r\n");
      const [method, target = "/"] = lines[0].split(" ");
      let length = 0;
      let chunked = false;
      let expect = false;
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i].indexOf(":");
        const name = lines[i].slice(0, colon).trim().toLowerCase();
        const value = lines[i].slice(colon + 1).trim().toLowerCase();
        if (name === "content-length") length = Number(value);
        else if (name === "transfer-encoding") chunked = value.includes("chunked");
        else if (name === "expect") expect = value === "100-continue";
      }
      let body;
      let rest;
      if (chunked) {
        const decoded = dechunk(this.buffer, end + 4);
        if (decoded === "bad") return this.fail(null, 400, "bad chunked body");
        if (decoded === "large") return this.fail(null, 413, "body too large");
        if (decoded === null) return this.continueOnce(expect);
        [body, rest] = decoded;
      } else {
        if (!Number.isSafeInteger(length) || length < 0) return this.fail(null, 400, "bad content-length");
        if (length > MAX_BODY) return this.fail(null, 413, "body too large");
        if (this.buffer.length < end + 4 + length) return this.continueOnce(expect);
        body = this.buffer.subarray(end + 4, end + 4 + length);
        rest = end + 4 + length;
      }
      this.buffer = this.buffer.subarray(rest);
      this.continued = false;
      const query = target.indexOf("?");
      this.answer(method, query < 0 ? target : target.slice(0, query), query < 0 ? "" : target.slice(query + 1), body);
    }
  }

  continueOnce(expect) {
    if (expect && !this.continued) {
      this.continued = true;
      this.socket.write("HTTP/1.1 100 Continue\r\n\r\n");
    }
  }

  fail(dialect, status, message) {
    this.socket.end(errorText(dialect, status, message), "latin1");
  }

  reply(text) {
    stats.bytes += text.length;
    this.socket.write(text, "latin1");
  }

  answer(method, path, query, body) {
    if (method === "GET" && path === "/_neutral/stats") return this.replyJson(stats);
    if (method === "GET" && (path === "/v1/models" || path === "/models")) {
      const data = SHAPE_NAMES.map((s) => ({ id: `bench-${s}`, object: "model", created: 1700000000, owned_by: "neutral-mock" }));
      return this.replyJson({ object: "list", data });
    }
    const found = method === "POST" ? route(path, query) : null;
    if (found === null) return this.reply(errorText(null, 404, `no route for ${method} ${path}`));
    stats.requests++;
    let [dialect, model, streamed] = found;
    stats.dialects[dialect === "gemini-array" ? "gemini" : dialect]++;
    let payload;
    try {
      payload = JSON.parse(body.toString("utf8"));
    } catch {
      return this.reply(errorText(dialect, 400, "the body is not JSON"));
    }
    if (payload === null || typeof payload !== "object") return this.reply(errorText(dialect, 400, "the body is not an object"));
    if (model === null) model = payload.model;
    if (streamed === null) streamed = payload.stream === true;
    const shape = typeof model === "string" && /^[\x21-\x7e]+$/.test(model) ? MODEL_SHAPE.exec(model) : null;
    if (shape === null) {
      const known = SHAPE_NAMES.map((s) => `bench-${s}`).join(", ");
      return this.reply(errorText(dialect, 404, `unknown model ${JSON.stringify(model)}: the neutral mock serves ${known}`));
    }
    if (dialect === "openai_chat" && payload.stream_options?.include_usage === true) dialect = "openai_chat+usage";
    const prepared = answer(dialect, shape[1], model);
    const prompt = Math.max(1, Math.ceil(body.length / 4));
    const values = [nextId(), String(prompt), String(prompt + prepared.completion)];
    if (!streamed) {
      const whole = render(prepared.whole, values);
      return this.reply(jsonHead(200, whole.length) + whole);
    }
    stats.streams++;
    stats.frames += prepared.frames;
    const start = performance.now();
    const head = prepared.head + (prepared.open.length > 1 || prepared.open[0] ? chunk(render(prepared.open, values)) : "");
    const stream = new Stream(this, prepared, values, start, head);
    this.stream = stream;
    stream.step(start);
  }

  replyJson(value) {
    const text = JSON.stringify(value);
    this.reply(jsonHead(200, text.length) + text);
  }

  /** The streamed answer ended: answer what the client pipelined behind it. */
  finished() {
    this.stream = null;
    if (this.buffer.length) setImmediate(() => this.serve());
  }
}

/** A chunked request body starting at `from`: [body, offset after it], null while incomplete, "bad", "large". */
function dechunk(buffer, from) {
  const parts = [];
  let at = from;
  let size = 0;
  for (;;) {
    const line = buffer.indexOf("\r\n", at);
    if (line < 0) return null;
    const length = parseInt(buffer.subarray(at, line).toString("latin1").split(";")[0], 16);
    if (!Number.isSafeInteger(length) || length < 0) return "bad";
    size += length;
    if (size > MAX_BODY) return "large";
    if (length === 0) {
      // Trailers (none expected) end with an empty line.
      const close = buffer.indexOf("\r\n", line + 2);
      if (close < 0) return null;
      return [Buffer.concat(parts), close + 2];
    }
    if (buffer.length < line + 2 + length + 2) return null;
    parts.push(buffer.subarray(line + 2, line + 2 + length));
    at = line + 2 + length + 2;
  }
}

const server = net.createServer({ noDelay: true }, (socket) => new Connection(socket));
server.on("error", (err) => {
  process.stderr.write(`neutral mock: cannot listen on ${HOST}:${PORT}: ${err.message}\n`);
  process.exit(2);
});
server.listen({ host: HOST, port: PORT, backlog: 8192 }, () => {
  const { address, port } = server.address();
  process.stdout.write(`neutral mock: listening on ${address}:${port}\n`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
