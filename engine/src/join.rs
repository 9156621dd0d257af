//! Joining strings with one small function for every element type: the standard library's
//! `join` adds half a kilobyte to the module per element type, and no join here is hot.

/// Appends `parts` to `out` with `sep` between them.
pub(crate) fn push_joined(out: &mut String, parts: &mut dyn Iterator<Item = &str>, sep: &str) {
    for (i, p) in parts.enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins() {
        let mut s = String::from("[");
        push_joined(&mut s, &mut ["a", "b", "c"].into_iter(), ",");
        assert_eq!(s, "[a,b,c");
        let mut e = String::new();
        push_joined(&mut e, &mut std::iter::empty(), ",");
        assert_eq!(e, "");
    }
}
