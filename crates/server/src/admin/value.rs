//! Stored bytes made readable for the inspector: attachments and KV values are JSON (the Rust
//! SDK) or V8's structured-clone format (Workers mode); anything else shows as text or hex.
//! The inspector page puts the result in the document as text, never as markup.

use std::fmt::Write as _;

use serde::Serialize;

/// Nesting depth past which a value is cut short rather than walked further.
const MAX_DEPTH: usize = 64;

/// Bytes shown in hex at most.
const MAX_HEX_BYTES: usize = 4096;

/// What a value is, and how it reads.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Shown {
    /// `json`, `structured-clone`, `text` or `binary`.
    pub(crate) format: &'static str,
    /// The value, pretty-printed.
    pub(crate) text: String,
    /// Its size in bytes, as stored.
    pub(crate) bytes: usize,
}

/// Renders stored bytes.
pub(crate) fn show(bytes: &[u8]) -> Shown {
    let (format, text) = if let Some(text) = structured_clone(bytes) {
        ("structured-clone", text)
    } else if let Ok(json) = serde_json::from_slice::<serde_json::Value>(bytes) {
        (
            "json",
            serde_json::to_string_pretty(&json).unwrap_or_default(),
        )
    } else if let Ok(text) = std::str::from_utf8(bytes) {
        ("text", text.to_owned())
    } else {
        ("binary", hex(bytes))
    };
    Shown {
        format,
        text,
        bytes: bytes.len(),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().min(MAX_HEX_BYTES) * 3);
    for (i, byte) in bytes.iter().take(MAX_HEX_BYTES).enumerate() {
        let gap = if i == 0 {
            ""
        } else if i % 16 == 0 {
            "\n"
        } else {
            " "
        };
        let _ = write!(out, "{gap}{byte:02x}");
    }
    if bytes.len() > MAX_HEX_BYTES {
        let _ = write!(out, "\n… {} more bytes", bytes.len() - MAX_HEX_BYTES);
    }
    out
}

/// V8's serialization format (what workerd and Dormouse's Workers mode store), as readable
/// text; `None` if `bytes` are not in it.
fn structured_clone(bytes: &[u8]) -> Option<String> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.byte()? != 0xFF {
        return None;
    }
    let version = reader.varint()?;
    if !(13..=15).contains(&version) {
        return None;
    }
    let mut out = String::new();
    reader.value(&mut out, 0)?;
    (reader.at == bytes.len()).then_some(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn take(&mut self, len: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(len)?;
        let taken = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(taken)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn double(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// The next tag, skipping padding and the count checks V8 may write.
    fn tag(&mut self) -> Option<u8> {
        loop {
            match self.byte()? {
                0 => continue,
                b'?' => {
                    self.varint()?;
                }
                tag => return Some(tag),
            }
        }
    }

    fn string_of(&mut self, tag: u8) -> Option<String> {
        match tag {
            b'S' => {
                let len = self.varint()? as usize;
                Some(String::from_utf8_lossy(self.take(len)?).into_owned())
            }
            b'"' => {
                let len = self.varint()? as usize;
                Some(self.take(len)?.iter().map(|&b| char::from(b)).collect())
            }
            b'c' => {
                let len = self.varint()? as usize;
                let units: Vec<u16> = self
                    .take(len)?
                    .chunks_exact(2)
                    .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                    .collect();
                Some(String::from_utf16_lossy(&units))
            }
            _ => None,
        }
    }

    /// One value, appended to `out` as text indented for `depth`.
    fn value(&mut self, out: &mut String, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let tag = self.tag()?;
        match tag {
            b'_' => out.push_str("undefined"),
            b'0' => out.push_str("null"),
            b'T' | b'y' => out.push_str("true"),
            b'F' | b'x' => out.push_str("false"),
            b'I' => {
                let raw = self.varint()?;
                let value = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
                let _ = write!(out, "{value}");
            }
            b'U' => {
                let _ = write!(out, "{}", self.varint()?);
            }
            b'N' | b'n' => {
                let _ = write!(out, "{}", self.double()?);
            }
            b'Z' | b'z' => {
                let bitfield = self.varint()?;
                let digits = self.take((bitfield >> 1) as usize)?;
                let sign = if bitfield & 1 == 1 { "-" } else { "" };
                let _ = write!(out, "{sign}0x");
                for byte in digits.iter().rev() {
                    let _ = write!(out, "{byte:02x}");
                }
                out.push('n');
            }
            b'S' | b'"' | b'c' => {
                let text = self.string_of(tag)?;
                out.push_str(&serde_json::to_string(&text).ok()?);
            }
            b's' => {
                let tag = self.tag()?;
                let text = self.string_of(tag)?;
                out.push_str(&serde_json::to_string(&text).ok()?);
            }
            b'D' => {
                let ms = self.double()?;
                let _ = write!(out, "Date({ms})");
            }
            b'R' => {
                let tag = self.tag()?;
                let pattern = self.string_of(tag)?;
                let flags = self.varint()?;
                let _ = write!(out, "/{pattern}/ (flags {flags})");
            }
            b'^' => {
                let _ = write!(out, "[reference #{}]", self.varint()?);
            }
            b'o' => {
                out.push('{');
                let count = self.entries(out, depth, b'{', ": ")?;
                self.varint()?;
                close(out, depth, count, '}');
            }
            b'A' => {
                let len = self.varint()?;
                out.push('[');
                let mut count = 0;
                for _ in 0..len {
                    newline(out, depth + 1, count);
                    if self.peek()? == b'-' {
                        self.at += 1;
                        out.push_str("<empty>");
                    } else {
                        self.value(out, depth + 1)?;
                    }
                    count += 1;
                }
                count += self.entries(out, depth, b'$', ": ")?;
                self.varint()?;
                self.varint()?;
                close(out, depth, count, ']');
            }
            b'a' => {
                self.varint()?;
                out.push('[');
                let count = self.entries(out, depth, b'@', ": ")?;
                self.varint()?;
                self.varint()?;
                close(out, depth, count, ']');
            }
            b';' => {
                out.push_str("Map {");
                let count = self.entries(out, depth, b':', " => ")?;
                self.varint()?;
                close(out, depth, count, '}');
            }
            b'\'' => {
                out.push_str("Set {");
                let mut count = 0;
                while self.peek_tag()? != b',' {
                    newline(out, depth + 1, count);
                    self.value(out, depth + 1)?;
                    count += 1;
                }
                self.tag()?;
                self.varint()?;
                close(out, depth, count, '}');
            }
            b'B' => {
                let len = self.varint()? as usize;
                let data = self.take(len)?.to_vec();
                if self.peek() == Some(b'V') {
                    self.at += 1;
                    self.byte()?;
                    let offset = self.varint()? as usize;
                    let length = self.varint()? as usize;
                    if self.peek().is_some_and(|b| b < 0x20) {
                        self.varint()?;
                    }
                    let view = data.get(offset..offset.checked_add(length)?)?;
                    let _ = write!(out, "bytes({length}) [{}]", hex(view));
                } else {
                    let _ = write!(out, "ArrayBuffer({len}) [{}]", hex(&data));
                }
            }
            b'r' => {
                let mut message = String::new();
                loop {
                    match self.byte()? {
                        b'.' => break,
                        b'm' | b's' => {
                            let tag = self.tag()?;
                            let text = self.string_of(tag)?;
                            if message.is_empty() {
                                message = text;
                            }
                        }
                        b'c' => {
                            self.value(&mut String::new(), depth + 1)?;
                        }
                        _ => {}
                    }
                }
                out.push_str(&format!("Error({})", serde_json::to_string(&message).ok()?));
            }
            _ => return None,
        }
        Some(())
    }

    fn peek_tag(&mut self) -> Option<u8> {
        let start = self.at;
        let tag = self.tag();
        self.at = start;
        tag
    }

    /// Key/value pairs until `end` (consumed); returns how many.
    fn entries(&mut self, out: &mut String, depth: usize, end: u8, between: &str) -> Option<usize> {
        let mut count = 0;
        loop {
            if self.peek_tag()? == end {
                self.tag()?;
                return Some(count);
            }
            newline(out, depth + 1, count);
            self.value(out, depth + 1)?;
            out.push_str(between);
            self.value(out, depth + 1)?;
            count += 1;
        }
    }
}

fn newline(out: &mut String, depth: usize, index: usize) {
    if index > 0 {
        out.push(',');
    }
    out.push('\n');
    out.push_str(&"  ".repeat(depth));
}

fn close(out: &mut String, depth: usize, count: usize, bracket: char) {
    if count > 0 {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    }
    out.push(bracket);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_pretty_printed_and_markup_stays_text() {
        let shown = show(br#"{"name":"<script>alert(1)</script>","n":1}"#);
        assert_eq!(shown.format, "json");
        assert!(
            shown
                .text
                .contains("\"name\": \"<script>alert(1)</script>\"")
        );
        assert_eq!(show(b"plain words").format, "text");
        let binary = show(&[0x00, 0xff, 0x10]);
        assert_eq!(
            (binary.format, binary.text.as_str()),
            ("binary", "00 ff 10")
        );
    }

    #[test]
    fn v8_structured_clone_reads_like_the_value() {
        // V8 15: { name: "ada", tags: ["a", 2], when: Date(0), big: 5n, m: Map { 1 => true } }
        let bytes = [
            0xFF, 0x0F, b'o', b'"', 4, b'n', b'a', b'm', b'e', b'"', 3, b'a', b'd', b'a', b'"', 4,
            b't', b'a', b'g', b's', b'A', 2, b'"', 1, b'a', b'I', 4, b'$', 0, 2, b'"', 4, b'w',
            b'h', b'e', b'n', b'D', 0, 0, 0, 0, 0, 0, 0, 0, b'"', 3, b'b', b'i', b'g', b'Z', 2, 5,
            b'"', 1, b'm', b';', b'I', 2, b'T', b':', 2, b'{', 5,
        ];
        let shown = show(&bytes);
        assert_eq!(shown.format, "structured-clone", "{}", shown.text);
        assert_eq!(
            shown.text,
            "{\n  \"name\": \"ada\",\n  \"tags\": [\n    \"a\",\n    2\n  ],\n  \"when\": Date(0),\n  \"big\": 0x05n,\n  \"m\": Map {\n    1 => true\n  }\n}"
        );
    }

    #[test]
    fn truncated_structured_clone_falls_back_to_hex() {
        let shown = show(&[0xFF, 0x0F, b'o', b'"', 9, b'x']);
        assert_eq!(shown.format, "binary");
    }
}
