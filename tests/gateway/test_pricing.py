"""Prices, costs and holds, in exact micro-credits."""

from __future__ import annotations

import base64

from relay.config import Price
from relay.dialects import ir
from relay.gateway.pricing import ATTACHMENT_TOKENS, Pricing, input_estimate, max_output

PRICES = Pricing(
    [
        Price("gpt-4o-mini*", input=0.15, output=0.6),
        Price("gpt-4o*", input=2.5, output=10.0, cached_input=1.25),
        Price("claude-*", input=3.0, output=15.0, cached_input=0.3),
    ]
)


def test_the_first_matching_glob_wins_and_unpriced_models_are_free() -> None:
    assert PRICES.price("gpt-4o-mini-2024") == Price("gpt-4o-mini*", input=0.15, output=0.6)
    assert PRICES.price("gpt-4o") is not None and PRICES.price("gpt-4o").input == 2.5  # type: ignore[union-attr]
    assert PRICES.price("llama3") is None
    assert PRICES.cost("llama3", ir.Usage(input_tokens=10**6, output_tokens=10**6)) == 0


def test_cost_is_exact_micro_credits_with_cached_input_and_the_channel_multiplier() -> None:
    usage = ir.Usage(input_tokens=1000, output_tokens=500, cached_tokens=400, reasoning_tokens=100)
    # 600 uncached * 2.5 + 400 cached * 1.25 + 500 output * 10 = 1500 + 500 + 5000 micro-credits
    assert PRICES.cost("gpt-4o", usage) == 7000
    assert PRICES.cost("gpt-4o", usage, multiplier=1.5) == 10500
    # without a cached price, cached input costs the input price
    assert PRICES.cost("gpt-4o-mini", ir.Usage(input_tokens=1000, output_tokens=0, cached_tokens=1000)) == 150
    assert PRICES.cost("gpt-4o", None) == 0


def test_the_hold_covers_the_whole_output_ceiling_at_the_highest_multiplier() -> None:
    assert PRICES.hold("claude-3", input_tokens=100, max_output=1000, multiplier=2.0) == (300 + 15000) * 2
    assert PRICES.hold("llama3", input_tokens=100, max_output=1000, multiplier=1.0) == 0


def test_max_output_reads_every_client_api_and_falls_back_to_the_default() -> None:
    assert max_output({"max_tokens": 50}, 4096) == 50
    assert max_output({"max_completion_tokens": 70, "max_tokens": 50}, 4096) == 70
    assert max_output({"max_output_tokens": 60}, 4096) == 60
    assert max_output({"generationConfig": {"maxOutputTokens": 80}}, 4096) == 80
    assert max_output({"max_tokens": True}, 4096) == 4096
    assert max_output({"max_tokens": -1}, 4096) == 4096
    assert max_output(None, 10) == 10


def test_input_estimate_is_an_upper_bound_that_counts_attachments_flat() -> None:
    text = b'{"messages":[{"role":"user","content":"' + b"word " * 2000 + b'"}]}'
    assert input_estimate(text) >= len(text) // 4
    image = base64.b64encode(bytes(range(256)) * 4000)  # about 1.3 MB of base64
    body = b'{"image":"data:image/png;base64,' + image + b'"}'
    assert input_estimate(body) < 2 * ATTACHMENT_TOKENS
    assert input_estimate(b"{}") == 1


UNIT_PRICES = Pricing(
    [
        Price("dall-e-3", image=0.04, image_sizes={"1024x1792": 0.08, "1024x1792/hd": 0.12}),
        Price("gpt-image-*", input=5.0, output=40.0, image=0.01),
        Price("whisper-*", second=0.0001),
        Price("tts-*", character=0.000015),
        Price("rerank-*", input=0.05, request=0.002),
    ]
)


def test_units_cost_their_own_prices_and_add_to_tokens() -> None:
    # an image priced by its size and quality, then its size alone, then the model's flat price
    assert UNIT_PRICES.cost("dall-e-3", ir.Usage(images=2, image_size="1024x1792/hd")) == 240_000
    assert UNIT_PRICES.cost("dall-e-3", ir.Usage(images=2, image_size="1024x1792/standard")) == 160_000
    assert UNIT_PRICES.cost("dall-e-3", ir.Usage(images=1, image_size="1024x1024")) == 40_000
    # tokens and images add: 100 * 5 + 1000 * 40 + 10_000 micro-credits
    assert UNIT_PRICES.cost("gpt-image-1", ir.Usage(input_tokens=100, output_tokens=1000, images=1)) == 50_500
    assert UNIT_PRICES.cost("whisper-1", ir.Usage(seconds=61.5)) == 6_150
    assert UNIT_PRICES.cost("tts-1", ir.Usage(characters=1000)) == 15_000
    assert UNIT_PRICES.cost("rerank-2", ir.Usage(input_tokens=1000, requests=1), multiplier=2.0) == (50 + 2000) * 2
    # a model priced by tokens only charges nothing for units
    assert PRICES.cost("gpt-4o", ir.Usage(images=3, seconds=10.0)) == 0


def test_the_hold_covers_the_units_a_request_may_be_billed() -> None:
    assert UNIT_PRICES.hold("dall-e-3", 10, 4096, 1.0, ir.Usage(images=4, image_size="1024x1792/hd")) == 480_000
    assert UNIT_PRICES.hold("tts-1", 0, 0, 1.5, ir.Usage(characters=2000)) == 45_000
    assert UNIT_PRICES.hold("dall-e-3", 10, 4096, 1.0) == 0  # no units asked: tokens only, and it has no token price
