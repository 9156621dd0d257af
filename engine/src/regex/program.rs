//! A parsed pattern compiled into a Thompson automaton: instructions a search follows
//! without ever backtracking, so a search costs at most (haystack × program) steps.

use super::class::{is_word, Class};
use super::parse::{Kind, Look, Node, Parsed};
use super::Error;

/// The most instructions a pattern may compile to (`x{1000}{1000}` is refused, not built).
/// It bounds a search's cost per character of the haystack; every pattern within
/// regex-lite's 64 KiB size limit (as Toolgate configured it) fits (`a|a|…` with 1,815
/// branches, the longest, is 5,445).
pub(super) const MAX_INSTRUCTIONS: usize = 8_192;

thread_local! {
    /// Steps the searches of the request being decided may still take (see [`budget`]).
    static STEPS_LEFT: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
}

/// Gives the searches of one request `steps` steps in all. A search costs up to
/// (haystack × program) steps: a pattern with many states over a large argument (such as
/// `[a-z]{1,100}x` over a megabyte) would otherwise take seconds of a worker. Once the
/// steps are spent every search fails at once and [`exhausted`] says so, and the conditions
/// asked are unsure: a `deny_if` denies, a `require` fails.
pub fn budget(steps: u64) {
    STEPS_LEFT.with(|s| s.set(steps));
}

/// Whether the request's searches have run out of steps.
pub fn exhausted() -> bool {
    STEPS_LEFT.with(|s| s.get() == 0)
}

/// Takes `n` steps; false once none are left.
fn step(n: usize) -> bool {
    STEPS_LEFT.with(|s| {
        let left = s.get().saturating_sub(n as u64);
        s.set(left);
        left > 0
    })
}

/// One step of the automaton.
#[derive(Clone, Copy, Debug)]
enum Inst {
    /// Consume a character of the class (an index into `Program::classes`), go on.
    Class(u32),
    /// Go on if the assertion holds here.
    Look(Look),
    /// Go both ways.
    Split(u32, u32),
    /// Go there.
    Jump(u32),
    /// The pattern matched.
    Match,
}

/// A compiled pattern.
#[derive(Clone, Debug)]
pub(super) struct Program {
    insts: Vec<Inst>,
    classes: Vec<Class>,
    /// Every match starts at the haystack's start (`^…` without `m`, `\A…`): a search
    /// starts there only, and ends when no thread is left.
    anchored: bool,
}

impl Program {
    /// Compiles a parsed pattern.
    pub(super) fn compile(parsed: Parsed) -> Result<Program, Error> {
        let mut c = Compiler { insts: Vec::new() };
        c.node(&parsed.root)?;
        c.push(Inst::Match)?;
        Ok(Program {
            insts: c.insts,
            classes: parsed.classes,
            anchored: anchored(&parsed.root),
        })
    }

    /// Whether the pattern matches anywhere in `haystack`.
    pub(super) fn is_match(&self, haystack: &str) -> bool {
        let n = self.insts.len();
        let mut now = Threads::new(n);
        let mut next = Threads::new(n);
        let mut stack = Vec::new();
        let mut chars = haystack.chars();
        let mut before: Option<char> = None;
        let mut here = chars.next();
        loop {
            // Unanchored, a match may start at every position.
            if (before.is_none() || !self.anchored)
                && self.follow(0, before, here, &mut now, &mut stack)
            {
                return true;
            }
            if self.anchored && before.is_some() && now.dense.is_empty() {
                return false;
            }
            let Some(c) = here else {
                return false;
            };
            if !step(now.dense.len() + 1) {
                return false;
            }
            let after = chars.next();
            for &pc in &now.dense {
                if let Some(Inst::Class(id)) = self.insts.get(pc as usize) {
                    let hit = self
                        .classes
                        .get(*id as usize)
                        .is_some_and(|k| k.contains(c));
                    if hit && self.follow(pc + 1, Some(c), after, &mut next, &mut stack) {
                        return true;
                    }
                }
            }
            std::mem::swap(&mut now, &mut next);
            next.clear();
            before = Some(c);
            here = after;
        }
    }

    /// Adds the threads reachable from `pc` without consuming, at the position between
    /// `before` and `here`; true if one of them is a match.
    fn follow(
        &self,
        pc: u32,
        before: Option<char>,
        here: Option<char>,
        threads: &mut Threads,
        stack: &mut Vec<u32>,
    ) -> bool {
        stack.clear();
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            if !threads.insert(pc) {
                continue;
            }
            match self.insts.get(pc as usize) {
                Some(Inst::Match) => return true,
                Some(Inst::Jump(to)) => stack.push(*to),
                Some(Inst::Split(a, b)) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Some(Inst::Look(look)) if holds(*look, before, here) => stack.push(pc + 1),
                _ => {}
            }
        }
        false
    }
}

/// Whether every match of `node` starts at the haystack's start.
fn anchored(node: &Node) -> bool {
    match &node.kind {
        Kind::Look(Look::Start) => true,
        Kind::Concat(nodes) => nodes.first().is_some_and(anchored),
        Kind::Alt(branches) => branches.iter().all(anchored),
        Kind::Repeat(sub, min, _) => *min > 0 && anchored(sub),
        _ => false,
    }
}

/// Whether an assertion holds between `before` and `here` (`None`: an end of the text).
fn holds(look: Look, before: Option<char>, here: Option<char>) -> bool {
    match look {
        Look::Start => before.is_none(),
        Look::End => here.is_none(),
        Look::StartLine => matches!(before, None | Some('\n')),
        Look::EndLine => matches!(here, None | Some('\n')),
        Look::StartCrlf => match before {
            None | Some('\n') => true,
            Some('\r') => here != Some('\n'),
            _ => false,
        },
        Look::EndCrlf => match here {
            None | Some('\r') => true,
            Some('\n') => before != Some('\r'),
            _ => false,
        },
        Look::Word => is_word(before) != is_word(here),
        Look::NotWord => is_word(before) == is_word(here),
        Look::WordStart => !is_word(before) && is_word(here),
        Look::WordEnd => is_word(before) && !is_word(here),
        Look::WordStartHalf => !is_word(before),
        Look::WordEndHalf => !is_word(here),
    }
}

/// The set of instructions live at one position (a sparse set: clear in O(1), insert and
/// test in O(1), iterate in insertion order).
struct Threads {
    dense: Vec<u32>,
    sparse: Vec<u32>,
}

impl Threads {
    fn new(n: usize) -> Threads {
        Threads {
            dense: Vec::with_capacity(n),
            sparse: vec![0; n],
        }
    }

    /// Adds `pc`; false if it was already there (or is out of range).
    fn insert(&mut self, pc: u32) -> bool {
        let Some(slot) = self.sparse.get(pc as usize).copied() else {
            return false;
        };
        if self.dense.get(slot as usize) == Some(&pc) {
            return false;
        }
        if let Some(s) = self.sparse.get_mut(pc as usize) {
            *s = self.dense.len() as u32;
        }
        self.dense.push(pc);
        true
    }

    fn clear(&mut self) {
        self.dense.clear();
    }
}

struct Compiler {
    insts: Vec<Inst>,
}

impl Compiler {
    fn push(&mut self, inst: Inst) -> Result<u32, Error> {
        if self.insts.len() >= MAX_INSTRUCTIONS {
            return Err(Error(
                "the pattern is too large once repetitions are expanded",
            ));
        }
        self.insts.push(inst);
        Ok(self.insts.len() as u32 - 1)
    }

    fn here(&self) -> u32 {
        self.insts.len() as u32
    }

    /// A split whose first way is the instruction after it; its second is patched later.
    fn split_to_next(&mut self) -> Result<u32, Error> {
        let next = self.here() + 1;
        self.push(Inst::Split(next, 0))
    }

    fn patch(&mut self, at: u32, to: u32) {
        match self.insts.get_mut(at as usize) {
            Some(Inst::Jump(t)) | Some(Inst::Split(_, t)) => *t = to,
            _ => {}
        }
    }

    fn node(&mut self, node: &Node) -> Result<(), Error> {
        match &node.kind {
            Kind::Empty => Ok(()),
            Kind::Class(id) => self.push(Inst::Class(*id)).map(drop),
            Kind::Look(look) => self.push(Inst::Look(*look)).map(drop),
            Kind::Concat(nodes) => nodes.iter().try_for_each(|n| self.node(n)),
            Kind::Alt(branches) => {
                let mut ends = Vec::new();
                let last = branches.len().saturating_sub(1);
                for (i, branch) in branches.iter().enumerate() {
                    if i == last {
                        self.node(branch)?;
                    } else {
                        let split = self.split_to_next()?;
                        self.node(branch)?;
                        ends.push(self.push(Inst::Jump(0))?);
                        let next = self.here();
                        self.patch(split, next);
                    }
                }
                let end = self.here();
                for at in ends {
                    self.patch(at, end);
                }
                Ok(())
            }
            Kind::Repeat(sub, min, max) => self.repeat(sub, *min, *max),
        }
    }

    fn repeat(&mut self, sub: &Node, min: u32, max: Option<u32>) -> Result<(), Error> {
        // `x{n,}` is n-1 copies and a loop over the last: one copy for `x+`, so stacked
        // repetitions (`x++++`) grow the program linearly, not by doubling.
        let copies = if max.is_none() {
            min.saturating_sub(1)
        } else {
            min
        };
        for _ in 0..copies {
            let start = self.here();
            self.node(sub)?;
            if self.here() == start {
                // It compiles to nothing (only empty groups): so do its other copies.
                return Ok(());
            }
        }
        match max {
            None if min > 0 => {
                // body; Split(body, out)
                let body = self.here();
                self.node(sub)?;
                if self.here() != body {
                    let out = self.here() + 1;
                    self.push(Inst::Split(body, out))?;
                }
            }
            None => {
                // loop: Split(body, out); body; Jump(loop)
                let split = self.split_to_next()?;
                self.node(sub)?;
                self.push(Inst::Jump(split))?;
                let out = self.here();
                self.patch(split, out);
            }
            Some(max) => {
                // Each optional copy: Split(body, out); body
                let mut splits = Vec::new();
                for _ in min..max {
                    let split = self.split_to_next()?;
                    self.node(sub)?;
                    splits.push(split);
                    if self.here() == split + 1 {
                        break;
                    }
                }
                let out = self.here();
                for at in splits {
                    self.patch(at, out);
                }
            }
        }
        Ok(())
    }
}
