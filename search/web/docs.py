"""OpenAPI for the endpoints, derived from the CLI's click options, and a plain docs page at
``/docs`` (no Swagger UI: it would load its scripts from the internet)."""

from __future__ import annotations

import html

import click


def _schema(param: click.Parameter, max_limit: int, max_text: int, max_list: int) -> dict:
    kind = param.type
    if getattr(param, "is_flag", False):
        schema = {"type": "boolean"}
    elif isinstance(kind, click.Choice):
        schema = {"type": "string", "enum": list(kind.choices)}
    elif isinstance(kind, (click.IntRange, click.FloatRange)) or kind in (click.INT, click.FLOAT):
        schema = {"type": "integer" if isinstance(kind, click.IntRange) or kind is click.INT else "number"}
        if getattr(kind, "min", None) is not None:
            schema["minimum"] = kind.min
        if getattr(kind, "max", None) is not None:
            schema["maximum"] = kind.max
    else:
        schema = {"type": "string", "maxLength": max_text}
    if param.name == "limit":
        schema["maximum"] = max_limit
    if getattr(param, "multiple", False):
        return {"type": "array", "items": schema, "maxItems": max_list}
    if isinstance(param.default, (str, int, float)) and not getattr(param, "is_flag", False):
        schema["default"] = param.default
    return schema


def openapi_parameters(params: dict[str, click.Parameter], max_limit: int, max_text: int, max_list: int) -> list[dict]:
    """OpenAPI query parameters for an endpoint's parameters (name -> click option or argument)."""
    out = []
    for name, param in params.items():
        help_text = getattr(param, "help", None) or ("The words to find in titles and artists." if name == "query" else "")
        if getattr(param, "metavar", None) == "ID_OR_NAME,...":
            help_text += f" Comma-separated, at most {max_list}."
        out.append({"name": name, "in": "query", "required": bool(param.required), "description": help_text.strip(),
                    "schema": _schema(param, max_limit, max_text, max_list)})
    return out


def _type_of(schema: dict) -> str:
    if schema.get("type") == "array":
        return f"repeatable {_type_of(schema['items'])}"
    if "enum" in schema:
        return " | ".join(schema["enum"])
    bounds = [f"{k[:3]} {schema[k]}" for k in ("minimum", "maximum") if k in schema]
    return schema.get("type", "string") + (f" ({', '.join(bounds)})" if bounds else "")


def docs_page(spec: dict) -> str:
    """Every endpoint and its parameters as one plain HTML page, from the OpenAPI spec."""
    e = html.escape
    parts = [f"<!doctype html><html lang=en><meta charset=utf-8><title>{e(spec['info']['title'])} API</title>",
             "<style>body{font:15px system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left;vertical-align:top}"
             "code{background:#f4f4f4;padding:0 .2em}</style>",
             f"<h1>{e(spec['info']['title'])} {e(spec['info']['version'])}</h1><p>{e(spec['info'].get('description', ''))}</p>",
             "<p>Answers are JSON; errors are <code>{\"error\": \"one line\"}</code> with 401 (API key), 404 (unknown song), "
             "413/414 (too large), 422 (bad value) or 503 (store unavailable). The machine-readable spec is "
             "<a href=/openapi.json>/openapi.json</a>.</p>"]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            parts.append(f"<h2><code>{e(method.upper())} {e(path)}</code></h2><p>{e(op.get('summary', ''))}</p>")
            params = op.get("parameters", [])
            if params:
                rows = "".join(f"<tr><td><code>{e(p['name'])}</code>{' (required)' if p.get('required') else ''}</td>"
                               f"<td>{e(_type_of(p.get('schema', {})))}</td><td>{e(p.get('description', ''))}</td></tr>" for p in params)
                parts.append(f"<table><tr><th>parameter</th><th>type</th><th>meaning</th></tr>{rows}</table>")
    return "".join(parts) + "</html>"
