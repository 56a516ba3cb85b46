"""Audio token prices (OpenAI Realtime): audio input, cached audio input and audio output each at their own price
when ``[[prices]]`` gives one, at the text prices otherwise; the hold at the dearer of the two."""

from __future__ import annotations

from relay.config import Price
from relay.dialects import ir
from relay.gateway.pricing import Pricing

REALTIME = Price(
    "gpt-realtime*",
    input=4.0,
    cached_input=0.4,
    output=16.0,
    audio_input=32.0,
    cached_audio_input=0.5,
    audio_output=64.0,
)
PRICES = Pricing([REALTIME, Price("text-only*", input=4.0, cached_input=0.4, output=16.0)])

#: 1,000 input tokens (600 audio), 300 cached (200 of them audio); 500 output (400 audio).
USAGE = ir.Usage(
    input_tokens=1000,
    output_tokens=500,
    cached_tokens=300,
    audio_input_tokens=600,
    cached_audio_tokens=200,
    audio_output_tokens=400,
)


def test_each_kind_of_token_is_charged_its_own_price() -> None:
    text_in = (400 - 100) * 4.0 + 100 * 0.4
    audio_in = (600 - 200) * 32.0 + 200 * 0.5
    out = 100 * 16.0 + 400 * 64.0
    assert PRICES.cost("gpt-realtime", USAGE) == round(text_in + audio_in + out)
    assert PRICES.cost("gpt-realtime", USAGE, multiplier=2.0) == round((text_in + audio_in + out) * 2)


def test_without_audio_prices_audio_costs_the_text_prices() -> None:
    text_priced = (1000 - 300) * 4.0 + 300 * 0.4 + 500 * 16.0
    assert PRICES.cost("text-only", USAGE) == round(text_priced)
    assert PRICES.cost("text-only", USAGE) == PRICES.cost("text-only", ir.Usage(1000, 500, 300))


def test_audio_counts_never_exceed_the_totals_they_are_part_of() -> None:
    odd = ir.Usage(input_tokens=10, output_tokens=5, audio_input_tokens=50, audio_output_tokens=50)
    assert PRICES.cost("gpt-realtime", odd) == round(10 * 32.0 + 5 * 64.0)


def test_the_hold_takes_the_dearer_price() -> None:
    assert PRICES.hold("gpt-realtime", input_tokens=100, max_output=10, multiplier=1.0) == 100 * 32 + 10 * 64
    assert PRICES.hold("text-only", input_tokens=100, max_output=10, multiplier=1.0) == 100 * 4 + 10 * 16
