//! The strict validator: one pass over a body, iterative (no recursion, so no stack
//! exhaustion), bounded in depth, rejecting everything RFC 8259 does not allow plus the
//! things a parser differential can exploit: a byte order mark, lone surrogates, and
//! duplicate keys (exact, or after folding as a lenient server might).

use super::string::JsonStr;
use super::value::{Skips, Span, Value};
use crate::fold::Folded;
use std::cmp::Ordering;
use std::fmt;

/// How object keys are compared when looking for duplicates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRule {
    /// Keys equal after unescaping are duplicates.
    Exact,
    /// Keys equal after unescaping and folding (see [`crate::fold`]) are duplicates.
    Folded,
    /// [`KeyRule::Folded`] in a message's envelope, its params and the members of those
    /// (three levels of objects; four in a batch), where look-alike keys could change what
    /// is called; [`KeyRule::Exact`] deeper, in the data a call carries (a header map may
    /// hold `Content-Type` and `content-type`). Readers of deeper paths take every member a
    /// folded key matches.
    FoldedCall,
}

/// What the validator accepts.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The deepest nesting of arrays and objects allowed (the top-level value is depth 1).
    pub max_depth: u32,
    /// How duplicate keys are detected.
    pub keys: KeyRule,
}

/// Why a document was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nothing but whitespace.
    Empty,
    /// A UTF-8 byte order mark before the value.
    ByteOrderMark,
    /// The bytes are not UTF-8.
    InvalidUtf8,
    /// A byte that cannot appear here.
    Syntax,
    /// The document ends inside a value.
    UnexpectedEnd,
    /// Something other than whitespace after the value.
    TrailingData,
    /// A raw control character inside a string.
    ControlCharacter,
    /// A backslash escape JSON does not define.
    InvalidEscape,
    /// A `\u` escape of half a surrogate pair.
    LoneSurrogate,
    /// A malformed number.
    InvalidNumber,
    /// Nesting deeper than allowed.
    TooDeep,
    /// A document too large to index (over 4 GiB).
    TooLarge,
    /// Two keys of one object that are equal after unescaping.
    DuplicateKey,
    /// Two keys of one object that differ only by case, compatibility forms, whitespace or
    /// invisible characters.
    AmbiguousKey,
}

/// A refusal and the byte offset where it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Where (bytes from the start of the document).
    pub offset: usize,
}

impl Error {
    /// Whether this is a syntax problem (JSON-RPC -32700) rather than a well-formed
    /// document with ambiguous keys (-32600).
    pub fn is_syntax(&self) -> bool {
        !matches!(self.kind, ErrorKind::DuplicateKey | ErrorKind::AmbiguousKey)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::Empty => "empty document",
            ErrorKind::ByteOrderMark => "byte order mark before the JSON value",
            ErrorKind::InvalidUtf8 => "invalid UTF-8",
            ErrorKind::Syntax => "invalid JSON",
            ErrorKind::UnexpectedEnd => "unexpected end of JSON",
            ErrorKind::TrailingData => "data after the JSON value",
            ErrorKind::ControlCharacter => "control character in a string",
            ErrorKind::InvalidEscape => "invalid escape in a string",
            ErrorKind::LoneSurrogate => "unpaired surrogate in a string",
            ErrorKind::InvalidNumber => "invalid number",
            ErrorKind::TooDeep => "nesting too deep",
            ErrorKind::TooLarge => "document too large",
            ErrorKind::DuplicateKey => "duplicate object key",
            ErrorKind::AmbiguousKey => {
                "object keys that differ only by case, compatibility form, whitespace or invisible characters"
            }
        };
        let mut s = String::from(what);
        s.push_str(" at byte ");
        crate::digits::push_decimal(&mut s, self.offset as u64);
        f.write_str(&s)
    }
}

fn err<T>(kind: ErrorKind, offset: usize) -> Result<T, Error> {
    Err(Error { kind, offset })
}

#[derive(Clone, Copy)]
struct Frame {
    object: bool,
    /// Index in `keys` of this object's first key.
    keys_from: usize,
    /// Index in `spans` of this container's span, if recorded.
    span: Option<usize>,
}

/// How many spans one request records at least: enough for the envelope, params and
/// arguments of a call and their members. A larger document may record one per 16 bytes
/// (every long string and larger container it can hold): were navigation to scan past a
/// full record, a value nested `d` deep would be scanned `d` times.
const MAX_SPANS: usize = 64;

/// Containers shorter than this are not recorded (their span is dropped when they close):
/// scanning them costs less than looking them up, and they cannot use the record up.
const SMALL_CONTAINER: usize = 64;

/// How many spans an answer records ([`Validator::for_answers`]): a list of a few hundred
/// entries, each walked member by member when it is filtered, at 8 bytes a span.
const MAX_ANSWER_SPANS: usize = 8192;

/// Strings at least this long (quotes included) are recorded: shorter ones cost less to
/// scan than to look up.
const LONG_STRING: usize = 48;

#[derive(Clone, Copy)]
struct KeySpan {
    start: u32,
    end: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Value,
    ValueOrClose,
    KeyOrClose,
    Key,
    CommaOrClose,
}

/// Reusable scratch space for validation (keeps allocations out of the request path).
pub struct Validator {
    stack: Vec<Frame>,
    keys: Vec<KeySpan>,
    order: Vec<KeyForm>,
    /// The compared forms of a large object's keys, one after another (see [`check_keys`]).
    forms: Vec<u8>,
    /// Where containers and long strings end, in document order (see [`Skips`]).
    spans: Vec<Span>,
    /// How many spans one document may record at least.
    max_spans: usize,
    /// How many the document being checked may record.
    room: usize,
}

impl Default for Validator {
    fn default() -> Self {
        Validator {
            stack: Vec::new(),
            keys: Vec::new(),
            order: Vec::new(),
            forms: Vec::new(),
            spans: Vec::new(),
            max_spans: MAX_SPANS,
            room: MAX_SPANS,
        }
    }
}

const BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

impl Validator {
    /// A validator with empty scratch space.
    pub fn new() -> Self {
        Self::default()
    }

    /// A validator for answers, whose lists are walked entry by entry: it records more of
    /// where their parts end, so each walk looks the end up instead of scanning to it.
    pub fn for_answers() -> Self {
        Validator {
            max_spans: MAX_ANSWER_SPANS,
            ..Self::default()
        }
    }

    /// Validates `src` as exactly one JSON value with optional surrounding whitespace and
    /// returns that value.
    pub fn validate<'a>(&mut self, src: &'a [u8], opts: Options) -> Result<Value<'a>, Error> {
        self.check(src, opts)
            .map(|(text, start, end)| Value::new(text.get(start..end).unwrap_or("")))
    }

    /// As [`Validator::validate`], and the value carries the record of where its parts
    /// end, so reading it does not scan what validation already scanned.
    pub fn validate_indexed<'a>(
        &'a mut self,
        src: &'a [u8],
        opts: Options,
    ) -> Result<Value<'a>, Error> {
        let (text, start, end) = self.check(src, opts)?;
        let skips = Skips::new(text, &self.spans, start);
        Ok(Value::indexed(text.get(start..end).unwrap_or(""), skips))
    }

    /// Validates; returns the document and the value's start and end offsets.
    fn check<'a>(
        &mut self,
        src: &'a [u8],
        opts: Options,
    ) -> Result<(&'a str, usize, usize), Error> {
        self.stack.clear();
        self.keys.clear();
        self.spans.clear();
        self.room = self.max_spans.max(src.len() / 16);
        if src.starts_with(BOM) {
            return err(ErrorKind::ByteOrderMark, 0);
        }
        if u32::try_from(src.len()).is_err() {
            return err(ErrorKind::TooLarge, 0);
        }
        let text = match utf8(src) {
            Ok(t) => t,
            Err(e) => return err(ErrorKind::InvalidUtf8, e.valid_up_to()),
        };
        let b = text.as_bytes();
        let start = skip_ws(b, 0);
        if start >= b.len() {
            return err(ErrorKind::Empty, start);
        }
        let end = self.run(text, start, opts)?;
        let after = skip_ws(b, end);
        if after != b.len() {
            return err(ErrorKind::TrailingData, after);
        }
        if text.get(start..end).is_none() {
            return err(ErrorKind::Syntax, start);
        }
        Ok((text, start, end))
    }

    /// Starts recording a span at `open`, if the record has room.
    fn open_span(&mut self, open: usize) -> Option<usize> {
        if self.spans.len() >= self.room {
            return None;
        }
        // Offsets fit: the document was checked to be under 4 GiB.
        self.spans.push(Span {
            open: open as u32,
            end: 0,
        });
        Some(self.spans.len() - 1)
    }

    /// Ends the innermost container's span after the byte at `close`.
    fn close_span(&mut self, frame: Option<Frame>, close: usize) {
        let Some(i) = frame.and_then(|f| f.span) else {
            return;
        };
        if let Some(s) = self.spans.get_mut(i) {
            s.end = close as u32 + 1;
            // A small container's spans are all dropped, its own last: it is the last.
            if (s.end - s.open) < SMALL_CONTAINER as u32 && i + 1 == self.spans.len() {
                self.spans.pop();
            }
        }
    }

    /// Returns the end offset of the value starting at `start`.
    fn run(&mut self, text: &str, start: usize, opts: Options) -> Result<usize, Error> {
        let b = text.as_bytes();
        let mut i = start;
        let mut expect = Expect::Value;
        loop {
            i = skip_ws(b, i);
            let Some(&c) = b.get(i) else {
                return err(ErrorKind::UnexpectedEnd, i);
            };
            match expect {
                Expect::Value | Expect::ValueOrClose => match c {
                    b']' if expect == Expect::ValueOrClose => {
                        let frame = self.stack.pop();
                        self.close_span(frame, i);
                        i += 1;
                    }
                    b'{' | b'[' => {
                        if self.stack.len() >= opts.max_depth as usize {
                            return err(ErrorKind::TooDeep, i);
                        }
                        let object = c == b'{';
                        let span = self.open_span(i);
                        self.stack.push(Frame {
                            object,
                            keys_from: self.keys.len(),
                            span,
                        });
                        i += 1;
                        expect = if object {
                            Expect::KeyOrClose
                        } else {
                            Expect::ValueOrClose
                        };
                        continue;
                    }
                    b'"' => {
                        let after = scan_string(b, i)?.after;
                        if after - i >= LONG_STRING {
                            if let Some(s) = self.open_span(i).and_then(|k| self.spans.get_mut(k)) {
                                s.end = after as u32;
                            }
                        }
                        i = after;
                    }
                    b't' => i = literal(b, i, b"true")?,
                    b'f' => i = literal(b, i, b"false")?,
                    b'n' => i = literal(b, i, b"null")?,
                    b'-' | b'0'..=b'9' => i = scan_number(b, i)?,
                    _ => return err(ErrorKind::Syntax, i),
                },
                Expect::KeyOrClose | Expect::Key => {
                    if c == b'}' && expect == Expect::KeyOrClose {
                        self.close_object(text, opts.keys, i)?;
                        i += 1;
                    } else if c == b'"' {
                        let s = scan_string(b, i)?;
                        // Offsets fit: the document was checked to be under 4 GiB.
                        self.keys.push(KeySpan {
                            start: s.content_start as u32,
                            end: s.content_end as u32,
                        });
                        i = skip_ws(b, s.after);
                        match b.get(i) {
                            Some(b':') => {}
                            Some(_) => return err(ErrorKind::Syntax, i),
                            None => return err(ErrorKind::UnexpectedEnd, i),
                        }
                        i += 1;
                        expect = Expect::Value;
                        continue;
                    } else {
                        return err(ErrorKind::Syntax, i);
                    }
                }
                Expect::CommaOrClose => match (c, self.stack.last()) {
                    (b',', Some(top)) => {
                        expect = if top.object {
                            Expect::Key
                        } else {
                            Expect::Value
                        };
                        i += 1;
                        continue;
                    }
                    (b'}', Some(top)) if top.object => {
                        self.close_object(text, opts.keys, i)?;
                        i += 1;
                    }
                    (b']', Some(top)) if !top.object => {
                        let frame = self.stack.pop();
                        self.close_span(frame, i);
                        i += 1;
                    }
                    _ => return err(ErrorKind::Syntax, i),
                },
            }
            // A value just ended.
            if self.stack.is_empty() {
                return Ok(i);
            }
            expect = Expect::CommaOrClose;
        }
    }

    fn close_object(&mut self, text: &str, rule: KeyRule, close: usize) -> Result<(), Error> {
        let batch = self.stack.first().is_some_and(|f| !f.object);
        let rule = match rule {
            KeyRule::FoldedCall if self.stack.len() - usize::from(batch) > 3 => KeyRule::Exact,
            KeyRule::FoldedCall => KeyRule::Folded,
            other => other,
        };
        let frame = self.stack.pop();
        self.close_span(frame, close);
        let from = frame.map_or(self.keys.len(), |f| f.keys_from);
        let keys = self.keys.get(from..).unwrap_or(&[]);
        let result = check_keys(text, keys, rule, &mut self.order, &mut self.forms);
        self.keys.truncate(from);
        result
    }
}

fn key_str(text: &str, k: KeySpan) -> JsonStr<'_> {
    JsonStr::new(text.get(k.start as usize..k.end as usize).unwrap_or(""))
}

fn compare(text: &str, a: KeySpan, b: KeySpan, rule: KeyRule) -> Ordering {
    let (a, b) = (key_str(text, a), key_str(text, b));
    match rule {
        KeyRule::Exact => a.chars().cmp(b.chars()),
        _ => Folded::new(a.chars()).cmp(Folded::new(b.chars())),
    }
}

/// A key's raw text when it is printable ASCII without escapes: its characters are its
/// bytes, and it folds to its lower case alone, so it compares without walking characters
/// through the fold tables.
fn plain_key(raw: &[u8]) -> Option<&[u8]> {
    Some(raw).filter(|r| r.iter().all(|&c| (0x21..0x7f).contains(&c) && c != b'\\'))
}

fn duplicate(text: &str, a: KeySpan, b: KeySpan) -> Error {
    let kind = if key_str(text, a).chars().eq(key_str(text, b).chars()) {
        ErrorKind::DuplicateKey
    } else {
        ErrorKind::AmbiguousKey
    };
    Error {
        kind,
        // The offending key's opening quote.
        offset: (a.start.max(b.start) as usize).saturating_sub(1),
    }
}

/// A key of a large object and where its compared form lies in the scratch bytes.
#[derive(Clone, Copy)]
pub(crate) struct KeyForm {
    key: u32,
    start: u32,
    end: u32,
}

fn push_chars(out: &mut Vec<u8>, chars: impl Iterator<Item = char>) {
    let mut b = [0u8; 4];
    for c in chars {
        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }
}

/// Objects with up to this many members compare every pair (most pairs differ in length, a
/// single comparison); larger ones sort first.
const PAIRWISE_KEYS: usize = 8;

/// Small objects compare every pair; larger ones sort by the (folded) key, which needs no
/// hash an attacker could collide.
fn check_keys(
    text: &str,
    keys: &[KeySpan],
    rule: KeyRule,
    order: &mut Vec<KeyForm>,
    forms: &mut Vec<u8>,
) -> Result<(), Error> {
    if keys.len() <= PAIRWISE_KEYS {
        // Each key is classified once, not once per pair.
        let mut plain: [Option<&[u8]>; PAIRWISE_KEYS] = [None; PAIRWISE_KEYS];
        for (p, k) in plain.iter_mut().zip(keys) {
            *p = text
                .as_bytes()
                .get(k.start as usize..k.end as usize)
                .and_then(plain_key);
        }
        for (i, (&a, pa)) in keys.iter().zip(&plain).enumerate() {
            for (&b, pb) in keys.iter().zip(&plain).skip(i + 1) {
                let same = match (*pa, *pb) {
                    (Some(x), Some(y)) => match rule {
                        KeyRule::Exact => x == y,
                        // The length first: it settles most pairs without a call.
                        _ => x.len() == y.len() && x.eq_ignore_ascii_case(y),
                    },
                    _ => compare(text, a, b, rule) == Ordering::Equal,
                };
                if same {
                    return Err(duplicate(text, a, b));
                }
            }
        }
        return Ok(());
    }
    // Each key's compared form (unescaped, and folded unless exact) is written once, so
    // the sort compares bytes (UTF-8's byte order is its code points'), not re-folding
    // both keys at every comparison: with many long non-ASCII keys that was n log n folds
    // of whole keys.
    forms.clear();
    order.clear();
    for (i, k) in keys.iter().enumerate() {
        let start = forms.len();
        let raw = text
            .as_bytes()
            .get(k.start as usize..k.end as usize)
            .unwrap_or(&[]);
        match (plain_key(raw), rule) {
            (Some(p), KeyRule::Exact) => forms.extend_from_slice(p),
            (Some(p), _) => forms.extend(p.iter().map(u8::to_ascii_lowercase)),
            (None, KeyRule::Exact) => push_chars(forms, key_str(text, *k).chars()),
            (None, _) => push_chars(forms, Folded::new(key_str(text, *k).chars())),
        }
        let (Ok(key), Ok(start), Ok(end)) = (
            u32::try_from(i),
            u32::try_from(start),
            u32::try_from(forms.len()),
        ) else {
            return Err(Error {
                kind: ErrorKind::TooLarge,
                offset: k.start as usize,
            });
        };
        order.push(KeyForm { key, start, end });
    }
    let form = |f: &KeyForm| forms.get(f.start as usize..f.end as usize).unwrap_or(&[]);
    crate::sort::heapsort(order, |x, y| form(x) < form(y));
    for pair in order.windows(2) {
        if let [x, y] = pair {
            if form(x) == form(y) {
                let at = |f: &KeyForm| {
                    keys.get(f.key as usize)
                        .copied()
                        .unwrap_or(KeySpan { start: 0, end: 0 })
                };
                return Err(duplicate(text, at(x), at(y)));
            }
        }
    }
    Ok(())
}

/// JSON whitespace only: space, tab, line feed, carriage return.
#[inline(always)]
pub(crate) fn skip_ws(b: &[u8], i: usize) -> usize {
    // Compact JSON has none: one compare at each call site, the loop only when needed.
    match b.get(i) {
        Some(b' ' | b'\t' | b'\n' | b'\r') => skip_ws_run(b, i),
        _ => i,
    }
}

fn skip_ws_run(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

struct StrSpan {
    content_start: usize,
    content_end: usize,
    after: usize,
}

/// Whether a string byte ends a run of plain content.
fn is_special(c: &u8) -> bool {
    *c == b'"' || *c == b'\\' || *c < 0x20
}

/// `src` as text. A tool call's body is nearly always ASCII, which sixteen-byte lanes
/// confirm in a fraction of a general UTF-8 check; anything else takes that check.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn utf8(src: &[u8]) -> Result<&str, std::str::Utf8Error> {
    use core::arch::wasm32::{u8x16_bitmask, u8x16_splat, v128, v128_load, v128_or};
    let mut high = u8x16_splat(0);
    let mut at = 0;
    while let Some(chunk) = src.get(at..at + 16) {
        // SAFETY: `chunk` is 16 readable bytes, and v128.load has no alignment requirement.
        high = v128_or(high, unsafe { v128_load(chunk.as_ptr().cast::<v128>()) });
        at += 16;
    }
    if u8x16_bitmask(high) == 0 && src.get(at..).is_some_and(<[u8]>::is_ascii) {
        // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(src) });
    }
    std::str::from_utf8(src)
}

/// `src` as text (natively the standard check is already vectorised).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn utf8(src: &[u8]) -> Result<&str, std::str::Utf8Error> {
    std::str::from_utf8(src)
}

/// The offset of the first `"`, `\\` or control character in `s`, sixteen bytes at a time
/// (the module is built with wasm SIMD: string contents are most of a tool call's body).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn find_special(s: &[u8]) -> Option<usize> {
    use core::arch::wasm32::{
        u8x16_bitmask, u8x16_eq, u8x16_lt, u8x16_splat, v128, v128_load, v128_or,
    };
    let (quote, backslash, space) = (u8x16_splat(b'"'), u8x16_splat(b'\\'), u8x16_splat(0x20));
    let mut at = 0;
    while let Some(chunk) = s.get(at..at + 16) {
        // SAFETY: `chunk` is 16 readable bytes, and v128.load has no alignment requirement.
        let v = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
        let hits = v128_or(
            v128_or(u8x16_eq(v, quote), u8x16_eq(v, backslash)),
            u8x16_lt(v, space),
        );
        let mask = u8x16_bitmask(hits);
        if mask != 0 {
            return Some(at + mask.trailing_zeros() as usize);
        }
        at += 16;
    }
    s.get(at..)?.iter().position(is_special).map(|k| at + k)
}

/// The offset of the first `"`, `\\` or control character in `s`. Eight bytes at a time
/// where there is no SIMD to lean on.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn find_special(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let is = is_special;
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let w = crate::words::le_word(chunk);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // Each term flags a byte that is zero (or below 0x20) for certain at its lowest
        // flagged byte; higher flags may be borrows, so only the lowest is trusted.
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & HIGH;
        if found != 0 {
            // The lowest flagged byte is a match; the exact scan of this chunk confirms it.
            return chunk.iter().position(is).map(|k| at + k);
        }
        at += 8;
    }
    chunks.remainder().iter().position(is).map(|k| at + k)
}

fn scan_string(b: &[u8], open: usize) -> Result<StrSpan, Error> {
    let mut j = open + 1;
    loop {
        let rest = b.get(j..).unwrap_or(&[]);
        let Some(k) = find_special(rest) else {
            return err(ErrorKind::UnexpectedEnd, b.len());
        };
        j += k;
        match b.get(j) {
            Some(b'"') => {
                return Ok(StrSpan {
                    content_start: open + 1,
                    content_end: j,
                    after: j + 1,
                })
            }
            Some(b'\\') => j = scan_escape(b, j)?,
            _ => return err(ErrorKind::ControlCharacter, j),
        }
    }
}

fn hex4_at(b: &[u8], i: usize) -> Result<u32, Error> {
    let Some(digits) = b.get(i..i + 4) else {
        return err(ErrorKind::UnexpectedEnd, b.len());
    };
    let mut v = 0u32;
    for (k, &d) in digits.iter().enumerate() {
        let Some(x) = char::from(d).to_digit(16) else {
            return err(ErrorKind::InvalidEscape, i + k);
        };
        v = (v << 4) | x;
    }
    Ok(v)
}

/// `b[j]` is a backslash; returns the offset after the escape.
fn scan_escape(b: &[u8], j: usize) -> Result<usize, Error> {
    match b.get(j + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(j + 2),
        Some(b'u') => {
            let hi = hex4_at(b, j + 2)?;
            if (0xDC00..0xE000).contains(&hi) {
                return err(ErrorKind::LoneSurrogate, j);
            }
            if !(0xD800..0xDC00).contains(&hi) {
                return Ok(j + 6);
            }
            if b.get(j + 6) != Some(&b'\\') || b.get(j + 7) != Some(&b'u') {
                return err(ErrorKind::LoneSurrogate, j);
            }
            let lo = hex4_at(b, j + 8)?;
            if (0xDC00..0xE000).contains(&lo) {
                Ok(j + 12)
            } else {
                err(ErrorKind::LoneSurrogate, j)
            }
        }
        Some(_) => err(ErrorKind::InvalidEscape, j),
        None => err(ErrorKind::UnexpectedEnd, j),
    }
}

fn literal(b: &[u8], i: usize, lit: &[u8]) -> Result<usize, Error> {
    if b.get(i..i + lit.len()) == Some(lit) {
        Ok(i + lit.len())
    } else {
        err(ErrorKind::Syntax, i)
    }
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

fn scan_number(b: &[u8], start: usize) -> Result<usize, Error> {
    let mut i = start;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(b, i + 1),
        _ => return err(ErrorKind::InvalidNumber, i),
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return err(ErrorKind::InvalidNumber, end);
        }
        i = end;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let end = digits(b, i);
        if end == i {
            return err(ErrorKind::InvalidNumber, end);
        }
        i = end;
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Options = Options {
        max_depth: 64,
        keys: KeyRule::Folded,
    };

    #[test]
    fn find_special_agrees_with_a_byte_scan_at_every_offset() {
        let naive = |s: &[u8]| s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        // Every byte value as the special one, at every offset of bodies of many lengths,
        // among neighbours that sit just around the thresholds.
        for len in 0..20 {
            for fill in [b'x', 0x21, 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']'] {
                for at in 0..len {
                    for c in 0..=255u8 {
                        let mut s = vec![fill; len];
                        s[at] = c;
                        assert_eq!(find_special(&s), naive(&s), "{s:?}");
                    }
                }
                assert_eq!(find_special(&vec![fill; len]), None);
            }
        }
    }

    fn check(src: &str) -> Result<String, ErrorKind> {
        Validator::new()
            .validate(src.as_bytes(), STRICT)
            .map(|v| v.raw().to_string())
            .map_err(|e| e.kind)
    }

    #[test]
    fn accepts_rfc8259_documents() {
        for ok in [
            "0",
            "-0.5e+10",
            "1E3",
            "\"\"",
            "true",
            "null",
            " [ ] ",
            "{}",
            r#"{"a":[1,{"b":null}],"c":"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t"}"#,
            "\t{\"k\" : \"v\"}\r\n",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        assert_eq!(check("  {\"a\":1}  ").as_deref(), Ok("{\"a\":1}"));
    }

    #[test]
    fn refuses_syntax_errors() {
        use ErrorKind::*;
        let cases: &[(&str, ErrorKind)] = &[
            ("", Empty),
            ("   ", Empty),
            ("{", UnexpectedEnd),
            ("{\"a\"}", Syntax),
            ("{\"a\":1,}", Syntax),
            ("[1,]", Syntax),
            ("[1 2]", Syntax),
            ("01", TrailingData),
            ("1.", InvalidNumber),
            ("-", InvalidNumber),
            ("1e", InvalidNumber),
            ("+1", Syntax),
            ("NaN", Syntax),
            ("tru", Syntax),
            ("{} {}", TrailingData),
            ("{}x", TrailingData),
            ("\"a\u{1}\"", ControlCharacter),
            ("\"\\x\"", InvalidEscape),
            ("\"\\ud800\"", LoneSurrogate),
            ("\"\\udc00\"", LoneSurrogate),
            ("\"\\ud800\\u0041\"", LoneSurrogate),
            ("\"\\u12x4\"", InvalidEscape),
            ("\"\\u12\"", UnexpectedEnd),
            ("{'a':1}", Syntax),
            ("\u{feff}{}", ByteOrderMark),
            ("{\"a\":1}\u{0}", TrailingData),
            ("\u{a0}{}", Syntax),
        ];
        for (src, kind) in cases {
            assert_eq!(check(src), Err(*kind), "{src:?}");
        }
        assert_eq!(
            Validator::new()
                .validate(b"{\"a\":\"\xff\"}", STRICT)
                .map_err(|e| e.kind),
            Err(InvalidUtf8)
        );
    }

    #[test]
    fn depth_is_bounded_without_recursion() {
        let opts = Options {
            max_depth: 3,
            keys: KeyRule::Exact,
        };
        let mut v = Validator::new();
        assert!(v.validate(b"[[[1]]]", opts).is_ok());
        assert_eq!(
            v.validate(b"[[[[1]]]]", opts).map_err(|e| e.kind),
            Err(ErrorKind::TooDeep)
        );
        // A million open brackets fail fast at the bound instead of exhausting a stack.
        let deep = "[".repeat(1_000_000);
        assert_eq!(check(&deep), Err(ErrorKind::TooDeep));
    }

    #[test]
    fn duplicate_keys_at_any_depth() {
        use ErrorKind::*;
        assert_eq!(check(r#"{"a":1,"a":2}"#), Err(DuplicateKey));
        assert_eq!(check(r#"{"a":1,"\u0061":2}"#), Err(DuplicateKey));
        assert_eq!(
            check(r#"{"x":[{"y":{"a":1,"b":2,"a":3}}]}"#),
            Err(DuplicateKey)
        );
        assert!(check(r#"{"a":{"k":1},"b":{"k":1}}"#).is_ok());
        assert_eq!(check(r#"{"method":1,"Method":2}"#), Err(AmbiguousKey));
        assert_eq!(check(r#"{"name":1,"name\u0000":2}"#), Err(AmbiguousKey));
        assert_eq!(check(r#"{"path":1,"ｐath":2}"#), Err(AmbiguousKey));
        assert_eq!(check(r#"{"path":1," path ":2}"#), Err(AmbiguousKey));
        let exact = Options {
            max_depth: 8,
            keys: KeyRule::Exact,
        };
        assert!(Validator::new()
            .validate(br#"{"a":1,"A":2}"#, exact)
            .is_ok());
    }

    #[test]
    fn a_call_folds_keys_down_to_its_argument_names_only() {
        use ErrorKind::*;
        let call = Options {
            max_depth: 16,
            keys: KeyRule::FoldedCall,
        };
        let check = |src: &str| {
            Validator::new()
                .validate(src.as_bytes(), call)
                .map(|_| ())
                .map_err(|e| e.kind)
        };
        // Envelope, params, arguments: look-alike keys refused.
        assert_eq!(check(r#"{"id":1,"ID":2}"#), Err(AmbiguousKey));
        assert_eq!(check(r#"{"p":{"name":1,"Name":2}}"#), Err(AmbiguousKey));
        assert_eq!(
            check(r#"{"p":{"a":{"path":1,"PATH":2}}}"#),
            Err(AmbiguousKey)
        );
        assert_eq!(
            check(r#"[{"p":{"a":{"path":1,"PATH":2}}}]"#),
            Err(AmbiguousKey)
        );
        // The data a call carries: only true duplicates.
        let headers = r#"{"p":{"a":{"h":{"Content-Type":"a","content-type":"b"}}}}"#;
        assert_eq!(check(headers), Ok(()));
        assert_eq!(check(&format!("[{headers}]")), Ok(()));
        assert_eq!(
            check(r#"{"p":{"a":{"h":{"k":1,"k":2}}}}"#),
            Err(DuplicateKey)
        );
    }

    #[test]
    fn both_ways_of_checking_keys_find_the_same_repeats() {
        // Up to PAIRWISE_KEYS members are compared pair by pair, more are sorted; escaped
        // keys take the slow comparison, plain ones the byte one, in either way.
        for n in [2, PAIRWISE_KEYS - 1, PAIRWISE_KEYS, PAIRWISE_KEYS + 1, 40] {
            let keys: Vec<String> = (0..n)
                .map(|i| {
                    if i % 3 == 0 {
                        format!("\\u006b{i}")
                    } else {
                        format!("k{i}")
                    }
                })
                .collect();
            let object = |extra: &str| {
                let mut body: Vec<String> = keys.iter().map(|k| format!("\"{k}\":1")).collect();
                body.insert(n / 2, format!("\"{extra}\":2"));
                format!("{{{}}}", body.join(","))
            };
            assert!(check(&object("other")).is_ok(), "{n}");
            for (extra, kind) in [
                ("k1", ErrorKind::DuplicateKey),
                ("\\u006b1", ErrorKind::DuplicateKey),
                ("k0", ErrorKind::DuplicateKey),
                ("K1", ErrorKind::AmbiguousKey),
                ("\\u004b0", ErrorKind::AmbiguousKey),
                ("\\uff4b1", ErrorKind::AmbiguousKey),
            ] {
                assert_eq!(check(&object(extra)), Err(kind), "{n} keys and {extra}");
            }
        }
    }

    #[test]
    fn large_objects_are_checked_by_sorting() {
        let mut body = String::from("{");
        for i in 0..5000 {
            body.push_str(&format!("\"k{i}\":{i},"));
        }
        body.push_str("\"K4999\":0}");
        assert_eq!(check(&body), Err(ErrorKind::AmbiguousKey));
        let fine = body.replace("\"K4999\"", "\"k5000\"");
        assert!(check(&fine).is_ok());
    }
}
