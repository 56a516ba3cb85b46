// The neutral mock's answers: five stream shapes, written once in each of the four dialects' wire formats.
//
// A shape (picked by the model name, `bench-<shape>`) is a script: reasoning pieces, text pieces and the pieces of
// one tool call's JSON arguments, each due a fixed number of milliseconds after the request arrived. A dialect
// turns the script into frames: `open` (written at once, with the response head), one `steps[i]` per piece
// (written when piece i falls due; a step also carries the block changes around it, and the last one the
// closing frames) and `whole` (the non-streamed answer). Everything is built once at start; what differs between
// requests is filled into holes at write time (compile/render below): the ids (unique per request, so that no
// two answers are the same bytes and nothing can be served from a cache) and the token counts (the prompt's
// from the request body's size).
//
// Text is ASCII only, so a frame's length in bytes is its length in characters.

const WORDS = [" The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", " and", " keeps", " on"];
const THOUGHTS = [" Let", " me", " think", " about", " this", " one", " step", " at", " a", " time."];

/** The holes filled per request. */
export const ID = "\u0001"; // the request's id (fixed width): chatcmpl-ID, msg_ID, resp_ID, call_ID, ...
export const PROMPT = "\u0002"; // prompt tokens
export const TOTAL = "\u0003"; // prompt + completion tokens

const TOOL_NAME = "get_weather";
const TOOL_ARGS = JSON.stringify({
  location: "Lisbon, Portugal",
  unit: "celsius",
  days: 3,
  include: ["temperature", "wind", "humidity", "precipitation"],
});

/** A deterministic PRNG (mulberry32): the jittered cadence is the same in every run. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function words(n, from = WORDS) {
  return Array.from({ length: n }, (_, i) => from[i % from.length]);
}

/** `text` cut into `n` pieces of nearly equal length. */
function split(text, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(text.slice(Math.floor((i * text.length) / n), Math.floor(((i + 1) * text.length) / n)));
  return out;
}

function cadence(n, ms) {
  return Array.from({ length: n }, (_, i) => (i + 1) * ms);
}

/** The five shapes. `due[i]` is the time (ms after the request) piece i is sent: reasoning, then text, then args. */
export function shapes(seed) {
  const random = mulberry32(seed);
  let at = 0;
  const jitter = Array.from({ length: 64 }, () => {
    const rate = 30 + random() * 90; // tokens per second, 30 to 120
    at += 1000 / rate;
    return Math.round(at * 1000) / 1000;
  });
  return {
    instant: { reasoning: [], text: words(8), args: [], due: new Array(8).fill(0), detail: "8 text chunks, no delay" },
    fixed: { reasoning: [], text: words(64), args: [], due: cadence(64, 10), detail: "64 text chunks, 10 ms apart" },
    jitter: {
      reasoning: [],
      text: words(64),
      args: [],
      due: jitter,
      detail: `64 text chunks at 30-120 tokens/s (seeded gaps, seed ${seed}), ${Math.round(at)} ms in all`,
    },
    tools: {
      reasoning: [],
      text: [],
      args: split(TOOL_ARGS, 16),
      due: cadence(16, 10),
      detail: "one tool call, its arguments in 16 chunks 10 ms apart",
    },
    reasoning: {
      reasoning: words(32, THOUGHTS),
      text: words(32),
      args: [],
      due: cadence(64, 10),
      detail: "32 reasoning chunks then 32 text chunks, 10 ms apart",
    },
  };
}

// ---- holes --------------------------------------------------------------------------------------------------

/** A frame with holes, as [literal, hole, literal, hole, ..., literal] (hole: 0 id, 1 prompt, 2 total). */
export function compile(text) {
  const parts = [];
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 1 && code <= 3) {
      parts.push(text.slice(last, i), code - 1);
      last = i + 1;
    }
  }
  parts.push(text.slice(last));
  return parts;
}

export function render(parts, values) {
  if (parts.length === 1) return parts[0];
  let out = parts[0];
  for (let i = 1; i < parts.length; i += 2) out += values[parts[i]] + parts[i + 1];
  return out;
}

/** JSON with holes: a number hole must not be quoted. */
function json(value) {
  return JSON.stringify(value)
    .replace(/"\\u000([23])"/g, (_, d) => String.fromCharCode(Number(d)))
    .replace(/\\u000([123])/g, (_, d) => String.fromCharCode(Number(d)));
}

function sse(data, event) {
  return (event ? `event: ${event}\n` : "") + `data: ${json(data)}\n\n`;
}

function completionTokens(s) {
  return s.reasoning.length + s.text.length + s.args.length;
}

// ---- OpenAI Chat Completions --------------------------------------------------------------------------------

function chat(s, model, includeUsage) {
  const head = { id: `chatcmpl-${ID}`, object: "chat.completion.chunk", created: 1700000000, model };
  const chunk = (delta, finish = null) =>
    sse({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  const usage = { prompt_tokens: PROMPT, completion_tokens: completionTokens(s), total_tokens: TOTAL };
  const call = { index: 0, id: `call_${ID}`, type: "function", function: { name: TOOL_NAME, arguments: "" } };
  let open = chunk({ role: "assistant", content: s.args.length ? null : "" });
  if (s.args.length) open += chunk({ tool_calls: [call] });
  const steps = [
    ...s.reasoning.map((p) => chunk({ reasoning_content: p })),
    ...s.text.map((p) => chunk({ content: p })),
    ...s.args.map((p) => chunk({ tool_calls: [{ index: 0, function: { arguments: p } }] })),
  ];
  const finish = s.args.length ? "tool_calls" : "stop";
  steps[steps.length - 1] +=
    chunk({}, finish) + (includeUsage ? sse({ ...head, choices: [], usage }) : "") + "data: [DONE]\n\n";
  const message = { role: "assistant", content: s.args.length ? null : s.text.join(""), refusal: null };
  if (s.reasoning.length) message.reasoning_content = s.reasoning.join("");
  if (s.args.length) message.tool_calls = [{ id: call.id, type: "function", function: { name: TOOL_NAME, arguments: TOOL_ARGS } }];
  const whole = json({
    id: `chatcmpl-${ID}`,
    object: "chat.completion",
    created: 1700000000,
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
    usage,
  });
  return { open, steps, whole };
}

// ---- OpenAI Responses ---------------------------------------------------------------------------------------

function responses(s, model) {
  let seq = 0;
  const ev = (type, fields) => sse({ type, ...fields, sequence_number: seq++ }, type);
  const usage = {
    input_tokens: PROMPT,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: completionTokens(s),
    output_tokens_details: { reasoning_tokens: s.reasoning.length },
    total_tokens: TOTAL,
  };
  const reasoningText = s.reasoning.join("");
  const text = s.text.join("");
  const items = [];
  if (s.reasoning.length) items.push({ id: `rs_${ID}`, type: "reasoning", summary: [{ type: "summary_text", text: reasoningText }] });
  if (s.text.length) {
    items.push({
      id: `msg_${ID}`,
      type: "message",
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text, annotations: [], logprobs: [] }],
    });
  }
  if (s.args.length) {
    items.push({ id: `fc_${ID}`, type: "function_call", status: "completed", call_id: `call_${ID}`, name: TOOL_NAME, arguments: TOOL_ARGS });
  }
  const response = (status, output, done) => ({
    id: `resp_${ID}`,
    object: "response",
    created_at: 1700000000,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: null,
    model,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: 1.0,
    text: { format: { type: "text" } },
    tool_choice: "auto",
    tools: [],
    top_p: 1.0,
    truncation: "disabled",
    usage: done ? usage : null,
    metadata: {},
  });
  // Each item: the frames that open it, one per piece, and those that close it.
  const blocks = [];
  let index = 0;
  if (s.reasoning.length) {
    const where = { item_id: `rs_${ID}`, output_index: index, summary_index: 0 };
    const item = items[index];
    blocks.push({
      open: () =>
        ev("response.output_item.added", { output_index: where.output_index, item: { ...item, summary: [] } }) +
        ev("response.reasoning_summary_part.added", { ...where, part: { type: "summary_text", text: "" } }),
      pieces: s.reasoning,
      piece: (p) => ev("response.reasoning_summary_text.delta", { ...where, delta: p }),
      close: () =>
        ev("response.reasoning_summary_text.done", { ...where, text: reasoningText }) +
        ev("response.reasoning_summary_part.done", { ...where, part: { type: "summary_text", text: reasoningText } }) +
        ev("response.output_item.done", { output_index: where.output_index, item }),
    });
    index++;
  }
  if (s.text.length) {
    const at = index;
    const where = { item_id: `msg_${ID}`, output_index: at, content_index: 0 };
    const empty = { type: "output_text", text: "", annotations: [], logprobs: [] };
    const item = items[at];
    blocks.push({
      open: () =>
        ev("response.output_item.added", { output_index: at, item: { ...item, status: "in_progress", content: [] } }) +
        ev("response.content_part.added", { ...where, part: empty }),
      pieces: s.text,
      piece: (p) => ev("response.output_text.delta", { ...where, delta: p, logprobs: [] }),
      close: () =>
        ev("response.output_text.done", { ...where, text, logprobs: [] }) +
        ev("response.content_part.done", { ...where, part: { ...empty, text } }) +
        ev("response.output_item.done", { output_index: at, item }),
    });
    index++;
  }
  if (s.args.length) {
    const at = index;
    const where = { item_id: `fc_${ID}`, output_index: at };
    const item = items[at];
    blocks.push({
      open: () => ev("response.output_item.added", { output_index: at, item: { ...item, status: "in_progress", arguments: "" } }),
      pieces: s.args,
      piece: (p) => ev("response.function_call_arguments.delta", { ...where, delta: p }),
      close: () =>
        ev("response.function_call_arguments.done", { ...where, name: TOOL_NAME, arguments: TOOL_ARGS }) +
        ev("response.output_item.done", { output_index: at, item }),
    });
  }
  const open =
    ev("response.created", { response: response("in_progress", [], false) }) +
    ev("response.in_progress", { response: response("in_progress", [], false) });
  return { ...blockSteps(open, blocks, () => ev("response.completed", { response: response("completed", items, true) })), whole: json(response("completed", items, true)) };
}

/** Steps from blocks: a block's opening goes with its first piece (the first block's with `open`), its closing
 * with its last, and `end()` after the last piece of all. Frames are built in wire order (sequence numbers). */
function blockSteps(open, blocks, end) {
  const steps = [];
  blocks.forEach((block, b) => {
    const opening = block.open();
    if (b === 0) open += opening;
    block.pieces.forEach((p, i) => {
      let frame = (b > 0 && i === 0 ? opening : "") + block.piece(p);
      if (i === block.pieces.length - 1) frame += block.close();
      steps.push(frame);
    });
  });
  steps[steps.length - 1] += end();
  return { open, steps };
}

// ---- Anthropic Messages -------------------------------------------------------------------------------------

const SIGNATURE = Buffer.from("neutral-mock-thinking-signature-".repeat(4)).toString("base64");

function anthropic(s, model) {
  const ev = (type, fields) => sse({ type, ...fields }, type);
  const content = [];
  if (s.reasoning.length) content.push({ type: "thinking", thinking: s.reasoning.join(""), signature: SIGNATURE });
  if (s.text.length) content.push({ type: "text", text: s.text.join("") });
  if (s.args.length) content.push({ type: "tool_use", id: `toolu_${ID}`, name: TOOL_NAME, input: JSON.parse(TOOL_ARGS) });
  const stop = s.args.length ? "tool_use" : "end_turn";
  const output = completionTokens(s);
  const head = { id: `msg_${ID}`, type: "message", role: "assistant", model };
  const blocks = [];
  let index = 0;
  const block = (start, pieces, piece, extra = "") => {
    const at = index++;
    blocks.push({
      open: () => ev("content_block_start", { index: at, content_block: start }),
      pieces,
      piece: (p) => ev("content_block_delta", { index: at, delta: piece(p) }),
      close: () => (extra ? ev("content_block_delta", { index: at, delta: extra }) : "") + ev("content_block_stop", { index: at }),
    });
  };
  if (s.reasoning.length) {
    block({ type: "thinking", thinking: "", signature: "" }, s.reasoning, (p) => ({ type: "thinking_delta", thinking: p }), {
      type: "signature_delta",
      signature: SIGNATURE,
    });
  }
  if (s.text.length) block({ type: "text", text: "" }, s.text, (p) => ({ type: "text_delta", text: p }));
  if (s.args.length) {
    block({ type: "tool_use", id: `toolu_${ID}`, name: TOOL_NAME, input: {} }, s.args, (p) => ({ type: "input_json_delta", partial_json: p }));
  }
  const open =
    ev("message_start", {
      message: { ...head, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: PROMPT, output_tokens: 1 } },
    }) + ev("ping", {});
  const end = () =>
    ev("message_delta", { delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: output } }) +
    ev("message_stop", {});
  const whole = json({
    ...head,
    content,
    stop_reason: stop,
    stop_sequence: null,
    usage: { input_tokens: PROMPT, output_tokens: output },
  });
  return { ...blockSteps(open, blocks, end), whole };
}

// ---- Gemini generateContent ---------------------------------------------------------------------------------

function gemini(s, model, array) {
  const output = completionTokens(s);
  const usage = (final) =>
    final
      ? {
          promptTokenCount: PROMPT,
          candidatesTokenCount: output - s.reasoning.length,
          totalTokenCount: TOTAL,
          ...(s.reasoning.length ? { thoughtsTokenCount: s.reasoning.length } : {}),
        }
      : { promptTokenCount: PROMPT, totalTokenCount: PROMPT };
  const call = { functionCall: { name: TOOL_NAME, args: JSON.parse(TOOL_ARGS) } };
  const chunk = (parts, final) =>
    json({
      candidates: [{ content: { role: "model", parts }, index: 0, ...(final ? { finishReason: "STOP" } : {}) }],
      usageMetadata: usage(final),
      modelVersion: model,
      responseId: ID,
    });
  const parts = [
    ...s.reasoning.map((p) => ({ text: p, thought: true })),
    ...s.text.map((p) => ({ text: p })),
  ];
  // Gemini streams no partial arguments: a call arrives whole, here when its last piece falls due.
  let steps = parts.map((part, i) => chunk([part], i === parts.length - 1 && !s.args.length));
  if (s.args.length) steps.push(...s.args.slice(1).map(() => ""), chunk([call], true));
  if (array) {
    // streamGenerateContent without alt=sse: one JSON array, its elements written as they come.
    let first = true;
    steps = steps.map((body) => {
      if (!body) return "";
      const framed = (first ? "[" : ",\r\n") + body;
      first = false;
      return framed;
    });
    steps[steps.length - 1] += "\r\n]";
  } else {
    steps = steps.map((body) => (body ? `data: ${body}\r\n\r\n` : ""));
  }
  const wholeParts = [];
  if (s.reasoning.length) wholeParts.push({ text: s.reasoning.join(""), thought: true });
  if (s.text.length) wholeParts.push({ text: s.text.join("") });
  if (s.args.length) wholeParts.push(call);
  const whole = json({
    candidates: [{ content: { role: "model", parts: wholeParts }, index: 0, finishReason: "STOP" }],
    usageMetadata: usage(true),
    modelVersion: model,
    responseId: ID,
  });
  return { open: "", steps, whole };
}

/** {open, steps, whole} of one (dialect, shape, model): `dialect` one of openai_chat, openai_chat+usage,
 * openai_responses, anthropic, gemini. */
export function build(dialect, shape, model) {
  switch (dialect) {
    case "openai_chat":
      return chat(shape, model, false);
    case "openai_chat+usage":
      return chat(shape, model, true);
    case "openai_responses":
      return responses(shape, model);
    case "anthropic":
      return anthropic(shape, model);
    case "gemini":
      return gemini(shape, model, false);
    case "gemini-array":
      return gemini(shape, model, true);
    default:
      throw new Error(`unknown dialect ${dialect}`);
  }
}

export { completionTokens, TOOL_NAME, TOOL_ARGS };
