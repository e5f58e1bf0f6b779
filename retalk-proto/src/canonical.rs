//! Canonical JSON of signed arguments.
//!
//! A signature covers `sha256(canonical(args))`, and the reference computes
//! `canonical` with Python's `json.dumps(args, sort_keys=True,
//! separators=(",", ":"))`. Both sides must agree on every byte, so this
//! module reproduces that function exactly for every JSON value it accepts
//! (see `../shared/vectors/canonical_args.json`):
//!
//! * object keys sorted by code point (UTF-8 byte order is the same order);
//! * no whitespace;
//! * every character outside printable ASCII escaped (`ensure_ascii`), astral
//!   characters as a UTF-16 surrogate pair, lowercase hex;
//! * integers printed exactly (any size, thanks to serde_json's
//!   `arbitrary_precision`), floats in Python's `repr` form (`1e+20`,
//!   `1.5e-07`, `1.0`, `-0.0`).
//!
//! Values Python could produce but JSON cannot carry losslessly (NaN,
//! infinities) are refused rather than printed differently.

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// A number that is not finite once read as a float (e.g. `1e400`).
    #[error("number {0} cannot be canonicalized (not a finite float)")]
    NonFiniteNumber(String),
}

/// Where canonical text goes: a string, or straight into a hash.
trait Sink {
    fn put(&mut self, s: &str);
}

impl Sink for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

/// Feeds canonical text to SHA-256 through a small buffer, so hashing the
/// arguments builds no string (and the hash sees few, large updates).
struct HashSink {
    hash: Sha256,
    buf: [u8; 256],
    len: usize,
}

impl HashSink {
    fn new() -> Self {
        HashSink {
            hash: Sha256::new(),
            buf: [0; 256],
            len: 0,
        }
    }

    fn finish(mut self) -> [u8; 32] {
        self.hash.update(&self.buf[..self.len]);
        self.hash.finalize().into()
    }
}

impl Sink for HashSink {
    fn put(&mut self, s: &str) {
        let bytes = s.as_bytes();
        if self.len + bytes.len() > self.buf.len() {
            self.hash.update(&self.buf[..self.len]);
            self.len = 0;
            if bytes.len() > self.buf.len() {
                self.hash.update(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

/// The canonical JSON text of `value`.
pub fn canonical_json(value: &Value) -> Result<String, CanonicalError> {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value)?;
    Ok(out)
}

/// The canonical JSON text of an argument object.
pub fn canonical_args(args: &Map<String, Value>) -> Result<String, CanonicalError> {
    let mut out = String::with_capacity(128);
    write_object(&mut out, args)?;
    Ok(out)
}

/// Lowercase hex sha256 of the canonical JSON of `args`: the last field of
/// the signed text. The same bytes as hashing [`canonical_args`]'s text,
/// without building it.
pub fn args_sha256(args: &Map<String, Value>) -> Result<String, CanonicalError> {
    let mut sink = HashSink::new();
    write_object(&mut sink, args)?;
    Ok(lower_hex(&sink.finish()))
}

/// Lowercase hex of `bytes`, exactly what `hex::encode` writes, by a table
/// lookup per half-byte into one buffer: `hex::encode` pushes one `char` at
/// a time from an iterator, which was a visible share of a request's parse
/// (it runs twice per `send_message`: the args hash and the body hash).
pub fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
    // Only ASCII digits and letters were written, so this never falls back.
    String::from_utf8(out).unwrap_or_default()
}

/// A value of an object whose canonical hash is taken without a
/// [`Value`] tree (see [`fields_sha256`]).
pub(crate) enum Field<'a> {
    /// A string.
    Str(&'a str),
    /// An integer, as its decimal literal in canonical form (no sign on
    /// zero, no leading zeros, no fraction or exponent).
    Int(&'a str),
}

/// The same as [`args_sha256`] of the object holding `fields`, which must
/// be given in canonical (sorted) key order.
pub(crate) fn fields_sha256(fields: &[(&str, Field<'_>)]) -> String {
    debug_assert!(
        fields.windows(2).all(|w| w[0].0 < w[1].0),
        "keys not sorted"
    );
    let mut sink = HashSink::new();
    let Ok(()) = write_members(&mut sink, fields.iter().map(|(k, f)| (*k, f)), |out, f| {
        match f {
            Field::Str(s) => write_string(out, s),
            Field::Int(literal) => out.put(literal),
        }
        Ok::<(), std::convert::Infallible>(())
    });
    lower_hex(&sink.finish())
}

fn write_value(out: &mut impl Sink, value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.put("null"),
        Value::Bool(true) => out.put("true"),
        Value::Bool(false) => out.put("false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.put("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put(",");
                }
                write_value(out, item)?;
            }
            out.put("]");
        }
        Value::Object(map) => write_object(out, map)?,
    }
    Ok(())
}

fn write_object(out: &mut impl Sink, map: &Map<String, Value>) -> Result<(), CanonicalError> {
    // serde_json's default Map is a BTreeMap<String, _>: iteration is in
    // UTF-8 byte order, which equals code point order (Python's sort).
    write_members(out, map.iter().map(|(k, v)| (k.as_str(), v)), |out, v| {
        write_value(out, v)
    })
}

/// An object's members, given in canonical key order, each value written
/// by `write`.
fn write_members<'k, S: Sink, V, E>(
    out: &mut S,
    members: impl Iterator<Item = (&'k str, V)>,
    mut write: impl FnMut(&mut S, V) -> Result<(), E>,
) -> Result<(), E> {
    out.put("{");
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.put(",");
        }
        write_string(out, k);
        out.put(":");
        write(out, v)?;
    }
    out.put("}");
    Ok(())
}

/// Whether a character is written as itself (printable ASCII but the two
/// that JSON escapes).
fn plain(b: u8) -> bool {
    matches!(b, b' '..=b'~') && b != b'"' && b != b'\\'
}

fn write_string(out: &mut impl Sink, s: &str) {
    out.put("\"");
    let mut rest = s;
    while !rest.is_empty() {
        // The longest run of characters written as themselves, in one go
        // (base64 bodies and hex ids are one run).
        let run = rest.bytes().position(|b| !plain(b)).unwrap_or(rest.len());
        if run > 0 {
            out.put(&rest[..run]);
            rest = &rest[run..];
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        rest = &rest[c.len_utf8()..];
        match c {
            '"' => out.put("\\\""),
            '\\' => out.put("\\\\"),
            '\n' => out.put("\\n"),
            '\r' => out.put("\\r"),
            '\t' => out.put("\\t"),
            '\u{08}' => out.put("\\b"),
            '\u{0c}' => out.put("\\f"),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let mut esc = String::with_capacity(6);
                    let _ = write!(esc, "\\u{:04x}", unit);
                    out.put(&esc);
                }
            }
        }
    }
    out.put("\"");
}

fn write_number(out: &mut impl Sink, n: &Number) -> Result<(), CanonicalError> {
    // With `arbitrary_precision`, `to_string` is the literal as received.
    let text = n.to_string();
    let is_integer = !text.contains(['.', 'e', 'E']);
    if is_integer {
        // Python's int prints "-0" as "0"; JSON forbids leading zeros, so
        // that is the only normalisation an integer literal needs.
        if text == "-0" {
            out.put("0");
        } else {
            out.put(&text);
        }
        return Ok(());
    }
    let f: f64 = text
        .parse()
        .map_err(|_| CanonicalError::NonFiniteNumber(text.clone()))?;
    if !f.is_finite() {
        return Err(CanonicalError::NonFiniteNumber(text));
    }
    let mut repr = String::with_capacity(24);
    write_python_float(&mut repr, f);
    out.put(&repr);
    Ok(())
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional
/// when the decimal exponent is in `-4..16`, scientific otherwise.
fn write_python_float(out: &mut String, f: f64) {
    // Rust's `{:e}` prints the shortest round-tripping digits, e.g. "1.5e-7".
    let sci = format!("{:e}", f);
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        // Positional: place the decimal point `exp + 1` digits in.
        let point = exp + 1;
        if point <= 0 {
            out.push_str("0.");
            for _ in 0..(-point) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let point = point as usize;
            if digits.len() <= point {
                out.push_str(&digits);
                for _ in digits.len()..point {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        canonical_json(&serde_json::from_str(text).unwrap()).unwrap()
    }

    #[test]
    fn floats_follow_python_repr() {
        for (input, want) in [
            ("1.0", "1.0"),
            ("0.1", "0.1"),
            ("1e20", "1e+20"),
            ("1e16", "1e+16"),
            ("1e15", "1000000000000000.0"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("1.5e-7", "1.5e-07"),
            ("-0.0", "-0.0"),
            ("123456789.125", "123456789.125"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
            ("2.5", "2.5"),
        ] {
            assert_eq!(canon(input), want, "input {input}");
        }
    }

    #[test]
    fn integers_are_exact() {
        assert_eq!(
            canon("[0,-0,18446744073709551616]"),
            "[0,0,18446744073709551616]"
        );
    }

    #[test]
    fn non_finite_is_refused() {
        let v: Value = serde_json::from_str("1e400").unwrap();
        assert!(canonical_json(&v).is_err());
    }
}
