"""A token estimate for upstreams that cannot count: a token per four bytes of UTF-8 text.

Used only where the upstream has no counting endpoint (OpenAI-compatible servers without
``/responses/input_tokens``). It counts the text of the system prompt, the messages, tool results,
tool calls' arguments and the tools' definitions, plus four tokens per message for the framing; an
image or document counts as a flat 256 tokens. It is an estimate, named as one in docs/.
"""

from __future__ import annotations

import orjson

from relay.dialects import ir

PER_MESSAGE = 4
PER_ATTACHMENT = 256


def input_tokens(req: ir.Request) -> int:
    size = sum(len(part.text.encode()) for part in req.system)
    attachments = 0
    for message in req.messages:
        size += PER_MESSAGE * 4
        for part in message.parts:
            if isinstance(part, ir.Text | ir.Reasoning):
                size += len(part.text.encode())
            elif isinstance(part, ir.ToolCall):
                size += len(part.name) + len(part.arguments.encode())
            elif isinstance(part, ir.ToolResult):
                size += sum(len(p.text.encode()) if isinstance(p, ir.Text) else 0 for p in part.content)
                attachments += sum(isinstance(p, ir.Image) for p in part.content)
            else:
                attachments += 1
    for tool in req.tools:
        size += len(tool.name) + len((tool.description or "").encode()) + len(orjson.dumps(dict(tool.parameters)))
    return -(-size // 4) + attachments * PER_ATTACHMENT
