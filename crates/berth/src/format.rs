//! `--format` as Docker reads it: `table` (the default table), `table
//! TEMPLATE` (a table with the template's columns and their headers),
//! `json` (one JSON object per line), or a Go template rendered per row.

use gotmpl::{Template, Value};

/// How rows are printed.
pub enum Format {
    /// The command's default table.
    Table,
    /// A table with these columns.
    TableTemplate(Template),
    /// One JSON object per line.
    Json,
    /// A template per row.
    Template(Template),
}

/// Docker's extra template functions that berth supports.
fn template(source: &str) -> Result<Template, String> {
    Template::new("format")
        .func("json", |args| {
            let json = args.first().map(to_json).unwrap_or(serde_json::Value::Null);
            Ok(Value::String(json.to_string().into()))
        })
        .func("upper", |args| {
            Ok(Value::String(text(args).to_uppercase().into()))
        })
        .func("lower", |args| {
            Ok(Value::String(text(args).to_lowercase().into()))
        })
        .func("join", |args| {
            let sep = args.get(1).map(|v| v.to_string()).unwrap_or_default();
            let items = match args.first() {
                Some(Value::List(items)) => items.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                Some(other) => vec![other.to_string()],
                None => Vec::new(),
            };
            Ok(Value::String(items.join(&sep).into()))
        })
        .parse(source)
        .map_err(|e| format!("template parsing error: {e}"))
}

fn text(args: &[Value]) -> String {
    args.first().map(|v| v.to_string()).unwrap_or_default()
}

fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => (*u).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::String(s) => serde_json::Value::String(s.to_string()),
        Value::List(items) => items.iter().map(to_json).collect(),
        Value::Map(map) => map
            .iter()
            .map(|(k, v)| (k.to_string(), to_json(v)))
            .collect(),
    }
}

impl Format {
    /// Parses a `--format` value (`None`: the default table).
    pub fn parse(format: Option<&str>) -> Result<Format, String> {
        let Some(format) = format.map(str::trim) else {
            return Ok(Format::Table);
        };
        Ok(match format {
            "" | "table" => Format::Table,
            "json" => Format::Json,
            f => match f.strip_prefix("table") {
                Some(rest) if rest.starts_with(char::is_whitespace) => {
                    Format::TableTemplate(template(&unescape(rest.trim_start()))?)
                }
                _ => Format::Template(template(&unescape(f))?),
            },
        })
    }

    /// Prints `rows` (each a JSON object whose keys are the template's
    /// field names), with `headers` naming each field's column title for
    /// `table TEMPLATE`.
    pub fn print(
        &self,
        rows: &[serde_json::Value],
        default_table: impl FnOnce() -> String,
        headers: &[(&str, &str)],
    ) -> Result<String, String> {
        match self {
            Format::Table => Ok(default_table()),
            Format::Json => Ok(rows.iter().map(|r| format!("{r}\n")).collect()),
            Format::Template(t) => {
                let mut out = String::new();
                for row in rows {
                    out.push_str(&execute(t, row)?);
                    out.push('\n');
                }
                Ok(out)
            }
            Format::TableTemplate(t) => {
                // The header is the template rendered over the titles.
                let titles: serde_json::Map<String, serde_json::Value> = headers
                    .iter()
                    .map(|(field, title)| {
                        (
                            (*field).to_owned(),
                            serde_json::Value::String((*title).to_owned()),
                        )
                    })
                    .collect();
                let mut lines = vec![execute(t, &serde_json::Value::Object(titles))?];
                for row in rows {
                    lines.push(execute(t, row)?);
                }
                let cells: Vec<Vec<String>> = lines
                    .iter()
                    .map(|l| l.split('\t').map(str::to_owned).collect())
                    .collect();
                Ok(crate::table::render(&cells, 10, 3))
            }
        }
    }
}

/// Prints `rows` in `format` with a default table of `columns`, each a
/// (field, title) pair; fields that are not strings print as JSON.
pub fn print_columns(
    format: &Format,
    rows: &[serde_json::Value],
    columns: &[(&str, &str)],
) -> Result<String, String> {
    format.print(
        rows,
        || {
            let mut cells = vec![columns.iter().map(|(_, t)| (*t).to_owned()).collect()];
            for r in rows {
                cells.push(
                    columns
                        .iter()
                        .map(|(c, _)| match &r[*c] {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect(),
                );
            }
            crate::table::render(&cells, 10, 3)
        },
        columns,
    )
}

fn execute(template: &Template, row: &serde_json::Value) -> Result<String, String> {
    let data = gotmpl::to_value(row).map_err(|e| format!("template data: {e}"))?;
    template
        .execute_to_string(&data)
        .map_err(|e| format!("template: {e}"))
}

/// Docker lets `\t` and `\n` be typed literally in a format.
fn unescape(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_render_rows() {
        let rows = vec![serde_json::json!({"ID": "abc", "Tag": "v1"})];
        let table = || "TABLE\n".to_owned();
        let f = Format::parse(Some("{{.ID}}:{{.Tag}}")).unwrap();
        assert_eq!(f.print(&rows, table, &[]).unwrap(), "abc:v1\n");
        let f = Format::parse(Some("table {{.ID}}\\t{{.Tag}}")).unwrap();
        assert_eq!(
            f.print(&rows, table, &[("ID", "IMAGE ID"), ("Tag", "TAG")])
                .unwrap(),
            "IMAGE ID   TAG\nabc        v1\n"
        );
        let f = Format::parse(Some("{{json .}}")).unwrap();
        assert_eq!(
            f.print(&rows, table, &[]).unwrap(),
            "{\"ID\":\"abc\",\"Tag\":\"v1\"}\n"
        );
        assert_eq!(
            Format::parse(Some("json"))
                .unwrap()
                .print(&rows, table, &[])
                .unwrap(),
            "{\"ID\":\"abc\",\"Tag\":\"v1\"}\n"
        );
        assert_eq!(
            Format::parse(None)
                .unwrap()
                .print(&rows, table, &[])
                .unwrap(),
            "TABLE\n"
        );
        assert!(Format::parse(Some("{{.ID")).is_err());
    }
}
