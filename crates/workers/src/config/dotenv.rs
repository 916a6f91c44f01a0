//! `.dev.vars`: local secrets in dotenv format (`NAME=value`, quotes, `#` comments).

/// Parses dotenv text into `(name, value)` pairs, in order.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!(
                "line {}: expected NAME=value, found {line:?}",
                number + 1
            ));
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("line {}: {name:?} is not a valid name", number + 1));
        }
        vars.push((name.to_owned(), unquote(value.trim())));
    }
    Ok(vars)
}

fn unquote(value: &str) -> String {
    let quoted = |q: char| value.len() >= 2 && value.starts_with(q) && value.ends_with(q);
    if quoted('"') {
        value[1..value.len() - 1]
            .replace("\\n", "\n")
            .replace("\\\"", "\"")
    } else if quoted('\'') {
        value[1..value.len() - 1].to_owned()
    } else {
        // An unquoted value ends at a comment.
        value
            .split_once(" #")
            .map_or(value, |(v, _)| v)
            .trim_end()
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_values_quotes_and_comments() {
        let vars = parse(
            "# secrets\nAPI_KEY=abc123\nexport GREETING=\"hello\\nworld\"\nRAW='a \"b\"'\nTRAILING=x # note\n",
        )
        .unwrap();
        assert_eq!(
            vars,
            [
                ("API_KEY".into(), "abc123".into()),
                ("GREETING".into(), "hello\nworld".into()),
                ("RAW".into(), "a \"b\"".into()),
                ("TRAILING".into(), "x".into()),
            ]
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse("JUST_A_NAME\n").unwrap_err().contains("line 1"));
        assert!(parse("BAD-NAME=1\n").is_err());
    }
}
