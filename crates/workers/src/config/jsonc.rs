//! JSONC (JSON with comments and trailing commas, as `wrangler.jsonc` and `tsconfig.json` are
//! written) turned into plain JSON.
//!
//! Comments and trailing commas are replaced by spaces of the same length, never removed, so
//! that the line and column of a JSON parse error point at the user's own text.

/// Parses JSONC text into a JSON value; the error gives the line and column.
pub(crate) fn parse(text: &str) -> Result<serde_json::Value, String> {
    let plain = to_json(text);
    serde_json::from_str(&plain).map_err(|e| e.to_string())
}

/// `text` with comments and trailing commas blanked out.
pub(crate) fn to_json(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    // The last comma seen outside strings and comments, while only whitespace or comments
    // followed it: blanked if a closing bracket comes next.
    let mut pending_comma: Option<usize> = None;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                pending_comma = None;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let start = i;
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                let end = (i + 2).min(bytes.len());
                for byte in &mut out[start..end] {
                    // Newlines stay, so that later lines keep their numbers.
                    if *byte != b'\n' {
                        *byte = b' ';
                    }
                }
                i = end;
            }
            b',' => {
                pending_comma = Some(i);
                i += 1;
            }
            b'}' | b']' => {
                if let Some(comma) = pending_comma.take() {
                    out[comma] = b' ';
                }
                i += 1;
            }
            byte if byte.is_ascii_whitespace() => i += 1,
            _ => {
                pending_comma = None;
                i += 1;
            }
        }
    }
    // Only ASCII bytes were replaced by ASCII spaces: the text is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_trailing_commas_are_accepted() {
        let value = parse(
            r#"{
              // a comment
              "name": "x", /* another */
              "list": [1, 2,],
              "url": "http://not-a-comment//here",
              "nested": { "a": "b", },
            }"#,
        )
        .unwrap();
        assert_eq!(value["name"], "x");
        assert_eq!(value["list"], serde_json::json!([1, 2]));
        assert_eq!(value["url"], "http://not-a-comment//here");
        assert_eq!(value["nested"]["a"], "b");
    }

    #[test]
    fn errors_keep_their_line_and_column() {
        let error = parse("{\n  // comment\n  \"a\": 1\n  \"b\": 2\n}").unwrap_err();
        assert!(error.contains("line 4"), "{error}");
    }

    #[test]
    fn escaped_quotes_stay_inside_strings() {
        let value = parse(r#"{"a": "say \"hi\" // not a comment",}"#).unwrap();
        assert_eq!(value["a"], r#"say "hi" // not a comment"#);
    }
}
