//! Where a borrowed part lies in the text it was borrowed from: readers hand out
//! subslices, and a caller splicing or resuming needs their offsets.

/// The offset at which `inner` starts in `outer`, if `inner` lies wholly within it.
pub(crate) fn offset_in(outer: &[u8], inner: &[u8]) -> Option<usize> {
    let o = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (o.checked_add(inner.len())? <= outer.len()).then_some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_of_parts_and_strangers() {
        let text = b"hello world";
        assert_eq!(offset_in(text, &text[6..]), Some(6));
        assert_eq!(offset_in(text, &text[..0]), Some(0));
        assert_eq!(offset_in(&text[6..], text), None);
        assert_eq!(offset_in(&text[..5], &text[3..8]), None);
        assert_eq!(offset_in(text, b"world"), None);
    }
}
