//! Any pattern on any haystack: Toolgate's regular expressions never panic, compile every
//! pattern regex-lite compiles (as Toolgate configured it; but for capture names outside
//! ASCII), and answer as regex-lite does (but where `(?i)` may meet text outside ASCII).
//! The input is the pattern, a NUL byte, then the haystack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolgate_engine::regex::Regex;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, haystack) = text.split_once('\0').unwrap_or((text, ""));
    let ours = Regex::new(pattern);
    let theirs = regex_lite::RegexBuilder::new(pattern)
        .size_limit(1 << 16)
        .nest_limit(64)
        .build();
    // Ours refuses capture names outside ASCII (as Go's RE2 syntax does); regex-lite takes them.
    let unicode_name = !pattern.is_ascii() && pattern.contains('<');
    if let (Ok(theirs), false) = (theirs, unicode_name && ours.is_err()) {
        let ours = ours.unwrap_or_else(|e| panic!("{pattern:?}: regex-lite compiles it, ours: {e}"));
        // regex-lite folds a class range across both cases under (?i) by one part only, and
        // ASCII letters only (ours folds every cased letter, as RE2 does: the differential
        // test holds that part to the full regex crate).
        let folds = pattern.contains("(?") && pattern.contains('i');
        let unicode = !(pattern.is_ascii() && haystack.is_ascii())
            || ["\\x", "\\u", "\\U"].iter().any(|e| pattern.contains(e));
        // And it negates a POSIX class before folding it (`(?i)[[:^lower:]]`), RE2 after.
        if !(folds && (pattern.contains('-') || unicode || pattern.contains("[:^"))) {
            assert_eq!(ours.is_match(haystack), theirs.is_match(haystack), "{pattern:?} on {haystack:?}");
        }
    } else if let Ok(ours) = ours {
        let _ = ours.is_match(haystack);
    }
});
