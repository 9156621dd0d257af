#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Toolgate's regular expressions against regex-lite, the crate whose syntax they take:
//! random patterns from the whole syntax on random haystacks must get the same answer
//! from both, and a pattern regex-lite compiles must compile here too. Where `(?i)` meets
//! text outside ASCII, which regex-lite does not fold, the answer is the full `regex`
//! crate's (Unicode's simple case folding, as Go's RE2 reads `(?i)` too).

use toolgate_engine::regex::Regex;

/// xorshift64*: a fixed seed, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const ATOMS: &[&str] = &[
    "a",
    "b",
    "A",
    "B",
    "z",
    "Z",
    "é",
    "É",
    "k",
    "s",
    "\u{212a}",
    "ſ",
    "σ",
    "Σ",
    "ς",
    "1",
    "_",
    "-",
    " ",
    ".",
    r"\.",
    r"\n",
    r"\r",
    r"\t",
    r"\d",
    r"\D",
    r"\w",
    r"\W",
    r"\s",
    r"\S",
    r"\x41",
    r"\x{e9}",
    r"\u0062",
    r"\U00000061",
    r"\-",
    r"\#",
    "^",
    "$",
    r"\A",
    r"\z",
    r"\b",
    r"\B",
    r"\<",
    r"\>",
    r"\b{start}",
    r"\b{end}",
    r"\b{start-half}",
    r"\b{end-half}",
    "[ab]",
    "[^ab]",
    "[a-c]",
    "[A-Z]",
    "[^a-z]",
    "[-a]",
    "[a-]",
    "[]a]",
    "[^]a]",
    "[a-b-c]",
    r"[\d_]",
    r"[^\W]",
    r"[\s\S]",
    r"[^\s\S]",
    "[[:alpha:]]",
    "[[:^digit:]x]",
    "[[:word:]-]",
    "[é-ü]",
    "[À-Þ]",
    "[^é]",
    "[j-t]",
    "[^\u{212a}]",
    "[α-ω]",
    r"[\x41-\x5a]",
    "[Z-a]",
    "[\r\n]",
    "[ -~]",
];

const QUANTIFIERS: &[&str] = &[
    "*", "+", "?", "*?", "+?", "??", "{2}", "{0,1}", "{1,}", "{1,3}", "{0}", "{2,}?", "{ 2 }",
];

const GROUP_OPENERS: &[&str] = &[
    "(", "(?:", "(?i:", "(?-i:", "(?m:", "(?s:", "(?mR:", "(?x:", "(?U:", "(?P<n", "(?<m",
];

const FLAG_DIRECTIVES: &[&str] = &["(?i)", "(?m)", "(?s)", "(?R)", "(?-i)", "(?ms)", "(?x)"];

fn pattern(rng: &mut Rng, depth: u32, names: &mut u32) -> String {
    let mut out = String::new();
    let items = 1 + rng.below(4);
    for _ in 0..items {
        match rng.below(10) {
            0 if depth < 3 => {
                let mut open = rng.pick(GROUP_OPENERS).to_string();
                if open.starts_with("(?P<") || open.starts_with("(?<") {
                    *names += 1;
                    open.push_str(&format!("{names}>"));
                }
                out.push_str(&open);
                out.push_str(&pattern(rng, depth + 1, names));
                out.push(')');
            }
            1 => out.push_str(rng.pick(FLAG_DIRECTIVES)),
            2 => out.push('|'),
            _ => out.push_str(rng.pick(ATOMS)),
        }
        if rng.below(3) == 0 {
            out.push_str(rng.pick(QUANTIFIERS));
        }
    }
    out
}

const HAY: &[&str] = &[
    "a", "b", "A", "B", "z", "Z", "é", "ü", "1", "_", "-", " ", "\n", "\r", "\t", ".", "c", "É",
    "Ü", "k", "K", "\u{212a}", "s", "S", "ſ", "σ", "Σ", "ς",
];

fn haystack(rng: &mut Rng) -> String {
    (0..rng.below(9)).map(|_| rng.pick(HAY)).collect()
}

fn lite(pattern: &str) -> Result<regex_lite::Regex, regex_lite::Error> {
    // As Toolgate configured regex-lite before it had its own.
    regex_lite::RegexBuilder::new(pattern)
        .size_limit(1 << 16)
        .nest_limit(64)
        .build()
}

/// Patterns regex-lite refuses that Toolgate reads as written (see the regex module's doc).
/// regex-lite also limits a pattern by its compiled size in memory (64 KiB as configured),
/// Toolgate by its steps (8,192), which allows `(a){1000}`.
fn known_more_lenient(pattern: &str) -> bool {
    pattern.contains("(?i") && (pattern.contains(r"[\x41-\x5a]") || pattern.contains("[Z-a]"))
        || pattern.contains("{1000}")
}

/// Where regex-lite's case folding of a range across both cases misses a part.
fn known_different_answer(pattern: &str) -> bool {
    pattern.contains("(?i") && pattern.contains("[Z-a]")
}

/// The full crate's reading of a pattern, with the ASCII Perl classes spelled as the
/// brackets they are here (its own are Unicode's; a nested bracket folds before it is
/// negated, as ours and RE2 do). `None` where word boundaries are (Unicode's there).
fn full(pattern: &str) -> Option<regex::Regex> {
    if [r"\b", r"\B", r"\<", r"\>"]
        .iter()
        .any(|c| pattern.contains(c))
    {
        return None;
    }
    let mut spelled = pattern.to_string();
    for (perl, bracket) in [
        (r"\d", "[0-9]"),
        (r"\D", "[^0-9]"),
        (r"\w", "[0-9A-Za-z_]"),
        (r"\W", "[^0-9A-Za-z_]"),
        (r"\s", r"[\t\n\x0B\x0C\r\x20]"),
        (r"\S", r"[^\t\n\x0B\x0C\r\x20]"),
    ] {
        spelled = spelled.replace(perl, bracket);
    }
    regex::Regex::new(&spelled).ok()
}

/// Whether the full crate answers for ours: where `(?i)` may meet a character outside
/// ASCII (regex-lite folds ASCII only), or a negated POSIX class, which regex-lite negates
/// before folding (`(?i)[[:^lower:]]` matches `a` there, not in RE2 or the full crate).
fn full_answers(pattern: &str, haystack: &str) -> bool {
    folds_outside_ascii(pattern, haystack) || pattern.contains("(?i") && pattern.contains("[:^")
}

/// Whether `(?i)` may meet a character outside ASCII: in the text, or in the pattern
/// as written or as an escape (`\x{212a}` is the Kelvin sign, which folds with `k`).
fn folds_outside_ascii(pattern: &str, haystack: &str) -> bool {
    let escapes = [r"\x", r"\u", r"\U"];
    pattern.contains("(?i")
        && !(pattern.is_ascii()
            && haystack.is_ascii()
            && !escapes.iter().any(|e| pattern.contains(e)))
}

/// How many answers came from the full crate (where `(?i)` met text outside ASCII).
static FOLDED_ANSWERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn compare(pattern: &str, haystacks: &[String], failures: &mut Vec<String>) -> bool {
    let theirs = lite(pattern);
    let ours = Regex::new(pattern);
    match (&theirs, &ours) {
        (Ok(theirs), Ok(ours)) => {
            let full = full(pattern);
            for h in haystacks {
                let unicode = full_answers(pattern, h);
                let (reference, expected) = match (&full, unicode) {
                    (Some(full), true) => {
                        FOLDED_ANSWERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        ("regex", full.is_match(h))
                    }
                    (None, true) => continue,
                    (_, false) if known_different_answer(pattern) => continue,
                    (_, false) => ("regex-lite", theirs.is_match(h)),
                };
                if expected != ours.is_match(h) {
                    failures.push(format!(
                        "{pattern:?} on {h:?}: {reference} {expected}, ours {}",
                        ours.is_match(h)
                    ));
                }
            }
            true
        }
        (Ok(_), Err(e)) => {
            failures.push(format!(
                "{pattern:?}: regex-lite compiles it, ours refuses: {e}"
            ));
            false
        }
        (Err(e), Ok(_)) if !known_more_lenient(pattern) => {
            failures.push(format!(
                "{pattern:?}: regex-lite refuses it ({e}), ours compiles it"
            ));
            false
        }
        _ => false,
    }
}

#[test]
fn random_patterns_get_regex_lites_answers() {
    // More with TOOLGATE_REGEX_CASES=N (and another seed with TOOLGATE_REGEX_SEED).
    let cases = std::env::var("TOOLGATE_REGEX_CASES").map_or(4000, |n| n.parse().unwrap());
    let seed =
        std::env::var("TOOLGATE_REGEX_SEED").map_or(0x9e37_79b9_7f4a_7c15, |n| n.parse().unwrap());
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    let mut compiled = 0;
    for _ in 0..cases {
        let mut names = 0;
        let p = pattern(&mut rng, 0, &mut names);
        let hays: Vec<String> = (0..40).map(|_| haystack(&mut rng)).collect();
        if compare(&p, &hays, &mut failures) {
            compiled += 1;
        }
    }
    failures.truncate(30);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Most generated patterns are valid, so the answers were compared.
    assert!(
        compiled > cases / 2,
        "only {compiled} of {cases} patterns compiled"
    );
    let folded = FOLDED_ANSWERS.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        folded > cases / 2,
        "only {folded} answers under (?i) outside ASCII"
    );
}

#[test]
fn tricky_patterns_get_regex_lites_answers() {
    let hays: Vec<String> = [
        "",
        "a",
        "ab",
        "aéb",
        "é",
        "a\nb",
        "a\r\nb",
        "\r\n",
        "\n",
        "\r",
        "foo bar",
        "_x_",
        "x-y",
        "ABC",
        "abc",
        "/etc/passwd",
        "22",
        "223",
        "a b",
        "]",
        "-",
        "a{2}",
        "{",
        "}",
        "ПАРОЛЬ",
        "Пароль",
        "\u{212a}",
        "K",
        "ς",
        "Σ",
        "ẞ",
        "ǆ",
        "Ⅸ",
        "ａ",
        "ꭰ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut failures = Vec::new();
    for p in [
        "",
        "|",
        "a|",
        "(|a)",
        "()",
        "(?:)*",
        "(a*)*",
        "(a|b)*c",
        "a**",
        "a*?+",
        "a{0}",
        "a{,2}",
        "a{ 1 , 2 }",
        "x{",
        "{",
        "}",
        "]",
        "a{1}{2}",
        r"\B",
        r"^\B$",
        r"\b\B",
        r"\b{5}",
        r"\b{ start }",
        "(?x)a b",
        "(?x)[a b]",
        "(?x)a#c\nb",
        "(?x)a{ 1 }",
        r"(?x)\x 4 1",
        r"(?x)\x{ 4 1 }",
        "(?x)[ ^ a ]",
        "(?x)[a - c]",
        "(?x)[a -]",
        "[a-]]",
        "[]]",
        "[]-a]",
        "[--]",
        "[---]",
        "[a--]",
        "[^-]",
        "[^]]",
        "[[:alpha:]",
        "[[:foo:]]",
        "[[:alpha:]-z]",
        "(?i)[^a]",
        "(?i)[[:^lower:]]",
        "(?i)[[:^alpha:]]",
        "(?i)[[:^word:]]",
        r"(?i)[^\W]",
        r"(?i)[\Wk]",
        r"(?i)\W",
        "(?i)é",
        r"(?i)\x61",
        "(?i)пароль",
        "(?i)[а-я]+",
        "(?i)k",
        "(?i)[^k]",
        "(?i)\u{212a}",
        "(?i)σ",
        "(?i)[^ς]",
        "(?i)ß",
        "(?i)ǅ",
        "(?i)ⅸ",
        "(?i)Ａ",
        r"(?i)\x{3a3}",
        r"(?i)\x{212a}",
        r"(?i)\u017f",
        "(?i)[Ꭰ-Ꮿ]",
        "(?m)^$",
        "(?m)$^",
        "(?mR)^$",
        "(?mR)$",
        "(?R)^a$",
        "(?s).",
        "(?sR).",
        "(?R).",
        "(?-s).",
        "(?i)a(?-i)b",
        "(?i:a)b",
        "((?i)a)b",
        "(?i)(a)|b",
        "a(?i)|b",
        "(?P<a.b[c]>x)",
        "(?<1a>x)",
        "(?P<>x)",
        "(?P<a",
        "(?",
        "(?i",
        "(?i-",
        "(?i-m)",
        "(?-)",
        r"\x",
        r"\x4",
        r"\x{}",
        r"\x{d800}",
        r"\u{10FFFF}",
        r"\U0010FFFF",
        r"\%",
        r"\<",
        r"\ ",
        r"\é",
        r"\_",
        r"[\_]",
        r"[\<]",
        r"[\A]",
        r"[\d-z]",
        r"[a-\d]",
        "[a-\\x{e9}]",
        r"\pL",
        "(?u)a",
        "(?U)a*",
        "a{4294967295}",
        "a{4294967296}",
        "(a){1000}",
        // Found by the regex fuzz target: stacked `x+` compiled to twice as much per level.
        " Ne+++++++++++++\u{12}@(2?x)\u{1}+r}b",
    ] {
        compare(p, &hays, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn capture_names_outside_ascii_are_refused_where_regex_lite_takes_them() {
    // Go's RE2 syntax (PolicyLayer's) takes only ASCII word characters in a name.
    for p in ["(?<é1>x)", "(?P<aé>x)", "(?<a١>x)"] {
        assert!(lite(p).is_ok(), "{p}");
        assert!(Regex::new(p).is_err(), "{p}");
    }
    assert!(Regex::new("(?P<a_1.b[c]>x)").is_ok());
}

#[test]
fn patterns_at_regex_lites_size_limit_compile() {
    // The largest of each family regex-lite accepts under a 64 KiB size limit.
    let alt = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>().join("|");
    for p in [
        "a{2044}".to_string(),
        "[a-z]{0,817}".to_string(),
        "(?:a|b){481}".to_string(),
        ".{0,742}".to_string(),
        r"\w{1022}".to_string(),
        alt(521, &|i| format!("x{i}")),
        alt(1815, &|_| "a".to_string()),
        "a?".repeat(629),
        "a*".repeat(908),
    ] {
        assert!(lite(&p).is_ok(), "regex-lite refuses {p:.20}");
        let ours = Regex::new(&p).unwrap_or_else(|e| panic!("{p:.20}: {e}"));
        let theirs = lite(&p).unwrap();
        for h in ["", "a", "x520", "aaaa", "b"] {
            assert_eq!(ours.is_match(h), theirs.is_match(h), "{p:.20} on {h:?}");
        }
    }
}

#[test]
fn patterns_at_regex_lites_nesting_limit_compile() {
    // Deepest of each family regex-lite accepts with a nest limit of 64 (found by the regex
    // fuzz target: `x{0}` and `x{1}` once deepened the tree here, not there).
    let stars = |prefix: &str, k: usize| format!("{prefix}{}", "*".repeat(k));
    for p in [
        stars("a", 64),
        stars("(a)", 63),
        stars("(?:ab)", 63),
        stars("x(?:ab)", 62),
        stars("xa{0}", 63),
        stars("xa{1}", 63),
        format!("xa{}", "{1}".repeat(200)),
        format!("{}a{}", "(".repeat(64), ")".repeat(64)),
        format!("{}a{}", "(x|".repeat(32), ")".repeat(32)),
    ] {
        assert!(lite(&p).is_ok(), "regex-lite refuses {p:.30}");
        let ours = Regex::new(&p).unwrap_or_else(|e| panic!("{p:.30}: {e}"));
        for h in ["", "a", "xa", "ab", "xy"] {
            assert_eq!(
                ours.is_match(h),
                lite(&p).unwrap().is_match(h),
                "{p:.30} on {h:?}"
            );
        }
    }
}
