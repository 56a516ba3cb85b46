// The neutral mock's frames as a data file, for the C mock (cmock.c): every (dialect, shape) built by shapes.mjs,
// so that the two mocks send the same bytes and never drift apart.
//
// The model is a fifth hole (byte 4, filled per request with the model's JSON string contents) besides the id
// (1), prompt tokens (2) and total tokens (3). Format, all lengths in bytes:
//   neutral-table 1\n
//   shape NAME NSTEPS DUE0 DUE1 ...\n                (one line per shape, in shapes.mjs order)
//   answer DIALECT SHAPE FRAMES COMPLETION NSTEPS\n  (one per dialect x shape), then its templates:
//   open LEN\nBYTES\n, step LEN\nBYTES\n (NSTEPS times), whole LEN\nBYTES\n
//
// Usage: node bench/neutral/table.mjs [--seed 15] > table.txt

import { build, completionTokens, shapes } from "./shapes.mjs";

const at = process.argv.indexOf("--seed");
const seed = Number(at >= 0 ? process.argv[at + 1] : "15");
const SHAPES = shapes(seed);
const MODEL = "\u0004";
const DIALECTS = ["openai_chat", "openai_chat+usage", "openai_responses", "anthropic", "gemini", "gemini-array"];

/** The template with the model hole as one byte (JSON.stringify wrote it as the six characters \u0004). */
const holed = (text) => text.replaceAll("\\u0004", MODEL);

const out = ["neutral-table 1\n"];
for (const [name, shape] of Object.entries(SHAPES)) out.push(`shape ${name} ${shape.due.length} ${shape.due.join(" ")}\n`);
const template = (kind, text) => {
  const t = holed(text);
  out.push(`${kind} ${Buffer.byteLength(t)}\n`, t, "\n");
};
for (const dialect of DIALECTS) {
  for (const [name, shape] of Object.entries(SHAPES)) {
    const built = build(dialect, shape, MODEL);
    // Frames per stream, counted as mock.mjs counts them for its stats.
    const frames =
      dialect === "gemini-array"
        ? built.steps.filter((step) => step).length
        : (built.open + built.steps.join("")).split("\n\n").length - 1;
    out.push(`answer ${dialect} ${name} ${frames} ${completionTokens(shape)} ${built.steps.length}\n`);
    template("open", built.open);
    for (const step of built.steps) template("step", step);
    template("whole", built.whole);
  }
}
process.stdout.write(out.join(""));
