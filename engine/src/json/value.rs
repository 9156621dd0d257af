//! Lazy, borrowed navigation over a document the validator accepted: no tree is built;
//! members and elements are found by scanning, so an allowed request is never copied or
//! re-serialised.

use super::number::Number;
use super::string::JsonStr;
use super::validate::skip_ws;

/// The type of a JSON value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` or `false`
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl Kind {
    /// The JSON name of the type, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// Where the validator saw a value end: the offset of its first byte and the offset after
/// it, in the document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) open: u32,
    pub(crate) end: u32,
}

/// The validator's record of where containers and long strings end, so navigation steps
/// over them without scanning them again (a tool call's arguments would otherwise be
/// scanned once to validate, then again for every member read around them).
#[derive(Clone, Copy, Default)]
pub(crate) struct Skips<'a> {
    /// The validated document the offsets are in.
    doc: &'a str,
    /// Ascending by `open`; a prefix of the document's values (the record is bounded).
    spans: &'a [Span],
    /// Every span before this index opens before the values still to be looked up, so a
    /// walk searches forward from where its last lookup ended instead of from the start.
    from: u32,
}

impl<'a> Skips<'a> {
    /// The record for the value that starts at byte `start` of `doc`.
    pub(crate) fn new(doc: &'a str, spans: &'a [Span], start: usize) -> Skips<'a> {
        // The value's own span, if recorded, is the first: its parts' spans follow it.
        let own = spans.first().is_some_and(|s| s.open as usize == start);
        Skips {
            doc,
            spans,
            from: u32::from(own),
        }
    }

    /// The offset after the value that starts at byte `j` of `within` (a part of the
    /// document), if recorded. Moves `from` past that value's own span, where its parts'
    /// spans start (so the record, copied, serves the value), and the next value of the
    /// walk (values come in document order) is searched for from there.
    fn step(&mut self, within: &str, j: usize) -> Option<usize> {
        let (k, end) = self.find(within, j)?;
        self.from = u32::try_from(k.saturating_add(1)).unwrap_or(u32::MAX);
        Some(end)
    }

    /// The index of the span opening at byte `j` of `within` and the offset in `within`
    /// after it; on a miss, `from` moves up to where such a span would be.
    fn find(&mut self, within: &str, j: usize) -> Option<(usize, usize)> {
        if self.spans.is_empty() {
            return None;
        }
        let base = crate::subslice::offset_in(self.doc.as_bytes(), within.as_bytes())?;
        let at = u32::try_from(base.checked_add(j)?).ok()?;
        let mut lo = self.from as usize;
        let k = match self.spans.get(lo) {
            // A short value before the next recorded one, or past the record.
            None => return None,
            Some(s) if s.open > at => return None,
            Some(s) if s.open == at => lo,
            // Gallop forward: the span sought is usually among the next few (a member's
            // value right after the previous one's parts).
            Some(_) => {
                let mut step = 1usize;
                while let Some(s) = self.spans.get(lo.saturating_add(step)) {
                    if s.open >= at {
                        break;
                    }
                    lo = lo.saturating_add(step);
                    step = step.saturating_mul(2);
                }
                // spans[lo].open < at, and at most spans[lo + step].open.
                let hi = lo
                    .saturating_add(step)
                    .saturating_add(1)
                    .min(self.spans.len());
                let window = self.spans.get(lo..hi).unwrap_or(&[]);
                match window.binary_search_by_key(&at, |s| s.open) {
                    Ok(k) => lo.saturating_add(k),
                    Err(k) => {
                        self.from = u32::try_from(lo.saturating_add(k)).unwrap_or(u32::MAX);
                        return None;
                    }
                }
            }
        };
        let end = (self.spans.get(k)?.end as usize).checked_sub(base)?;
        (end > j && end <= within.len()).then_some((k, end))
    }
}

/// One validated JSON value: its exact text, without surrounding whitespace.
#[derive(Clone, Copy)]
pub struct Value<'a> {
    raw: &'a str,
    skips: Skips<'a>,
}

/// Values are equal when their text is.
impl PartialEq for Value<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for Value<'_> {}

impl std::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Value").field(&self.raw).finish()
    }
}

impl<'a> Value<'a> {
    /// Only the validator and navigation create values (the text must be validated).
    pub(crate) fn new(raw: &'a str) -> Self {
        Value {
            raw,
            skips: Skips::default(),
        }
    }

    /// A value with the validator's record of where its parts end.
    pub(crate) fn indexed(raw: &'a str, skips: Skips<'a>) -> Self {
        Value { raw, skips }
    }

    /// The value's JSON text exactly as received.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self.raw.as_bytes().first() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b'"') => Kind::String,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            _ => Kind::Number,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<JsonStr<'a>> {
        if self.kind() != Kind::String {
            return None;
        }
        let inner = self.raw.get(1..self.raw.len().saturating_sub(1))?;
        Some(JsonStr::new(inner))
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self.raw {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<Number<'a>> {
        if self.kind() != Kind::Number {
            return None;
        }
        Number::parse(self.raw)
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        self.raw == "null"
    }

    /// The members of an object (empty for any other type).
    pub fn members(&self) -> Members<'a> {
        Members {
            rest: self.container_body(Kind::Object),
            skips: self.skips,
        }
    }

    /// The elements of an array (empty for any other type).
    pub fn elements(&self) -> Elements<'a> {
        Elements {
            rest: self.container_body(Kind::Array),
            skips: self.skips,
        }
    }

    /// The member whose unescaped key is exactly `key`.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.members().find(|(k, _)| k.eq_str(key)).map(|(_, v)| v)
    }

    fn container_body(&self, kind: Kind) -> &'a str {
        if self.kind() == kind {
            self.raw.get(1..).unwrap_or("")
        } else {
            ""
        }
    }
}

/// Iterator over `(key, value)` members of an object.
pub struct Members<'a> {
    /// The text after `{` or after the previous member's comma.
    rest: &'a str,
    skips: Skips<'a>,
}

impl<'a> Iterator for Members<'a> {
    type Item = (JsonStr<'a>, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.rest.as_bytes();
        let i = skip_ws(b, 0);
        if b.get(i) != Some(&b'"') {
            self.rest = "";
            return None;
        }
        let key_end = skip_string(b, i);
        let key = JsonStr::new(self.rest.get(i + 1..key_end.saturating_sub(1))?);
        let mut j = skip_ws(b, key_end);
        if b.get(j) != Some(&b':') {
            self.rest = "";
            return None;
        }
        j = skip_ws(b, j + 1);
        let end = self
            .skips
            .step(self.rest, j)
            .unwrap_or_else(|| skip_value(b, j));
        let value = Value::indexed(self.rest.get(j..end)?, self.skips);
        let k = skip_ws(b, end);
        let next = if b.get(k) == Some(&b',') { k + 1 } else { k };
        self.rest = self.rest.get(next..).unwrap_or("");
        Some((key, value))
    }
}

/// Iterator over the elements of an array.
pub struct Elements<'a> {
    /// The text after `[` or after the previous element's comma.
    rest: &'a str,
    skips: Skips<'a>,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.rest.as_bytes();
        let i = skip_ws(b, 0);
        match b.get(i) {
            None | Some(b']') => {
                self.rest = "";
                return None;
            }
            Some(_) => {}
        }
        let end = self
            .skips
            .step(self.rest, i)
            .unwrap_or_else(|| skip_value(b, i));
        let value = Value::indexed(self.rest.get(i..end)?, self.skips);
        let k = skip_ws(b, end);
        let next = if b.get(k) == Some(&b',') { k + 1 } else { k };
        self.rest = self.rest.get(next..).unwrap_or("");
        Some(value)
    }
}

/// `b[open]` is a quote; returns the offset after the closing quote.
fn skip_string(b: &[u8], open: usize) -> usize {
    let mut j = open + 1;
    loop {
        let rest = b.get(j..).unwrap_or(&[]);
        match memchr::memchr2(b'"', b'\\', rest) {
            None => return b.len(),
            Some(k) => {
                j += k;
                if b.get(j) == Some(&b'"') {
                    return j + 1;
                }
                j += 2;
            }
        }
    }
}

/// Returns the offset after the validated value starting at `i`.
pub(crate) fn skip_value(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => skip_string(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b'"' => {
                        j = skip_string(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        _ => {
            let mut j = i;
            while let Some(&c) = b.get(j) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                j += 1;
            }
            j
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_strict, KeyRule, Kind, Options, Validator};
    use super::Value;

    /// Every member and element, walked with the validator's record and without it, is
    /// the same text.
    fn same_walk(indexed: Value<'_>, plain: Value<'_>) -> usize {
        assert_eq!(indexed.raw(), plain.raw());
        let mut visited = 1;
        let (a, b): (Vec<_>, Vec<_>) = (indexed.members().collect(), plain.members().collect());
        assert_eq!(a.len(), b.len(), "{}", plain.raw());
        for ((ka, va), (kb, vb)) in a.into_iter().zip(b) {
            assert_eq!(ka.decode(), kb.decode());
            visited += same_walk(va, vb);
        }
        let (a, b): (Vec<_>, Vec<_>) = (indexed.elements().collect(), plain.elements().collect());
        assert_eq!(a.len(), b.len(), "{}", plain.raw());
        for (va, vb) in a.into_iter().zip(b) {
            visited += same_walk(va, vb);
        }
        visited
    }

    /// How many values of a walk were found in the record rather than scanned: a value
    /// found there hands its parts a record starting right after its own span.
    fn found_in_record(v: Value<'_>, doc: &str) -> usize {
        let recorded = v.skips.from.checked_sub(1).and_then(|k| {
            let at = crate::subslice::offset_in(doc.as_bytes(), v.raw().as_bytes())?;
            Some(v.skips.spans.get(k as usize)?.open as usize == at)
        });
        let mut found = usize::from(recorded == Some(true));
        for (_, m) in v.members() {
            found += found_in_record(m, doc);
        }
        for e in v.elements() {
            found += found_in_record(e, doc);
        }
        found
    }

    #[test]
    fn recorded_ends_navigate_as_scanning_does() {
        let long = "x".repeat(300);
        let many: Vec<String> = (0..150)
            .map(|i| {
                format!(r#"{{"k{i}":["{long}",{{"n":[{i}, "a\"]}}"]}}], "s":"{long}\u00e9"}}"#)
            })
            .collect();
        let docs = [
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"cache_cas","arguments":{{"key":"k","value":"{long}","n":[1,2,{{"deep":[[[]]]}}]}}}}}}"#
            ),
            format!(r#" [ {} ] "#, many.join(" , ")),
            format!(r#"{{"a" : "{long}" , "b" : [ "{long}" , {{ }} , [ ] ] , "c" : "short"}}"#),
            r#""just a string that is long enough to be recorded in the spans""#.to_string(),
            r#"[1,[2,[3,[4]]],"]",{"}":"{"}]"#.to_string(),
        ];
        let opts = Options {
            max_depth: 16,
            keys: KeyRule::Folded,
        };
        for doc in &docs {
            let plain = parse_strict(doc.as_bytes(), 16).unwrap_or_else(|e| panic!("{e}"));
            let mut v = Validator::new();
            let indexed = v
                .validate_indexed(doc.as_bytes(), opts)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(same_walk(indexed, plain) >= 1);
            // Every recorded value is found: the document's own by the validator, its
            // parts by walking to them.
            let recorded = indexed.skips.spans.len();
            assert_eq!(found_in_record(indexed, doc), recorded, "{doc}");
        }
    }

    #[test]
    fn navigates_members_and_elements() {
        let src = br#" { "jsonrpc" : "2.0", "id": 7, "method":"tools/call",
            "params": {"name": "cache\u005fcas", "arguments": {"k": [1, "a,]}", {"x": true}], "e": {}}}} "#;
        let v = parse_strict(src, 8).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.kind(), Kind::Object);
        let keys: Vec<String> = v.members().map(|(k, _)| k.decode().into_owned()).collect();
        assert_eq!(keys, ["jsonrpc", "id", "method", "params"]);
        assert_eq!(v.get("id").map(|v| v.raw()), Some("7"));
        let params = v.get("params").unwrap_or_else(|| panic!("params"));
        let name = params.get("name").and_then(|n| n.as_str());
        assert!(name.is_some_and(|n| n.eq_str("cache_cas")));
        let args = params
            .get("arguments")
            .unwrap_or_else(|| panic!("arguments"));
        let k: Vec<&str> = args
            .get("k")
            .map(|k| k.elements().map(|e| e.raw()).collect())
            .unwrap_or_default();
        assert_eq!(k, ["1", "\"a,]}\"", "{\"x\": true}"]);
        assert_eq!(args.get("e").map(|e| e.members().count()), Some(0));
        assert_eq!(v.get("missing"), None);
        assert_eq!(v.elements().count(), 0);
    }
}
