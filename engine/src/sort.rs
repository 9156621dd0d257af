//! One small in-place sort for the few places that need one (the standard library's sorts
//! add tens of kilobytes to the module per element type).

/// Sorts `v` by `less`: heapsort, O(n log n) whatever the input, no allocation.
pub(crate) fn heapsort<T>(v: &mut [T], mut less: impl FnMut(&T, &T) -> bool) {
    let mut sift = |v: &mut [T], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end {
            if let (Some(a), Some(b)) = (v.get(child), v.get(child + 1)) {
                if less(a, b) {
                    child += 1;
                }
            }
        }
        match (v.get(root), v.get(child)) {
            (Some(r), Some(c)) if less(r, c) => {
                v.swap(root, child);
                root = child;
            }
            _ => break,
        }
    };
    let n = v.len();
    for i in (0..n / 2).rev() {
        sift(v, i, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts() {
        let mut v: Vec<u64> = (0..1000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 977)
            .collect();
        let mut want = v.clone();
        want.sort_unstable();
        heapsort(&mut v, |a, b| a < b);
        assert_eq!(v, want);
        let mut empty: Vec<u8> = Vec::new();
        heapsort(&mut empty, |a, b| a < b);
        let mut one = vec![1];
        heapsort(&mut one, |a, b| a < b);
        assert_eq!(one, [1]);
    }
}
