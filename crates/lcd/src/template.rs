//! `--format` templates in the subset of Go's text/template syntax docker users type: `{{.Field}}`,
//! `{{.A.B}}`, `{{json .}}`, `{{json .Field}}`, `{{index .Labels "k"}}`, `{{join .Args " "}}`,
//! `{{upper .X}}`/`{{lower .X}}`, `{{len .X}}`, pipes (`{{.Names | upper}}`), `{{range .X}}...{{end}}`,
//! `{{if .X}}...{{else}}...{{end}}`, `{{-`/`-}}` trimming, and docker's `table` prefix (a header row,
//! tab-separated columns aligned as docker's tabwriter does).
//!
//! Templates run over the same JSON objects `--format json` prints, so the field names are one
//! list per command: docker's.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

/// A parsed `--format` value.
#[derive(Debug)]
pub struct Template {
    /// `table ...`: print a header row and align the columns.
    table: bool,
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Vec<Command>),
    Range(Vec<Command>, Vec<Node>),
    If(Vec<Command>, Vec<Node>, Vec<Node>),
}

/// One stage of a pipeline: a function and its arguments, or a single value.
#[derive(Debug, Clone)]
enum Command {
    Value(Arg),
    Call(String, Vec<Arg>),
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` (empty path: `.` itself).
    Field(Vec<String>),
    Str(String),
    Number(f64),
}

/// What `--format` asked for.
#[derive(Debug)]
pub enum Format {
    /// The command's own table (no `--format`, or `--format table`).
    Default,
    /// One JSON object per line (`--format json`).
    Json,
    /// A Go template.
    Template(Template),
}

impl Format {
    /// Parse a `--format` value; `default` is the name of the command's plain output (`table` or
    /// `text`), which also means [`Format::Default`].
    pub fn parse(format: Option<&str>, default: &str) -> Result<Format> {
        match format {
            None | Some("") => Ok(Format::Default),
            Some(f) if f == default || f == "table" => Ok(Format::Default),
            Some("json") => Ok(Format::Json),
            Some(f) if f.contains("{{") || f.starts_with("table ") => Template::parse(f)
                .map(Format::Template)
                .map_err(|e| anyhow!("invalid --format: {e}")),
            Some(other) if default.is_empty() => {
                bail!("unknown format {other:?}: use json or a Go template")
            }
            Some(other) => {
                bail!("unknown format {other:?}: use {default}, json or a Go template")
            }
        }
    }
}

impl Format {
    /// The rows as `--format json` (one object per line) or the template renders them; None for
    /// [`Format::Default`], whose output is the command's own.
    pub fn render(&self, rows: &[Value], headers: &[(&str, &str)]) -> Result<Option<String>> {
        match self {
            Format::Default => Ok(None),
            Format::Json => Ok(Some(
                rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
            )),
            Format::Template(t) => t.render_rows(rows, headers).map(Some),
        }
    }
}

impl Template {
    /// Parse a template; errors name what is wrong, as docker's "template parsing error".
    pub fn parse(text: &str) -> Result<Template> {
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start())
            }
            _ => (false, text),
        };
        // docker's shells hand over `\t` literally; it means a tab (a column) in a table.
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let tokens = lex(&body).map_err(|e| anyhow!("template parsing error: {e}"))?;
        let mut pos = 0;
        let (nodes, end) =
            parse_nodes(&tokens, &mut pos).map_err(|e| anyhow!("template parsing error: {e}"))?;
        if let Some(end) = end {
            bail!("template parsing error: unexpected {{{{{end}}}}}");
        }
        Ok(Template { table, nodes })
    }

    /// Render every row (one line each); with `table`, a header row first (`headers` maps a field
    /// name to its column title, e.g. ID to "CONTAINER ID"; others are upper-cased) and aligned
    /// columns.
    pub fn render_rows(&self, rows: &[Value], headers: &[(&str, &str)]) -> Result<String> {
        let mut lines = Vec::new();
        if self.table {
            lines.push(self.header(headers));
        }
        for row in rows {
            let mut out = String::new();
            render(&self.nodes, row, row, &mut out)?;
            lines.push(out);
        }
        let mut text = if self.table {
            align(&lines)
        } else {
            lines.join("\n")
        };
        if !lines.is_empty() {
            text.push('\n');
        }
        Ok(text)
    }

    fn header(&self, headers: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(pipeline) => {
                    let field = pipeline.iter().find_map(|c| match c {
                        Command::Value(Arg::Field(path)) => path.last().cloned(),
                        Command::Call(_, args) => args.iter().find_map(|a| match a {
                            Arg::Field(path) => path.last().cloned(),
                            _ => None,
                        }),
                        _ => None,
                    });
                    let field = field.unwrap_or_default();
                    let title = headers
                        .iter()
                        .find(|(name, _)| *name == field)
                        .map(|(_, title)| title.to_string())
                        .unwrap_or_else(|| field.to_uppercase());
                    out.push_str(&title);
                }
                Node::Range(..) | Node::If(..) => {}
            }
        }
        out
    }
}

/// docker's table alignment (Go's tabwriter: minimum width 10, padding 3): every tab-terminated
/// cell is padded to its column's width; what follows the last tab is left as it is.
fn align(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &rows {
        for (i, cell) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            let w = cell.chars().count();
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(w);
        }
    }
    let mut out = Vec::new();
    for cells in &rows {
        let mut line = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            line.push_str(cell);
            if i < last {
                let width = (widths[i] + 3).max(10);
                let pad = width.saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push(line.trim_end().to_string());
    }
    out.join("\n")
}

#[derive(Debug, PartialEq)]
enum Token {
    Text(String),
    Action(String),
}

/// Split into text and `{{ }}` actions, applying `{{-` and `-}}` trimming.
fn lex(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = text;
    let mut trim_next = false;
    while !rest.is_empty() {
        match rest.find("{{") {
            Some(start) => {
                let mut before = rest[..start].to_string();
                let after = &rest[start + 2..];
                let end = after.find("}}").ok_or("unclosed action")?;
                let mut inner = &after[..end];
                if let Some(trimmed) = inner.strip_prefix('-') {
                    before = before.trim_end().to_string();
                    inner = trimmed;
                }
                if trim_next {
                    before = before.trim_start().to_string();
                }
                trim_next = false;
                if let Some(trimmed) = inner.strip_suffix('-') {
                    trim_next = true;
                    inner = trimmed;
                }
                if !before.is_empty() {
                    tokens.push(Token::Text(before));
                }
                tokens.push(Token::Action(inner.trim().to_string()));
                rest = &after[end + 2..];
            }
            None => {
                let text = if trim_next { rest.trim_start() } else { rest };
                if !text.is_empty() {
                    tokens.push(Token::Text(text.to_string()));
                }
                break;
            }
        }
    }
    Ok(tokens)
}

/// Nodes up to an `{{else}}` or `{{end}}` (returned as the second value) or the end.
fn parse_nodes(tokens: &[Token], pos: &mut usize) -> Result<(Vec<Node>, Option<String>), String> {
    let mut nodes = Vec::new();
    while *pos < tokens.len() {
        let token = &tokens[*pos];
        *pos += 1;
        match token {
            Token::Text(t) => nodes.push(Node::Text(t.clone())),
            Token::Action(a) if a == "end" || a == "else" => return Ok((nodes, Some(a.clone()))),
            Token::Action(a) => {
                let (keyword, rest) = a.split_once(char::is_whitespace).unwrap_or((a, ""));
                match keyword {
                    "range" | "if" => {
                        let pipeline = parse_pipeline(rest)?;
                        let (body, end) = parse_nodes(tokens, pos)?;
                        let (alternative, end) = if end.as_deref() == Some("else") {
                            parse_nodes(tokens, pos)?
                        } else {
                            (Vec::new(), end)
                        };
                        if end.as_deref() != Some("end") {
                            return Err(format!("unexpected EOF: {keyword} without end"));
                        }
                        nodes.push(if keyword == "range" {
                            Node::Range(pipeline, body)
                        } else {
                            Node::If(pipeline, body, alternative)
                        });
                    }
                    _ if a.starts_with("/*") => {}
                    _ => nodes.push(Node::Action(parse_pipeline(a)?)),
                }
            }
        }
    }
    Ok((nodes, None))
}

fn parse_pipeline(text: &str) -> Result<Vec<Command>, String> {
    let words = split_words(text)?;
    if words.is_empty() {
        return Err("missing value for command".into());
    }
    let mut commands = Vec::new();
    for stage in words.split(|w| w == "|") {
        let (first, args) = stage.split_first().ok_or("missing command after |")?;
        let args = args
            .iter()
            .map(|w| parse_arg(w))
            .collect::<Result<_, _>>()?;
        if first.starts_with('.') || first.starts_with('"') || first.parse::<f64>().is_ok() {
            if !stage[1..].is_empty() {
                return Err(format!("{first} is not a function"));
            }
            commands.push(Command::Value(parse_arg(first)?));
        } else {
            if !FUNCTIONS.contains(&first.as_str()) {
                return Err(format!("function {first:?} not defined"));
            }
            commands.push(Command::Call(first.clone(), args));
        }
    }
    Ok(commands)
}

const FUNCTIONS: &[&str] = &[
    "json", "index", "join", "upper", "lower", "title", "len", "split", "println",
];

fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut word = String::from("\"");
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => word.push('\n'),
                        Some('t') => word.push('\t'),
                        Some(other) => word.push(other),
                        None => return Err("unterminated quoted string".into()),
                    },
                    Some('"') => break,
                    Some(other) => word.push(other),
                    None => return Err("unterminated quoted string".into()),
                }
            }
            words.push(word);
        } else if c == '|' {
            chars.next();
            words.push("|".into());
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '|' {
                    break;
                }
                word.push(c);
                chars.next();
            }
            words.push(word);
        }
    }
    Ok(words)
}

fn parse_arg(word: &str) -> Result<Arg, String> {
    if let Some(s) = word.strip_prefix('"') {
        return Ok(Arg::Str(s.to_string()));
    }
    if word == "." {
        return Ok(Arg::Field(Vec::new()));
    }
    if let Some(path) = word.strip_prefix('.') {
        let parts: Vec<String> = path.split('.').map(str::to_string).collect();
        if parts.iter().any(String::is_empty) {
            return Err(format!("bad field {word:?}"));
        }
        return Ok(Arg::Field(parts));
    }
    word.parse::<f64>()
        .map(Arg::Number)
        .map_err(|_| format!("unexpected {word:?} (a field starts with a dot)"))
}

fn render(nodes: &[Node], dot: &Value, root: &Value, out: &mut String) -> Result<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(pipeline) => {
                let value = run_pipeline(pipeline, dot, root)?;
                out.push_str(&to_text(&value));
            }
            Node::If(pipeline, then, otherwise) => {
                let value = run_pipeline(pipeline, dot, root)?;
                render(
                    if truthy(&value) { then } else { otherwise },
                    dot,
                    root,
                    out,
                )?;
            }
            Node::Range(pipeline, body) => match run_pipeline(pipeline, dot, root)? {
                Value::Array(items) => {
                    for item in &items {
                        render(body, item, root, out)?;
                    }
                }
                Value::Object(map) => {
                    for item in map.values() {
                        render(body, item, root, out)?;
                    }
                }
                Value::Null => {}
                other => bail!("template: range can't iterate over {}", to_text(&other)),
            },
        }
    }
    Ok(())
}

fn run_pipeline(pipeline: &[Command], dot: &Value, root: &Value) -> Result<Value> {
    let mut previous: Option<Value> = None;
    for command in pipeline {
        let value = match command {
            Command::Value(arg) => eval_arg(arg, dot, root)?,
            Command::Call(name, args) => {
                let mut values = args
                    .iter()
                    .map(|a| eval_arg(a, dot, root))
                    .collect::<Result<Vec<_>>>()?;
                values.extend(previous.take());
                call(name, &values)?
            }
        };
        previous = Some(value);
    }
    Ok(previous.unwrap_or(Value::Null))
}

fn eval_arg(arg: &Arg, dot: &Value, root: &Value) -> Result<Value> {
    match arg {
        Arg::Str(s) => Ok(Value::String(s.clone())),
        Arg::Number(n) => Ok(serde_json::Number::from_f64(*n)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        Arg::Field(path) => {
            let mut value = dot;
            for (depth, name) in path.iter().enumerate() {
                value = match value {
                    Value::Object(map) => match map.get(name) {
                        Some(v) => v,
                        // A command's own fields are a fixed list: a typo is an error, as in
                        // docker; deeper down (labels, options) a missing key has no value.
                        None if depth == 0 && std::ptr::eq(dot, root) => {
                            bail!("template: can't evaluate field {name}")
                        }
                        None => return Ok(Value::Null),
                    },
                    Value::Null => return Ok(Value::Null),
                    _ => bail!(
                        "template: can't evaluate field {name} in {}",
                        to_text(value)
                    ),
                };
            }
            Ok(value.clone())
        }
    }
}

fn call(name: &str, args: &[Value]) -> Result<Value> {
    let arity = |n: usize| -> Result<()> {
        if args.len() == n {
            Ok(())
        } else {
            bail!(
                "template: wrong number of args for {name}: want {n} got {}",
                args.len()
            )
        }
    };
    Ok(match name {
        "json" => {
            arity(1)?;
            Value::String(serde_json::to_string(&args[0])?)
        }
        "index" => {
            arity(2)?;
            match (&args[0], &args[1]) {
                (Value::Object(map), Value::String(key)) => {
                    map.get(key).cloned().unwrap_or(Value::Null)
                }
                (Value::Array(items), Value::Number(n)) => n
                    .as_f64()
                    .and_then(|i| items.get(i as usize).cloned())
                    .unwrap_or(Value::Null),
                // ps' Labels are docker's "k=v,k2=v2" string.
                (Value::String(pairs), Value::String(key)) => pairs
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(key.as_str())?.strip_prefix('='))
                    .map(|v| Value::String(v.to_string()))
                    .unwrap_or(Value::Null),
                (Value::Null, _) => Value::Null,
                (what, _) => bail!("template: can't index {}", to_text(what)),
            }
        }
        "join" => {
            arity(2)?;
            let sep = to_text(&args[1]);
            match &args[0] {
                Value::Array(items) => {
                    Value::String(items.iter().map(to_text).collect::<Vec<_>>().join(&sep))
                }
                other => Value::String(to_text(other)),
            }
        }
        "split" => {
            arity(2)?;
            let text = to_text(&args[0]);
            let sep = to_text(&args[1]);
            Value::Array(
                text.split(sep.as_str())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            )
        }
        "upper" | "lower" | "title" => {
            arity(1)?;
            let text = to_text(&args[0]);
            Value::String(match name {
                "upper" => text.to_uppercase(),
                "lower" => text.to_lowercase(),
                _ => {
                    let mut chars = text.chars();
                    chars
                        .next()
                        .map(|c| c.to_uppercase().chain(chars).collect())
                        .unwrap_or_default()
                }
            })
        }
        "len" => {
            arity(1)?;
            let n = match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.len(),
                other => bail!("template: len of {}", to_text(other)),
            };
            Value::from(n)
        }
        "println" => Value::String(format!(
            "{}\n",
            args.iter().map(to_text).collect::<Vec<_>>().join(" ")
        )),
        other => bail!("template: function {other:?} not defined"),
    })
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// How Go's templates print a value: strings bare, maps as `map[k:v]` in key order, lists as
/// `[a b]`, a missing value as `<no value>`.
fn to_text(value: &Value) -> String {
    match value {
        Value::Null => "<no value>".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(to_text).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let pairs: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", to_text(&map[k.as_str()])))
                .collect();
            format!("map[{}]", pairs.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn one(template: &str, row: Value) -> String {
        Template::parse(template)
            .unwrap()
            .render_rows(&[row], &[])
            .unwrap()
    }

    #[test]
    fn fields_nested_fields_and_functions() {
        let row = json!({"ID": "abc", "State": {"Status": "running", "Pid": 42},
            "Labels": {"b": "2", "a": "1"}, "Args": ["-c", "true"]});
        assert_eq!(one("{{.ID}}", row.clone()), "abc\n");
        assert_eq!(
            one("{{.State.Status}} {{.State.Pid}}", row.clone()),
            "running 42\n"
        );
        assert_eq!(
            one("{{json .State}}", row.clone()),
            "{\"Pid\":42,\"Status\":\"running\"}\n"
        );
        assert_eq!(one("{{.Labels}}", row.clone()), "map[a:1 b:2]\n");
        assert_eq!(one("{{index .Labels \"b\"}}", row.clone()), "2\n");
        assert_eq!(one("{{join .Args \",\"}}", row.clone()), "-c,true\n");
        assert_eq!(one("{{.ID | upper}}", row.clone()), "ABC\n");
        assert_eq!(
            one("{{range .Args}}[{{.}}]{{end}}", row.clone()),
            "[-c][true]\n"
        );
        assert_eq!(
            one("{{if .State.Pid}}up{{else}}down{{end}}", row.clone()),
            "up\n"
        );
        assert_eq!(one("{{index .Labels \"zz\"}}", row.clone()), "<no value>\n");
        assert_eq!(one("{{- .ID -}}  ", row), "abc\n");
    }

    #[test]
    fn ps_labels_string_is_indexable() {
        assert_eq!(
            one("{{index .Labels \"k\"}}", json!({"Labels": "a=1,k=v"})),
            "v\n"
        );
    }

    #[test]
    fn tables_have_headers_and_aligned_columns() {
        let t = Template::parse("table {{.ID}}\\t{{.Names}}").unwrap();
        let rows = [
            json!({"ID": "a", "Names": "x"}),
            json!({"ID": "bbbbbbbbbbbbb", "Names": "y"}),
        ];
        let out = t.render_rows(&rows, &[("ID", "CONTAINER ID")]).unwrap();
        assert_eq!(
            out,
            "CONTAINER ID    NAMES\na               x\nbbbbbbbbbbbbb   y\n"
        );
    }

    #[test]
    fn mistakes_are_errors() {
        assert!(Template::parse("{{.ID").is_err());
        assert!(Template::parse("{{nosuch .ID}}").is_err());
        assert!(Template::parse("{{range .X}}").is_err());
        assert!(Template::parse("{{end}}").is_err());
        let t = Template::parse("{{.Nope}}").unwrap();
        let err = t.render_rows(&[json!({"ID": 1})], &[]).unwrap_err();
        assert!(
            err.to_string().contains("can't evaluate field Nope"),
            "{err}"
        );
        assert!(matches!(
            Format::parse(Some("yaml"), "table"),
            Err(e) if e.to_string().contains("yaml")
        ));
        assert!(matches!(
            Format::parse(Some("json"), "table"),
            Ok(Format::Json)
        ));
        assert!(matches!(Format::parse(None, "table"), Ok(Format::Default)));
    }
}
