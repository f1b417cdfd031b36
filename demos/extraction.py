"""The structured extraction tab: text and a JSON schema in, validated JSON out."""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from agentlib import AgentlibError, agenerate_result

from ._shared import PATH_LABELS, SHAPE_NOTE, SMALL_MODEL_NOTE, ModelPool

MAX_TEXT_CHARS = 8000
MAX_SCHEMA_CHARS = 10_000

EXAMPLES: dict[str, dict[str, Any]] = {
    "Person": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 80},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "city": {"type": "string", "maxLength": 80},
        },
        "required": ["name", "age", "city"],
    },
    "Invoice": {
        "type": "object",
        "properties": {
            "number": {"type": "string", "maxLength": 40},
            "total": {"type": "number"},
            "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
        },
        "required": ["number", "total", "currency"],
    },
    "Sentiment": {
        "type": "object",
        "properties": {
            "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
            "reason": {"type": "string", "maxLength": 200},
        },
        "required": ["sentiment", "reason"],
    },
}
SAMPLE_TEXTS = {
    "Person": "Maria Svensson is 34 years old and lives in Gothenburg, where she teaches maths.",
    "Invoice": "Invoice INV-2041 — total due: 1,250.50 EUR, payable within 30 days.",
    "Sentiment": "The delivery was late, but support sorted it out quickly. Great service!",
}


def parse_schema(text: str) -> dict[str, Any]:
    """Read a pasted schema, with a clear message for what is wrong with it."""
    if len(text) > MAX_SCHEMA_CHARS:
        raise ValueError(f"the schema is longer than {MAX_SCHEMA_CHARS} characters")
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the schema is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(schema, dict):
        raise ValueError("the schema must be a JSON object")
    return schema


def build_extraction_tab(pool: ModelPool) -> None:
    """Lay out the extraction tab inside the current `gr.Blocks`."""
    with gr.Row():
        model_name = gr.Dropdown(pool.names, value=pool.names[0], label="Model", scale=2)
        example = gr.Dropdown(list(EXAMPLES), value="Person", label="Example schema", scale=1)
    gr.Markdown(SMALL_MODEL_NOTE, elem_classes=["small-note"])
    with gr.Row():
        text = gr.Textbox(
            SAMPLE_TEXTS["Person"],
            label="Text",
            lines=8,
            max_length=MAX_TEXT_CHARS,
            elem_id="extract-text",
        )
        schema_box = gr.Code(
            json.dumps(EXAMPLES["Person"], indent=2),
            language="json",
            label="JSON schema",
            elem_id="extract-schema",
        )
    run = gr.Button("Extract", variant="primary", elem_id="extract-run")
    output = gr.JSON(label="Output (shape checked against the schema)", elem_id="extract-output")
    status = gr.Markdown(elem_id="extract-status")

    def pick(name: str) -> tuple[str, str]:
        return SAMPLE_TEXTS[name], json.dumps(EXAMPLES[name], indent=2)

    async def extract(source: str, schema_text: str, model_choice: str) -> tuple[Any, str]:
        try:
            schema = parse_schema(schema_text or "")
            generation = await agenerate_result(
                pool.get(model_choice),
                schema,
                source or "",
                instructions="Extract the data described by the schema from the user's text.",
                retries=1,
                max_tokens=400,
            )
        except (ValueError, AgentlibError) as exc:
            return None, f"**Could not extract:** {exc}"
        how = PATH_LABELS.get(generation.path, generation.path)
        return generation.output, (
            f"The output has the schema's shape (its fields, types and allowed values), kept by "
            f"**{how}**; {generation.attempts} attempt(s), {generation.output_tokens} tokens "
            f"generated. {SHAPE_NOTE}"
        )

    example.change(pick, [example], [text, schema_box], queue=False)
    run.click(extract, [text, schema_box, model_name], [output, status])
