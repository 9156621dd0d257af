//! The pattern syntax (regex-lite's, itself the `regex` crate's without Unicode classes)
//! read into a tree of nodes. Recursion is bounded: groups nest at most `MAX_DEPTH` deep,
//! and so does the tree (stacked repetitions such as `a****` deepen it without a group).

use super::class::{posix, Class};
use super::program::MAX_INSTRUCTIONS;
use super::Error;

/// How deep groups and the tree may nest (regex-lite's default nest limit is 250; a policy
/// needs far less, and the compiler and the drop of the tree recurse this deep).
pub(super) const MAX_DEPTH: u32 = 64;

/// A zero-width assertion about the characters on either side of a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Look {
    /// `\A`, and `^` without `m`.
    Start,
    /// `\z`, and `$` without `m`.
    End,
    /// `^` with `m`: the start, or after `\n`.
    StartLine,
    /// `$` with `m`: the end, or before `\n`.
    EndLine,
    /// `^` with `m` and `R`: the start, after `\n`, or after `\r` not before `\n`.
    StartCrlf,
    /// `$` with `m` and `R`: the end, before `\r`, or before `\n` not after `\r`.
    EndCrlf,
    /// `\b`: a word character on exactly one side.
    Word,
    /// `\B`: not a word boundary.
    NotWord,
    /// `\<`, `\b{start}`: a word starts.
    WordStart,
    /// `\>`, `\b{end}`: a word ends.
    WordEnd,
    /// `\b{start-half}`: no word character before.
    WordStartHalf,
    /// `\b{end-half}`: no word character after.
    WordEndHalf,
}

/// What a pattern is made of.
#[derive(Clone, Debug)]
pub(super) enum Kind {
    /// Matches the empty string.
    Empty,
    /// One character of the class (an index into `Parsed::classes`).
    Class(u32),
    /// A zero-width assertion.
    Look(Look),
    /// Each in turn.
    Concat(Vec<Node>),
    /// Any one of them.
    Alt(Vec<Node>),
    /// The node repeated at least `min` and at most `max` (unbounded: `None`) times.
    Repeat(Box<Node>, u32, Option<u32>),
}

/// A node and how deep the tree under it goes.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub(super) kind: Kind,
    depth: u32,
}

impl Node {
    fn leaf(kind: Kind) -> Node {
        Node { kind, depth: 0 }
    }

    /// A node over the children its kind holds, refused if the tree grows too deep.
    fn branch(kind: Kind) -> Result<Node, Error> {
        let children: &[Node] = match &kind {
            Kind::Concat(nodes) | Kind::Alt(nodes) => nodes,
            Kind::Repeat(sub, ..) => std::slice::from_ref(sub),
            Kind::Empty | Kind::Class(_) | Kind::Look(_) => &[],
        };
        let depth = 1 + children.iter().map(|n| n.depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(Error("the pattern nests too deeply"));
        }
        Ok(Node { kind, depth })
    }

    fn concat(mut nodes: Vec<Node>) -> Result<Node, Error> {
        match nodes.len() {
            0 => Ok(Node::leaf(Kind::Empty)),
            1 => Ok(nodes.remove(0)),
            _ => Node::branch(Kind::Concat(nodes)),
        }
    }

    fn alt(mut nodes: Vec<Node>) -> Result<Node, Error> {
        if nodes.len() == 1 {
            return Ok(nodes.remove(0));
        }
        Node::branch(Kind::Alt(nodes))
    }
}

/// A parsed pattern: its tree and the classes its leaves point to.
pub(super) struct Parsed {
    pub(super) root: Node,
    pub(super) classes: Vec<Class>,
}

/// The flags a pattern may set with `(?flags)` or `(?flags:…)`.
#[derive(Clone, Copy, Default)]
struct Flags {
    /// `i`: characters match every case Unicode's simple case folding gives them.
    case_insensitive: bool,
    /// `m`: `^` and `$` match at line ends too.
    multi_line: bool,
    /// `s`: `.` matches `\n` too.
    dot_all: bool,
    /// `R`: lines end with `\r`, `\n` or `\r\n`.
    crlf: bool,
    /// `x`: whitespace and `#` comments are ignored.
    verbose: bool,
}

/// Parses `pattern`.
pub(super) fn parse(pattern: &str) -> Result<Parsed, Error> {
    let mut p = Parser {
        pattern,
        pos: 0,
        flags: Flags::default(),
        classes: Vec::new(),
        names: Vec::new(),
    };
    let root = p.alternation(0)?;
    Ok(Parsed {
        root,
        classes: p.classes,
    })
}

struct Parser<'a> {
    pattern: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    flags: Flags,
    classes: Vec<Class>,
    /// Capture group names seen (they must be distinct).
    names: Vec<&'a str>,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.pattern.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// The character after the next one.
    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, prefix: &str) -> bool {
        let found = self.rest().starts_with(prefix);
        if found {
            self.pos += prefix.len();
        }
        found
    }

    /// In verbose mode, skips whitespace and comments.
    fn skip_space(&mut self) {
        if !self.flags.verbose {
            return;
        }
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                while let Some(c) = self.bump() {
                    if c == '\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    /// The next character after skipping space (in verbose mode).
    fn peek_past_space(&mut self) -> Option<char> {
        self.skip_space();
        self.peek()
    }

    /// The character after the next, skipping space between them (in verbose mode).
    fn peek2_past_space(&self) -> Option<char> {
        let mut ahead = Parser {
            pattern: self.pattern,
            pos: self.pos,
            flags: self.flags,
            classes: Vec::new(),
            names: Vec::new(),
        };
        ahead.bump();
        ahead.peek_past_space()
    }

    fn class_node(&mut self, class: Class) -> Result<Node, Error> {
        // Bounded although `x{0}` drops its class: each may cost a fold at configure time.
        let id = u32::try_from(self.classes.len())
            .ok()
            .filter(|&n| (n as usize) < MAX_INSTRUCTIONS)
            .ok_or(Error("too many classes"))?;
        self.classes.push(class);
        Ok(Node::leaf(Kind::Class(id)))
    }

    /// A literal character, in every case under `i`.
    fn literal(&self, c: char) -> Class {
        let mut class = Class::single(c);
        // ASCII other than letters has no other case.
        if self.flags.case_insensitive && (c.is_ascii_alphabetic() || !c.is_ascii()) {
            class.fold_case();
        }
        class
    }

    /// Branches separated by `|`, up to a `)` (left unread) or the end.
    fn alternation(&mut self, depth: u32) -> Result<Node, Error> {
        if depth > MAX_DEPTH {
            return Err(Error("the pattern nests too deeply"));
        }
        let mut branches = Vec::new();
        let mut items: Vec<Node> = Vec::new();
        while let Some(c) = self.peek_past_space() {
            match c {
                '(' => {
                    let outer = self.flags;
                    if let Some(group) = self.group(depth)? {
                        items.push(group);
                        self.flags = outer;
                    }
                    if self.bump() != Some(')') {
                        return Err(Error("a group is not closed with ')'"));
                    }
                }
                ')' if depth == 0 => return Err(Error("')' closes no group")),
                ')' => break,
                '|' => {
                    self.bump();
                    branches.push(Node::concat(std::mem::take(&mut items))?);
                }
                '[' => {
                    self.bump();
                    let class = self.bracket()?;
                    items.push(self.class_node(class)?);
                }
                '?' | '*' | '+' => {
                    self.bump();
                    let (min, max) = match c {
                        '?' => (0, Some(1)),
                        '*' => (0, None),
                        _ => (1, None),
                    };
                    // A trailing `?` only makes the repetition lazy: no matter to a yes/no match.
                    self.eat("?");
                    repeat(&mut items, min, max)?;
                }
                '{' => {
                    self.bump();
                    let (min, max) = self.counted(items.is_empty())?;
                    repeat(&mut items, min, max)?;
                }
                _ => {
                    self.bump();
                    let node = self.primitive(c)?;
                    items.push(node);
                }
            }
        }
        branches.push(Node::concat(items)?);
        Node::alt(branches)
    }

    /// After `(`: a group, or `None` for a flag directive `(?flags)`. Leaves `)` unread.
    fn group(&mut self, depth: u32) -> Result<Option<Node>, Error> {
        self.bump();
        self.skip_space();
        if ["?=", "?!", "?<=", "?<!"]
            .iter()
            .any(|p| self.rest().starts_with(p))
        {
            return Err(Error("look-around is not supported"));
        }
        if self.eat("?P<") || self.eat("?<") {
            self.capture_name()?;
        } else if self.eat("?") {
            let start = self.pos;
            self.flag_list()?;
            if self.peek() == Some(')') {
                if self.pos == start {
                    return Err(Error("a flag group names no flags"));
                }
                return Ok(None);
            }
            // flag_list stops only at ':' or ')'.
            self.bump();
        }
        self.alternation(depth + 1).map(Some)
    }

    /// A capture group's name up to and including `>`: ASCII letters, digits, `_`, `.`, `[`,
    /// `]`, starting with a letter or `_`; each name once.
    fn capture_name(&mut self) -> Result<(), Error> {
        let start = self.pos;
        loop {
            match self.bump() {
                None => return Err(Error("a capture group name is not closed with '>'")),
                Some('>') => break,
                Some(c) => {
                    let first = self.pos == start + c.len_utf8();
                    let ok = c == '_'
                        || c.is_ascii_alphabetic()
                        || (!first
                            && (c == '.' || c == '[' || c == ']' || c.is_ascii_alphanumeric()));
                    if !ok {
                        return Err(Error("invalid capture group name"));
                    }
                }
            }
        }
        let name = self
            .pattern
            .get(start..self.pos - 1)
            .ok_or(Error("invalid capture group name"))?;
        if name.is_empty() {
            return Err(Error("empty capture group name"));
        }
        // Sorted, so many names cost O(n log n) comparisons.
        match self.names.binary_search(&name) {
            Ok(_) => return Err(Error("duplicate capture group name")),
            Err(at) => self.names.insert(at, name),
        }
        Ok(())
    }

    /// Flags up to `:` or `)` (left unread), applied to the current flags.
    fn flag_list(&mut self) -> Result<(), Error> {
        let mut on = true;
        let mut seen = Vec::new();
        let mut dangling = false;
        loop {
            let c = self.peek().ok_or(Error("a flag group is not closed"))?;
            if c == ':' || c == ')' {
                break;
            }
            self.bump();
            if c == '-' {
                if !on {
                    return Err(Error("a flag group negates twice"));
                }
                on = false;
                dangling = true;
                continue;
            }
            dangling = false;
            if seen.contains(&c) {
                return Err(Error("a flag is repeated"));
            }
            seen.push(c);
            match c {
                'i' => self.flags.case_insensitive = on,
                'm' => self.flags.multi_line = on,
                's' => self.flags.dot_all = on,
                'R' => self.flags.crlf = on,
                'x' => self.flags.verbose = on,
                // Greed and Unicode mode change nothing a yes/no match can see.
                'U' | 'u' => {}
                _ => return Err(Error("unrecognized flag")),
            }
        }
        if dangling {
            return Err(Error("a flag group ends with '-'"));
        }
        Ok(())
    }

    /// After `{`: `n`, `n,` or `n,m` and `}`, then an optional lazy `?`.
    fn counted(&mut self, nothing_before: bool) -> Result<(u32, Option<u32>), Error> {
        if nothing_before {
            return Err(Error("a repetition repeats nothing"));
        }
        self.skip_space();
        let min = self.decimal()?;
        let max = if self.eat(",") {
            self.skip_space();
            if self.peek() == Some('}') {
                None
            } else {
                Some(self.decimal()?)
            }
        } else {
            Some(min)
        };
        if self.bump() != Some('}') {
            return Err(Error("a counted repetition is not closed with '}'"));
        }
        if max.is_some_and(|max| min > max) {
            return Err(Error("a counted repetition's minimum exceeds its maximum"));
        }
        self.skip_space();
        self.eat("?");
        Ok((min, max))
    }

    /// A decimal number, with whitespace around it allowed.
    fn decimal(&mut self) -> Result<u32, Error> {
        let skip_ws = |p: &mut Parser| {
            while p.peek().is_some_and(char::is_whitespace) {
                p.bump();
            }
        };
        skip_ws(self);
        let mut n: Option<u32> = None;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            self.bump();
            self.skip_space();
            n = Some(
                n.unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(d))
                    .ok_or(Error("a repetition count is too large"))?,
            );
        }
        skip_ws(self);
        n.ok_or(Error("a counted repetition needs a number"))
    }

    /// A character, `.`, `^`, `$` or an escape (`c` already read).
    fn primitive(&mut self, c: char) -> Result<Node, Error> {
        match c {
            '\\' => match self.escape(false)? {
                Escaped::Class(class) => self.class_node(class),
                Escaped::Look(look) => Ok(Node::leaf(Kind::Look(look))),
            },
            '.' => {
                let class = if self.flags.dot_all {
                    Class::of(vec![(0, char::MAX as u32)])
                } else {
                    let mut class = Class::single('\n');
                    if self.flags.crlf {
                        class.push('\r', '\r');
                        class.canonicalize();
                    }
                    class.negate();
                    class
                };
                self.class_node(class)
            }
            '^' => Ok(Node::leaf(Kind::Look(match self.flags {
                f if !f.multi_line => Look::Start,
                f if f.crlf => Look::StartCrlf,
                _ => Look::StartLine,
            }))),
            '$' => Ok(Node::leaf(Kind::Look(match self.flags {
                f if !f.multi_line => Look::End,
                f if f.crlf => Look::EndCrlf,
                _ => Look::EndLine,
            }))),
            c => {
                let class = self.literal(c);
                self.class_node(class)
            }
        }
    }

    /// After `\`: a character, a Perl class or an assertion.
    ///
    /// In a bracketed class (`in_class`) a character comes uncased: the class folds itself.
    fn escape(&mut self, in_class: bool) -> Result<Escaped, Error> {
        let c = self
            .bump()
            .ok_or(Error("the pattern ends inside an escape"))?;
        let single = |p: &Parser, c: char| {
            Ok(Escaped::Class(if in_class {
                Class::single(c)
            } else {
                p.literal(c)
            }))
        };
        match c {
            '0'..='9' => Err(Error("backreferences are not supported")),
            'p' | 'P' => Err(Error("Unicode classes are not supported")),
            'x' | 'u' | 'U' => {
                let c = self.hex(c)?;
                single(self, c)
            }
            'd' | 's' | 'w' | 'D' | 'S' | 'W' => {
                let name = match c.to_ascii_lowercase() {
                    'd' => "digit",
                    's' => "space",
                    _ => "word",
                };
                Ok(Escaped::Class(
                    self.named_class(name, c.is_ascii_uppercase())
                        .unwrap_or_default(),
                ))
            }
            'a' => single(self, '\x07'),
            'f' => single(self, '\x0c'),
            't' => single(self, '\t'),
            'n' => single(self, '\n'),
            'r' => single(self, '\r'),
            'v' => single(self, '\x0b'),
            'A' => Ok(Escaped::Look(Look::Start)),
            'z' => Ok(Escaped::Look(Look::End)),
            'B' => Ok(Escaped::Look(Look::NotWord)),
            '<' => Ok(Escaped::Look(Look::WordStart)),
            '>' => Ok(Escaped::Look(Look::WordEnd)),
            'b' => Ok(Escaped::Look(self.word_boundary()?)),
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => single(self, c),
            _ => Err(Error("unrecognized escape sequence")),
        }
    }

    /// After `\b`: `{start}`, `{end}`, `{start-half}`, `{end-half}`, or a plain boundary
    /// (and a following `{5}` is a repetition of it).
    fn word_boundary(&mut self) -> Result<Look, Error> {
        if self.peek() != Some('{') {
            return Ok(Look::Word);
        }
        let back = self.pos;
        self.bump();
        self.skip_space();
        let is_name_char = |c: char| c.is_ascii_alphabetic() || c == '-';
        if !self.peek().is_some_and(is_name_char) {
            self.pos = back;
            return Ok(Look::Word);
        }
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
            name.push(c);
            self.bump();
            self.skip_space();
        }
        if self.bump() != Some('}') {
            return Err(Error("a special word boundary is not closed with '}'"));
        }
        match name.as_str() {
            "start" => Ok(Look::WordStart),
            "end" => Ok(Look::WordEnd),
            "start-half" => Ok(Look::WordStartHalf),
            "end-half" => Ok(Look::WordEndHalf),
            _ => Err(Error("unrecognized special word boundary")),
        }
    }

    /// After `\x`, `\u` or `\U`: two, four or eight hex digits, or any number in braces.
    fn hex(&mut self, kind: char) -> Result<char, Error> {
        let fixed = match kind {
            'x' => 2,
            'u' => 4,
            _ => 8,
        };
        self.skip_space();
        let braced = self.eat("{");
        let mut value: u32 = 0;
        let mut digits = 0;
        loop {
            if braced {
                self.skip_space();
                if self.eat("}") {
                    break;
                }
            } else if digits == fixed {
                break;
            }
            let d = self
                .bump()
                .ok_or(Error("the pattern ends inside a hexadecimal escape"))?
                .to_digit(16)
                .ok_or(Error("a hexadecimal escape has a non-hex digit"))?;
            value = value
                .checked_mul(16)
                .and_then(|v| v.checked_add(d))
                .ok_or(Error("a hexadecimal escape is not a Unicode scalar value"))?;
            digits += 1;
            if !braced && digits < fixed {
                self.skip_space();
            }
        }
        if digits == 0 {
            return Err(Error("a hexadecimal escape has no digits"));
        }
        char::from_u32(value).ok_or(Error("a hexadecimal escape is not a Unicode scalar value"))
    }

    /// After `[`: a bracketed class up to and including `]`.
    fn bracket(&mut self) -> Result<Class, Error> {
        const UNCLOSED: Error = Error("a character class is not closed with ']'");
        self.skip_space();
        let negated = self.eat("^");
        let mut set = Class::default();
        self.skip_space();
        // Leading '-'s are literal, and so is a ']' first.
        let mut dashes = false;
        while self.eat("-") {
            set.push('-', '-');
            dashes = true;
            self.skip_space();
        }
        if !dashes && self.eat("]") {
            set.push(']', ']');
        }
        loop {
            self.skip_space();
            match self.peek() {
                None => return Err(UNCLOSED),
                Some('-') if self.peek2() == Some('-') => {
                    return Err(Error("class set difference is not supported"))
                }
                Some('[') => {
                    let class = self
                        .posix_class()
                        .ok_or(Error("nested character classes are not supported"))?;
                    set.extend(&class);
                }
                Some(']') => {
                    self.bump();
                    break;
                }
                Some('&') if self.peek2() == Some('&') => {
                    return Err(Error("class set intersection is not supported"))
                }
                Some('~') if self.peek2() == Some('~') => {
                    return Err(Error("class set symmetric difference is not supported"))
                }
                Some(_) => self.range(&mut set)?,
            }
        }
        set.canonicalize();
        // Folding before negating: (?i)[^x] excludes X too.
        if self.flags.case_insensitive {
            set.fold_case();
        }
        if negated {
            set.negate();
        }
        Ok(set)
    }

    /// An item of a bracketed class, or a range `a-z` of two single characters.
    fn range(&mut self, set: &mut Class) -> Result<(), Error> {
        let first = self.class_item()?;
        if self.peek_past_space() != Some('-') {
            set.extend(&first);
            return Ok(());
        }
        match self.peek2_past_space() {
            // `a-]` and `a--`: the '-' is not a range's.
            Some(']') | Some('-') => {
                set.extend(&first);
                return Ok(());
            }
            None => return Err(Error("a character class is not closed with ']'")),
            Some(_) => {}
        }
        self.bump();
        self.skip_space();
        let last = self.class_item()?;
        let (Some(lo), Some(hi)) = (first.as_single(), last.as_single()) else {
            return Err(Error(
                "a class range must start and end with a single character",
            ));
        };
        if lo > hi {
            return Err(Error("a class range starts after it ends"));
        }
        set.push(lo, hi);
        Ok(())
    }

    /// One character of a bracketed class, escaped or not (uncased: the class folds itself).
    fn class_item(&mut self) -> Result<Class, Error> {
        let c = self
            .bump()
            .ok_or(Error("a character class is not closed with ']'"))?;
        if c != '\\' {
            return Ok(Class::single(c));
        }
        match self.escape(true)? {
            Escaped::Class(class) => Ok(class),
            Escaped::Look(_) => Err(Error("an assertion cannot be in a character class")),
        }
    }

    /// At `[`: `[:name:]` or `[:^name:]`; `None` (nothing read) if it is not one.
    fn posix_class(&mut self) -> Option<Class> {
        let rest = self.rest().strip_prefix("[:")?;
        let end = crate::substring::find(rest.as_bytes(), b":]")?;
        let name = rest.get(..end)?;
        let (negated, name) = match name.strip_prefix('^') {
            Some(name) => (true, name),
            None => (false, name),
        };
        let class = self.named_class(name, negated)?;
        self.pos += 2 + end + 2;
        Some(class)
    }

    /// An ASCII class by name, folded under `i` before it is negated, as RE2 does: `(?i)\W`
    /// and `(?i)[[:^alpha:]]` exclude the Kelvin sign, which folds with `k`.
    fn named_class(&self, name: &str, negated: bool) -> Option<Class> {
        let mut class = posix(name)?;
        if self.flags.case_insensitive {
            class.fold_case();
        }
        if negated {
            class.negate();
        }
        Some(class)
    }
}

/// What an escape stands for.
enum Escaped {
    Class(Class),
    Look(Look),
}

/// Applies a repetition to the last item.
fn repeat(items: &mut Vec<Node>, min: u32, max: Option<u32>) -> Result<(), Error> {
    let sub = items.pop().ok_or(Error("a repetition repeats nothing"))?;
    // `x{0}` is nothing and `x{1}` is `x`: no node, so they do not deepen the tree (as in
    // regex-lite, whose nesting limit counts the same way).
    match (min, max) {
        (0, Some(0)) => {
            items.push(Node::leaf(Kind::Empty));
            return Ok(());
        }
        (1, Some(1)) => {
            items.push(sub);
            return Ok(());
        }
        _ => {}
    }
    items.push(Node::branch(Kind::Repeat(Box::new(sub), min, max))?);
    Ok(())
}
