//! The API's documentation page (`/api/docs`), rendered once on the server
//! from the OpenAPI document: every operation with its parameters, body
//! and responses, every schema with its example, and every kind of
//! problem (the `type` of a problem points here). No script, no CDN: the
//! page uses the UI's own stylesheet.

use std::fmt::Write;

use serde_json::Value;

use super::problem;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The name a `$ref` points to (`#/components/schemas/CaseOut` → `CaseOut`).
fn schema_name(schema: &Value) -> Option<String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().map(str::to_owned);
    }
    if let Some(items) = schema.get("items") {
        return schema_name(items).map(|n| format!("list of {n}"));
    }
    None
}

fn schema_link(schema: &Value) -> String {
    match schema_name(schema) {
        Some(name) => {
            let target = name.trim_start_matches("list of ");
            format!(
                "<a href=\"#schema-{}\">{}</a>",
                escape(target),
                escape(&name)
            )
        }
        None => escape(text(schema, "type")),
    }
}

/// The page for `openapi`.
pub(crate) fn page(openapi: &utoipa::openapi::OpenApi, limits: super::ApiLimits) -> String {
    let doc = serde_json::to_value(openapi).unwrap_or(Value::Null);
    let mut html = String::new();
    let info = &doc["info"];
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} {version}</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\
         <body><main class=\"api-docs\"><h1>{title} <small>{version}</small></h1><p>{description}</p>\
         <p>The machine-readable document: <a href=\"/api/openapi.json\">/api/openapi.json</a> \
         (OpenAPI {openapi}). Every address below starts with <code>/api/v1</code>.</p>\
         <h2 id=\"authentication\">Authentication</h2><p>Send <code>Authorization: Bearer imi_…</code> \
         with a token of one user, created in <em>My profile → API tokens</em> or with \
         <code>imi-node token create</code>. The token acts with that user's rights only.</p>\
         <h2 id=\"conventions\">Conventions</h2><ul>\
         <li>POST takes <code>Idempotency-Key</code>: a retry with the same key and body gets the first \
         response again (<code>Idempotent-Replayed: true</code>) and the request is handled once.</li>\
         <li>A case's <code>ETag</code> is its version; a step sent with <code>If-Match</code> naming an \
         older version is refused with 412.</li>\
         <li>Lists page with <code>limit</code> and the opaque <code>next_cursor</code> of the previous page.</li>\
         <li>Each user may send {per_second} requests a second ({burst} at once) to this node; more get 429 with <code>Retry-After</code>.</li>\
         </ul>",
        title = escape(text(info, "title")),
        version = escape(text(info, "version")),
        description = escape(text(info, "description")),
        openapi = escape(text(&doc, "openapi")),
        per_second = limits.per_second,
        burst = limits.burst,
    );
    html.push_str("<h2 id=\"operations\">Operations</h2>");
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(methods) = item.as_object() else {
                continue;
            };
            for (method, op) in methods {
                let id = format!("{method}-{path}")
                    .replace(['/', '{', '}'], "-")
                    .replace("--", "-");
                let _ = write!(
                    html,
                    "<section class=\"api-operation\" id=\"op{id}\"><h3><code>{m} {path}</code></h3>\
                     <p>{summary}</p>",
                    id = escape(&id),
                    m = escape(&method.to_uppercase()),
                    path = escape(path),
                    summary = escape(text(op, "summary")),
                );
                if let Some(description) = op.get("description").and_then(Value::as_str) {
                    let _ = write!(html, "<p>{}</p>", escape(description));
                }
                if let Some(params) = op["parameters"].as_array() {
                    html.push_str(
                        "<table><thead><tr><th>Parameter</th><th>In</th><th>Required</th>\
                         <th>Description</th></tr></thead><tbody>",
                    );
                    for p in params {
                        let _ = write!(
                            html,
                            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                            escape(text(p, "name")),
                            escape(text(p, "in")),
                            if p["required"].as_bool().unwrap_or(false) {
                                "yes"
                            } else {
                                "no"
                            },
                            escape(text(p, "description")),
                        );
                    }
                    html.push_str("</tbody></table>");
                }
                if let Some(body) = op["requestBody"]["content"].as_object() {
                    for (kind, content) in body {
                        let _ = write!(
                            html,
                            "<p>Body ({}): {}</p>",
                            escape(kind),
                            schema_link(&content["schema"])
                        );
                    }
                }
                html.push_str("<ul>");
                if let Some(responses) = op["responses"].as_object() {
                    for (status, response) in responses {
                        let bodies: Vec<String> = response["content"]
                            .as_object()
                            .map(|c| c.values().map(|v| schema_link(&v["schema"])).collect())
                            .unwrap_or_default();
                        let _ = write!(
                            html,
                            "<li><strong>{}</strong> {} {}</li>",
                            escape(status),
                            escape(text(response, "description")),
                            bodies.join(", ")
                        );
                    }
                }
                html.push_str("</ul></section>");
            }
        }
    }
    html.push_str("<h2 id=\"problems\">Problems</h2><p>Every refusal is <code>application/problem+json</code> \
        (RFC 9457) with <code>type</code>, <code>title</code>, <code>status</code>, <code>detail</code> \
        and, for input, <code>field</code>.</p><dl>");
    for (kind, status, title) in problem::kinds() {
        let _ = write!(
            html,
            "<dt id=\"problem-{kind}\"><code>/api/docs#problem-{kind}</code> ({status})</dt><dd>{title}</dd>",
            kind = escape(kind),
            title = escape(title),
        );
    }
    html.push_str("</dl><h2 id=\"schemas\">Schemas</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let _ = write!(
                html,
                "<section id=\"schema-{name}\"><h3>{name}</h3><p>{}</p><table><thead><tr>\
                 <th>Field</th><th>Type</th><th>Description</th></tr></thead><tbody>",
                escape(text(schema, "description")),
                name = escape(name),
            );
            if let Some(properties) = schema["properties"].as_object() {
                for (field, p) in properties {
                    let kind = match schema_name(p) {
                        Some(_) => schema_link(p),
                        None => escape(&match &p["type"] {
                            Value::Array(types) => types
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(" or "),
                            other => other.as_str().unwrap_or("").to_owned(),
                        }),
                    };
                    let _ = write!(
                        html,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                        escape(field),
                        kind,
                        escape(text(p, "description")),
                    );
                }
            }
            html.push_str("</tbody></table>");
            if let Some(example) = schema.get("example").or_else(|| schema.get("examples")) {
                let _ = write!(
                    html,
                    "<pre>{}</pre>",
                    escape(&serde_json::to_string_pretty(example).unwrap_or_default())
                );
            }
            html.push_str("</section>");
        }
    }
    html.push_str("</main></body></html>");
    html
}
