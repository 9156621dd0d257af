//! One small in-place sort for the few places that need one (the standard library's sorts
//! add tens of kilobytes to the module per element type).

/// Sorts `v` by `less`: heapsort, O(n log n) whatever the input, no allocation. The sort
/// itself is one function for every element type (through [`heap_by`]), not a copy each.
pub(crate) fn heapsort<T>(v: &mut [T], mut less: impl FnMut(&T, &T) -> bool) {
    heap_by(v.len(), &mut |i, j, swap| {
        if swap {
            // `heap_by` swaps only `i < j`, both in range: no panicking `swap` (and its
            // panic locations) per element type.
            if let Some((a, b)) = v.split_at_mut_checked(j) {
                if let (Some(x), Some(y)) = (a.get_mut(i), b.first_mut()) {
                    std::mem::swap(x, y);
                }
            }
            false
        } else {
            matches!((v.get(i), v.get(j)), (Some(a), Some(b)) if less(a, b))
        }
    });
}

/// Heapsort of `n` elements through `at(i, j, swap)`: swaps elements `i` and `j` when
/// `swap`, else tells whether element `i` is less than element `j`.
fn heap_by(n: usize, at: &mut dyn FnMut(usize, usize, bool) -> bool) {
    let sift = |at: &mut dyn FnMut(usize, usize, bool) -> bool, mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && at(child, child + 1, false) {
            child += 1;
        }
        if !at(root, child, false) {
            break;
        }
        at(root, child, true);
        root = child;
    };
    for i in (0..n / 2).rev() {
        sift(at, i, n);
    }
    for end in (1..n).rev() {
        at(0, end, true);
        sift(at, 0, end);
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
