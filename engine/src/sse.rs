//! Incremental filtering of a `text/event-stream` response: events are parsed as they
//! arrive (split across chunks or many per chunk, CR, LF or CRLF line ends, comments,
//! `id:`/`event:` lines), every event that is not a response to the list request is passed
//! on byte for byte as soon as it is complete, and only such responses are rewritten.

use crate::legacy;
use crate::listing::{unfilterable, ListRules, PendingList};

/// The state of one response stream.
pub struct SseFilter {
    pending: Vec<PendingList>,
    /// The ids of the requests the stream answers, which an error in place of what cannot
    /// be checked names (see [`unfilterable`]).
    ids: Vec<String>,
    /// Raw bytes of the event being read.
    event: Vec<u8>,
    /// The current line (without its end).
    line: Vec<u8>,
    /// The event's data field.
    data: Vec<u8>,
    has_data: bool,
    /// The previous byte was CR: a following LF belongs to the same line end.
    after_cr: bool,
    /// At the start of the stream (a BOM is ignored there).
    at_start: bool,
    /// How many bytes of a BOM the stream has opened with so far.
    bom: usize,
    /// Once a list cannot be filtered, the rest of the stream is dropped.
    failed: bool,
    /// How many times something was withheld.
    withheld: u32,
    max_event: usize,
}

impl SseFilter {
    /// A filter awaiting `pending` list responses; events over `max_event` bytes while a
    /// list is awaited fail closed.
    pub fn new(pending: Vec<PendingList>, max_event: usize) -> SseFilter {
        SseFilter {
            pending,
            ids: Vec::new(),
            event: Vec::new(),
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            after_cr: false,
            at_start: true,
            bom: 0,
            failed: false,
            withheld: 0,
            max_event,
        }
    }

    /// How many times an error has replaced what could not be checked.
    pub fn withheld(&self) -> u32 {
        self.withheld
    }

    /// The filter of a stream answering the requests `ids` (raw JSON ids).
    pub fn answering(mut self, ids: Vec<String>) -> SseFilter {
        self.ids = ids;
        self
    }

    /// Replaces what cannot be checked with the error that says so. The rest of the stream
    /// goes with it when `rest` says so or a list is awaited; otherwise (a GET stream, which
    /// may never end) only this event does, and the events after it are filtered as before.
    fn fail(&mut self, out: &mut Vec<u8>, rest: bool) {
        out.extend_from_slice(b"event: message\ndata: ");
        out.extend_from_slice(unfilterable(&self.pending, &self.ids).as_bytes());
        out.extend_from_slice(b"\n\n");
        self.failed = rest || !self.pending.is_empty();
        self.withheld = self.withheld.saturating_add(1);
        self.pending.clear();
        self.ids.clear();
        self.event.clear();
    }

    /// Feeds a chunk; returns the bytes to pass on now.
    pub fn push(&mut self, rules: &ListRules<'_>, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        if self.failed {
            return out;
        }
        let mut rest = chunk;
        // A BOM opening the stream is no part of its first line, even when it arrives in
        // pieces (a client's UTF-8 decoder drops it however the bytes were chunked). It
        // goes out with the first event.
        while self.at_start {
            let Some((&b, r)) = rest.split_first() else {
                break;
            };
            if BOM.get(self.bom) == Some(&b) {
                self.bom += 1;
                self.event.push(b);
                rest = r;
                self.at_start = self.bom < BOM.len();
            } else {
                // Not a BOM after all: what looked like one begins the first line.
                self.at_start = false;
                self.line
                    .extend_from_slice(BOM.get(..self.bom).unwrap_or(&[]));
            }
        }
        for &b in rest {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    // The LF of a CRLF that ended an event goes out with that event.
                    if self.event.is_empty() {
                        out.push(b);
                    } else {
                        self.event.push(b);
                    }
                    continue;
                }
            }
            self.event.push(b);
            if b == b'\r' || b == b'\n' {
                self.after_cr = b == b'\r';
                let line = std::mem::take(&mut self.line);
                self.field(&line);
                if line.is_empty() {
                    self.dispatch(rules, &mut out);
                    if self.failed {
                        return out;
                    }
                }
            } else {
                self.line.push(b);
            }
            if self.event.len() > self.max_event {
                // Too large to inspect: it cannot be passed on unread, nor can the events
                // after it be told from its remainder.
                self.fail(&mut out, true);
                return out;
            }
        }
        out
    }

    /// The end of the stream: an unterminated last event is judged like a complete one.
    pub fn finish(&mut self, rules: &ListRules<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        if self.failed {
            return out;
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.field(&line);
        }
        if !self.event.is_empty() {
            self.dispatch(rules, &mut out);
        }
        out
    }

    fn field(&mut self, line: &[u8]) {
        if line.is_empty() || line.first() == Some(&b':') {
            return;
        }
        let (name, value) = match line.iter().position(|&c| c == b':') {
            Some(i) => {
                let v = line.get(i + 1..).unwrap_or(&[]);
                (
                    line.get(..i).unwrap_or(&[]),
                    v.strip_prefix(b" ").unwrap_or(v),
                )
            }
            None => (line, &[][..]),
        };
        if name == b"data" {
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
    }

    fn dispatch(&mut self, rules: &ListRules<'_>, out: &mut Vec<u8>) {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        let had_data = std::mem::replace(&mut self.has_data, false);
        if !had_data || data.iter().all(u8::is_ascii_whitespace) {
            // No JSON a client could read.
            out.extend_from_slice(&event);
            return;
        }
        let filtered = if self.pending.is_empty() {
            // No list awaited: only answers to rewritten 2024-11-05 messages change.
            if !legacy::may_answer(&data) {
                out.extend_from_slice(&event);
                return;
            }
            legacy::restore(&data, rules)
        } else {
            // Not strict JSON-RPC while a list is awaited fails: a lenient client might read it.
            rules.json_body(&data, &self.pending)
        };
        match filtered {
            Ok(None) => out.extend_from_slice(&event),
            Ok(Some(new)) => {
                // The stream's BOM stays first; the line after it is no other line.
                let event = match event.strip_prefix(BOM) {
                    Some(rest) => {
                        out.extend_from_slice(BOM);
                        rest
                    }
                    None => &event[..],
                };
                for line in split_lines(event) {
                    if !line.is_empty() && !line.starts_with(b"data") {
                        out.extend_from_slice(line);
                        out.push(b'\n');
                    }
                }
                // Data that spanned several lines is written back as several lines.
                for piece in new.split(|&c| c == b'\n') {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(piece);
                    out.push(b'\n');
                }
                out.push(b'\n');
            }
            Err(_) => self.fail(out, false),
        }
    }
}

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The lines of an event (without their ends).
fn split_lines(event: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while let Some(&b) = event.get(i) {
        if b == b'\r' || b == b'\n' {
            lines.push(event.get(start..i).unwrap_or(&[]));
            if b == b'\r' && event.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    if start < event.len() {
        lines.push(event.get(start..).unwrap_or(&[]));
    }
    lines
}
